//! The progress of a run, on stderr. On a terminal, a live view: one overall bar (images
//! done of all, skipped, failed, waiting, elapsed, and the time left once it can be told) and
//! one line per image in flight with its phase, redrawn at most 10 times a second (countdowns
//! too) and gone when the run ends; every other line goes out through [`super::log`], which
//! moves the view out of its way. Elsewhere (a CI log) no control character at all: a
//! heartbeat line every `interval` with what is done, copying and waiting, so that a long copy
//! shows life. An image waits when it is not copying: for its `-j` or `--registry-jobs` turn,
//! a throttled registry's turn, or a retry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::{FailureKind, Status};
use crate::run::events::{Event, Wait};
use crate::settings::output::Mode;
use crate::words::count;

use super::escape;

/// What one image in flight is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Copying {
        attempt: u32,
        of: u32,
        blobs: u32,
        total: Option<u32>,
        /// Bytes moved and still to move, for engines that tell them.
        bytes: Option<(u64, Option<u64>)>,
        /// When the attempt started, for its rate.
        started: Instant,
    },
    Turn {
        registry: String,
    },
    Retry {
        next: u32,
        of: u32,
        at: Instant,
    },
}

impl Phase {
    fn describe(&self, now: Instant) -> String {
        match self {
            Phase::Copying {
                attempt,
                of,
                blobs,
                total,
                bytes,
                started,
            } => {
                let mut blobs = match (blobs, total) {
                    (0, None) => String::new(),
                    (n, None) => format!(", {}", count(n, "blob", "blobs")),
                    (n, Some(total)) => format!(", {n}/{}", count(total, "blob", "blobs")),
                };
                if let Some((done, to_move)) = bytes {
                    blobs.push_str(&transfer(
                        *done,
                        *to_move,
                        now.saturating_duration_since(*started),
                    ));
                }
                match attempt {
                    1 => format!("copying{blobs}"),
                    _ => format!("copying, attempt {attempt}/{of}{blobs}"),
                }
            }
            Phase::Turn { registry } => format!("waiting for {registry}'s turn"),
            Phase::Retry { next, of, at } => format!(
                "attempt {next}/{of} in {}",
                seconds(at.saturating_duration_since(now))
            ),
        }
    }

    fn waiting(&self) -> bool {
        !matches!(self, Phase::Copying { .. })
    }
}

/// `, 12.5/64.0 MB, 25.0 MB/s, ETA 3s`: bytes moved of those to move, the rate since the
/// attempt started and the time left at that rate (each part once it can be told).
fn transfer(done: u64, to_move: Option<u64>, elapsed: Duration) -> String {
    const MB: f64 = 1e6;
    let mut text = match to_move {
        Some(total) => format!(", {:.1}/{:.1} MB", done as f64 / MB, total as f64 / MB),
        None => format!(", {:.1} MB", done as f64 / MB),
    };
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    if done > 0 && elapsed >= Duration::from_millis(500) {
        text.push_str(&format!(", {:.1} MB/s", rate / MB));
        if let Some(left) = to_move.map(|total| total.saturating_sub(done)) {
            text.push_str(&format!(
                ", ETA {}",
                seconds(Duration::from_secs_f64(left as f64 / rate))
            ));
        }
    }
    text
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64().ceil() as u64)
}

/// The counts every mode shows.
#[derive(Debug, Default)]
struct Tally {
    /// Entries before whole repositories are expanded, while planning.
    entries: usize,
    /// Entries planned.
    planned: usize,
    /// Each entry's source and target, by index, from its plan to its end: one text and
    /// where the target starts in it (a long plan's names are most of what this holds).
    names: Vec<Option<(Box<str>, usize)>>,
    done: usize,
    skipped: usize,
    failed: usize,
    in_flight: BTreeMap<usize, (String, Phase)>,
    /// The kind of each in-flight image's last failed attempt.
    last_failure: BTreeMap<usize, FailureKind>,
    /// The registry that last answered a lookup 429, and until when it is paused.
    throttled: Option<(String, Instant)>,
    /// Bytes the engine told it moved, over every attempt, and each in-flight attempt's
    /// count so far.
    moved: u64,
    attempt_bytes: BTreeMap<usize, u64>,
    /// When the first copy attempt started, and how many images have finished since, after
    /// attempts of their own: the pace the time left is told from.
    first_attempt: Option<Instant>,
    copies_finished: usize,
}

