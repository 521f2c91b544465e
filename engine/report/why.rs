//! `devgraph why TASK`: every cause of drift at full depth (SPEC §7): diffs of changed text
//! inputs and of the command, old and new probe output, env names (values only when they
//! are not secret), and the dep chain followed down to its root cause.

use std::collections::HashMap;
use std::fmt::Write as _;

use similar::TextDiff;

use crate::fingerprint::Change;
use crate::graph::{Graph, TaskId};
use crate::plan::{Cause, Context, Decision, Verdict};
use crate::report::{cause, plan::when, run::seconds};
use crate::state::{State, StateError, Success};

/// Longest input devgraph keeps and diffs (SPEC §7).
const MAX_DIFF_BYTES: u64 = 64 * 1024;

/// Everything `why` needs: the decisions of the task's closure and the store.
pub struct Why<'a> {
    pub ctx: &'a Context<'a>,
    pub state: Option<&'a State>,
    pub decisions: &'a [Decision],
}

impl Why<'_> {
    fn graph(&self) -> &Graph {
        &self.ctx.project.graph
    }

    fn decision(&self, name: &str) -> Option<&Decision> {
        let id = self.graph().find(name)?;
        self.decisions.iter().find(|d| d.id == id)
    }

    fn success(&self, name: &str) -> Result<Option<Success>, StateError> {
        match self.state {
            Some(state) => state.success(name),
            None => Ok(None),
        }
    }

    /// The decision of a task `why` was asked about (always decided with its closure).
    fn decision_of(&self, id: TaskId) -> &Decision {
        self.decisions
            .iter()
            .find(|d| d.id == id)
            .unwrap_or_else(|| unreachable!("BUG: why without a decision"))
    }

    /// The whole explanation for one task.
    pub fn render(&self, id: TaskId) -> Result<String, StateError> {
        let graph = self.graph();
        let name = &graph.task(id).name;
        let decision = self.decision_of(id);
        let success = self.success(name)?;
        let mut out = String::new();
        let took = |s: &Success| seconds(std::time::Duration::from_millis(s.duration_ms));
        if decision.verdict == Verdict::UpToDate {
            match &success {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "{name} is up to date since {}, took {}",
                        when(s.finished_at_ms),
                        took(s)
                    );
                }
                None => {
                    let _ = writeln!(out, "{name} is up to date");
                }
            }
            return Ok(out);
        }
        let state_word = if decision.verdict == Verdict::MayRun {
            "may be drifted"
        } else {
            "is drifted"
        };
        let _ = writeln!(out, "{name} {state_word}:");
        for c in &decision.causes {
            self.cause(&mut out, id, c, 1)?;
        }
        if let Some(s) = &success {
            let _ = writeln!(
                out,
                "last success: {}, took {}",
                when(s.finished_at_ms),
                took(s)
            );
        }
        let downstream = self.downstream(id);
        if !downstream.is_empty() {
            let _ = writeln!(
                out,
                "downstream, may re-run after it: {}",
                downstream.join(", ")
            );
        }
        Ok(out)
    }

    /// `why --json`: the verdict, each cause as data with its `why` line, the last success,
    /// and the causes of every dep on the chain.
    pub fn json(&self, id: TaskId) -> Result<String, StateError> {
        let graph = self.graph();
        let name = &graph.task(id).name;
        let decision = self.decision_of(id);
        let success = self.success(name)?;
        let explained = self.render(id)?;
        let chain: serde_json::Map<String, serde_json::Value> = self
            .decisions
            .iter()
            .filter(|d| d.id != id && !d.causes.is_empty())
            .map(|d| {
                (
                    graph.task(d.id).name.clone(),
                    serde_json::json!({ "verdict": d.verdict, "causes": d.causes }),
                )
            })
            .collect();
        let doc = serde_json::json!({
            "task": name,
            "verdict": decision.verdict,
            "causes": decision.causes,
            "last_success": success.map(|s| serde_json::json!({
                "finished_at_ms": s.finished_at_ms,
                "duration_ms": s.duration_ms,
            })),
            "deps": chain,
            "text": explained,
        });
        Ok(format!("{doc}\n"))
    }

    fn cause(
        &self,
        out: &mut String,
        id: TaskId,
        c: &Cause,
        depth: usize,
    ) -> Result<(), StateError> {
        let pad = "  ".repeat(depth);
        let detail = format!("{pad}    ");
        let task = self.graph().task(id);
        match c {
            Cause::Changed(change) => match change {
                Change::Command { old, new } => {
                    let _ = writeln!(out, "{pad}command changed");
                    diff_lines(
                        out,
                        &detail,
                        old.as_deref().unwrap_or(""),
                        new.as_deref().unwrap_or(""),
                    );
                }
                Change::Env { name, old, new } => {
                    if self.ctx.is_secret(task, name) {
                        let _ = writeln!(out, "{pad}env changed     {name} (value hidden)");
                    } else {
                        let _ = writeln!(
                            out,
                            "{pad}env changed     {name}: {} → {}",
                            cause::env_value(old.as_ref()),
                            cause::env_value(new.as_ref())
                        );
                    }
                }
                Change::InputChanged {
                    path,
                    implicit,
                    old,
                    ..
                } => {
                    let _ = writeln!(
                        out,
                        "{pad}input changed   {path}{}",
                        implicit_note(*implicit)
                    );
                    let before = match self.state {
                        Some(state) => state.content(old)?,
                        None => None,
                    };
                    let now = self.read_text(path);
                    match (before, now) {
                        (Some(before), Some(now)) => diff_lines(out, &detail, &before, &now),
                        _ => {
                            let _ = writeln!(
                                out,
                                "{detail}(no diff: binary, larger than 64 KiB, or not kept)"
                            );
                        }
                    }
                }
                Change::InputAdded { path, implicit } => {
                    let _ = writeln!(
                        out,
                        "{pad}input added     {path}{}",
                        implicit_note(*implicit)
                    );
                }
                Change::InputRemoved { path, implicit } => {
                    let _ = writeln!(
                        out,
                        "{pad}input removed   {path}{}",
                        implicit_note(*implicit)
                    );
                }
                Change::OutputMissing { path } => {
                    let _ = writeln!(out, "{pad}output missing  {path}");
                }
                Change::OutputChanged { path } => {
                    let _ = writeln!(out, "{pad}output changed  {path}");
                }
                Change::OutputAdded { path } => {
                    let _ = writeln!(out, "{pad}new output      {path}");
                }
                Change::Probe { old, new } => {
                    let _ = writeln!(
                        out,
                        "{pad}probe changed   {}",
                        task.probe.as_deref().unwrap_or("")
                    );
                    let _ = writeln!(out, "{detail}was: {}", cause::probe(old.as_ref()));
                    let _ = writeln!(out, "{detail}now: {}", cause::probe(new.as_ref()));
                }
                Change::ProbeTimedOut { after_ms } => {
                    let _ = writeln!(
                        out,
                        "{pad}probe timed out after {}: {}",
                        crate::duration::format(std::time::Duration::from_millis(*after_ms)),
                        task.probe.as_deref().unwrap_or("")
                    );
                }
                Change::Dep { name } => {
                    let _ = writeln!(
                        out,
                        "{pad}dep changed     {name} produced something new since the last success"
                    );
                    self.follow(out, name, depth)?;
                }
            },
            Cause::DepPending { dep, certain } => {
                let how = if *certain {
                    "will re-run"
                } else {
                    "will re-run; this task re-runs only if its output changes"
                };
                let _ = writeln!(out, "{pad}dep changed     {dep} {how}");
                self.follow(out, dep, depth)?;
            }
            Cause::NeverRun => {
                let _ = writeln!(out, "{pad}never run");
            }
            Cause::Failed {
                exit_code,
                timed_out,
                log,
            } => {
                let how = match (timed_out, exit_code) {
                    (true, _) => "timed out".to_string(),
                    (false, Some(code)) => format!("failed with exit code {code}"),
                    (false, None) => "failed".to_string(),
                };
                let log = log
                    .as_deref()
                    .map(|l| format!("; log: {l}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "{pad}last attempt {how}{log}");
            }
            Cause::Interrupted { log } => {
                let log = log
                    .as_deref()
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("; log: {l}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{pad}last attempt was interrupted before it finished{log}"
                );
            }
            Cause::Forced => {
                let _ = writeln!(out, "{pad}forced");
            }
        }
        Ok(())
    }

    /// A dep's own causes, indented below the line that names it, down to the root cause.
    fn follow(&self, out: &mut String, dep: &str, depth: usize) -> Result<(), StateError> {
        let Some(decision) = self.decision(dep) else {
            return Ok(());
        };
        if decision.causes.is_empty() || depth > 32 {
            return Ok(());
        }
        let pad = "  ".repeat(depth + 2);
        let _ = writeln!(out, "{pad}because {dep}:");
        for c in &decision.causes {
            self.cause(out, decision.id, c, depth + 3)?;
        }
        Ok(())
    }

    fn read_text(&self, path: &str) -> Option<String> {
        let full = self.ctx.project.root.join(path);
        if std::fs::metadata(&full).ok()?.len() > MAX_DIFF_BYTES {
            return None;
        }
        let bytes = std::fs::read(full).ok()?;
        if bytes.contains(&0) {
            return None;
        }
        String::from_utf8(bytes).ok()
    }

    /// Every task that depends on `id`, directly or not, matrix families folded (`image:* (17)`).
    fn downstream(&self, id: TaskId) -> Vec<String> {
        let graph = self.graph();
        let mut seen = vec![false; graph.len()];
        let mut stack = graph.dependents(id).to_vec();
        let mut found = Vec::new();
        while let Some(next) = stack.pop() {
            if !std::mem::replace(&mut seen[next.index()], true) {
                found.push(next);
                stack.extend(graph.dependents(next));
            }
        }
        found.sort();
        fold_families(found.iter().map(|&t| graph.task(t).name.as_str()))
    }
}

fn implicit_note(implicit: bool) -> &'static str {
    if implicit {
        " (implicit: the script the command starts)"
    } else {
        ""
    }
}

