//! `ferry serve`: the same sync on a schedule, with Prometheus metrics and health endpoints.
//! This module holds what does not depend on the terminal: when the next run is due (`--every`
//! or `--cron` in `$TZ`, with `--splay`), the time zone `$TZ` names, the metrics, and the HTTP
//! endpoint; the command (`commands/serve.rs`) drives the loop.

pub mod http;
pub mod metrics;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local, Timelike as _};
use croner::parser::{CronParser, Year};

/// When runs are due.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, the first at once.
    Every(Duration),
    /// At the times a cron expression names, in the local time zone (`$TZ`), named `zone`.
    Cron {
        expression: String,
        cron: Box<croner::Cron>,
        zone: String,
    },
}

impl Schedule {
    /// Parses a cron expression (5 fields, or 6 with seconds first, or a nickname such as
    /// `@daily`) whose times are read in the time zone `tz` names (the value of `$TZ`, `None`
    /// when unset: the system's). Refuses what it could not run as written: another number of
    /// fields (croner would take a 7th as years), a `tz` that names no zone (chrono would
    /// silently use the system's), an expression that names no time to come.
    pub fn cron(expression: &str, tz: Option<&str>) -> Result<Schedule, String> {
        let fields = expression.split_whitespace().count();
        if !expression.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "invalid --cron expression {expression:?}: {fields} field{}; give 5 (minute \
                 hour day-of-month month day-of-week, e.g. \"0 3 * * *\") or 6 (seconds \
                 first, e.g. \"30 0 3 * * *\")",
                if fields == 1 { "" } else { "s" }
            ));
        }
        let cron = CronParser::builder()
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| format!("invalid --cron expression {expression:?}: {e}"))?;
        let zone = local_zone(tz)?;
        if cron.find_next_occurrence(&Local::now(), false).is_err() {
            return Err(format!(
                "--cron {expression:?} names no time to come (a day that no month has?)"
            ));
        }
        Ok(Schedule::Cron {
            expression: expression.to_owned(),
            cron: Box::new(cron),
            zone,
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
                // croner keeps the start's fraction of a second in what it finds.
                let local = local.with_nanosecond(0).unwrap_or(local);
                cron.find_next_occurrence(&local, false)
                    .map(SystemTime::from)
                    // No occurrence left (checked at the start, so only past the search's
                    // limit): never again.
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
            Schedule::Cron {
                expression, zone, ..
            } => write!(f, "at \"{expression}\" in {zone}"),
        }
    }
}

/// Where the C library and chrono look for a zone named by `$TZ` (chrono's list).
const ZONE_DIRS: [&str; 4] = [
    "/usr/share/zoneinfo",
    "/share/zoneinfo",
    "/etc/zoneinfo",
    "/usr/share/lib/zoneinfo",
];

/// The name of the time zone local times are in, given `$TZ` (`tz`, `None` when unset), as
/// chrono reads it: empty is UTC; `NAME` or `:NAME` a zone file under the zoneinfo directories
/// (or an absolute path); else a POSIX TZ string (`UTC0`, `CET-1CEST,M3.5.0,M10.5.0/3`). A
/// `$TZ` that is none of these is an error naming it: chrono would silently take the system's
/// zone instead. Unset, the system's zone (`/etc/localtime`).
pub fn local_zone(tz: Option<&str>) -> Result<String, String> {
    let Some(tz) = tz else {
        return Ok(system_zone());
    };
    if tz.is_empty() {
        return Ok("UTC".to_owned());
    }
    let (name, file_only) = match tz.strip_prefix(':') {
        Some(name) => (name, true),
        None => (tz, false),
    };
    if zone_file(name).is_some() || (!file_only && posix_tz(name)) {
        return Ok(name.to_owned());
    }
    let file = if Path::new(name).is_absolute() {
        PathBuf::from(name)
    } else {
        Path::new(ZONE_DIRS[0]).join(name)
    };
    let what = if file_only {
        format!("no zone file ({})", file.display())
    } else {
        format!(
            "neither a zone file ({}) nor a POSIX TZ string (e.g. UTC0)",
            file.display()
        )
    };
    Err(format!(
        "TZ={tz:?} is no time zone: {what}; set TZ to a zone name such as Europe/Berlin or \
         UTC (is tzdata installed?), or unset it for the system's zone"
    ))
}

/// The zone file `name` names, if it is one (a TZif file).
fn zone_file(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.to_owned()]
    } else {
        ZONE_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(path))
            .collect()
    };
    candidates.into_iter().find(|file| {
        let mut magic = [0u8; 4];
        std::fs::File::open(file)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok_and(|()| &magic == b"TZif")
    })
}

/// Whether `tz` is a POSIX TZ string: `std offset [dst [offset] [,start[/time],end[/time]]]`.
fn posix_tz(tz: &str) -> bool {
    static POSIX_TZ: LazyLock<regex::Regex> = LazyLock::new(|| {
        let name = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)";
        let offset = r"[+-]?\d{1,2}(?::\d{2}){0,2}";
        let date = r"(?:J\d{1,3}|\d{1,3}|M\d{1,2}\.\d\.\d)";
        let time = r"(?:/[+-]?\d{1,3}(?::\d{2}){0,2})?";
        regex::Regex::new(&format!(
            "^{name}{offset}(?:{name}(?:{offset})?(?:,{date}{time},{date}{time})?)?$"
        ))
        .expect("a valid regex")
    });
    POSIX_TZ.is_match(tz)
}

