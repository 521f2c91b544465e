//! A run on a time axis: `run --timings FILE.html` (a self-contained page, one bar per
//! task, the critical path marked) and `run --trace FILE.json` (Chrome's trace event
//! format, for chrome://tracing and Perfetto). Both are rendered from the run's
//! [`Report`]s after it ended; nothing here runs or decides anything.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::graph::{Graph, TaskId};
use crate::report::cause;
use crate::report::run::{result_word, seconds};
use crate::work::{Report, TaskResult};

/// One task of the run, as the timeline needs it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// Its deps that are part of the run, as indices into the same list.
    pub deps: Vec<usize>,
    pub result: TaskResult,
    /// In a few words, why it ran (or was skipped).
    pub why: String,
    /// From the start of the run: when the scheduler handed it to a runner, and when it
    /// was done (equal for tasks that never started).
    pub started: Duration,
    pub ended: Duration,
    /// How long its command ran (zero when it did not run).
    pub command: Duration,
}

impl Entry {
    /// Whether the scheduler handed the task to a runner: it was decided, and ran if it
    /// drifted. Skipped and cancelled tasks never started.
    pub fn started_at_all(&self) -> bool {
        !matches!(
            self.result,
            TaskResult::Skipped { .. } | TaskResult::Cancelled
        )
    }

    fn span(&self) -> Duration {
        self.ended.saturating_sub(self.started)
    }
}

/// The entries of a run, in the order of `reports`.
pub fn entries(graph: &Graph, reports: &[Report]) -> Vec<Entry> {
    let index: HashMap<TaskId, usize> =
        reports.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    reports
        .iter()
        .map(|r| Entry {
            name: graph.task(r.id).name.clone(),
            deps: graph
                .deps(r.id)
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect(),
            result: r.result.clone(),
            why: match &r.result {
                TaskResult::Skipped { dep } => format!("dep failed: {dep}"),
                TaskResult::Cancelled => "not started: the run stopped".into(),
                TaskResult::UpToDate => String::new(),
                _ => cause::summary(&r.causes),
            },
            started: r.started,
            ended: r.ended,
            command: r.duration,
        })
        .collect()
}

/// The critical path, first task first: the chain of tasks that decided when the run
/// ended.
///
/// Definition: start at the task that finished last (the greatest `ended` among the tasks
/// that started at all; on a tie, the one listed first). From a task, step to its dep
/// (within the run) that finished last: a task is handed out the moment its last dep is
/// done (given a free job slot), so that dep is the one it waited for, and their bars sit
/// back to back. Stop at a task with no dep in the run. Any gap between two bars on the
/// path is time the task waited for a job slot (`-j`).
pub fn critical_path(entries: &[Entry]) -> Vec<usize> {
    let mut path = Vec::new();
    let mut current = latest(entries, 0..entries.len());
    while let Some(i) = current {
        if path.contains(&i) {
            unreachable!("BUG: the deps of {} form a cycle", entries[i].name);
        }
        path.push(i);
        current = latest(entries, entries[i].deps.iter().copied());
    }
    path.reverse();
    path
}

/// Of `candidates`, the task that started at all and ended last; the first on a tie.
fn latest(entries: &[Entry], candidates: impl Iterator<Item = usize>) -> Option<usize> {
    let mut best: Option<usize> = None;
    for i in candidates.filter(|&i| entries[i].started_at_all()) {
        if best.is_none_or(|b| entries[i].ended > entries[b].ended) {
            best = Some(i);
        }
    }
    best
}

