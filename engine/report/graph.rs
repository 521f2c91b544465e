//! `devgraph graph`: the task graph as Graphviz dot, Mermaid, or JSON. Edges point from a
//! dep to the task that needs it: the direction work flows.

use std::fmt::Write as _;

use serde::Serialize;

use std::collections::HashMap;

use crate::graph::{Graph, TaskId};
use crate::load::Project;
use crate::plan::Verdict;

/// What `run` would do with each task (`graph --drift`), as `plan` decided it.
pub type Drift = HashMap<TaskId, Verdict>;

/// The fill of a node by its verdict: green, yellow, orange.
fn fill(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::UpToDate => "#b7e1a1",
        Verdict::MayRun => "#fbe38e",
        Verdict::WillRun => "#f4a261",
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::UpToDate => "up_to_date",
        Verdict::MayRun => "may_run",
        Verdict::WillRun => "will_run",
    }
}

/// The formats `devgraph graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphviz (`dot -Tsvg`).
    Dot,
    /// Mermaid flowchart (renders in GitHub and GitLab markdown).
    Mermaid,
    /// Machine-readable; schema in docs/commands.md.
    Json,
}

/// Renders the given tasks (definition order) and the edges among them, each node filled
/// by its verdict when `drift` is given.
pub fn render(
    project: &Project,
    tasks: &[TaskId],
    format: Format,
    drift: Option<&Drift>,
) -> String {
    match format {
        Format::Dot => dot(&project.graph, tasks, drift),
        Format::Mermaid => mermaid(&project.graph, tasks, drift),
        Format::Json => json(project, tasks, drift),
    }
}

fn dot(graph: &Graph, tasks: &[TaskId], drift: Option<&Drift>) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph devgraph {\n  rankdir=LR;\n  node [shape=box];\n");
    for &id in tasks {
        let task = graph.task(id);
        let mut attrs = Vec::new();
        let verdict = drift.and_then(|d| d.get(&id));
        match (task.is_group(), verdict) {
            (true, None) => attrs.push("style=dashed".to_string()),
            (true, Some(_)) => attrs.push("style=\"filled,dashed\"".to_string()),
            (false, Some(_)) => attrs.push("style=filled".to_string()),
            (false, None) => {}
        }
        if let Some(&verdict) = verdict {
            attrs.push(format!("fillcolor={}", quote(fill(verdict))));
        }
        if let Some(desc) = &task.desc {
            attrs.push(format!("tooltip={}", quote(desc)));
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  {}{attrs};", quote(&task.name));
    }
    for &id in tasks {
        for &dep in graph.deps(id) {
            let _ = writeln!(
                out,
                "  {} -> {};",
                quote(&graph.task(dep).name),
                quote(&graph.task(id).name)
            );
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(graph: &Graph, tasks: &[TaskId], drift: Option<&Drift>) -> String {
    // Node ids are positions: task names hold `:` and `/`, which Mermaid ids cannot.
    let label = |s: &str| s.replace('"', "#quot;");
    let mut out = String::from("flowchart LR\n");
    for &id in tasks {
        let task = graph.task(id);
        let name = label(&task.name);
        if task.is_group() {
            let _ = writeln!(out, "  t{}([\"{name}\"])", id.index());
        } else {
            let _ = writeln!(out, "  t{}[\"{name}\"]", id.index());
        }
    }
    for &id in tasks {
        for &dep in graph.deps(id) {
            let _ = writeln!(out, "  t{} --> t{}", dep.index(), id.index());
        }
    }
    if let Some(drift) = drift {
        for verdict in [Verdict::UpToDate, Verdict::MayRun, Verdict::WillRun] {
            let ids: Vec<String> = tasks
                .iter()
                .filter(|id| drift.get(id) == Some(&verdict))
                .map(|id| format!("t{}", id.index()))
                .collect();
            if !ids.is_empty() {
                let class = verdict_name(verdict).replace('_', "");
                let _ = writeln!(out, "  classDef {class} fill:{}", fill(verdict));
                let _ = writeln!(out, "  class {} {class}", ids.join(","));
            }
        }
    }
    out
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    version: u32,
    tasks: Vec<JsonTask<'a>>,
}

#[derive(Serialize)]
struct JsonTask<'a> {
    name: &'a str,
    desc: Option<&'a str>,
    group: bool,
    deps: Vec<&'a str>,
    #[serde(skip_serializing_if = "Matrix::is_empty")]
    matrix: Matrix<'a>,
    file: &'a str,
    line: usize,
    /// With `--drift`: `up_to_date`, `may_run` or `will_run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<&'static str>,
}

/// Matrix values as a JSON object in matrix order (a map would sort them).
struct Matrix<'a>(&'a [(String, String)]);

impl Matrix<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Matrix<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

fn json(project: &Project, tasks: &[TaskId], drift: Option<&Drift>) -> String {
    let graph = &project.graph;
    let doc = JsonGraph {
        version: 1,
        tasks: tasks
            .iter()
            .map(|&id| {
                let task = graph.task(id);
                let file = &project.files[task.origin.file];
                JsonTask {
                    name: &task.name,
                    desc: task.desc.as_deref(),
                    group: task.is_group(),
                    deps: graph
                        .deps(id)
                        .iter()
                        .map(|&d| graph.task(d).name.as_str())
                        .collect(),
                    matrix: Matrix(&task.matrix),
                    file: &file.name,
                    line: file.line_of(task.origin.span.start),
                    drift: drift.and_then(|d| d.get(&id)).map(|&v| verdict_name(v)),
                }
            })
            .collect(),
    };
    let mut text =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| unreachable!("BUG: graph JSON: {e}"));
    text.push('\n');
    text
}
