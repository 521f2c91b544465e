//! What `devgraph watch` watches, and what a file event means for the graph: nothing, the
//! project's own files (reload), or the inputs of some wanted tasks. The command's loop
//! (batching, rounds, probes) is in `cli/watch.rs`; see "Watch" in docs/design.md.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::graph::TaskId;
use crate::load::Project;
use crate::pattern::{FileSet, Ignores, Owners};

/// The files that matter to a watch of some wanted tasks.
pub struct Scope {
    root: PathBuf,
    /// The wanted tasks, in the order of `owners`' sets.
    tasks: Vec<TaskId>,
    /// Which tasks' inputs (and implicit script inputs) a path is one of.
    owners: Owners,
    /// Each wanted task's input bases, by the same index: where a created folder matters.
    bases: Vec<Vec<PathBuf>>,
    /// Every include glob of the wanted tasks' inputs: what is walked to find the folders.
    inputs: FileSet,
    /// Every task's declared outputs: a task writing them never triggers anything.
    outputs: FileSet,
    /// The task files (root and included), the `include` globs and the dotenv files.
    project_files: FileSet,
}

/// What is at a changed path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    File,
    /// A folder: what matters are the files in it, which are looked at one by one.
    Folder,
    /// Nothing (removed or moved away): it may have been a file or a whole folder.
    Gone,
}

impl Now {
    pub fn of(path: &Path) -> Self {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Now::Folder,
            Ok(_) => Now::File,
            Err(_) => Now::Gone,
        }
    }
}

/// What a changed path means.
#[derive(Debug, PartialEq, Eq)]
pub enum Meaning {
    Nothing,
    /// A task file, a file an `include` glob matches, a dotenv file or a `.gitignore`: the
    /// graph (or what its globs match) may have changed.
    Project,
    /// An input of these wanted tasks.
    Tasks(Vec<TaskId>),
}

/// The folders to watch, and how many input files they hold.
#[derive(Debug, Default)]
pub struct Folders {
    /// Absolute paths, each watched without recursion.
    pub dirs: Vec<PathBuf>,
    pub files: usize,
}

impl Scope {
    pub fn new(project: &Project, wanted: &[TaskId]) -> Self {
        let graph = &project.graph;
        let escaped = |path: &str| globset::escape(path);
        let per_task: Vec<Vec<String>> = wanted
            .iter()
            .map(|&id| {
                let task = graph.task(id);
                let mut globs = task.inputs.clone();
                globs.extend(
                    crate::plan::implicit_inputs(&project.root, task)
                        .iter()
                        .map(|p| escaped(p)),
                );
                globs
            })
            .collect();
        let as_strs: Vec<Vec<&str>> = per_task
            .iter()
            .map(|globs| globs.iter().map(String::as_str).collect())
            .collect();
        let bases = as_strs
            .iter()
            .map(|globs| FileSet::new(globs.iter().copied()).bases().to_vec())
            .collect();
        let inputs = FileSet::new(
            per_task
                .iter()
                .flatten()
                .filter(|g| !g.starts_with('!'))
                .map(String::as_str),
        );
        let outputs = FileSet::new(
            graph
                .ids()
                .flat_map(|id| graph.task(id).outputs.iter())
                .filter(|g| !g.starts_with('!'))
                .map(String::as_str),
        );
        let mut own: Vec<String> = project.files.iter().map(|f| escaped(&f.name)).collect();
        own.extend(project.include.iter().cloned());
        own.extend(project.settings.dotenv.iter().map(|f| escaped(f)));
        Scope {
            root: project.root.clone(),
            tasks: wanted.to_vec(),
            owners: Owners::new(&as_strs),
            bases,
            inputs,
            outputs,
            project_files: FileSet::new(own.iter().map(String::as_str)),
        }
    }

