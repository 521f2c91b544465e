//! The scheduler: which task runs when. Each wanted task moves through one lifecycle
//! (waiting → ready → running → done), changed only by [`Scheduler::set`]. Ready tasks start,
//! up to `-j` at a time, longest remaining critical path first. A task is handed to the
//! [`Runner`] only when all its deps are done, so it is decided (and its probe run) in the
//! world they left. Runners work on threads and report back through a channel; everything
//! the user sees is printed from the scheduler's thread. See "Scheduling" in docs/design.md.

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

    fn succeeded(&self) -> bool {
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
}

/// Ctrl-C / SIGTERM as the scheduler sees them: how many have arrived. The first stops the
/// run gracefully, the second forcefully.
pub trait Interrupts: Sync {
    fn count(&self) -> usize;
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

/// Messages from worker threads.
enum Message {
    Event(TaskId, Event),
    Done(TaskId, Finished),
}

struct Scheduler<'a> {
    graph: &'a Graph,
    began: std::time::Instant,
    started: HashMap<TaskId, Duration>,
    phases: HashMap<TaskId, Phase>,
    ready: BinaryHeap<(u64, std::cmp::Reverse<TaskId>)>,
    priority: HashMap<TaskId, u64>,
    reports: Vec<Report>,
    running: usize,
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
    recorded_identity: &dyn Fn(TaskId) -> Option<Hash>,
) -> Vec<Report> {
    let wanted = if options.only {
        let mut order = graph.topo_order();
        order.retain(|id| targets.contains(id));
        order
    } else {
        graph.closure(targets)
    };
    let mut s = Scheduler {
        graph,
        began: std::time::Instant::now(),
        started: HashMap::new(),
        phases: HashMap::with_capacity(wanted.len()),
        ready: BinaryHeap::new(),
        priority: critical_path(graph, &wanted, runner),
        reports: Vec::with_capacity(wanted.len()),
        running: 0,
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
    let mut stopping = false;
    let mut seen_interrupts = 0;
    std::thread::scope(|scope| {
        loop {
            let interrupts_now = interrupts.count();
            if interrupts_now > seen_interrupts {
                seen_interrupts = interrupts_now;
                stopping = true;
                let groups = s.running_groups();
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
            while !stopping && s.running < jobs {
                let Some((_, std::cmp::Reverse(id))) = s.ready.pop() else {
                    break;
                };
                s.set(id, Phase::Running { group: None });
                s.started.insert(id, s.began.elapsed());
                let deps = s.dep_entries(id, recorded_identity);
                let forced = options.force_all || (options.force && targets.contains(&id));
                let tx = tx.clone();
                scope.spawn(move || {
                    let send = |event| {
                        let _ = tx.send(Message::Event(id, event));
                    };
                    let finished = runner.run(id, deps, forced, &send);
                    let _ = tx.send(Message::Done(id, finished));
                });
            }
            if s.running == 0 {
                break;
            }
            // Wake up now and then to notice interrupts even when no task says anything.
            let Ok(message) = rx.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            match message {
                Message::Event(id, event) => s.event(id, event, reporter),
                Message::Done(id, finished) => {
                    let ok = finished.result.succeeded();
                    s.finish(id, finished, reporter);
                    if !ok && !options.keep_going {
                        stopping = true;
                    }
                }
            }
        }
    });
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
                None => TaskResult::Cancelled,
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

    fn event(&mut self, id: TaskId, event: Event, reporter: &mut dyn Reporter) {
        let task = self.graph.task(id);
        match event {
            Event::Started { causes } => reporter.started(task, &causes),
            Event::Group(pgid) => self.set(id, Phase::Running { group: Some(pgid) }),
            Event::Line(stream, text) => reporter.line(task, stream, &text),
            Event::Note(text) => reporter.note(&text),
        }
    }

    /// A runner finished with `id`: record it and release its dependents.
    fn finish(&mut self, id: TaskId, finished: Finished, reporter: &mut dyn Reporter) {
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
        reporter.finished(self.graph.task(id), &report);
        self.reports.push(report);
        if !ok {
            return;
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

    /// A dep of `id` that ended without success (for "skipped: dep failed").
    fn failed_dep(&self, id: TaskId) -> Option<TaskId> {
        self.graph
            .deps(id)
            .iter()
            .copied()
            .find(|d| matches!(self.phases.get(d), Some(Phase::Done { ok: false, .. })))
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
