//! Deciding drift: the record each task would have now (command, env, files, probe, deps),
//! and the causes that make it differ from its last success. `run`, `plan`, `why` and
//! `status` all decide through here. See "Drift" in docs/design.md.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::digest::{self, CacheEntry};
use crate::fingerprint::{
    self, Change, DepEntry, EnvEntry, EnvValue, FileEntry, Hash, ProbeState, Record,
};
use crate::graph::{Task, TaskId};
use crate::load::Project;
use crate::probe;
use crate::secret;
use crate::state::{Attempt, Outcome, State, StateError, Success};

/// Why a task will run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    NeverRun,
    /// The last attempt failed or timed out.
    Failed {
        exit_code: Option<i32>,
        timed_out: bool,
        log: Option<String>,
    },
    /// The last attempt was cut short (Ctrl-C, or devgraph was killed).
    Interrupted {
        log: Option<String>,
    },
    Forced,
    /// A component of the fingerprint differs from the last success.
    Changed(Change),
    /// A dep will run first (`plan`, `why`): `certain` when the dep has no outputs or probe,
    /// so its identity is its fingerprint and certainly changes; otherwise this task re-runs
    /// only if the dep's output changes.
    DepPending {
        dep: String,
        certain: bool,
    },
}

impl Cause {
    /// The drift kind for `DEVGRAPH_DRIFT` (SPEC §6).
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::NeverRun => "never-run",
            Cause::Failed { .. } => "failed",
            Cause::Interrupted { .. } => "interrupted",
            Cause::Forced => "forced",
            Cause::Changed(change) => change.kind(),
            Cause::DepPending { .. } => "deps",
        }
    }
}

/// `DEVGRAPH_DRIFT`: the distinct kinds of the causes, comma-separated, in SPEC order.
pub fn drift_kinds(causes: &[Cause]) -> String {
    const ORDER: [&str; 10] = [
        "never-run",
        "failed",
        "interrupted",
        "command",
        "env",
        "inputs",
        "outputs",
        "probe",
        "deps",
        "forced",
    ];
    let kinds: HashSet<&str> = causes.iter().map(Cause::kind).collect();
    ORDER
        .iter()
        .filter(|k| kinds.contains(*k))
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// The record a task has now, and what hashing its files learnt.
pub struct Current {
    pub record: Record,
    /// Stats and hashes of every file looked at, for the stat cache.
    pub stats: Vec<(String, CacheEntry)>,
    /// Whether any file had to be read (the stat cache is then worth saving).
    pub hashed_any: bool,
}

/// What decides drift: the project, what was recorded, and the environment of this run.
pub struct Context<'a> {
    pub project: &'a Project,
    pub state: Option<&'a State>,
    key: Hash,
    /// Values of the `dotenv` files, in file order (later files win).
    dotenv: Vec<(String, String)>,
    /// Expands inputs, reading each `.gitignore` once for every task of this check.
    expander: digest::Expander,
    /// Expands outputs, to which `.gitignore` does not apply.
    outputs: digest::Expander,
}

impl<'a> Context<'a> {
    /// Reads the secrets key and the dotenv files.
    pub fn new(project: &'a Project, state: Option<&'a State>) -> Result<Self, String> {
        let key = secret::load_or_create_key()
            .map_err(|e| format!("cannot read the devgraph key: {e}"))?;
        let mut dotenv: Vec<(String, String)> = Vec::new();
        for file in &project.settings.dotenv {
            let path = project.root.join(file);
            match dotenvy::from_path_iter(&path) {
                Ok(iter) => {
                    for item in iter {
                        let (name, value) = item.map_err(|e| format!("{file}: {e}"))?;
                        dotenv.retain(|(n, _)| *n != name);
                        dotenv.push((name, value));
                    }
                }
                // "loaded if present" (SPEC §3).
                Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{file}: {e}")),
            }
        }
        let expander = digest::Expander::new(&project.root);
        let outputs = digest::Expander::for_outputs(&project.root);
        Ok(Context {
            project,
            state,
            key,
            dotenv,
            expander,
            outputs,
        })
    }

