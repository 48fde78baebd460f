//! Runs jobs several at a time and tells its caller each result as it ends; the scheduler
//! itself never prints.
//!
//! Jobs start in list order, at most `limit` at once. Jobs that write the same OCI layout
//! (two tags of one repository in a local mirror) never overlap, because skopeo rewrites the
//! layout's `index.json`. Once a stop is requested no new job starts; the ones not started are
//! reported as interrupted, so every job ends up with exactly one result.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{watch, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::exec::{wait_for, Stop};
use crate::model::{FailureKind, ImageError, ImageResult, Job, Target};

/// Told each job's result as it ends, started or not, with the job's index.
pub type OnFinished = Arc<dyn Fn(usize, &ImageResult) + Send + Sync>;

/// How many jobs may run at once: overall, and per registry host.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub global: usize,
    /// Jobs touching this registry (as source or destination) at once, keyed by the host its
    /// requests go to.
    pub per_registry: HashMap<String, usize>,
    /// The host requests go to for a registry as jobs name it (`docker.io` to its API host or
    /// to where registries.conf sends it); a name not here is its own host.
    pub hosts: HashMap<String, String>,
}

impl Limits {
    fn host<'a>(&'a self, name: &'a str) -> &'a str {
        self.hosts.get(name).map_or(name, String::as_str)
    }
}

/// A running job's place among the `-j` jobs at once. A job that has to wait mid-way (for a
/// throttled registry's turn, or before a retry) gives it up meanwhile through
/// [`Slot::idle_while`], so jobs for other registries can run.
#[derive(Clone)]
pub struct Slot {
    global: Arc<Semaphore>,
    held: Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>,
}

impl Slot {
    fn new(global: Arc<Semaphore>) -> Slot {
        Slot {
            global,
            held: Arc::default(),
        }
    }

    fn hold(&self, permit: OwnedSemaphorePermit) {
        *self.held.lock().expect("lock") = Some(permit);
    }

    /// Awaits `wait`; unless it is ready at once, without holding the slot, which is taken
    /// back (in line with the jobs waiting to start) before this returns.
    pub async fn idle_while<T>(&self, wait: impl Future<Output = T>) -> T {
        let mut wait = std::pin::pin!(wait);
        let ready = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
        if let Poll::Ready(out) = ready {
            return out;
        }
        // The permit is dropped here, before the wait: that is the lending.
        let released = self.held.lock().expect("lock").take().is_some();
        let out = wait.await;
        if released {
            let permit = Arc::clone(&self.global).acquire_owned().await;
            self.hold(permit.expect("never closed"));
        }
        out
    }
}

