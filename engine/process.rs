//! Running one command: spawning it through the configured shell in its own process group,
//! streaming its output line by line, enforcing a timeout, and stopping a group gracefully
//! then forcefully. See "Processes" in docs/design.md.
//!
//! Everything here is synchronous and thread-safe: `run` blocks the calling thread, which is
//! also the only thread that calls the callbacks. The shell's exit wakes that thread through
//! a pidfd polled with the pipes; only where there is no pidfd (Linux before 5.3) does a
//! helper thread wait for the exit instead.

use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// How long `run` keeps reading after the shell has exited, for output still in flight from
/// the rest of its group. Then it stops reading, even if a background process still holds
/// stdout or stderr open.
pub const DRAIN: Duration = Duration::from_millis(200);

/// How long a timed-out command's group gets between SIGTERM and SIGKILL.
pub const TIMEOUT_GRACE: Duration = Duration::from_secs(5);

/// The most stdout `capture` keeps.
pub const STDOUT_CAP: usize = 1 << 20;

/// The most stderr `capture` keeps.
pub const STDERR_CAP: usize = 64 << 10;

/// A line longer than this is delivered in pieces of this size: the one case of a torn line,
/// so that output without newlines cannot grow without bound.
const MAX_LINE: usize = 1 << 20;

/// While the pipes are open, how often `run` looks for the exit of the shell (the exit
/// itself cannot wake `poll`). Only matters when something else holds the pipes open.
const EXIT_POLL: Duration = Duration::from_millis(50);

/// While stopping a group, how often to look whether any of it is left.
const GROUP_POLL: Duration = Duration::from_millis(10);

/// After SIGKILL, how long `stop_group` waits for the group to be gone before returning.
const KILL_SETTLE: Duration = Duration::from_secs(1);

/// What to run: `shell` words (e.g. `["bash", "-eo", "pipefail", "-c"]`) + the script, in
/// `cwd`, with `env` added to the inherited environment.
#[derive(Clone, Copy)]
pub struct Spec<'a> {
    /// The shell and its options; the script is appended as the last argument.
    pub shell: &'a [String],
    /// The script text, passed to the shell as one argument.
    pub script: &'a str,
    /// The working directory.
    pub cwd: &'a Path,
    /// Variables added to (or overriding) the inherited environment.
    pub env: &'a [(String, String)],
    /// Stop the group after this long; the result is then `Exit::TimedOut`.
    pub timeout: Option<Duration>,
    /// True while someone else is stopping the group (Ctrl-C): the output is then read
    /// until the whole group is gone, not only for [`DRAIN`] after the shell exits, so a
    /// child still cleaning up is not killed by SIGPIPE (watchexec #960).
    pub stopped_from_outside: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The shell exited with this code.
    Code(i32),
    /// The shell was killed by this signal.
    Signal(i32),
    /// The timeout (the value given) passed and the group was stopped; how the shell then
    /// exited does not matter.
    TimedOut(Duration),
    /// The shell could not be started (or, rarely, not waited for); the message says why.
    SpawnFailed(String),
}

/// Runs to completion, calling `on_line` for every complete line of stdout/stderr as it
/// arrives, from the calling thread only. Lines are never torn (except past 1 MiB), carry no
/// `\n` (nor a `\r` before it), and are lossy UTF-8; a final line without newline is
/// delivered at the end. `on_start` receives the process group id (the shell's pid) before
/// any output.
///
/// Once the shell has exited, output is read for at most [`DRAIN`] more; then `run` returns
/// even if a background process of the group still holds stdout or stderr open. Such
/// leftovers keep running, and their writes to the closed pipes fail (SIGPIPE); stopping
/// them is the caller's business (`group_alive`, `stop_group` with the pgid from
/// `on_start`).
///
/// On timeout the group gets SIGTERM, then [`TIMEOUT_GRACE`] for every process of the group
/// to be gone (output is still delivered meanwhile), then SIGKILL.
pub fn run(
    spec: &Spec,
    on_start: &mut dyn FnMut(i32),
    on_line: &mut dyn FnMut(Stream, &str),
) -> Exit {
    let mut sink = Lines {
        on_line,
        stdout: LineBuf::new(MAX_LINE),
        stderr: LineBuf::new(MAX_LINE),
    };
    drive(spec, on_start, &mut sink)
}

