//! Pull quotas: Docker Hub meters pulls (100 every 6 hours anonymously, 200 for a free account)
//! and says how many are left in `ratelimit-limit: 100;w=21600` and `ratelimit-remaining:
//! 76;w=21600` on its manifest answers, `HEAD`s included, which it does not count. Any registry
//! that sends these headers is *metered* here, by the host ferry talks to.
//!
//! A pull is one manifest `GET`: an image of one platform costs 1, a multi-platform one 1 for
//! its index and 1 per platform. The plan's `HEAD` of a source tells which it is (recorded by
//! [`RegistryClient::manifest_digest`]); how many platforms an index names is known only once
//! it is read, so until a copy from that registry has read one, an index counts 1 + 2 (an
//! estimate, said so), and after a copy the manifests it wrote count.
//!
//! `--pull-budget N|auto` bounds what one run spends per metered registry: a copy whose pulls
//! would take the run past the budget is not started (it is *deferred*, see [`Deferral`]). The
//! budget is fixed at the first copy from the registry: N (never more than the quota left then),
//! or with `auto` what is left minus a tenth of the window's limit.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::gate::pace::parse_retry_after;
use super::{header, RegistryClient};
use crate::model::Side;
use crate::reference::ImageRef;

/// Platforms a multi-platform image is counted with before ferry has read one from its
/// registry (linux/amd64 and linux/arm64 are the usual pair).
pub const ASSUMED_PLATFORMS: u64 = 2;
/// The share of a window's limit `--pull-budget auto` leaves unspent: 10 %.
const AUTO_KEEPS_PERCENT: u64 = 10;

/// `--pull-budget`: pulls one run may spend per metered registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullBudget {
    Pulls(u64),
    /// What is left, minus a tenth of the window's limit.
    Auto,
}

impl PullBudget {
    /// `N` or `auto`.
    pub fn parse(text: &str) -> Result<PullBudget, String> {
        match text.trim() {
            "auto" => Ok(PullBudget::Auto),
            n => n
                .parse()
                .map(PullBudget::Pulls)
                .map_err(|_| "must be a number of pulls (0 or more) or auto".to_owned()),
        }
    }
}

/// What a metered registry said of its quota, and what this run spent of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostQuota {
    /// Pulls a window allows (`ratelimit-limit`).
    pub limit: Option<u64>,
    /// The window, from the headers' `w=` (seconds).
    pub window: Option<Duration>,
    /// Pulls left, as last said (`ratelimit-remaining`).
    pub remaining: Option<u64>,
    /// When the quota comes back, where the registry said (`ratelimit-reset`, or a 429's
    /// `Retry-After` while nothing is left).
    pub back_at: Option<SystemTime>,
    /// The run's budget for this registry, fixed at its first copy.
    budget: Option<u64>,
    /// Pulls this run's copies spent or hold.
    pub spent: u64,
    /// Images deferred by the budget.
    pub deferred: u64,
    /// Platforms of the last multi-platform image a copy read from here.
    platforms: Option<u64>,
}

impl HostQuota {
    /// When every pull counted so far is out of the window at the latest: what the registry
    /// said, else a window from now (a pull leaves a sliding window `w` after it was made).
    pub fn frees_by(&self, now: SystemTime) -> Option<SystemTime> {
        self.back_at.or_else(|| self.window.map(|w| now + w))
    }
}

/// The manifest kind a `HEAD` found: an index (or Docker list) or a single image.
type Kinds = HashMap<(String, String, String), bool>;

/// Every metered registry's quota, by the host ferry talks to; one per client.
#[derive(Default)]
pub struct Quotas {
    hosts: Mutex<HashMap<String, HostQuota>>,
    /// Of metered registries only: a long run's lookups elsewhere are not all remembered.
    kinds: Mutex<Kinds>,
    /// The hosts that answered a manifest lookup.
    answered: Mutex<std::collections::HashSet<String>>,
}