    /// The environment a task's command and probe get on top of the process environment:
    /// `[env]`, dotenv values, the task's `env`, its matrix values, in that order (later wins).
    pub fn command_env(&self, task: &Task) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |name: &str, value: &str| {
            env.retain(|(n, _)| n != name);
            env.push((name.to_string(), value.to_string()));
        };
        for (n, v) in &self.project.env {
            set(n, v);
        }
        for (n, v) in &self.dotenv {
            set(n, v);
        }
        for (n, v) in task.env.iter().chain(&task.matrix) {
            set(n, v);
        }
        env
    }

    /// The env part of a fingerprint: plain values from the task files, dotenv and
    /// `hash_env` values only as keyed hashes.
    fn env_entries(&self, task: &Task) -> Vec<EnvEntry> {
        let mut entries: HashMap<String, EnvValue> = HashMap::new();
        for (n, v) in &self.project.env {
            entries.insert(n.clone(), EnvValue::Plain(v.clone()));
        }
        for (n, v) in &self.dotenv {
            entries.insert(n.clone(), EnvValue::Hidden(secret::hide(&self.key, v)));
        }
        for (n, v) in task.env.iter().chain(&task.matrix) {
            entries.insert(n.clone(), EnvValue::Plain(v.clone()));
        }
        // A `hash_env` variable is fingerprinted with the value the command will get: from
        // the task files or dotenv when they set it, else from devgraph's environment.
        let command_env = self.command_env(task);
        for name in &task.hash_env {
            let from_files = command_env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone());
            let value = match from_files.or_else(|| std::env::var(name).ok()) {
                Some(v) => EnvValue::Hidden(secret::hide(&self.key, &v)),
                None => EnvValue::Unset,
            };
            entries.insert(name.clone(), value);
        }
        let mut entries: Vec<EnvEntry> = entries
            .into_iter()
            .map(|(name, value)| EnvEntry { name, value })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// Whether `why`/`plan` may show a variable's values (it is in the task files anyway).
    pub fn is_secret(&self, task: &Task, name: &str) -> bool {
        task.hash_env.iter().any(|n| n == name) || self.dotenv.iter().any(|(n, _)| n == name)
    }

    /// Files named by dotenv: their content must never be kept by the store.
    pub fn dotenv_files(&self) -> &[String] {
        &self.project.settings.dotenv
    }

    /// The record of `id` as it is now: `deps` are the identities its deps have now, and
    /// `probe` what its probe printed just now.
    pub fn current(
        &self,
        id: TaskId,
        deps: Vec<DepEntry>,
        probe: Option<ProbeState>,
    ) -> Result<Current, StateError> {
        let task = self.project.graph.task(id);
        let mut stats = Vec::new();
        let mut hashed_any = false;
        let root = &self.project.root;
        let implicit = implicit_inputs(root, task);
        let mut input_paths = self.expander.expand(&task.inputs);
        // A script that is also a declared input counts as declared.
        let implicit: Vec<String> = implicit
            .into_iter()
            .filter(|p| !input_paths.contains(p))
            .collect();
        input_paths.extend(implicit.iter().cloned());
        input_paths.sort();
        let output_paths = self.outputs.expand(&task.outputs);
        // What a task produces is not what it consumes: an input glob that also names a
        // declared output (`src/**` and `src/gen.txt`) leaves the output out, or every run
        // would drift the task again.
        if !output_paths.is_empty() {
            let produced: std::collections::HashSet<&String> = output_paths.iter().collect();
            input_paths.retain(|p| !produced.contains(p));
        }
        // A task with no files has no stat cache to read.
        let cache = match self.state {
            Some(state) if !(input_paths.is_empty() && output_paths.is_empty()) => {
                state.stat_cache(&task.name)?
            }
            _ => HashMap::new(),
        };
        let mut inputs = hash(root, &input_paths, &cache, &mut stats, &mut hashed_any);
        for entry in &mut inputs {
            entry.implicit = implicit.contains(&entry.path);
        }
        let mut outputs = hash(root, &output_paths, &cache, &mut stats, &mut hashed_any);
        self.hide_dotenv_files(&mut inputs, &mut outputs, &mut stats);
        let mut deps = deps;
        deps.sort_by(|a, b| a.name.cmp(&b.name));
        let record = Record {
            version: fingerprint::RECORD_VERSION,
            command: task.run.clone(),
            env: self.env_entries(task),
            inputs,
            outputs,
            probe: if task.is_group() { None } else { probe },
            deps,
        };
        Ok(Current {
            record,
            stats,
            hashed_any,
        })
    }

    /// The outputs of `id` as they are now (after a run: what it produced).
    pub fn outputs(&self, id: TaskId) -> Vec<FileEntry> {
        let task = self.project.graph.task(id);
        // A fresh walk: the task may have just created outputs (and .gitignore files).
        let paths = self.outputs.expand(&task.outputs);
        // Just written: the stat cache cannot vouch for them.
        let mut outputs = hash(
            &self.project.root,
            &paths,
            &HashMap::new(),
            &mut Vec::new(),
            &mut false,
        );
        self.hide_dotenv_files(&mut [], &mut outputs, &mut Vec::new());
        outputs
    }

    /// A file named by `dotenv` holds secrets: a plain hash of it would let anyone with the
    /// state file check guesses (SPEC §8). Its entry keeps only a keyed hash, and it gets no
    /// stat-cache entry (which would hold the plain hash).
    fn hide_dotenv_files(
        &self,
        inputs: &mut [FileEntry],
        outputs: &mut [FileEntry],
        stats: &mut Vec<(String, CacheEntry)>,
    ) {
        let secret_file = |path: &str| self.project.settings.dotenv.iter().any(|f| f == path);
        for entry in inputs.iter_mut().chain(outputs.iter_mut()) {
            if secret_file(&entry.path) {
                entry.hash = *blake3::keyed_hash(&self.key, &entry.hash).as_bytes();
            }
        }
        stats.retain(|(path, _)| !secret_file(path));
    }

    /// Why `id` must run, given its current record; empty when it is up to date.
    pub fn causes(
        &self,
        id: TaskId,
        current: &Record,
        forced: bool,
    ) -> Result<Vec<Cause>, StateError> {
        Ok(self.causes_and_success(id, current, forced)?.0)
    }

    /// [`Context::causes`], and the last success they were decided against (the runner
    /// compares its inputs after a run, and need not read it again).
    pub fn causes_and_success(
        &self,
        id: TaskId,
        current: &Record,
        forced: bool,
    ) -> Result<(Vec<Cause>, Option<Success>), StateError> {
        let name = &self.project.graph.task(id).name;
        let (success, attempt) = match self.state {
            Some(state) => state.last(name)?,
            None => (None, None),
        };
        let mut causes = attempt_causes(success.as_ref(), attempt.as_ref());
        if let Some(success) = &success
            && (success.fingerprint != current.fingerprint() || current_probe_timed_out(current))
        {
            {
                causes.extend(
                    fingerprint::diff(&success.record, current)
                        .into_iter()
                        .map(Cause::Changed),
                );
            }
        }
        if forced {
            causes.push(Cause::Forced);
        }
        Ok((causes, success))
    }

    /// The identity `id` has according to its last success, if any.
    pub fn recorded_identity(&self, id: TaskId) -> Result<Option<Hash>, StateError> {
        let name = &self.project.graph.task(id).name;
        Ok(match self.state {
            Some(state) => state.success(name)?.map(|s| s.identity),
            None => None,
        })
    }

    /// Runs the probes of `ids` in parallel; `None` for tasks without one.
    pub fn probes(&self, ids: &[TaskId], parallel: usize) -> Vec<Option<ProbeState>> {
        let graph = &self.project.graph;
        let with_probe: Vec<(usize, &Task)> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (i, graph.task(id)))
            .filter(|(_, t)| t.probe.is_some() && !t.is_group())
            .collect();
        let specs: Vec<probe::Probe> = with_probe
            .iter()
            .map(|(_, t)| probe::Probe {
                script: t.probe.as_deref().unwrap_or_default(),
                env: self.task_process_env(t, &[]),
                timeout: t.probe_timeout,
            })
            .collect();
        let outcomes = probe::run_all(
            &self.project.settings.shell,
            &self.project.root,
            &specs,
            parallel.max(1),
        );
        let mut states = vec![None; ids.len()];
        for ((i, _), outcome) in with_probe.into_iter().zip(outcomes) {
            states[i] = Some(probe_state(outcome));
        }
        states
    }

    /// The full env of a task's processes: `command_env` plus `DEVGRAPH_*` (SPEC §6).
    pub fn task_process_env(&self, task: &Task, causes: &[Cause]) -> Vec<(String, String)> {
        let mut env = self.command_env(task);
        env.push(("DEVGRAPH_TASK".into(), task.name.clone()));
        env.push((
            "DEVGRAPH_ROOT".into(),
            self.project.root.display().to_string(),
        ));
        env.push(("DEVGRAPH_DRIFT".into(), drift_kinds(causes)));
        env
    }
}

