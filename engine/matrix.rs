//! Matrix templates: `{var}` placeholders, their substitution, and the combinations of a
//! matrix. `{a,b}` (a comma) is glob alternation, not a placeholder; see "Matrix" in
//! docs/tasks-toml.md.

use crate::manifest::MatrixVar;

/// A `{var}` found in a text: the byte range of the braces and the variable name.
#[derive(Debug, PartialEq, Eq)]
pub struct Placeholder<'a> {
    pub range: std::ops::Range<usize>,
    pub var: &'a str,
}

/// Every `{identifier}` in `text`, left to right.
pub fn placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let start = i + 1;
            let len = bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            let end = start + len;
            if len > 0 && bytes.get(end) == Some(&b'}') && !bytes[start].is_ascii_digit() {
                found.push(Placeholder {
                    range: i..end + 1,
                    var: &text[start..end],
                });
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// `text` with each `{var}` that has a value replaced by it; others are left as written.
pub fn substitute(text: &str, values: &[(String, String)]) -> String {
    if !text.contains('{') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in placeholders(text) {
        if let Some((_, value)) = values.iter().find(|(name, _)| name == p.var) {
            out.push_str(&text[last..p.range.start]);
            out.push_str(value);
            last = p.range.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Every combination of the variables' values, the first variable varying slowest.
pub fn combinations(vars: &[MatrixVar]) -> Vec<Vec<(String, String)>> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for var in vars {
        let mut next = Vec::with_capacity(combos.len() * var.values.len());
        for combo in &combos {
            for value in &var.values {
                let mut c = combo.clone();
                c.push((var.name.value.clone(), value.value.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    combos
}

/// The span of `inner` (a byte range of the decoded `text`) in the source, when the
/// source spells the string without escapes; otherwise the whole string's span.
pub fn sub_span(
    source: &str,
    span: &std::ops::Range<usize>,
    text: &str,
    inner: &std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    let Some(raw) = source.get(span.clone()) else {
        return span.clone();
    };
    let offset = if raw == text {
        Some(0)
    } else {
        ["\"\"\"", "'''", "\"", "'"]
            .iter()
            .find(|q| {
                raw.len() >= 2 * q.len()
                    && raw.starts_with(**q)
                    && raw[q.len()..].starts_with(text)
                    && raw.len() == text.len() + 2 * q.len()
            })
            .map(|q| q.len())
    };
    match offset {
        Some(o) => span.start + o + inner.start..span.start + o + inner.end,
        None => span.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Located;

    #[test]
    fn finds_identifiers_but_not_glob_alternations() {
        let found = placeholders("services/{service}/{a,b}/{x_1}{}{9}");
        let vars: Vec<&str> = found.iter().map(|p| p.var).collect();
        assert_eq!(vars, ["service", "x_1"]);
        assert_eq!(found[0].range, 9..18);
        assert!(placeholders("jsonpath='{.metadata.uid}'").is_empty());
    }

    #[test]
    fn substitutes_known_values_only() {
        let values = vec![("service".to_string(), "chat".to_string())];
        assert_eq!(substitute("image:{service}", &values), "image:chat");
        assert_eq!(substitute("{service}/{other}", &values), "chat/{other}");
        assert_eq!(substitute("plain", &values), "plain");
    }

    #[test]
    fn combines_first_variable_slowest() {
        let var = |n: &str, vs: &[&str]| MatrixVar {
            name: Located::new(n.into(), 0..0),
            values: vs
                .iter()
                .map(|v| Located::new(v.to_string(), 0..0))
                .collect(),
            broken: false,
        };
        let combos = combinations(&[var("os", &["linux", "mac"]), var("arch", &["x86", "arm"])]);
        let flat: Vec<String> = combos
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect();
        assert_eq!(flat, ["linux-x86", "linux-arm", "mac-x86", "mac-arm"]);
    }

    #[test]
    fn maps_placeholders_into_quoted_source() {
        let source = r#"[tasks."image:{svc}"]"#;
        assert_eq!(sub_span(source, &(7..20), "image:{svc}", &(6..11)), 14..19);
        let escaped = r#"x = "a\tb{v}""#;
        assert_eq!(sub_span(escaped, &(4..13), "a\tb{v}", &(3..6)), 4..13);
    }
}
