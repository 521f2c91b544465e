//! Input and output files: expanding a task's globs into files, the stat cache rules, and
//! hashing file contents with blake3 in parallel. See "Input files and the stat cache" in
//! docs/design.md.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::pattern::{FileSet, Ignores};

/// A file modified less than this long before it was hashed is re-read on the next check
/// even when its stat has not changed (git's "racily clean" entries): a write in the same
/// timestamp tick as the hash, or one that restored the old mtime, leaves the stat as it was.
pub const RACY_MARGIN_NS: i64 = 2_000_000_000;

/// Files at least this large may be hashed from a memory map on several threads (blake3's
/// `Hasher::update_mmap_rayon`); smaller ones are read on one thread (64 KiB at a time), and
/// [`hash_files`] hashes many of them side by side instead. Measured on 2 cores: reading
/// wins below 2 MiB, the map above. In a batch, a file is split across threads only when it
/// is also too big a share of the batch to be balanced by hashing files side by side.
pub const MMAP_THRESHOLD: u64 = 2 << 20;

/// What `stat` says about a file; equal stats mean the content need not be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    /// Length in bytes.
    pub size: u64,
    /// Last content change, ns since the epoch.
    pub mtime_ns: i64,
    /// Last inode change (content, mode, owner, links, rename), ns since the epoch; unlike
    /// mtime it cannot be set back by tools such as `touch -d` or `tar`.
    pub ctime_ns: i64,
    /// Inode number: an editor's save-by-rename gives a new one.
    pub inode: u64,
}

/// A cached hash: the stat it was taken under and when (ns since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheEntry {
    /// The stat taken just before the content was read.
    pub stat: FileStat,
    /// blake3 of the content.
    pub hash: [u8; 32],
    /// A time no later than the stat, ns since the epoch (see [`RACY_MARGIN_NS`]).
    pub hashed_at_ns: i64,
}

/// One hashed file, root-relative path with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// As given to [`hash_files`].
    pub path: String,
    /// The cached entry, or a new one to store.
    pub entry: CacheEntry,
    /// True when the content was not read.
    pub from_cache: bool,
}

/// The files a list of globs (with `!` excludes) matches under `root`, sorted, root-relative,
/// `/`-separated. Only regular files count: symlinks are never followed or returned, and
/// `.gitignore` files at or below `root` are respected (see [`FileSet::files_with`]). A path
/// that is not valid UTF-8 is left out. Reads the `.gitignore` files on the way each time: to
/// expand many tasks' globs in one go, use an [`Expander`].
pub fn expand(root: &Path, globs: &[String]) -> Vec<String> {
    Expander::new(root).expand(globs)
}

/// Expands globs under one root, reading each `.gitignore` at most once: one value for the
/// tasks of one check, shared between threads. A `.gitignore` changed after it was read is
/// not seen; make a new `Expander` for a new check (and after tasks ran).
pub struct Expander {
    root: PathBuf,
    ignores: Ignores,
}

impl Expander {
    /// An expander for the project at `root`.
    pub fn new(root: &Path) -> Self {
        Expander {
            root: root.to_path_buf(),
            ignores: Ignores::default(),
        }
    }

    /// An expander for outputs: `.gitignore` does not apply (build results usually live in
    /// ignored folders, and a changed output must still be seen). `.git/` and `.devgraph/`
    /// are still never entered, and symlinks still never count.
    pub fn for_outputs(root: &Path) -> Self {
        Expander {
            root: root.to_path_buf(),
            ignores: Ignores::none(),
        }
    }

    /// As [`expand`].
    pub fn expand(&self, globs: &[String]) -> Vec<String> {
        FileSet::new(globs.iter().map(String::as_str))
            .files_with(&self.root, &self.ignores)
            .into_iter()
            .filter_map(|p| p.into_os_string().into_string().ok())
            .collect()
    }
}

