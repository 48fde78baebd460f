//! Running one child process the way a copy engine needs, knowing nothing of the engine: null
//! stdin, stdout and stderr drained concurrently (a full pipe would stall the child), the child in its own process group so
//! stopping it also stops anything it spawned (and anything left in the group when it exits is
//! killed), and a stop request that escalates from SIGTERM to SIGKILL after a grace period (or
//! at once when asked to stop *now*). The child also dies with ferry, however ferry ends: a
//! `kill -9` runs none of ferry's cleanup, and a skopeo left running would go on copying.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::watch;

/// One child process to run: a program, its arguments and what its environment adds. Secrets
/// go in files named here, never in the arguments. `Display` shell-quotes the command line
/// (environment names only, never values) for logs and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables set for the child on top of ferry's own environment.
    pub env: Vec<(String, OsString)>,
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, _) in &self.env {
            write!(f, "{name}=… ")?;
        }
        f.write_str(&shell_word(&self.program.to_string_lossy()))?;
        for arg in &self.args {
            write!(f, " {}", shell_word(arg))?;
        }
        Ok(())
    }
}

/// `word` quoted for a POSIX shell where it needs it.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How hard ferry is being asked to stop. Sent through a `watch` channel to every running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// Keep going.
    Run,
    /// Stop starting work; terminate running children (SIGTERM, grace period, SIGKILL).
    Graceful,
    /// Kill running children at once.
    Now,
}

/// ferry's own environment variables that carry credentials (read into its settings at
/// start): no child needs them, and none gets them. A child's environment is not argv, but it
/// is no place for a secret either: tools dump it in their debug output, and it outlives the
/// child in core dumps and `/proc/PID/environ`.
const SECRET_VARIABLES: [&str; 4] = [
    "FERRY_SRC_CREDS",
    "FERRY_DEST_CREDS",
    "FERRY_DEST_USERNAME",
    "FERRY_DEST_PASSWORD",
];

/// How long a child gets between SIGTERM and SIGKILL.
pub const GRACE_PERIOD: Duration = Duration::from_secs(10);
/// How long output is still read after the child's group is gone: a process that left the
/// group (setsid) may hold the pipes open forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What a finished child left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// True when the child was stopped because ferry was asked to stop.
    pub stopped: bool,
    /// True when the child was stopped because it ran past its deadline.
    pub timed_out: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("failed to start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed while waiting for `{command}`: {source}")]
    Wait {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// Which of a child's output pipes a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Runs `invocation` to completion, until `stop` asks it to end, or until `timeout` passes;
/// either way the whole process group is terminated.
#[cfg(test)]
pub async fn run(
    invocation: &Invocation,
    stop: watch::Receiver<Stop>,
    timeout: Option<Duration>,
) -> Result<Finished, ProcessError> {
    run_watched(invocation, stop, timeout, &|_, _| {}).await
}

/// [`run`], telling `on_line` each complete line of output as it arrives (the whole output is
/// still returned), so a caller can follow a long copy while it runs.
pub async fn run_watched(
    invocation: &Invocation,
    mut stop: watch::Receiver<Stop>,
    timeout: Option<Duration>,
    on_line: &(dyn Fn(Stream, &str) + Send + Sync),
) -> Result<Finished, ProcessError> {
    let mut command = Command::new(&invocation.program);
    for name in SECRET_VARIABLES {
        command.env_remove(name);
    }
    command
        .args(&invocation.args)
        .envs(invocation.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec; it allocates nothing and
    // calls only async-signal-safe functions (prctl, getppid).
    unsafe {
        command.pre_exec(move || die_with_parent(parent));
    }
    let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
        command: invocation.to_string(),
        source,
    })?;
    let pgid = child.id().map(|id| id as libc::pid_t);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let deadline = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let (output_closed, closed) = watch::channel(false);
    let wait = async {
        let (mut stopped, mut timed_out) = (false, false);
        let status = tokio::select! {
            () = exited_unreaped(pgid) => {
                // Whatever the leader left running in its group must not outlive it.
                signal_group(pgid, libc::SIGKILL);
                child.wait().await
            }
            () = wait_for(&mut stop, Stop::Graceful) => {
                stopped = true;
                terminate(pgid, &mut child, &mut stop).await
            }
            () = deadline => {
                timed_out = true;
                terminate(pgid, &mut child, &mut stop).await
            }
        };
        let closing = tokio::spawn(async move {
            tokio::time::sleep(OUTPUT_GRACE).await;
            let _ = output_closed.send(true);
        });
        (status, stopped, timed_out, closing)
    };
    let ((status, stopped, timed_out, closing), stdout, stderr) = tokio::join!(
        wait,
        drain(stdout, closed.clone(), Stream::Stdout, on_line),
        drain(stderr, closed, Stream::Stderr, on_line)
    );
    closing.abort();
    let status = status.map_err(|source| ProcessError::Wait {
        command: invocation.to_string(),
        source,
    })?;
    Ok(Finished {
        status,
        stdout,
        stderr,
        stopped,
        timed_out,
    })
}

