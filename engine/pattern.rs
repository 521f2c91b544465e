//! File globs as written in `include`, `inputs` and `outputs`: checking them, and finding
//! the files they match under the project root. See "Names and globs" in docs/design.md.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::FileType;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

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
    /// The `P` of each exclude `P/**`: a directory it matches is not entered.
    exclude_dirs: GlobSet,
    /// Directories to walk: the literal leading part of each include glob.
    bases: Vec<PathBuf>,
}

impl FileSet {
    /// Builds a set from globs already checked with [`validate`]; invalid ones are skipped.
    pub fn new<'a>(globs: impl IntoIterator<Item = &'a str>) -> Self {
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let mut exclude_dirs = GlobSetBuilder::new();
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
            } else if let Some(dir) = body.strip_suffix("/**")
                && let Ok(glob) = compile(dir)
            {
                exclude_dirs.add(glob);
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
            exclude_dirs: exclude_dirs.build().unwrap_or_else(|_| GlobSet::empty()),
            bases: outer,
        }
    }

    /// True when a root-relative path is matched by an include and no exclude.
    pub fn matches(&self, relative: &Path) -> bool {
        self.include.is_match(relative) && !self.exclude.is_match(relative)
    }

    /// Every matching file under `root`, as sorted root-relative paths; [`FileSet::files_with`]
    /// with `.gitignore` files read afresh.
    pub fn files(&self, root: &Path) -> Vec<PathBuf> {
        self.files_with(root, &Ignores::default())
    }

    /// Every matching file under `root`, as sorted root-relative paths, taking `.gitignore`
    /// rules from (and adding them to) `ignores`, which must belong to this `root`.
    ///
    /// The rules (see "Input files and the stat cache" in docs/design.md):
    /// - `.gitignore` files at or below `root` are respected, in git repositories or not,
    ///   as git does (a deeper file overrides, `!` re-includes, nothing inside an ignored
    ///   directory comes back); so is `root/.git/info/exclude`, below every `.gitignore`.
    ///   Nothing above `root` applies: no parent `.gitignore`, no global excludes. Nested
    ///   repositories get no special treatment.
    /// - A file is ignored or not whichever way the glob that names it is written
    ///   (`ign/x.toml`, `ign/*.toml`, `**/x.toml`): the rules of every directory from `root`
    ///   down to the file apply, also to the directories on the way.
    /// - `.git/` and `.devgraph/` are never entered.
    /// - Symlinks are never followed and never returned, whether the glob is a pattern or a
    ///   literal path: only regular files reached through real directories count.
    /// - A directory that cannot be read is skipped.
    pub fn files_with(&self, root: &Path, ignores: &Ignores) -> Vec<PathBuf> {
        self.walk(root, ignores, &self.bases, None)
    }

    /// The files of [`FileSet::files_with`], walking only `bases` (root-relative), and
    /// every directory the walk listed, as absolute paths: what `watch` watches.
    pub fn files_and_dirs(
        &self,
        root: &Path,
        ignores: &Ignores,
        bases: &[PathBuf],
    ) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let dirs = std::cell::RefCell::new(Vec::new());
        let files = self.walk(root, ignores, bases, Some(&dirs));
        (files, dirs.into_inner())
    }

    /// The literal leading parts of the include globs, outermost only (`""` is the root).
    pub fn bases(&self) -> &[PathBuf] {
        &self.bases
    }

    fn walk(
        &self,
        root: &Path,
        ignores: &Ignores,
        bases: &[PathBuf],
        dirs: Option<&std::cell::RefCell<Vec<PathBuf>>>,
    ) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let walk = Walk {
            root,
            rel_start: relative_start(root),
            ignores,
            dirs,
        };
        for base in bases {
            self.walk_base(&walk, base, &mut found);
        }
        // As `Path`'s order (component by component), without splitting into components:
        // the paths are normalised, and `/` sorts before every other byte.
        found.sort_unstable_by(|a, b| path_key(a).cmp(path_key(b)));
        found
    }

    /// Goes down from `root` to `base`, checking each step against the ignore rules, then
    /// walks `base` (or takes it, when it is a file).
    fn walk_base(&self, walk: &Walk, base: &Path, found: &mut Vec<PathBuf>) {
        let (root, ignores) = (walk.root, walk.ignores);
        let mut rules: Vec<Arc<Gitignore>> = Vec::new();
        rules.extend(ignores.get(root, root.join(".git/info/exclude"), false));
        let mut abs = root.to_path_buf();
        let mut steps = base
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .peekable();
        if steps.peek().is_some() {
            rules.extend(ignores.get(root, root.join(GITIGNORE), true));
        }
        while let Some(name) = steps.next() {
            if is_never_entered(name) {
                return;
            }
            abs.push(name);
            let Ok(meta) = std::fs::symlink_metadata(&abs) else {
                return;
            };
            let kind = meta.file_type();
            let rel = walk.relative(&abs);
            if kind.is_symlink() || is_ignored(&rules, &abs, kind.is_dir()) {
                return;
            }
            if kind.is_dir() && self.exclude_dirs.is_match(rel) {
                return;
            }
            if steps.peek().is_some() {
                if !kind.is_dir() {
                    return;
                }
                rules.extend(ignores.get(root, abs.join(GITIGNORE), true));
            } else if kind.is_file() {
                if self.matches(rel) {
                    found.push(rel.to_path_buf());
                }
                return;
            } else if !kind.is_dir() {
                return;
            }
        }
        self.walk_dir(walk, &mut abs, &mut rules, found);
    }

    /// Walks the directory `abs`, whose own entry was already checked.
    fn walk_dir(
        &self,
        walk: &Walk,
        abs: &mut PathBuf,
        rules: &mut Vec<Arc<Gitignore>>,
        found: &mut Vec<PathBuf>,
    ) {
        let (root, ignores) = (walk.root, walk.ignores);
        #[cfg(test)]
        tests::note_listed(abs);
        let Ok(listing) = std::fs::read_dir(&*abs) else {
            return;
        };
        if let Some(dirs) = walk.dirs {
            dirs.borrow_mut().push(abs.clone());
        }
        let entries: Vec<(OsString, FileType)> = listing
            .flatten()
            .filter_map(|e| Some((e.file_name(), e.file_type().ok()?)))
            .collect();
        let own = entries
            .iter()
            .any(|(name, kind)| name == GITIGNORE && kind.is_file())
            .then(|| ignores.get(root, abs.join(GITIGNORE), false))
            .flatten();
        let pushed = own.is_some();
        rules.extend(own);
        for (name, kind) in entries {
            if kind.is_symlink() || is_never_entered(&name) {
                continue;
            }
            abs.push(&name);
            let is_dir = kind.is_dir();
            if !is_ignored(rules, abs, is_dir) {
                let rel = walk.relative(abs);
                if is_dir {
                    if !self.exclude_dirs.is_match(rel) {
                        self.walk_dir(walk, abs, rules, found);
                    }
                } else if kind.is_file() && self.matches(rel) {
                    found.push(rel.to_path_buf());
                }
            }
            abs.pop();
        }
        if pushed {
            rules.pop();
        }
    }
}

