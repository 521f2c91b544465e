//! Diagnostics: the user's mistakes as data (a variant per kind, with spans into the file
//! that caused them), and their rendering through miette. Our own bugs are never here;
//! they are `unreachable!("BUG: …")` at the place they would happen.
//! See "Diagnostics" in docs/design.md.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};
use thiserror::Error;

/// The source text of one loaded file, shared by every diagnostic that points into it.
pub type Src = NamedSource<Arc<str>>;

/// A byte range in a source file.
pub type Span = std::ops::Range<usize>;

/// A problem found while reading, parsing, expanding or resolving task files.
#[derive(Debug, Error, Diagnostic)]
pub enum LoadError {
    #[error("no tasks.toml in {} or any parent directory", dir.display())]
    #[diagnostic(
        code(devgraph::no_tasks_file),
        help("create a tasks.toml at the project root, or name one with `-f FILE`")
    )]
    NotFound { dir: PathBuf },

    #[error("cannot read {}: {message}", path.display())]
    #[diagnostic(code(devgraph::io))]
    Io { path: PathBuf, message: String },

    #[error("invalid TOML: {message}")]
    #[diagnostic(code(devgraph::toml_syntax))]
    Syntax {
        #[source_code]
        src: Src,
        #[label("here")]
        span: SourceSpan,
        message: String,
    },

    #[error("unknown field `{field}` in {place}")]
    #[diagnostic(code(devgraph::unknown_field))]
    UnknownField {
        #[source_code]
        src: Src,
        #[label("unknown field")]
        span: SourceSpan,
        field: String,
        place: String,
        #[help]
        help: Option<String>,
    },

    #[error("`{field}` must be {expected}, found {found}")]
    #[diagnostic(code(devgraph::wrong_type))]
    WrongType {
        #[source_code]
        src: Src,
        #[label("expected {expected}")]
        span: SourceSpan,
        field: String,
        expected: &'static str,
        found: &'static str,
    },

    #[error("`{key}` is only allowed in the root tasks.toml")]
    #[diagnostic(
        code(devgraph::not_in_include),
        help("included files may define [tasks.*] only; move `{key}` to the root file")
    )]
    NotAllowedInInclude {
        #[source_code]
        src: Src,
        #[label("not allowed in an included file")]
        span: SourceSpan,
        key: String,
    },

    #[error("`version` is missing")]
    #[diagnostic(
        code(devgraph::version_missing),
        help("add `version = 1` as the first line of the root tasks.toml")
    )]
    VersionMissing {
        #[source_code]
        src: Src,
        #[label("expected `version = 1` in this file")]
        span: SourceSpan,
    },

    #[error("unsupported version {found}")]
    #[diagnostic(
        code(devgraph::version_unsupported),
        help("this devgraph reads `version = 1`; a newer file needs a newer devgraph")
    )]
    VersionUnsupported {
        #[source_code]
        src: Src,
        #[label("only 1 is supported")]
        span: SourceSpan,
        found: String,
    },

    #[error("invalid task name `{name}`")]
    #[diagnostic(
        code(devgraph::invalid_task_name),
        help(
            "task names start with a letter or digit and contain only letters, digits and `_ . : / -`"
        )
    )]
    InvalidTaskName {
        #[source_code]
        src: Src,
        #[label("{reason}")]
        span: SourceSpan,
        name: String,
        reason: String,
    },

    #[error("invalid duration `{value}` for `{field}`")]
    #[diagnostic(
        code(devgraph::invalid_duration),
        help(
            "durations are a number and a unit: `500ms`, `10s`, `10m`, `1h` (or combined: `1m30s`)"
        )
    )]
    InvalidDuration {
        #[source_code]
        src: Src,
        #[label("{reason}")]
        span: SourceSpan,
        field: String,
        value: String,
        reason: String,
    },

    #[error("invalid glob `{glob}` in `{field}`")]
    #[diagnostic(code(devgraph::invalid_glob))]
    InvalidGlob {
        #[source_code]
        src: Src,
        #[label("{reason}")]
        span: SourceSpan,
        field: String,
        glob: String,
        reason: String,
        #[help]
        help: Option<String>,
    },

    #[error("invalid value for `{field}`")]
    #[diagnostic(code(devgraph::invalid_value))]
    InvalidValue {
        #[source_code]
        src: Src,
        #[label("{reason}")]
        span: SourceSpan,
        field: String,
        reason: String,
        #[help]
        help: Option<String>,
    },

    #[error("task `{task}` depends on `{dep}`, which is not a task")]
    #[diagnostic(code(devgraph::unknown_dep))]
    UnknownDep {
        #[source_code]
        src: Src,
        #[label("no task named `{dep}`")]
        span: SourceSpan,
        task: String,
        dep: String,
        #[help]
        help: Option<String>,
    },

    #[error("dep glob `{glob}` of task `{task}` matches no task")]
    #[diagnostic(
        code(devgraph::dep_glob_no_match),
        help("run `devgraph list` to see the task names")
    )]
    DepGlobNoMatch {
        #[source_code]
        src: Src,
        #[label("matches nothing")]
        span: SourceSpan,
        task: String,
        glob: String,
    },

    #[error("dependency cycle: {path}")]
    #[diagnostic(
        code(devgraph::cycle),
        help(
            "a task cannot depend on itself, directly or through other tasks; remove one of these deps"
        )
    )]
    Cycle {
        #[source_code]
        src: Src,
        #[label("this dep closes the cycle")]
        span: SourceSpan,
        path: String,
    },

    #[error("task `{name}` is defined twice")]
    #[diagnostic(
        code(devgraph::duplicate_task),
        help("task names must be unique across all files")
    )]
    DuplicateTask {
        #[source_code]
        src: Src,
        #[label("defined again here")]
        span: SourceSpan,
        name: String,
        #[related]
        first: Vec<FirstDefinition>,
    },

    #[error("`{{{var}}}` has no matrix value in task `{task}`")]
    #[diagnostic(code(devgraph::unknown_placeholder))]
    UnknownPlaceholder {
        #[source_code]
        src: Src,
        #[label("no matrix variable `{var}`")]
        span: SourceSpan,
        task: String,
        var: String,
        #[help]
        help: String,
    },

    #[error("matrix of task `{task}` is empty")]
    #[diagnostic(
        code(devgraph::empty_matrix),
        help(
            "give every matrix variable at least one value, e.g. `matrix = {{ service = [\"api\"] }}`"
        )
    )]
    EmptyMatrix {
        #[source_code]
        src: Src,
        #[label("{what}")]
        span: SourceSpan,
        task: String,
        what: String,
    },

    #[error("matrix of task `{task}` expands to {size} tasks")]
    #[diagnostic(
        code(devgraph::matrix_too_large),
        help("one template may expand to at most {limit} tasks; split it, or use fewer values")
    )]
    MatrixTooLarge {
        #[source_code]
        src: Src,
        #[label("{size} combinations")]
        span: SourceSpan,
        task: String,
        size: String,
        limit: usize,
    },

    #[error("matrix variable `{var}` is not used in the name of task `{task}`")]
    #[diagnostic(
        code(devgraph::matrix_var_unused),
        help(
            "every matrix variable must appear in the task name as `{{{var}}}`, or the expanded tasks would share one name"
        )
    )]
    MatrixVarUnused {
        #[source_code]
        src: Src,
        #[label("not in the task name")]
        span: SourceSpan,
        task: String,
        var: String,
    },

    #[error("target `{target}` is not a task")]
    #[diagnostic(code(devgraph::unknown_target))]
    UnknownTarget {
        target: String,
        #[help]
        help: Option<String>,
    },

    #[error("target glob `{target}` matches no task")]
    #[diagnostic(
        code(devgraph::target_glob_no_match),
        help("run `devgraph list` to see the task names")
    )]
    TargetGlobNoMatch { target: String },

    #[error("invalid target glob `{target}`: {reason}")]
    #[diagnostic(code(devgraph::invalid_target_glob))]
    InvalidTargetGlob { target: String, reason: String },

    #[error("include `{pattern}` matches no file")]
    #[diagnostic(
        code(devgraph::include_no_match),
        severity(Warning),
        help("include globs are relative to the project root")
    )]
    IncludeNoMatch {
        #[source_code]
        src: Src,
        #[label("matches nothing")]
        span: SourceSpan,
        pattern: String,
    },

    #[error("input glob `{glob}` of task `{task}` matches no file")]
    #[diagnostic(
        code(devgraph::input_no_match),
        severity(Warning),
        help("globs are relative to the project root; files ignored by .gitignore do not count")
    )]
    InputNoMatch {
        #[source_code]
        src: Src,
        #[label("matches nothing now")]
        span: SourceSpan,
        task: String,
        glob: String,
    },

    #[error("`{field}` has no effect on group `{task}` (a task without `run`)")]
    #[diagnostic(
        code(devgraph::ignored_on_group),
        severity(Warning),
        help("add a `run` command, or remove `{field}`")
    )]
    IgnoredOnGroup {
        #[source_code]
        src: Src,
        #[label("ignored")]
        span: SourceSpan,
        task: String,
        field: String,
    },
}