/// Runs every job through `execute` and hands `gather` each job's result (with the job's
/// index) as it ends, started or not.
///
/// Each job first waits for a slot at every limited registry it touches and for its OCI
/// layout, then for a global slot, so a job queued behind a busy registry or layout never
/// holds a global slot idle (nor does one waiting mid-way, see [`Slot`]). New jobs queue for
/// the global slot one at a time, and semaphores are fair, so jobs still start in list order
/// within those limits, and a job taking back a slot it lent is not sent to the back.
pub async fn run_each<F, Fut>(
    jobs: Vec<Job>,
    limits: &Limits,
    stop: watch::Receiver<Stop>,
    finished: OnFinished,
    execute: F,
    mut gather: impl FnMut(usize, ImageResult),
) where
    F: Fn(usize, Job, watch::Receiver<Stop>, Slot) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ImageResult> + Send + 'static,
{
    let total = jobs.len();
    let mut gathered = 0;
    let execute = Arc::new(execute);
    let global = Arc::new(Semaphore::new(limits.global.max(1)));
    let registries: HashMap<String, Arc<Semaphore>> = limits
        .per_registry
        .iter()
        .map(|(host, n)| (host.clone(), Arc::new(Semaphore::new((*n).max(1)))))
        .collect();
    let mut layout_locks: HashMap<PathBuf, Arc<Mutex<()>>> = HashMap::new();
    let starting = Arc::new(Mutex::new(()));
    let ahead = Arc::new(Semaphore::new(QUEUED_AHEAD));
    let mut running = JoinSet::new();
    for (index, job) in crate::queue::Queue::from(jobs).enumerate() {
        let layout_lock = match &job.target {
            Target::Oci { layout, .. } => {
                Some(Arc::clone(layout_locks.entry(layout.clone()).or_default()))
            }
            Target::Registry(_) => None,
        };
        // Sorted, so two jobs never wait for the same pair of registries in opposite order.
        let mut hosts: Vec<&str> = vec![limits.host(job.source.domain())];
        if let Target::Registry(target) = &job.target {
            hosts.push(limits.host(target.domain()));
        }
        hosts.sort_unstable();
        hosts.dedup();
        let gates: Vec<Arc<Semaphore>> = hosts
            .iter()
            .filter_map(|h| registries.get(*h).cloned())
            .collect();
        // A job with nothing to wait for but a global slot becomes a task once fewer than
        // QUEUED_AHEAD such tasks wait: they start in order, so no job behind them could
        // start sooner, and a long list is not a task per job. One that waits for a limited
        // registry or a layout becomes a task at once, so jobs behind it go on meanwhile.
        let turn = if gates.is_empty() && layout_lock.is_none() {
            loop {
                tokio::select! {
                    biased;
                    permit = Arc::clone(&ahead).acquire_owned() => {
                        break Some(permit.expect("never closed"));
                    }
                    Some(joined) = running.join_next() => {
                        let (index, result) = joined.expect("a job task panicked");
                        gather(index, result);
                        gathered += 1;
                    }
                }
            }
        } else {
            None
        };
        let global = Arc::clone(&global);
        let starting = Arc::clone(&starting);
        let finished = Arc::clone(&finished);
        let mut stop_watch = stop.clone();
        let stop = stop.clone();
        let execute = Arc::clone(&execute);
        // A job waiting for its turn holds its inputs only: its copy's future is made (and
        // boxed, so that the task does not carry its size) once it starts.
        running.spawn(async move {
            let stopped = || {
                let not_started = not_started_result(&job);
                finished(index, &not_started);
                (index, not_started)
            };
            let mut held = Vec::with_capacity(gates.len());
            for gate in gates {
                tokio::select! {
                    biased;
                    () = wait_for(&mut stop_watch, Stop::Graceful) => return stopped(),
                    permit = gate.acquire_owned() => held.push(permit.expect("never closed")),
                }
            }
            // Before the global slot: a job holding the layout may lend its slot while it
            // waits, and must find it free again, not taken by a job waiting for the layout.
            let _layout = match layout_lock {
                Some(lock) => tokio::select! {
                    biased;
                    () = wait_for(&mut stop_watch, Stop::Graceful) => return stopped(),
                    layout = lock.lock_owned() => Some(layout),
                },
                None => None,
            };
            // One job at a time queues for a global slot, in list order, so a job taking back
            // a slot it lent waits behind one new job at most, not behind all of them.
            let admission = tokio::select! {
                biased;
                () = wait_for(&mut stop_watch, Stop::Graceful) => return stopped(),
                admission = starting.lock_owned() => admission,
            };
            let permit = tokio::select! {
                biased;
                () = wait_for(&mut stop_watch, Stop::Graceful) => return stopped(),
                permit = Arc::clone(&global).acquire_owned() => permit.expect("never closed"),
            };
            drop(admission);
            drop(turn);
            // Held here until the job ends, whatever the job does with its clone.
            let slot = Slot::new(global);
            slot.hold(permit);
            let result = Box::pin(execute(index, job, stop, slot.clone())).await;
            drop(slot);
            finished(index, &result);
            (index, result)
        });
    }
    while let Some(joined) = running.join_next().await {
        let (index, result) = joined.expect("a job task panicked");
        gather(index, result);
        gathered += 1;
    }
    assert_eq!(gathered, total, "every job has a result");
}

/// Jobs that wait for nothing but a global slot, made tasks ahead of their start (see
/// [`run_each`]): enough that one is always ready when a slot frees, few enough that a list's
/// length costs no task each.
const QUEUED_AHEAD: usize = 64;

