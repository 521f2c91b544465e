//! Resolving names: duplicates, deps by name and glob, cycles, `settings.default`, and
//! command-line targets (see "Loading", steps 6 to 8, in docs/design.md).

use std::collections::HashMap;

use super::{Def, Instance, Loader};
use crate::error::{FirstDefinition, LoadError, Span, span};
use crate::graph::{Graph, Origin, Task, TaskId};
use crate::manifest::Located;
use crate::matrix;
use crate::names::{self, NameGlob, NameIndex};

impl Loader {
    /// Checks names, finds duplicates, resolves deps and looks for cycles. Returns the
    /// graph when names and deps could be resolved.
    pub(super) fn resolve(&mut self, instances: Vec<Instance>) -> Option<Graph> {
        let mut first_seen: HashMap<&str, usize> = HashMap::with_capacity(instances.len());
        let mut keep = vec![true; instances.len()];
        let mut problems = Vec::new();
        // Tasks with invalid names exist, though they are not in the graph.
        let mut maybe: Vec<String> = Vec::new();
        for (i, inst) in instances.iter().enumerate() {
            let file = self.defs[inst.def].file;
            if let Some(reason) = names::invalid_reason(&inst.name.value) {
                problems.push(LoadError::InvalidTaskName {
                    src: self.src(file),
                    span: span(&inst.name.span),
                    name: inst.name.value.clone(),
                    reason,
                });
                keep[i] = false;
                maybe.push(inst.name.value.clone());
                continue;
            }
            if let Some(&first) = first_seen.get(inst.name.value.as_str()) {
                let first_file = self.defs[instances[first].def].file;
                problems.push(LoadError::DuplicateTask {
                    src: self.src(file),
                    span: span(&inst.name.span),
                    name: inst.name.value.clone(),
                    first: vec![FirstDefinition {
                        src: self.src(first_file),
                        span: span(&instances[first].name.span),
                        name: inst.name.value.clone(),
                    }],
                });
                keep[i] = false;
                continue;
            }
            first_seen.insert(&inst.name.value, i);
        }
        drop(first_seen);
        self.diagnostics.extend(problems);
        maybe.iter().for_each(|name| self.may_exist(name));
        let instances: Vec<Instance> = instances
            .into_iter()
            .zip(keep)
            .filter_map(|(inst, k)| k.then_some(inst))
            .collect();
        let index = NameIndex::new(instances.iter().map(|i| i.name.value.as_str()));
        let mut deps: Vec<Vec<TaskId>> = Vec::with_capacity(instances.len());
        // Where each dep edge was written, parallel to `deps`: only read to place a cycle's caret.
        let mut dep_spans: Vec<Vec<Span>> = Vec::with_capacity(instances.len());
        let mut unresolved = Vec::new();
        // A template's dep is reported once, not once per matrix value.
        let mut reported: std::collections::HashSet<(usize, usize, &str)> = Default::default();
        // Each distinct glob is compiled once, however many instances use it.
        let mut globs: HashMap<&str, Option<NameGlob>> = HashMap::new();
        // `added[d] == i` when task `i` already has dep `d`: repeats are merged in O(1).
        let mut added: Vec<usize> = vec![usize::MAX; instances.len()];
        for (i, inst) in instances.iter().enumerate() {
            let file = self.defs[inst.def].file;
            let mut mine: Vec<TaskId> = Vec::with_capacity(inst.deps.len());
            let mut spans: Vec<Span> = Vec::with_capacity(inst.deps.len());
            for dep in &inst.deps {
                let found: Vec<usize> = if names::is_glob(&dep.value) {
                    let glob = globs
                        .entry(dep.value.as_str())
                        .or_insert_with(|| NameGlob::new(&dep.value).ok());
                    // An invalid glob was reported when the definition was checked.
                    let Some(glob) = glob else { continue };
                    index
                        .matching(glob)
                        .into_iter()
                        .filter(|&d| d != i)
                        .collect()
                } else {
                    index.get(&dep.value).into_iter().collect()
                };
                if found.is_empty() {
                    if reported.insert((file, dep.span.start, dep.value.as_str())) {
                        unresolved.push(self.unresolved(inst, file, dep, &index));
                    }
                    continue;
                }
                for d in found {
                    if added[d] != i {
                        added[d] = i;
                        mine.push(Graph::id(d));
                        spans.push(dep.span.clone());
                    }
                }
            }
            deps.push(mine);
            dep_spans.push(spans);
        }
        // A dep on a task that failed to load is not the user's mistake to report yet.
        unresolved.retain(|d| match d {
            LoadError::UnknownDep { dep, .. } => !self.maybe_loaded_later(dep),
            LoadError::DepGlobNoMatch { glob, .. } => !self.maybe_loaded_later(glob),
            _ => true,
        });
        self.diagnostics.extend(unresolved);
        let tasks: Vec<Task> = instances.into_iter().map(|inst| self.task(inst)).collect();
        let graph = Graph::new(tasks, deps);
        let cycles = graph.cycles();
        for cycle in &cycles {
            let path: Vec<&str> = cycle
                .iter()
                .map(|&id| graph.task(id).name.as_str())
                .collect();
            // The dep that closes the loop: written in the last task, naming the first.
            let last = cycle[cycle.len() - 2];
            let at = graph
                .deps(last)
                .iter()
                .position(|&d| d == cycle[0])
                .map_or(0..0, |k| dep_spans[last.index()][k].clone());
            self.diagnostics.push(LoadError::Cycle {
                src: self.src(graph.task(last).origin.file),
                span: span(&at),
                path: path.join(" → "),
            });
        }
        cycles.is_empty().then_some(graph)
    }