impl Tally {
    fn event(&mut self, event: &Event, now: Instant) {
        match event {
            Event::RunStarted { entries } => self.entries = *entries,
            Event::Planned {
                index,
                source,
                target,
                ..
            } => {
                self.planned += 1;
                let names = ([source.as_str(), target].concat().into(), source.len());
                crate::queue::place(&mut self.names, *index, names);
            }
            Event::LookupThrottled { registry, wait } => {
                self.throttled = Some((registry.clone(), now + *wait));
            }
            Event::AttemptFailed { index, kind, .. } => {
                self.last_failure.insert(*index, *kind);
            }
            Event::AttemptStarted {
                index,
                target,
                attempt,
                of,
            } => {
                let phase = Phase::Copying {
                    attempt: *attempt,
                    of: *of,
                    blobs: 0,
                    total: None,
                    bytes: None,
                    started: now,
                };
                self.in_flight.insert(*index, (target.clone(), phase));
                self.attempt_bytes.insert(*index, 0);
                self.first_attempt.get_or_insert(now);
            }
            Event::Progress {
                index, progress, ..
            } => {
                if let Some((
                    _,
                    Phase::Copying {
                        blobs,
                        total,
                        bytes,
                        ..
                    },
                )) = self.in_flight.get_mut(index)
                {
                    *blobs = progress.blobs_done;
                    *total = progress.blobs_total;
                    *bytes = progress.bytes_done.map(|done| (done, progress.bytes_total));
                }
                if let Some(done) = progress.bytes_done {
                    let before = self.attempt_bytes.insert(*index, done).unwrap_or(0);
                    self.moved += done.saturating_sub(before);
                }
            }
            Event::Waiting {
                index,
                target,
                reason,
            } => {
                let phase = match reason {
                    Wait::Turn { registry } => Phase::Turn {
                        registry: registry.clone(),
                    },
                    Wait::Retry { next, of, delay } => Phase::Retry {
                        next: *next,
                        of: *of,
                        at: now + *delay,
                    },
                };
                self.in_flight.insert(*index, (target.clone(), phase));
            }
            Event::Finished { index, result } => {
                if self.in_flight.remove(index).is_some() {
                    self.copies_finished += 1;
                }
                // Nothing is told of an entry after its end (its own event names it).
                if let Some(names) = self.names.get_mut(*index) {
                    *names = None;
                }
                self.attempt_bytes.remove(index);
                self.last_failure.remove(index);
                self.done += 1;
                match result.status {
                    Status::Skipped => self.skipped += 1,
                    Status::Failed => self.failed += 1,
                    Status::Synced => {}
                }
            }
            _ => {}
        }
    }

    /// Images copying now.
    fn copying(&self) -> usize {
        self.in_flight
            .values()
            .filter(|(_, p)| !p.waiting())
            .count()
    }

    /// Images planned, not done and not copying: waiting for their `-j` or `--registry-jobs`
    /// turn, a throttled registry's turn, or a retry.
    fn waiting(&self) -> usize {
        self.planned
            .saturating_sub(self.done)
            .saturating_sub(self.copying())
    }

