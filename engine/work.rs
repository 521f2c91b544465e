//! Running the wanted tasks: each is decided when its deps are done (so its probe sees the
//! world they left), run when drifted, and committed to the state as soon as it finishes.
//! Tasks run one at a time, in dependency order. See "Running" in docs/design.md.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::fingerprint::{DepEntry, FileEntry, Hash, Record};
use crate::graph::{Task, TaskId};
use crate::log;
use crate::plan::{Cause, Context, Current};
use crate::process::{self, Exit, Stream};
use crate::state::{Outcome, State, StateError, Success, now_ms};

/// How long a process group gets between SIGTERM and SIGKILL (SPEC §6).
const STOP_GRACE: Duration = Duration::from_secs(5);

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
    /// Not run because a dep failed or was skipped.
    Skipped {
        dep: String,
    },
    /// Not started because the run stopped after a failure.
    Cancelled,
}

impl TaskResult {
    /// Whether the run failed because of this task.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            TaskResult::Failed { .. } | TaskResult::TimedOut { .. }
        )
    }
}

/// One task's part in the run, for the summary.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: TaskId,
    pub result: TaskResult,
    pub causes: Vec<Cause>,
    pub duration: Duration,
}

/// What the run tells the user as it goes.
pub trait Reporter {
    /// A drifted task is about to run.
    fn started(&mut self, task: &Task, causes: &[Cause]);
    /// A line of a running task's output.
    fn line(&mut self, task: &Task, stream: Stream, text: &str);
    /// A task finished (or was found up to date, skipped or cancelled).
    fn finished(&mut self, task: &Task, report: &Report);
    /// A note about the run itself.
    fn note(&mut self, text: &str);
}

/// A task's place in its lifecycle; every change goes through [`Run::set`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Wanted; some dep is not done yet.
    Waiting,
    /// Finished with a result; `identity` is what dependents see (for a success).
    Done {
        identity: Option<Hash>,
        failed: bool,
    },
}

/// Errors that stop a run before or between tasks (not task failures).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RunError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error("cannot write the log of `{task}`: {message}")]
    #[diagnostic(code(devgraph::log_io))]
    Log { task: String, message: String },
}

struct Run<'a, 'r> {
    ctx: &'a Context<'a>,
    state: &'a State,
    reporter: &'r mut dyn Reporter,
    phases: HashMap<TaskId, Phase>,
    reports: Vec<Report>,
}

