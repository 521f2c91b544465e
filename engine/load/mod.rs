//! Loading a project: find the root tasks.toml, read it and its includes, expand matrix
//! templates, check every value, resolve deps into a [`Graph`]. Every problem of every file
//! is collected, so `devgraph check` can show them all at once. See "Loading" in
//! docs/design.md.

mod check;
mod expand;
mod resolve;

pub use resolve::resolve_targets;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use miette::{Diagnostic, NamedSource};
use toml::de::DeTable;

use crate::error::{LoadError, Span, Src, span};
use crate::graph::Graph;
use crate::manifest::{self, FileKind, Located, Manifest, TaskDef};
use crate::names::NameGlob;
use crate::pattern;

/// The name devgraph looks for when walking up from the current directory.
pub const ROOT_FILE: &str = "tasks.toml";
/// The only `version` this devgraph reads.
pub const VERSION: i64 = 1;
const DEFAULT_SHELL: [&str; 4] = ["bash", "-eo", "pipefail", "-c"];
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most tasks one matrix template may expand to: far beyond any real environment,
/// small enough that a typo cannot exhaust memory.
pub const MAX_MATRIX_TASKS: usize = 10_000;

/// A file that was read, named by its path relative to the project root.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub src: Src,
    /// Byte offset of the start of each line, for turning spans into line numbers.
    line_starts: Vec<usize>,
}

impl SourceFile {
    fn new(name: &str, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let text: Arc<str> = Arc::from(text);
        SourceFile {
            name: name.to_string(),
            src: NamedSource::new(name, text).with_language("toml"),
            line_starts,
        }
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        self.src.inner()
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }
}

/// `[settings]` after checking, with defaults filled in.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Target of a bare `devgraph run`: a task name or glob.
    pub default: Option<String>,
    pub jobs: Option<usize>,
    pub shell: Vec<String>,
    pub dotenv: Vec<String>,
}

/// A loaded, valid project.
#[derive(Debug)]
pub struct Project {
    /// The folder of the root file; every path in every file is relative to it.
    pub root: PathBuf,
    /// The root file first, then the included files in path order.
    pub files: Vec<SourceFile>,
    /// The root file's `include` globs (a file they come to match changes the project).
    pub include: Vec<String>,
    pub settings: Settings,
    /// The global `[env]`, in file order.
    pub env: Vec<(String, String)>,
    pub graph: Graph,
}

/// What loading produced: a project when there was no error, and every diagnostic
/// (warnings too) in the order found.
#[derive(Debug)]
pub struct Loaded {
    pub project: Option<Project>,
    pub diagnostics: Vec<LoadError>,
    /// How many files were read (for `check`'s summary).
    pub file_count: usize,
}

/// Where task files come from: the disk, or memory (tests and fuzzing).
pub trait Files {
    /// Reads a root-relative file.
    fn read(&self, name: &str) -> io::Result<String>;
    /// Root-relative names of the files a glob matches, sorted.
    fn glob(&self, pattern: &str) -> Vec<String>;
}

/// Files under a project root on disk.
pub struct Disk {
    pub root: PathBuf,
}

impl Files for Disk {
    fn read(&self, name: &str) -> io::Result<String> {
        std::fs::read_to_string(self.root.join(name))
    }

    fn glob(&self, pattern: &str) -> Vec<String> {
        pattern::FileSet::new([pattern])
            .files(&self.root)
            .iter()
            .filter_map(|p| p.to_str().map(str::to_string))
            .collect()
    }
}

/// Files held in memory, by root-relative name.
#[derive(Default)]
pub struct Memory(pub BTreeMap<String, String>);

impl Files for Memory {
    fn read(&self, name: &str) -> io::Result<String> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn glob(&self, pattern: &str) -> Vec<String> {
        let set = pattern::FileSet::new([pattern]);
        self.0
            .keys()
            .filter(|name| set.matches(Path::new(name)))
            .cloned()
            .collect()
    }
}

/// Finds the root file: `tasks.toml` in `dir` or the nearest parent that has one.
pub fn find_root_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(ROOT_FILE))
        .find(|candidate| candidate.is_file())
}