    /// The time left at the pace of the images copied so far; none before an image finished
    /// after copying, nor once nothing is left.
    fn eta(&self, now: Instant) -> Option<Duration> {
        let left = self.planned.saturating_sub(self.done);
        match (self.first_attempt, self.copies_finished, left) {
            (Some(first), finished, left) if finished > 0 && left > 0 => {
                let per_image = now.saturating_duration_since(first) / finished as u32;
                Some(per_image * left as u32)
            }
            _ => None,
        }
    }

    /// What one image in flight is doing, with the kind of its last failure when it waits
    /// to retry.
    fn phase(&self, index: usize, phase: &Phase, now: Instant) -> String {
        match (phase, self.last_failure.get(&index)) {
            (Phase::Retry { .. }, Some(kind)) => format!("{} (after {kind})", phase.describe(now)),
            _ => phase.describe(now),
        }
    }

    /// A registry that throttles lookups right now.
    fn throttling(&self, now: Instant) -> Option<&str> {
        match &self.throttled {
            Some((registry, until)) if *until > now => Some(registry),
            _ => None,
        }
    }

    /// The heartbeat line: counts only, no control characters.
    fn heartbeat(&self, now: Instant, elapsed: Duration) -> String {
        if self.planned == 0 {
            return format!(
                "ferry: planning {}, {} elapsed",
                count(self.entries, "entry", "entries"),
                seconds(elapsed)
            );
        }
        let mut line = format!(
            "ferry: {}/{} done ({} skipped, {} failed), {} copying, {} waiting, {} elapsed",
            self.done,
            count(self.planned, "image", "images"),
            self.skipped,
            self.failed,
            self.copying(),
            self.waiting(),
            seconds(elapsed)
        );
        if self.moved > 0 {
            let rate = self.moved as f64 / elapsed.as_secs_f64().max(0.001);
            line.push_str(&format!(
                ", {:.1} MB moved ({:.1} MB/s)",
                self.moved as f64 / 1e6,
                rate / 1e6
            ));
        }
        if let Some(registry) = self.throttling(now) {
            line.push_str(&format!("; {registry} is rate limiting"));
        }
        line
    }
}

/// How often the live view is brought up to date between events: its countdowns and the
/// time left change without one.
const TICK: Duration = Duration::from_millis(250);

/// The progress display of one run.
pub struct View {
    mode: Mode,
    started: Instant,
    tally: Tally,
    next_beat: Instant,
    live: Option<Live>,
}

/// The live view's bars.
struct Live {
    bars: MultiProgress,
    overall: ProgressBar,
    images: BTreeMap<usize, ProgressBar>,
}

impl View {
    pub fn new(mode: Mode) -> View {
        let now = Instant::now();
        let next_beat = match mode {
            Mode::Plain { interval } => now + interval,
            _ => now + TICK,
        };
        View {
            mode,
            started: now,
            tally: Tally::default(),
            next_beat,
            live: None,
        }
    }

    /// When the next heartbeat (plain mode) or redraw (the live view) is due.
    pub fn next_beat(&self) -> Option<Instant> {
        matches!(self.mode, Mode::Plain { .. } | Mode::Tty).then_some(self.next_beat)
    }

    /// Writes the heartbeat, or brings the live view up to date, if it is due.
    pub fn beat(&mut self, now: Instant) {
        if now < self.next_beat {
            return;
        }
        match self.mode {
            Mode::Plain { interval } => {
                let line = self.tally.heartbeat(now, now - self.started);
                super::log::stderr_text(&line);
                self.next_beat = now + interval;
            }
            Mode::Tty => {
                if let Some(live) = &mut self.live {
                    live.update(&self.tally, now);
                }
                self.next_beat = now + TICK;
            }
            Mode::None | Mode::Json => {}
        }
    }

    pub fn event(&mut self, event: &Event) {
        let now = Instant::now();
        self.tally.event(event, now);
        match self.mode {
            Mode::Tty => self.redraw(event, now),
            Mode::Json => self.json(event),
            Mode::Plain { .. } | Mode::None => {}
        }
    }