/// Runs like [`run`] and captures stdout (lossy UTF-8, at most [`STDOUT_CAP`]) and stderr (at
/// most [`STDERR_CAP`]). A truncated stream ends with a line
/// `[devgraph: stdout truncated: kept K of N bytes]`.
pub fn capture(spec: &Spec) -> (Exit, String, String) {
    capture_group(spec, &mut |_| {})
}

/// [`capture`], telling `on_start` the process group the moment it exists.
pub fn capture_group(spec: &Spec, on_start: &mut dyn FnMut(i32)) -> (Exit, String, String) {
    let mut sink = Captured {
        stdout: Capped::new(STDOUT_CAP),
        stderr: Capped::new(STDERR_CAP),
    };
    let exit = drive(spec, on_start, &mut sink);
    (
        exit,
        sink.stdout.finish("stdout"),
        sink.stderr.finish("stderr"),
    )
}

/// Sends SIGTERM (and SIGCONT, so stopped members see it) to the group, waits up to `grace`
/// for every process of the group to be gone, then sends SIGKILL. Returns true if it had to
/// SIGKILL. A group that does not exist returns false at once.
///
/// "Gone" includes the shell: a group leader that has exited but was not yet waited for
/// still counts where zombies cannot be told apart (not on Linux). `run` waits for its shell
/// promptly, so calling this from another thread while `run` runs is fine.
pub fn stop_group(pgid: i32, grace: Duration) -> bool {
    if !terminate(pgid) {
        return false;
    }
    if wait_gone(pgid, Instant::now() + grace) {
        return false;
    }
    signal_group(pgid, Signal::KILL);
    wait_gone(pgid, Instant::now() + KILL_SETTLE);
    true
}

/// Whether any process of the group is alive: `kill(-pgid, 0)`, and on Linux, zombies do not
/// count (an orphan stays a zombie forever under an init that does not reap, as in some
/// containers). Ids below 2 are never a task's group and give false.
pub fn group_alive(pgid: i32) -> bool {
    let Some(pid) = group_pid(pgid) else {
        return false;
    };
    match rustix::process::test_kill_process_group(pid) {
        Err(Errno::SRCH) => false,
        // Ok, or EPERM: something is in the group; it may be only zombies.
        _ => live_member(pgid).unwrap_or(true),
    }
}

/// The pid for signalling group `pgid`; `None` for ids that would mean something else to
/// `kill` (0: our own group; 1: every process).
fn group_pid(pgid: i32) -> Option<Pid> {
    if pgid < 2 { None } else { Pid::from_raw(pgid) }
}

/// Sends `sig` to the group; false if the group does not exist.
fn signal_group(pgid: i32, sig: Signal) -> bool {
    group_pid(pgid)
        .is_some_and(|pid| rustix::process::kill_process_group(pid, sig) != Err(Errno::SRCH))
}

/// SIGTERM then SIGCONT (a stopped process acts on SIGTERM only once continued).
fn terminate(pgid: i32) -> bool {
    let exists = signal_group(pgid, Signal::TERM);
    if exists {
        signal_group(pgid, Signal::CONT);
    }
    exists
}

/// Polls until the group is gone (true) or `deadline` passes (false).
fn wait_gone(pgid: i32, deadline: Instant) -> bool {
    let mut step = Duration::from_millis(1);
    loop {
        if !group_alive(pgid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(step.min(deadline - now));
        step = (step * 2).min(GROUP_POLL);
    }
}

/// Whether `/proc` shows a member of the group that is not a zombie; `None` when `/proc`
/// cannot be read.
#[cfg(target_os = "linux")]
fn live_member(pgid: i32) -> Option<bool> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process may be gone by now; that is not a live member.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        if pgrp == Some(pgid) && !matches!(state, Some("Z" | "X")) {
            return Some(true);
        }
    }
    Some(false)
}

#[cfg(not(target_os = "linux"))]
fn live_member(_pgid: i32) -> Option<bool> {
    None
}

