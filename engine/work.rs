//! The scheduler: which task runs when. Each wanted task moves through one lifecycle
//! (waiting → ready → running → done), changed only by [`Scheduler::set`]. Ready tasks start,
//! up to `-j` at a time, longest remaining critical path first. A task is handed to the
//! [`Runner`] only when all its deps are done, so it is decided (and its probe run) in the
//! world they left. Runners work on threads and report back through a channel; everything
//! the user sees is printed from the scheduler's thread. See "Running" in docs/design.md.

use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use crate::fingerprint::{DepEntry, Hash};
use crate::graph::{Graph, TaskId};
use crate::plan::Cause;
use crate::process::Stream;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Re-run the named targets even if they are up to date.
    pub force: bool,
    /// Re-run every wanted task.
    pub force_all: bool,
    /// Run the targets without their deps.
    pub only: bool,
    /// After a failure, keep running what does not depend on it.
    pub keep_going: bool,
    /// How many tasks run at once.
    pub jobs: usize,
    /// What the reports' times count from (default: when `run` starts); `watch` sets it to
    /// compare them with when file events arrived.
    pub began: Option<std::time::Instant>,
}

/// How a task ended in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TaskResult {
    Ran,
    UpToDate,
    Failed {
        exit: String,
        log: Option<String>,
    },
    TimedOut {
        after_ms: u64,
        log: Option<String>,
    },
    /// Not run because a dep failed, was skipped, or was interrupted.
    Skipped {
        dep: String,
    },
    /// Not started because the run stopped after a failure or an interrupt.
    Cancelled,
    /// Stopped by Ctrl-C or SIGTERM while it ran.
    Interrupted {
        log: Option<String>,
    },
}

impl TaskResult {
    /// Whether the run failed because of this task.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            TaskResult::Failed { .. } | TaskResult::TimedOut { .. }
        )
    }

    /// Whether a runner decided the task in this run (and ran it when it drifted): not
    /// skipped, cancelled or interrupted.
    pub fn was_decided(&self) -> bool {
        matches!(
            self,
            TaskResult::Ran
                | TaskResult::UpToDate
                | TaskResult::Failed { .. }
                | TaskResult::TimedOut { .. }
        )
    }

    /// Whether the task ended up to date (it ran, or had no need to).
    pub fn succeeded(&self) -> bool {
        matches!(self, TaskResult::Ran | TaskResult::UpToDate)
    }
}

/// One task's part in the run, for the summary and the timeline.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: TaskId,
    pub result: TaskResult,
    pub causes: Vec<Cause>,
    /// How long its command ran (zero when it did not run).
    pub duration: Duration,
    /// When the scheduler handed it to a runner, and when it was done, from the start of
    /// the run (equal for tasks that never started).
    pub started: Duration,
    pub ended: Duration,
}

/// What a runner reports while it works on a task.
#[derive(Debug)]
pub enum Event {
    /// The task is drifted and its command starts now.
    Started {
        causes: Vec<Cause>,
    },
    /// The task's process group, for stopping it.
    Group(i32),
    Line(Stream, String),
    Note(String),
}

/// What a runner found and did for one task.
#[derive(Debug)]
pub struct Finished {
    pub result: TaskResult,
    pub causes: Vec<Cause>,
    pub duration: Duration,
    /// What dependents see, for a success.
    pub identity: Option<Hash>,
}

/// Decides one ready task and, when drifted, runs it and commits the result. Called on
/// worker threads; `events` goes back to the scheduler.
pub trait Runner: Sync {
    fn run(
        &self,
        id: TaskId,
        deps: Vec<DepEntry>,
        forced: bool,
        events: &dyn Fn(Event),
    ) -> Finished;

    /// How long the task took last time, to run the longest chains first.
    fn expected(&self, _id: TaskId) -> Option<Duration> {
        None
    }
}

/// What the run tells the user as it goes.
pub trait Reporter {
    /// A drifted task is about to run.
    fn started(&mut self, task: &crate::graph::Task, causes: &[Cause]);
    /// A line of a running task's output.
    fn line(&mut self, task: &crate::graph::Task, stream: Stream, text: &str);
    /// A task finished (or was found up to date, skipped or cancelled).
    fn finished(&mut self, task: &crate::graph::Task, report: &Report);
    /// A note about the run itself.
    fn note(&mut self, text: &str);
    /// A running task was stopped because its inputs changed; it starts again once its
    /// deps are done (`watch`).
    fn restarted(&mut self, task: &crate::graph::Task) {
        self.note(&format!(
            "{}: its inputs changed while it ran; starting it again",
            task.name
        ));
    }
}

/// Ctrl-C / SIGTERM as the scheduler sees them: how many have arrived. The first stops the
/// run gracefully, the second forcefully.
pub trait Interrupts: Sync {
    fn count(&self) -> usize;

    /// Requests to stop single running tasks and start them again (`watch`); none in `run`.
    fn restarts(&self) -> Option<&Restarts> {
        None
    }

    /// Whether `id` is being stopped from outside, by Ctrl-C or for a restart: its runner
    /// ends it as interrupted and does not retry it.
    fn stopping(&self, id: TaskId) -> bool {
        self.count() > 0 || self.restarts().is_some_and(|r| r.stopping(id))
    }
}

/// Tasks to stop and start again because their inputs changed while they ran (`watch`).
/// The watcher requests; the scheduler takes the requests, stops the tasks that are running
/// and queues them again once they ended; the others are left alone (they are decided
/// later, or in the next round).
#[derive(Debug, Default)]
pub struct Restarts {
    inner: std::sync::Mutex<RestartState>,
}

#[derive(Debug, Default)]
struct RestartState {
    requested: Vec<TaskId>,
    stopping: std::collections::HashSet<TaskId>,
    /// Restarts so far, per task (at most [`Restarts::MAX`] each).
    times: HashMap<TaskId, u32>,
}

impl Restarts {
    /// Asks for `ids` to be restarted if they are running.
    pub fn request(&self, ids: impl IntoIterator<Item = TaskId>) {
        self.lock().requested.extend(ids);
    }

    /// Forgets every request (between rounds: the task ids may belong to another graph).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.requested.clear();
        state.stopping.clear();
        state.times.clear();
    }

    /// How often one task restarts before the requests are cleared (between rounds). A
    /// later change lets it finish; the next round decides it again. So a task that
    /// keeps writing a file it reads (an undeclared output) cannot restart forever.
    pub const MAX: u32 = 1;

    /// Marks `id` as being stopped for a restart, unless it restarted enough already.
    fn begin(&self, id: TaskId) -> bool {
        let mut state = self.lock();
        let times = state.times.entry(id).or_insert(0);
        if *times >= Self::MAX {
            return false;
        }
        *times += 1;
        state.stopping.insert(id);
        true
    }

    fn take(&self) -> Vec<TaskId> {
        std::mem::take(&mut self.lock().requested)
    }

    /// `id` ended: it is no longer being stopped. Whether it was.
    fn end(&self, id: TaskId) -> bool {
        self.lock().stopping.remove(&id)
    }

    fn stopping(&self, id: TaskId) -> bool {
        self.lock().stopping.contains(&id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RestartState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Interrupts for AtomicUsize {
    fn count(&self) -> usize {
        self.load(Ordering::SeqCst)
    }
}

/// Stops running process groups; the real one signals them (see `process::stop_group`).
pub trait Stopper {
    /// Stop these groups: gracefully (SIGTERM, grace, SIGKILL) or at once (SIGKILL).
    fn stop(&self, groups: &[i32], graceful: bool);
}

/// A task's place in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Some dep is not done yet.
    Waiting {
        deps_left: usize,
    },
    /// All deps done; queued to start.
    Ready,
    Running {
        group: Option<i32>,
    },
    Done {
        identity: Option<Hash>,
        ok: bool,
    },
}

/// How long the scheduler's thread lets messages gather while workers report.
const BATCH: Duration = Duration::from_millis(2);

/// Messages from worker threads.
enum Message {
    Event(TaskId, Event),
    /// A worker ended a task (the scheduler's state already says so): report it.
    Done(TaskId, Report),
    /// A worker queued a task again that was stopped for a restart.
    Restarted(TaskId),
    /// A worker thread is gone in the middle of the run: our bug.
    WorkerDied,
}

/// What a worker is handed: a task, its deps' identities, whether it is forced.
type Job = (TaskId, Vec<DepEntry>, bool);

struct Scheduler<'a> {
    graph: &'a Graph,
    /// Interrupts seen so far: a group reported after one is stopped at once, the same way.
    interrupted: usize,
    /// Tasks that never started because the run stopped: not failures of their dependents.
    cancelled: std::collections::HashSet<TaskId>,
    began: std::time::Instant,
    started: HashMap<TaskId, Duration>,
    phases: HashMap<TaskId, Phase>,
    ready: BinaryHeap<(u64, std::cmp::Reverse<TaskId>)>,
    priority: HashMap<TaskId, u64>,
    reports: Vec<Report>,
    running: usize,
    /// After a failure (without `keep_going`) or an interrupt: nothing new starts.
    stopping: bool,
}