    /// What a change of the absolute `path` means.
    pub fn meaning(&self, path: &Path, now: Now, ignores: &Ignores) -> Meaning {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Meaning::Nothing;
        };
        if rel.as_os_str().is_empty() {
            return Meaning::Nothing;
        }
        // `.git/` and `.devgraph/` never matter; a file the project's own globs name does,
        // even when ignored (as `include` and dotenv files are read regardless).
        if rel.starts_with(".git") || rel.starts_with(crate::state::DIR) {
            return Meaning::Nothing;
        }
        if rel.file_name().is_some_and(|n| n == ".gitignore") || self.project_files.matches(rel) {
            return Meaning::Project;
        }
        if now == Now::Folder
            || self.outputs.matches(rel)
            || ignores.ignores(&self.root, rel, false)
        {
            return Meaning::Nothing;
        }
        let mut found = self.owners.matching(rel);
        if now == Now::Gone {
            // Perhaps a folder that went with its files: whatever could have had inputs in
            // it (a removed file merely near some inputs costs one decision in the round).
            found.extend((0..self.tasks.len()).filter(|&i| {
                self.bases[i]
                    .iter()
                    .any(|b| b.starts_with(rel) || rel.starts_with(b))
            }));
            found.sort_unstable();
            found.dedup();
        }
        let tasks: Vec<TaskId> = found.into_iter().map(|i| self.tasks[i]).collect();
        if tasks.is_empty() {
            Meaning::Nothing
        } else {
            Meaning::Tasks(tasks)
        }
    }

    /// Every folder to watch: those the inputs' globs can reach (`.gitignore` respected),
    /// and the nearest existing folder of each glob base and project file, so files and
    /// folders that do not exist yet are noticed when they appear.
    pub fn folders(&self) -> Folders {
        let ignores = Ignores::default();
        let (files, mut dirs) =
            self.inputs
                .files_and_dirs(&self.root, &ignores, self.inputs.bases());
        for base in self.inputs.bases().iter().chain(self.project_files.bases()) {
            let existing = self
                .root
                .join(base)
                .ancestors()
                .find(|a| a.is_dir())
                .map(Path::to_path_buf);
            dirs.extend(existing.filter(|d| d.starts_with(&self.root)));
        }
        dirs.sort();
        dirs.dedup();
        Folders {
            dirs,
            files: files.len(),
        }
    }

    /// When the folder `path` appeared (or was moved in): the folders in it to watch, and
    /// the files already in it (absolute), which changed too.
    pub fn appeared(&self, path: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Default::default();
        };
        let relevant = self
            .inputs
            .bases()
            .iter()
            .any(|b| b.starts_with(rel) || rel.starts_with(b));
        if !relevant {
            return Default::default();
        }
        let (files, dirs) =
            self.inputs
                .files_and_dirs(&self.root, &Ignores::default(), &[rel.to_path_buf()]);
        (dirs, files.iter().map(|f| self.root.join(f)).collect())
    }

    /// How many tasks are watched.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }
}

/// The changes seen since the last round: a window opens at the first relevant one and the
/// round starts when it closes (`--debounce`).
#[derive(Debug, Default)]
pub struct Batch {
    /// When the first relevant change of this batch arrived.
    pub first: Option<Instant>,
    /// Root-relative paths that changed, for the round's first line, each with the tasks
    /// it is an input of (none: one of the project's own files).
    pub paths: BTreeMap<PathBuf, Vec<TaskId>>,
    /// The wanted tasks whose inputs changed, with when the last such change was seen.
    pub tasks: HashMap<TaskId, Instant>,
    /// The project's own files changed: reload.
    pub project: bool,
    /// Events were lost (the kernel's queue overflowed): check every wanted task.
    pub rescan: bool,
}

impl Batch {
    /// Adds what one changed path means.
    pub fn add(&mut self, root: &Path, path: &Path, meaning: Meaning, now: Instant) {
        let tasks = match meaning {
            Meaning::Nothing => return,
            Meaning::Project => {
                self.project = true;
                Vec::new()
            }
            Meaning::Tasks(tasks) => {
                self.tasks.extend(tasks.iter().map(|&id| (id, now)));
                tasks
            }
        };
        let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        self.paths.entry(rel).or_default().extend(tasks);
        self.first.get_or_insert(now);
    }

    /// The tasks whose inputs changed.
    pub fn task_ids(&self) -> std::collections::HashSet<TaskId> {
        self.tasks.keys().copied().collect()
    }

    /// After a round: drops the changes that round already saw, those of tasks it decided
    /// (`decided_at`) after the change arrived (a restarted task, or one that was still
    /// waiting for its deps), and the paths that were only theirs. An empty batch closes.
    pub fn settle(&mut self, decided_at: impl Fn(TaskId) -> Option<Instant>) {
        self.tasks
            .retain(|&id, &mut seen| decided_at(id).is_none_or(|at| at <= seen));
        let tasks = &self.tasks;
        self.paths
            .retain(|_, ids| ids.is_empty() || ids.iter().any(|id| tasks.contains_key(id)));
        if self.tasks.is_empty() && !self.project && !self.rescan {
            *self = Batch::default();
        }
    }

    /// Events were lost: the next round checks everything.
    pub fn lost_events(&mut self, now: Instant) {
        self.rescan = true;
        self.first.get_or_insert(now);
    }

    /// Whether the window has closed at `now`.
    pub fn due(&self, now: Instant, window: Duration) -> bool {
        self.first.is_some_and(|first| now >= first + window)
    }

    /// When the window closes, if it is open.
    pub fn closes_at(&self, window: Duration) -> Option<Instant> {
        self.first.map(|first| first + window)
    }