fn not_started_result(job: &Job) -> ImageResult {
    let error = ImageError::new(
        FailureKind::Interrupted,
        "not started: ferry was asked to stop",
    );
    ImageResult::failed(job, error, 0, Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Status};
    use crate::reference::ImageRef;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs every job through `execute` and returns one result per job, in job order (see
    /// [`run_each`]).
    async fn run_all<F, Fut>(
        jobs: Vec<Job>,
        limits: &Limits,
        stop: watch::Receiver<Stop>,
        finished: OnFinished,
        execute: F,
    ) -> Vec<ImageResult>
    where
        F: Fn(usize, Job, watch::Receiver<Stop>, Slot) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ImageResult> + Send + 'static,
    {
        let total = jobs.len();
        let mut results: Vec<Option<ImageResult>> = (0..total).map(|_| None).collect();
        run_each(jobs, limits, stop, finished, execute, |index, result| {
            results[index] = Some(result);
        })
        .await;
        results
            .into_iter()
            .map(|result| result.expect("every job has a result"))
            .collect()
    }

    fn jobs(n: usize, oci: bool) -> Vec<Job> {
        (0..n)
            .map(|i| {
                let source = ImageRef::parse(&format!("nginx:{i}")).unwrap();
                let target = if oci {
                    Target::Oci {
                        layout: "mirror/docker.io/library/nginx".into(),
                        name: Some(i.to_string()),
                        digest: None,
                    }
                } else {
                    Target::Registry(ImageRef::parse(&format!("h.example/m/nginx:{i}")).unwrap())
                };
                Job {
                    origin: Origin {
                        file: "l".into(),
                        line: i + 1,
                    },
                    source,
                    target,
                    explicit: false,
                    filter: None,
                    signatures: None,
                }
            })
            .collect()
    }

    fn ok(job: &Job) -> ImageResult {
        let mut result = ImageResult::failed(
            job,
            ImageError::new(FailureKind::Other, ""),
            1,
            Duration::ZERO,
        );
        result.status = Status::Synced;
        result.error = None;
        result
    }

    /// Runs jobs that each take 20 ms and returns the highest number seen running at once.
    async fn peak_concurrency(
        jobs: Vec<Job>,
        limit: usize,
        per_registry: Vec<(&str, usize)>,
    ) -> (usize, Vec<ImageResult>) {
        let (_stop_tx, stop) = watch::channel(Stop::Run);
        let tx: OnFinished = Arc::new(|_, _| {});
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let limits = Limits {
            global: limit,
            per_registry: per_registry
                .into_iter()
                .map(|(h, n)| (h.to_owned(), n))
                .collect(),
            ..Limits::default()
        };
        let counters = (Arc::clone(&now), Arc::clone(&peak));
        let results = run_all(jobs, &limits, stop, tx, move |_, job, _, _| {
            let (now, peak) = (Arc::clone(&counters.0), Arc::clone(&counters.1));
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                ok(&job)
            }
        })
        .await;
        (peak.load(Ordering::SeqCst), results)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_up_to_the_limit_at_once_and_keeps_job_order() {
        let (peak, results) = peak_concurrency(jobs(10, false), 3, vec![]).await;
        assert_eq!(peak, 3);
        let sources: Vec<_> = results.iter().map(|r| r.source.clone()).collect();
        let expected: Vec<_> = (0..10)
            .map(|i| format!("docker.io/library/nginx:{i}"))
            .collect();
        assert_eq!(sources, expected);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_registry_limit_caps_its_jobs_below_the_global_limit() {
        // Every test job's source is docker.io.
        let (peak, results) = peak_concurrency(jobs(8, false), 4, vec![("docker.io", 2)]).await;
        assert_eq!(peak, 2);
        assert_eq!(results.len(), 8);
        let (peak, _) = peak_concurrency(jobs(8, false), 4, vec![("quay.io", 1)]).await;
        assert_eq!(peak, 4, "a limit on another registry changes nothing");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn jobs_writing_one_oci_layout_never_overlap() {
        let (peak, results) = peak_concurrency(jobs(4, true), 4, vec![]).await;
        assert_eq!(peak, 1);
        assert!(results.iter().all(|r| r.status == Status::Synced));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_job_waiting_mid_way_lends_its_slot() {
        let (_stop_tx, stop) = watch::channel(Stop::Run);
        let tx: OnFinished = Arc::new(|_, _| {});
        let limits = Limits {
            global: 1,
            ..Limits::default()
        };
        // Job 0 waits for job 1 to run: with one slot, only if it lends it while waiting.
        let ran = Arc::new(tokio::sync::Notify::new());
        let notify = Arc::clone(&ran);
        let run = run_all(
            jobs(2, false),
            &limits,
            stop,
            tx,
            move |index, job, _, slot| {
                let ran = Arc::clone(&notify);
                async move {
                    if index == 0 {
                        slot.idle_while(ran.notified()).await;
                        // Taken back: nothing else runs now.
                        assert_eq!(slot.global.available_permits(), 0);
                    } else {
                        ran.notify_one();
                    }
                    ok(&job)
                }
            },
        );
        let results = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the waiting job kept its slot");
        assert!(results.iter().all(|r| r.status == Status::Synced));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lending_a_slot_while_holding_a_layout_does_not_deadlock() {
        let (_stop_tx, stop) = watch::channel(Stop::Run);
        let tx: OnFinished = Arc::new(|_, _| {});
        let limits = Limits {
            global: 1,
            ..Limits::default()
        };
        // Three tags of one repository into one OCI layout; each waits mid-way (a retry).
        let run = run_all(
            jobs(3, true),
            &limits,
            stop,
            tx,
            |_, job, _, slot| async move {
                slot.idle_while(tokio::time::sleep(Duration::from_millis(20)))
                    .await;
                ok(&job)
            },
        );
        let results = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("deadlocked");
        assert!(results.iter().all(|r| r.status == Status::Synced));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slot_taken_back_waits_behind_one_new_job_at_most() {
        let (_stop_tx, stop) = watch::channel(Stop::Run);
        let tx: OnFinished = Arc::new(|_, _| {});
        let limits = Limits {
            global: 1,
            ..Limits::default()
        };
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Job 0 lends its slot for a moment; jobs 1..5 are new. Job 1 runs in the lent slot
        // and job 2 may be in line already; job 0 comes next, not after all five.
        let seen = Arc::clone(&order);
        let run = run_all(
            jobs(6, false),
            &limits,
            stop,
            tx,
            move |index, job, _, slot| {
                let order = Arc::clone(&seen);
                async move {
                    if index == 0 {
                        slot.idle_while(tokio::time::sleep(Duration::from_millis(5)))
                            .await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    order.lock().unwrap().push(index);
                    ok(&job)
                }
            },
        );
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("stalled");
        let order = order.lock().unwrap().clone();
        let position = order.iter().position(|i| *i == 0).unwrap();
        assert!(
            position <= 2,
            "job 0 finished at position {position}: {order:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_wait_that_is_ready_at_once_keeps_the_slot() {
        let global = Arc::new(Semaphore::new(1));
        let slot = Slot::new(Arc::clone(&global));
        slot.hold(Arc::clone(&global).acquire_owned().await.unwrap());
        assert_eq!(slot.idle_while(async { 7 }).await, 7);
        assert!(slot.held.lock().unwrap().is_some());
        assert_eq!(global.available_permits(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stop_reports_unstarted_jobs_as_interrupted() {
        // Also a list longer than the jobs made tasks ahead of their start.
        for total in [5, QUEUED_AHEAD * 3] {
            stop_after_the_second_job(total).await;
        }
    }

    async fn stop_after_the_second_job(total: usize) {
        let (stop_tx, stop) = watch::channel(Stop::Run);
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tx: OnFinished = {
            let told = Arc::clone(&told);
            Arc::new(move |index, _| told.lock().unwrap().push(index))
        };
        let stop_tx = Arc::new(stop_tx);
        let limits = Limits {
            global: 1,
            ..Limits::default()
        };
        let sender = Arc::clone(&stop_tx);
        let results = run_all(
            jobs(total, false),
            &limits,
            stop,
            tx,
            move |index, job, _, _| {
                let stop_tx = Arc::clone(&sender);
                async move {
                    if index == 1 {
                        stop_tx.send(Stop::Graceful).unwrap();
                    }
                    ok(&job)
                }
            },
        )
        .await;
        let statuses: Vec<_> = results
            .iter()
            .map(|r| r.error.as_ref().map(|e| e.kind))
            .collect();
        let mut expected = vec![None, None];
        expected.resize(total, Some(FailureKind::Interrupted));
        assert_eq!(statuses, expected);
        let mut told = told.lock().unwrap().clone();
        told.sort_unstable();
        assert_eq!(
            told,
            (0..total).collect::<Vec<_>>(),
            "every job's result is told exactly once"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn jobs_behind_a_long_queue_at_a_limited_registry_go_on_meanwhile() {
        // Many more jobs for docker.io (one at a time) than are made tasks ahead, then a few
        // for another registry: those run beside docker.io's first, not after its last.
        let waiting = QUEUED_AHEAD * 3;
        let mut list = jobs(waiting, false);
        list.extend(jobs(4, false).into_iter().map(|mut job| {
            job.source = ImageRef::parse(&format!("quay.io/q/{}", job.source.path())).unwrap();
            job
        }));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tx: OnFinished = {
            let order = Arc::clone(&order);
            Arc::new(move |index, _| order.lock().unwrap().push(index))
        };
        let (_stop_tx, stop) = watch::channel(Stop::Run);
        let limits = Limits {
            global: 4,
            per_registry: [("docker.io".to_owned(), 1)].into(),
            ..Limits::default()
        };
        let results = run_all(list, &limits, stop, tx, |_, job, _, _| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            ok(&job)
        })
        .await;
        assert!(results.iter().all(|r| r.status == Status::Synced));
        let order = order.lock().unwrap().clone();
        let last_other = order.iter().position(|i| *i == waiting + 3).unwrap();
        assert!(
            last_other < 8,
            "another registry's jobs waited for docker.io's: finished in {order:?}"
        );
    }
}