/// Runs `targets` (with their deps unless `only`) and returns a report per task, deps
/// before dependents.
#[allow(clippy::too_many_arguments)]
pub fn run(
    graph: &Graph,
    targets: &[TaskId],
    options: &Options,
    runner: &dyn Runner,
    reporter: &mut dyn Reporter,
    interrupts: &dyn Interrupts,
    stopper: &dyn Stopper,
    recorded_identity: &(dyn Fn(TaskId) -> Option<Hash> + Sync),
) -> Vec<Report> {
    let wanted = wanted(graph, targets, options.only);
    let mut s = Scheduler {
        graph,
        interrupted: 0,
        cancelled: Default::default(),
        began: options.began.unwrap_or_else(std::time::Instant::now),
        started: HashMap::new(),
        phases: HashMap::with_capacity(wanted.len()),
        ready: BinaryHeap::new(),
        priority: critical_path(graph, &wanted, runner),
        reports: Vec::with_capacity(wanted.len()),
        running: 0,
        stopping: false,
    };
    for &id in &wanted {
        let deps_left = graph.deps(id).iter().filter(|d| wanted.contains(d)).count();
        s.phases.insert(
            id,
            Phase::Waiting {
                deps_left: usize::MAX,
            },
        );
        s.set(id, Phase::Waiting { deps_left });
    }
    let jobs = options.jobs.max(1);
    let (tx, rx) = mpsc::channel::<Message>();
    let mut seen_interrupts = 0;
    // Takes ready tasks, up to `jobs` running, unless the run is stopping.
    let dispatch = |s: &mut Scheduler| -> Vec<Job> {
        let mut handed = Vec::new();
        while !s.stopping && s.running < jobs {
            let Some((_, std::cmp::Reverse(id))) = s.ready.pop() else {
                break;
            };
            s.set(id, Phase::Running { group: None });
            s.started.insert(id, s.began.elapsed());
            let deps = s.dep_entries(id, recorded_identity);
            let forced = options.force_all || (options.force && targets.contains(&id));
            handed.push((id, deps, forced));
        }
        handed
    };
    // `jobs` workers take tasks from one queue: a thread per task cost a stack mapping and a
    // clone each, noticeable on graphs of thousands of quick tasks. A worker that ends a
    // task updates the scheduler itself and goes straight on with the next ready task:
    // going through this thread for each task cost two thread wake-ups between one task and
    // the next. Reporting stays on this thread. `None` tells a worker to end.
    let (job_tx, job_rx) = mpsc::channel::<Option<Job>>();
    let job_rx = std::sync::Mutex::new(job_rx);
    let s = std::sync::Mutex::new(s);
    let lock = || s.lock().unwrap_or_else(|p| p.into_inner());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (tx, job_tx) = (tx.clone(), job_tx.clone());
            let (job_rx, lock, dispatch) = (&job_rx, &lock, &dispatch);
            scope.spawn(move || {
                // A worker that dies would leave the run waiting for its task forever.
                let died = Died(&tx);
                let mut next = None;
                loop {
                    let job = match next.take() {
                        Some(job) => job,
                        None => match job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(Some(job)) => job,
                            Ok(None) | Err(_) => break,
                        },
                    };
                    let (id, deps, forced) = job;
                    let send = |event| {
                        let _ = tx.send(Message::Event(id, event));
                    };
                    // A panic in a runner is our bug; it must end the task, not hang the run.
                    let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        runner.run(id, deps, forced, &send)
                    }))
                    .unwrap_or_else(|_| Finished {
                        result: TaskResult::Failed {
                            exit: "devgraph bug: the runner panicked".into(),
                            log: None,
                        },
                        causes: Vec::new(),
                        duration: Duration::ZERO,
                        identity: None,
                    });
                    let mut s = lock();
                    if s.restart(id, interrupts) {
                        // Stopped because its inputs changed: queued again, not finished.
                        let _ = tx.send(Message::Restarted(id));
                    } else {
                        let ok = finished.result.succeeded();
                        let report = s.finish(id, finished);
                        if !ok && !options.keep_going {
                            s.stopping = true;
                        }
                        // Reported before anything this releases can start (and report).
                        let _ = tx.send(Message::Done(id, report));
                    }
                    let mut handed = dispatch(&mut s).into_iter();
                    drop(s);
                    next = handed.next();
                    for job in handed {
                        // The pool never has more than `jobs` tasks in hand: an idle
                        // worker takes it.
                        let _ = job_tx.send(Some(job));
                    }
                }
                std::mem::forget(died);
            });
        }
        let mut reported = 0;
        let mut busy = false;
        loop {
            let interrupts_now = interrupts.count();
            if interrupts_now > seen_interrupts {
                seen_interrupts = interrupts_now;
                let groups = {
                    let mut s = lock();
                    s.interrupted = interrupts_now;
                    s.stopping = true;
                    s.running_groups()
                };
                if !groups.is_empty() {
                    let graceful = interrupts_now == 1;
                    reporter.note(if graceful {
                        "interrupted: stopping running tasks (again to stop them at once)"
                    } else {
                        "interrupted again: killing running tasks"
                    });
                    stopper.stop(&groups, graceful);
                }
            }
            if let Some(restarts) = interrupts.restarts() {
                let ids = restarts.take();
                // Marked under the lock, so a worker ending one of them sees the mark.
                let groups: Vec<i32> = {
                    let s = lock();
                    ids.into_iter()
                        .filter_map(|id| match s.phases.get(&id) {
                            Some(Phase::Running { group }) if restarts.begin(id) => {
                                // Without a group yet, it is stopped when it reports one.
                                *group
                            }
                            _ => None,
                        })
                        .collect()
                };
                if !groups.is_empty() {
                    stopper.stop(&groups, true);
                }
            }
            {
                let mut s = lock();
                for job in dispatch(&mut s) {
                    let _ = job_tx.send(Some(job));
                }
                if s.running == 0 && reported == s.reports.len() {
                    break;
                }
            }
            // While workers have something to say, take it in batches: with thousands of
            // quick tasks, waking this thread for every message cost more than handling it,
            // and a line shown 2 ms late is not noticed. When they are quiet, wait for the
            // next message, waking up now and then to notice interrupts.
            let message = match rx.try_recv() {
                Ok(message) => message,
                Err(_) if busy => {
                    busy = false;
                    std::thread::sleep(BATCH);
                    continue;
                }
                Err(_) => match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(message) => message,
                    Err(_) => continue,
                },
            };
            busy = true;
            match message {
                Message::Event(id, Event::Group(pgid)) => {
                    // Started after the interrupt was handled: stop it as the others were.
                    // Asked to restart before it had a group: stop it now.
                    // (The scheduler's lock is not held while stopping.)
                    let interrupted = lock().group(id, pgid);
                    if let Some(interrupted) = interrupted {
                        stopper.stop(&[pgid], interrupted == 1);
                    } else if interrupts.restarts().is_some_and(|r| r.stopping(id)) {
                        stopper.stop(&[pgid], true);
                    }
                }
                Message::Event(id, event) => report_event(graph.task(id), event, reporter),
                Message::Done(id, report) => {
                    reporter.finished(graph.task(id), &report);
                    reported += 1;
                }
                Message::Restarted(id) => reporter.restarted(graph.task(id)),
                Message::WorkerDied => {
                    // Let the other workers end, so that the panic is not a hang.
                    lock().stopping = true;
                    for _ in 0..jobs {
                        let _ = job_tx.send(None);
                    }
                    unreachable!("BUG: a worker thread panicked")
                }
            }
        }
        // No more work: each worker takes a `None` and ends.
        for _ in 0..jobs {
            let _ = job_tx.send(None);
        }
    });
    let mut s = s.into_inner().unwrap_or_else(|p| p.into_inner());
    // Whatever never started: below a failure it is skipped, otherwise cancelled.
    for &id in &wanted {
        if matches!(
            s.phases.get(&id),
            Some(Phase::Waiting { .. } | Phase::Ready)
        ) {
            let result = match s.failed_dep(id) {
                Some(dep) => TaskResult::Skipped {
                    dep: graph.task(dep).name.clone(),
                },
                None => {
                    s.cancelled.insert(id);
                    TaskResult::Cancelled
                }
            };
            s.close(id, result, reporter);
        }
    }
    // The summary reads in run order (deps first, then definition order), not in the
    // order tasks happened to finish.
    let position: HashMap<TaskId, usize> =
        wanted.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    s.reports.sort_by_key(|r| position[&r.id]);
    s.reports
}

/// Hands a runner's event, other than its process group, to the reporter.
fn report_event(task: &crate::graph::Task, event: Event, reporter: &mut dyn Reporter) {
    match event {
        Event::Started { causes } => reporter.started(task, &causes),
        Event::Line(stream, text) => reporter.line(task, stream, &text),
        Event::Note(text) => reporter.note(&text),
        Event::Group(_) => unreachable!("BUG: a process group is the scheduler's business"),
    }
}