    /// The paths, shortened for one line: the first few, then how many more.
    pub fn describe(&self, shown: usize) -> String {
        let names: Vec<String> = self
            .paths
            .keys()
            .take(shown)
            .map(|p| p.display().to_string())
            .collect();
        let more = self.paths.len().saturating_sub(shown);
        match (names.len(), more) {
            (0, _) => "files changed".into(),
            (_, 0) => format!("{} changed", names.join(", ")),
            _ => format!("{} and {more} more changed", names.join(", ")),
        }
    }
}

/// When each probe is checked next, backing off while it keeps failing.
#[derive(Debug)]
pub struct ProbeClock {
    interval: Duration,
    /// Consecutive failures of each task's probe (or of its run after it drifted).
    failures: std::collections::HashMap<String, (u32, Instant)>,
    next: Instant,
}

/// The longest a failing probe waits between checks.
pub const MAX_PROBE_BACKOFF: Duration = Duration::from_secs(600);

impl ProbeClock {
    pub fn new(interval: Duration, now: Instant) -> Self {
        ProbeClock {
            interval,
            failures: Default::default(),
            next: now + interval,
        }
    }

    /// When the next check is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Whether `task`'s probe is checked at the tick at `now` (not while backing off).
    pub fn due(&self, task: &str, now: Instant) -> bool {
        self.failures
            .get(task)
            .is_none_or(|&(_, until)| now >= until)
    }

    /// The tick at `now` happened: the next one is an interval later.
    pub fn ticked(&mut self, now: Instant) {
        self.next = now + self.interval;
    }

    /// `task` failed again (its probe, or its run after the probe drifted): how long it
    /// now waits, doubling from one interval up to [`MAX_PROBE_BACKOFF`], and how many
    /// failures in a row.
    pub fn failed(&mut self, task: &str, now: Instant) -> (Duration, u32) {
        let entry = self.failures.entry(task.to_string()).or_insert((0, now));
        entry.0 += 1;
        let wait = self
            .interval
            .saturating_mul(1 << (entry.0 - 1).min(16))
            .min(MAX_PROBE_BACKOFF.max(self.interval));
        entry.1 = now + wait;
        (wait, entry.0)
    }

    /// `task` is healthy again.
    pub fn recovered(&mut self, task: &str) -> bool {
        self.failures.remove(task).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Memory, load_with};

    fn project(root: &Path, toml: &str) -> Project {
        let files = Memory([("tasks.toml".to_string(), toml.to_string())].into());
        let loaded = load_with(root.to_path_buf(), "tasks.toml", &files);
        loaded
            .project
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
    }

    const TOML: &str = r#"
version = 1
include = ["more/*.toml"]
[settings]
dotenv = [".env"]
[tasks.a]
run = "true"
inputs = ["src/a/**", "!src/a/gen/**"]
outputs = ["src/a/out.txt"]
[tasks.b]
run = "true"
deps = ["a"]
inputs = ["src/**/*.rs", "conf.yaml"]
[tasks.c]
run = "true"
inputs = ["other/**"]
"#;

    fn ids(p: &Project, names: &[&str]) -> Vec<TaskId> {
        names.iter().map(|n| p.graph.find(n).unwrap()).collect()
    }