    /// The source and target of entry `index`, once it is planned.
    pub fn names(&self, index: usize) -> Option<(&str, &str)> {
        let (names, split) = self.tally.names.get(index)?.as_ref()?;
        Some(names.split_at(*split))
    }

    /// The event as a JSON log line, with its entry's source and target.
    fn json(&self, event: &Event) {
        let (level, value) = super::json_event(event);
        let serde_json::Value::Object(mut fields) = value else {
            return;
        };
        let index = fields.get("index").and_then(serde_json::Value::as_u64);
        if let Some((source, target)) = index.and_then(|i| self.names(i as usize)) {
            for (key, value) in [("source", source), ("target", target)] {
                fields
                    .entry(key)
                    .or_insert_with(|| serde_json::Value::from(value));
            }
        }
        super::log::event(level, fields);
    }

    /// Ends the view: the live one is cleared from the terminal.
    pub fn finish(&mut self) {
        if let Some(live) = self.live.take() {
            super::log::set_live(None);
            for bar in live.images.values() {
                bar.finish_and_clear();
            }
            live.overall.finish_and_clear();
            let _ = live.bars.clear();
        }
    }

    fn redraw(&mut self, event: &Event, now: Instant) {
        let live = self.live.get_or_insert_with(|| {
            let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let overall = bars.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} images{msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            overall.enable_steady_tick(Duration::from_millis(500));
            // From now on, lines written to the terminal move the view out of their way.
            super::log::set_live(Some(bars.clone()));
            Live {
                bars,
                overall,
                images: BTreeMap::new(),
            }
        });
        let tally = &self.tally;
        if let Event::AttemptStarted { index, .. }
        | Event::Progress { index, .. }
        | Event::Waiting { index, .. }
        | Event::Finished { index, .. } = event
        {
            if tally.in_flight.contains_key(index) && !live.images.contains_key(index) {
                let bar = live.bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg}").expect("a valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(200));
                live.images.insert(*index, bar);
            }
            if !tally.in_flight.contains_key(index) {
                if let Some(bar) = live.images.remove(index) {
                    bar.finish_and_clear();
                    live.bars.remove(&bar);
                }
            }
        }
        live.update(tally, now);
    }
}

impl Live {
    /// Sets every bar's text from the tally as of `now`.
    fn update(&mut self, tally: &Tally, now: Instant) {
        self.overall.set_length(tally.planned as u64);
        self.overall.set_position(tally.done as u64);
        self.overall.set_message(overall_message(tally, now));
        for (index, bar) in &self.images {
            if let Some((target, phase)) = tally.in_flight.get(index) {
                let text = format!("{target}: {}", tally.phase(*index, phase, now));
                bar.set_message(escape::one_line(&text).into_owned());
            }
        }
    }
}