/// The process groups of live processes that run task `task` of the project at `root`
/// (their environment holds `DEVGRAPH_TASK=task` and `DEVGRAPH_ROOT=root`). This finds what
/// a killed devgraph left running even when it died before recording the group, and never
/// mistakes a recycled group id, or another project's task of the same name, for it.
#[cfg(target_os = "linux")]
pub fn task_groups(task: &str, root: &std::path::Path) -> Vec<i32> {
    let wanted = [
        format!("DEVGRAPH_TASK={task}"),
        format!("DEVGRAPH_ROOT={}", root.display()),
    ];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut groups: Vec<i32> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))?
                .to_string();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1)?.parse::<i32>().ok()?;
            if matches!(state, Some("Z" | "X")) || pgrp < 2 {
                return None;
            }
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let has = |var: &String| env.split(|b| *b == 0).any(|v| v == var.as_bytes());
            wanted.iter().all(has).then_some(pgrp)
        })
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// Without /proc there is no way to tell: nothing is found.
#[cfg(not(target_os = "linux"))]
pub fn task_groups(_task: &str, _root: &std::path::Path) -> Vec<i32> {
    Vec::new()
}

/// Where output goes: line splitting for `run`, capped buffers for `capture`.
trait Sink {
    fn data(&mut self, stream: Stream, bytes: &[u8]);
    /// The stream ended, or `drive` stopped reading it.
    fn end(&mut self, stream: Stream);
}

/// Where the timeout has brought a command.
#[derive(Clone, Copy)]
enum Phase {
    Running,
    /// SIGTERM sent; SIGKILL at `kill_at` unless the group is gone first.
    Stopping {
        kill_at: Instant,
    },
    /// The group is gone or was sent SIGKILL.
    Stopped,
}

/// Spawns, then reads output and watches the shell until it has exited and the output is
/// read (or the drain period is over). See `run` for the rules.
fn drive(spec: &Spec, on_start: &mut dyn FnMut(i32), sink: &mut dyn Sink) -> Exit {
    let mut child = match spawn(spec) {
        Ok(child) => child,
        Err(message) => return Exit::SpawnFailed(message),
    };
    // process_group(0) makes the shell the leader of a new group: pgid == pid.
    let pgid = i32::try_from(child.id()).unwrap_or_else(|_| unreachable!("BUG: pid over i32"));
    on_start(pgid);
    let exit_seen = ExitWatch::new(pgid);
    let mut pipes = Pipes::new(&mut child);
    let deadline = spec.timeout.map(|t| Instant::now() + t);
    let mut phase = Phase::Running;
    let mut status: Option<io::Result<ExitStatus>> = None;
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // Only this thread reaps the shell, and only after the last signal it sends: the
        // pgid cannot be reused under our feet while we may still signal it.
        if status.is_none() {
            status = child.try_wait().transpose();
        }
        phase = match phase {
            Phase::Running if status.is_none() && deadline.is_some_and(|d| now >= d) => {
                terminate(pgid);
                Phase::Stopping {
                    kill_at: now + TIMEOUT_GRACE,
                }
            }
            Phase::Stopping { .. } if status.is_some() && !group_alive(pgid) => Phase::Stopped,
            Phase::Stopping { kill_at } if now >= kill_at => {
                signal_group(pgid, Signal::KILL);
                Phase::Stopped
            }
            phase => phase,
        };
        let stopping = matches!(phase, Phase::Stopping { .. })
            || (spec.stopped_from_outside.is_some_and(|f| f()) && group_alive(pgid));
        if status.is_some() && !stopping {
            let until = *drain_until.get_or_insert(now + DRAIN);
            if pipes.all_closed() || now >= until {
                break;
            }
        }
        // Sleep until the next thing to look at.
        let mut wake = drain_until.unwrap_or(now + Duration::from_secs(3600));
        if status.is_none() {
            wake = wake.min(now + EXIT_POLL);
            if let (Phase::Running, Some(deadline)) = (phase, deadline) {
                wake = wake.min(deadline);
            }
        }
        if let Phase::Stopping { kill_at } = phase {
            wake = wake.min(kill_at).min(now + GROUP_POLL);
        }
        let timeout = wake.saturating_duration_since(now);
        // While the shell runs, its exit wakes us at once (through the pidfd, which stays
        // readable afterwards, so it is polled only until the shell is waited for).
        let exit_fd = exit_seen.fd().filter(|_| status.is_none());
        if !pipes.all_closed() {
            pipes.read_some(timeout, exit_fd, sink);
        } else if status.is_none() {
            exit_seen.wait(timeout);
        } else {
            thread::sleep(timeout);
        }
    }
    pipes.close(sink);
    if let (false, Some(timeout)) = (matches!(phase, Phase::Running), spec.timeout) {
        return Exit::TimedOut(timeout);
    }
    match status {
        Some(Ok(status)) => exit_of(status),
        Some(Err(e)) => Exit::SpawnFailed(format!("cannot wait for the shell: {e}")),
        None => unreachable!("BUG: the loop ends only after the shell was waited for"),
    }
}

