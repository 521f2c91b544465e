//! The typed mirror of a tasks.toml file, every value with its span. Decoding walks the
//! spanned TOML tree by hand (rather than serde) so that one pass reports *every* unknown
//! field and wrong type of a file, not just the first. Meaning (names, globs, durations,
//! matrices, deps) is checked later, in `load`.

use toml::de::{DeTable, DeValue};

use crate::error::{LoadError, Span, Src, span};
use crate::suggest;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Located<T> {
    pub fn new(value: T, span: Span) -> Self {
        Located { value, span }
    }
}

/// Whether a file is the project's root tasks.toml or one pulled in by `include`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Root,
    Include,
}

/// One decoded file. Fields that were missing or of the wrong type are `None`/empty; their
/// problems were reported while decoding.
#[derive(Debug, Default)]
pub struct Manifest {
    pub version: Option<Located<i64>>,
    pub include: Vec<Located<String>>,
    pub settings: Settings,
    pub env: Vec<EnvVar>,
    pub tasks: Vec<TaskDef>,
}

/// `[settings]`.
#[derive(Debug, Default)]
pub struct Settings {
    pub default: Option<Located<String>>,
    pub jobs: Option<Located<i64>>,
    pub shell: Option<Located<Vec<Located<String>>>>,
    pub dotenv: Vec<Located<String>>,
}

/// One `NAME = "value"` of `[env]` or a task's `env`.
#[derive(Debug, Clone)]
pub struct EnvVar {
    pub name: Located<String>,
    pub value: Located<String>,
}

/// One `[tasks.NAME]` table, before matrix expansion.
#[derive(Debug, Default)]
pub struct TaskDef {
    pub name: Located<String>,
    pub desc: Option<Located<String>>,
    pub run: Option<Located<String>>,
    pub deps: Vec<Located<String>>,
    pub inputs: Vec<Located<String>>,
    pub outputs: Vec<Located<String>>,
    pub env: Vec<EnvVar>,
    pub hash_env: Vec<Located<String>>,
    pub requires_env: Vec<Located<String>>,
    pub requires_tools: Vec<Located<String>>,
    pub probe: Option<Located<String>>,
    pub probe_timeout: Option<Located<String>>,
    pub timeout: Option<Located<String>>,
    pub retries: Option<Located<i64>>,
    pub retry_delay: Option<Located<String>>,
    pub matrix: Option<Located<Vec<MatrixVar>>>,
}

/// One variable of a `matrix` table and its values, in file order.
#[derive(Debug, Clone)]
pub struct MatrixVar {
    pub name: Located<String>,
    pub values: Vec<Located<String>>,
    /// Some value had the wrong type (reported): the variable's values are not all known.
    pub broken: bool,
}

impl Default for Located<String> {
    fn default() -> Self {
        Located::new(String::new(), 0..0)
    }
}

const TOP_FIELDS: &[&str] = &["version", "include", "settings", "env", "tasks"];
const SETTINGS_FIELDS: &[&str] = &["default", "jobs", "shell", "dotenv"];
/// Every field of a task, in the order the reference documents them.
pub const TASK_FIELDS: &[&str] = &[
    "desc",
    "run",
    "deps",
    "inputs",
    "outputs",
    "env",
    "hash_env",
    "requires_env",
    "requires_tools",
    "probe",
    "probe_timeout",
    "timeout",
    "retries",
    "retry_delay",
    "matrix",
];

/// Names other task runners use for our fields, so "did you mean" can translate.
const TASK_FIELD_ALIASES: &[(&str, &str)] = &[
    ("cmd", "run"),
    ("cmds", "run"),
    ("command", "run"),
    ("script", "run"),
    ("depends_on", "deps"),
    ("dependencies", "deps"),
    ("needs", "deps"),
    ("description", "desc"),
    ("sources", "inputs"),
    ("generates", "outputs"),
    ("targets", "outputs"),
];

type Entry<'i> = (
    &'i toml::Spanned<toml::de::DeString<'i>>,
    &'i toml::Spanned<DeValue<'i>>,
);

/// Decodes a parsed file, pushing every structural problem into `errors`.
pub fn decode(
    table: &DeTable<'_>,
    kind: FileKind,
    src: &Src,
    errors: &mut Vec<LoadError>,
) -> Manifest {
    let mut d = Decoder { src, errors };
    let mut manifest = Manifest::default();
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        if kind == FileKind::Include && name != "tasks" && TOP_FIELDS.contains(&name) {
            d.errors.push(LoadError::NotAllowedInInclude {
                src: src.clone(),
                span: span(&key.span()),
                key: name.to_string(),
            });
            continue;
        }
        match name {
            "version" => manifest.version = d.integer("version", value),
            "include" => manifest.include = d.string_list("include", value),
            "settings" => manifest.settings = d.settings(value),
            "env" => manifest.env = d.env_table("env", value),
            "tasks" => manifest.tasks = d.tasks(value),
            _ => d.unknown(key, "the top level of the file", TOP_FIELDS, &[]),
        }
    }
    manifest
}