/// Says that a worker thread died, when it unwinds.
struct Died<'a>(&'a mpsc::Sender<Message>);

impl Drop for Died<'_> {
    fn drop(&mut self) {
        let _ = self.0.send(Message::WorkerDied);
    }
}

/// The tasks a run of `targets` considers, deps first: the targets and everything they
/// need, or with `only` the targets alone.
pub fn wanted(graph: &Graph, targets: &[TaskId], only: bool) -> Vec<TaskId> {
    if only {
        let mut order = graph.topo_order();
        order.retain(|id| targets.contains(id));
        order
    } else {
        graph.closure(targets)
    }
}

/// For each wanted task, the expected time of the longest chain from it to the end of the
/// run (its own expected time included); unknown times count as one second.
fn critical_path(graph: &Graph, wanted: &[TaskId], runner: &dyn Runner) -> HashMap<TaskId, u64> {
    let mut length: HashMap<TaskId, u64> = HashMap::with_capacity(wanted.len());
    for &id in wanted.iter().rev() {
        let own = runner
            .expected(id)
            .map_or(1000, |d| d.as_millis() as u64 + 1);
        let after = graph
            .dependents(id)
            .iter()
            .filter_map(|d| length.get(d))
            .max()
            .copied()
            .unwrap_or(0);
        length.insert(id, own + after);
    }
    length
}