fn spawn(spec: &Spec) -> Result<Child, String> {
    let (program, args) = spec.shell.split_first().ok_or("the shell is empty")?;
    Command::new(program)
        .args(args)
        .arg(spec.script)
        .current_dir(spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start `{program}` in {}: {e}", spec.cwd.display()))
}

/// How `drive` learns that the shell exited, without reaping it (only `drive` reaps): a
/// pidfd, readable once the process has exited, polled with the pipes; or, where the kernel
/// has no pidfd, a thread that waits with `waitid(WNOWAIT)` and then says so.
enum ExitWatch {
    PidFd(OwnedFd),
    Thread(Receiver<()>),
}

impl ExitWatch {
    fn new(pid: i32) -> ExitWatch {
        let pidfd = Pid::from_raw(pid).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        match pidfd {
            Some(fd) => ExitWatch::PidFd(fd),
            None => ExitWatch::Thread(watch_exit(pid)),
        }
    }

    /// The fd to poll for the exit, if there is one.
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            ExitWatch::PidFd(fd) => Some(fd.as_fd()),
            ExitWatch::Thread(_) => None,
        }
    }

    /// Waits up to `timeout` for the exit (returns at once if it has happened).
    fn wait(&self, timeout: Duration) {
        match self {
            ExitWatch::PidFd(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                if !matches!(
                    rustix::event::poll(&mut fds, Some(&timespec(timeout))),
                    Ok(_) | Err(Errno::INTR)
                ) {
                    // Not expected for one pidfd; do not spin.
                    thread::sleep(timeout.min(EXIT_POLL));
                }
            }
            ExitWatch::Thread(exit_seen) => match exit_seen.recv_timeout(timeout) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                // The watcher could not wait; fall back to polling.
                Err(RecvTimeoutError::Disconnected) => thread::sleep(timeout.min(EXIT_POLL)),
            },
        }
    }
}

/// A `Timespec` for `poll`; never fails for a Duration that fits, else a short wait.
fn timespec(timeout: Duration) -> Timespec {
    Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    })
}

/// A thread that waits for `pid` to exit without reaping it (WNOWAIT, so that only `drive`
/// reaps), then says so. The thread ends when the process exits. Only used without pidfds.
fn watch_exit(pid: i32) -> Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let watcher = move || {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
        if let Some(pid) = Pid::from_raw(pid) {
            while let Err(Errno::INTR) = rustix::process::waitid(WaitId::Pid(pid), options) {}
        }
        // `drive` may be gone already.
        let _ = tx.send(());
    };
    // Without the thread, `drive` polls (see `Disconnected` there).
    let _ = thread::Builder::new()
        .name("devgraph-wait".into())
        .spawn(watcher);
    rx
}

fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => unreachable!("BUG: a waited-for process has a code or a signal"),
    }
}

/// The read ends of stdout and stderr; `None` once closed.
struct Pipes {
    files: [(Stream, Option<File>); 2],
    buf: Vec<u8>,
}

impl Pipes {
    fn new(child: &mut Child) -> Pipes {
        let stdout = child.stdout.take().map(|p| File::from(OwnedFd::from(p)));
        let stderr = child.stderr.take().map(|p| File::from(OwnedFd::from(p)));
        Pipes {
            files: [(Stream::Stdout, stdout), (Stream::Stderr, stderr)],
            buf: vec![0; 64 << 10],
        }
    }

    fn all_closed(&self) -> bool {
        self.files.iter().all(|(_, f)| f.is_none())
    }

