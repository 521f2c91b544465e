//! Task names: what a valid name is, and finding tasks by name or glob (`image:*`).

use std::collections::HashMap;

use globset::{GlobBuilder, GlobMatcher};

/// Why `name` is not a valid task name, or `None` when it is.
/// Valid names match `[A-Za-z0-9][A-Za-z0-9_.:/-]*`.
pub fn invalid_reason(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first = match chars.next() {
        None => return Some("a task name cannot be empty".into()),
        Some(c) => c,
    };
    if !first.is_ascii_alphanumeric() {
        return Some(format!("starts with `{first}`"));
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.:/-".contains(*c)))
        .map(|c| match c {
            ' ' => "contains a space".to_string(),
            c => format!("contains `{c}`"),
        })
}

/// True when a dep or target is a glob over task names rather than one name.
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

/// A compiled name glob. `*` matches any characters, `:` and `/` included, so `infra:*`
/// and `image:*` select whole families of tasks.
pub struct NameGlob {
    matcher: GlobMatcher,
    /// Every match starts with this; lets the index scan a sorted range instead of all names.
    prefix: String,
}

impl NameGlob {
    /// Compiles a name glob; the error is globset's reason, for a label.
    pub fn new(text: &str) -> Result<Self, String> {
        let glob = GlobBuilder::new(text)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        let end = text.find(['*', '?', '[', '{', '\\']).unwrap_or(text.len());
        Ok(NameGlob {
            matcher: glob.compile_matcher(),
            prefix: text[..end].to_string(),
        })
    }
}

impl NameGlob {
    /// Whether a task name matches.
    pub fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

/// All task names, for exact lookup and glob matching.
#[derive(Debug, Default)]
pub struct NameIndex {
    by_name: HashMap<String, usize>,
    /// (name, id) sorted by name.
    sorted: Vec<(String, usize)>,
}

impl NameIndex {
    /// Builds the index from names in id order (ids are positions).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let sorted: Vec<(String, usize)> = {
            let mut v: Vec<(String, usize)> = names
                .into_iter()
                .enumerate()
                .map(|(id, n)| (n.to_string(), id))
                .collect();
            v.sort_unstable();
            v
        };
        let by_name = sorted.iter().map(|(n, id)| (n.clone(), *id)).collect();
        NameIndex { by_name, sorted }
    }

    /// The id of the task with exactly this name.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Ids of every task the glob matches, in id (definition) order.
    pub fn matching(&self, glob: &NameGlob) -> Vec<usize> {
        let start = self
            .sorted
            .partition_point(|(n, _)| n.as_str() < glob.prefix.as_str());
        let mut ids: Vec<usize> = self.sorted[start..]
            .iter()
            .take_while(|(n, _)| n.starts_with(&glob.prefix))
            .filter(|(n, _)| glob.matcher.is_match(n))
            .map(|(_, id)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Up to three known names close to `name`, for "did you mean".
    pub fn closest(&self, name: &str) -> Vec<&str> {
        crate::suggest::closest(name, self.sorted.iter().map(|(n, _)| n.as_str()), 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert_eq!(invalid_reason("infra:24"), None);
        assert_eq!(invalid_reason("image:www-ameide/x_1.2"), None);
        assert_eq!(invalid_reason("9lives"), None);
        assert_eq!(invalid_reason("").unwrap(), "a task name cannot be empty");
        assert_eq!(invalid_reason("-x").unwrap(), "starts with `-`");
        assert_eq!(invalid_reason("a b").unwrap(), "contains a space");
        assert_eq!(invalid_reason("a*").unwrap(), "contains `*`");
    }

    #[test]
    fn globs_match_across_colons_in_definition_order() {
        let index = NameIndex::new(["up", "image:b", "image:a", "images", "infra:10"]);
        let glob = NameGlob::new("image:*").unwrap();
        assert_eq!(index.matching(&glob), vec![1, 2]);
        assert_eq!(index.matching(&NameGlob::new("*").unwrap()).len(), 5);
        assert_eq!(index.matching(&NameGlob::new("i*s").unwrap()), vec![3]);
        assert!(
            index
                .matching(&NameGlob::new("nothing:*").unwrap())
                .is_empty()
        );
        assert!(NameGlob::new("image:[").is_err());
    }
}
