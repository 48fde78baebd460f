//! What `ferry serve` exports on `/metrics`, in the Prometheus (OpenMetrics) text format, built
//! with `prometheus-client`. Updated from each run's events and outcome, and by the schedule.
//!
//! Every series a query or an alert may compare exists from the start: each `result` of
//! `ferry_runs_total` and each `status` of the image counts at 0, so that `increase()` and
//! `rate()` see the first run and a dashboard shows 0, not "no data".

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::model::{ArtifactCounts, ArtifactState, ImageResult, Results, Status, Summary};
use crate::run::events::Event;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    registry: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabel {
    registry: String,
}

/// How a run ended, as `ferry_runs_total{result}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    /// Every image synced or current.
    Success,
    /// Some images failed.
    ImagesFailed,
    /// The inputs had problems: nothing ran.
    InvalidInput,
    /// Stopped by a signal.
    Interrupted,
    /// Due while the previous one still ran: not started.
    Skipped,
}

impl RunResult {
    const ALL: [RunResult; 5] = [
        RunResult::Success,
        RunResult::ImagesFailed,
        RunResult::InvalidInput,
        RunResult::Interrupted,
        RunResult::Skipped,
    ];

    fn label(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::ImagesFailed => "images-failed",
            RunResult::InvalidInput => "invalid-input",
            RunResult::Interrupted => "interrupted",
            RunResult::Skipped => "skipped",
        }
    }
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    runs: Family<ResultLabel, Counter>,
    last_images: Family<StatusLabel, Gauge>,
    last_failures: Family<KindLabel, Gauge>,
    images: Family<StatusLabel, Counter>,
    failures: Family<KindLabel, Counter>,
    last_start: Gauge<f64, AtomicU64>,
    last_end: Gauge<f64, AtomicU64>,
    last_success: Gauge<f64, AtomicU64>,
    next_run: Gauge<f64, AtomicU64>,
    inputs_valid: Gauge,
    duration: Histogram,
    in_flight: Gauge,
    requests: Family<RequestLabels, Counter>,
    throttled: Family<RegistryLabel, Counter>,
    /// Pulls left at each metered registry, as it last said.
    quota_remaining: Family<RegistryLabel, Gauge>,
    /// `--signatures`: artifacts by state, since the start and of the last run.
    artifacts: Family<StateLabel, Counter>,
    last_artifacts: Family<StateLabel, Gauge>,
    /// Registered only for an engine that counts what it copies (native).
    bytes: Counter,
    /// The images copying now, by event index.
    copying: Mutex<BTreeSet<usize>>,
    /// The registry request counts already added, per run's client (they only grow).
    requests_seen: Mutex<Vec<(String, &'static str, u64)>>,
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The statuses of `ferry_images_total` and `ferry_last_run_images`.
const STATUSES: [&str; 3] = ["synced", "skipped", "failed"];

impl Metrics {
    /// The metrics of a server whose engine reports the bytes it copies (`counts_bytes`: the
    /// native engine) or not (skopeo, crane: then `ferry_copied_bytes_total` is left out rather
    /// than stuck at 0).
    pub fn new(counts_bytes: bool) -> Metrics {
        let mut registry = Registry::with_prefix("ferry");
        let runs = Family::<ResultLabel, Counter>::default();
        registry.register("runs", "Runs by result", runs.clone());
        let last_images = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "last_run_images",
            "Images of the last run by status",
            last_images.clone(),
        );
        let last_failures = Family::<KindLabel, Gauge>::default();
        registry.register(
            "last_run_failures",
            "Failed images of the last run by failure kind",
            last_failures.clone(),
        );
        let images = Family::<StatusLabel, Counter>::default();
        registry.register("images", "Images since start by status", images.clone());
        let failures = Family::<KindLabel, Counter>::default();
        registry.register(
            "failures",
            "Failed images since start by failure kind",
            failures.clone(),
        );
        let last_start = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_run_start_timestamp_seconds",
            "When the last run started (Unix time)",
            last_start.clone(),
        );
        let last_end = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_run_end_timestamp_seconds",
            "When the last run ended (Unix time)",
            last_end.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "When the last fully successful run ended (Unix time; 0 before the first)",
            last_success.clone(),
        );
        let next_run = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "next_run_timestamp_seconds",
            "When the next run is due (Unix time, splay included)",
            next_run.clone(),
        );
        let inputs_valid = Gauge::default();
        registry.register(
            "inputs_valid",
            "1 when the last run's inputs were valid, else 0",
            inputs_valid.clone(),
        );
        let duration = Histogram::new([
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
        ]);
        registry.register(
            "run_duration_seconds",
            "How long runs took",
            duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("copies_in_flight", "Copies running now", in_flight.clone());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "registry_requests",
            "ferry's own registry requests by registry and answer class (2xx..5xx, 429, error)",
            requests.clone(),
        );
        let throttled = Family::<RegistryLabel, Counter>::default();
        registry.register(
            "registry_throttled",
            "429 answers to ferry's own requests, by registry",
            throttled.clone(),
        );
        let quota_remaining = Family::<RegistryLabel, Gauge>::default();
        registry.register(
            "registry_quota_remaining",
            "Pulls left at each metered registry (Docker Hub's ratelimit-remaining), as it last said",
            quota_remaining.clone(),
        );
        let artifacts = Family::<StateLabel, Counter>::default();
        registry.register(
            "artifacts",
            "Signatures, attestations, SBOMs and referrers (--signatures) since start by state \
             (copied, current, failed, needs-native)",
            artifacts.clone(),
        );
        let last_artifacts = Family::<StateLabel, Gauge>::default();
        registry.register(
            "last_run_artifacts",
            "Artifacts of the last run by state (--signatures)",
            last_artifacts.clone(),
        );
        for state in ArtifactState::ALL {
            let label = StateLabel {
                state: state.as_str().to_owned(),
            };
            drop(artifacts.get_or_create(&label));
            drop(last_artifacts.get_or_create(&label));
        }
        let bytes = Counter::default();
        if counts_bytes {
            registry.register(
                "copied_bytes",
                "Bytes of blobs copied (the native engine's count)",
                bytes.clone(),
            );
        }
        for result in RunResult::ALL {
            drop(runs.get_or_create(&ResultLabel {
                result: result.label().to_owned(),
            }));
        }
        for status in STATUSES {
            let label = StatusLabel {
                status: status.to_owned(),
            };
            drop(images.get_or_create(&label));
            drop(last_images.get_or_create(&label));
        }
        Metrics {
            registry,
            runs,
            last_images,
            last_failures,
            images,
            failures,
            last_start,
            last_end,
            last_success,
            next_run,
            inputs_valid,
            duration,
            in_flight,
            requests,
            throttled,
            quota_remaining,
            artifacts,
            last_artifacts,
            bytes,
            copying: Mutex::default(),
            requests_seen: Mutex::default(),
        }
    }

    /// The text `/metrics` answers with.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    pub fn run_started(&self, at: SystemTime) {
        self.last_start.set(unix_seconds(at));
        self.requests_seen.lock().expect("lock").clear();
    }

    /// When the next run is due.
    pub fn next_run(&self, at: SystemTime) {
        self.next_run.set(unix_seconds(at));
    }

    /// A run that could not start (its inputs) or was not started (the previous one ran on).
    /// A run with invalid inputs is the last run: it ran no image, so the last run's counts
    /// are 0, not the previous run's.
    pub fn run_not_run(&self, result: RunResult, at: SystemTime) {
        if result == RunResult::InvalidInput {
            self.inputs_valid.set(0);
            self.last_end.set(unix_seconds(at));
            self.set_last_run(&[0, 0, 0]);
            self.set_last_artifacts(&ArtifactCounts::default());
            self.last_failures.clear();
        }
        self.runs
            .get_or_create(&ResultLabel {
                result: result.label().to_owned(),
            })
            .inc();
    }

    /// Whether the inputs read before the first run are valid.
    pub fn inputs_checked(&self, valid: bool) {
        self.inputs_valid.set(i64::from(valid));
    }

    pub fn inputs_valid(&self) -> bool {
        self.inputs_valid.get() == 1
    }

    /// A run's events, as they come.
    pub fn event(&self, event: &Event) {
        match event {
            Event::AttemptStarted { index, .. } => {
                self.copying.lock().expect("lock").insert(*index);
            }
            Event::Waiting { index, .. } | Event::Finished { index, .. } => {
                self.copying.lock().expect("lock").remove(index);
            }
            Event::RunFinished { results, summary } => return self.run_ended(summary, results),
            _ => return,
        }
        let copying = self.copying.lock().expect("lock").len();
        self.in_flight.set(copying as i64);
        if let Event::Finished { result, .. } = event {
            self.finished(result);
        }
    }

    fn finished(&self, result: &ImageResult) {
        let status = match result.status {
            Status::Synced => "synced",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        };
        self.images
            .get_or_create(&StatusLabel {
                status: status.to_owned(),
            })
            .inc();
        if let Some(error) = &result.error {
            self.failures
                .get_or_create(&KindLabel {
                    kind: error.kind.to_string(),
                })
                .inc();
        }
        if let Some(bytes) = result.counts.bytes_copied {
            self.bytes.inc_by(bytes);
        }
        if let Some(artifacts) = &result.artifacts {
            let counts = ArtifactCounts::of(artifacts);
            for state in ArtifactState::ALL {
                self.artifacts
                    .get_or_create(&StateLabel {
                        state: state.as_str().to_owned(),
                    })
                    .inc_by(counts.get(state) as u64);
            }
        }
    }

    /// The last run's counts, from its `RunFinished` event.
    fn run_ended(&self, summary: &Summary, results: &Results) {
        self.set_last_run(&[summary.synced, summary.skipped, summary.failed]);
        self.set_last_artifacts(&summary.artifacts.unwrap_or_default());
        self.last_failures.clear();
        let results = results.iter().flatten();
        for error in results.filter_map(|r| r.error) {
            self.last_failures
                .get_or_create(&KindLabel {
                    kind: error.kind.to_string(),
                })
                .inc();
        }
        self.duration
            .observe(Duration::from_millis(summary.duration_ms as u64).as_secs_f64());
        self.copying.lock().expect("lock").clear();
        self.in_flight.set(0);
    }

    /// `ferry_last_run_artifacts` by state.
    fn set_last_artifacts(&self, counts: &ArtifactCounts) {
        for state in ArtifactState::ALL {
            self.last_artifacts
                .get_or_create(&StateLabel {
                    state: state.as_str().to_owned(),
                })
                .set(counts.get(state) as i64);
        }
    }

    /// `ferry_last_run_images` by status, in the order of [`STATUSES`].
    fn set_last_run(&self, counts: &[usize; 3]) {
        for (status, n) in STATUSES.iter().zip(counts) {
            self.last_images
                .get_or_create(&StatusLabel {
                    status: (*status).to_owned(),
                })
                .set(*n as i64);
        }
    }

    /// How a run that ran ended, at `at`.
    pub fn run_result(&self, result: RunResult, at: SystemTime) {
        self.inputs_valid.set(1);
        self.runs
            .get_or_create(&ResultLabel {
                result: result.label().to_owned(),
            })
            .inc();
        self.last_end.set(unix_seconds(at));
        if result == RunResult::Success {
            self.last_success.set(unix_seconds(at));
        }
    }

    /// What metered registry `host` said it has left.
    pub fn quota_remaining(&self, host: &str, left: u64) {
        self.quota_remaining
            .get_or_create(&RegistryLabel {
                registry: host.to_owned(),
            })
            .set(i64::try_from(left).unwrap_or(i64::MAX));
    }

    /// Adds what a run's registry client counted since the last call (counts only grow).
    pub fn registry_answers(&self, answers: Vec<(String, &'static str, u64)>) {
        let mut seen = self.requests_seen.lock().expect("lock");
        for (host, class, n) in answers {
            let before = seen
                .iter()
                .find(|(h, c, _)| *h == host && *c == class)
                .map_or(0, |(_, _, n)| *n);
            let added = n.saturating_sub(before);
            self.requests
                .get_or_create(&RequestLabels {
                    registry: host.clone(),
                    class: class.to_owned(),
                })
                .inc_by(added);
            if class == "429" {
                self.throttled
                    .get_or_create(&RegistryLabel {
                        registry: host.clone(),
                    })
                    .inc_by(added);
            }
            seen.retain(|(h, c, _)| !(*h == host && *c == class));
            seen.push((host, class, n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The value of the sample line `series` (name and labels as rendered), if there is one.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().unwrap())
    }

    #[test]
    fn every_run_result_and_image_status_is_there_at_0_before_the_first_run() {
        let text = Metrics::new(false).render();
        for result in RunResult::ALL {
            let series = format!("ferry_runs_total{{result=\"{}\"}}", result.label());
            assert_eq!(sample(&text, &series), Some(0.0), "{series} in\n{text}");
        }
        for status in STATUSES {
            for name in ["ferry_images_total", "ferry_last_run_images"] {
                let series = format!("{name}{{status=\"{status}\"}}");
                assert_eq!(sample(&text, &series), Some(0.0), "{series} in\n{text}");
            }
        }
    }

    #[test]
    fn a_run_with_invalid_inputs_leaves_no_counts_of_the_run_before() {
        let metrics = Metrics::new(false);
        let summary = Summary {
            total: 3,
            synced: 2,
            failed: 1,
            ..Summary::default()
        };
        let job = crate::model::Job {
            origin: crate::model::Origin {
                file: "l".into(),
                line: 1,
            },
            source: crate::reference::ImageRef::parse("nginx:1").unwrap(),
            target: crate::model::Target::Registry(
                crate::reference::ImageRef::parse("h.example/nginx:1").unwrap(),
            ),
            explicit: false,
            filter: None,
            signatures: None,
        };
        let failed = ImageResult::failed(
            &job,
            crate::model::ImageError::new(crate::model::FailureKind::Network, "down"),
            1,
            Duration::ZERO,
        );
        metrics.event(&Event::RunFinished {
            results: Arc::new(Results::of([failed])),
            summary,
        });
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        metrics.run_result(RunResult::ImagesFailed, at);
        let text = metrics.render();
        assert_eq!(
            sample(&text, "ferry_last_run_images{status=\"synced\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "ferry_last_run_failures{kind=\"network\"}"),
            Some(1.0)
        );

        let later = at + Duration::from_secs(60);
        metrics.run_not_run(RunResult::InvalidInput, later);
        let text = metrics.render();
        for status in STATUSES {
            let series = format!("ferry_last_run_images{{status=\"{status}\"}}");
            assert_eq!(sample(&text, &series), Some(0.0), "{series} in\n{text}");
        }
        assert!(!text.contains("ferry_last_run_failures{"), "{text}");
        assert_eq!(
            sample(&text, "ferry_last_run_end_timestamp_seconds"),
            Some(1_800_000_060.0)
        );
        assert_eq!(sample(&text, "ferry_inputs_valid"), Some(0.0));
    }

    #[test]
    fn copied_bytes_are_exported_only_for_an_engine_that_counts_them() {
        assert!(Metrics::new(true)
            .render()
            .contains("ferry_copied_bytes_total 0"));
        assert!(!Metrics::new(false).render().contains("ferry_copied_bytes"));
    }

    #[test]
    fn the_quota_left_is_exported_per_registry() {
        let metrics = Metrics::new(false);
        metrics.quota_remaining("registry-1.docker.io", 76);
        metrics.quota_remaining("registry-1.docker.io", 75);
        let text = metrics.render();
        assert_eq!(
            sample(
                &text,
                "ferry_registry_quota_remaining{registry=\"registry-1.docker.io\"}"
            ),
            Some(75.0),
            "{text}"
        );
    }

    #[test]
    fn the_next_run_is_exported_in_unix_seconds() {
        let metrics = Metrics::new(false);
        metrics.next_run(UNIX_EPOCH + Duration::from_secs(1_800_000_123));
        let text = metrics.render();
        assert_eq!(
            sample(&text, "ferry_next_run_timestamp_seconds"),
            Some(1_800_000_123.0),
            "{text}"
        );
    }

    #[test]
    fn artifacts_are_counted_by_state_for_the_run_and_since_the_start() {
        use crate::model::{ArtifactKind, ArtifactResult};
        let metrics = Metrics::new(false);
        let text = metrics.render();
        for state in ArtifactState::ALL {
            for name in ["ferry_artifacts_total", "ferry_last_run_artifacts"] {
                let series = format!("{name}{{state=\"{}\"}}", state.as_str());
                assert_eq!(sample(&text, &series), Some(0.0), "{series} in\n{text}");
            }
        }
        let job = crate::model::Job {
            origin: crate::model::Origin {
                file: "l".into(),
                line: 1,
            },
            source: crate::reference::ImageRef::parse("nginx:1").unwrap(),
            target: crate::model::Target::Registry(
                crate::reference::ImageRef::parse("h.example/nginx:1").unwrap(),
            ),
            explicit: false,
            filter: None,
            signatures: None,
        };
        let artifact = |state| ArtifactResult {
            kind: ArtifactKind::Signature,
            subject: "sha256:a".into(),
            tag: Some("sha256-a.sig".into()),
            digest: "sha256:b".into(),
            artifact_type: None,
            state,
            error: None,
        };
        let mut result = ImageResult::skipped(&job, None);
        result.artifacts = Some(vec![
            artifact(ArtifactState::Copied),
            artifact(ArtifactState::Copied),
            artifact(ArtifactState::NeedsNative),
        ]);
        let results = vec![result];
        for _ in 0..2 {
            metrics.event(&Event::Finished {
                index: 0,
                result: results[0].clone(),
            });
        }
        metrics.event(&Event::RunFinished {
            summary: Summary::of(&results, Duration::ZERO, false),
            results: Arc::new(Results::of(results)),
        });
        let text = metrics.render();
        assert_eq!(
            sample(&text, "ferry_artifacts_total{state=\"copied\"}"),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, "ferry_artifacts_total{state=\"needs-native\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "ferry_last_run_artifacts{state=\"copied\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "ferry_last_run_artifacts{state=\"current\"}"),
            Some(0.0)
        );
    }
}
