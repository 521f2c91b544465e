//! The task graph: tasks behind typed ids, their deps, and the walks over them. petgraph
//! does the cycle search and never appears outside this file.

use std::collections::VecDeque;
use std::time::Duration;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::Span;
use crate::names::{NameGlob, NameIndex};

/// A task's position in the graph; tasks are numbered in definition order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u32);

impl TaskId {
    /// The position of the task in definition order.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn node(self) -> NodeIndex {
        NodeIndex::new(self.index())
    }
}

/// Where something was written: a file of the project and a byte range in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Index into the project's loaded files.
    pub file: usize,
    pub span: Span,
}

/// One task after matrix expansion and validation: everything needed to run it.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub desc: Option<String>,
    /// The command; `None` makes the task a group.
    pub run: Option<String>,
    pub inputs: Vec<String>,
    /// Where each of `inputs` was written (for a matrix instance: in its template).
    pub inputs_at: Vec<crate::error::Span>,
    pub outputs: Vec<String>,
    /// The task's own `env`, in file order.
    pub env: Vec<(String, String)>,
    /// The matrix values this instance was expanded with (also exported as env vars).
    pub matrix: Vec<(String, String)>,
    pub hash_env: Vec<String>,
    pub requires_env: Vec<String>,
    pub requires_tools: Vec<String>,
    pub probe: Option<String>,
    pub probe_timeout: Duration,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    /// The `[tasks.NAME]` key (for a matrix instance: its template's key).
    pub origin: Origin,
}

#[cfg(test)]
impl Task {
    /// A task with a command and defaults everywhere else, for tests.
    pub(crate) fn named(name: &str) -> Task {
        Task {
            name: name.into(),
            desc: None,
            run: Some("true".into()),
            inputs: vec![],
            inputs_at: vec![],
            outputs: vec![],
            env: vec![],
            matrix: vec![],
            hash_env: vec![],
            requires_env: vec![],
            requires_tools: vec![],
            probe: None,
            probe_timeout: Duration::from_secs(10),
            timeout: None,
            retries: 0,
            retry_delay: Duration::ZERO,
            origin: Origin {
                file: 0,
                span: 0..0,
            },
        }
    }
}

impl Task {
    /// A group has no command: it is up to date when its deps are.
    pub fn is_group(&self) -> bool {
        self.run.is_none()
    }
}

/// The tasks and their dependency edges. Deps may form cycles here; `load` refuses to hand
/// out a graph for which [`Graph::cycles`] is not empty.
#[derive(Debug)]
pub struct Graph {
    tasks: Vec<Task>,
    deps: Vec<Vec<TaskId>>,
    dependents: Vec<Vec<TaskId>>,
    names: NameIndex,
}

impl Graph {
    /// Builds the graph; `deps[i]` are the deps of `tasks[i]`, without repeats.
    pub fn new(tasks: Vec<Task>, deps: Vec<Vec<TaskId>>) -> Self {
        debug_assert_eq!(tasks.len(), deps.len());
        let mut dependents = vec![Vec::new(); tasks.len()];
        for (i, ds) in deps.iter().enumerate() {
            for d in ds {
                dependents[d.index()].push(TaskId(i as u32));
            }
        }
        let names = NameIndex::new(tasks.iter().map(|t| t.name.as_str()));
        Graph {
            tasks,
            deps,
            dependents,
            names,
        }
    }

    /// The id a position in definition order stands for.
    pub fn id(index: usize) -> TaskId {
        TaskId(index as u32)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Every task id, in definition order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = TaskId> + '_ {
        (0..self.tasks.len() as u32).map(TaskId)
    }

    pub fn task(&self, id: TaskId) -> &Task {
        &self.tasks[id.index()]
    }

    pub fn deps(&self, id: TaskId) -> &[TaskId] {
        &self.deps[id.index()]
    }

    /// The tasks that depend on `id` directly.
    pub fn dependents(&self, id: TaskId) -> &[TaskId] {
        &self.dependents[id.index()]
    }

    /// The task with exactly this name.
    pub fn find(&self, name: &str) -> Option<TaskId> {
        self.names.get(name).map(Graph::id)
    }

    /// Every task a name glob matches, in definition order.
    pub fn matching(&self, glob: &NameGlob) -> Vec<TaskId> {
        self.names
            .matching(glob)
            .into_iter()
            .map(Graph::id)
            .collect()
    }

    /// Known names close to a misspelt one.
    pub fn closest_names(&self, name: &str) -> Vec<&str> {
        self.names.closest(name)
    }

    /// Tasks nothing depends on: where `list --tree` starts.
    pub fn roots(&self) -> Vec<TaskId> {
        self.ids()
            .filter(|&id| self.dependents(id).is_empty())
            .collect()
    }

    /// `targets` and everything they depend on, deps before dependents (ties in definition
    /// order). Requires an acyclic graph.
    pub fn closure(&self, targets: &[TaskId]) -> Vec<TaskId> {
        let mut wanted = vec![false; self.len()];
        let mut stack: Vec<TaskId> = targets.to_vec();
        while let Some(id) = stack.pop() {
            if !std::mem::replace(&mut wanted[id.index()], true) {
                stack.extend(self.deps(id));
            }
        }
        self.topo_order()
            .into_iter()
            .filter(|id| wanted[id.index()])
            .collect()
    }