/// What stays the same during one [`FileSet::files_with`].
struct Walk<'a> {
    root: &'a Path,
    /// Where the root-relative part of `root.join(rel)` starts.
    rel_start: usize,
    ignores: &'a Ignores,
    /// Collects every directory listed, when asked to.
    dirs: Option<&'a std::cell::RefCell<Vec<PathBuf>>>,
}

impl Walk<'_> {
    /// The root-relative part of a path under the root, without `strip_prefix`'s component
    /// walk.
    fn relative<'p>(&self, abs: &'p Path) -> &'p Path {
        let bytes = abs.as_os_str().as_bytes();
        Path::new(OsStr::from_bytes(
            bytes.get(self.rel_start..).unwrap_or_default(),
        ))
    }
}

/// The length of `root` plus the separator `PathBuf::push` puts after it.
fn relative_start(root: &Path) -> usize {
    let bytes = root.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.ends_with(b"/") {
        bytes.len()
    } else {
        bytes.len() + 1
    }
}

/// A path's bytes with `/` as the smallest.
fn path_key(path: &Path) -> impl Iterator<Item = u8> + '_ {
    let bytes = path.as_os_str().as_bytes();
    bytes.iter().map(|&c| if c == b'/' { 0 } else { c })
}

const GITIGNORE: &str = ".gitignore";

fn is_never_entered(name: &OsStr) -> bool {
    name == ".git" || name == ".devgraph"
}