impl Quotas {
    /// Reads the quota headers of an answer from `host` (any answer: Docker Hub sends them on
    /// manifests, its HEADs included); an answer without them changes nothing.
    pub fn note(&self, host: &str, status: u16, headers: &HeaderMap, now: SystemTime) {
        let limit = header(headers, "ratelimit-limit").and_then(|v| parse_count(&v));
        let remaining = header(headers, "ratelimit-remaining").and_then(|v| parse_count(&v));
        if limit.is_none() && remaining.is_none() {
            return;
        }
        let mut hosts = self.hosts.lock().expect("lock");
        let quota = hosts.entry(host.to_owned()).or_default();
        if let Some((limit, window)) = limit {
            quota.limit = Some(limit);
            quota.window = window.or(quota.window);
        }
        if let Some((remaining, window)) = remaining {
            quota.remaining = Some(remaining);
            quota.window = window.or(quota.window);
        }
        let reset = header(headers, "ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok());
        let retry = (status == 429)
            .then(|| header(headers, RETRY_AFTER.as_str()))
            .flatten()
            .and_then(|v| parse_retry_after(&v, now));
        match (reset, retry) {
            (Some(seconds), _) => quota.back_at = Some(now + Duration::from_secs(seconds)),
            (None, Some(wait)) => quota.back_at = Some(now + wait),
            // Pulls left: whatever was said of a spent quota is over.
            (None, None) if quota.remaining.is_some_and(|r| r > 0) => quota.back_at = None,
            (None, None) => {}
        }
    }

    /// Records what a `HEAD` of manifest `reference` of `repository` at `host` was served as.
    pub fn note_kind(&self, host: &str, repository: &str, reference: &str, media_type: &str) {
        {
            let mut answered = self.answered.lock().expect("lock");
            if !answered.contains(host) {
                answered.insert(host.to_owned());
            }
        }
        // Only a metered registry's pulls are counted (see `RegistryClient::pulls_for`); its
        // quota headers came with this answer, before it is noted here.
        if !self.hosts.lock().expect("lock").contains_key(host) {
            return;
        }
        let index = is_index(media_type);
        let key = (host.to_owned(), repository.to_owned(), reference.to_owned());
        self.kinds.lock().expect("lock").insert(key, index);
    }

    /// Whether a manifest lookup at `host` was answered in this run (its quota headers, if it
    /// sends any, are then known).
    fn saw_manifest(&self, host: &str) -> bool {
        self.answered.lock().expect("lock").contains(host)
    }

    fn kind(&self, host: &str, repository: &str, reference: &str) -> Option<bool> {
        let key = (host.to_owned(), repository.to_owned(), reference.to_owned());
        self.kinds.lock().expect("lock").get(&key).copied()
    }

    /// Every metered registry's quota, by host, sorted.
    pub fn snapshot(&self) -> Vec<(String, HostQuota)> {
        let mut all: Vec<(String, HostQuota)> = self
            .hosts
            .lock()
            .expect("lock")
            .iter()
            .map(|(host, quota)| (host.clone(), quota.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// `100;w=21600`: the count and, when given, the window.
fn parse_count(value: &str) -> Option<(u64, Option<Duration>)> {
    let mut parts = value.split(';');
    let count = parts.next()?.trim().parse().ok()?;
    let window = parts.find_map(|part| {
        let seconds = part.trim().strip_prefix("w=")?.trim().parse::<u64>().ok()?;
        Some(Duration::from_secs(seconds))
    });
    Some((count, window))
}

fn is_index(media_type: &str) -> bool {
    let media_type = media_type.split(';').next().unwrap_or_default().trim();
    matches!(
        media_type,
        "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

/// What one image's copy is reckoned to cost at a metered registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulls {
    pub host: String,
    pub pulls: u64,
    /// Whether the count rests on a guess: a multi-platform image (or one whose kind the plan
    /// did not see) counted with another image's platforms, or [`ASSUMED_PLATFORMS`].
    pub estimated: bool,
    /// Whether it is (or is taken for) a multi-platform image.
    index: bool,
}

/// Pulls held for one copy, until it is settled.
#[derive(Debug)]
pub struct Reservation {
    held: Pulls,
}

/// Why a copy was not started: its pulls would take the run past the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    pub host: String,
    pub pulls: u64,
    pub budget: u64,
    pub spent: u64,
    pub frees_by: Option<SystemTime>,
}

impl fmt::Display for Deferral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not copied: its {} would take this run past the pull budget for {} ({} of {} \
             spent",
            crate::words::count(self.pulls, "pull", "pulls"),
            self.host,
            self.spent,
            self.budget
        )?;
        f.write_str(")")?;
        if let Some(at) = self.frees_by {
            write!(
                f,
                "; the quota window frees them by {} at the latest",
                utc(at)
            )?;
        }
        Ok(())
    }
}

/// `2026-12-03 16:43:18 UTC`.
pub fn utc(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

impl RegistryClient {
    /// Every metered registry's quota as last said, and what this run spent of it.
    pub fn quotas(&self) -> Vec<(String, HostQuota)> {
        self.quota.snapshot()
    }

    /// Whether a `--pull-budget` bounds this run's pulls.
    pub fn has_pull_budget(&self) -> bool {
        self.options.pull_budget.is_some()
    }

    /// Whether a manifest lookup at `host` was answered in this run, telling its quota if it
    /// has one.
    pub fn saw_manifest(&self, host: &str) -> bool {
        self.quota.saw_manifest(host)
    }

    /// What copying `source` is reckoned to cost at its registry, when that one is metered
    /// (`None` otherwise).
    pub fn pulls_for(&self, source: &ImageRef) -> Option<Pulls> {
        let endpoint = self.endpoint(Side::Source, &source.repository()).ok()?;
        let hosts = self.quota.hosts.lock().expect("lock");
        let quota = hosts.get(&endpoint.host)?;
        let reference = source.digest().or(source.tag()).unwrap_or("latest");
        let kind = self
            .quota
            .kind(&endpoint.host, &endpoint.repository, reference);
        let (pulls, estimated, index) = match kind {
            Some(false) => (1, false, false),
            known => {
                let platforms = quota.platforms;
                let estimated = known.is_none() || platforms.is_none();
                (1 + platforms.unwrap_or(ASSUMED_PLATFORMS), estimated, true)
            }
        };
        Some(Pulls {
            host: endpoint.host,
            pulls,
            estimated,
            index,
        })
    }

    /// Holds the pulls a copy of `source` is reckoned to cost, when its registry is metered
    /// and a `--pull-budget` was given; a [`Deferral`] when they would take the run past the
    /// budget (nothing is held then).
    pub fn reserve_pulls(&self, source: &ImageRef) -> Result<Option<Reservation>, Deferral> {
        let Some(budget) = self.options.pull_budget else {
            return Ok(None);
        };
        let Some(pulls) = self.pulls_for(source) else {
            return Ok(None);
        };
        let mut hosts = self.quota.hosts.lock().expect("lock");
        let quota = hosts.entry(pulls.host.clone()).or_default();
        let allowed = *quota.budget.get_or_insert_with(|| {
            let left = quota.remaining.unwrap_or(u64::MAX);
            match budget {
                PullBudget::Pulls(n) => n.min(left),
                PullBudget::Auto => {
                    let keep = quota
                        .limit
                        .map_or(0, |limit| (limit * AUTO_KEEPS_PERCENT).div_ceil(100));
                    left.saturating_sub(keep)
                }
            }
        });
        if quota.spent + pulls.pulls > allowed {
            quota.deferred += 1;
            return Err(Deferral {
                host: pulls.host.clone(),
                pulls: pulls.pulls,
                budget: allowed,
                spent: quota.spent,
                frees_by: quota.frees_by(SystemTime::now()),
            });
        }
        quota.spent += pulls.pulls;
        Ok(Some(Reservation { held: pulls }))
    }

    /// Settles what a copy held: the manifests it read from the source (`pulled`) are what it
    /// cost, when it says (0 when another copy's read served it); and a multi-platform image
    /// tells how many platforms the next ones from its registry are counted with. `None`
    /// keeps what was held.
    pub fn settle_pulls(&self, reservation: Reservation, pulled: Option<u32>) {
        let held = reservation.held;
        let Some(read) = pulled.map(u64::from) else {
            return;
        };
        let mut hosts = self.quota.hosts.lock().expect("lock");
        let quota = hosts.entry(held.host).or_default();
        quota.spent = quota.spent.saturating_sub(held.pulls) + read;
        if held.index && read > 1 {
            quota.platforms = Some(read - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ClientOptions;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (key, value) in pairs {
            map.insert(
                reqwest::header::HeaderName::from_bytes(key.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_quota_headers_are_read_wherever_they_come() {
        let quotas = Quotas::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        quotas.note("h", 200, &headers(&[("content-type", "x")]), now);
        assert!(quotas.snapshot().is_empty(), "no headers, no quota");
        quotas.note(
            "h",
            200,
            &headers(&[
                ("ratelimit-limit", "100;w=21600"),
                ("ratelimit-remaining", "76;w=21600"),
            ]),
            now,
        );
        let (host, quota) = &quotas.snapshot()[0];
        assert_eq!(host, "h");
        assert_eq!(
            (quota.limit, quota.remaining, quota.window),
            (Some(100), Some(76), Some(Duration::from_secs(21600)))
        );
        assert_eq!(quota.frees_by(now), Some(now + Duration::from_secs(21600)));
        // A refusal that says when: that is when.
        quotas.note(
            "h",
            429,
            &headers(&[("ratelimit-remaining", "0;w=21600"), ("retry-after", "60")]),
            now,
        );
        let quota = &quotas.snapshot()[0].1;
        assert_eq!(quota.remaining, Some(0));
        assert_eq!(quota.frees_by(now), Some(now + Duration::from_secs(60)));
        assert_eq!(parse_count("many"), None);
        assert_eq!(parse_count(" 5 "), Some((5, None)));
        assert_eq!(utc(now), "2027-01-15 08:00:00 UTC");
    }

    #[test]
    fn budgets_are_parsed() {
        assert_eq!(PullBudget::parse("5"), Ok(PullBudget::Pulls(5)));
        assert_eq!(PullBudget::parse("auto"), Ok(PullBudget::Auto));
        assert!(PullBudget::parse("-1").is_err());
        assert!(PullBudget::parse("lots").is_err());
    }

    fn metered(budget: Option<PullBudget>, limit: &str, remaining: &str) -> RegistryClient {
        let client = RegistryClient::new(ClientOptions {
            pull_budget: budget,
            ..ClientOptions::default()
        });
        let answer = headers(&[
            ("ratelimit-limit", limit),
            ("ratelimit-remaining", remaining),
        ]);
        client
            .quota
            .note("127.0.0.1:5000", 200, &answer, SystemTime::now());
        client
    }

    #[test]
    fn only_a_metered_registrys_manifest_kinds_are_kept() {
        let client = metered(None, "100;w=21600", "90;w=21600");
        let image = "application/vnd.oci.image.manifest.v1+json";
        client.quota.note_kind("127.0.0.1:5000", "a/b", "1", image);
        client.quota.note_kind("free.example", "a/b", "1", image);
        assert!(client.saw_manifest("127.0.0.1:5000") && client.saw_manifest("free.example"));
        assert!(!client.saw_manifest("other.example"));
        let kinds = client.quota.kinds.lock().unwrap();
        assert_eq!(kinds.len(), 1, "{kinds:?}");
        assert!(kinds.keys().all(|(host, _, _)| host == "127.0.0.1:5000"));
    }

    #[test]
    fn a_copy_that_would_cross_the_budget_is_deferred() {
        let client = metered(Some(PullBudget::Pulls(5)), "100;w=21600", "90;w=21600");
        let image = |tag: &str| ImageRef::parse(&format!("127.0.0.1:5000/a/b:{tag}")).unwrap();
        for tag in ["1", "2", "3", "4", "5", "6"] {
            client.quota.note_kind(
                "127.0.0.1:5000",
                "a/b",
                tag,
                "application/vnd.oci.image.manifest.v1+json",
            );
        }
        let mut held = Vec::new();
        for tag in ["1", "2", "3", "4", "5"] {
            held.push(client.reserve_pulls(&image(tag)).unwrap().unwrap());
        }
        let deferred = client.reserve_pulls(&image("6")).unwrap_err();
        assert_eq!((deferred.pulls, deferred.spent, deferred.budget), (1, 5, 5));
        assert!(
            deferred.to_string().starts_with(
                "not copied: its 1 pull would take this run past the pull budget for \
                 127.0.0.1:5000 (5 of 5 spent); the quota window frees them by "
            ),
            "{deferred}"
        );
        assert_eq!(client.quotas()[0].1.deferred, 1);
    }

    #[test]
    fn an_index_counts_its_platforms_once_one_was_read() {
        let client = metered(Some(PullBudget::Auto), "100;w=21600", "20;w=21600");
        let image = |tag: &str| ImageRef::parse(&format!("127.0.0.1:5000/a/b:{tag}")).unwrap();
        let index = "application/vnd.oci.image.index.v1+json";
        client.quota.note_kind("127.0.0.1:5000", "a/b", "1", index);
        let guessed = client.pulls_for(&image("1")).unwrap();
        assert_eq!((guessed.pulls, guessed.estimated), (3, true));
        // Never looked up: taken for an index, estimated.
        assert_eq!(client.pulls_for(&image("9")).unwrap().pulls, 3);
        let held = client.reserve_pulls(&image("1")).unwrap().unwrap();
        // The copy wrote an index of four platforms.
        client.settle_pulls(held, Some(5));
        let quota = &client.quotas()[0].1;
        assert_eq!(quota.spent, 5);
        let counted = client.pulls_for(&image("1")).unwrap();
        assert_eq!((counted.pulls, counted.estimated), (5, false));
        // auto: 20 left, 10 of 100 kept: 10 to spend, 5 spent, the next 5 fit, then no more.
        client.quota.note_kind("127.0.0.1:5000", "a/b", "2", index);
        assert!(client.reserve_pulls(&image("2")).unwrap().is_some());
        assert!(client.reserve_pulls(&image("2")).is_err());
        // An unmetered registry has no budget.
        let other = ImageRef::parse("quay.io/a/b:1").unwrap();
        assert!(client.reserve_pulls(&other).unwrap().is_none());
        assert!(client.pulls_for(&other).is_none());
    }
}
