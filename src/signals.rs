//! The signals that stop a run: SIGINT, SIGTERM, and SIGHUP too, so a closed terminal or SSH
//! session does not skip the cleanup (but not when SIGHUP was ignored when ferry started, as
//! under `nohup`). The first asks the run to stop gracefully and sets the exit code, a second
//! one to stop now.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error;
use crate::exec::{self, Stop};

/// Signal handling for one run: registered when made, before any work starts.
pub struct Watch {
    task: JoinHandle<()>,
    code: Arc<AtomicU8>,
}

impl Watch {
    /// Starts watching; the stop requests go out on `stop`, and `say` tells the user (after
    /// the stop went out: the terminal may be gone).
    pub fn start(stop: watch::Sender<Stop>, say: fn(String)) -> Watch {
        let code = Arc::new(AtomicU8::new(0));
        // Registered here, before any work starts, not when the watching task first runs.
        let handlers = Signals::install();
        let task = tokio::spawn(watch_signals(handlers, stop, Arc::clone(&code), say));
        Watch { task, code }
    }

    /// The exit code of the first signal (128 + N), if one came.
    pub fn code(&self) -> Option<u8> {
        match self.code.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The signal streams, SIGHUP only when it is not ignored.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Option<Signal>,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: match ignored(libc::SIGHUP) {
                true => None,
                false => Some(signal(SignalKind::hangup())?),
            },
        })
    }

    /// The next signal, as the exit code it stands for.
    async fn next(&mut self) -> u8 {
        let hangup = async {
            match self.hangup.as_mut() {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.interrupt.recv() => error::INTERRUPTED,
            _ = self.terminate.recv() => error::TERMINATED,
            _ = hangup => error::HUNG_UP,
        }
    }
}

/// Whether `signal` is set to be ignored (as `nohup` does for SIGHUP).
fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `current`,
    // a zeroed struct we own.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// First signal: stop gracefully and remember the exit code; a second one: stop now. The
/// stop goes out before anything is printed: the terminal may be gone (SIGHUP).
async fn watch_signals(
    handlers: std::io::Result<Signals>,
    stop: watch::Sender<Stop>,
    code: Arc<AtomicU8>,
    say: fn(String),
) {
    let Ok(mut signals) = handlers else {
        return;
    };
    let first = signals.next().await;
    code.store(first, Ordering::SeqCst);
    let _ = stop.send(Stop::Graceful);
    say(format!(
        "ferry: stopping: no new images start; running copies get {}s to end (signal again to \
         stop at once)",
        exec::GRACE_PERIOD.as_secs()
    ));
    signals.next().await;
    let _ = stop.send(Stop::Now);
    say("ferry: stopping now".to_owned());
}