/// In a freshly forked child: have the kernel SIGKILL it when its parent goes, and fail the
/// spawn if the parent (`parent`) is already gone, which it may be by the time this runs.
///
/// Linux sends that signal when the *thread* that forked the child ends, not the process:
/// ferry spawns from its current-thread runtime, on the main thread, which lives as long as
/// ferry does.
fn die_with_parent(parent: libc::pid_t) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl and getppid take no pointers here and have no preconditions.
        unsafe {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    Ok(())
}

/// Resolves once the stop level reaches `level` (never, if the sender is gone).
pub async fn wait_for(stop: &mut watch::Receiver<Stop>, level: Stop) {
    if stop.wait_for(|current| *current >= level).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn terminate(
    pgid: Option<libc::pid_t>,
    child: &mut tokio::process::Child,
    stop: &mut watch::Receiver<Stop>,
) -> std::io::Result<ExitStatus> {
    let now = *stop.borrow() >= Stop::Now;
    signal_group(pgid, if now { libc::SIGKILL } else { libc::SIGTERM });
    if !now {
        tokio::select! {
            // The leader exited; whatever it started must not linger in the group.
            () = exited_unreaped(pgid) => {}
            () = tokio::time::sleep(GRACE_PERIOD) => {}
            () = wait_for(stop, Stop::Now) => {}
        }
        signal_group(pgid, libc::SIGKILL);
    }
    // Reaped only now: while the leader is an unreaped zombie its pid, and so the group id
    // signalled above, cannot have been reused by an unrelated process.
    child.wait().await
}

/// Returns once the group leader `pgid` has exited, leaving it unreaped (`WNOWAIT`), so its
/// group can still be signalled safely. Polled every 20 ms: one `waitid` per running copy,
/// cheap next to a copy's seconds.
async fn exited_unreaped(pgid: Option<libc::pid_t>) {
    let Some(pid) = pgid.filter(|&p| p > 0) else {
        return std::future::pending().await;
    };
    loop {
        // SAFETY: waitid writes only into `info`, a zeroed siginfo_t we own.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let found = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            );
            // 0 with si_pid set: exited; an error (ECHILD): already reaped, nothing to wait for.
            found != 0 || info.si_pid() != 0
        };
        if exited {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal_group(pgid: Option<libc::pid_t>, signal: libc::c_int) {
    if let Some(pgid) = pgid.filter(|&p| p > 0) {
        // SAFETY: killpg has no memory-safety preconditions; a stale group id only yields ESRCH.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Reads `pipe` to its end, or until `closed` turns true with nothing left to read.
async fn drain<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    mut closed: watch::Receiver<bool>,
    stream: Stream,
    on_line: &(dyn Fn(Stream, &str) + Send + Sync),
) -> String {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let mut chunk = [0u8; 8192];
        // Where the line not yet told to `on_line` starts.
        let mut told = 0;
        loop {
            tokio::select! {
                biased;
                read = pipe.read(&mut chunk) => match read {
                    Ok(0) => break,
                    Ok(n) => {
                        bytes.extend_from_slice(&chunk[..n]);
                        while let Some(end) = bytes[told..].iter().position(|b| *b == b'\n') {
                            on_line(stream, &String::from_utf8_lossy(&bytes[told..told + end]));
                            told += end + 1;
                        }
                    }
                    // A read error just ends the capture; the exit status still tells.
                    Err(_) => break,
                },
                _ = closed.wait_for(|closed| *closed) => break,
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A short, human description of how a child ended: `exit code 1` or `killed by SIGTERM`.
pub fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by {}", signal_name(signal)),
        (None, None) => "unknown exit status".to_owned(),
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGTERM => "SIGTERM".to_owned(),
        libc::SIGKILL => "SIGKILL".to_owned(),
        libc::SIGINT => "SIGINT".to_owned(),
        libc::SIGSEGV => "SIGSEGV".to_owned(),
        libc::SIGABRT => "SIGABRT".to_owned(),
        other => format!("signal {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sh(script: &str) -> Invocation {
        Invocation {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: Vec::new(),
        }
    }

    /// No process left whose command line names `marker` (the test's grandchild).
    fn assert_gone(marker: &std::path::Path) {
        let out = std::process::Command::new("pgrep")
            .args(["-fa", &marker.display().to_string()])
            .output()
            .unwrap();
        let left = String::from_utf8_lossy(&out.stdout);
        assert!(left.is_empty(), "the grandchild survived: {left}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lines_are_told_as_they_come_and_still_returned() {
        let (_tx, rx) = watch::channel(Stop::Run);
        let seen = std::sync::Mutex::new(Vec::new());
        let on_line = |stream: Stream, line: &str| {
            seen.lock().unwrap().push(format!("{stream:?} {line}"));
        };
        let script = "echo one; sleep 0.1; printf 'two\\nthr'; sleep 0.1; echo ee; echo err >&2";
        let finished = run_watched(&sh(script), rx, None, &on_line).await.unwrap();
        assert_eq!(finished.stdout, "one\ntwo\nthree\n");
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(
            seen,
            ["Stderr err", "Stdout one", "Stdout three", "Stdout two"]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_environment_reaches_the_child_but_never_the_command_line() {
        let (_tx, rx) = watch::channel(Stop::Run);
        let mut invocation = sh("printf '%s' \"$FERRY_TEST_SECRET_DIR\"");
        invocation.env = vec![("FERRY_TEST_SECRET_DIR".into(), "/private/dir".into())];
        let finished = run(&invocation, rx, None).await.unwrap();
        assert_eq!(finished.stdout, "/private/dir");
        let shown = invocation.to_string();
        assert!(
            shown.starts_with("FERRY_TEST_SECRET_DIR=… /bin/sh -c"),
            "{shown}"
        );
        assert!(!shown.contains("/private/dir"), "{shown}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn captures_both_pipes_and_the_exit_code() {
        let (_tx, rx) = watch::channel(Stop::Run);
        // Enough output on both pipes to block a child whose pipes are read one after the other.
        let script =
            "i=0; while [ $i -lt 20000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; exit 3";
        let finished = run(&sh(script), rx, None).await.unwrap();
        assert_eq!(finished.status.code(), Some(3));
        assert!(finished.stdout.ends_with("out19999\n"));
        assert!(finished.stderr.ends_with("err19999\n"));
        assert!(!finished.stopped);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn stop_terminates_the_whole_process_group() {
        let (tx, rx) = watch::channel(Stop::Run);
        let marker = std::env::temp_dir().join(format!("ferry-grandchild-{}", std::process::id()));
        let script = format!("(sleep 30; touch {}) & sleep 30", marker.display());
        let task = tokio::spawn(async move { run(&sh(&script), rx, None).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(Stop::Graceful).unwrap();
        let finished = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("child should end promptly on SIGTERM")
            .unwrap()
            .unwrap();
        assert!(finished.stopped);
        assert_eq!(describe_status(&finished.status), "killed by SIGTERM");
        // The grandchild was in the same group and got the signal too.
        assert_gone(&marker);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_ignores_sigterm_is_killed_once_the_leader_is_gone() {
        let (tx, rx) = watch::channel(Stop::Run);
        let marker = std::env::temp_dir().join(format!("ferry-stubborn-{}", std::process::id()));
        // The grandchild ignores SIGTERM; the leader dies of it.
        let script = format!(
            "(trap '' TERM; sleep 31; touch {}) & sleep 31",
            marker.display()
        );
        let task = tokio::spawn(async move { run(&sh(&script), rx, None).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(Stop::Graceful).unwrap();
        // Well inside the grace period: the group is killed when the leader exits.
        let finished = tokio::time::timeout(GRACE_PERIOD / 2, task)
            .await
            .expect("the stop should not wait out the grace period")
            .unwrap()
            .unwrap();
        assert!(finished.stopped);
        assert_gone(&marker);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_the_child_left_running_is_killed_when_it_exits() {
        let (_tx, rx) = watch::channel(Stop::Run);
        let marker = std::env::temp_dir().join(format!("ferry-leftover-{}", std::process::id()));
        // The grandchild keeps stdout open: reading to its end would wait for it.
        let script = format!("(sleep 32; touch {}) & echo done", marker.display());
        let finished = tokio::time::timeout(Duration::from_secs(5), run(&sh(&script), rx, None))
            .await
            .expect("the run should end with its leader")
            .unwrap();
        assert_eq!(finished.status.code(), Some(0));
        assert_eq!(finished.stdout, "done\n");
        assert_gone(&marker);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn output_held_open_outside_the_group_is_read_for_a_moment_only() {
        let (_tx, rx) = watch::channel(Stop::Run);
        let marker = std::env::temp_dir().join(format!("ferry-escaped-{}", std::process::id()));
        // setsid: a new session, out of the group's reach, holding stdout.
        let script = format!(
            "setsid sh -c 'sleep 33; touch {}' & echo done",
            marker.display()
        );
        let finished = tokio::time::timeout(
            OUTPUT_GRACE + Duration::from_secs(3),
            run(&sh(&script), rx, None),
        )
        .await
        .expect("the run should end soon after its leader")
        .unwrap();
        assert_eq!(finished.stdout, "done\n");
        let _ = std::process::Command::new("pkill")
            .args(["-f", &marker.display().to_string()])
            .status();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_deadline_terminates_the_child() {
        let (_tx, rx) = watch::channel(Stop::Run);
        let started = std::time::Instant::now();
        let finished = run(
            &sh("echo started; sleep 30"),
            rx,
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap();
        assert!(finished.timed_out && !finished.stopped);
        assert_eq!(finished.stdout, "started\n");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        use std::os::unix::process::CommandExt as _;
        let parent = std::process::id() as libc::pid_t;
        let spawner = std::thread::spawn(move || {
            let mut command = std::process::Command::new("sleep");
            command.arg("35");
            // SAFETY: as in `run`.
            unsafe {
                command.pre_exec(move || die_with_parent(parent));
            }
            // Not waited for, not killed: only the spawning thread's end can stop it.
            command.spawn().unwrap().id() as libc::pid_t
        });
        let pid = spawner.join().unwrap();
        let mut status = 0;
        // SAFETY: waitpid writes only into `status`, an i32 we own.
        let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(reaped, pid);
        assert!(libc::WIFSIGNALED(status), "exited with {status}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn spawn_failure_names_the_command() {
        let (_tx, rx) = watch::channel(Stop::Run);
        let invocation = Invocation {
            program: PathBuf::from("/nonexistent/skopeo"),
            args: vec!["sync".into()],
            env: Vec::new(),
        };
        let err = run(&invocation, rx, None).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("failed to start `/nonexistent/skopeo sync`"),
            "{err}"
        );
    }
}