    /// The diagnostic for a dep that resolved to nothing. A dep written in a template names
    /// the template; one that only exists after substitution names the instance.
    pub(super) fn unresolved(
        &self,
        inst: &Instance,
        file: usize,
        dep: &Located<String>,
        index: &NameIndex,
    ) -> LoadError {
        let template = &self.defs[inst.def].def;
        let written = template
            .deps
            .iter()
            .any(|d| d.span == dep.span && d.value == dep.value);
        let task = if written {
            &template.name.value
        } else {
            &inst.name.value
        }
        .clone();
        if names::is_glob(&dep.value) {
            LoadError::DepGlobNoMatch {
                src: self.src(file),
                span: span(&dep.span),
                task,
                glob: dep.value.clone(),
            }
        } else {
            let close = index.closest(&dep.value);
            LoadError::UnknownDep {
                src: self.src(file),
                span: span(&dep.span),
                task,
                dep: dep.value.clone(),
                help: crate::suggest::did_you_mean(&close),
            }
        }
    }

    pub(super) fn task(&self, inst: Instance) -> Task {
        let Def { file, def } = &self.defs[inst.def];
        let timing = self.timing[inst.def].clone();
        let texts = |list: &[Located<String>]| list.iter().map(|l| l.value.clone()).collect();
        Task {
            name: inst.name.value,
            desc: inst.desc,
            run: def.run.as_ref().map(|r| r.value.clone()),
            inputs: inst.inputs,
            inputs_at: def.inputs.iter().map(|i| i.span.clone()).collect(),
            outputs: inst.outputs,
            env: def
                .env
                .iter()
                .map(|v| (v.name.value.clone(), v.value.value.clone()))
                .collect(),
            matrix: inst.matrix,
            hash_env: texts(&def.hash_env),
            requires_env: texts(&def.requires_env),
            requires_tools: texts(&def.requires_tools),
            probe: def.probe.as_ref().map(|p| p.value.clone()),
            probe_timeout: timing.probe_timeout,
            timeout: timing.timeout,
            retries: timing.retries,
            retry_delay: timing.retry_delay,
            origin: Origin {
                file: *file,
                span: inst.name.span,
            },
        }
    }

    pub(super) fn check_default(&mut self, graph: &Graph) {
        let Some(default) = &self.root.settings.default else {
            return;
        };
        if self.maybe_loaded_later(&default.value) {
            return;
        }
        let (reason, help) = if names::is_glob(&default.value) {
            match NameGlob::new(&default.value) {
                Ok(glob) if graph.matching(&glob).is_empty() => {
                    ("matches no task".to_string(), None)
                }
                Ok(_) => return,
                Err(reason) => (reason, None),
            }
        } else if graph.find(&default.value).is_some() {
            return;
        } else {
            (
                format!("no task named `{}`", default.value),
                crate::suggest::did_you_mean(&graph.closest_names(&default.value)),
            )
        };
        let at = default.span.clone();
        self.invalid(0, &at, "settings.default", reason, help);
    }

    /// Records that tasks named like `name` (a template's `{var}`s match anything) exist
    /// but could not be loaded.
    pub(super) fn may_exist(&mut self, name: &str) {
        let mut glob = String::with_capacity(name.len());
        let mut last = 0;
        for p in matrix::placeholders(name) {
            glob.push_str(&name[last..p.range.start]);
            glob.push('*');
            last = p.range.end;
        }
        glob.push_str(&name[last..]);
        match NameGlob::new(&glob) {
            Ok(g) => self.maybe_names.push(g),
            // Not even a glob: nothing can be said about which names it covers.
            Err(_) => self.unreadable = true,
        }
    }

    /// Whether a dep or target that resolved to nothing could name a task that failed to
    /// load, so reporting it would likely be a false alarm.
    pub(super) fn maybe_loaded_later(&self, name: &str) -> bool {
        if self.unreadable {
            return true;
        }
        if names::is_glob(name) {
            return !self.maybe_names.is_empty();
        }
        self.maybe_names.iter().any(|g| g.is_match(name))
    }
}

/// Resolves command-line targets (names or globs) to tasks, in the order given.
pub fn resolve_targets(graph: &Graph, targets: &[String]) -> Result<Vec<TaskId>, Vec<LoadError>> {
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for target in targets {
        if names::is_glob(target) {
            match NameGlob::new(target) {
                Ok(glob) => {
                    let matched = graph.matching(&glob);
                    if matched.is_empty() {
                        errors.push(LoadError::TargetGlobNoMatch {
                            target: target.clone(),
                        });
                    }
                    ids.extend(matched);
                }
                Err(reason) => errors.push(LoadError::InvalidTargetGlob {
                    target: target.clone(),
                    reason,
                }),
            }
        } else if let Some(id) = graph.find(target) {
            ids.push(id);
        } else {
            let close = graph.closest_names(target);
            errors.push(LoadError::UnknownTarget {
                target: target.clone(),
                help: crate::suggest::did_you_mean(&close),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(errors)
    }
}