/// The system's zone: the name `/etc/localtime` links to (`…/zoneinfo/Europe/Berlin`), else
/// `/etc/timezone`'s, else UTC, which chrono takes when there is no `/etc/localtime`.
pub fn system_zone() -> String {
    if let Ok(target) = std::fs::read_link("/etc/localtime") {
        let target = target.to_string_lossy().into_owned();
        if let Some((_, name)) = target.split_once("zoneinfo/") {
            return name.to_owned();
        }
    }
    if let Ok(name) = std::fs::read_to_string("/etc/timezone") {
        let name = name.trim();
        if !name.is_empty() {
            return name.to_owned();
        }
    }
    if Path::new("/etc/localtime").exists() {
        "the zone of /etc/localtime".to_owned()
    } else {
        "UTC".to_owned()
    }
}

/// `at` as a local date and time with its UTC offset, e.g. `2026-11-02 03:00:00 +01:00`.
pub fn local_time(at: SystemTime) -> String {
    let local: DateTime<Local> = at.into();
    local.format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// A delay in `[0, splay)`, so that servers started together do not all hit a registry at once.
pub fn splay(splay: Option<Duration>) -> Duration {
    match splay {
        Some(splay) if !splay.is_zero() => splay.mul_f64(crate::model::jitter()),
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
        let schedule = Schedule::cron("*/15 * * * *", Some("UTC0")).unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // :13:20 UTC
        let next = schedule.first(start);
        let secs = next
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs % (15 * 60), 0, "a quarter hour");
        assert!(next > start && next <= start + Duration::from_secs(15 * 60));
        assert_eq!(schedule.after(next), next + Duration::from_secs(15 * 60));
        let error = Schedule::cron("every day", None).unwrap_err();
        assert!(
            error.starts_with("invalid --cron expression \"every day\""),
            "{error}"
        );
    }

    #[test]
    fn cron_expressions_of_five_or_six_fields_are_taken_and_others_refused() {
        let table = [
            ("0 3 * * *", Ok(())),
            ("30 0 3 * * *", Ok(())),
            ("0 3 * * MON-FRI", Ok(())),
            ("@daily", Ok(())),
            ("0 0 3 * * * 2030", Err("7 fields; give 5")),
            ("0 3 * *", Err("4 fields; give 5")),
            ("0", Err("1 field; give 5")),
            (
                "61 * * * *",
                Err("invalid --cron expression \"61 * * * *\""),
            ),
            ("0 0 31 2 *", Err("names no time to come")),
        ];
        for (expression, expected) in table {
            match (Schedule::cron(expression, Some("UTC0")), expected) {
                (Ok(schedule), Ok(())) => {
                    assert!(schedule.to_string().contains("in UTC0"), "{schedule}")
                }
                (Err(error), Err(part)) => assert!(error.contains(part), "{expression}: {error}"),
                (got, _) => panic!("{expression}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn tz_must_name_a_zone() {
        let table = [
            (None, Ok(system_zone())),
            (Some(""), Ok("UTC".to_owned())),
            (Some("UTC0"), Ok("UTC0".to_owned())),
            (Some("EST5EDT"), Ok("EST5EDT".to_owned())),
            (Some("<+03>-3"), Ok("<+03>-3".to_owned())),
            (
                Some("CET-1CEST,M3.5.0,M10.5.0/3"),
                Ok("CET-1CEST,M3.5.0,M10.5.0/3".to_owned()),
            ),
            (Some("Bogus/Zone"), Err("TZ=\"Bogus/Zone\" is no time zone")),
            (Some(":Bogus"), Err("TZ=\":Bogus\" is no time zone")),
            (
                Some(":UTC0"),
                Err("no zone file (/usr/share/zoneinfo/UTC0)"),
            ),
            (Some("UTC"), Err("")),
            (Some("../../../etc/passwd"), Err("is no time zone")),
            (Some("Europe/Berlin,"), Err("is no time zone")),
        ];
        let have_tzdata = Path::new("/usr/share/zoneinfo/Europe/Berlin").exists();
        for (tz, expected) in table {
            match (local_zone(tz), expected) {
                (Ok(zone), Ok(name)) => assert_eq!(zone, name, "{tz:?}"),
                (Err(error), Err(part)) => {
                    assert!(error.contains(part), "{tz:?}: {error}");
                    assert!(error.contains("set TZ to a zone name"), "{error}");
                }
                // "UTC" alone is a zone file, where tzdata is installed.
                (Ok(zone), Err("")) if have_tzdata => assert_eq!(zone, "UTC"),
                (got, expected) => panic!("{tz:?}: expected {expected:?}, got {got:?}"),
            }
        }
        if have_tzdata {
            assert_eq!(local_zone(Some("Europe/Berlin")).unwrap(), "Europe/Berlin");
            assert_eq!(local_zone(Some(":Asia/Kolkata")).unwrap(), "Asia/Kolkata");
            assert_eq!(
                local_zone(Some("/usr/share/zoneinfo/UTC")).unwrap(),
                "/usr/share/zoneinfo/UTC"
            );
        }
    }

    #[test]
    fn splay_stays_below_its_bound() {
        assert_eq!(splay(None), Duration::ZERO);
        for _ in 0..100 {
            assert!(splay(Some(Duration::from_secs(5))) < Duration::from_secs(5));
        }
    }
}
