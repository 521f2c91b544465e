//! Checking the values of one definition that take no placeholders: settings, env names,
//! durations, retries, globs, and fields that do nothing on a group.

use std::time::Duration;

use super::{DEFAULT_PROBE_TIMEOUT, DEFAULT_SHELL, Loader, Settings, Timing};
use crate::duration;
use crate::error::{LoadError, Span, span};
use crate::manifest::{EnvVar, Located, TaskDef};
use crate::names::{self, NameGlob};
use crate::pattern;

impl Loader {
    pub(super) fn settings(&mut self) -> Settings {
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
    pub(super) fn env_vars(
        &mut self,
        file: usize,
        vars: &[EnvVar],
        field: &str,
    ) -> Vec<(String, String)> {
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

    pub(super) fn env_names(&mut self, file: usize, names: &[Located<String>], field: &str) {
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
    pub(super) fn check_def(&mut self, index: usize) -> Timing {
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

    pub(super) fn warn_group_fields(&mut self, file: usize, def: &TaskDef) {
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

    pub(super) fn duration(
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