fn current_probe_timed_out(record: &Record) -> bool {
    matches!(record.probe, Some(ProbeState::TimedOut { .. }))
}

/// Causes from the last attempt alone: never run, failed, interrupted.
fn attempt_causes(success: Option<&Success>, attempt: Option<&Attempt>) -> Vec<Cause> {
    let failed = attempt.and_then(|a| match a.outcome {
        Outcome::Failed | Outcome::TimedOut => Some(Cause::Failed {
            exit_code: a.exit_code,
            timed_out: a.outcome == Outcome::TimedOut,
            log: a.log.clone(),
        }),
        Outcome::Interrupted | Outcome::Running => Some(Cause::Interrupted { log: a.log.clone() }),
        Outcome::Ok => None,
    });
    match (success, failed) {
        (_, Some(cause)) => vec![cause],
        (None, None) => vec![Cause::NeverRun],
        (Some(_), None) => Vec::new(),
    }
}

/// Turns a probe outcome into the state a fingerprint holds.
pub fn probe_state(outcome: probe::Outcome) -> ProbeState {
    match outcome {
        probe::Outcome::Exited { status, stdout } => ProbeState::exited(status, &stdout),
        probe::Outcome::TimedOut { after_ms } => ProbeState::TimedOut { after_ms },
        probe::Outcome::Failed { message } => ProbeState::Failed { message },
    }
}