struct Decoder<'a> {
    src: &'a Src,
    errors: &'a mut Vec<LoadError>,
}

impl Decoder<'_> {
    fn unknown(
        &mut self,
        key: &toml::Spanned<toml::de::DeString<'_>>,
        place: &str,
        known: &[&str],
        aliases: &[(&str, &str)],
    ) {
        let field = key.get_ref().as_ref();
        let alias = aliases
            .iter()
            .find(|(other, _)| *other == field)
            .map(|(_, ours)| *ours);
        let options = match alias {
            Some(ours) => vec![ours],
            None => suggest::closest(field, known.iter().copied(), 3),
        };
        self.errors.push(LoadError::UnknownField {
            src: self.src.clone(),
            span: span(&key.span()),
            field: field.to_string(),
            place: place.to_string(),
            help: suggest::did_you_mean(&options),
        });
    }

    fn wrong_type(
        &mut self,
        field: &str,
        value: &toml::Spanned<DeValue<'_>>,
        expected: &'static str,
    ) {
        self.errors.push(LoadError::WrongType {
            src: self.src.clone(),
            span: span(&value.span()),
            field: field.to_string(),
            expected,
            found: match value.get_ref().as_integer() {
                Some(i) if parse_integer(i).is_none() => "an integer beyond the 64-bit range",
                _ => article(value.get_ref().type_str()),
            },
        });
    }

    fn string(
        &mut self,
        field: &str,
        value: &toml::Spanned<DeValue<'_>>,
    ) -> Option<Located<String>> {
        match value.get_ref() {
            DeValue::String(s) => Some(Located::new(s.to_string(), value.span())),
            _ => {
                self.wrong_type(field, value, "a string");
                None
            }
        }
    }

    fn integer(&mut self, field: &str, value: &toml::Spanned<DeValue<'_>>) -> Option<Located<i64>> {
        let parsed = value.get_ref().as_integer().and_then(parse_integer);
        match parsed {
            Some(n) => Some(Located::new(n, value.span())),
            None => {
                self.wrong_type(field, value, "an integer");
                None
            }
        }
    }

    fn string_list(
        &mut self,
        field: &str,
        value: &toml::Spanned<DeValue<'_>>,
    ) -> Vec<Located<String>> {
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(field, value, "an array of strings");
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match item.get_ref() {
                DeValue::String(s) => Some(Located::new(s.to_string(), item.span())),
                _ => {
                    self.wrong_type(&format!("{field}[]"), item, "a string");
                    None
                }
            })
            .collect()
    }

    /// A table of scalars; numbers and booleans are accepted and written as the user wrote them.
    fn env_table(&mut self, field: &str, value: &toml::Spanned<DeValue<'_>>) -> Vec<EnvVar> {
        let Some(table) = value.get_ref().as_table() else {
            self.wrong_type(field, value, "a table of strings");
            return Vec::new();
        };
        let mut vars = Vec::with_capacity(table.len());
        for (key, item) in table.iter() {
            let name = Located::new(key.get_ref().to_string(), key.span());
            match scalar_text(item.get_ref()) {
                Some(text) => vars.push(EnvVar {
                    name,
                    value: Located::new(text, item.span()),
                }),
                None => self.wrong_type(
                    &format!("{field}.{}", name.value),
                    item,
                    "a string, number or boolean",
                ),
            }
        }
        vars
    }

    fn settings(&mut self, value: &toml::Spanned<DeValue<'_>>) -> Settings {
        let mut settings = Settings::default();
        let Some(table) = value.get_ref().as_table() else {
            self.wrong_type("settings", value, "a table");
            return settings;
        };
        for (key, item) in table.iter() {
            match key.get_ref().as_ref() {
                "default" => settings.default = self.string("settings.default", item),
                "jobs" => settings.jobs = self.integer("settings.jobs", item),
                "shell" => {
                    if item.get_ref().is_array() {
                        let words = self.string_list("settings.shell", item);
                        settings.shell = Some(Located::new(words, item.span()));
                    } else {
                        self.wrong_type("settings.shell", item, "an array of strings");
                    }
                }
                "dotenv" => settings.dotenv = self.string_list("settings.dotenv", item),
                _ => self.unknown(key, "[settings]", SETTINGS_FIELDS, &[]),
            }
        }
        settings
    }

    fn tasks(&mut self, value: &toml::Spanned<DeValue<'_>>) -> Vec<TaskDef> {
        let Some(table) = value.get_ref().as_table() else {
            self.wrong_type("tasks", value, "a table of tasks");
            return Vec::new();
        };
        let mut tasks = Vec::with_capacity(table.len());
        for (key, item) in table.iter() {
            let name = Located::new(key.get_ref().to_string(), key.span());
            let Some(fields) = item.get_ref().as_table() else {
                self.wrong_type(&format!("tasks.{}", name.value), item, "a table");
                continue;
            };
            let mut task = TaskDef {
                name,
                ..TaskDef::default()
            };
            for entry in fields.iter() {
                self.task_field(&mut task, entry);
            }
            tasks.push(task);
        }
        tasks
    }

    fn task_field(&mut self, task: &mut TaskDef, (key, value): Entry<'_>) {
        let field = key.get_ref().as_ref();
        match field {
            "desc" => task.desc = self.string(field, value),
            "run" => task.run = self.string(field, value),
            "deps" => task.deps = self.string_list(field, value),
            "inputs" => task.inputs = self.string_list(field, value),
            "outputs" => task.outputs = self.string_list(field, value),
            "env" => task.env = self.env_table(field, value),
            "hash_env" => task.hash_env = self.string_list(field, value),
            "requires_env" => task.requires_env = self.string_list(field, value),
            "requires_tools" => task.requires_tools = self.string_list(field, value),
            "probe" => task.probe = self.string(field, value),
            "probe_timeout" => task.probe_timeout = self.string(field, value),
            "timeout" => task.timeout = self.string(field, value),
            "retries" => task.retries = self.integer(field, value),
            "retry_delay" => task.retry_delay = self.string(field, value),
            "matrix" => task.matrix = self.matrix(value),
            _ if looks_like_a_task(value.get_ref()) => {
                // `[tasks.infra.24]` is TOML for a table `24` inside task `infra`.
                let full = format!("{}.{field}", task.name.value);
                self.errors.push(LoadError::UnknownField {
                    src: self.src.clone(),
                    span: span(&key.span()),
                    field: field.to_string(),
                    place: format!("task `{}`", task.name.value),
                    help: Some(format!(
                        "to name a task `{full}`, quote it: [tasks.\"{full}\"]"
                    )),
                });
            }
            _ => {
                let place = format!("task `{}`", task.name.value);
                self.unknown(key, &place, TASK_FIELDS, TASK_FIELD_ALIASES)
            }
        }
    }

    fn matrix(&mut self, value: &toml::Spanned<DeValue<'_>>) -> Option<Located<Vec<MatrixVar>>> {
        let Some(table) = value.get_ref().as_table() else {
            self.wrong_type("matrix", value, "a table of arrays");
            return None;
        };
        let mut vars = Vec::with_capacity(table.len());
        for (key, item) in table.iter() {
            let name = Located::new(key.get_ref().to_string(), key.span());
            let field = format!("matrix.{}", name.value);
            let mut var = MatrixVar {
                name,
                values: Vec::new(),
                broken: false,
            };
            let Some(items) = item.get_ref().as_array() else {
                self.wrong_type(&field, item, "an array of strings or integers");
                var.broken = true;
                vars.push(var);
                continue;
            };
            for v in items.iter() {
                let text = match v.get_ref() {
                    DeValue::String(_) | DeValue::Integer(_) => scalar_text(v.get_ref()),
                    _ => None,
                };
                match text {
                    Some(text) => var.values.push(Located::new(text, v.span())),
                    None => {
                        self.wrong_type(&format!("{field}[]"), v, "a string or an integer");
                        var.broken = true;
                    }
                }
            }
            vars.push(var);
        }
        Some(Located::new(vars, value.span()))
    }
}

/// Whether a value is a table with task fields: `[tasks.infra.24]` meant as a task name.
fn looks_like_a_task(value: &DeValue<'_>) -> bool {
    value.as_table().is_some_and(|t| {
        t.iter()
            .any(|(k, _)| TASK_FIELDS.contains(&k.get_ref().as_ref()))
    })
}

/// A TOML integer's value (`0x1F`, `5_001`, `-3`), or `None` beyond the 64-bit range.
fn parse_integer(i: &toml::de::DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
}

/// The text of a scalar as an environment variable would hold it.
fn scalar_text(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        // `0x1F` and `5_001` are numbers: export their decimal value, as TOML means them.
        DeValue::Integer(i) => parse_integer(i).map(|n| n.to_string()),
        DeValue::Float(f) => Some(f.as_str().to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// "a string", "an integer": the found type as a phrase.
fn article(type_str: &'static str) -> &'static str {
    match type_str {
        "string" => "a string",
        "integer" => "an integer",
        "float" => "a float",
        "boolean" => "a boolean",
        "datetime" => "a datetime",
        "array" => "an array",
        "table" => "a table",
        _ => "a value",
    }
}
