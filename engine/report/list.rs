//! `devgraph list`: the tasks with their descriptions, or their deps as a tree.

use std::fmt::Write as _;

use crate::graph::{Graph, TaskId};
use crate::report::{bold, dim};

/// One line per task in definition order: the name, padded, then its `desc`.
pub fn flat(graph: &Graph, color: bool) -> String {
    let width = graph
        .ids()
        .map(|id| graph.task(id).name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for id in graph.ids() {
        let task = graph.task(id);
        match &task.desc {
            Some(desc) => {
                let pad = " ".repeat(width - task.name.len() + 2);
                let _ = writeln!(out, "{}{pad}{desc}", bold(&task.name, color));
            }
            None => {
                let _ = writeln!(out, "{}", bold(&task.name, color));
            }
        }
    }
    out
}

/// Every task nothing depends on, with its deps below it as a tree. A task whose deps
/// were already drawn is marked `(*)` instead of drawn again.
pub fn tree(graph: &Graph, color: bool) -> String {
    let mut out = String::new();
    let mut drawn = vec![false; graph.len()];
    let mut elided = false;
    for root in graph.roots() {
        let _ = writeln!(out, "{}", bold(&graph.task(root).name, color));
        drawn[root.index()] = true;
        draw_deps(graph, root, "", &mut drawn, &mut elided, color, &mut out);
    }
    if elided {
        let _ = writeln!(out, "{}", dim("(*) deps shown above", color));
    }
    out
}

fn draw_deps(
    graph: &Graph,
    id: TaskId,
    prefix: &str,
    drawn: &mut [bool],
    elided: &mut bool,
    color: bool,
    out: &mut String,
) {
    let deps = graph.deps(id);
    for (i, &dep) in deps.iter().enumerate() {
        let last = i + 1 == deps.len();
        let (branch, indent) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let name = &graph.task(dep).name;
        let seen = drawn[dep.index()];
        if seen && !graph.deps(dep).is_empty() {
            *elided = true;
            let _ = writeln!(out, "{prefix}{branch}{name} {}", dim("(*)", color));
            continue;
        }
        let _ = writeln!(out, "{prefix}{branch}{name}");
        drawn[dep.index()] = true;
        draw_deps(
            graph,
            dep,
            &format!("{prefix}{indent}"),
            drawn,
            elided,
            color,
            out,
        );
    }
}