/// The first definition of a duplicated task, shown beside the second (possibly in another file).
#[derive(Debug, Error, Diagnostic)]
#[error("`{name}` was first defined here")]
#[diagnostic(severity(Advice))]
pub struct FirstDefinition {
    #[source_code]
    pub src: Src,
    #[label("first defined here")]
    pub span: SourceSpan,
    pub name: String,
}

impl LoadError {
    /// True when the problem stops devgraph from using the files (warnings do not).
    pub fn is_error(&self) -> bool {
        !matches!(
            self.severity(),
            Some(miette::Severity::Warning | miette::Severity::Advice)
        )
    }
}

/// Turns a byte range into miette's span type.
pub fn span(range: &Span) -> SourceSpan {
    SourceSpan::from(range.start..range.end)
}

/// Renders diagnostics the same way everywhere, so tests can compare them byte for byte.
pub struct Renderer {
    handler: GraphicalReportHandler,
}

impl Renderer {
    /// A renderer; `color` picks the coloured unicode theme, otherwise plain unicode.
    pub fn new(color: bool) -> Self {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false)
            .with_context_lines(1);
        Renderer { handler }
    }

    /// One diagnostic as text, ending in a newline.
    pub fn render(&self, diagnostic: &dyn Diagnostic) -> String {
        let mut out = String::new();
        if self.handler.render_report(&mut out, diagnostic).is_err() {
            // A formatting failure of miette itself: fall back to the message alone.
            let _ = writeln!(out, "error: {diagnostic}");
        }
        out
    }
}

