//! What `plan` and `status` print: a verdict per task with its causes in a few words.

use std::fmt::Write as _;

use crate::graph::Graph;
use crate::plan::{Decision, Verdict};
use crate::report::{cause, count};
use crate::state::{Attempt, Outcome, Success};

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::WillRun => "will run",
        Verdict::MayRun => "may run",
        Verdict::UpToDate => "up to date",
    }
}

/// `plan`: one line per task in run order, then the counts.
pub fn plan(graph: &Graph, decisions: &[Decision]) -> String {
    let width = decisions
        .iter()
        .map(|d| graph.task(d.id).name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for d in decisions {
        let line = format!(
            "{:10}  {:width$}  {}",
            verdict_word(d.verdict),
            graph.task(d.id).name,
            cause::summary(&d.causes)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let n = |v| decisions.iter().filter(|d| d.verdict == v).count();
    let _ = writeln!(
        out,
        "{}: {} will run, {} may run, {} up to date",
        count(decisions.len(), "task"),
        n(Verdict::WillRun),
        n(Verdict::MayRun),
        n(Verdict::UpToDate)
    );
    out
}

/// `plan --json`.
pub fn plan_json(graph: &Graph, decisions: &[Decision]) -> serde_json::Value {
    serde_json::json!({
        "tasks": decisions.iter().map(|d| serde_json::json!({
            "name": graph.task(d.id).name,
            "verdict": d.verdict,
            "causes": d.causes,
        })).collect::<Vec<_>>(),
    })
}

/// The time of a past event in local time, and how long ago.
pub fn when(ms: i64) -> String {
    let stamp = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let local = stamp
        .to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M");
    format!("{local} ({})", ago(crate::state::now_ms() - ms))
}

/// "3m ago", "just now".
pub fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=9 => "just now".into(),
        10..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// One status line's state word and detail.
pub fn status_line(
    decision: &Decision,
    success: Option<&Success>,
    attempt: Option<&Attempt>,
) -> (&'static str, String) {
    let took = |ms: u64| crate::report::run::seconds(std::time::Duration::from_millis(ms));
    match (decision.verdict, attempt.map(|a| a.outcome)) {
        (_, Some(Outcome::Failed | Outcome::TimedOut)) => {
            let a = attempt.unwrap_or_else(|| unreachable!());
            let exit = match (a.outcome, a.exit_code) {
                (Outcome::TimedOut, _) => "timed out".to_string(),
                (_, Some(code)) => format!("exit {code}"),
                _ => "failed".to_string(),
            };
            (
                "failed",
                format!("{exit}, {}", ago(crate::state::now_ms() - a.started_at_ms)),
            )
        }
        (_, Some(Outcome::Interrupted | Outcome::Running)) => {
            ("interrupted", cause::summary(&decision.causes))
        }
        (Verdict::UpToDate, _) => match success {
            Some(s) => (
                "up to date",
                format!(
                    "ran {}, took {}",
                    ago(crate::state::now_ms() - s.finished_at_ms),
                    took(s.duration_ms)
                ),
            ),
            None => ("up to date", String::new()),
        },
        (_, _) if success.is_none() => ("never run", String::new()),
        _ => ("drifted", cause::summary(&decision.causes)),
    }
}