/// Loads the project whose root file is `root_file`.
pub fn load_path(root_file: &Path) -> Loaded {
    let root = root_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = root_file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(ROOT_FILE)
        .to_string();
    // Absolute, so `DEVGRAPH_ROOT` and everything derived from it mean one place.
    let root = root.canonicalize().unwrap_or(root);
    let files = Disk { root: root.clone() };
    load_with(root, &name, &files)
}

/// Loads a project from `files`, starting at the root file `root_name`.
pub fn load_with(root: PathBuf, root_name: &str, files: &dyn Files) -> Loaded {
    let mut loader = Loader::default();
    loader.load(root_name, files);
    loader.finish(root)
}

/// A task definition and the file it came from.
struct Def {
    file: usize,
    def: TaskDef,
}

/// One task after matrix expansion, before deps are resolved.
struct Instance {
    def: usize,
    name: Located<String>,
    matrix: Vec<(String, String)>,
    desc: Option<String>,
    deps: Vec<Located<String>>,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

#[derive(Default)]
struct Loader {
    files: Vec<SourceFile>,
    diagnostics: Vec<LoadError>,
    root: Manifest,
    defs: Vec<Def>,
    /// A file could not be read at all: any unresolved name may be one of its tasks.
    unreadable: bool,
    /// Names of tasks that exist but could not be loaded (from files with syntax errors,
    /// and templates that could not be expanded), as globs: an unresolved dep that one of
    /// these matches is not reported, since it is probably not the user's mistake.
    maybe_names: Vec<NameGlob>,
    /// Per def: its durations and retries, checked once (they take no placeholders).
    timing: Vec<Timing>,
}

#[derive(Clone)]
struct Timing {
    probe_timeout: Duration,
    timeout: Option<Duration>,
    retries: u32,
    retry_delay: Duration,
}

impl Loader {
    fn load(&mut self, root_name: &str, files: &dyn Files) {
        let Some((file, manifest, clean)) = self.read(root_name, files, FileKind::Root) else {
            return;
        };
        self.root = manifest;
        if clean {
            self.check_version(file);
        }
        let tasks = std::mem::take(&mut self.root.tasks);
        self.defs
            .extend(tasks.into_iter().map(|def| Def { file, def }));
        self.load_includes(root_name, files);
    }

    /// Reads, parses and decodes one file. `None` when it could not be read. A file with
    /// syntax errors (reported) comes back with `clean == false` and a manifest decoded from
    /// what the parser recovered, without its decoding problems: only its `include` is used,
    /// so the included files are still checked in the same pass.
    fn read(
        &mut self,
        name: &str,
        files: &dyn Files,
        kind: FileKind,
    ) -> Option<(usize, Manifest, bool)> {
        let text = match files.read(name) {
            Ok(text) => text,
            Err(e) => {
                self.diagnostics.push(LoadError::Io {
                    path: PathBuf::from(name),
                    message: e.to_string(),
                });
                self.unreadable = true;
                return None;
            }
        };
        let file = SourceFile::new(name, text);
        let src = file.src.clone();
        let index = self.files.len();
        self.files.push(file);
        let text = Arc::clone(src.inner());
        let (table, errors) = DeTable::parse_recoverable(&text);
        if errors.is_empty() {
            let manifest = manifest::decode(table.get_ref(), kind, &src, &mut self.diagnostics);
            return Some((index, manifest, true));
        }
        for e in errors {
            let at = e.span().unwrap_or(0..0);
            self.diagnostics.push(LoadError::Syntax {
                src: src.clone(),
                span: span(&at),
                message: e.message().trim().to_string(),
            });
        }
        let mut recovered = manifest::decode(table.get_ref(), kind, &src, &mut Vec::new());
        for task in std::mem::take(&mut recovered.tasks) {
            self.may_exist(&task.name.value);
        }
        Some((index, recovered, false))
    }

