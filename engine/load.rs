//! Loading a project: find the root tasks.toml, read it and its includes, expand matrix
//! templates, check every value, resolve deps into a [`Graph`]. Every problem of every file
//! is collected, so `devgraph check` can show them all at once. See "Loading" in
//! docs/design.md.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use miette::{Diagnostic, NamedSource};
use toml::de::DeTable;

use crate::duration;
use crate::error::{FirstDefinition, LoadError, Span, Src, span};
use crate::graph::{Graph, Origin, Task, TaskId};
use crate::manifest::{self, EnvVar, FileKind, Located, Manifest, TaskDef};
use crate::matrix;
use crate::names::{self, NameGlob, NameIndex};
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
            self.check_default(graph, &settings);
        }
        self.sort_diagnostics();
        let file_count = self.files.len();
        let failed = self.diagnostics.iter().any(LoadError::is_error);
        let project = match graph {
            Some(graph) if !failed => Some(Project {
                root,
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

    /// Records that tasks named like `name` (a template's `{var}`s match anything) exist
    /// but could not be loaded.
    fn may_exist(&mut self, name: &str) {
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
    fn maybe_loaded_later(&self, name: &str) -> bool {
        if self.unreadable {
            return true;
        }
        if names::is_glob(name) {
            return !self.maybe_names.is_empty();
        }
        self.maybe_names.iter().any(|g| g.is_match(name))
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

    fn settings(&mut self) -> Settings {
        let s = std::mem::take(&mut self.root.settings);
        let jobs = s
            .jobs
            .as_ref()
            .and_then(|j| match usize::try_from(j.value) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    self.invalid(
                        0,
                        &j.span,
                        "settings.jobs",
                        "must be 1 or more".into(),
                        Some("leave `jobs` out to use one job per CPU".into()),
                    );
                    None
                }
            });
        let shell = match &s.shell {
            Some(words) if words.value.is_empty() => {
                self.invalid(
                    0,
                    &words.span,
                    "settings.shell",
                    "the shell command cannot be empty".into(),
                    Some("the default is [\"bash\", \"-eo\", \"pipefail\", \"-c\"]".into()),
                );
                Vec::new()
            }
            Some(words) => words.value.iter().map(|w| w.value.clone()).collect(),
            None => DEFAULT_SHELL.iter().map(|w| w.to_string()).collect(),
        };
        for file in &s.dotenv {
            if let Err(invalid) = pattern::validate(&file.value, false) {
                self.invalid(
                    0,
                    &file.span,
                    "settings.dotenv",
                    invalid.reason,
                    invalid.help,
                );
            }
        }
        let default = s.default.as_ref().map(|d| d.value.clone());
        self.root.settings = s;
        Settings {
            default,
            jobs,
            shell,
            dotenv: self
                .root
                .settings
                .dotenv
                .iter()
                .map(|f| f.value.clone())
                .collect(),
        }
    }

    /// Checks env var names; returns the (name, value) pairs.
    fn env_vars(&mut self, file: usize, vars: &[EnvVar], field: &str) -> Vec<(String, String)> {
        for var in vars {
            if !is_env_name(&var.name.value) {
                self.invalid(
                    file,
                    &var.name.span,
                    field,
                    format!(
                        "`{}` is not a valid environment variable name",
                        var.name.value
                    ),
                    Some(ENV_NAME_HELP.into()),
                );
            }
        }
        vars.iter()
            .map(|v| (v.name.value.clone(), v.value.value.clone()))
            .collect()
    }

    fn env_names(&mut self, file: usize, names: &[Located<String>], field: &str) {
        for name in names {
            if !is_env_name(&name.value) {
                self.invalid(
                    file,
                    &name.span,
                    field,
                    format!("`{}` is not a valid environment variable name", name.value),
                    Some(ENV_NAME_HELP.into()),
                );
            }
        }
    }

    /// Checks what a def holds that takes no placeholders: durations, retries, env names,
    /// globs, fields that do nothing on a group.
    fn check_def(&mut self, index: usize) -> Timing {
        let file = self.defs[index].file;
        let def = std::mem::take(&mut self.defs[index].def);
        let mut timing = Timing {
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            timeout: None,
            retries: 0,
            retry_delay: Duration::ZERO,
        };
        if let Some(d) = self.duration(file, "probe_timeout", &def.probe_timeout) {
            timing.probe_timeout = d;
        }
        timing.timeout = self.duration(file, "timeout", &def.timeout);
        if let Some(d) = self.duration(file, "retry_delay", &def.retry_delay) {
            timing.retry_delay = d;
        }
        if let Some(r) = &def.retries {
            match u32::try_from(r.value) {
                Ok(n) => timing.retries = n,
                Err(_) if r.value < 0 => {
                    self.invalid(file, &r.span, "retries", "must be 0 or more".into(), None)
                }
                Err(_) => self.invalid(
                    file,
                    &r.span,
                    "retries",
                    format!("must be at most {}", u32::MAX),
                    None,
                ),
            }
        }
        self.env_vars(file, &def.env, "env");
        self.env_names(file, &def.hash_env, "hash_env");
        self.env_names(file, &def.requires_env, "requires_env");
        if let Some(m) = &def.matrix {
            for var in &m.value {
                if !is_env_name(&var.name.value) {
                    self.invalid(file, &var.name.span, "matrix", format!("`{}` is not a valid environment variable name", var.name.value), Some("matrix values are exported to commands as environment variables of the same name".into()));
                }
            }
        }
        for (field, globs) in [("inputs", &def.inputs), ("outputs", &def.outputs)] {
            for glob in globs {
                if let Err(invalid) = pattern::validate(&glob.value, true) {
                    self.diagnostics.push(LoadError::InvalidGlob {
                        src: self.src(file),
                        span: span(&glob.span),
                        field: field.into(),
                        glob: glob.value.clone(),
                        reason: invalid.reason,
                        help: invalid.help,
                    });
                }
            }
        }
        for dep in def.deps.iter().filter(|d| names::is_glob(&d.value)) {
            if let Err(reason) = NameGlob::new(&dep.value) {
                self.diagnostics.push(LoadError::InvalidGlob {
                    src: self.src(file),
                    span: span(&dep.span),
                    field: "deps".into(),
                    glob: dep.value.clone(),
                    reason,
                    help: None,
                });
            }
        }
        if def.run.is_none() {
            self.warn_group_fields(file, &def);
        }
        self.defs[index].def = def;
        timing
    }

    fn warn_group_fields(&mut self, file: usize, def: &TaskDef) {
        let present: [(&str, Option<&Span>); 11] = [
            ("inputs", def.inputs.first().map(|g| &g.span)),
            ("outputs", def.outputs.first().map(|g| &g.span)),
            ("probe", def.probe.as_ref().map(|p| &p.span)),
            ("env", def.env.first().map(|v| &v.name.span)),
            ("hash_env", def.hash_env.first().map(|v| &v.span)),
            ("timeout", def.timeout.as_ref().map(|v| &v.span)),
            ("retries", def.retries.as_ref().map(|v| &v.span)),
            ("retry_delay", def.retry_delay.as_ref().map(|v| &v.span)),
            ("probe_timeout", def.probe_timeout.as_ref().map(|v| &v.span)),
            ("requires_env", def.requires_env.first().map(|v| &v.span)),
            (
                "requires_tools",
                def.requires_tools.first().map(|v| &v.span),
            ),
        ];
        for (field, at) in present {
            if let Some(at) = at {
                self.diagnostics.push(LoadError::IgnoredOnGroup {
                    src: self.src(file),
                    span: span(at),
                    task: def.name.value.clone(),
                    field: field.into(),
                });
            }
        }
    }

    fn duration(
        &mut self,
        file: usize,
        field: &str,
        value: &Option<Located<String>>,
    ) -> Option<Duration> {
        let value = value.as_ref()?;
        match duration::parse(&value.value) {
            Ok(d) => Some(d),
            Err(reason) => {
                self.diagnostics.push(LoadError::InvalidDuration {
                    src: self.src(file),
                    span: span(&value.span),
                    field: field.into(),
                    value: value.value.clone(),
                    reason,
                });
                None
            }
        }
    }

    /// Expands every def into its instances, reporting bad templates.
    fn expand(&mut self) -> Vec<Instance> {
        let mut instances = Vec::with_capacity(self.defs.len());
        for index in 0..self.defs.len() {
            let Some(combos) = self.check_template(index) else {
                let name = self.defs[index].def.name.value.clone();
                self.may_exist(&name);
                continue;
            };
            let def = &self.defs[index].def;
            let subst_all =
                |list: &[Located<String>], values: &[(String, String)]| -> Vec<String> {
                    list.iter()
                        .map(|l| matrix::substitute(&l.value, values))
                        .collect()
                };
            for values in combos {
                instances.push(Instance {
                    def: index,
                    name: Located::new(
                        matrix::substitute(&def.name.value, &values),
                        def.name.span.clone(),
                    ),
                    desc: def
                        .desc
                        .as_ref()
                        .map(|d| matrix::substitute(&d.value, &values)),
                    deps: def
                        .deps
                        .iter()
                        .map(|d| {
                            Located::new(matrix::substitute(&d.value, &values), d.span.clone())
                        })
                        .collect(),
                    inputs: subst_all(&def.inputs, &values),
                    outputs: subst_all(&def.outputs, &values),
                    matrix: values,
                });
            }
        }
        instances
    }

    /// Checks a def's matrix and placeholders; returns the value combinations to expand, or
    /// `None` when the task names cannot be known (a bad matrix, or an unknown placeholder in
    /// the name). An unknown placeholder elsewhere is reported and left as written, so the
    /// rest of the task is still checked.
    fn check_template(&mut self, index: usize) -> Option<Vec<Vec<(String, String)>>> {
        let file = self.defs[index].file;
        let src = self.src(file);
        let def = &self.defs[index].def;
        let task = def.name.value.clone();
        let vars: Vec<&str> = def
            .matrix
            .as_ref()
            .map(|m| m.value.iter().map(|v| v.name.value.as_str()).collect())
            .unwrap_or_default();
        let mut problems = Vec::new();
        if let Some(m) = &def.matrix {
            if m.value.is_empty() {
                problems.push(LoadError::EmptyMatrix {
                    src: src.clone(),
                    span: span(&m.span),
                    task: task.clone(),
                    what: "no variables".into(),
                });
            }
            let in_name: Vec<&str> = matrix::placeholders(&def.name.value)
                .iter()
                .map(|p| p.var)
                .collect();
            for var in &m.value {
                for (i, value) in var.values.iter().enumerate() {
                    if var.values[..i].iter().any(|v| v.value == value.value) {
                        problems.push(LoadError::InvalidValue {
                            src: src.clone(),
                            span: span(&value.span),
                            field: format!("matrix.{}", var.name.value),
                            reason: format!("`{}` is listed twice", value.value),
                            help: Some("each matrix value makes one task; list it once".into()),
                        });
                    }
                }
                if var.values.is_empty() && !var.broken {
                    problems.push(LoadError::EmptyMatrix {
                        src: src.clone(),
                        span: span(&var.name.span),
                        task: task.clone(),
                        what: format!("`{}` has no values", var.name.value),
                    });
                }
                if !in_name.contains(&var.name.value.as_str()) {
                    problems.push(LoadError::MatrixVarUnused {
                        src: src.clone(),
                        span: span(&var.name.span),
                        task: task.clone(),
                        var: var.name.value.clone(),
                    });
                }
            }
        }
        let templated = std::iter::once(&def.name)
            .chain(def.desc.as_ref())
            .chain(&def.deps)
            .chain(&def.inputs)
            .chain(&def.outputs);
        for text in templated {
            for p in matrix::placeholders(&text.value) {
                if vars.contains(&p.var) {
                    continue;
                }
                let help = if vars.is_empty() {
                    format!(
                        "`{{{}}}` is a matrix placeholder; add `matrix = {{ {} = [...] }}` to the task",
                        p.var, p.var
                    )
                } else {
                    let close = crate::suggest::closest(p.var, vars.iter().copied(), 1);
                    match close.first() {
                        Some(v) => format!("did you mean `{{{v}}}`?"),
                        None => format!(
                            "this task's matrix defines {}",
                            vars.iter()
                                .map(|v| format!("`{{{v}}}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                };
                let at = matrix::sub_span(src.inner(), &text.span, &text.value, &p.range);
                problems.push(LoadError::UnknownPlaceholder {
                    src: src.clone(),
                    span: span(&at),
                    task: task.clone(),
                    var: p.var.to_string(),
                    help,
                });
            }
        }
        let broken = def
            .matrix
            .as_ref()
            .is_some_and(|m| m.value.iter().any(|v| v.broken));
        let names_known = !broken
            && !problems.iter().any(|p| match p {
                LoadError::UnknownPlaceholder { span: at, .. } => {
                    let at = at.offset()..at.offset() + at.len();
                    at.start >= def.name.span.start && at.end <= def.name.span.end
                }
                _ => true,
            });
        // Count before expanding: 40 two-valued variables would be 2^40 tasks.
        let size = def.matrix.as_ref().map_or(Some(1), |m| {
            m.value
                .iter()
                .try_fold(1usize, |n, v| n.checked_mul(v.values.len()))
        });
        let fits = size.is_some_and(|n| n <= MAX_MATRIX_TASKS);
        if !fits && let Some(m) = &def.matrix {
            problems.push(LoadError::MatrixTooLarge {
                src: src.clone(),
                span: span(&m.span),
                task: task.clone(),
                size: size.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                limit: MAX_MATRIX_TASKS,
            });
        }
        let combos = match &def.matrix {
            Some(m) if names_known && fits => matrix::combinations(&m.value),
            Some(_) => Vec::new(),
            None => vec![Vec::new()],
        };
        self.diagnostics.extend(problems);
        (names_known && fits).then_some(combos)
    }

    /// Checks names, finds duplicates, resolves deps and looks for cycles. Returns the
    /// graph when names and deps could be resolved.
    fn resolve(&mut self, instances: Vec<Instance>) -> Option<Graph> {
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
    fn unresolved(
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

    fn task(&self, inst: Instance) -> Task {
        let Def { file, def } = &self.defs[inst.def];
        let timing = self.timing[inst.def].clone();
        let texts = |list: &[Located<String>]| list.iter().map(|l| l.value.clone()).collect();
        Task {
            name: inst.name.value,
            desc: inst.desc,
            run: def.run.as_ref().map(|r| r.value.clone()),
            inputs: inst.inputs,
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

    fn check_default(&mut self, graph: &Graph, settings: &Settings) {
        let Some(default) = &self.root.settings.default else {
            return;
        };
        if settings.default.is_none() || self.maybe_loaded_later(&default.value) {
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
}

const ENV_NAME_HELP: &str =
    "environment variable names are letters, digits and `_`, not starting with a digit";

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