    /// Every task, deps before dependents; among tasks that are ready together, definition
    /// order wins, so the order is stable. Requires an acyclic graph.
    pub fn topo_order(&self) -> Vec<TaskId> {
        let mut waiting: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<TaskId>> = self
            .ids()
            .filter(|id| waiting[id.index()] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(std::cmp::Reverse(id)) = ready.pop() {
            order.push(id);
            for &next in self.dependents(id) {
                waiting[next.index()] -= 1;
                if waiting[next.index()] == 0 {
                    ready.push(std::cmp::Reverse(next));
                }
            }
        }
        assert_eq!(order.len(), self.len(), "BUG: topo_order on a cyclic graph");
        order
    }

    /// One loop per strongly connected component that has one, as the path of tasks
    /// `[a, b, …, a]` where each task depends on the next. Each loop starts at its
    /// earliest-defined task and is the shortest loop through it.
    pub fn cycles(&self) -> Vec<Vec<TaskId>> {
        let mut g: DiGraph<(), ()> = DiGraph::with_capacity(self.len(), 0);
        for _ in 0..self.len() {
            g.add_node(());
        }
        for id in self.ids() {
            for dep in self.deps(id) {
                g.add_edge(id.node(), dep.node(), ());
            }
        }
        let mut cycles = Vec::new();
        for component in petgraph::algo::tarjan_scc(&g) {
            let start = TaskId(component.iter().map(|n| n.index()).min().unwrap_or(0) as u32);
            let looped = component.len() > 1 || self.deps(start).contains(&start);
            if looped {
                let members: Vec<bool> = {
                    let mut m = vec![false; self.len()];
                    component.iter().for_each(|n| m[n.index()] = true);
                    m
                };
                cycles.push(self.shortest_loop(start, &members));
            }
        }
        cycles.sort();
        cycles
    }

    /// Breadth-first from `start` inside its component, back to `start`.
    fn shortest_loop(&self, start: TaskId, members: &[bool]) -> Vec<TaskId> {
        let mut came_from: Vec<Option<TaskId>> = vec![None; self.len()];
        let mut queue = VecDeque::from([start]);
        while let Some(id) = queue.pop_front() {
            for &dep in self.deps(id) {
                if dep == start {
                    // Walk back from `id` to `start`, then read it forwards and close the loop.
                    let mut path = vec![id];
                    let mut at = id;
                    while let Some(prev) = came_from[at.index()] {
                        path.push(prev);
                        at = prev;
                    }
                    path.reverse();
                    path.push(start);
                    return path;
                }
                if members[dep.index()] && came_from[dep.index()].is_none() && dep != start {
                    came_from[dep.index()] = Some(id);
                    queue.push_back(dep);
                }
            }
        }
        unreachable!("BUG: strongly connected component without a loop through its start")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        let names: Vec<&str> = edges.iter().map(|(n, _)| *n).collect();
        let tasks = names.iter().map(|n| Task::named(n)).collect();
        let deps = edges
            .iter()
            .map(|(_, ds)| {
                ds.iter()
                    .map(|d| Graph::id(names.iter().position(|n| n == d).unwrap()))
                    .collect()
            })
            .collect();
        Graph::new(tasks, deps)
    }

    fn names(g: &Graph, ids: &[TaskId]) -> Vec<String> {
        ids.iter().map(|&id| g.task(id).name.clone()).collect()
    }

    #[test]
    fn topo_order_puts_deps_first_and_keeps_definition_order() {
        let g = graph(&[("up", &["b", "a"]), ("a", &["c"]), ("b", &[]), ("c", &[])]);
        assert_eq!(names(&g, &g.topo_order()), ["b", "c", "a", "up"]);
        assert_eq!(names(&g, &g.closure(&[Graph::id(1)])), ["c", "a"]);
        assert_eq!(names(&g, &g.roots()), ["up"]);
    }

    #[test]
    fn finds_each_cycle_once_starting_at_the_first_defined_task() {
        let g = graph(&[
            ("x", &["y"]),
            ("y", &["z"]),
            ("z", &["x", "w"]),
            ("w", &[]),
            ("self", &["self"]),
        ]);
        let cycles: Vec<Vec<String>> = g.cycles().iter().map(|c| names(&g, c)).collect();
        assert_eq!(cycles, vec![vec!["x", "y", "z", "x"], vec!["self", "self"]]);
    }

    #[test]
    fn reports_the_shortest_loop_through_the_start() {
        let g = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &["a"])]);
        let cycles: Vec<Vec<String>> = g.cycles().iter().map(|c| names(&g, c)).collect();
        assert_eq!(cycles, vec![vec!["a", "c", "a"]]);
    }

    #[test]
    fn acyclic_graph_has_no_cycles() {
        let g = graph(&[("a", &["b"]), ("b", &[])]);
        assert!(g.cycles().is_empty());
    }
}