    /// Waits up to `timeout` for output (or for `exit` to become readable), then reads once
    /// from each ready pipe.
    fn read_some(&mut self, timeout: Duration, exit: Option<BorrowedFd<'_>>, sink: &mut dyn Sink) {
        let mut ready = [false; 2];
        {
            let open: Vec<(usize, &File)> = self
                .files
                .iter()
                .enumerate()
                .filter_map(|(i, (_, f))| f.as_ref().map(|f| (i, f)))
                .collect();
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|(_, f)| PollFd::new(*f, PollFlags::IN))
                .collect();
            if let Some(exit) = &exit {
                fds.push(PollFd::new(exit, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, Some(&timespec(timeout))) {
                Ok(_) | Err(Errno::INTR) => {}
                // Not expected for two pipes; do not spin, and try again.
                Err(_) => {
                    thread::sleep(timeout.min(GROUP_POLL));
                    return;
                }
            }
            for ((i, _), fd) in open.iter().zip(&fds) {
                ready[*i] = !fd.revents().is_empty();
            }
        }
        for (i, ready) in ready.into_iter().enumerate() {
            let (stream, file) = &mut self.files[i];
            let Some(reader) = file.as_mut().filter(|_| ready) else {
                continue;
            };
            match reader.read(&mut self.buf) {
                Ok(0) => {
                    *file = None;
                    sink.end(*stream);
                }
                Ok(n) => sink.data(*stream, &self.buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                Err(_) => {
                    *file = None;
                    sink.end(*stream);
                }
            }
        }
    }

    /// Stops reading: what is still open is ended and closed.
    fn close(&mut self, sink: &mut dyn Sink) {
        for (stream, file) in &mut self.files {
            if file.take().is_some() {
                sink.end(*stream);
            }
        }
    }
}

/// `run`'s sink: splits each stream into lines for the callback.
struct Lines<'f> {
    on_line: &'f mut dyn FnMut(Stream, &str),
    stdout: LineBuf,
    stderr: LineBuf,
}

impl Sink for Lines<'_> {
    fn data(&mut self, stream: Stream, bytes: &[u8]) {
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buf.push(bytes, &mut |line| (self.on_line)(stream, line));
    }

    fn end(&mut self, stream: Stream) {
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buf.finish(&mut |line| (self.on_line)(stream, line));
    }
}

/// The incomplete last line of one stream.
struct LineBuf {
    buf: Vec<u8>,
    max: usize,
}

impl LineBuf {
    fn new(max: usize) -> LineBuf {
        LineBuf {
            buf: Vec::new(),
            max,
        }
    }

    /// Adds `bytes` and emits every line they complete.
    fn push(&mut self, bytes: &[u8], emit: &mut dyn FnMut(&str)) {
        // The kept part holds no newline, so only the new bytes need searching.
        let mut search_from = self.buf.len();
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.buf[search_from..].iter().position(|&b| b == b'\n') {
            let end = search_from + pos;
            emit_line(&self.buf[start..end], emit);
            start = end + 1;
            search_from = start;
        }
        self.buf.drain(..start);
        while self.buf.len() > self.max {
            let cut = char_boundary(&self.buf, self.max);
            emit(&String::from_utf8_lossy(&self.buf[..cut]));
            self.buf.drain(..cut);
        }
    }

    /// Emits what is left as a last line.
    fn finish(&mut self, emit: &mut dyn FnMut(&str)) {
        if !self.buf.is_empty() {
            emit_line(&std::mem::take(&mut self.buf), emit);
        }
    }
}

fn emit_line(line: &[u8], emit: &mut dyn FnMut(&str)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    emit(&String::from_utf8_lossy(line));
}

/// The largest cut at or below `at` (and above 0) that does not split a UTF-8 sequence;
/// `at` itself if the bytes there are not UTF-8 anyway. Needs `at < bytes.len()`: the byte
/// after the cut tells whether it splits a sequence.
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    (at.saturating_sub(3).max(1)..=at)
        .rev()
        .find(|&i| bytes[i] & 0xC0 != 0x80)
        .unwrap_or(at)
}

/// `capture`'s sink.
struct Captured {
    stdout: Capped,
    stderr: Capped,
}