/// A unified diff of two texts, without file headers, each line indented by `pad`.
fn diff_lines(out: &mut String, pad: &str, old: &str, new: &str) {
    // A command is text without a final newline: do not flag that as a difference.
    let (old, new) = if !old.ends_with('\n') && !new.ends_with('\n') {
        (format!("{old}\n"), format!("{new}\n"))
    } else {
        (old.to_string(), new.to_string())
    };
    let diff = TextDiff::from_lines(&old, &new);
    let text = diff.unified_diff().context_radius(2).to_string();
    for line in text.lines() {
        let _ = writeln!(out, "{pad}{line}");
    }
}

/// Names with a common `prefix:` shared by three or more tasks become `prefix:* (N)`.
fn fold_families<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.collect();
    let mut families: HashMap<&str, usize> = HashMap::new();
    for n in &names {
        if let Some((prefix, _)) = n.rsplit_once(':') {
            *families.entry(prefix).or_default() += 1;
        }
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        match n.rsplit_once(':') {
            Some((prefix, _)) if families[prefix] >= 3 => {
                let folded = format!("{prefix}:* ({})", families[prefix]);
                if !out.contains(&folded) {
                    out.push(folded);
                }
            }
            _ => out.push(n.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_matrix_families_of_three_or_more() {
        let names = [
            "cluster",
            "image:a",
            "image:b",
            "image:c",
            "infra:10",
            "infra:20",
            "smoke:registry",
        ];
        assert_eq!(
            fold_families(names.into_iter()),
            [
                "cluster",
                "image:* (3)",
                "infra:10",
                "infra:20",
                "smoke:registry"
            ]
        );
    }

    #[test]
    fn diffs_have_hunks_but_no_file_headers() {
        let mut out = String::new();
        diff_lines(&mut out, "  ", "a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(out, "  @@ -1,3 +1,3 @@\n   a\n  -b\n  +B\n   c\n");
    }
}