/// Hashes `paths` (root-relative) in parallel with rayon, the results in the order of
/// `paths`.
///
/// A file whose current stat equals the cached stat, and whose mtime and ctime are older than
/// the cache entry's `hashed_at_ns` minus [`RACY_MARGIN_NS`], is not read again: that costs
/// one `lstat` and the `cache` call. Any other file is read, and comes back with
/// `from_cache: false` and a new entry (the stat taken before reading; `hashed_at_ns` taken
/// before any stat of this call), which the caller should store. A file that cannot be read
/// (vanished, permission, or not a regular file, symlinks included) comes back as
/// `Err((path, message))`.
pub fn hash_files(
    root: &Path,
    paths: &[String],
    cache: &(dyn Fn(&str) -> Option<CacheEntry> + Sync),
) -> Vec<Result<Hashed, (String, String)>> {
    let now = now_ns();
    let capacity = root.as_os_str().len() + 128;
    // First the stats and the cache: a file to read comes back as `from_cache: false` with
    // its stat and no hash yet.
    let stat_one = |buf: &mut PathBuf, rel: &String| {
        check(join(buf, root, rel), rel, now, cache).map_err(|message| (rel.clone(), message))
    };
    // A small batch is stat'ed on the calling thread: handing a few dozen `statx` calls to
    // the pool costs more in wake-ups than it saves (on a no-op check of 1,000 tasks, rayon's
    // idle spinning made 44,000 `sched_yield` calls). The scheduler already checks tasks in
    // parallel; big batches still go to the pool.
    let mut results: Vec<Result<Hashed, (String, String)>> = if paths.len() <= SEQUENTIAL_STATS {
        let mut buf = PathBuf::with_capacity(capacity);
        paths.iter().map(|rel| stat_one(&mut buf, rel)).collect()
    } else {
        paths
            .par_iter()
            .with_min_len(STATS_PER_JOB)
            .map_init(|| PathBuf::with_capacity(capacity), stat_one)
            .collect()
    };
    let to_read = |r: &Result<Hashed, _>| matches!(r, Ok(h) if !h.from_cache);
    let (count, bytes) = results
        .iter()
        .filter(|r| to_read(r))
        .filter_map(|r| r.as_ref().ok().map(|h| h.entry.stat.size))
        .fold((0u64, 0u64), |(n, sum), size| (n + 1, sum + size));
    if count == 0 {
        return results;
    }
    // A file bigger than a few threads' fair share is split across threads.
    let threads = rayon::current_num_threads() as u64;
    let split_from = (bytes / (2 * threads).max(1)).max(MMAP_THRESHOLD);
    results.par_iter_mut().filter(|r| to_read(r)).for_each_init(
        || PathBuf::with_capacity(capacity),
        |buf, result| {
            let Ok(hashed) = result else { return };
            let full = join(buf, root, &hashed.path);
            match hash_path(full, hashed.entry.stat.size >= split_from) {
                Ok(hash) => hashed.entry.hash = hash,
                Err(e) => *result = Err((std::mem::take(&mut hashed.path), e.to_string())),
            }
        },
    );
    results
}

/// Stats a rayon job takes at least: one `lstat` is a microsecond or two, so a no-op check of
/// a small task does not pay for many thread hand-offs.
const STATS_PER_JOB: usize = 32;

/// Up to this many files, the stat pass runs on the calling thread.
const SEQUENTIAL_STATS: usize = 256;

/// `root/rel` in a reused buffer.
fn join<'b>(buf: &'b mut PathBuf, root: &Path, rel: &str) -> &'b Path {
    let full = buf.as_mut_os_string();
    full.clear();
    full.push(root.as_os_str());
    full.push("/");
    full.push(rel);
    buf
}

/// A cached entry when the stat allows it, else the entry to fill in with the hash.
fn check(
    full: &Path,
    rel: &str,
    now: i64,
    cache: &(dyn Fn(&str) -> Option<CacheEntry> + Sync),
) -> Result<Hashed, String> {
    let meta = std::fs::symlink_metadata(full).map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err(if meta.file_type().is_symlink() {
            "is a symlink (symlinks are not followed)".to_string()
        } else {
            "is not a regular file".to_string()
        });
    }
    let stat = FileStat::from(&meta);
    if let Some(entry) = cache(rel)
        && entry.stat == stat
        && stat.mtime_ns.max(stat.ctime_ns) < entry.hashed_at_ns.saturating_sub(RACY_MARGIN_NS)
    {
        return Ok(Hashed {
            path: rel.to_string(),
            entry,
            from_cache: true,
        });
    }
    Ok(Hashed {
        path: rel.to_string(),
        entry: CacheEntry {
            stat,
            hash: [0; 32],
            hashed_at_ns: now,
        },
        from_cache: false,
    })
}

/// blake3 of one file's content. Files of at least [`MMAP_THRESHOLD`] bytes are hashed from a
/// memory map on several threads (`Hasher::update_mmap_rayon`), smaller ones by reading.
/// Follows a symlink (unlike [`hash_files`]); the caller decides what to pass.
pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let size = std::fs::metadata(path)?.len();
    hash_path(path, size >= MMAP_THRESHOLD)
}

/// Hashes a file from a map on several threads (`split`) or by reading on this one.
fn hash_path(path: &Path, split: bool) -> io::Result<[u8; 32]> {
    #[cfg(test)]
    tests::note_read(path);
    let mut hasher = blake3::Hasher::new();
    if split {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update_reader(File::open(path)?)?;
    }
    Ok(*hasher.finalize().as_bytes())
}