impl Sink for Captured {
    fn data(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.push(bytes),
            Stream::Stderr => self.stderr.push(bytes),
        }
    }

    fn end(&mut self, _: Stream) {}
}

/// The first `cap` bytes of a stream (plus a few, to cut at a char boundary), and how many
/// there were in all.
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
    total: u64,
}

impl Capped {
    fn new(cap: usize) -> Capped {
        Capped {
            bytes: Vec::new(),
            cap,
            total: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = (self.cap + 3).saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    fn finish(self, name: &str) -> String {
        if self.bytes.len() <= self.cap {
            return String::from_utf8_lossy(&self.bytes).into_owned();
        }
        let kept = char_boundary(&self.bytes, self.cap);
        let mut text = String::from_utf8_lossy(&self.bytes[..kept]).into_owned();
        let total = self.total;
        text.push_str(&format!(
            "\n[devgraph: {name} truncated: kept {kept} of {total} bytes]"
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn bash() -> Vec<String> {
        ["bash", "-eo", "pipefail", "-c"].map(String::from).to_vec()
    }

    fn spec<'a>(shell: &'a [String], script: &'a str, cwd: &'a Path) -> Spec<'a> {
        Spec {
            shell,
            script,
            cwd,
            env: &[],
            timeout: None,
            stopped_from_outside: None,
        }
    }

    /// Runs `spec`, returning the exit, the pgid and every line.
    fn collect(spec: &Spec) -> (Exit, i32, Vec<(Stream, String)>) {
        let mut pgid = 0;
        let mut lines = Vec::new();
        let exit = run(spec, &mut |g| pgid = g, &mut |stream, line| {
            lines.push((stream, line.to_owned()))
        });
        (exit, pgid, lines)
    }

    fn only(lines: &[(Stream, String)], stream: Stream) -> Vec<&str> {
        (lines.iter())
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    /// Polls `cond` until it holds or 5 s pass.
    fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn exit_codes_are_reported() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        assert_eq!(
            collect(&spec(&shell, "exit 3", dir.path())).0,
            Exit::Code(3)
        );
        assert_eq!(collect(&spec(&shell, "true", dir.path())).0, Exit::Code(0));
        assert_eq!(collect(&spec(&shell, "false", dir.path())).0, Exit::Code(1));
    }

    #[test]
    fn signal_death_is_reported() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let exit = collect(&spec(&shell, "kill -KILL $$", dir.path())).0;
        assert_eq!(exit, Exit::Signal(9));
    }

    #[test]
    fn lines_of_both_streams_arrive_in_order_per_stream() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done";
        let (exit, _, lines) = collect(&spec(&shell, script, dir.path()));
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(only(&lines, Stream::Stdout), ["out1", "out2", "out3"]);
        assert_eq!(only(&lines, Stream::Stderr), ["err1", "err2", "err3"]);
    }

    #[test]
    fn final_line_without_newline_is_delivered() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let script = r"printf 'a\r\n\nb'; printf 'x\n\xffy' >&2";
        let (_, _, lines) = collect(&spec(&shell, script, dir.path()));
        assert_eq!(only(&lines, Stream::Stdout), ["a", "", "b"]);
        assert_eq!(only(&lines, Stream::Stderr), ["x", "\u{FFFD}y"]);
    }