/// A lane for each task that started at all, such that tasks sharing a lane never
/// overlap in time (`None` for the others). Tasks are taken by start time, each in the
/// lowest lane free by then; a task may start in a lane the moment the previous one ended.
/// With `-j N` this uses at most N lanes.
pub fn lanes(entries: &[Entry]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].started_at_all())
        .collect();
    order.sort_by_key(|&i| (entries[i].started, i));
    let mut free_at: Vec<Duration> = Vec::new();
    let mut lane = vec![None; entries.len()];
    for i in order {
        let e = &entries[i];
        let chosen = match free_at.iter().position(|&end| end <= e.started) {
            Some(l) => l,
            None => {
                free_at.push(Duration::ZERO);
                free_at.len() - 1
            }
        };
        free_at[chosen] = e.ended;
        lane[i] = Some(chosen);
    }
    lane
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// The run in Chrome's trace event format: one complete (`"ph": "X"`) event per task that
/// started at all (ran, up to date, failed, timed out, interrupted), on the lane `tid`
/// from [`lanes`], plus metadata events naming the process and the lanes.
pub fn trace(entries: &[Entry]) -> serde_json::Value {
    let lane = lanes(entries);
    let critical = critical_path(entries);
    let lane_count = lane.iter().flatten().max().map_or(0, |l| l + 1);
    let mut events = vec![serde_json::json!({
        "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
        "args": { "name": "devgraph run" },
    })];
    for l in 0..lane_count {
        events.push(serde_json::json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": l + 1,
            "args": { "name": format!("lane {}", l + 1) },
        }));
    }
    for (i, e) in entries.iter().enumerate() {
        let Some(l) = lane[i] else { continue };
        events.push(serde_json::json!({
            "name": e.name,
            "cat": result_word(&e.result),
            "ph": "X",
            "ts": micros(e.started),
            "dur": micros(e.span()),
            "pid": 1,
            "tid": l + 1,
            "args": {
                "result": result_word(&e.result),
                "why": e.why,
                "command_ms": e.command.as_millis() as u64,
                "critical_path": critical.contains(&i),
            },
        }));
    }
    serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

/// The CSS class of a result, also its colour in the legend.
fn class(result: &TaskResult) -> &'static str {
    match result {
        TaskResult::Ran => "ran",
        TaskResult::UpToDate => "uptodate",
        TaskResult::Failed { .. } => "failed",
        TaskResult::TimedOut { .. } => "timedout",
        TaskResult::Skipped { .. } => "skipped",
        TaskResult::Cancelled => "cancelled",
        TaskResult::Interrupted { .. } => "interrupted",
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A step for the time axis that gives at most ten ticks.
fn tick_step(total: Duration) -> Duration {
    const STEPS_MS: [u64; 22] = [
        10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000,
        300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 43_200_000,
    ];
    let ms = total.as_millis() as u64;
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| ms / s <= 10)
        .unwrap_or(ms.div_ceil(10).max(1));
    Duration::from_millis(step)
}