/// The stat of a file, not following a symlink (`lstat`): a symlink is never an input, and
/// its own stat is what [`hash_files`] compares.
pub fn stat(path: &Path) -> io::Result<FileStat> {
    std::fs::symlink_metadata(path).map(|m| FileStat::from(&m))
}

impl From<&Metadata> for FileStat {
    fn from(m: &Metadata) -> Self {
        FileStat {
            size: m.size(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
            ctime_ns: m.ctime().saturating_mul(1_000_000_000) + m.ctime_nsec(),
            inode: m.ino(),
        }
    }
}

/// Now, in ns since the epoch (0 before it, saturating far after it).
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Every path whose content was read, across all tests of this module (each test has its
    /// own temporary directory, so a test looks only for its own paths).
    static READS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(super) fn note_read(path: &Path) {
        READS.lock().unwrap().push(path.to_path_buf());
    }

    fn reads_of(path: &Path) -> usize {
        READS.lock().unwrap().iter().filter(|p| *p == path).count()
    }

    fn write(root: &Path, file: &str, content: &[u8]) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn no_cache(_: &str) -> Option<CacheEntry> {
        None
    }

    fn hash_one_file(
        root: &Path,
        rel: &str,
        cache: &(dyn Fn(&str) -> Option<CacheEntry> + Sync),
    ) -> Hashed {
        hash_files(root, &[rel.to_string()], cache)
            .pop()
            .unwrap()
            .unwrap()
    }

    /// The entry as if it had been hashed long after the file's last change.
    fn aged(mut entry: CacheEntry) -> CacheEntry {
        entry.hashed_at_ns = now_ns() + 10 * RACY_MARGIN_NS;
        entry
    }

    #[test]
    fn expands_globs_with_excludes_and_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "svc/a.rs",
            "svc/b.rs",
            "svc/gen/c.rs",
            "svc/node_modules/m.rs",
            "svc/target/t.rs",
            "other/o.rs",
            ".devgraph/state.db",
        ] {
            write(root, file, b"x");
        }
        write(root, "svc/.gitignore", b"target/\n");
        let globs = strings(&["svc/**", "!svc/**/node_modules/**", "!svc/.gitignore"]);
        assert_eq!(
            expand(root, &globs),
            strings(&["svc/a.rs", "svc/b.rs", "svc/gen/c.rs"])
        );
        assert_eq!(
            expand(root, &strings(&["svc/target/t.rs", "**/*.db"])),
            Vec::<String>::new()
        );
        assert_eq!(expand(root, &[]), Vec::<String>::new());
    }

    #[test]
    fn hashes_content_with_blake3() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"hello");
        let h = hash_one_file(dir.path(), "a.txt", &no_cache);
        assert_eq!(h.path, "a.txt");
        assert!(!h.from_cache);
        assert_eq!(h.entry.hash, *blake3::hash(b"hello").as_bytes());
        assert_eq!(h.entry.stat, stat(&dir.path().join("a.txt")).unwrap());
        assert_eq!(h.entry.stat.size, 5);
    }

    #[test]
    fn a_cache_hit_does_not_read_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"hello");
        let first = hash_one_file(dir.path(), "a.txt", &no_cache);
        // A made-up hash proves that the answer came from the cache, not from the content.
        let mut cached = aged(first.entry);
        cached.hash = [7; 32];
        let reads = reads_of(&dir.path().join("a.txt"));
        assert_eq!(reads, 1);
        let again = hash_one_file(dir.path(), "a.txt", &|p: &str| {
            (p == "a.txt").then_some(cached)
        });
        assert!(again.from_cache);
        assert_eq!(again.entry, cached);
        assert_eq!(reads_of(&dir.path().join("a.txt")), reads);
    }

    #[test]
    fn a_touched_but_unchanged_file_is_read_again_with_the_same_hash() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"hello");
        let first = aged(hash_one_file(dir.path(), "a.txt", &no_cache).entry);
        let hit = hash_one_file(dir.path(), "a.txt", &|_: &str| Some(first));
        assert!(hit.from_cache);
        let file = File::options()
            .write(true)
            .open(dir.path().join("a.txt"))
            .unwrap();
        file.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .unwrap();
        drop(file);
        let after = hash_one_file(dir.path(), "a.txt", &|_: &str| Some(first));
        assert!(!after.from_cache);
        assert_ne!(after.entry.stat, first.stat);
        assert_eq!(after.entry.hash, first.hash);
    }

    #[test]
    fn a_changed_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"hello");
        let first = aged(hash_one_file(dir.path(), "a.txt", &no_cache).entry);
        write(dir.path(), "a.txt", b"hello, world");
        let after = hash_one_file(dir.path(), "a.txt", &|_: &str| Some(first));
        assert!(!after.from_cache);
        assert_eq!(after.entry.hash, *blake3::hash(b"hello, world").as_bytes());
    }

    #[test]
    fn a_file_changed_within_the_racy_margin_is_read_again_despite_an_equal_stat() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"hello");
        let first = hash_one_file(dir.path(), "a.txt", &no_cache);
        // Hashed just now, so the file's mtime lies within the margin: a write in the same
        // timestamp tick could have left the stat as it was.
        let mut cached = first.entry;
        cached.hash = [7; 32];
        assert_eq!(cached.stat, stat(&dir.path().join("a.txt")).unwrap());
        let again = hash_one_file(dir.path(), "a.txt", &|_: &str| Some(cached));
        assert!(!again.from_cache);
        assert_eq!(again.entry.hash, first.entry.hash);
        // Exactly at the margin is still too recent.
        cached.hashed_at_ns = cached.stat.mtime_ns.max(cached.stat.ctime_ns) + RACY_MARGIN_NS;
        assert!(!hash_one_file(dir.path(), "a.txt", &|_: &str| Some(cached)).from_cache);
        cached.hashed_at_ns += 1;
        assert!(hash_one_file(dir.path(), "a.txt", &|_: &str| Some(cached)).from_cache);
    }

    #[test]
    fn a_vanished_file_or_a_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"a");
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let results = hash_files(dir.path(), &strings(&["gone.txt", "a.txt", "d"]), &no_cache);
        let (path, message) = results[0].clone().unwrap_err();
        assert_eq!(path, "gone.txt");
        assert!(message.contains("No such file"), "{message}");
        assert!(results[1].is_ok());
        assert_eq!(results[2].clone().unwrap_err().1, "is not a regular file");
    }

    #[test]
    fn a_symlink_is_not_hashed() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"a");
        std::os::unix::fs::symlink(dir.path().join("a.txt"), dir.path().join("l.txt")).unwrap();
        let results = hash_files(dir.path(), &strings(&["l.txt"]), &no_cache);
        assert_eq!(
            results[0].clone().unwrap_err(),
            (
                "l.txt".to_string(),
                "is a symlink (symlinks are not followed)".to_string()
            )
        );
        let link = stat(&dir.path().join("l.txt")).unwrap();
        assert_ne!(link.inode, stat(&dir.path().join("a.txt")).unwrap().inode);
    }

    #[test]
    fn results_come_in_the_order_of_the_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..500 {
            let name = format!("d{}/f{i}.txt", i % 7);
            write(dir.path(), &name, name.as_bytes());
            paths.push(name);
        }
        paths.reverse();
        paths.insert(250, "missing".to_string());
        let cached: HashMap<String, CacheEntry> = hash_files(dir.path(), &paths[..100], &no_cache)
            .into_iter()
            .map(|r| {
                let h = r.unwrap();
                (h.path, aged(h.entry))
            })
            .collect();
        let results = hash_files(dir.path(), &paths, &|p: &str| cached.get(p).copied());
        assert_eq!(results.len(), paths.len());
        for (i, (result, path)) in results.iter().zip(&paths).enumerate() {
            match result {
                Ok(h) => {
                    assert_eq!(&h.path, path);
                    assert_eq!(h.from_cache, i < 100);
                    assert_eq!(h.entry.hash, *blake3::hash(path.as_bytes()).as_bytes());
                }
                Err((p, _)) => assert_eq!((i, p.as_str()), (250, "missing")),
            }
        }
    }

    #[test]
    fn large_and_small_files_hash_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        for size in [
            0,
            1,
            1024,
            16 * 1024 - 1,
            MMAP_THRESHOLD as usize - 1,
            MMAP_THRESHOLD as usize,
            3 * MMAP_THRESHOLD as usize + 12_345,
        ] {
            let content: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &content).unwrap();
            let expected = *blake3::hash(&content).as_bytes();
            assert_eq!(hash_file(&path).unwrap(), expected, "size {size}");
            // Both methods, whatever the size.
            assert_eq!(
                hash_path(&path, false).unwrap(),
                expected,
                "read, size {size}"
            );
            assert_eq!(
                hash_path(&path, true).unwrap(),
                expected,
                "mmap, size {size}"
            );
        }
    }

    #[test]
    fn a_batch_hashes_big_and_small_files() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3 * MMAP_THRESHOLD as usize)
            .map(|i| (i % 253) as u8)
            .collect();
        write(dir.path(), "big", &big);
        write(dir.path(), "small", b"small");
        let results = hash_files(dir.path(), &strings(&["small", "big"]), &no_cache);
        let hashes: Vec<[u8; 32]> = results.into_iter().map(|r| r.unwrap().entry.hash).collect();
        assert_eq!(
            hashes,
            vec![
                *blake3::hash(b"small").as_bytes(),
                *blake3::hash(&big).as_bytes()
            ]
        );
    }
}