    #[test]
    fn the_shell_leads_its_own_group_and_on_start_comes_first() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let events = std::cell::RefCell::new(Vec::new());
        let exit = run(
            &spec(&shell, "echo $$; ps -o pgid= -p $$", dir.path()),
            &mut |pgid| events.borrow_mut().push(format!("start {pgid}")),
            &mut |_, line| events.borrow_mut().push(line.trim().to_owned()),
        );
        let events = events.into_inner();
        assert_eq!(exit, Exit::Code(0));
        let pgid = events[0].strip_prefix("start ").unwrap().to_owned();
        assert_eq!(events[1..], [pgid.clone(), pgid]);
        assert_ne!(
            events[1],
            rustix::process::getpgrp().as_raw_nonzero().to_string()
        );
    }

    #[test]
    fn stdin_is_dev_null() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let (exit, _, lines) = collect(&spec(&shell, "cat; echo end", dir.path()));
        assert_eq!(
            (exit, only(&lines, Stream::Stdout)),
            (Exit::Code(0), vec!["end"])
        );
    }

    #[test]
    fn env_vars_are_passed_and_the_rest_inherited() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let env = [("DG_TEST_VAR".to_owned(), "two words".to_owned())];
        let spec = Spec {
            env: &env,
            ..spec(
                &shell,
                r#"echo "$DG_TEST_VAR"; echo "${PATH:+path}""#,
                dir.path(),
            )
        };
        let (_, _, lines) = collect(&spec);
        assert_eq!(only(&lines, Stream::Stdout), ["two words", "path"]);
    }

    #[test]
    fn cwd_is_honoured() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let (_, _, lines) = collect(&spec(&shell, "pwd -P", dir.path()));
        let expected = dir.path().canonicalize().unwrap();
        assert_eq!(only(&lines, Stream::Stdout), [expected.to_str().unwrap()]);
    }

    #[test]
    fn spawn_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ["/nonexistent/shell".to_owned(), "-c".to_owned()];
        let mut started = false;
        let exit = run(
            &spec(&missing, "true", dir.path()),
            &mut |_| started = true,
            &mut |_, _| {},
        );
        assert!(
            matches!(&exit, Exit::SpawnFailed(m) if m.contains("/nonexistent/shell")),
            "{exit:?}"
        );
        assert!(!started);
        let exit = collect(&spec(&[], "true", dir.path())).0;
        assert!(matches!(exit, Exit::SpawnFailed(_)), "{exit:?}");
    }

    #[test]
    fn timeout_stops_the_whole_group_and_keeps_the_last_words() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let script = "trap 'echo bye; exit 0' TERM; sleep 30 & echo up; wait";
        let timeout = Duration::from_millis(300);
        let spec = Spec {
            timeout: Some(timeout),
            ..spec(&shell, script, dir.path())
        };
        let started = Instant::now();
        let (exit, pgid, lines) = collect(&spec);
        assert_eq!(exit, Exit::TimedOut(timeout));
        assert_eq!(only(&lines, Stream::Stdout), ["up", "bye"]);
        // The grandchild `sleep` is gone too, and it took SIGTERM, not the grace period.
        assert!(!group_alive(pgid));
        assert!(started.elapsed() < TIMEOUT_GRACE, "{:?}", started.elapsed());
    }

    #[test]
    fn a_background_holder_of_stdout_does_not_hang() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let started = Instant::now();
        let (exit, pgid, lines) = collect(&spec(&shell, "sleep 30 & echo done", dir.path()));
        let took = started.elapsed();
        assert_eq!(
            (exit, only(&lines, Stream::Stdout)),
            (Exit::Code(0), vec!["done"])
        );
        assert!(took < Duration::from_secs(2), "took {took:?}");
        // The holder is left to the caller.
        assert!(group_alive(pgid));
        assert!(!stop_group(pgid, Duration::from_secs(5)));
        assert!(!group_alive(pgid));
    }

    #[test]
    fn capture_keeps_both_streams_and_says_when_it_truncates() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let (exit, out, err) = capture(&spec(&shell, "echo out; echo err >&2; exit 4", dir.path()));
        assert_eq!(
            (exit, out.as_str(), err.as_str()),
            (Exit::Code(4), "out\n", "err\n")
        );

        let script =
            "head -c 1100000 /dev/zero | tr '\\0' a; head -c 70000 /dev/zero | tr '\\0' b >&2";
        let (exit, out, err) = capture(&spec(&shell, script, dir.path()));
        assert_eq!(exit, Exit::Code(0));
        let (kept, note) = out.split_at(STDOUT_CAP);
        assert!(kept.bytes().all(|b| b == b'a'));
        assert_eq!(
            note,
            "\n[devgraph: stdout truncated: kept 1048576 of 1100000 bytes]"
        );
        assert!(err.ends_with("\n[devgraph: stderr truncated: kept 65536 of 70000 bytes]"));
    }

    #[test]
    fn capture_does_not_hang_on_a_background_holder() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let started = Instant::now();
        let (exit, out, _) = capture(&spec(&shell, "sleep 30 & echo $!", dir.path()));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(exit, Exit::Code(0));
        // The holder is the `sleep`; its group is the shell's.
        let holder: i32 = out.trim().parse().unwrap();
        let pgid = rustix::process::getpgid(Pid::from_raw(holder))
            .unwrap()
            .as_raw_nonzero()
            .get();
        stop_group(pgid, Duration::from_secs(5));
        assert!(!group_alive(pgid));
    }

    /// watchexec #960: the shell dies at SIGTERM while its child is still cleaning up; the
    /// group is gone only when the child is done, and no SIGKILL may cut the cleanup short.
    #[test]
    fn stop_group_waits_for_the_whole_group() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let script = r#"sh -c 'trap "sleep 0.3; touch cleaned; exit 0" TERM; touch ready; while :; do sleep 0.05; done' & wait"#;
        let (pgid, runner) = run_in_background(shell, script, dir.path());
        eventually("the trap", || dir.path().join("ready").exists());
        assert!(!stop_group(pgid, Duration::from_secs(5)), "had to SIGKILL");
        assert!(dir.path().join("cleaned").exists());
        assert!(!group_alive(pgid));
        assert_eq!(runner.join().unwrap(), Exit::Signal(15));
    }

    #[test]
    fn stop_group_kills_what_ignores_sigterm() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let script = "trap '' TERM; (touch ready; while :; do sleep 0.05; done) & wait";
        let (pgid, runner) = run_in_background(shell, script, dir.path());
        eventually("the subshell", || dir.path().join("ready").exists());
        assert!(stop_group(pgid, Duration::from_millis(200)));
        assert!(!group_alive(pgid));
        assert_eq!(runner.join().unwrap(), Exit::Signal(9));
    }

    #[test]
    fn missing_groups_are_neither_alive_nor_stopped() {
        let (shell, dir) = (bash(), tempfile::tempdir().unwrap());
        let (exit, pgid, _) = collect(&spec(&shell, "true", dir.path()));
        assert_eq!(exit, Exit::Code(0));
        assert!(!group_alive(pgid));
        assert!(!stop_group(pgid, Duration::from_secs(5)));
        for pgid in [-1, 0, 1] {
            assert!(!group_alive(pgid));
            assert!(!stop_group(pgid, Duration::from_secs(5)));
        }
    }

    /// Both ways of learning of the exit wake the waiter as soon as the process exits, and
    /// neither reaps it.
    #[test]
    fn an_exit_watch_wakes_at_the_exit_without_reaping() {
        for use_thread in [false, true] {
            let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
            let pid = child.id() as i32;
            let watch = if use_thread {
                ExitWatch::Thread(watch_exit(pid))
            } else {
                ExitWatch::new(pid)
            };
            assert_eq!(watch.fd().is_some(), !use_thread);
            let started = Instant::now();
            // Not yet exited: the wait times out.
            watch.wait(Duration::from_millis(20));
            assert!(child.try_wait().unwrap().is_none());
            // Exited: the wait ends long before its timeout, and the child is still there
            // to be reaped.
            watch.wait(Duration::from_secs(10));
            let took = started.elapsed();
            assert!(took < Duration::from_secs(5), "took {took:?}");
            assert!(child.wait().unwrap().success());
        }
    }

    #[test]
    fn long_lines_are_cut_at_a_char_boundary() {
        let mut lines = Vec::new();
        let mut buf = LineBuf::new(4);
        buf.push("abcé".as_bytes(), &mut |l| lines.push(l.to_owned()));
        buf.push("fg\nh".as_bytes(), &mut |l| lines.push(l.to_owned()));
        buf.finish(&mut |l| lines.push(l.to_owned()));
        assert_eq!(lines, ["abc", "éfg", "h"]);
    }

    /// Starts `script` under `run` on another thread; returns its pgid and the thread.
    fn run_in_background(
        shell: Vec<String>,
        script: &'static str,
        cwd: &Path,
    ) -> (i32, thread::JoinHandle<Exit>) {
        let cwd = cwd.to_owned();
        let (tx, rx) = mpsc::channel();
        let runner = thread::spawn(move || {
            let spec = spec(&shell, script, &cwd);
            run(&spec, &mut |pgid| tx.send(pgid).unwrap(), &mut |_, _| {})
        });
        (rx.recv().unwrap(), runner)
    }
}