    fn check_version(&mut self, file: usize) {
        let src = self.files[file].src.clone();
        match &self.root.version {
            None => {
                // Only complain when the field is absent, not when it had the wrong type.
                let mentioned = self
                    .diagnostics
                    .iter()
                    .any(|d| matches!(d, LoadError::WrongType { field, .. } if field == "version"));
                if !mentioned {
                    self.diagnostics.push(LoadError::VersionMissing {
                        src,
                        span: span(&(0..0)),
                    });
                }
            }
            Some(v) if v.value != VERSION => self.diagnostics.push(LoadError::VersionUnsupported {
                src,
                span: span(&v.span),
                found: v.value.to_string(),
            }),
            Some(_) => {}
        }
    }

    fn load_includes(&mut self, root_name: &str, files: &dyn Files) {
        let root_src = self.files[0].src.clone();
        let patterns = std::mem::take(&mut self.root.include);
        let mut names: Vec<String> = Vec::new();
        for pattern in &patterns {
            if let Err(invalid) = pattern::validate(&pattern.value, false) {
                self.diagnostics.push(LoadError::InvalidGlob {
                    src: root_src.clone(),
                    span: span(&pattern.span),
                    field: "include".into(),
                    glob: pattern.value.clone(),
                    reason: invalid.reason,
                    help: invalid.help,
                });
                continue;
            }
            let matched = files.glob(&pattern.value);
            if matched.is_empty() {
                self.diagnostics.push(LoadError::IncludeNoMatch {
                    src: root_src.clone(),
                    span: span(&pattern.span),
                    pattern: pattern.value.clone(),
                });
            }
            names.extend(matched);
        }
        // One list sorted by path, whichever pattern matched a file (SPEC §2).
        names.sort();
        names.dedup();
        for name in names.into_iter().filter(|n| n != root_name) {
            if let Some((file, m, _)) = self.read(&name, files, FileKind::Include) {
                self.defs
                    .extend(m.tasks.into_iter().map(|def| Def { file, def }));
            }
        }
        self.root.include = patterns;
    }

    fn finish(mut self, root: PathBuf) -> Loaded {
        let settings = self.settings();
        let env = self.env_vars(0, &self.root.env.clone(), "env");
        self.timing = (0..self.defs.len()).map(|i| self.check_def(i)).collect();
        let instances = self.expand();
        let graph = self.resolve(instances);
        if let Some(graph) = &graph {
            self.check_default(graph);
        }
        self.sort_diagnostics();
        let file_count = self.files.len();
        let failed = self.diagnostics.iter().any(LoadError::is_error);
        let project = match graph {
            Some(graph) if !failed => Some(Project {
                root,
                include: self.root.include.iter().map(|p| p.value.clone()).collect(),
                files: self.files,
                settings,
                env,
                graph,
            }),
            _ => None,
        };
        Loaded {
            project,
            diagnostics: self.diagnostics,
            file_count,
        }
    }

    /// Orders diagnostics as a reader walks the files: by file (root first), then position.
    /// Diagnostics without a place in a file come first. The sort is stable.
    fn sort_diagnostics(&mut self) {
        let order: HashMap<&str, usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        let key = |d: &LoadError| -> (usize, usize) {
            let Some(label) = d.labels().and_then(|mut l| l.next()) else {
                return (0, 0);
            };
            let file = d
                .source_code()
                .and_then(|s| s.read_span(label.inner(), 0, 0).ok())
                .and_then(|c| c.name().and_then(|n| order.get(n).copied()))
                .map_or(0, |i| i + 1);
            (file, label.offset())
        };
        let mut keyed: Vec<((usize, usize), LoadError)> =
            self.diagnostics.drain(..).map(|d| (key(&d), d)).collect();
        keyed.sort_by_key(|(k, _)| *k);
        self.diagnostics = keyed.into_iter().map(|(_, d)| d).collect();
    }

    fn src(&self, file: usize) -> Src {
        self.files[file].src.clone()
    }