const STYLE: &str = r#"
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2328; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
p { margin: 4px 0; }
.muted { color: #59636e; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 4px; }
.chart { position: relative; margin-top: 16px; border-top: 1px solid #d1d9e0; }
.gridlines { position: absolute; top: 0; bottom: 0; left: var(--names); right: 0; pointer-events: none; }
.row { display: flex; align-items: center; height: 22px; border-bottom: 1px solid #f0f2f4; }
.row:hover { background: #f6f8fa; }
.name { flex: 0 0 var(--names); box-sizing: border-box; padding-right: 10px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-family: ui-monospace, monospace; font-size: 12px; text-align: right; }
.crit .name { font-weight: 600; }
.crit .name::before { content: "◆ "; color: #cf222e; }
.track { position: relative; flex: 1; height: 100%; }
.grid { position: absolute; top: 0; bottom: 0; border-left: 1px dashed #e6e9ec; }
.bar { position: absolute; top: 4px; height: 14px; min-width: 2px; border-radius: 2px; box-sizing: border-box; }
.bar.crit { outline: 2px solid #cf222e; outline-offset: 1px; }
.label { position: absolute; top: 3px; font-size: 11px; color: #59636e; white-space: nowrap; }
.axis { display: flex; height: 18px; }
.axis .track span { position: absolute; font-size: 11px; color: #59636e; transform: translateX(-50%); }
.ran { background: #2da44e; }
.uptodate { background: #afb8c1; }
.failed { background: #cf222e; }
.timedout { background: #bc4c00; }
.interrupted { background: #8250df; }
.skipped { background: repeating-linear-gradient(45deg, #d4a72c, #d4a72c 3px, #fff8c5 3px, #fff8c5 6px); }
.cancelled { background: #eaeef2; border: 1px solid #afb8c1; }
"#;

/// The page of `--timings`: a header with the totals and the critical path, a legend, and
/// one row per task (in the order they started) with its bar on the time axis.
pub fn html(entries: &[Entry]) -> String {
    let total = entries
        .iter()
        .map(|e| e.ended)
        .max()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    let pct = |d: Duration| d.as_secs_f64() / total.as_secs_f64() * 100.0;
    let critical = critical_path(entries);
    let name_width = entries
        .iter()
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(8, 48);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>devgraph run: timings</title>\n<style>{STYLE}</style>\n</head>\n\
         <body style=\"--names: {}ch\">\n<h1>devgraph run: timings</h1>\n",
        name_width + 3
    );
    // Totals by result, in a fixed order.
    let mut counts: Vec<(&'static str, String, usize)> = Vec::new();
    for e in entries {
        let c = class(&e.result);
        match counts.iter_mut().find(|(k, _, _)| *k == c) {
            Some((_, _, n)) => *n += 1,
            None => counts.push((c, result_word(&e.result), 1)),
        }
    }
    let totals: Vec<String> = counts.iter().map(|(_, w, n)| format!("{n} {w}")).collect();
    let _ = writeln!(
        out,
        "<p>{} in {} ({})</p>",
        crate::report::count(entries.len(), "task"),
        seconds(total),
        escape(&totals.join(", "))
    );
    if !critical.is_empty() {
        let chain: Vec<String> = critical
            .iter()
            .map(|&i| {
                format!(
                    "{} <span class=\"muted\">{}</span>",
                    escape(&entries[i].name),
                    seconds(entries[i].span())
                )
            })
            .collect();
        let first = &entries[critical[0]];
        let last = &entries[critical[critical.len() - 1]];
        let _ = writeln!(
            out,
            "<p><b>Critical path</b> ({}, {}): {}</p>",
            crate::report::count(critical.len(), "task"),
            seconds(last.ended.saturating_sub(first.started)),
            chain.join(" → ")
        );
    }
    out.push_str("<p class=\"legend muted\">");
    for (c, word) in [
        ("ran", "ran"),
        ("uptodate", "up to date"),
        ("failed", "failed"),
        ("timedout", "timed out"),
        ("interrupted", "interrupted"),
        ("skipped", "skipped (a dep failed)"),
        ("cancelled", "cancelled"),
    ] {
        let _ = write!(out, "<span><i class=\"{c}\"></i>{word}</span>");
    }
    out.push_str(
        "<span>◆ critical path: the chain of deps that ended last (hover a bar for details)</span></p>\n",
    );
    // The time axis and its grid lines.
    let step = tick_step(total);
    let mut ticks = Vec::new();
    let mut t = Duration::ZERO;
    while t <= total {
        ticks.push(t);
        t += step;
    }
    out.push_str("<div class=\"chart\">\n<div class=\"gridlines\">");
    for &t in &ticks {
        let _ = write!(
            out,
            "<div class=\"grid\" style=\"left:{:.3}%\"></div>",
            pct(t)
        );
    }
    out.push_str("</div>\n<div class=\"row axis\"><div class=\"name\"></div><div class=\"track\">");
    for &t in &ticks {
        let _ = write!(
            out,
            "<span style=\"left:{:.3}%\">{}</span>",
            pct(t),
            crate::duration::format(t)
        );
    }
    out.push_str("</div></div>\n");
    // Rows in the order tasks started; those that never started last, in run order.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (!entries[i].started_at_all(), entries[i].started, i));
    for i in order {
        let e = &entries[i];
        let on_path = critical.contains(&i);
        let crit = if on_path { " crit" } else { "" };
        let word = result_word(&e.result);
        let mut title = format!("{}\n{word}", e.name);
        if e.started_at_all() {
            let _ = write!(
                title,
                " in {}: {} → {}",
                seconds(e.span()),
                seconds(e.started),
                seconds(e.ended)
            );
            if !e.command.is_zero() {
                let _ = write!(title, " (command {})", seconds(e.command));
            }
        } else {
            let _ = write!(title, " at {}", seconds(e.ended));
        }
        if !e.why.is_empty() {
            let _ = write!(title, "\n{}", e.why);
        }
        if on_path {
            title.push_str("\non the critical path");
        }
        let (left, width) = (pct(e.started), pct(e.span()));
        let label_text = if e.started_at_all() {
            format!("{} {word}", seconds(e.span()))
        } else {
            word.clone()
        };
        // The label goes right of the bar, or left of it when the bar ends near the edge.
        let label = if left + width > 80.0 {
            format!("right:calc({:.3}% + 6px)", 100.0 - left)
        } else {
            format!("left:calc({:.3}% + 6px)", left + width)
        };
        let _ = writeln!(
            out,
            "<div class=\"row{crit}\" title=\"{title}\"><div class=\"name\">{name}</div>\
             <div class=\"track\"><div class=\"bar {class}{crit}\" style=\"left:min({left:.3}%, calc(100% - 2px));width:{width:.3}%\"></div>\
             <span class=\"label\" style=\"{label}\">{label_text}</span></div></div>",
            title = escape(&title),
            name = escape(&e.name),
            class = class(&e.result),
            label_text = escape(&label_text),
        );
    }
    out.push_str("</div>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn entry(name: &str, deps: &[usize], result: TaskResult, started: u64, ended: u64) -> Entry {
        Entry {
            name: name.into(),
            deps: deps.to_vec(),
            result,
            why: String::new(),
            started: ms(started),
            ended: ms(ended),
            command: ms(ended - started),
        }
    }

    /// a (0-100) → b (100-300) → d (300-400); c (100-200) also under d; e on its own
    /// (0-250); f skipped at the end.
    fn run() -> Vec<Entry> {
        vec![
            entry("a", &[], TaskResult::Ran, 0, 100),
            entry("b", &[0], TaskResult::Ran, 100, 300),
            entry("c", &[0], TaskResult::UpToDate, 100, 200),
            entry("d", &[1, 2], TaskResult::Ran, 300, 400),
            entry("e", &[], TaskResult::Ran, 0, 250),
            entry("f", &[3], TaskResult::Skipped { dep: "x".into() }, 410, 410),
        ]
    }

    #[test]
    fn critical_path_follows_the_dep_that_ended_last() {
        let entries = run();
        // d ended last (f never started); b ended after c; a is b's only dep.
        assert_eq!(critical_path(&entries), vec![0, 1, 3]);
    }

    #[test]
    fn critical_path_ties_and_edges() {
        assert!(critical_path(&[]).is_empty());
        // Two deps that ended at the same time: the one listed first.
        let entries = vec![
            entry("a", &[], TaskResult::Ran, 0, 100),
            entry("b", &[], TaskResult::Ran, 0, 100),
            entry("c", &[1, 0], TaskResult::Ran, 100, 150),
        ];
        assert_eq!(critical_path(&entries), vec![1, 2]);
        // A failure ends the run: the path ends at it.
        let entries = vec![
            entry("a", &[], TaskResult::Ran, 0, 100),
            entry(
                "b",
                &[0],
                TaskResult::Failed {
                    exit: "1".into(),
                    log: None,
                },
                100,
                900,
            ),
            entry("c", &[1], TaskResult::Skipped { dep: "b".into() }, 900, 900),
        ];
        assert_eq!(critical_path(&entries), vec![0, 1]);
        // Only tasks that never started: no path.
        let entries = vec![entry("a", &[], TaskResult::Cancelled, 5, 5)];
        assert!(critical_path(&entries).is_empty());
    }

    #[test]
    fn overlapping_tasks_never_share_a_lane() {
        let entries = run();
        let lane = lanes(&entries);
        // a and e start together; b and c start when a ends, and b reuses a's lane.
        assert_eq!(
            lane,
            vec![Some(0), Some(0), Some(2), Some(0), Some(1), None]
        );
        for (i, a) in entries.iter().enumerate() {
            for (j, b) in entries.iter().enumerate().skip(i + 1) {
                if lane[i].is_some() && lane[i] == lane[j] {
                    assert!(
                        a.ended <= b.started || b.ended <= a.started,
                        "{} and {} overlap in lane {:?}",
                        a.name,
                        b.name,
                        lane[i]
                    );
                }
            }
        }
    }

    #[test]
    fn lanes_are_as_few_as_the_most_tasks_at_once() {
        // Four at a time, twice over: four lanes.
        let entries: Vec<Entry> = (0..8)
            .map(|i| {
                let start = (i / 4) * 100;
                entry(&format!("t{i}"), &[], TaskResult::Ran, start, start + 100)
            })
            .collect();
        let lane = lanes(&entries);
        assert_eq!(lane.iter().flatten().max(), Some(&3));
    }

    #[test]
    fn trace_has_one_complete_event_per_task_that_started() {
        let entries = run();
        let trace = trace(&entries);
        let events = trace["traceEvents"].as_array().unwrap();
        let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(complete.len(), 5);
        let b = complete.iter().find(|e| e["name"] == "b").unwrap();
        assert_eq!(b["ts"], 100_000);
        assert_eq!(b["dur"], 200_000);
        assert_eq!(b["pid"], 1);
        assert_eq!(b["cat"], "ran");
        assert_eq!(b["args"]["critical_path"], true);
        assert!(b["tid"].as_u64().unwrap() >= 1);
        // Every event has what the viewers need, and the lanes are named.
        for e in events {
            for key in ["name", "ph", "pid", "tid"] {
                assert!(!e[key].is_null(), "{key} missing in {e}");
            }
        }
        let names: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
            .collect();
        assert_eq!(names.len(), 3);
        // It is JSON a viewer can load: an object with a traceEvents array.
        let text = serde_json::to_string(&trace).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(back["traceEvents"].is_array());
    }

    #[test]
    fn html_has_one_bar_per_task_and_marks_the_critical_path() {
        let entries = run();
        let page = html(&entries);
        assert_eq!(page.matches("<div class=\"bar ").count(), entries.len());
        assert_eq!(page.matches("class=\"bar ran crit\"").count(), 3);
        assert_eq!(page.matches("class=\"bar skipped\"").count(), 1);
        assert_eq!(page.matches("class=\"bar uptodate\"").count(), 1);
        assert!(page.contains("<b>Critical path</b> (3 tasks, 400ms)"));
        // Self-contained: nothing fetched from anywhere.
        for outside in ["http://", "https://", "<script src", "<link"] {
            assert!(!page.contains(outside), "{outside} in the page");
        }
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let mut entries = run();
        entries[3].result = TaskResult::Failed {
            exit: "1".into(),
            log: None,
        };
        entries[3].why = "input changed: <script>&\"".into();
        let page = html(&entries);
        assert!(!page.contains("<script>"));
        assert!(page.contains("input changed: &lt;script&gt;&amp;&quot;"));
        assert!(page.contains("class=\"bar failed crit\""));
    }

    #[test]
    fn axis_steps_give_at_most_ten_ticks() {
        assert_eq!(tick_step(ms(400)), ms(50));
        assert_eq!(tick_step(ms(9_000)), ms(1_000));
        assert_eq!(tick_step(ms(95_000)), ms(10_000));
        assert_eq!(tick_step(Duration::from_secs(3600)), ms(600_000));
    }
}