/// Runs `targets` (with their deps unless `only`) and returns a report per task, in the
/// order they were decided.
pub fn run(
    ctx: &Context<'_>,
    state: &State,
    targets: &[TaskId],
    options: &Options,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Report>, RunError> {
    let graph = &ctx.project.graph;
    let order = if options.only {
        let mut order = graph.topo_order();
        order.retain(|id| targets.contains(id));
        order
    } else {
        graph.closure(targets)
    };
    let mut run = Run {
        ctx,
        state,
        reporter,
        phases: order.iter().map(|&id| (id, Phase::Waiting)).collect(),
        reports: Vec::with_capacity(order.len()),
    };
    let mut stopped = false;
    for &id in &order {
        let task = graph.task(id);
        // A task below a failure is skipped because of it, whatever the policy; only
        // tasks that do not depend on it are cancelled once the run stops.
        if let Some(dep) = run.blocking_dep(id) {
            let dep = graph.task(dep).name.clone();
            run.finish(
                id,
                TaskResult::Skipped { dep },
                Vec::new(),
                Duration::ZERO,
                None,
            );
            continue;
        }
        if stopped {
            run.finish(id, TaskResult::Cancelled, Vec::new(), Duration::ZERO, None);
            continue;
        }
        let forced = options.force_all || (options.force && targets.contains(&id));
        let failed = run.one(id, task, forced)?;
        stopped = failed && !options.keep_going;
    }
    Ok(run.reports)
}

impl Run<'_, '_> {
    /// The single place a task's phase changes.
    fn set(&mut self, id: TaskId, phase: Phase) {
        let previous = self.phases.insert(id, phase);
        debug_assert!(
            matches!(previous, Some(Phase::Waiting)),
            "BUG: task finished twice: {previous:?}"
        );
    }

    fn finish(
        &mut self,
        id: TaskId,
        result: TaskResult,
        causes: Vec<Cause>,
        duration: Duration,
        identity: Option<Hash>,
    ) {
        let failed = !matches!(result, TaskResult::Ran | TaskResult::UpToDate);
        self.set(id, Phase::Done { identity, failed });
        let report = Report {
            id,
            result,
            causes,
            duration,
        };
        self.reporter
            .finished(self.ctx.project.graph.task(id), &report);
        self.reports.push(report);
    }

    /// A dep of `id` that failed or was skipped, if any.
    fn blocking_dep(&self, id: TaskId) -> Option<TaskId> {
        self.ctx
            .project
            .graph
            .deps(id)
            .iter()
            .copied()
            .find(|d| matches!(self.phases.get(d), Some(Phase::Done { failed: true, .. })))
    }

    /// What `id`'s deps produced: their identity in this run, or (for deps outside the run,
    /// with `--only`) the identity of their last success.
    fn dep_entries(&self, id: TaskId) -> Result<Vec<DepEntry>, StateError> {
        let graph = &self.ctx.project.graph;
        let mut entries = Vec::new();
        for &dep in graph.deps(id) {
            let identity = match self.phases.get(&dep) {
                Some(Phase::Done { identity, .. }) => *identity,
                _ => self.ctx.recorded_identity(dep)?,
            };
            entries.push(DepEntry {
                name: graph.task(dep).name.clone(),
                identity: identity.unwrap_or([0; 32]),
            });
        }
        Ok(entries)
    }

    /// Decides and, when drifted, runs one task. Returns whether it failed.
    fn one(&mut self, id: TaskId, task: &Task, forced: bool) -> Result<bool, RunError> {
        let probe = self.ctx.probes(&[id], 1).pop().flatten();
        let deps = self.dep_entries(id)?;
        let current = self.ctx.current(id, deps, probe)?;
        let causes = self.ctx.causes(id, &current.record, forced)?;
        let declares = !task.outputs.is_empty() || task.probe.is_some();
        if causes.is_empty() {
            if current.hashed_any {
                self.state.save_stat_cache(&task.name, &current.stats)?;
            }
            let identity = current.record.identity(declares);
            self.finish(
                id,
                TaskResult::UpToDate,
                causes,
                Duration::ZERO,
                Some(identity),
            );
            return Ok(false);
        }
        self.reporter.started(task, &causes);
        let started = Instant::now();
        let (result, record) = if task.is_group() {
            self.state.begin(&task.name, "")?;
            (TaskResult::Ran, Some(current.record.clone()))
        } else {
            self.execute(id, task, &causes, &current)?
        };
        let duration = started.elapsed();
        match record {
            Some(record) => {
                let identity = record.identity(declares);
                let contents = self.kept_contents(&record.inputs)?;
                let success = Success {
                    fingerprint: record.fingerprint(),
                    identity,
                    record,
                    finished_at_ms: now_ms(),
                    duration_ms: duration.as_millis() as u64,
                };
                self.state.succeed(&task.name, &success, &contents)?;
                self.state.save_stat_cache(&task.name, &current.stats)?;
                self.finish(id, result, causes, duration, Some(identity));
                Ok(false)
            }
            None => {
                let (outcome, exit_code) = match &result {
                    TaskResult::TimedOut { .. } => (Outcome::TimedOut, None),
                    TaskResult::Failed { exit, .. } => (Outcome::Failed, exit.parse().ok()),
                    _ => (Outcome::Failed, None),
                };
                self.state
                    .fail(&task.name, outcome, exit_code, duration.as_millis() as u64)?;
                self.finish(id, result, causes, duration, None);
                Ok(true)
            }
        }
    }

    /// Runs a task's command (with retries). On success, returns the record to commit: the
    /// inputs as they were decided, the outputs and probe as the task left them.
    fn execute(
        &mut self,
        _id: TaskId,
        task: &Task,
        causes: &[Cause],
        current: &Current,
    ) -> Result<(TaskResult, Option<Record>), RunError> {
        let ctx = self.ctx;
        let env = ctx.task_process_env(task, causes);
        let script = task.run.as_deref().unwrap_or_default();
        let mut delay = task.retry_delay;
        let mut attempt = 0;
        loop {
            let (log_path, mut log_file) =
                log::create(&ctx.project.root, &task.name).map_err(|e| RunError::Log {
                    task: task.name.clone(),
                    message: e.to_string(),
                })?;
            self.state.begin(&task.name, &log_path)?;
            let spec = process::Spec {
                shell: &ctx.project.settings.shell,
                script,
                cwd: &ctx.project.root,
                env: &env,
                timeout: task.timeout,
            };
            let state = self.state;
            let reporter = &mut *self.reporter;
            let mut group = None;
            let exit = process::run(
                &spec,
                &mut |pgid| {
                    group = Some(pgid);
                    let _ = state.set_pgid(&task.name, pgid);
                },
                &mut |stream, line| {
                    log::line(&mut log_file, line);
                    reporter.line(task, stream, line);
                },
            );
            // No process of a task outlives it (SPEC §6): a background process it left
            // behind (`cmd &`) is stopped now, gracefully first.
            if let Some(pgid) = group
                && process::group_alive(pgid)
            {
                log::line(
                    &mut log_file,
                    "devgraph: stopping processes the task left running",
                );
                process::stop_group(pgid, STOP_GRACE);
            }
            let result = match exit {
                Exit::Code(0) => TaskResult::Ran,
                Exit::Code(code) => TaskResult::Failed {
                    exit: code.to_string(),
                    log: Some(log_path),
                },
                Exit::Signal(signal) => TaskResult::Failed {
                    exit: format!("signal {signal}"),
                    log: Some(log_path),
                },
                Exit::TimedOut(after) => TaskResult::TimedOut {
                    after_ms: after.as_millis() as u64,
                    log: Some(log_path),
                },
                Exit::SpawnFailed(message) => {
                    log::line(&mut log_file, &format!("devgraph: cannot start: {message}"));
                    TaskResult::Failed {
                        exit: format!("cannot start: {message}"),
                        log: Some(log_path),
                    }
                }
            };
            if result == TaskResult::Ran {
                break Ok((result, Some(self.after_success(task, current)?)));
            }
            if attempt >= task.retries {
                break Ok((result, None));
            }
            attempt += 1;
            self.reporter.note(&format!(
                "{} failed; retry {attempt} of {} in {}",
                task.name,
                task.retries,
                crate::duration::format(delay)
            ));
            std::thread::sleep(delay);
            delay = delay.saturating_mul(2);
        }
    }

    /// The record committed for a success: outputs hashed and the probe run again, now that
    /// the task has changed the world.
    fn after_success(&mut self, task: &Task, current: &Current) -> Result<Record, RunError> {
        let ctx = self.ctx;
        let id = ctx
            .project
            .graph
            .find(&task.name)
            .unwrap_or_else(|| unreachable!("BUG: task not in graph"));
        let mut record = current.record.clone();
        record.outputs = ctx.outputs(id);
        record.probe = ctx.probes(&[id], 1).pop().flatten();
        Ok(record)
    }

    /// The content of small text inputs, kept so `why` can diff them later. Files named by
    /// `dotenv` are never kept; content the store already has is not read again.
    fn kept_contents(&self, inputs: &[FileEntry]) -> Result<Vec<(Hash, String)>, StateError> {
        const MAX: u64 = 64 * 1024;
        let root = &self.ctx.project.root;
        let mut kept = Vec::new();
        for input in inputs {
            if self.ctx.dotenv_files().contains(&input.path) {
                continue;
            }
            if self.state.has_content(&input.hash)? {
                kept.push((input.hash, String::new()));
                continue;
            }
            let path = root.join(&input.path);
            if std::fs::metadata(&path).map_or(true, |m| m.len() > MAX) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // Keep it only if it is still the content that was hashed, and is text.
            if *blake3::hash(&bytes).as_bytes() != input.hash || bytes.contains(&0) {
                continue;
            }
            if let Ok(text) = String::from_utf8(bytes) {
                kept.push((input.hash, text));
            }
        }
        Ok(kept)
    }
}
