//! `ferry serve`: the same sync on a schedule, with Prometheus metrics and health endpoints.
//! This module holds what does not depend on the terminal: when the next run is due (`--every`
//! or `--cron` in `$TZ`, with `--splay`), the metrics, and the HTTP endpoint; the command
//! (`commands/serve.rs`) drives the loop.

pub mod http;
pub mod metrics;

use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local};

/// When runs are due.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, the first at once.
    Every(Duration),
    /// At the times a cron expression names, in the local time zone (`$TZ`).
    Cron {
        expression: String,
        cron: Box<croner::Cron>,
    },
}

impl Schedule {
    /// Parses a cron expression (5 fields, or 6 with seconds first).
    pub fn cron(expression: &str) -> Result<Schedule, String> {
        let cron = croner::Cron::from_str(expression)
            .map_err(|e| format!("invalid --cron expression {expression:?}: {e}"))?;
        Ok(Schedule::Cron {
            expression: expression.to_owned(),
            cron: Box::new(cron),
        })
    }

    /// When the first run is due, the server having started at `now`.
    pub fn first(&self, now: SystemTime) -> SystemTime {
        match self {
            Schedule::Every(_) => now,
            Schedule::Cron { .. } => self.after(now),
        }
    }

    /// The first time due strictly after `time` (for `Every`, one interval on).
    pub fn after(&self, time: SystemTime) -> SystemTime {
        match self {
            Schedule::Every(interval) => time + *interval,
            Schedule::Cron { cron, .. } => {
                let local: DateTime<Local> = time.into();
                cron.find_next_occurrence(&local, false)
                    .map(SystemTime::from)
                    // No occurrence left (an expression for a year gone): never again.
                    .unwrap_or_else(|_| time + Duration::from_secs(100 * 365 * 24 * 3600))
            }
        }
    }

    /// The next due time after a run that was due at `due` and ended at `ended`, and how many
    /// due times passed while it ran (those runs are skipped: runs never overlap).
    pub fn next(&self, due: SystemTime, ended: SystemTime) -> (SystemTime, u32) {
        let mut next = self.after(due);
        let mut skipped = 0;
        while next <= ended {
            skipped += 1;
            next = self.after(next);
        }
        (next, skipped)
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every(interval) => write!(f, "every {:?}", interval),
            Schedule::Cron { expression, .. } => write!(f, "at \"{expression}\" ($TZ)"),
        }
    }
}

/// A delay in `[0, splay)`, so that servers started together do not all hit a registry at once.
pub fn splay(splay: Option<Duration>) -> Duration {
    match splay {
        Some(splay) if !splay.is_zero() => splay.mul_f64(crate::run::retry::jitter()),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_never_overlap_and_the_ones_missed_are_counted() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let every = Schedule::Every(Duration::from_secs(10));
        assert_eq!(every.first(start), start);
        // A run that took 3 s: the next one is due 10 s after the last due time.
        assert_eq!(
            every.next(start, start + Duration::from_secs(3)),
            (start + Duration::from_secs(10), 0)
        );
        // A run that took 25 s: two due times passed while it ran.
        assert_eq!(
            every.next(start, start + Duration::from_secs(25)),
            (start + Duration::from_secs(30), 2)
        );
    }

    #[test]
    fn cron_times_follow_the_expression() {
        let schedule = Schedule::cron("*/15 * * * *").unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // :13:20 UTC
        let next = schedule.first(start);
        let secs = next
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs % (15 * 60), 0, "a quarter hour");
        assert!(next > start && next <= start + Duration::from_secs(15 * 60));
        assert_eq!(schedule.after(next), next + Duration::from_secs(15 * 60));
        let error = Schedule::cron("every day").unwrap_err();
        assert!(
            error.starts_with("invalid --cron expression \"every day\""),
            "{error}"
        );
    }

    #[test]
    fn splay_stays_below_its_bound() {
        assert_eq!(splay(None), Duration::ZERO);
        for _ in 0..100 {
            assert!(splay(Some(Duration::from_secs(5))) < Duration::from_secs(5));
        }
    }
}