impl Scheduler<'_> {
    /// The single place a task's phase changes; keeps the ready queue and the running
    /// count consistent with the phases.
    fn set(&mut self, id: TaskId, phase: Phase) {
        let previous = self.phases.insert(id, phase.clone());
        match (&previous, &phase) {
            (Some(Phase::Waiting { .. }), Phase::Waiting { deps_left: 0 }) => {
                self.phases.insert(id, Phase::Ready);
                self.ready.push((
                    self.priority.get(&id).copied().unwrap_or(0),
                    std::cmp::Reverse(id),
                ));
            }
            (Some(Phase::Waiting { .. }), Phase::Waiting { .. }) => {}
            (Some(Phase::Ready), Phase::Running { .. }) => self.running += 1,
            (Some(Phase::Running { .. }), Phase::Running { .. }) => {}
            (Some(Phase::Running { .. }), Phase::Done { .. }) => self.running -= 1,
            // Stopped for a restart: queued again (its deps are still done).
            (Some(Phase::Running { .. }), Phase::Ready) => {
                self.running -= 1;
                self.ready.push((
                    self.priority.get(&id).copied().unwrap_or(0),
                    std::cmp::Reverse(id),
                ));
            }
            (Some(Phase::Waiting { .. } | Phase::Ready), Phase::Done { .. }) => {}
            (previous, next) => {
                unreachable!("BUG: task {id:?} cannot go from {previous:?} to {next:?}")
            }
        }
    }

    fn running_groups(&self) -> Vec<i32> {
        self.phases
            .values()
            .filter_map(|p| match p {
                Phase::Running { group } => *group,
                _ => None,
            })
            .collect()
    }

    /// A running task's process group. Returns the interrupts seen so far when the run is
    /// already being interrupted (the group must be stopped as the others were). A task
    /// that a worker has ended since is left alone: its group is gone.
    fn group(&mut self, id: TaskId, pgid: i32) -> Option<usize> {
        if !matches!(self.phases.get(&id), Some(Phase::Running { .. })) {
            return None;
        }
        self.set(id, Phase::Running { group: Some(pgid) });
        (self.interrupted > 0).then_some(self.interrupted)
    }

    /// A runner finished with `id`: record it and release its dependents. Returns its
    /// report, for the reporter.
    fn finish(&mut self, id: TaskId, finished: Finished) -> Report {
        let ok = finished.result.succeeded();
        self.set(
            id,
            Phase::Done {
                identity: finished.identity,
                ok,
            },
        );
        let ended = self.began.elapsed();
        let report = Report {
            id,
            result: finished.result,
            causes: finished.causes,
            duration: finished.duration,
            started: self.started.get(&id).copied().unwrap_or(ended),
            ended,
        };
        self.reports.push(report.clone());
        if !ok {
            return report;
        }
        for &next in self.graph.dependents(id) {
            if let Some(Phase::Waiting { deps_left }) = self.phases.get(&next).cloned() {
                self.set(
                    next,
                    Phase::Waiting {
                        deps_left: deps_left - 1,
                    },
                );
            }
        }
        report
    }

    /// Queues `id` again if it ended because it was stopped for a restart, and the run goes
    /// on (no interrupt, no failure stopping it); otherwise it ends as what it is
    /// (interrupted), and the next round takes it up.
    fn restart(&mut self, id: TaskId, interrupts: &dyn Interrupts) -> bool {
        let Some(restarts) = interrupts.restarts() else {
            return false;
        };
        if !restarts.end(id) || self.interrupted > 0 || self.stopping {
            return false;
        }
        self.started.remove(&id);
        self.set(id, Phase::Ready);
        true
    }

    /// Ends a task that never ran.
    fn close(&mut self, id: TaskId, result: TaskResult, reporter: &mut dyn Reporter) {
        self.set(
            id,
            Phase::Done {
                identity: None,
                ok: false,
            },
        );
        let now = self.began.elapsed();
        let report = Report {
            id,
            result,
            causes: Vec::new(),
            duration: Duration::ZERO,
            started: now,
            ended: now,
        };
        reporter.finished(self.graph.task(id), &report);
        self.reports.push(report);
    }

    /// A dep of `id` that ended without success (for "skipped: dep failed"). A dep that was
    /// cancelled did not fail: its dependents are cancelled too.
    fn failed_dep(&self, id: TaskId) -> Option<TaskId> {
        self.graph.deps(id).iter().copied().find(|d| {
            matches!(self.phases.get(d), Some(Phase::Done { ok: false, .. }))
                && !self.cancelled.contains(d)
        })
    }

    /// What `id`'s deps produced: their identity in this run, or (for deps outside the run,
    /// with `--only`) the identity of their last success.
    fn dep_entries(&self, id: TaskId, recorded: &dyn Fn(TaskId) -> Option<Hash>) -> Vec<DepEntry> {
        self.graph
            .deps(id)
            .iter()
            .map(|&dep| {
                let identity = match self.phases.get(&dep) {
                    Some(Phase::Done { identity, .. }) => *identity,
                    _ => recorded(dep),
                };
                DepEntry {
                    name: self.graph.task(dep).name.clone(),
                    identity: identity.unwrap_or([0; 32]),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler driven by fakes: no processes and no sleeps. A task the test must hold
    //! open waits on a gate that the test releases, so concurrency is shown by what has
    //! started before anything is released, not by timing. Every wait on the scheduler is
    //! bounded by `WAIT`, so a broken scheduler fails a test instead of hanging it.

    use std::collections::{BTreeMap, HashSet};
    use std::sync::{Condvar, Mutex, MutexGuard};

    use proptest::prelude::*;

    use super::*;
    use crate::graph::Task;

    /// The most any test waits for the scheduler to do something.
    const WAIT: Duration = Duration::from_secs(10);

    fn task(name: &str) -> Task {
        Task::named(name)
    }

    /// A graph of `(name, deps)`, in definition order.
    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        let names: Vec<&str> = edges.iter().map(|(n, _)| *n).collect();
        let deps = edges
            .iter()
            .map(|(_, ds)| {
                ds.iter()
                    .map(|d| Graph::id(names.iter().position(|n| n == d).expect(d)))
                    .collect()
            })
            .collect();
        Graph::new(names.iter().map(|n| task(n)).collect(), deps)
    }

    /// The identity the fake gives task `i` by default.
    fn identity_of(i: usize) -> Hash {
        [i as u8 + 1; 32]
    }

    fn failed() -> TaskResult {
        TaskResult::Failed {
            exit: "1".into(),
            log: None,
        }
    }

    fn skipped(dep: &str) -> TaskResult {
        TaskResult::Skipped { dep: dep.into() }
    }

    /// Where the fake runner can hold a task until the test releases it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Gate {
        /// After `Started`, before the task reports its process group.
        BeforeGroup,
        /// After the task reported its group and that it runs, before it ends.
        BeforeEnd,
    }

    /// What the fake runner does for one task.
    #[derive(Debug, Clone)]
    struct Spec {
        result: TaskResult,
        identity: Option<Hash>,
        group: Option<i32>,
        /// The gates it waits at.
        gates: Vec<Gate>,
        expected: Option<Duration>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        Start,
        End,
    }

    /// One call of `Runner::run`.
    #[derive(Debug, Clone)]
    struct Call {
        task: usize,
        deps: Vec<DepEntry>,
        forced: bool,
    }

    /// Everything the fakes saw, under one lock, so that one condvar can wait for any of it.
    #[derive(Debug, Default)]
    struct World {
        /// `(sequence number, task, step)`; one sequence across all tasks and threads.
        steps: Vec<(usize, usize, Step)>,
        running: usize,
        max_running: usize,
        calls: Vec<Call>,
        released: HashSet<(usize, Gate)>,
        /// Open every gate (the test is over, or failed).
        release_all: bool,
        /// What the reporter was told, in order.
        notes: Vec<String>,
        started: Vec<String>,
        finished: Vec<(String, TaskResult)>,
        /// `started` and `finished` in one sequence: `(name, true)` for a start.
        reported: Vec<(String, bool)>,
        /// Each `Stopper::stop`: the groups (sorted) and `graceful`.
        stops: Vec<(Vec<i32>, bool)>,
    }

    impl World {
        fn step(&mut self, task: usize, step: Step) {
            let seq = self.steps.len();
            self.steps.push((seq, task, step));
        }

        fn seq(&self, task: usize, step: Step) -> Option<usize> {
            self.steps
                .iter()
                .find(|s| s.1 == task && s.2 == step)
                .map(|s| s.0)
        }

        fn start_order(&self) -> Vec<usize> {
            self.steps
                .iter()
                .filter(|s| s.2 == Step::Start)
                .map(|s| s.1)
                .collect()
        }
    }

    #[derive(Default)]
    struct Shared {
        world: Mutex<World>,
        changed: Condvar,
    }

    impl Shared {
        fn lock(&self) -> MutexGuard<'_, World> {
            self.world.lock().unwrap_or_else(|e| e.into_inner())
        }

        fn update<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
            let r = f(&mut self.lock());
            self.changed.notify_all();
            r
        }

        /// Blocks until `done` holds; fails the test after `WAIT`.
        fn wait_for(&self, what: &str, done: impl Fn(&World) -> bool) {
            let (world, _) = self
                .changed
                .wait_timeout_while(self.lock(), WAIT, |w| !done(w))
                .unwrap_or_else(|e| e.into_inner());
            assert!(done(&world), "timed out waiting for {what}; saw {world:#?}");
        }

        fn release(&self, task: usize, gate: Gate) {
            self.update(|w| w.released.insert((task, gate)));
        }

        fn hold(&self, task: usize, gate: Gate) {
            let world = self.lock();
            let _world = self
                .changed
                .wait_while(world, |w| {
                    !w.release_all && !w.released.contains(&(task, gate))
                })
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Opens every gate when dropped, so a failing test does not leave the scheduler
    /// waiting for tasks that never end.
    struct ReleaseAll<'a>(&'a Shared);

    impl Drop for ReleaseAll<'_> {
        fn drop(&mut self) {
            self.0.update(|w| w.release_all = true);
        }
    }

    /// The fake runner: records each start and end, reports `Started`, its group and a
    /// "NAME running" note (once the reporter has that note, the scheduler has seen the
    /// group), waits at its gates, and returns what its spec says.
    struct Fake<'a> {
        graph: &'a Graph,
        specs: &'a [Spec],
        shared: &'a Shared,
    }

    impl Runner for Fake<'_> {
        fn run(
            &self,
            id: TaskId,
            deps: Vec<DepEntry>,
            forced: bool,
            events: &dyn Fn(Event),
        ) -> Finished {
            let i = id.index();
            let spec = &self.specs[i];
            self.shared.update(|w| {
                w.step(i, Step::Start);
                w.running += 1;
                w.max_running = w.max_running.max(w.running);
                w.calls.push(Call {
                    task: i,
                    deps,
                    forced,
                });
            });
            events(Event::Started { causes: Vec::new() });
            if spec.gates.contains(&Gate::BeforeGroup) {
                self.shared.hold(i, Gate::BeforeGroup);
            }
            if let Some(group) = spec.group {
                events(Event::Group(group));
            }
            events(Event::Note(format!("{} running", self.graph.task(id).name)));
            if spec.gates.contains(&Gate::BeforeEnd) {
                self.shared.hold(i, Gate::BeforeEnd);
            }
            self.shared.update(|w| {
                w.step(i, Step::End);
                w.running -= 1;
            });
            Finished {
                result: spec.result.clone(),
                causes: Vec::new(),
                duration: Duration::ZERO,
                identity: spec.identity,
            }
        }

        fn expected(&self, id: TaskId) -> Option<Duration> {
            self.specs[id.index()].expected
        }
    }

    struct Recorder<'a>(&'a Shared);

    impl Reporter for Recorder<'_> {
        fn started(&mut self, task: &Task, _causes: &[Cause]) {
            self.0.update(|w| {
                w.started.push(task.name.clone());
                w.reported.push((task.name.clone(), true));
            });
        }

        fn line(&mut self, _task: &Task, _stream: Stream, _text: &str) {}

        fn finished(&mut self, task: &Task, report: &Report) {
            self.0.update(|w| {
                w.finished.push((task.name.clone(), report.result.clone()));
                w.reported.push((task.name.clone(), false));
            });
        }

        fn note(&mut self, text: &str) {
            self.0.update(|w| w.notes.push(text.to_string()));
        }
    }

    struct Stops<'a>(&'a Shared);

    impl Stopper for Stops<'_> {
        fn stop(&self, groups: &[i32], graceful: bool) {
            let mut groups = groups.to_vec();
            groups.sort();
            self.0.update(|w| w.stops.push((groups, graceful)));
        }
    }

    /// Interrupts and restart requests, as `watch` gives them.
    struct Signals<'a> {
        count: &'a AtomicUsize,
        restarts: &'a Restarts,
    }

    impl Interrupts for Signals<'_> {
        fn count(&self) -> usize {
            self.count.load(Ordering::SeqCst)
        }

        fn restarts(&self) -> Option<&Restarts> {
            Some(self.restarts)
        }
    }

    type Recorded<'a> = &'a (dyn Fn(TaskId) -> Option<Hash> + Sync);

    /// A graph, what the fake does for each task, and what the fakes saw.
    struct Case {
        graph: Graph,
        specs: Vec<Spec>,
        shared: Shared,
        interrupts: AtomicUsize,
        restarts: Restarts,
    }

    impl Case {
        /// Every task succeeds (`Ran`) with identity `identity_of(i)`, at once.
        fn new(edges: &[(&str, &[&str])]) -> Self {
            let specs = (0..edges.len())
                .map(|i| Spec {
                    result: TaskResult::Ran,
                    identity: Some(identity_of(i)),
                    group: None,
                    gates: Vec::new(),
                    expected: None,
                })
                .collect();
            Case {
                graph: graph(edges),
                specs,
                shared: Shared::default(),
                interrupts: AtomicUsize::new(0),
                restarts: Restarts::default(),
            }
        }

        fn with(mut self, name: &str, f: impl FnOnce(&mut Spec)) -> Self {
            let i = self.i(name);
            f(&mut self.specs[i]);
            self
        }

        fn fails(self, name: &str) -> Self {
            self.with(name, |s| {
                s.result = failed();
                s.identity = None;
            })
        }

        fn gated(self, name: &str) -> Self {
            self.with(name, |s| s.gates.push(Gate::BeforeEnd))
        }

        fn i(&self, name: &str) -> usize {
            self.graph.find(name).expect(name).index()
        }

        fn name(&self, i: usize) -> &str {
            &self.graph.task(Graph::id(i)).name
        }

        fn names(&self, ids: &[usize]) -> Vec<&str> {
            ids.iter().map(|&i| self.name(i)).collect()
        }

        fn release(&self, name: &str) {
            self.shared.release(self.i(name), Gate::BeforeEnd);
        }

        fn world(&self) -> MutexGuard<'_, World> {
            self.shared.lock()
        }

        fn wait_started(&self, names: &[&str]) {
            let ids: Vec<usize> = names.iter().map(|n| self.i(n)).collect();
            self.shared.wait_for(&format!("{names:?} to start"), |w| {
                ids.iter().all(|&i| w.seq(i, Step::Start).is_some())
            });
        }

        /// Waits until the scheduler has seen `name`'s group (the fake's note follows it).
        fn wait_running(&self, name: &str) {
            let note = format!("{name} running");
            self.shared.wait_for(&note, |w| w.notes.contains(&note));
        }

        fn wait_reported(&self, name: &str) {
            self.shared.wait_for(&format!("the report of {name}"), |w| {
                w.finished.iter().any(|(n, _)| n == name)
            });
        }

        /// The names of the tasks the runner was called for, in start order.
        fn start_order(&self) -> Vec<String> {
            let order = self.world().start_order();
            self.names(&order).into_iter().map(String::from).collect()
        }

        /// What `Runner::run` received for `name` (it must have been called once).
        fn call(&self, name: &str) -> Call {
            let i = self.i(name);
            let world = self.world();
            let calls: Vec<&Call> = world.calls.iter().filter(|c| c.task == i).collect();
            assert_eq!(calls.len(), 1, "calls of {name}: {calls:?}");
            calls[0].clone()
        }

        fn run(&self, targets: &[&str], options: Options) -> Vec<(String, TaskResult)> {
            self.drive(targets, options, &|_| None, |_| {})
        }

        /// Runs the scheduler on its own thread while `test` drives the fakes from this
        /// one; returns `(name, result)` per report, in the order `run` returned them.
        fn drive(
            &self,
            targets: &[&str],
            options: Options,
            recorded: Recorded<'_>,
            test: impl FnOnce(&Self),
        ) -> Vec<(String, TaskResult)> {
            let targets: Vec<TaskId> = targets.iter().map(|n| Graph::id(self.i(n))).collect();
            let reports = self.drive_ids(&targets, &options, recorded, test);
            reports
                .iter()
                .map(|r| (self.graph.task(r.id).name.clone(), r.result.clone()))
                .collect()
        }

        fn drive_ids(
            &self,
            targets: &[TaskId],
            options: &Options,
            recorded: Recorded<'_>,
            test: impl FnOnce(&Self),
        ) -> Vec<Report> {
            let fake = Fake {
                graph: &self.graph,
                specs: &self.specs,
                shared: &self.shared,
            };
            std::thread::scope(|scope| {
                let scheduler = scope.spawn(|| {
                    super::run(
                        &self.graph,
                        targets,
                        options,
                        &fake,
                        &mut Recorder(&self.shared),
                        &Signals {
                            count: &self.interrupts,
                            restarts: &self.restarts,
                        },
                        &Stops(&self.shared),
                        recorded,
                    )
                });
                {
                    let _release = ReleaseAll(&self.shared);
                    test(self);
                }
                scheduler.join().expect("the scheduler panicked")
            })
        }

        /// Every task the runner was called for started after each of its deps that is
        /// in the run had ended.
        fn assert_deps_ended_first(&self) {
            let world = self.world();
            for &(start, i, step) in &world.steps {
                if step != Step::Start {
                    continue;
                }
                for dep in self.graph.deps(Graph::id(i)) {
                    let ended = world.seq(dep.index(), Step::End);
                    assert!(
                        ended.is_some_and(|e| e < start),
                        "{} started at {start} but its dep {} ended at {ended:?}",
                        self.name(i),
                        self.name(dep.index()),
                    );
                }
            }
        }
    }

    fn jobs(n: usize) -> Options {
        Options {
            jobs: n,
            ..Options::default()
        }
    }

    fn all_ran(names: &[&str]) -> Vec<(String, TaskResult)> {
        names
            .iter()
            .map(|n| (n.to_string(), TaskResult::Ran))
            .collect()
    }

    fn results(expected: &[(&str, TaskResult)]) -> Vec<(String, TaskResult)> {
        expected
            .iter()
            .map(|(n, r)| (n.to_string(), r.clone()))
            .collect()
    }

    // 1. Dependency order.

    #[test]
    fn a_chain_runs_one_after_the_other() {
        let case = Case::new(&[("c", &["b"]), ("b", &["a"]), ("a", &[])]);
        let reports = case.run(&["c"], jobs(4));
        assert_eq!(reports, all_ran(&["a", "b", "c"]));
        assert_eq!(case.start_order(), ["a", "b", "c"]);
        case.assert_deps_ended_first();
    }

    #[test]
    fn a_diamond_joins_after_both_sides() {
        // The left side is held: the top must wait for it although the right side is done.
        let case = Case::new(&[
            ("top", &["left", "right"]),
            ("left", &["base"]),
            ("right", &["base"]),
            ("base", &[]),
        ])
        .gated("left");
        let reports = case.drive(&["top"], jobs(4), &|_| None, |case| {
            case.wait_started(&["left"]);
            case.wait_reported("right");
            case.release("left");
        });
        assert_eq!(reports, all_ran(&["base", "left", "right", "top"]));
        let order = case.start_order();
        assert_eq!(order.first().map(String::as_str), Some("base"));
        assert_eq!(order.last().map(String::as_str), Some("top"));
        case.assert_deps_ended_first();
    }

    #[test]
    fn a_wide_fan_in_waits_for_every_dep() {
        let leaves: Vec<String> = (0..12).map(|i| format!("leaf{i}")).collect();
        let leaf_refs: Vec<&str> = leaves.iter().map(String::as_str).collect();
        let mut edges: Vec<(&str, &[&str])> = vec![("sink", &leaf_refs)];
        edges.extend(leaf_refs.iter().map(|l| (*l, &[] as &[&str])));
        // The first leaf is held until every other leaf is reported.
        let case = Case::new(&edges).gated("leaf0");
        let reports = case.drive(&["sink"], jobs(4), &|_| None, |case| {
            for leaf in &leaf_refs[1..] {
                case.wait_reported(leaf);
            }
            assert_eq!(case.world().seq(case.i("sink"), Step::Start), None);
            case.release("leaf0");
        });
        let mut expected = leaf_refs.clone();
        expected.push("sink");
        assert_eq!(reports, all_ran(&expected));
        assert_eq!(case.start_order().last().map(String::as_str), Some("sink"));
        case.assert_deps_ended_first();
    }

    // 2. The -j limit.

    #[test]
    fn with_j2_two_independent_tasks_run_at_the_same_time() {
        let case = Case::new(&[("a", &[]), ("b", &[])]).gated("a").gated("b");
        let reports = case.drive(&["a", "b"], jobs(2), &|_| None, |case| {
            // Both start while neither can end: they run at the same time.
            case.wait_started(&["a", "b"]);
            assert!(case.world().steps.iter().all(|s| s.2 == Step::Start));
            case.release("b");
            case.release("a");
        });
        assert_eq!(reports, all_ran(&["a", "b"]));
        assert_eq!(case.world().max_running, 2);
    }

    #[test]
    fn never_more_than_jobs_tasks_run_at_once() {
        for n in 1..=3 {
            let names: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
            let edges: Vec<(&str, &[&str])> =
                names.iter().map(|t| (t.as_str(), &[] as &[&str])).collect();
            let mut case = Case::new(&edges);
            for t in &names {
                case = case.gated(t);
            }
            let targets: Vec<&str> = names.iter().map(String::as_str).collect();
            let reports = case.drive(&targets, jobs(n), &|_| None, |case| {
                // Release the tasks one at a time, oldest first: each release lets exactly
                // one more start, and until then `n` are held running.
                for released in 0..names.len() {
                    let expect = (released + n).min(names.len());
                    let what = format!("{expect} started, {released} ended");
                    case.shared.wait_for(&what, |w| {
                        let ended = w.steps.iter().filter(|s| s.2 == Step::End).count();
                        w.start_order().len() == expect && ended == released
                    });
                    let (running, oldest) = {
                        let w = case.world();
                        (w.running, w.start_order()[released])
                    };
                    assert_eq!(running, n.min(names.len() - released));
                    case.shared.release(oldest, Gate::BeforeEnd);
                }
            });
            assert_eq!(reports, all_ran(&targets));
            assert_eq!(case.world().max_running, n, "-j{n}");
        }
    }

    #[test]
    fn with_j1_each_task_ends_before_the_next_starts() {
        let case = Case::new(&[
            ("a", &[]),
            ("b", &[]),
            ("c", &["a"]),
            ("d", &[]),
            ("e", &["b", "d"]),
        ]);
        case.run(&["c", "e"], jobs(1));
        let world = case.world();
        let kinds: Vec<Step> = world.steps.iter().map(|s| s.2).collect();
        let alternating: Vec<Step> = (0..5).flat_map(|_| [Step::Start, Step::End]).collect();
        assert_eq!(kinds, alternating);
        assert_eq!(world.max_running, 1);
        // The default (0) means one at a time too.
        drop(world);
        let case = Case::new(&[("a", &[]), ("b", &[])]);
        case.run(&["a", "b"], Options::default());
        assert_eq!(case.world().max_running, 1);
    }

    // 3. Failure, default policy.

    #[test]
    fn after_a_failure_nothing_new_starts_and_running_tasks_finish() {
        let case = Case::new(&[
            ("slow", &[]),
            ("bad", &[]),
            ("below", &["bad"]),
            ("below2", &["below"]),
            ("later", &["slow"]),
            ("other", &[]),
        ])
        .gated("slow")
        .fails("bad");
        let reports = case.drive(&["below2", "later", "other"], jobs(2), &|_| None, |case| {
            // `bad` and `slow` start together (longest chains first); `slow` is still
            // running when the scheduler learns that `bad` failed.
            case.wait_reported("bad");
            case.release("slow");
        });
        assert_eq!(
            reports,
            results(&[
                ("slow", TaskResult::Ran),
                ("bad", failed()),
                ("below", skipped("bad")),
                ("below2", skipped("below")),
                ("later", TaskResult::Cancelled),
                ("other", TaskResult::Cancelled),
            ])
        );
        let mut started = case.start_order();
        started.sort();
        assert_eq!(started, ["bad", "slow"]);
    }

    #[test]
    fn a_task_behind_a_cancelled_task_is_cancelled_not_skipped() {
        let case = Case::new(&[
            ("slow", &[]),
            ("bad", &[]),
            ("later", &["slow"]),
            ("after_later", &["later"]),
            ("both", &["later", "bad"]),
        ])
        .gated("slow")
        .fails("bad");
        let reports = case.drive(&["after_later", "both"], jobs(2), &|_| None, |case| {
            case.wait_reported("bad");
            case.release("slow");
        });
        assert_eq!(
            reports,
            results(&[
                ("slow", TaskResult::Ran),
                ("bad", failed()),
                ("later", TaskResult::Cancelled),
                // Nothing it depends on failed: the run stopped before it.
                ("after_later", TaskResult::Cancelled),
                // It is below the failure of `bad`; `later` did not fail.
                ("both", skipped("bad")),
            ])
        );
        // The same after an interrupt: nothing failed, yet `b` is "skipped: dep failed: a".
        let case = Case::new(&[("a", &[]), ("b", &["a"])]);
        case.interrupts.store(1, Ordering::SeqCst);
        let reports = case.run(&["b"], jobs(2));
        assert_eq!(
            reports,
            results(&[("a", TaskResult::Cancelled), ("b", TaskResult::Cancelled)])
        );
    }

    // 4. --keep-going.

    #[test]
    fn keep_going_runs_everything_not_below_the_failure() {
        for n in [1, 3] {
            let case = Case::new(&[
                ("bad", &[]),
                ("below", &["bad"]),
                ("ok1", &[]),
                ("ok2", &["ok1"]),
                ("mixed", &["ok2", "bad"]),
                ("ok3", &["ok2"]),
                ("deep", &["below", "ok3"]),
            ])
            .fails("bad");
            let options = Options {
                keep_going: true,
                jobs: n,
                ..Options::default()
            };
            let reports = case.run(&["mixed", "deep"], options);
            assert_eq!(
                reports,
                results(&[
                    ("bad", failed()),
                    ("below", skipped("bad")),
                    ("ok1", TaskResult::Ran),
                    ("ok2", TaskResult::Ran),
                    ("mixed", skipped("bad")),
                    ("ok3", TaskResult::Ran),
                    ("deep", skipped("below")),
                ]),
                "-j{n}"
            );
            let started = case.start_order();
            if n == 1 {
                // Longest chain first (ok1: 4 s, bad: 3 s), then `bad` wins the tie with
                // `ok2` by definition order; the run goes on after it failed.
                assert_eq!(started, ["ok1", "bad", "ok2", "ok3"]);
            } else {
                let mut started = started;
                started.sort();
                assert_eq!(started, ["bad", "ok1", "ok2", "ok3"]);
            }
            case.assert_deps_ended_first();
        }
    }

    // 5. Restarts (watch: a task's inputs changed while it ran).

    #[test]
    fn a_task_asked_to_restart_is_stopped_and_runs_again_before_its_dependents() {
        let case = Case::new(&[("a", &[]), ("b", &["a"]), ("c", &[])])
            .gated("a")
            .gated("c")
            .with("a", |s| s.group = Some(101));
        let reports = case.drive(&["b", "c"], jobs(2), &|_| None, |case| {
            case.wait_running("a");
            case.wait_started(&["c"]);
            case.restarts.request([Graph::id(case.i("a"))]);
            case.shared
                .wait_for("a graceful stop of a", |w| w.stops.len() == 1);
            assert_eq!(case.world().stops[0], (vec![101], true));
            case.release("a");
            case.shared.wait_for("a second start of a", |w| {
                w.steps
                    .iter()
                    .filter(|s| s.1 == 0 && s.2 == Step::Start)
                    .count()
                    == 2
            });
            case.release("c");
        });
        assert_eq!(reports, all_ran(&["a", "b", "c"]));
        let world = case.world();
        assert_eq!(world.calls.iter().filter(|c| c.task == 0).count(), 2);
        // `b` waited for the second run of `a`, not the stopped first one.
        let last_end_of_a = world
            .steps
            .iter()
            .filter(|s| s.1 == 0 && s.2 == Step::End)
            .map(|s| s.0)
            .max();
        assert!(world.seq(1, Step::Start) > last_end_of_a, "b started early");
        assert_eq!(world.calls.iter().filter(|c| c.task == 2).count(), 1);
        assert!(
            world
                .notes
                .iter()
                .any(|n| n.starts_with("a: its inputs changed")),
            "{:?}",
            world.notes
        );
        // a's first run never reached the reporter as a result: one report per task.
        assert_eq!(world.finished.len(), 3);
        drop(world);
        case.assert_deps_ended_first();
    }

    #[test]
    fn a_restart_asked_for_a_task_that_is_not_running_changes_nothing() {
        let case = Case::new(&[("a", &[]), ("b", &["a"])])
            .gated("a")
            .with("a", |s| s.group = Some(101))
            .with("b", |s| s.group = Some(102));
        let reports = case.drive(&["b"], jobs(2), &|_| None, |case| {
            case.wait_running("a");
            case.restarts.request([Graph::id(case.i("b"))]);
            // The request is taken within one turn of the scheduler's loop.
            case.shared.wait_for("the request to be taken", |_| {
                case.restarts.lock().requested.is_empty()
            });
            case.release("a");
        });
        assert_eq!(reports, all_ran(&["a", "b"]));
        assert!(case.world().stops.is_empty());
        assert!(!case.restarts.stopping(Graph::id(1)));
        assert_eq!(case.world().calls.len(), 2);
    }

    #[test]
    fn a_task_restarts_at_most_once_until_the_requests_are_cleared() {
        let restarts = Restarts::default();
        let a = Graph::id(0);
        assert!(restarts.begin(a));
        assert!(restarts.stopping(a));
        assert!(restarts.end(a));
        assert!(!restarts.end(a));
        // A second change in the same round lets it finish.
        assert!(!restarts.begin(a));
        assert!(!restarts.stopping(a));
        restarts.clear();
        assert!(restarts.begin(a));
    }

    #[test]
    fn a_restart_in_a_run_that_is_stopping_ends_the_task_as_interrupted() {
        let case = Case::new(&[("bad", &[]), ("a", &[])])
            .fails("bad")
            .gated("bad")
            .gated("a")
            .with("a", |s| {
                s.group = Some(101);
                s.result = TaskResult::Interrupted { log: None };
                s.identity = None;
            });
        let reports = case.drive(&["bad", "a"], jobs(2), &|_| None, |case| {
            case.wait_running("a");
            case.wait_started(&["bad"]);
            case.release("bad");
            case.wait_reported("bad");
            case.restarts.request([Graph::id(1)]);
            case.shared.wait_for("the stop", |w| w.stops.len() == 1);
            case.release("a");
        });
        // No restart after the failure: `a` is reported as it ended.
        assert_eq!(
            reports,
            results(&[
                ("bad", failed()),
                ("a", TaskResult::Interrupted { log: None })
            ])
        );
        assert_eq!(case.world().calls.len(), 2);
        assert!(!case.restarts.stopping(Graph::id(1)));
    }

    #[test]
    fn a_task_asked_to_restart_before_it_has_a_group_is_stopped_when_it_reports_one() {
        let case = Case::new(&[("a", &[])]).with("a", |s| {
            s.group = Some(101);
            s.gates.push(Gate::BeforeGroup);
            s.gates.push(Gate::BeforeEnd);
        });
        let reports = case.drive(&["a"], jobs(1), &|_| None, |case| {
            case.wait_started(&["a"]);
            case.restarts.request([Graph::id(0)]);
            case.shared.wait_for("the request to be taken", |_| {
                case.restarts.stopping(Graph::id(0))
            });
            assert!(case.world().stops.is_empty());
            case.shared.release(0, Gate::BeforeGroup);
            case.shared.wait_for("the stop", |w| w.stops.len() == 1);
            case.release("a");
        });
        assert_eq!(reports, all_ran(&["a"]));
        assert_eq!(case.world().calls.len(), 2);
    }

    // 6. Interrupts.

    #[test]
    fn interrupts_stop_running_groups_gracefully_then_at_once() {
        let case = Case::new(&[("a", &[]), ("b", &[]), ("c", &["a"]), ("d", &[])])
            .gated("a")
            .gated("b")
            .with("a", |s| {
                s.group = Some(101);
                s.result = TaskResult::Interrupted { log: None };
                s.identity = None;
            })
            .with("b", |s| s.group = Some(102));
        let reports = case.drive(&["c", "b", "d"], jobs(2), &|_| None, |case| {
            case.wait_running("a");
            case.wait_running("b");
            case.interrupts.fetch_add(1, Ordering::SeqCst);
            case.shared
                .wait_for("a graceful stop", |w| w.stops.len() == 1);
            assert_eq!(case.world().stops[0], (vec![101, 102], true));
            case.interrupts.fetch_add(1, Ordering::SeqCst);
            case.shared
                .wait_for("a forceful stop", |w| w.stops.len() == 2);
            assert_eq!(case.world().stops[1], (vec![101, 102], false));
            case.release("a");
            case.release("b");
        });
        assert_eq!(
            reports,
            results(&[
                ("a", TaskResult::Interrupted { log: None }),
                ("b", TaskResult::Ran),
                ("c", skipped("a")),
                ("d", TaskResult::Cancelled),
            ])
        );
        let mut started = case.start_order();
        started.sort();
        assert_eq!(started, ["a", "b"]);
        let world = case.world();
        assert_eq!(world.stops.len(), 2);
        assert!(world.notes.iter().any(|n| n.starts_with("interrupted:")));
        assert!(
            world
                .notes
                .iter()
                .any(|n| n.starts_with("interrupted again"))
        );
    }

    #[test]
    fn a_group_reported_after_an_interrupt_is_stopped_too() {
        let case = Case::new(&[("a", &[]), ("b", &[])])
            .gated("a")
            .gated("b")
            .with("a", |s| s.group = Some(101))
            .with("b", |s| {
                s.group = Some(102);
                s.gates.push(Gate::BeforeGroup);
            });
        case.drive(&["a", "b"], jobs(2), &|_| None, |case| {
            case.wait_running("a");
            case.wait_started(&["b"]);
            case.interrupts.fetch_add(1, Ordering::SeqCst);
            case.shared
                .wait_for("a graceful stop", |w| w.stops.len() == 1);
            assert_eq!(case.world().stops[0], (vec![101], true));
            // `b` now starts its process; the scheduler sees its group before the note.
            case.shared.release(case.i("b"), Gate::BeforeGroup);
            case.wait_running("b");
            let stops = case.world().stops.clone();
            assert!(
                stops.iter().any(|(groups, _)| groups.contains(&102)),
                "group 102 of `b` was never stopped: {stops:?}"
            );
        });
    }

    #[test]
    fn an_interrupt_with_nothing_running_cancels_what_is_left() {
        // The interrupt is already there when the run begins: nothing starts.
        let case = Case::new(&[("a", &[]), ("b", &[])]);
        case.interrupts.store(1, Ordering::SeqCst);
        let reports = case.run(&["a", "b"], jobs(2));
        assert_eq!(
            reports,
            results(&[("a", TaskResult::Cancelled), ("b", TaskResult::Cancelled)])
        );
        assert!(case.start_order().is_empty());
        assert!(case.world().stops.is_empty());
    }

    // 7. Critical path first.

    #[test]
    fn the_longest_expected_chain_starts_first() {
        let quick = Some(Duration::from_millis(10));
        let slow = Some(Duration::from_secs(5));
        let case = Case::new(&[
            ("q1", &[]),
            ("q2", &["q1"]),
            ("q3", &["q2"]),
            ("s1", &[]),
            ("s2", &["s1"]),
        ])
        .with("q1", |s| s.expected = quick)
        .with("q2", |s| s.expected = quick)
        .with("q3", |s| s.expected = quick)
        .with("s1", |s| s.expected = slow)
        .with("s2", |s| s.expected = slow);
        case.run(&["q3", "s2"], jobs(1));
        // Definition order alone would start q1; s1 → s2 is 10 s against 30 ms.
        assert_eq!(case.start_order(), ["s1", "s2", "q1", "q2", "q3"]);
    }

    #[test]
    fn without_expected_times_the_longer_chain_starts_first() {
        let case = Case::new(&[
            ("short1", &[]),
            ("short2", &["short1"]),
            ("long1", &[]),
            ("long2", &["long1"]),
            ("long3", &["long2"]),
        ]);
        case.run(&["short2", "long3"], jobs(1));
        assert_eq!(case.start_order()[0], "long1");
    }

    #[test]
    fn a_task_counts_its_longest_dependent_chain() {
        // `a` leads to a chain of three and to a single task: it counts the chain (4 s), so it
        // goes before `b` (3 s) although `b` is defined first.
        let case = Case::new(&[
            ("b", &[]),
            ("b2", &["b"]),
            ("b3", &["b2"]),
            ("a", &[]),
            ("a_short", &["a"]),
            ("a_long1", &["a"]),
            ("a_long2", &["a_long1"]),
            ("a_long3", &["a_long2"]),
        ]);
        case.run(&["b3", "a_short", "a_long3"], jobs(1));
        assert_eq!(case.start_order()[0], "a");
    }

    // 8. --only.

    #[test]
    fn only_runs_the_targets_with_recorded_identities_for_deps_outside() {
        let case = Case::new(&[
            ("base", &[]),
            ("unrecorded", &[]),
            ("mid", &["base"]),
            ("top", &["mid", "unrecorded"]),
            ("side", &[]),
        ]);
        let base = case.i("base");
        let mid = case.i("mid");
        // `mid` has a stale recorded identity: in this run it must not be used.
        let recorded = move |id: TaskId| match id.index() {
            i if i == base => Some([0xB0; 32]),
            i if i == mid => Some([0xEE; 32]),
            _ => None,
        };
        let options = Options {
            only: true,
            ..jobs(2)
        };
        let reports = case.drive(&["top", "mid"], options, &recorded, |_| {});
        assert_eq!(reports, all_ran(&["mid", "top"]));
        assert_eq!(case.start_order(), ["mid", "top"]);
        let entry = |name: &str, identity: Hash| DepEntry {
            name: name.into(),
            identity,
        };
        assert_eq!(case.call("mid").deps, [entry("base", [0xB0; 32])]);
        assert_eq!(
            case.call("top").deps,
            [entry("mid", identity_of(mid)), entry("unrecorded", [0; 32])]
        );
    }

    // 9. Dep identities.

    #[test]
    fn a_dependent_receives_the_identities_its_deps_finished_with() {
        let case = Case::new(&[("x", &[]), ("y", &[]), ("z", &[]), ("w", &["y", "x", "z"])])
            .with("x", |s| s.identity = Some([0x11; 32]))
            .with("y", |s| {
                s.result = TaskResult::UpToDate;
                s.identity = Some([0x22; 32]);
            })
            .with("z", |s| s.identity = None);
        // Nothing is outside the run: recorded identities must not be consulted.
        let reports = case.drive(&["w"], jobs(3), &|_| Some([0xEE; 32]), |_| {});
        assert_eq!(
            reports,
            results(&[
                ("x", TaskResult::Ran),
                ("y", TaskResult::UpToDate),
                ("z", TaskResult::Ran),
                ("w", TaskResult::Ran),
            ])
        );
        let entry = |name: &str, identity: Hash| DepEntry {
            name: name.into(),
            identity,
        };
        // In the graph's dep order; a success without identity reads as zeros.
        assert_eq!(
            case.call("w").deps,
            [
                entry("y", [0x22; 32]),
                entry("x", [0x11; 32]),
                entry("z", [0; 32])
            ]
        );
        assert!(case.call("x").deps.is_empty());
    }

    #[test]
    fn force_reaches_the_targets_and_force_all_every_task() {
        let edges: &[(&str, &[&str])] = &[("dep", &[]), ("target", &["dep"])];
        let case = Case::new(edges);
        case.run(
            &["target"],
            Options {
                force: true,
                ..Options::default()
            },
        );
        assert!(!case.call("dep").forced);
        assert!(case.call("target").forced);
        let case = Case::new(edges);
        case.run(
            &["target"],
            Options {
                force_all: true,
                ..Options::default()
            },
        );
        assert!(case.call("dep").forced);
        assert!(case.call("target").forced);
    }

    // 10. Report order.

    #[test]
    fn reports_come_back_in_run_order_once_each() {
        let case = Case::new(&[
            ("app", &["lib", "gen"]),
            ("docs", &[]),
            ("lib", &["gen"]),
            ("gen", &[]),
            ("lint", &[]),
        ])
        .gated("docs");
        // `docs` comes first in run order but is made to finish last.
        let reports = case.drive(&["app", "docs", "lint"], jobs(4), &|_| None, |case| {
            for name in ["gen", "lib", "app", "lint"] {
                case.wait_reported(name);
            }
            case.release("docs");
        });
        assert_eq!(reports, all_ran(&["docs", "gen", "lib", "app", "lint"]));
        let world = case.world();
        let told: Vec<&str> = world.finished.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(told.last(), Some(&"docs"));
        let mut told = told;
        told.sort();
        assert_eq!(told, ["app", "docs", "gen", "lib", "lint"]);
        let mut started = world.started.clone();
        started.sort();
        assert_eq!(started, ["app", "docs", "gen", "lib", "lint"]);
    }

    #[test]
    fn a_panicking_runner_does_not_hang_the_run() {
        struct Panics;
        impl Runner for Panics {
            fn run(&self, _: TaskId, _: Vec<DepEntry>, _: bool, _: &dyn Fn(Event)) -> Finished {
                panic!("a bug in the runner");
            }
        }
        let (tx, rx) = mpsc::channel();
        // Detached: if `run` hangs, the thread is left behind and the test fails.
        std::thread::spawn(move || {
            let shared = Shared::default();
            let graph = graph(&[("a", &[]), ("b", &["a"])]);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(
                    &graph,
                    &[Graph::id(1)],
                    &Options::default(),
                    &Panics,
                    &mut Recorder(&shared),
                    &AtomicUsize::new(0),
                    &Stops(&shared),
                    &|_| None,
                )
                .len()
            }));
            let _ = tx.send(outcome.is_ok());
        });
        // Either a panic or a report per task is fine; neither within `WAIT` is the bug.
        assert!(
            rx.recv_timeout(WAIT).is_ok(),
            "run() hung after a runner panicked"
        );
    }

    // 11. Random DAGs.

    #[derive(Debug, Clone)]
    struct Scenario {
        /// `deps[i]`: the deps of task `i`, all with a lower index (before `flip`).
        deps: Vec<Vec<usize>>,
        targets: Vec<usize>,
        failing: Vec<bool>,
        up_to_date: Vec<bool>,
        jobs: usize,
        keep_going: bool,
        only: bool,
        force: bool,
        force_all: bool,
    }

    fn scenario() -> impl Strategy<Value = Scenario> {
        use proptest::bool::weighted;
        use proptest::collection::vec;
        (1usize..=25)
            .prop_flat_map(|n| {
                (
                    vec(vec(weighted(0.15), n), n),
                    vec(weighted(0.3), n),
                    vec(weighted(0.15), n),
                    vec(weighted(0.2), n),
                    1usize..=4,
                    any::<bool>(),
                    weighted(0.2),
                    // Deps point to higher indices instead, so that definition order and
                    // run order differ.
                    any::<bool>(),
                    (any::<bool>(), weighted(0.2)),
                )
            })
            .prop_map(
                |(edges, targets, failing, up_to_date, jobs, keep_going, only, flip, force)| {
                    let n = edges.len();
                    let at = |i: usize| if flip { n - 1 - i } else { i };
                    let mut deps = vec![Vec::new(); n];
                    for (i, row) in edges.iter().enumerate() {
                        for (j, &edge) in row.iter().enumerate().take(i) {
                            if edge {
                                deps[at(i)].push(at(j));
                            }
                        }
                    }
                    Scenario {
                        deps,
                        targets: (0..n).filter(|&i| targets[i]).collect(),
                        failing,
                        up_to_date,
                        jobs,
                        keep_going,
                        only,
                        force: force.0,
                        force_all: force.1,
                    }
                },
            )
    }

    fn recorded_for_proptest(id: TaskId) -> Option<Hash> {
        Some([0x80 | id.index() as u8; 32])
    }

    fn check(s: &Scenario) -> Result<(), TestCaseError> {
        let n = s.deps.len();
        let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let dep_names: Vec<Vec<&str>> = s
            .deps
            .iter()
            .map(|ds| ds.iter().map(|&d| names[d].as_str()).collect())
            .collect();
        let edges: Vec<(&str, &[&str])> = (0..n)
            .map(|i| (names[i].as_str(), dep_names[i].as_slice()))
            .collect();
        let mut case = Case::new(&edges);
        for i in 0..n {
            let spec = &mut case.specs[i];
            if s.failing[i] {
                spec.result = failed();
                spec.identity = None;
            } else if s.up_to_date[i] {
                spec.result = TaskResult::UpToDate;
            }
        }
        let options = Options {
            force: s.force,
            force_all: s.force_all,
            only: s.only,
            keep_going: s.keep_going,
            jobs: s.jobs,
            began: None,
        };
        let targets: Vec<TaskId> = s.targets.iter().map(|&i| Graph::id(i)).collect();
        let reports = case.drive_ids(&targets, &options, &recorded_for_proptest, |_| {});
        let world = case.world();

        // The wanted set, computed here rather than by the graph.
        let mut wanted = vec![false; n];
        let mut stack = s.targets.clone();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut wanted[i], true) && !s.only {
                stack.extend(&s.deps[i]);
            }
        }

        // Every wanted task is reported exactly once, in run order; so is it to the reporter.
        let order: Vec<usize> = case
            .graph
            .topo_order()
            .into_iter()
            .map(TaskId::index)
            .filter(|&i| wanted[i])
            .collect();
        let reported: Vec<usize> = reports.iter().map(|r| r.id.index()).collect();
        prop_assert_eq!(&reported, &order);
        let mut told: Vec<&str> = world.finished.iter().map(|(t, _)| t.as_str()).collect();
        told.sort();
        let mut expected_told: Vec<&str> = order.iter().map(|&i| names[i].as_str()).collect();
        expected_told.sort();
        prop_assert_eq!(told, expected_told);
        let result: BTreeMap<usize, &TaskResult> =
            reports.iter().map(|r| (r.id.index(), &r.result)).collect();

        // Each task runs at most once, only if wanted, never more than `jobs` at once.
        let mut calls: BTreeMap<usize, &Call> = BTreeMap::new();
        for call in &world.calls {
            prop_assert!(wanted[call.task], "{} ran but is not wanted", call.task);
            prop_assert!(
                calls.insert(call.task, call).is_none(),
                "{} ran twice",
                call.task
            );
        }
        prop_assert!(world.max_running <= s.jobs.max(1));
        prop_assert_eq!(world.running, 0);

        for (&i, call) in &calls {
            // Its deps in the run all ended, successfully, before it started.
            let start = world.seq(i, Step::Start).expect("a call has a start");
            for &d in &s.deps[i] {
                if !wanted[d] {
                    continue;
                }
                let ended = world.seq(d, Step::End);
                prop_assert!(
                    ended.is_some_and(|e| e < start),
                    "t{} started at {} before its dep t{} ended ({:?})",
                    i,
                    start,
                    d,
                    ended
                );
                prop_assert!(
                    result[&d].succeeded(),
                    "t{i} ran below t{d}: {:?}",
                    result[&d]
                );
            }
            // The reporter heard of the same order: its deps' ends, then its start.
            let heard = |name: &str, start: bool| {
                world
                    .reported
                    .iter()
                    .position(|(n, st)| n == name && *st == start)
            };
            let heard_start = heard(&names[i], true);
            prop_assert!(heard_start.is_some(), "t{} started unreported", i);
            for &d in s.deps[i].iter().filter(|&&d| wanted[d]) {
                let heard_end = heard(&names[d], false);
                prop_assert!(
                    heard_end.is_some_and(|e| Some(e) < heard_start),
                    "the reporter heard of t{}'s start before t{}'s end: {:?}",
                    i,
                    d,
                    world.reported
                );
            }
            // It got its deps' identities: from this run, or recorded for deps outside.
            let expected_deps: Vec<DepEntry> = s.deps[i]
                .iter()
                .map(|&d| DepEntry {
                    name: names[d].clone(),
                    identity: if wanted[d] {
                        identity_of(d)
                    } else {
                        recorded_for_proptest(Graph::id(d)).unwrap()
                    },
                })
                .collect();
            prop_assert_eq!(&call.deps, &expected_deps);
            prop_assert_eq!(
                call.forced,
                s.force_all || (s.force && s.targets.contains(&i))
            );
            prop_assert_eq!(result[&i], &case.specs[i].result);
        }

        // Below a failure (through wanted deps): skipped.
        let mut below_failure = vec![false; n];
        for &i in &order {
            below_failure[i] = s.deps[i]
                .iter()
                .any(|&d| wanted[d] && (below_failure[d] || result[&d].is_failure()));
        }
        for &i in &order {
            let r = result[&i];
            if calls.contains_key(&i) {
                continue;
            }
            match r {
                TaskResult::Skipped { dep } => {
                    let dep = names.iter().position(|t| t == dep).expect("a task");
                    prop_assert!(
                        s.deps[i].contains(&dep) && wanted[dep] && !result[&dep].succeeded(),
                        "t{i} skipped because of t{dep}: {:?}",
                        result[&dep]
                    );
                }
                TaskResult::Cancelled => prop_assert!(!below_failure[i]),
                other => prop_assert!(false, "t{i} did not run but is {other:?}"),
            }
            if below_failure[i] {
                prop_assert!(matches!(r, TaskResult::Skipped { .. }), "t{i}: {r:?}");
            }
            let deps_ok = s.deps[i]
                .iter()
                .all(|&d| !wanted[d] || result[&d].succeeded());
            if deps_ok && !s.keep_going {
                prop_assert_eq!(r, &TaskResult::Cancelled, "t{}", i);
            }
        }
        let any_failure = calls.keys().any(|&i| result[&i].is_failure());
        if s.keep_going || !any_failure {
            // Everything that is not below a failure ran.
            for &i in &order {
                prop_assert!(
                    below_failure[i] || calls.contains_key(&i),
                    "t{i} did not run: {:?}",
                    result[&i]
                );
            }
        } else if s.jobs == 1 {
            // One at a time: nothing starts after the first failure.
            let first = world
                .steps
                .iter()
                .find(|&&(_, i, step)| step == Step::End && result[&i].is_failure())
                .map(|s| s.0)
                .expect("a failure ended");
            prop_assert!(
                world
                    .steps
                    .iter()
                    .all(|&(seq, _, step)| step == Step::End || seq < first),
                "a task started after the failure: {:?}",
                world.steps
            );
        }
        Ok(())
    }

    fn config(cases: u32) -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases);
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config(200))]

        #[test]
        fn random_dags_keep_the_scheduling_invariants(s in scenario()) {
            check(&s)?;
        }
    }
}
