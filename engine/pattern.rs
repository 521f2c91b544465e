//! File globs as written in `include`, `inputs` and `outputs`: checking them, and finding
//! the files they match under the project root. See "Names and globs" in docs/design.md.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Why a file glob cannot be used, in a few words, and a hint.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: String,
    pub help: Option<String>,
}

fn compile(text: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(text)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// Checks one glob (a leading `!` marks an exclude when `allow_exclude`).
pub fn validate(text: &str, allow_exclude: bool) -> Result<(), Invalid> {
    let body = match text.strip_prefix('!') {
        Some(rest) if allow_exclude => rest,
        Some(_) => {
            return Err(Invalid {
                reason: "excludes (`!`) are not allowed here".into(),
                help: None,
            });
        }
        None => text,
    };
    if body.is_empty() {
        return Err(Invalid {
            reason: "empty glob".into(),
            help: None,
        });
    }
    let path = Path::new(body);
    if path.is_absolute() {
        return Err(Invalid {
            reason: "absolute path".into(),
            help: Some("paths are relative to the project root (the folder of tasks.toml)".into()),
        });
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Invalid {
            reason: "leaves the project root".into(),
            help: Some("every path must be inside the project; `..` is not allowed".into()),
        });
    }
    compile(body).map(|_| ()).map_err(|e| Invalid {
        reason: e.kind().to_string(),
        help: None,
    })
}

/// A set of include and exclude globs, relative to a root.
pub struct FileSet {
    include: GlobSet,
    exclude: GlobSet,
    /// Directories to walk: the literal leading part of each include glob.
    bases: Vec<PathBuf>,
}

impl FileSet {
    /// Builds a set from globs already checked with [`validate`]; invalid ones are skipped.
    pub fn new<'a>(globs: impl IntoIterator<Item = &'a str>) -> Self {
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let mut bases: Vec<PathBuf> = Vec::new();
        for text in globs {
            let (builder, body) = match text.strip_prefix('!') {
                Some(rest) => (&mut exclude, rest),
                None => (&mut include, text),
            };
            let Ok(glob) = compile(body) else { continue };
            builder.add(glob);
            if !text.starts_with('!') {
                bases.push(literal_base(body));
            }
        }
        bases.sort();
        // Walking `a` covers `a/b`: keep only the outermost bases.
        let mut outer: Vec<PathBuf> = Vec::new();
        for base in bases {
            if !outer.iter().any(|o| base.starts_with(o)) {
                outer.push(base);
            }
        }
        FileSet {
            include: include.build().unwrap_or_else(|_| GlobSet::empty()),
            exclude: exclude.build().unwrap_or_else(|_| GlobSet::empty()),
            bases: outer,
        }
    }

    /// True when a root-relative path is matched by an include and no exclude.
    pub fn matches(&self, relative: &Path) -> bool {
        self.include.is_match(relative) && !self.exclude.is_match(relative)
    }

    /// Every matching file under `root`, as sorted root-relative paths. `.gitignore` files
    /// are respected (in git repositories or not); `.git/` and `.devgraph/` are never entered.
    pub fn files(&self, root: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for base in &self.bases {
            let start = root.join(base);
            if start.is_file() {
                if let Ok(rel) = start.strip_prefix(root) {
                    if self.matches(rel) {
                        found.push(rel.to_path_buf());
                    }
                }
                continue;
            }
            if !start.is_dir() {
                continue;
            }
            let walker = ignore::WalkBuilder::new(&start)
                .hidden(false)
                .parents(true)
                .git_ignore(true)
                .git_exclude(true)
                .git_global(false)
                .require_git(false)
                .ignore(false)
                .filter_entry(|e| !matches!(e.file_name().to_str(), Some(".git" | ".devgraph")))
                .build();
            for entry in walker.flatten() {
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    continue;
                }
                if let Ok(rel) = entry.path().strip_prefix(root) {
                    if self.matches(rel) {
                        found.push(rel.to_path_buf());
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }
}

/// The leading components of a glob that contain no glob syntax: where a walk must start.
fn literal_base(glob: &str) -> PathBuf {
    let mut base = PathBuf::new();
    let parts: Vec<&str> = glob.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if last || part.contains(['*', '?', '[', '{', '\\']) {
            // The last literal part may itself be the file the glob names.
            if last && !part.contains(['*', '?', '[', '{', '\\']) {
                base.push(part);
            }
            break;
        }
        base.push(part);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_is_the_literal_prefix() {
        assert_eq!(literal_base("layers/*.toml"), PathBuf::from("layers"));
        assert_eq!(
            literal_base("services/api/**"),
            PathBuf::from("services/api")
        );
        assert_eq!(literal_base("a/b.txt"), PathBuf::from("a/b.txt"));
        assert_eq!(literal_base("**/x"), PathBuf::new());
        assert_eq!(literal_base("s/{a,b}/x"), PathBuf::from("s"));
    }

    #[test]
    fn validates_globs() {
        assert_eq!(validate("src/**/*.rs", true), Ok(()));
        assert_eq!(validate("!src/gen/**", true), Ok(()));
        assert_eq!(
            validate("!x", false).unwrap_err().reason,
            "excludes (`!`) are not allowed here"
        );
        assert_eq!(
            validate("/etc/passwd", true).unwrap_err().reason,
            "absolute path"
        );
        assert_eq!(
            validate("../x", true).unwrap_err().reason,
            "leaves the project root"
        );
        assert_eq!(validate("", true).unwrap_err().reason, "empty glob");
        assert!(validate("src/[a", true).is_err());
    }

    #[test]
    fn finds_files_with_excludes_and_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "s/a.txt",
            "s/b.log",
            "s/deep/c.txt",
            "s/skip/d.txt",
            "s/ignored.txt",
            ".git/x.txt",
            ".devgraph/y.txt",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
        let set = FileSet::new(["s/**/*.txt", "!s/skip/**"]);
        let files: Vec<String> = set
            .files(root)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(files, vec!["s/a.txt", "s/deep/c.txt"]);
        let everything = FileSet::new(["**"]);
        let all: Vec<String> = everything
            .files(root)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert!(
            !all.iter()
                .any(|p| p.starts_with(".git/") || p.starts_with(".devgraph/"))
        );
    }
}
