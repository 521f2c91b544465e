//! What `devgraph watch` watches, and what a file event means for the graph: nothing, the
//! project's own files (reload), or the inputs and outputs of some wanted tasks. The
//! command's loop (batching, rounds, probes) is in `cli/watch.rs`; see "Watch" in
//! docs/design.md.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::graph::TaskId;
use crate::load::Project;
use crate::pattern::{FileSet, Ignores, Owners};

/// The files that matter to a watch of some wanted tasks.
pub struct Scope {
    root: PathBuf,
    /// The wanted tasks, in the order of `inputs`' and `outputs`' sets.
    tasks: Vec<TaskId>,
    /// Which tasks' inputs (and implicit script inputs) a path is one of.
    inputs: Owners,
    /// Which tasks declare a path as an output (excludes honoured).
    outputs: Owners,
    /// Every include glob of the inputs and of the project's own files: what is walked to
    /// find the folders to watch.
    walk: FileSet,
    /// Every include glob of the inputs: the files `watch` says it watches.
    input_files: FileSet,
    /// The task files (root and included), the `include` globs and the dotenv files.
    project_files: FileSet,
}

/// What is at a changed path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    File,
    /// A folder: what matters are the files in it, which are looked at one by one.
    Folder,
    /// A file that was removed or moved away.
    GoneFile,
    /// A folder that was removed or moved away, with whatever it held.
    GoneFolder,
}

impl Now {
    /// What is at `path`; when nothing is, `was_folder` says what went.
    pub fn of(path: &Path, was_folder: bool) -> Self {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Now::Folder,
            Ok(_) => Now::File,
            Err(_) if was_folder => Now::GoneFolder,
            Err(_) => Now::GoneFile,
        }
    }
}

/// What a changed path means.
#[derive(Debug, PartialEq, Eq)]
pub enum Meaning {
    Nothing,
    /// A task file, a file an `include` glob matches, a dotenv file or an ignore file: the
    /// graph (or what its globs match) may have changed.
    Project,
    /// Wanted tasks it is an input of, and wanted tasks that declare it as an output (a
    /// task's own output is never its input). `certain`: the path is known to be one of
    /// their files; not for a folder that went, which may or may not have held some.
    Tasks {
        inputs: Vec<TaskId>,
        outputs: Vec<TaskId>,
        certain: bool,
    },
}

/// The folders to watch and the files in them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Folders {
    /// Absolute paths, each watched without recursion.
    pub dirs: Vec<PathBuf>,
    /// Absolute paths of the files found that the inputs' or the project's globs match.
    pub files: Vec<PathBuf>,
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
        fn as_strs(sets: &[Vec<String>]) -> Vec<Vec<&str>> {
            sets.iter()
                .map(|globs| globs.iter().map(String::as_str).collect())
                .collect()
        }
        let input_sets = per_task;
        let output_sets: Vec<Vec<String>> = wanted
            .iter()
            .map(|&id| graph.task(id).outputs.clone())
            .collect();
        let includes = |sets: &[Vec<String>]| -> Vec<String> {
            sets.iter()
                .flatten()
                .filter(|g| !g.starts_with('!'))
                .cloned()
                .collect()
        };
        let mut own: Vec<String> = project.files.iter().map(|f| escaped(&f.name)).collect();
        own.extend(project.include.iter().cloned());
        own.extend(project.settings.dotenv.iter().map(|f| escaped(f)));
        let inputs_flat = includes(&input_sets);
        let walk = FileSet::new(inputs_flat.iter().chain(&own).map(String::as_str));
        Scope {
            root: project.root.clone(),
            tasks: wanted.to_vec(),
            inputs: Owners::new(&as_strs(&input_sets)),
            outputs: Owners::new(&as_strs(&output_sets)),
            walk,
            input_files: FileSet::new(inputs_flat.iter().map(String::as_str)),
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
        // Ignore rules decide what the inputs are.
        if rel == Path::new(".git/info/exclude")
            || rel.file_name().is_some_and(|n| n == ".gitignore")
        {
            return Meaning::Project;
        }
        // `.git/` and `.devgraph/` never matter; a file the project's own globs name does,
        // even when ignored (as `include` and dotenv files are read regardless).
        if rel.starts_with(".git") || rel.starts_with(crate::state::DIR) {
            return Meaning::Nothing;
        }
        if self.project_files.matches(rel) {
            return Meaning::Project;
        }
        if now == Now::Folder || ignores.ignores(&self.root, rel, now == Now::GoneFolder) {
            return Meaning::Nothing;
        }
        let outputs = self.outputs.matching(rel);
        let mut inputs: Vec<usize> = self
            .inputs
            .matching(rel)
            .into_iter()
            .filter(|i| !outputs.contains(i))
            .collect();
        let certain = now != Now::GoneFolder;
        if !certain {
            // Whatever could have had inputs in it; the round finds out.
            inputs.extend((0..self.tasks.len()).filter(|&i| {
                self.inputs
                    .bases(i)
                    .iter()
                    .any(|b| b.starts_with(rel) || rel.starts_with(b))
            }));
            inputs.sort_unstable();
            inputs.dedup();
        }
        if inputs.is_empty() && outputs.is_empty() {
            return Meaning::Nothing;
        }
        let ids = |found: Vec<usize>| found.into_iter().map(|i| self.tasks[i]).collect();
        Meaning::Tasks {
            inputs: ids(inputs),
            outputs: ids(outputs),
            certain,
        }
    }

    /// The folders to watch below the absolute `under` (everywhere when `None`): those the
    /// inputs' and the project's globs can reach (`.gitignore` respected), and, for the
    /// whole project, the nearest existing folder of each glob base, so that files and
    /// folders that do not exist yet are noticed when they appear.
    pub fn folders(&self, under: Option<&Path>) -> Folders {
        let ignores = Ignores::default();
        let bases: Vec<PathBuf> = match under {
            None => self.walk.bases().to_vec(),
            Some(path) => {
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    return Folders::default();
                };
                let relevant = self
                    .walk
                    .bases()
                    .iter()
                    .any(|b| b.starts_with(rel) || rel.starts_with(b));
                if !relevant {
                    return Folders::default();
                }
                vec![rel.to_path_buf()]
            }
        };
        let (files, mut dirs) = self.walk.files_and_dirs(&self.root, &ignores, &bases);
        if under.is_none() {
            for base in self.walk.bases() {
                let existing = self
                    .root
                    .join(base)
                    .ancestors()
                    .find(|a| a.is_dir())
                    .map(Path::to_path_buf);
                dirs.extend(existing.filter(|d| d.starts_with(&self.root)));
            }
        }
        dirs.sort();
        dirs.dedup();
        Folders {
            dirs,
            files: files.iter().map(|f| self.root.join(f)).collect(),
        }
    }

    /// How many of `files` (from [`Scope::folders`]) are inputs.
    pub fn input_count(&self, files: &[PathBuf]) -> usize {
        files
            .iter()
            .filter_map(|f| f.strip_prefix(&self.root).ok())
            .filter(|rel| self.input_files.matches(rel))
            .count()
    }
}

