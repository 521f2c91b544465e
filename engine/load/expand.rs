//! Expanding matrix templates into task instances, and reporting templates that cannot be
//! expanded (see "Loading", step 5, in docs/design.md).

use super::{Instance, Loader, MAX_MATRIX_TASKS};
use crate::error::{LoadError, span};
use crate::manifest::Located;
use crate::matrix;

impl Loader {
    /// Expands every def into its instances, reporting bad templates.
    pub(super) fn expand(&mut self) -> Vec<Instance> {
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
    pub(super) fn check_template(&mut self, index: usize) -> Option<Vec<Vec<(String, String)>>> {
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
}
