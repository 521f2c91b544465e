//! Preflight: before anything runs, every `requires_tools` and `requires_env` of the tasks
//! a run may start is checked at once, and one error lists everything missing with the
//! tasks that need it (SPEC §6). Nothing runs when something is missing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::graph::TaskId;
use crate::plan::Context;

/// Everything missing, each with the tasks that need it (in run order).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Missing {
    pub tools: BTreeMap<String, Vec<String>>,
    pub env: BTreeMap<String, Vec<String>>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.env.is_empty()
    }
}

/// Checks the tasks `ids` (groups need nothing).
pub fn check(ctx: &Context<'_>, ids: &[TaskId]) -> Missing {
    let graph = &ctx.project.graph;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut missing = Missing::default();
    for &id in ids {
        let task = graph.task(id);
        if task.is_group() {
            continue;
        }
        for tool in &task.requires_tools {
            if !on_path(tool, &path, &ctx.project.root) {
                missing
                    .tools
                    .entry(tool.clone())
                    .or_default()
                    .push(task.name.clone());
            }
        }
        if task.requires_env.is_empty() {
            continue;
        }
        let task_env = ctx.command_env(task);
        for name in &task.requires_env {
            let from_files = task_env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone());
            let value = from_files
                .or_else(|| std::env::var(name).ok())
                .unwrap_or_default();
            if value.is_empty() {
                missing
                    .env
                    .entry(name.clone())
                    .or_default()
                    .push(task.name.clone());
            }
        }
    }
    missing
}

/// Whether `tool` can be run: a name found as an executable file on `PATH`, or a path
/// (relative to the project root) to an executable file.
fn on_path(tool: &str, path: &std::ffi::OsStr, root: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if tool.contains('/') {
        return executable(&root.join(tool));
    }
    std::env::split_paths(path).any(|dir| executable(&dir.join(tool)))
}

/// "image:a, image:b and 15 more".
fn tasks(names: &[String]) -> String {
    const SHOWN: usize = 3;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.tools.len() + self.env.len();
        let what = if n == 1 {
            "1 requirement is".to_string()
        } else {
            format!("{n} requirements are")
        };
        writeln!(f, "error: {what} missing; nothing was run")?;
        for (tool, needed_by) in &self.tools {
            writeln!(
                f,
                "  tool `{tool}` is not on PATH (needed by {})",
                tasks(needed_by)
            )?;
        }
        for (name, needed_by) in &self.env {
            writeln!(
                f,
                "  env `{name}` is not set or empty (needed by {})",
                tasks(needed_by)
            )?;
        }
        write!(
            f,
            "  help: install the tools and set the variables (in the environment, [env], or a dotenv file), then run again"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_everything_with_the_tasks_that_need_it() {
        let mut missing = Missing::default();
        missing
            .tools
            .insert("helm".into(), vec!["infra:10".into(), "infra:15".into()]);
        missing.tools.insert("k3d".into(), vec!["cluster".into()]);
        missing.env.insert(
            "GHCR_TOKEN".into(),
            (1..=17).map(|i| format!("image:{i}")).collect(),
        );
        assert_eq!(
            missing.to_string(),
            "error: 3 requirements are missing; nothing was run
  tool `helm` is not on PATH (needed by infra:10, infra:15)
  tool `k3d` is not on PATH (needed by cluster)
  env `GHCR_TOKEN` is not set or empty (needed by image:1, image:2, image:3 and 14 more)
  help: install the tools and set the variables (in the environment, [env], or a dotenv file), then run again"
        );
    }

    #[test]
    fn finds_tools_on_path_and_by_path() {
        let path = std::env::var_os("PATH").unwrap_or_default();
        assert!(on_path("sh", &path, Path::new("/")));
        assert!(!on_path(
            "surely-not-a-tool-devgraph",
            &path,
            Path::new("/")
        ));
        assert!(on_path("bin/sh", &path, Path::new("/")));
    }
}
