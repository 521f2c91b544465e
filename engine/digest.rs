//! Input and output files: expanding a task's globs into files, the stat cache rules, and
//! hashing file contents with blake3 in parallel. See "Input files and the stat cache" in
//! docs/design.md.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::pattern::FileSet;

/// A file modified less than this long before it was hashed is re-read on the next check
/// even when its stat has not changed (git's "racily clean" entries): a write in the same
/// timestamp tick as the hash, or one that restored the old mtime, leaves the stat as it was.
pub const RACY_MARGIN_NS: i64 = 2_000_000_000;

/// Files at least this large are hashed from a memory map with blake3's multithreaded
/// (rayon) path; smaller ones are read with ordinary reads on one thread, and many of them
/// are hashed side by side instead.
pub const MMAP_THRESHOLD: u64 = 1 << 20;

/// What `stat` says about a file; equal stats mean the content need not be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

/// A cached hash: the stat it was taken under and when (ns since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheEntry {
    pub stat: FileStat,
    pub hash: [u8; 32],
    pub hashed_at_ns: i64,
}

/// One hashed file, root-relative path with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    pub path: String,
    pub entry: CacheEntry,
    pub from_cache: bool,
}

/// The files a list of globs (with `!` excludes) matches under `root`, sorted, root-relative,
/// `/`-separated. Only regular files count: symlinks are never followed or returned, and
/// `.gitignore` files at or below `root` are respected (see [`FileSet::files`]). A path that
/// is not valid UTF-8 is left out.
pub fn expand(root: &Path, globs: &[String]) -> Vec<String> {
    FileSet::new(globs.iter().map(String::as_str))
        .files(root)
        .into_iter()
        .filter_map(|p| p.into_os_string().into_string().ok())
        .collect()
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
    let root_len = root.as_os_str().len();
    paths
        .par_iter()
        .map_init(
            || PathBuf::with_capacity(root_len + 128),
            |buf, rel| {
                let full = buf.as_mut_os_string();
                full.clear();
                full.push(root.as_os_str());
                full.push("/");
                full.push(rel);
                hash_one(buf, rel, now, cache).map_err(|message| (rel.clone(), message))
            },
        )
        .collect()
}

fn hash_one(
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
    let hash = hash_sized(full, stat.size).map_err(|e| e.to_string())?;
    Ok(Hashed {
        path: rel.to_string(),
        entry: CacheEntry {
            stat,
            hash,
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
    hash_sized(path, size)
}

/// Hashes a file whose size was just taken; the size only picks the method.
fn hash_sized(path: &Path, size: u64) -> io::Result<[u8; 32]> {
    #[cfg(test)]
    tests::note_read(path);
    let mut hasher = blake3::Hasher::new();
    if size >= MMAP_THRESHOLD {
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
    fn a_vanished_or_unreadable_file_is_an_error() {
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
            assert_eq!(hash_sized(&path, 0).unwrap(), expected, "read, size {size}");
            assert_eq!(
                hash_sized(&path, u64::MAX).unwrap(),
                expected,
                "mmap, size {size}"
            );
        }
    }
}