/// Git's rule: the deepest `.gitignore` with a matching line decides.
fn is_ignored(rules: &[Arc<Gitignore>], abs: &Path, is_dir: bool) -> bool {
    for rule in rules.iter().rev() {
        match rule.matched(abs, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}

/// The ignore files of one project root, each read once and kept: share one value across the
/// expansions of one check (a file changed after it was read is not seen again). Safe to
/// share between threads.
#[derive(Default)]
pub struct Ignores {
    /// By the ignore file's absolute path; `None` when it is missing or has no rules.
    read: Mutex<HashMap<PathBuf, Option<Arc<Gitignore>>>>,
    /// Apply no ignore file at all (for outputs, which usually live in ignored folders).
    off: bool,
}

impl Ignores {
    /// No ignore rules: every file the globs name counts.
    pub fn none() -> Self {
        Ignores {
            off: true,
            ..Ignores::default()
        }
    }

    /// Whether the root-relative `rel` is ignored, by its own rule or one of a directory on
    /// the way to it, by the same rules as [`FileSet::files_with`] (`.git/` and
    /// `.devgraph/` included).
    pub fn ignores(&self, root: &Path, rel: &Path, is_dir: bool) -> bool {
        let mut rules: Vec<Arc<Gitignore>> = Vec::new();
        rules.extend(self.get(root, root.join(".git/info/exclude"), false));
        rules.extend(self.get(root, root.join(GITIGNORE), true));
        let names: Vec<&OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect();
        let mut abs = root.to_path_buf();
        for (i, name) in names.iter().enumerate() {
            if is_never_entered(name) {
                return true;
            }
            abs.push(name);
            let last = i + 1 == names.len();
            if is_ignored(&rules, &abs, !last || is_dir) {
                return true;
            }
            if !last {
                rules.extend(self.get(root, abs.join(GITIGNORE), true));
            }
        }
        false
    }

    /// The rules of `file`, matched relative to its directory (or to `root` for
    /// `.git/info/exclude`). `probe`: check first that it is a regular file (symlinked
    /// `.gitignore` files are not read, as in git).
    fn get(&self, root: &Path, file: PathBuf, probe: bool) -> Option<Arc<Gitignore>> {
        if self.off {
            return None;
        }
        if let Some(known) = self.lock().get(&file) {
            return known.clone();
        }
        let regular =
            !probe || std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_file());
        let rules = regular.then(|| read_ignore_file(root, &file)).flatten();
        self.lock().insert(file, rules.clone());
        rules
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Option<Arc<Gitignore>>>> {
        self.read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn read_ignore_file(root: &Path, file: &Path) -> Option<Arc<Gitignore>> {
    let dir = if file.ends_with(".git/info/exclude") {
        root
    } else {
        file.parent()?
    };
    let mut builder = GitignoreBuilder::new(dir);
    // A missing file, or bad lines: the good lines still count.
    builder.add(file);
    let rules = builder.build().ok()?;
    (!rules.is_empty()).then(|| Arc::new(rules))
}

/// Which of many file sets match a path, through one combined glob set (a path is checked
/// against every set at once, not set after set).
pub struct Owners {
    include: GlobSet,
    /// The set each include glob of `include` came from.
    owner: Vec<usize>,
    sets: Vec<FileSet>,
}

impl Owners {
    /// One entry per set: its globs (excludes with `!`), already checked with [`validate`].
    pub fn new(sets: &[Vec<&str>]) -> Self {
        let mut include = GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (i, globs) in sets.iter().enumerate() {
            for glob in globs.iter().filter(|g| !g.starts_with('!')) {
                if let Ok(glob) = compile(glob) {
                    include.add(glob);
                    owner.push(i);
                }
            }
        }
        Owners {
            include: include.build().unwrap_or_else(|_| GlobSet::empty()),
            owner,
            sets: sets
                .iter()
                .map(|g| FileSet::new(g.iter().copied()))
                .collect(),
        }
    }

    /// The literal leading parts of set `i`'s include globs ([`FileSet::bases`]).
    pub fn bases(&self, i: usize) -> &[PathBuf] {
        self.sets[i].bases()
    }

    /// The sets (by index, ascending) that match the root-relative `rel`.
    pub fn matching(&self, rel: &Path) -> Vec<usize> {
        let mut found: Vec<usize> = self
            .include
            .matches(rel)
            .into_iter()
            .map(|g| self.owner[g])
            .collect();
        found.sort_unstable();
        found.dedup();
        found.retain(|&i| self.sets[i].matches(rel));
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

    /// Every directory a walk listed, across the tests of this module (each test has its own
    /// temporary directory).
    static LISTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(super) fn note_listed(dir: &Path) {
        LISTED.lock().unwrap().push(dir.to_path_buf());
    }

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
        // Down to the base by `lstat`, without listing the directories on the way.
        let listed: Vec<PathBuf> = LISTED.lock().unwrap().clone();
        assert!(listed.contains(&root.join("a/b")));
        for other in ["", "a", "a/bb", "z"] {
            assert!(!listed.contains(&root.join(other)), "{other:?}");
        }
        assert_eq!(
            found(root, &["a/b/c.txt", "z/*.txt"]),
            vec!["a/b/c.txt", "z/c.txt"]
        );
        assert_eq!(found(root, &["missing/*.txt"]), Vec::<String>::new());
        assert_eq!(found(root, &["a/b/c.txt/d"]), Vec::<String>::new());
    }

    #[test]
    fn files_come_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, &["a/b", "a.b", "a-b/c", "a/b.c", "ab", "a/a/z", "A"]);
        let files = FileSet::new(["**"]).files(root);
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(files, sorted);
        assert_eq!(files.len(), 7);
    }

    #[test]
    fn excluded_directories_are_not_entered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            &[
                "s/a.js",
                "s/node_modules/m.js",
                "s/x/node_modules/n/m.js",
                "s/gen/g.js",
            ],
        );
        let globs = ["s/**", "!s/**/node_modules/**", "!s/gen/**"];
        assert_eq!(found(root, &globs), vec!["s/a.js"]);
        // Other tests' walks may run meanwhile (in their own directories): copy it now.
        let listed: Vec<PathBuf> = LISTED.lock().unwrap().clone();
        assert!(listed.contains(&root.join("s/x")));
        for pruned in ["s/node_modules", "s/x/node_modules", "s/gen"] {
            assert!(!listed.contains(&root.join(pruned)), "{pruned}");
        }
        // The same answer as filtering every file.
        let all = FileSet::new(["**"]).files(root);
        let set = FileSet::new(globs);
        let filtered: Vec<&PathBuf> = all.iter().filter(|p| set.matches(p)).collect();
        assert_eq!(filtered, vec![&PathBuf::from("s/a.js")]);
    }

    #[test]
    fn shared_ignores_give_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, &["a/x.txt", "a/y.log", "b/z.log", "b/keep.log"]);
        std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        std::fs::write(root.join("b/.gitignore"), "!keep.log\n").unwrap();
        let ignores = Ignores::default();
        for globs in [
            &["**"][..],
            &["a/*"],
            &["b/keep.log"],
            &["b/z.log"],
            &["**/*.log"],
        ] {
            let set = FileSet::new(globs.iter().copied());
            assert_eq!(set.files_with(root, &ignores), set.files(root), "{globs:?}");
        }
        assert_eq!(
            found(root, &["**"]),
            vec![".gitignore", "a/x.txt", "b/.gitignore", "b/keep.log"]
        );
    }

    #[test]
    fn ignores_answers_for_single_paths_as_the_walk_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            &["a/x.txt", "a/y.log", "b/z.log", "b/keep.log", "gen/q.txt"],
        );
        std::fs::write(root.join(".gitignore"), "*.log\ngen/\n").unwrap();
        std::fs::write(root.join("b/.gitignore"), "!keep.log\n").unwrap();
        let ignores = Ignores::default();
        let walked = found(root, &["**"]);
        for path in ["a/x.txt", "a/y.log", "b/z.log", "b/keep.log", "gen/q.txt"] {
            let ignored = ignores.ignores(root, Path::new(path), false);
            assert_eq!(ignored, !walked.contains(&path.to_string()), "{path}");
        }
        assert!(ignores.ignores(root, Path::new("gen"), true));
        assert!(ignores.ignores(root, Path::new(".devgraph/state.db"), false));
        assert!(ignores.ignores(root, Path::new(".git/HEAD"), false));
    }

    #[test]
    fn files_and_dirs_lists_each_directory_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            &["src/a/x.rs", "src/b/c/y.rs", "gen/z.rs", "docs/r.md"],
        );
        std::fs::write(root.join(".gitignore"), "gen/\n").unwrap();
        let set = FileSet::new(["src/**", "**/*.rs"]);
        let (files, mut dirs) = set.files_and_dirs(root, &Ignores::default(), set.bases());
        assert_eq!(files, [PathBuf::from("src/a/x.rs"), "src/b/c/y.rs".into()]);
        dirs.sort();
        let rel: Vec<&Path> = dirs.iter().map(|d| d.strip_prefix(root).unwrap()).collect();
        let expected: Vec<&Path> = ["", "docs", "src", "src/a", "src/b", "src/b/c"]
            .iter()
            .map(Path::new)
            .collect();
        assert_eq!(rel, expected);
    }

    #[test]
    fn owners_find_every_set_that_matches_and_honour_excludes() {
        let owners = Owners::new(&[
            vec!["src/**"],
            vec!["src/**/*.rs", "!src/gen/**"],
            vec!["docs/*.md", "src/lib.rs"],
        ]);
        assert_eq!(owners.matching(Path::new("src/lib.rs")), [0, 1, 2]);
        assert_eq!(owners.matching(Path::new("src/gen/x.rs")), [0]);
        assert_eq!(owners.matching(Path::new("docs/a.md")), [2]);
        assert_eq!(
            owners.matching(Path::new("docs/sub/a.md")),
            Vec::<usize>::new()
        );
        assert_eq!(owners.matching(Path::new("other")), Vec::<usize>::new());
    }
}
