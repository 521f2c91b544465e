//! The real [`Runner`]: decides a ready task against the store, runs its command when it
//! drifted (with retries), and commits the result the moment it is known. See "Running"
//! in docs/design.md.

use std::time::{Duration, Instant};

use crate::fingerprint::{DepEntry, FileEntry, Hash, Record};
use crate::graph::{Task, TaskId};
use crate::log;
use crate::plan::{Cause, Context, Current};
use crate::process::{self, Exit};
use crate::state::{Outcome, State, StateError, Success, now_ms};
use crate::work::{Event, Finished, Interrupts, Runner, TaskResult};

/// How long a process group gets between SIGTERM and SIGKILL (SPEC §6).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs tasks for real.
pub struct TaskRunner<'a> {
    pub ctx: &'a Context<'a>,
    pub state: &'a State,
    pub interrupts: &'a dyn Interrupts,
}

impl Runner for TaskRunner<'_> {
    fn run(
        &self,
        id: TaskId,
        deps: Vec<DepEntry>,
        forced: bool,
        events: &dyn Fn(Event),
    ) -> Finished {
        let started = Instant::now();
        match self.decide_and_run(id, deps, forced, events) {
            Ok(finished) => finished,
            // The store failed under us: the task cannot be recorded, so it did not succeed.
            Err(e) => {
                events(Event::Note(format!(
                    "{}: {e}",
                    self.ctx.project.graph.task(id).name
                )));
                Finished {
                    result: TaskResult::Failed {
                        exit: format!("state store: {e}"),
                        log: None,
                    },
                    causes: Vec::new(),
                    duration: started.elapsed(),
                    identity: None,
                }
            }
        }
    }

    fn expected(&self, id: TaskId) -> Option<Duration> {
        let name = &self.ctx.project.graph.task(id).name;
        let ms = self.state.success_duration(name).ok()??;
        Some(Duration::from_millis(ms))
    }
}

