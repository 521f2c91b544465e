//! What `run` prints: each task's output prefixed with its name, a line when a task starts
//! and ends, and a summary table after the run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use crate::graph::{Graph, Task};
use crate::plan::Cause;
use crate::process::Stream;
use crate::report::cause;
use crate::work::{Report, Reporter, TaskResult};

/// Plain lines for terminals, pipes and CI logs: `[task] line`.
pub struct Lines {
    pub quiet: bool,
}

impl Reporter for Lines {
    fn started(&mut self, task: &Task, causes: &[Cause]) {
        if !self.quiet {
            println!("▶ {} ({})", task.name, cause::summary(causes));
        }
    }

    fn line(&mut self, task: &Task, _stream: Stream, text: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "[{}] {text}", task.name);
        }
    }

    fn finished(&mut self, task: &Task, report: &Report) {
        if let Some(text) = failure(task, report) {
            eprintln!("{text}");
        } else if report.result == TaskResult::Ran && !self.quiet {
            println!("✔ {} ({})", task.name, seconds(report.duration));
        }
    }

    fn note(&mut self, text: &str) {
        eprintln!("devgraph: {text}");
    }
}

/// The `✘` line of a task that failed or timed out; `None` for any other result.
pub fn failure(task: &Task, report: &Report) -> Option<String> {
    match &report.result {
        TaskResult::Failed { exit, log } => Some(format!(
            "✘ {} failed ({}) after {}{}",
            task.name,
            if exit.parse::<i32>().is_ok() {
                format!("exit {exit}")
            } else {
                exit.clone()
            },
            seconds(report.duration),
            log.as_deref()
                .map(|l| format!("; log: {l}"))
                .unwrap_or_default()
        )),
        TaskResult::TimedOut { after_ms, .. } => Some(format!(
            "✘ {} timed out after {}",
            task.name,
            crate::duration::format(Duration::from_millis(*after_ms))
        )),
        _ => None,
    }
}

/// `--json`: one JSON event per line on stdout (schema in docs/commands.md).
pub struct JsonLines;

impl JsonLines {
    fn emit(value: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }
}

impl Reporter for JsonLines {
    fn started(&mut self, task: &Task, causes: &[Cause]) {
        Self::emit(serde_json::json!({
            "event": "task_started",
            "task": task.name,
            "drift": crate::plan::drift_kinds(causes),
            "causes": causes,
        }));
    }

    fn line(&mut self, task: &Task, stream: Stream, text: &str) {
        let stream = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        Self::emit(
            serde_json::json!({ "event": "output", "task": task.name, "stream": stream, "line": text }),
        );
    }

    fn finished(&mut self, task: &Task, report: &Report) {
        Self::emit(serde_json::json!({
            "event": "task_finished",
            "task": task.name,
            "result": report.result,
            "causes": report.causes,
            "duration_ms": report.duration.as_millis() as u64,
        }));
    }

    fn note(&mut self, text: &str) {
        Self::emit(serde_json::json!({ "event": "note", "message": text }));
    }

    fn restarted(&mut self, task: &Task) {
        Self::emit(serde_json::json!({ "event": "task_restarted", "task": task.name }));
    }
}

/// `1.2s`, `340ms`.
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The result in a word or two, as the summary shows it.
pub fn result_word(result: &TaskResult) -> String {
    match result {
        TaskResult::Ran => "ran".into(),
        TaskResult::UpToDate => "up to date".into(),
        TaskResult::Failed { .. } => "failed".into(),
        TaskResult::TimedOut { .. } => "timed out".into(),
        TaskResult::Skipped { .. } => "skipped".into(),
        TaskResult::Cancelled => "cancelled".into(),
        TaskResult::Interrupted { .. } => "interrupted".into(),
    }
}

/// The table after a run: task, result, duration, why; then counts; the first failure's
/// log last, where the eye lands.
pub fn summary(graph: &Graph, reports: &[Report]) -> String {
    let mut out = String::new();
    let width = reports
        .iter()
        .map(|r| graph.task(r.id).name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    // As wide as the longest result word here ("interrupted" is one wider than the rest).
    let result_width = reports
        .iter()
        .map(|r| result_word(&r.result).len())
        .max()
        .unwrap_or(0)
        .max(10);
    let _ = writeln!(
        out,
        "{:width$}  {:result_width$}  {:>7}  why",
        "task", "result", "time"
    );
    for r in reports {
        let why = match &r.result {
            TaskResult::Skipped { dep } => format!("dep failed: {dep}"),
            TaskResult::Cancelled => "not started: the run stopped".into(),
            TaskResult::UpToDate => String::new(),
            _ => cause::summary(&r.causes),
        };
        let time = match r.result {
            TaskResult::Ran
            | TaskResult::Failed { .. }
            | TaskResult::TimedOut { .. }
            | TaskResult::Interrupted { .. } => seconds(r.duration),
            _ => String::new(),
        };
        let line = format!(
            "{:width$}  {:result_width$}  {:>7}  {why}",
            graph.task(r.id).name,
            result_word(&r.result),
            time
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in reports {
        let word = result_word(&r.result);
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    let _ = writeln!(out, "{}", counts.join(", "));
    if let Some(first) = reports.iter().find(|r| r.result.is_failure())
        && let TaskResult::Failed { log: Some(log), .. }
        | TaskResult::TimedOut { log: Some(log), .. } = &first.result
    {
        {
            let _ = writeln!(
                out,
                "first failure: {}, log: {log}",
                graph.task(first.id).name
            );
        }
    }
    out
}
