//! What a run tells while it goes: one typed stream of events, in the order things happen.
//! Every output is a consumer of it (the result lines, the JSON report, the failed list, the
//! progress view); the run itself never prints.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::model::{FailureKind, ImageResult, Progress, Results, State, Summary};

/// One thing that happened in a run. `index` is the entry's place in the plan (list order,
/// whole repositories expanded), the same for every event of one entry.
#[derive(Debug, Clone)]
pub enum Event {
    /// Planning starts for this many entries (before whole repositories are expanded).
    RunStarted { entries: usize },
    /// An entry's state is known: what a sync will do with it.
    Planned {
        index: usize,
        state: State,
        source: String,
        target: String,
    },
    /// A registry answered a lookup with 429: nothing goes to it for `wait`.
    LookupThrottled { registry: String, wait: Duration },
    /// A copy attempt starts.
    AttemptStarted {
        index: usize,
        target: String,
        attempt: u32,
        /// The most attempts the retry policy allows.
        of: u32,
    },
    /// A copy got further.
    Progress { index: usize, progress: Progress },
    /// A copy attempt failed; `retry_in` is the wait before the next one, `None` when this was
    /// the last.
    AttemptFailed {
        index: usize,
        target: String,
        attempt: u32,
        kind: FailureKind,
        message: String,
        retry_in: Option<Duration>,
    },
    /// An entry waits, not holding its `-j` slot.
    Waiting {
        index: usize,
        target: String,
        reason: Wait,
    },
    /// An entry is done: synced, skipped or failed.
    Finished { index: usize, result: ImageResult },
    /// Every entry is done; `results` by plan order.
    RunFinished {
        results: std::sync::Arc<Results>,
        summary: Summary,
    },
}

/// Why an entry waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// For its turn at a registry that throttles copies.
    Turn { registry: String },
    /// Before attempt `next` of `of`, for `delay`.
    Retry { next: u32, of: u32, delay: Duration },
}

/// Where a run sends its events. Sending never fails the run: a consumer that is gone just
/// misses what follows.
#[derive(Debug, Clone)]
pub struct Events(mpsc::UnboundedSender<Event>);

impl Events {
    /// A sender and the stream its events arrive on.
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events(tx), rx)
    }

    pub fn send(&self, event: Event) {
        let _ = self.0.send(event);
    }
}