/// Hashes files through the stat cache; unreadable files are left out (a vanished input
/// then shows as removed, a vanished output as missing).
fn hash(
    root: &Path,
    paths: &[String],
    cache: &HashMap<String, CacheEntry>,
    stats: &mut Vec<(String, CacheEntry)>,
    hashed_any: &mut bool,
) -> Vec<FileEntry> {
    let lookup = |p: &str| cache.get(p).copied();
    digest::hash_files(root, paths, &lookup)
        .into_iter()
        .filter_map(Result::ok)
        .map(|h| {
            *hashed_any |= !h.from_cache;
            stats.push((h.path.clone(), h.entry));
            FileEntry {
                path: h.path,
                hash: h.entry.hash,
                implicit: false,
            }
        })
        .collect()
}

/// The script a command starts with, when it is a file in the project (SPEC §3): the first
/// word of `run` and of `probe`, root-relative.
pub fn implicit_inputs(root: &Path, task: &Task) -> Vec<String> {
    let mut found = Vec::new();
    for command in [&task.run, &task.probe].into_iter().flatten() {
        let Some(word) = command.split_whitespace().next() else {
            continue;
        };
        let word = word.trim_matches(|c| c == '"' || c == '\'');
        let relative = word.strip_prefix("./").unwrap_or(word);
        if relative.is_empty()
            || relative.starts_with('/')
            || relative.split('/').any(|c| c == "..")
        {
            continue;
        }
        // Symlinks never count as files (see "Input files and the stat cache" in docs/design.md).
        let is_file = std::fs::symlink_metadata(root.join(relative)).is_ok_and(|m| m.is_file());
        if is_file && !found.iter().any(|f| f == relative) {
            found.push(relative.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_kinds_follow_the_spec_order_once_each() {
        let causes = vec![
            Cause::Forced,
            Cause::Changed(Change::Probe {
                old: None,
                new: None,
            }),
            Cause::Changed(Change::Env {
                name: "A".into(),
                old: None,
                new: None,
            }),
            Cause::Changed(Change::Probe {
                old: None,
                new: None,
            }),
        ];
        assert_eq!(drift_kinds(&causes), "env,probe,forced");
        assert_eq!(drift_kinds(&[]), "");
    }

    #[test]
    fn attempt_alone_decides_never_run_failed_and_interrupted() {
        let attempt = |outcome| Attempt {
            outcome,
            exit_code: Some(3),
            started_at_ms: 0,
            duration_ms: None,
            log: Some("l".into()),
            pgid: None,
        };
        assert_eq!(attempt_causes(None, None), vec![Cause::NeverRun]);
        assert_eq!(
            attempt_causes(None, Some(&attempt(Outcome::Failed))),
            vec![Cause::Failed {
                exit_code: Some(3),
                timed_out: false,
                log: Some("l".into())
            }]
        );
        assert_eq!(
            attempt_causes(None, Some(&attempt(Outcome::Running))),
            vec![Cause::Interrupted {
                log: Some("l".into())
            }]
        );
        assert_eq!(
            attempt_causes(None, Some(&attempt(Outcome::Ok))),
            vec![Cause::NeverRun]
        );
    }
}

/// What `run` would do with a task, decided without running anything but probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    WillRun,
    /// Only if a dep's output changes when it runs.
    MayRun,
    UpToDate,
}

/// A task's verdict and its causes.
#[derive(Debug, Clone)]
pub struct Decision {
    pub id: TaskId,
    pub verdict: Verdict,
    pub causes: Vec<Cause>,
    /// The current record (as far as it can be known before deps run).
    pub record: Record,
}

/// Decides every task of `ids` (deps before dependents), as `run` would, without running
/// any task. Probes run first, all in parallel. A dep that would run makes its dependents
/// "will run" when its identity certainly changes (no outputs, no probe), "may run" otherwise.
pub fn decide_all(
    ctx: &Context<'_>,
    ids: &[TaskId],
    forced: &HashSet<TaskId>,
    parallel: usize,
) -> Result<Vec<Decision>, StateError> {
    let graph = &ctx.project.graph;
    let probes = ctx.probes(ids, parallel);
    let mut verdicts: HashMap<TaskId, Verdict> = HashMap::new();
    let mut decisions = Vec::with_capacity(ids.len());
    for (&id, probe) in ids.iter().zip(probes) {
        let mut pending = Vec::new();
        let mut deps = Vec::new();
        for &dep in graph.deps(id) {
            let dep_task = graph.task(dep);
            let recorded = ctx.recorded_identity(dep)?;
            match verdicts.get(&dep) {
                Some(Verdict::WillRun) | Some(Verdict::MayRun) => {
                    let certain = verdicts.get(&dep) == Some(&Verdict::WillRun)
                        && dep_task.outputs.is_empty()
                        && (dep_task.probe.is_none() || dep_task.is_group());
                    pending.push(Cause::DepPending {
                        dep: dep_task.name.clone(),
                        certain,
                    });
                }
                _ => {}
            }
            deps.push(DepEntry {
                name: dep_task.name.clone(),
                identity: recorded.unwrap_or([0; 32]),
            });
        }
        let current = ctx.current(id, deps, probe)?;
        let mut causes = ctx.causes(id, &current.record, forced.contains(&id))?;
        // A dep that never succeeded has no identity yet: that shows as pending, not as a change.
        causes.retain(|c| !matches!(c, Cause::Changed(Change::Dep { name }) if pending.iter().any(|p| matches!(p, Cause::DepPending { dep, .. } if dep == name))));
        causes.extend(pending);
        let verdict = if causes
            .iter()
            .any(|c| !matches!(c, Cause::DepPending { certain: false, .. }))
        {
            Verdict::WillRun
        } else if causes.is_empty() {
            Verdict::UpToDate
        } else {
            Verdict::MayRun
        };
        verdicts.insert(id, verdict);
        decisions.push(Decision {
            id,
            verdict,
            causes,
            record: current.record,
        });
    }
    Ok(decisions)
}