/// The changes seen since the last round: a window opens at the first relevant one and the
/// round starts when it closes (`--debounce`).
#[derive(Debug, Default)]
pub struct Batch {
    /// When the first relevant change of this batch arrived.
    pub first: Option<Instant>,
    /// Root-relative paths that changed, for the round's first line, each with the tasks
    /// it concerns (none: one of the project's own files).
    pub paths: BTreeMap<PathBuf, Vec<TaskId>>,
    /// The wanted tasks whose inputs changed, with when the last such change was seen.
    pub tasks: HashMap<TaskId, Instant>,
    /// The wanted tasks whose declared outputs changed (not by their own run, as far as
    /// is known), with when.
    pub produced: HashMap<TaskId, Instant>,
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
            Meaning::Tasks {
                inputs, outputs, ..
            } => {
                self.tasks.extend(inputs.iter().map(|&id| (id, now)));
                self.produced.extend(outputs.iter().map(|&id| (id, now)));
                inputs.into_iter().chain(outputs).collect()
            }
        };
        let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        self.paths.entry(rel).or_default().extend(tasks);
        self.first.get_or_insert(now);
    }

    /// The tasks whose inputs or outputs changed.
    pub fn task_ids(&self) -> HashSet<TaskId> {
        self.tasks
            .keys()
            .chain(self.produced.keys())
            .copied()
            .collect()
    }

    /// After a round: drops the changes that round already took into account, and the
    /// paths that were only theirs. `ran(id)` is when the round decided `id` and when it
    /// was done with it: a changed input was seen if the task was decided after the change
    /// (a restarted task, or one still waiting for its deps); a changed output, if the
    /// task was done after it (its own run writes its outputs, then they are measured). An
    /// empty batch closes.
    pub fn settle(&mut self, ran: impl Fn(TaskId) -> Option<(Instant, Instant)>) {
        self.tasks
            .retain(|&id, &mut seen| ran(id).is_none_or(|(decided, _)| decided <= seen));
        self.produced
            .retain(|&id, &mut seen| ran(id).is_none_or(|(_, done)| done <= seen));
        let (tasks, produced) = (&self.tasks, &self.produced);
        self.paths.retain(|_, ids| {
            ids.is_empty()
                || ids
                    .iter()
                    .any(|id| tasks.contains_key(id) || produced.contains_key(id))
        });
        if self.tasks.is_empty() && self.produced.is_empty() && !self.project && !self.rescan {
            *self = Batch::default();
        }
    }

    /// After a round: drops, for each changed path, the tasks for which `accounted(path,
    /// task)` holds (their last success recorded the root-relative path as it is now: the
    /// round saw it, whenever its event came); then the paths left without a task and the
    /// tasks left without a path. An empty batch closes.
    pub fn settle_by_content(&mut self, accounted: impl Fn(&Path, TaskId) -> bool) {
        self.paths.retain(|path, ids| {
            if ids.is_empty() {
                return true;
            }
            ids.retain(|&id| !accounted(path, id));
            !ids.is_empty()
        });
        let left: HashSet<TaskId> = self.paths.values().flatten().copied().collect();
        self.tasks.retain(|id, _| left.contains(id));
        self.produced.retain(|id, _| left.contains(id));
        if self.tasks.is_empty() && self.produced.is_empty() && !self.project && !self.rescan {
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

    /// The meaning of an input change of `inputs` (and of nothing else).
    fn inputs_of(p: &Project, names: &[&str]) -> Meaning {
        Meaning::Tasks {
            inputs: ids(p, names),
            outputs: Vec::new(),
            certain: true,
        }
    }

    fn changed(inputs: Vec<TaskId>) -> Meaning {
        Meaning::Tasks {
            inputs,
            outputs: Vec::new(),
            certain: true,
        }
    }

    #[test]
    fn a_path_means_the_tasks_whose_inputs_or_outputs_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let p = project(root, TOML);
        let scope = Scope::new(&p, &ids(&p, &["a", "b"]));
        let ignores = Ignores::default();
        let meaning = |rel: &str| scope.meaning(&root.join(rel), Now::File, &ignores);
        assert_eq!(meaning("src/a/x.rs"), inputs_of(&p, &["a", "b"]));
        assert_eq!(meaning("src/a/x.txt"), inputs_of(&p, &["a"]));
        assert_eq!(meaning("src/a/gen/x.txt"), Meaning::Nothing);
        assert_eq!(meaning("src/a/gen/x.rs"), inputs_of(&p, &["b"]));
        assert_eq!(meaning("conf.yaml"), inputs_of(&p, &["b"]));
        // `a`'s own output is not its input; it is still the output `a` declares.
        assert_eq!(
            meaning("src/a/out.txt"),
            Meaning::Tasks {
                inputs: Vec::new(),
                outputs: ids(&p, &["a"]),
                certain: true,
            }
        );
        // `c` is not wanted.
        assert_eq!(meaning("other/x"), Meaning::Nothing);
        assert_eq!(meaning(".devgraph/state.db"), Meaning::Nothing);
        assert_eq!(meaning(".git/HEAD"), Meaning::Nothing);
        for own in [
            "tasks.toml",
            "more/x.toml",
            ".env",
            "src/.gitignore",
            ".git/info/exclude",
        ] {
            assert_eq!(meaning(own), Meaning::Project, "{own}");
        }
    }

    #[test]
    fn a_folder_means_its_files_and_one_that_went_whatever_it_could_have_held() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let p = project(root, TOML);
        let scope = Scope::new(&p, &ids(&p, &["a", "b"]));
        let ignores = Ignores::default();
        let at = |rel: &str, now| scope.meaning(&root.join(rel), now, &ignores);
        assert_eq!(at("src", Now::Folder), Meaning::Nothing);
        let went = |names: &[&str]| Meaning::Tasks {
            inputs: ids(&p, names),
            outputs: Vec::new(),
            certain: false,
        };
        assert_eq!(at("src", Now::GoneFolder), went(&["a", "b"]));
        assert_eq!(at("src/a/sub", Now::GoneFolder), went(&["a", "b"]));
        // A file that went is just that file.
        assert_eq!(at("src/a/notes.txt", Now::GoneFile), inputs_of(&p, &["a"]));
        assert_eq!(at("src/b/notes.txt", Now::GoneFile), Meaning::Nothing);
    }

    #[test]
    fn ignored_files_and_folders_mean_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/a")).unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\ntarget/\n").unwrap();
        let p = project(root, TOML);
        let scope = Scope::new(&p, &ids(&p, &["a", "b"]));
        let ignores = Ignores::default();
        assert_eq!(
            scope.meaning(&root.join("src/a/x.log"), Now::File, &ignores),
            Meaning::Nothing
        );
        // A folder rule (`target/`) applies to a folder that went.
        assert_eq!(
            scope.meaning(&root.join("src/target"), Now::GoneFolder, &ignores),
            Meaning::Nothing
        );
    }

    #[test]
    fn excluded_outputs_are_not_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let p = project(
            root,
            "version = 1\n[tasks.gen]\nrun = 'true'\noutputs = ['src/gen/**', '!src/gen/README.md']\n[tasks.build]\nrun = 'true'\ninputs = ['src/**']\n",
        );
        let scope = Scope::new(&p, &ids(&p, &["gen", "build"]));
        let ignores = Ignores::default();
        let at = |rel: &str| scope.meaning(&root.join(rel), Now::File, &ignores);
        assert_eq!(at("src/gen/README.md"), inputs_of(&p, &["build"]));
        assert_eq!(
            at("src/gen/api.txt"),
            Meaning::Tasks {
                inputs: ids(&p, &["build"]),
                outputs: ids(&p, &["gen"]),
                certain: true,
            }
        );
    }

    #[test]
    fn folders_cover_the_input_trees_the_includes_and_where_missing_ones_would_appear() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "src/a/x.txt",
            "src/a/deep/y.txt",
            "node_modules/m/z.rs",
            "more/l.toml",
            "more/sub/n.txt",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "x").unwrap();
        }
        std::fs::write(root.join(".gitignore"), "node_modules/\n").unwrap();
        let p = project(root, TOML);
        let scope = Scope::new(&p, &ids(&p, &["a", "b"]));
        let folders = scope.folders(None);
        let rel: Vec<String> = folders
            .dirs
            .iter()
            .map(|d| d.strip_prefix(root).unwrap().display().to_string())
            .collect();
        // The `src` tree; the root for `conf.yaml` (missing) and the task files; the
        // include glob's folder and below; not node_modules, which is ignored.
        assert_eq!(rel, ["", "more", "more/sub", "src", "src/a", "src/a/deep"]);
        assert_eq!(scope.input_count(&folders.files), 2);
        assert_eq!(
            scope.folders(Some(&root.join("node_modules"))),
            Folders::default()
        );
        assert_eq!(
            scope.folders(Some(&root.join("src/a/deep"))),
            Folders {
                dirs: vec![root.join("src/a/deep")],
                files: vec![root.join("src/a/deep/y.txt")],
            }
        );
        // A new folder where the includes look is covered too.
        assert_eq!(
            scope.folders(Some(&root.join("more/sub"))).dirs,
            [root.join("more/sub")]
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
        batch.add(root, Path::new("/p/b"), changed(vec![]), later);
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
    fn a_round_settles_the_changes_it_took_into_account() {
        let root = Path::new("/p");
        let (a, b) = (crate::graph::Graph::id(0), crate::graph::Graph::id(1));
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut batch = Batch::default();
        batch.add(root, Path::new("/p/a.txt"), changed(vec![a]), ms(10));
        batch.add(root, Path::new("/p/both.txt"), changed(vec![a, b]), ms(20));
        batch.add(root, Path::new("/p/b.txt"), changed(vec![b]), ms(30));
        // Both were decided at 25: `a` after its last change, `b` before its last one.
        batch.settle(|_| Some((ms(25), ms(26))));
        assert_eq!(batch.task_ids(), [b].into());
        assert_eq!(batch.describe(5), "b.txt, both.txt changed");
        // Then `b` too: nothing is left, and the window is closed.
        batch.settle(|_| Some((ms(40), ms(41))));
        assert!(batch.tasks.is_empty() && batch.paths.is_empty());
        assert_eq!(batch.first, None);
        // An output written while its task ran is settled once the task is done after it.
        let out = Meaning::Tasks {
            inputs: Vec::new(),
            outputs: vec![a],
            certain: true,
        };
        batch.add(root, Path::new("/p/out.txt"), out, ms(50));
        batch.settle(|_| Some((ms(45), ms(49))));
        assert_eq!(batch.task_ids(), [a].into());
        batch.settle(|_| Some((ms(45), ms(55))));
        assert!(batch.task_ids().is_empty());
        // A change of the project's own files stays until the loop takes it.
        batch.add(root, Path::new("/p/tasks.toml"), Meaning::Project, ms(60));
        batch.settle(|_| Some((ms(70), ms(71))));
        assert_eq!(batch.describe(5), "tasks.toml changed");
    }

    #[test]
    fn a_round_settles_the_changes_its_tasks_recorded() {
        let root = Path::new("/p");
        let (a, b) = (crate::graph::Graph::id(0), crate::graph::Graph::id(1));
        let now = Instant::now();
        let mut batch = Batch::default();
        batch.add(root, Path::new("/p/out.txt"), changed(vec![a]), now);
        batch.add(root, Path::new("/p/both.txt"), changed(vec![a, b]), now);
        // `a` recorded both paths as they are; `b` did not.
        batch.settle_by_content(|_, id| id == a);
        assert_eq!(batch.task_ids(), [b].into());
        assert_eq!(batch.describe(5), "both.txt changed");
        batch.settle_by_content(|_, _| true);
        assert_eq!(batch.first, None);
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