/// One diagnostic as JSON: message, code, severity, help, and each label with its file,
/// 1-based line and column, byte offset and length. Related diagnostics (a duplicate's first
/// definition) are nested under `related`. Built with serde_json, so any text is escaped.
pub fn to_json(diagnostic: &dyn Diagnostic) -> serde_json::Value {
    let severity = match diagnostic.severity() {
        Some(miette::Severity::Warning) => "warning",
        Some(miette::Severity::Advice) => "advice",
        _ => "error",
    };
    let labels: Vec<serde_json::Value> = diagnostic
        .labels()
        .into_iter()
        .flatten()
        .map(|label| {
            let place = diagnostic
                .source_code()
                .and_then(|source| source.read_span(label.inner(), 0, 0).ok());
            serde_json::json!({
                "label": label.label(),
                "file": place.as_ref().and_then(|p| p.name().map(str::to_string)),
                "line": place.as_ref().map(|p| p.line() + 1),
                "column": place.as_ref().map(|p| p.column() + 1),
                "offset": label.offset(),
                "length": label.len(),
            })
        })
        .collect();
    let related: Vec<serde_json::Value> = diagnostic
        .related()
        .into_iter()
        .flatten()
        .map(to_json)
        .collect();
    serde_json::json!({
        "message": diagnostic.to_string(),
        "code": diagnostic.code().map(|c| c.to_string()),
        "severity": severity,
        "help": diagnostic.help().map(|h| h.to_string()),
        "labels": labels,
        "related": related,
    })
}

/// [`to_json`] as one line of text.
pub fn render_json(diagnostic: &dyn Diagnostic) -> String {
    to_json(diagnostic).to_string()
}