    #[test]
    fn a_path_means_the_tasks_whose_inputs_name_it_and_outputs_mean_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let p = project(root, TOML);
        let scope = Scope::new(&p, &ids(&p, &["a", "b"]));
        let ignores = Ignores::default();
        let meaning = |rel: &str| scope.meaning(&root.join(rel), Now::File, &ignores);
        assert_eq!(meaning("src/a/x.rs"), Meaning::Tasks(ids(&p, &["a", "b"])));
        assert_eq!(meaning("src/a/x.txt"), Meaning::Tasks(ids(&p, &["a"])));
        assert_eq!(meaning("src/a/gen/x.txt"), Meaning::Nothing);
        assert_eq!(meaning("src/a/gen/x.rs"), Meaning::Tasks(ids(&p, &["b"])));
        assert_eq!(meaning("src/a/out.txt"), Meaning::Nothing);
        assert_eq!(meaning("conf.yaml"), Meaning::Tasks(ids(&p, &["b"])));
        // `c` is not wanted.
        assert_eq!(meaning("other/x"), Meaning::Nothing);
        assert_eq!(meaning(".devgraph/state.db"), Meaning::Nothing);
        for own in ["tasks.toml", "more/x.toml", ".env", "src/.gitignore"] {
            assert_eq!(meaning(own), Meaning::Project, "{own}");
        }
        // A folder: its files count, one by one. Gone: whatever had inputs in it.
        assert_eq!(
            scope.meaning(&root.join("src"), Now::Folder, &ignores),
            Meaning::Nothing
        );
        assert_eq!(
            scope.meaning(&root.join("src"), Now::Gone, &ignores),
            Meaning::Tasks(ids(&p, &["a", "b"]))
        );
        assert_eq!(
            scope.meaning(&root.join("src/a/sub"), Now::Gone, &ignores),
            Meaning::Tasks(ids(&p, &["a", "b"]))
        );
    }

    #[test]
    fn ignored_files_mean_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/a")).unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        let p = project(root, TOML);
        let scope = Scope::new(&p, &ids(&p, &["a"]));
        let ignores = Ignores::default();
        assert_eq!(
            scope.meaning(&root.join("src/a/x.log"), Now::File, &ignores),
            Meaning::Nothing
        );
    }

    #[test]
    fn folders_cover_the_input_trees_and_where_missing_ones_would_appear() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "src/a/x.txt",
            "src/a/deep/y.txt",
            "node_modules/m/z.rs",
            "more/l.toml",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "x").unwrap();
        }
        std::fs::write(root.join(".gitignore"), "node_modules/\n").unwrap();
        let p = project(root, TOML);
        let scope = Scope::new(&p, &ids(&p, &["a", "b"]));
        let folders = scope.folders();
        let rel: Vec<String> = folders
            .dirs
            .iter()
            .map(|d| d.strip_prefix(root).unwrap().display().to_string())
            .collect();
        // The `src` tree; the root for `conf.yaml` (missing, and the task files), `more` for
        // the include glob; not node_modules, which is ignored.
        assert_eq!(rel, ["", "more", "src", "src/a", "src/a/deep"]);
        assert_eq!(folders.files, 2);
        assert_eq!(
            scope.appeared(&root.join("node_modules")),
            Default::default()
        );
        assert_eq!(
            scope.appeared(&root.join("src/a/deep")),
            (
                vec![root.join("src/a/deep")],
                vec![root.join("src/a/deep/y.txt")]
            )
        );
    }

    #[test]
    fn a_batch_opens_at_its_first_relevant_change_and_lists_the_paths() {
        let root = Path::new("/p");
        let t0 = Instant::now();
        let mut batch = Batch::default();
        batch.add(root, Path::new("/p/x"), Meaning::Nothing, t0);
        assert_eq!(batch.first, None);
        let later = t0 + Duration::from_millis(30);
        batch.add(root, Path::new("/p/b"), Meaning::Tasks(vec![]), later);
        batch.add(
            root,
            Path::new("/p/a"),
            Meaning::Project,
            later + Duration::from_millis(90),
        );
        assert_eq!(batch.first, Some(later));
        let window = Duration::from_millis(100);
        assert!(!batch.due(later + Duration::from_millis(99), window));
        assert!(batch.due(later + window, window));
        assert!(batch.project);
        assert_eq!(batch.describe(5), "a, b changed");
        assert_eq!(batch.describe(1), "a and 1 more changed");
    }

    #[test]
    fn a_round_that_decided_a_task_after_its_change_settles_that_change() {
        let root = Path::new("/p");
        let (a, b) = (crate::graph::Graph::id(0), crate::graph::Graph::id(1));
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut batch = Batch::default();
        batch.add(root, Path::new("/p/a.txt"), Meaning::Tasks(vec![a]), ms(10));
        batch.add(
            root,
            Path::new("/p/both.txt"),
            Meaning::Tasks(vec![a, b]),
            ms(20),
        );
        batch.add(root, Path::new("/p/b.txt"), Meaning::Tasks(vec![b]), ms(30));
        // `a` was decided after its last change; `b` before its last one.
        batch.settle(|_| Some(ms(25)));
        assert_eq!(batch.task_ids(), [b].into());
        assert_eq!(batch.describe(5), "b.txt, both.txt changed");
        // Then `b` too: nothing is left, and the window is closed.
        batch.settle(|_| Some(ms(40)));
        assert!(batch.tasks.is_empty() && batch.paths.is_empty());
        assert_eq!(batch.first, None);
        // A change of the project's own files stays until the loop takes it.
        batch.add(root, Path::new("/p/tasks.toml"), Meaning::Project, ms(50));
        batch.settle(|_| Some(ms(60)));
        assert_eq!(batch.describe(5), "tasks.toml changed");
    }

    #[test]
    fn a_failing_probe_backs_off_doubling_up_to_the_cap() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(30);
        let mut clock = ProbeClock::new(interval, t0);
        assert!(clock.due("registry", t0));
        let waits: Vec<u64> = (0..8)
            .map(|_| clock.failed("registry", t0).0.as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600, 600]);
        assert!(!clock.due("registry", t0 + Duration::from_secs(599)));
        assert!(clock.due("registry", t0 + Duration::from_secs(600)));
        assert!(clock.due("cluster", t0));
        assert!(clock.recovered("registry"));
        assert!(!clock.recovered("registry"));
        assert_eq!(clock.failed("registry", t0), (interval, 1));
    }
}