/// What the overall bar says after `N/M images`: ` (1 skipped, 0 failed, 3 waiting), ETA 40s`,
/// the time left only once it can be told, and a registry that throttles lookups.
fn overall_message(tally: &Tally, now: Instant) -> String {
    let mut text = format!(
        " ({} skipped, {} failed, {} waiting)",
        tally.skipped,
        tally.failed,
        tally.waiting()
    );
    if let Some(left) = tally.eta(now) {
        text.push_str(&format!(", ETA {}", seconds(left)));
    }
    if let Some(registry) = tally.throttling(now) {
        text.push_str(&format!("; {registry} is rate limiting"));
    }
    escape::one_line(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Progress;
    use crate::model::{FailureKind, ImageResult, Job, Origin, State, Target};
    use crate::reference::ImageRef;

    fn planned(index: usize, state: State) -> Event {
        Event::Planned {
            index,
            state,
            source: format!("nginx:{index}"),
            target: format!("h.example/nginx:{index}"),
        }
    }

    fn job(tag: &str) -> Job {
        Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse(&format!("nginx:{tag}")).unwrap(),
            target: Target::Registry(ImageRef::parse(&format!("h.example/nginx:{tag}")).unwrap()),
            explicit: false,
            filter: None,
            signatures: None,
        }
    }

    #[test]
    fn bytes_show_with_their_rate_and_time_left() {
        let s = Duration::from_secs;
        let table = [
            (0, Some(64_000_000), s(0), ", 0.0/64.0 MB"),
            (
                16_000_000,
                Some(64_000_000),
                s(2),
                ", 16.0/64.0 MB, 8.0 MB/s, ETA 6s",
            ),
            (
                64_000_000,
                Some(64_000_000),
                s(4),
                ", 64.0/64.0 MB, 16.0 MB/s, ETA 0s",
            ),
            (5_000_000, None, s(1), ", 5.0 MB, 5.0 MB/s"),
            // Too early for a rate.
            (
                1_000_000,
                Some(2_000_000),
                Duration::from_millis(100),
                ", 1.0/2.0 MB",
            ),
        ];
        for (done, total, elapsed, expected) in table {
            assert_eq!(transfer(done, total, elapsed), expected, "{done} {total:?}");
        }
        let mut tally = Tally::default();
        let now = Instant::now();
        let planned = planned(0, State::New);
        tally.event(&planned, now);
        tally.event(
            &Event::AttemptStarted {
                index: 0,
                target: "t".into(),
                attempt: 1,
                of: 4,
            },
            now,
        );
        let progress = Progress {
            blobs_done: 1,
            blobs_total: Some(4),
            bytes_done: Some(10_000_000),
            bytes_total: Some(30_000_000),
        };
        tally.event(&Event::Progress { index: 0, progress }, now);
        let (_, phase) = &tally.in_flight[&0];
        assert_eq!(
            tally.phase(0, phase, now + s(2)),
            "copying, 1/4 blobs, 10.0/30.0 MB, 5.0 MB/s, ETA 4s"
        );
        // The heartbeat counts what every attempt moved, a retry's bytes too.
        let more = Progress {
            bytes_done: Some(15_000_000),
            ..progress
        };
        tally.event(
            &Event::Progress {
                index: 0,
                progress: more,
            },
            now,
        );
        let retry = Event::AttemptStarted {
            index: 0,
            target: "t".into(),
            attempt: 2,
            of: 4,
        };
        tally.event(&retry, now);
        tally.event(&Event::Progress { index: 0, progress }, now);
        let line = tally.heartbeat(now, s(5));
        assert!(line.ends_with(", 25.0 MB moved (5.0 MB/s)"), "{line}");
    }

    #[test]
    fn the_heartbeat_counts_what_is_done_in_flight_and_waiting() {
        let now = Instant::now();
        let mut tally = Tally::default();
        let target = |t: &str| format!("h.example/nginx:{t}");
        tally.event(&Event::RunStarted { entries: 4 }, now);
        assert_eq!(
            tally.heartbeat(now, Duration::from_secs(2)),
            "ferry: planning 4 entries, 2s elapsed"
        );
        let events = [
            planned(0, State::Current),
            planned(1, State::New),
            planned(2, State::New),
            planned(3, State::New),
            Event::Finished {
                index: 0,
                result: ImageResult::skipped(&job("1"), None),
            },
            Event::AttemptStarted {
                index: 1,
                target: target("2"),
                attempt: 1,
                of: 4,
            },
            Event::AttemptStarted {
                index: 2,
                target: target("3"),
                attempt: 1,
                of: 4,
            },
            Event::Progress {
                index: 2,
                progress: Progress {
                    blobs_done: 3,
                    blobs_total: Some(7),
                    ..Progress::default()
                },
            },
            Event::AttemptFailed {
                index: 1,
                target: target("2"),
                attempt: 1,
                kind: FailureKind::Network,
                message: "connection reset".into(),
                retry_in: Some(Duration::from_secs(8)),
            },
            Event::Waiting {
                index: 1,
                target: target("2"),
                reason: Wait::Retry {
                    next: 2,
                    of: 4,
                    delay: Duration::from_secs(8),
                },
            },
            Event::Waiting {
                index: 3,
                target: target("4"),
                reason: Wait::Turn {
                    registry: "docker.io".into(),
                },
            },
        ];
        for event in &events {
            tally.event(event, now);
        }
        assert_eq!(tally.planned, 4);
        assert_eq!(
            tally.heartbeat(now, Duration::from_secs(90)),
            "ferry: 1/4 images done (1 skipped, 0 failed), 1 copying, 2 waiting, 90s elapsed"
        );
        let phases: Vec<String> = tally
            .in_flight
            .iter()
            .map(|(i, (_, p))| tally.phase(*i, p, now))
            .collect();
        assert_eq!(
            phases,
            [
                "attempt 2/4 in 8s (after network)",
                "copying, 3/7 blobs",
                "waiting for docker.io's turn"
            ]
        );
        let throttled = Event::LookupThrottled {
            registry: "docker.io".into(),
            wait: Duration::from_secs(5),
        };
        tally.event(&throttled, now);
        let line = tally.heartbeat(now, Duration::ZERO);
        assert!(line.ends_with("; docker.io is rate limiting"), "{line}");
        let failed = ImageResult::failed(
            &job("3"),
            crate::model::ImageError::new(FailureKind::Network, "x"),
            4,
            Duration::ZERO,
        );
        tally.event(
            &Event::Finished {
                index: 2,
                result: failed,
            },
            now,
        );
        let line = tally.heartbeat(now + Duration::from_secs(10), Duration::ZERO);
        assert!(
            line.starts_with("ferry: 2/4 images done (1 skipped, 1 failed), 0 copying, 2 waiting"),
            "{line}"
        );
        assert!(
            !line.contains("rate limiting") && !line.contains('\x1b'),
            "{line}"
        );
    }

    #[test]
    fn the_time_left_is_told_only_from_images_done_and_waiting_counts_the_not_started() {
        let s = Duration::from_secs;
        let start = Instant::now();
        let mut tally = Tally::default();
        for index in 0..4 {
            tally.event(&planned(index, State::New), start);
        }
        let started = |index: usize| Event::AttemptStarted {
            index,
            target: format!("h.example/nginx:{index}"),
            attempt: 1,
            of: 4,
        };
        tally.event(&started(0), start);
        // Three images wait for their turn (-j, --registry-jobs): none has started.
        assert_eq!((tally.copying(), tally.waiting()), (1, 3));
        assert_eq!(tally.eta(start + s(5)), None);
        assert_eq!(
            overall_message(&tally, start + s(5)),
            " (0 skipped, 0 failed, 3 waiting)"
        );
        let done = ImageResult::skipped(&job("0"), None);
        tally.event(
            &Event::Finished {
                index: 0,
                result: done,
            },
            start + s(10),
        );
        tally.event(&started(1), start + s(10));
        // One image in 10 s, three left.
        assert_eq!(tally.eta(start + s(10)), Some(s(30)));
        assert_eq!(
            overall_message(&tally, start + s(10)),
            " (1 skipped, 0 failed, 2 waiting), ETA 30s"
        );
        // A retry's countdown is told from the time it is drawn at.
        tally.event(
            &Event::Waiting {
                index: 1,
                target: "t".into(),
                reason: Wait::Retry {
                    next: 2,
                    of: 4,
                    delay: s(8),
                },
            },
            start + s(10),
        );
        let (_, phase) = tally.in_flight[&1].clone();
        assert_eq!(tally.phase(1, &phase, start + s(10)), "attempt 2/4 in 8s");
        assert_eq!(tally.phase(1, &phase, start + s(15)), "attempt 2/4 in 3s");
        assert_eq!(tally.waiting(), 3);
    }
}
