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

    /// Every matching file under `root`, as sorted root-relative paths.
    ///
    /// The rules (see "Input files and the stat cache" in docs/design.md):
    /// - `.gitignore` files at or below `root` are respected, in git repositories or not,
    ///   and so is `root/.git/info/exclude`; nothing above `root` applies (no parent
    ///   `.gitignore`, no global excludes). A file is ignored or not whichever way the glob
    ///   that names it is written (`ign/x.toml`, `ign/*.toml`, `**/x.toml`): the walk always
    ///   starts at `root` and goes down only the directories that can hold a match, reading
    ///   the `.gitignore` of each directory on the way.
    /// - `.git/` and `.devgraph/` are never entered.
    /// - Symlinks are never followed and never returned, whether the glob is a pattern or a
    ///   literal path: only regular files reached through real directories count.
    /// - Unreadable directories are skipped.
    pub fn files(&self, root: &Path) -> Vec<PathBuf> {
        if self.bases.is_empty() {
            return Vec::new();
        }
        let bases = self.bases.clone();
        let prune_root = root.to_path_buf();
        let walker = ignore::WalkBuilder::new(root)
            .hidden(false)
            .parents(false)
            .git_ignore(true)
            .git_exclude(true)
            .git_global(false)
            .require_git(false)
            .ignore(false)
            .follow_links(false)
            .filter_entry(move |e| {
                if matches!(e.file_name().to_str(), Some(".git" | ".devgraph")) {
                    return false;
                }
                let Ok(rel) = e.path().strip_prefix(&prune_root) else {
                    return false;
                };
                let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                // A directory is entered when it leads to a base or lies inside one; any
                // other entry must lie inside a base (or be one, for a literal path).
                bases
                    .iter()
                    .any(|b| rel.starts_with(b) || (is_dir && b.starts_with(rel)))
            })
            .build();
        let mut found = Vec::new();
        for entry in walker.flatten() {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            if let Ok(rel) = entry.path().strip_prefix(root)
                && self.matches(rel)
            {
                found.push(rel.to_path_buf());
            }
        }
        found.sort();
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

    fn write(root: &Path, files: &[&str]) {
        for file in files {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
    }

    fn found(root: &Path, globs: &[&str]) -> Vec<String> {
        FileSet::new(globs.iter().copied())
            .files(root)
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    #[test]
    fn an_ignored_base_directory_is_ignored_however_the_glob_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, &["ign/x.toml", "ign/sub/y.toml", "ok/x.toml"]);
        std::fs::write(root.join(".gitignore"), "ign/\n").unwrap();
        let none: Vec<String> = Vec::new();
        assert_eq!(found(root, &["ign/*.toml"]), none);
        assert_eq!(found(root, &["ign/**"]), none);
        assert_eq!(found(root, &["ign/sub/*.toml"]), none);
        assert_eq!(found(root, &["**/x.toml"]), vec!["ok/x.toml"]);
    }

    #[test]
    fn a_literal_path_is_checked_against_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, &["ign/x.toml", "a/b.log", "a/keep.log", "a/c.txt"]);
        std::fs::write(root.join(".gitignore"), "ign/\n*.log\n").unwrap();
        std::fs::write(root.join("a/.gitignore"), "!keep.log\n").unwrap();
        let none: Vec<String> = Vec::new();
        assert_eq!(found(root, &["ign/x.toml"]), none);
        assert_eq!(found(root, &["a/b.log"]), none);
        assert_eq!(found(root, &["a/c.txt"]), vec!["a/c.txt"]);
        // A deeper `.gitignore` re-includes, and agrees across the ways of writing it.
        assert_eq!(found(root, &["a/keep.log"]), vec!["a/keep.log"]);
        assert_eq!(found(root, &["a/*.log"]), vec!["a/keep.log"]);
        assert_eq!(found(root, &["**/*.log"]), vec!["a/keep.log"]);
    }

    #[test]
    fn gitignore_files_above_the_root_do_not_apply() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path();
        std::fs::write(outer.join(".gitignore"), "*.toml\nproj/in/\n").unwrap();
        std::fs::create_dir(outer.join(".git")).unwrap();
        let root = outer.join("proj");
        write(&root, &["a.toml", "in/b.toml"]);
        assert_eq!(found(&root, &["**/*.toml"]), vec!["a.toml", "in/b.toml"]);
        assert_eq!(found(&root, &["in/b.toml"]), vec!["in/b.toml"]);
        assert_eq!(found(&root, &["in/*.toml"]), vec!["in/b.toml"]);
    }

    #[test]
    fn the_projects_git_info_exclude_applies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, &["a.txt", "b.txt", ".git/info/exclude"]);
        std::fs::write(root.join(".git/info/exclude"), "b.txt\n").unwrap();
        assert_eq!(found(root, &["*.txt"]), vec!["a.txt"]);
        assert_eq!(found(root, &["b.txt"]), Vec::<String>::new());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_never_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), &["secret.txt", "d/s.txt"]);
        let root = dir.path();
        write(root, &["real/a.txt", "b.txt"]);
        symlink(outside.path().join("secret.txt"), root.join("out.txt")).unwrap();
        symlink(outside.path().join("d"), root.join("outdir")).unwrap();
        symlink(root.join("b.txt"), root.join("in.txt")).unwrap();
        symlink(root.join("real"), root.join("alias")).unwrap();
        assert_eq!(found(root, &["**"]), vec!["b.txt", "real/a.txt"]);
        assert_eq!(found(root, &["*.txt"]), vec!["b.txt"]);
        let none: Vec<String> = Vec::new();
        for literal in ["out.txt", "in.txt", "outdir/s.txt", "alias/a.txt"] {
            assert_eq!(found(root, &[literal]), none, "{literal}");
        }
        assert_eq!(found(root, &["alias/*.txt", "outdir/**"]), none);
        // The root itself may be reached through a symlink.
        let link = outside.path().join("proj");
        symlink(root, &link).unwrap();
        assert_eq!(found(&link, &["real/*.txt"]), vec!["real/a.txt"]);
    }

    #[test]
    fn a_walk_only_enters_directories_that_can_match() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, &["a/b/c.txt", "a/x.txt", "z/c.txt", "a/bb/c.txt"]);
        assert_eq!(found(root, &["a/b/*.txt"]), vec!["a/b/c.txt"]);
        assert_eq!(
            found(root, &["a/b/c.txt", "z/*.txt"]),
            vec!["a/b/c.txt", "z/c.txt"]
        );
        assert_eq!(found(root, &["missing/*.txt"]), Vec::<String>::new());
        assert_eq!(found(root, &["a/b/c.txt/d"]), Vec::<String>::new());
    }
}