impl TaskRunner<'_> {
    fn decide_and_run(
        &self,
        id: TaskId,
        deps: Vec<DepEntry>,
        forced: bool,
        events: &dyn Fn(Event),
    ) -> Result<Finished, StateError> {
        let task = self.ctx.project.graph.task(id);
        let probe = self.ctx.probes(&[id], 1).pop().flatten();
        let current = self.ctx.current(id, deps, probe)?;
        let (causes, previous) = self.ctx.causes_and_success(id, &current.record, forced)?;
        let declares = !task.outputs.is_empty() || task.probe.is_some();
        if causes.is_empty() {
            if current.hashed_any {
                self.state.save_stat_cache(&task.name, &current.stats)?;
            }
            // Up to date: the last success has this very fingerprint, so it need not be
            // computed again.
            let identity = match (&previous, declares) {
                (Some(previous), false) => previous.fingerprint,
                _ => current.record.identity(declares),
            };
            return Ok(Finished {
                result: TaskResult::UpToDate,
                causes,
                duration: Duration::ZERO,
                identity: Some(identity),
            });
        }
        // Ctrl-C (or a restart) while this task was being decided: do not start it.
        if self.interrupts.stopping(id) {
            let result = TaskResult::Cancelled;
            return Ok(Finished {
                result,
                causes,
                duration: Duration::ZERO,
                identity: None,
            });
        }
        events(Event::Started {
            causes: causes.clone(),
        });
        let started = Instant::now();
        let (result, record) = if task.is_group() {
            self.state.begin(&task.name, "")?;
            (TaskResult::Ran, Some(current.record.clone()))
        } else {
            self.execute(id, task, &causes, &current, events)?
        };
        let duration = started.elapsed();
        let Some(record) = record else {
            let (outcome, exit_code) = match &result {
                TaskResult::TimedOut { .. } => (Outcome::TimedOut, None),
                TaskResult::Interrupted { .. } => (Outcome::Interrupted, None),
                TaskResult::Failed { exit, .. } => (Outcome::Failed, exit.parse().ok()),
                _ => (Outcome::Failed, None),
            };
            self.state
                .fail(&task.name, outcome, exit_code, duration.as_millis() as u64)?;
            return Ok(Finished {
                result,
                causes,
                duration,
                identity: None,
            });
        };
        let fingerprint = record.fingerprint();
        let identity = if declares {
            record.identity(declares)
        } else {
            fingerprint
        };
        // The kept contents only change when the inputs did: a task re-run because of a dep
        // (a whole cone below a change) keeps its references as they are.
        let same_inputs = previous.is_some_and(|p| p.record.inputs == record.inputs);
        let contents = if same_inputs {
            None
        } else {
            Some(self.kept_contents(&record.inputs)?)
        };
        let success = Success {
            fingerprint,
            identity,
            record,
            finished_at_ms: now_ms(),
            duration_ms: duration.as_millis() as u64,
        };
        // The stat cache only changes when a file had to be read.
        let stats = current.hashed_any.then_some(current.stats.as_slice());
        self.state
            .succeed(&task.name, &success, contents.as_deref(), stats)?;
        Ok(Finished {
            result,
            causes,
            duration,
            identity: Some(identity),
        })
    }

    /// Runs a task's command (with retries). On success, returns the record to commit: the
    /// inputs as they were decided, the outputs and probe as the task left them.
    fn execute(
        &self,
        id: TaskId,
        task: &Task,
        causes: &[Cause],
        current: &Current,
        events: &dyn Fn(Event),
    ) -> Result<(TaskResult, Option<Record>), StateError> {
        let ctx = self.ctx;
        let env = ctx.task_process_env(task, causes);
        let script = task.run.as_deref().unwrap_or_default();
        let mut delay = task.retry_delay;
        let mut attempt = 0;
        loop {
            let mut log_file = log::TaskLog::new(&ctx.project.root, &task.name);
            self.state.begin(&task.name, &log_file.path)?;
            let interrupted = || self.interrupts.stopping(id);
            let spec = process::Spec {
                shell: &ctx.project.settings.shell,
                script,
                cwd: &ctx.project.root,
                env: &env,
                timeout: task.timeout,
                stopped_from_outside: Some(&interrupted),
            };
            let mut group = None;
            let exit = process::run(
                &spec,
                &mut |pgid| {
                    group = Some(pgid);
                    let _ = self.state.set_pgid(&task.name, pgid);
                    events(Event::Group(pgid));
                },
                &mut |stream, line| {
                    log_file.line(line);
                    events(Event::Line(stream, line.to_string()));
                },
            );
            // No process of a task outlives it (SPEC §6): a background process it left
            // behind (`cmd &`) is stopped now, gracefully first.
            // (After Ctrl-C the scheduler is already stopping the group: leave it to that.)
            if let Some(pgid) = group
                && !self.interrupts.stopping(id)
                && process::group_alive(pgid)
            {
                log_file.line("devgraph: stopping processes the task left running");
                process::stop_group(pgid, STOP_GRACE);
            }
            let log = Some(log_file.path.clone());
            let result = match exit {
                _ if self.interrupts.stopping(id) => TaskResult::Interrupted { log },
                Exit::Code(0) => TaskResult::Ran,
                Exit::Code(code) => TaskResult::Failed {
                    exit: code.to_string(),
                    log,
                },
                Exit::Signal(signal) => TaskResult::Failed {
                    exit: format!("signal {signal}"),
                    log,
                },
                Exit::TimedOut(after) => {
                    log_file.line(&format!(
                        "devgraph: timed out after {}",
                        crate::duration::format(after)
                    ));
                    TaskResult::TimedOut {
                        after_ms: after.as_millis() as u64,
                        log,
                    }
                }
                Exit::SpawnFailed(message) => TaskResult::Failed {
                    exit: format!("cannot start: {message}"),
                    log,
                },
            };
            match &result {
                TaskResult::Failed { exit, .. } if exit.parse::<i32>().is_ok() => {
                    log_file.line(&format!("devgraph: exited with code {exit}"))
                }
                TaskResult::Failed { exit, .. } => log_file.line(&format!("devgraph: {exit}")),
                TaskResult::Interrupted { .. } => log_file.line("devgraph: interrupted"),
                _ => {}
            }
            if result == TaskResult::Ran {
                let mut record = current.record.clone();
                record.outputs = ctx.outputs(id);
                record.probe = ctx.probes(&[id], 1).pop().flatten();
                return Ok((result, Some(record)));
            }
            if attempt >= task.retries || matches!(result, TaskResult::Interrupted { .. }) {
                return Ok((result, None));
            }
            attempt += 1;
            events(Event::Note(format!(
                "{} failed; retry {attempt} of {} in {}",
                task.name,
                task.retries,
                crate::duration::format(delay)
            )));
            // Wait out the delay, but give up at once on Ctrl-C: no further attempt.
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.interrupts.stopping(id) {
                    return Ok((TaskResult::Interrupted { log: None }, None));
                }
                std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
            }
            delay = delay.saturating_mul(2);
        }
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

/// Stops process groups for real: each in its own thread, so N groups take one grace
/// period, not N.
pub struct GroupStopper;

impl crate::work::Stopper for GroupStopper {
    fn stop(&self, groups: &[i32], graceful: bool) {
        let grace = if graceful { STOP_GRACE } else { Duration::ZERO };
        for &pgid in groups {
            // Detached: the scheduler keeps receiving the tasks' last words meanwhile.
            std::thread::spawn(move || process::stop_group(pgid, grace));
        }
    }
}