    fn invalid(
        &mut self,
        file: usize,
        at: &Span,
        field: &str,
        reason: String,
        help: Option<String>,
    ) {
        self.diagnostics.push(LoadError::InvalidValue {
            src: self.src(file),
            span: span(at),
            field: field.to_string(),
            reason,
            help,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> Loaded {
        let memory = Memory(
            files
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
        );
        load_with(PathBuf::from("/project"), ROOT_FILE, &memory)
    }

    fn codes(loaded: &Loaded) -> Vec<String> {
        loaded
            .diagnostics
            .iter()
            .map(|d| d.code().map(|c| c.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn matrix_instances_carry_their_values_env_and_template_origin() {
        let loaded = load(&[(
            "tasks.toml",
            "version = 1\n\n[tasks.\"image:{service}\"]\nmatrix = { service = [\"a\", \"b\"] }\nenv = { PUSH = true }\nrun = 'build \"$service\"'\ntimeout = \"1m\"\n",
        )]);
        let project = loaded.project.expect("valid");
        let graph = &project.graph;
        let b = graph.task(graph.find("image:b").unwrap());
        assert_eq!(b.matrix, vec![("service".to_string(), "b".to_string())]);
        assert_eq!(b.env, vec![("PUSH".to_string(), "true".to_string())]);
        assert_eq!(b.run.as_deref(), Some("build \"$service\""));
        assert_eq!(b.timeout, Some(Duration::from_secs(60)));
        assert_eq!(b.probe_timeout, DEFAULT_PROBE_TIMEOUT);
        assert_eq!(project.files[b.origin.file].line_of(b.origin.span.start), 3);
        assert_eq!(project.settings.shell, DEFAULT_SHELL);
    }

    #[test]
    fn includes_are_read_once_in_path_order_and_never_the_root_itself() {
        let loaded = load(&[
            (
                "tasks.toml",
                "version = 1\ninclude = [\"*.toml\", \"b.toml\"]\n",
            ),
            ("b.toml", "[tasks.b]\nrun = \"x\"\n"),
            ("a.toml", "[tasks.a]\nrun = \"x\"\n"),
        ]);
        assert!(loaded.diagnostics.is_empty(), "{:?}", codes(&loaded));
        let project = loaded.project.unwrap();
        let names: Vec<&str> = project.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["tasks.toml", "a.toml", "b.toml"]);
        assert_eq!(project.graph.len(), 2);
    }

    #[test]
    fn unresolved_deps_are_not_blamed_while_a_file_is_unreadable() {
        let loaded = load(&[
            (
                "tasks.toml",
                "version = 1\ninclude = [\"l/*.toml\"]\n[tasks.up]\ndeps = [\"infra:40\"]\n",
            ),
            ("l/40.toml", "[tasks.\"infra:40\"]\nrun = \"x\n"),
        ]);
        assert_eq!(codes(&loaded), ["devgraph::toml_syntax"]);
        assert!(loaded.project.is_none());
    }

    #[test]
    fn targets_resolve_names_and_globs_once_each_in_order() {
        let loaded = load(&[(
            "tasks.toml",
            "version = 1\n[tasks.\"i:{n}\"]\nmatrix = { n = [1, 2] }\nrun = \"x\"\n[tasks.up]\ndeps = [\"i:*\"]\n",
        )]);
        let graph = loaded.project.unwrap().graph;
        let targets: Vec<String> = ["up", "i:*", "i:1"].iter().map(|s| s.to_string()).collect();
        let ids = resolve_targets(&graph, &targets).unwrap();
        let names: Vec<&str> = ids.iter().map(|&id| graph.task(id).name.as_str()).collect();
        assert_eq!(names, ["up", "i:1", "i:2"]);
        let missing = resolve_targets(&graph, &["i:3".to_string()]).unwrap_err();
        assert_eq!(missing[0].to_string(), "target `i:3` is not a task");
    }

    #[test]
    fn integers_are_exported_as_their_decimal_value() {
        let loaded = load(&[(
            "tasks.toml",
            "version = 1\n[env]\nPORT = 5_001\nMASK = 0x1F\nON = true\n[tasks.a]\nrun = \"x\"\n",
        )]);
        let env = loaded.project.unwrap().env;
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("PORT", "5001"), ("MASK", "31"), ("ON", "true")]);
    }

    #[test]
    fn a_wrongly_typed_version_is_one_error_not_two() {
        let loaded = load(&[("tasks.toml", "version = \"1\"\n")]);
        assert_eq!(codes(&loaded), ["devgraph::wrong_type"]);
    }
}
