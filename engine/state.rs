//! The state store: one SQLite database under `.devgraph/`, in WAL mode. Per task it keeps
//! the record of the last success, the last attempt, and the stat cache of its files; and
//! the content of small text inputs, so `why` can show a real diff. Every finished task is
//! one transaction, so a killed run loses nothing that finished. See "State" in
//! docs/design.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use miette::Diagnostic;
use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use crate::digest::CacheEntry;
use crate::fingerprint::{Hash, Record};

/// The schema this devgraph writes and reads.
pub const SCHEMA_VERSION: i64 = 1;
/// The folder under the project root that holds all state.
pub const DIR: &str = ".devgraph";
const DB: &str = "state.db";

/// Why the state store cannot be used.
#[derive(Debug, Error, Diagnostic)]
pub enum StateError {
    #[error("{} was written by a newer devgraph (schema {found}; this one reads {SCHEMA_VERSION})", path.display())]
    #[diagnostic(
        code(devgraph::state_newer),
        help(
            "use the newer devgraph, or start afresh with `devgraph forget --all` (every task will re-run)"
        )
    )]
    Newer { path: PathBuf, found: i64 },

    #[error("the state store {} is damaged: {message}", path.display())]
    #[diagnostic(
        code(devgraph::state_corrupt),
        help("run `devgraph forget --all` to start afresh (every task will re-run)")
    )]
    Corrupt { path: PathBuf, message: String },

    #[error("cannot use {}: {message}", path.display())]
    #[diagnostic(code(devgraph::state_io))]
    Io { path: PathBuf, message: String },
}

/// How the last attempt of a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Started and not finished: devgraph was killed, or is running it now.
    Running,
    Ok,
    Failed,
    TimedOut,
    Interrupted,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed-out",
            Outcome::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "running" => Outcome::Running,
            "ok" => Outcome::Ok,
            "failed" => Outcome::Failed,
            "timed-out" => Outcome::TimedOut,
            "interrupted" => Outcome::Interrupted,
            _ => return None,
        })
    }
}

/// The last attempt to run a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub started_at_ms: i64,
    pub duration_ms: Option<u64>,
    /// The log file, relative to the project root.
    pub log: Option<String>,
    /// The process group, while running.
    pub pgid: Option<i32>,
}

/// The last success of a task.
#[derive(Debug, Clone)]
pub struct Success {
    pub record: Record,
    pub fingerprint: Hash,
    pub identity: Hash,
    pub finished_at_ms: i64,
    pub duration_ms: u64,
}

/// The open store. The connection sits behind a mutex so that tasks running on several
/// threads can commit their results; every statement is short.
pub struct State {
    conn: std::sync::Mutex<Connection>,
    path: PathBuf,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn db_path(root: &Path) -> PathBuf {
    root.join(DIR).join(DB)
}

impl State {
    /// Opens the store for writing, creating `.devgraph/` (mode 0700) and the schema.
    pub fn open(root: &Path) -> Result<State, StateError> {
        let dir = root.join(DIR);
        let path = db_path(root);
        if !dir.is_dir() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| StateError::Io {
                    path: dir.clone(),
                    message: e.to_string(),
                })?;
        }
        let conn = Connection::open(&path).map_err(|e| corrupt(&path, e))?;
        let state = State {
            conn: std::sync::Mutex::new(conn),
            path,
        };
        state.prepare(true)?;
        Ok(state)
    }

    /// Opens the store for reading only; `None` when there is none yet. Read-only commands
    /// (`plan`, `why`, `status`) use this: they never create or change state.
    pub fn open_read_only(root: &Path) -> Result<Option<State>, StateError> {
        let path = db_path(root);
        if !path.is_file() {
            return Ok(None);
        }
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| corrupt(&path, e))?;
        let state = State {
            conn: std::sync::Mutex::new(conn),
            path,
        };
        match state.prepare(false) {
            Ok(()) => Ok(Some(state)),
            // A store that was being created when devgraph was killed holds nothing yet.
            Err(StateError::Corrupt { .. }) if state.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes every file of the store: the way out of a damaged or newer store.
    pub fn destroy(root: &Path) -> Result<(), StateError> {
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", db_path(root).display()));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StateError::Io {
                        path,
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The connection. A panic while it was held cannot leave SQLite inconsistent (every
    /// write is a statement or a transaction), so a poisoned lock is still usable.
    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the database has no tables at all.
    fn is_empty(&self) -> bool {
        self.db()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok_and(|n| n == 0)
    }

    fn prepare(&self, write: bool) -> Result<(), StateError> {
        let err = |e: rusqlite::Error| corrupt(&self.path, e);
        self.db()
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // Read pages through a memory map rather than a `pread` each: checking a converged
        // graph reads every task's record and stat cache, thousands of pages.
        self.db()
            .execute_batch("PRAGMA mmap_size = 268435456;")
            .map_err(err)?;
        if write {
            self.db()
                .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                .map_err(err)?;
        }
        let version: Option<String> = self
            .db()
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .or_else(|e| match e {
                // A new, empty database has no tables yet.
                rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                    Ok(None)
                }
                e => Err(e),
            })
            .map_err(err)?;
        match version.map(|v| v.parse::<i64>()) {
            None if write => self.create_schema(),
            None => Err(StateError::Corrupt {
                path: self.path.clone(),
                message: "it has no schema version".into(),
            }),
            Some(Ok(SCHEMA_VERSION)) => Ok(()),
            Some(Ok(found)) if found > SCHEMA_VERSION => Err(StateError::Newer {
                path: self.path.clone(),
                found,
            }),
            Some(Ok(found)) => Err(StateError::Corrupt {
                path: self.path.clone(),
                message: format!("unknown schema version {found}"),
            }),
            Some(Err(_)) => Err(StateError::Corrupt {
                path: self.path.clone(),
                message: "its schema version is not a number".into(),
            }),
        }
    }

    fn create_schema(&self) -> Result<(), StateError> {
        self.db()
            .execute_batch(&format!(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS success (
                     task TEXT PRIMARY KEY, record BLOB NOT NULL, fingerprint BLOB NOT NULL,
                     identity BLOB NOT NULL, finished_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS attempt (
                     task TEXT PRIMARY KEY, outcome TEXT NOT NULL, exit_code INTEGER,
                     started_at INTEGER NOT NULL, duration_ms INTEGER, log TEXT, pgid INTEGER);
                 CREATE TABLE IF NOT EXISTS stat_cache (task TEXT PRIMARY KEY, entries BLOB NOT NULL);
                 CREATE TABLE IF NOT EXISTS content (hash BLOB PRIMARY KEY, text TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS content_ref (
                                          task TEXT NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (task, hash));
                 CREATE INDEX IF NOT EXISTS content_ref_hash ON content_ref (hash);
                 INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
                 COMMIT;"
            ))
            .map_err(|e| corrupt(&self.path, e))
    }

    /// The last success of a task. A record that cannot be decoded (another record version)
    /// counts as no success: the task re-runs, which is always safe.
    pub fn success(&self, task: &str) -> Result<Option<Success>, StateError> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT record, fingerprint, identity, finished_at, duration_ms FROM success WHERE task = ?1")
            .map_err(|e| corrupt(&self.path, e))?;
        let row = stmt
            .query_row([task], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(|e| corrupt(&self.path, e))?;
        Ok(row.and_then(|(record, fp, identity, at, ms)| {
            Some(Success {
                record: Record::from_bytes(&record)?,
                fingerprint: fp.try_into().ok()?,
                identity: identity.try_into().ok()?,
                finished_at_ms: at,
                duration_ms: ms.max(0) as u64,
            })
        }))
    }

    /// How long the last success of a task took, without decoding its record (the
    /// scheduler asks this of every task to order the critical path).
    pub fn success_duration(&self, task: &str) -> Result<Option<u64>, StateError> {
        self.db()
            .prepare_cached("SELECT duration_ms FROM success WHERE task = ?1")
            .and_then(|mut s| s.query_row([task], |r| r.get::<_, i64>(0)).optional())
            .map(|d| d.map(|ms| ms.max(0) as u64))
            .map_err(|e| corrupt(&self.path, e))
    }

    /// The last attempt of a task.
    pub fn attempt(&self, task: &str) -> Result<Option<Attempt>, StateError> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT outcome, exit_code, started_at, duration_ms, log, pgid FROM attempt WHERE task = ?1")
            .map_err(|e| corrupt(&self.path, e))?;
        let row = stmt
            .query_row([task], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i32>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<i32>>(5)?,
                ))
            })
            .optional()
            .map_err(|e| corrupt(&self.path, e))?;
        Ok(
            row.and_then(|(outcome, exit_code, started_at_ms, duration, log, pgid)| {
                Some(Attempt {
                    outcome: Outcome::parse(&outcome)?,
                    exit_code,
                    started_at_ms,
                    duration_ms: duration.map(|d| d.max(0) as u64),
                    log,
                    pgid,
                })
            }),
        )
    }

    /// The cached stats and hashes of a task's files, by path.
    pub fn stat_cache(&self, task: &str) -> Result<HashMap<String, CacheEntry>, StateError> {
        let db = self.db();
        let mut stmt = db
            .prepare_cached("SELECT entries FROM stat_cache WHERE task = ?1")
            .map_err(|e| corrupt(&self.path, e))?;
        let blob: Option<Vec<u8>> = stmt
            .query_row([task], |r| r.get(0))
            .optional()
            .map_err(|e| corrupt(&self.path, e))?;
        // An undecodable cache is only a cache: files get hashed again.
        Ok(blob
            .and_then(|b| postcard::from_bytes::<Vec<(String, CacheEntry)>>(&b).ok())
            .map(|entries| entries.into_iter().collect())
            .unwrap_or_default())
    }

    /// Replaces a task's stat cache.
    pub fn save_stat_cache(
        &self,
        task: &str,
        entries: &[(String, CacheEntry)],
    ) -> Result<(), StateError> {
        let blob = postcard::to_allocvec(entries)
            .unwrap_or_else(|e| unreachable!("BUG: encoding stat cache: {e}"));
        self.db()
            .prepare_cached("INSERT OR REPLACE INTO stat_cache (task, entries) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![task, blob]))
            .map(|_| ())
            .map_err(|e| corrupt(&self.path, e))
    }

    /// Records that a task started, before its process does anything.
    pub fn begin(&self, task: &str, log: &str) -> Result<(), StateError> {
        self.db()
            .prepare_cached(
                "INSERT OR REPLACE INTO attempt (task, outcome, exit_code, started_at, duration_ms, log, pgid)
                 VALUES (?1, 'running', NULL, ?2, NULL, ?3, NULL)",
            )
            .and_then(|mut s| s.execute(params![task, now_ms(), log]))
            .map(|_| ())
            .map_err(|e| corrupt(&self.path, e))
    }

    /// Records the process group of a running task, so a later run can stop its leftovers.
    pub fn set_pgid(&self, task: &str, pgid: i32) -> Result<(), StateError> {
        self.db()
            .prepare_cached("UPDATE attempt SET pgid = ?2 WHERE task = ?1")
            .and_then(|mut s| s.execute(params![task, pgid]))
            .map(|_| ())
            .map_err(|e| corrupt(&self.path, e))
    }

    /// Commits a success: the record, the attempt, the kept contents of its text inputs
    /// (`None`: unchanged since the last success), and (when given) its stat cache, in one
    /// transaction. Contents no task refers to any more are dropped.
    pub fn succeed(
        &self,
        task: &str,
        success: &Success,
        contents: Option<&[(Hash, String)]>,
        stats: Option<&[(String, CacheEntry)]>,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| corrupt(&path, e);
        let db = self.db();
        let tx = db.unchecked_transaction().map_err(err)?;
        if let Some(entries) = stats {
            let blob = postcard::to_allocvec(entries)
                .unwrap_or_else(|e| unreachable!("BUG: encoding stat cache: {e}"));
            tx.prepare_cached("INSERT OR REPLACE INTO stat_cache (task, entries) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![task, blob]))
                .map_err(err)?;
        }
        tx.prepare_cached(
            "INSERT OR REPLACE INTO success (task, record, fingerprint, identity, finished_at, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                task,
                success.record.to_bytes(),
                success.fingerprint.as_slice(),
                success.identity.as_slice(),
                success.finished_at_ms,
                success.duration_ms as i64
            ])
        })
        .map_err(err)?;
        tx.prepare_cached(
            "UPDATE attempt SET outcome = 'ok', exit_code = 0, duration_ms = ?2, pgid = NULL WHERE task = ?1",
        )
        .and_then(|mut s| s.execute(params![task, success.duration_ms as i64]))
        .map_err(err)?;
        if let Some(contents) = contents {
            // Swap the task's content references, then drop only the content this task stopped
            // referring to and nobody else refers to: the cost follows what changed, not the
            // size of the store.
            let old: Vec<Vec<u8>> = tx
                .prepare_cached("SELECT hash FROM content_ref WHERE task = ?1")
                .and_then(|mut s| s.query_map([task], |r| r.get(0))?.collect())
                .map_err(err)?;
            tx.prepare_cached("DELETE FROM content_ref WHERE task = ?1")
                .and_then(|mut s| s.execute([task]))
                .map_err(err)?;
            for (hash, text) in contents {
                tx.prepare_cached("INSERT OR IGNORE INTO content (hash, text) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![hash.as_slice(), text]))
                    .map_err(err)?;
                tx.prepare_cached("INSERT OR IGNORE INTO content_ref (task, hash) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![task, hash.as_slice()]))
                    .map_err(err)?;
            }
            for hash in old
                .iter()
                .filter(|h| !contents.iter().any(|(c, _)| c.as_slice() == h.as_slice()))
            {
                tx.prepare_cached(
                    "DELETE FROM content WHERE hash = ?1 AND NOT EXISTS (SELECT 1 FROM content_ref WHERE hash = ?1)",
                )
                .and_then(|mut s| s.execute([hash]))
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Commits the end of an attempt that did not succeed.
    pub fn fail(
        &self,
        task: &str,
        outcome: Outcome,
        exit_code: Option<i32>,
        duration_ms: u64,
    ) -> Result<(), StateError> {
        self.db()
            .prepare_cached("UPDATE attempt SET outcome = ?2, exit_code = ?3, duration_ms = ?4, pgid = NULL WHERE task = ?1")
            .and_then(|mut s| s.execute(params![task, outcome.as_str(), exit_code, duration_ms as i64]))
            .map(|_| ())
            .map_err(|e| corrupt(&self.path, e))
    }

    /// Whether the store keeps content with this hash (so it need not be read again).
    pub fn has_content(&self, hash: &Hash) -> Result<bool, StateError> {
        self.db()
            .prepare_cached("SELECT 1 FROM content WHERE hash = ?1")
            .and_then(|mut s| s.exists([hash.as_slice()]))
            .map_err(|e| corrupt(&self.path, e))
    }

    /// Kept content of a text input, by hash.
    pub fn content(&self, hash: &Hash) -> Result<Option<String>, StateError> {
        self.db()
            .prepare_cached("SELECT text FROM content WHERE hash = ?1")
            .and_then(|mut s| s.query_row([hash.as_slice()], |r| r.get(0)).optional())
            .map_err(|e| corrupt(&self.path, e))
    }

    /// Tasks recorded as running, with their process groups.
    pub fn running(&self) -> Result<Vec<(String, Option<i32>)>, StateError> {
        let db = self.db();
        let mut stmt = db
            .prepare_cached(
                "SELECT task, pgid FROM attempt WHERE outcome = 'running' ORDER BY task",
            )
            .map_err(|e| corrupt(&self.path, e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| corrupt(&self.path, e))
    }

    /// Drops everything recorded about these tasks, so they drift.
    pub fn forget(&self, tasks: &[&str]) -> Result<usize, StateError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| corrupt(&path, e);
        let db = self.db();
        let tx = db.unchecked_transaction().map_err(err)?;
        let mut forgotten = 0;
        for task in tasks {
            let mut had_state = false;
            for table in ["success", "attempt", "stat_cache", "content_ref"] {
                let n = tx
                    .execute(&format!("DELETE FROM {table} WHERE task = ?1"), [task])
                    .map_err(err)?;
                had_state |= n > 0 && (table == "success" || table == "attempt");
            }
            forgotten += usize::from(had_state);
        }
        tx.execute(
            "DELETE FROM content WHERE hash NOT IN (SELECT hash FROM content_ref)",
            [],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(forgotten)
    }
}

fn corrupt(path: &Path, e: rusqlite::Error) -> StateError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::RECORD_VERSION;

    fn success() -> Success {
        let record = Record {
            version: RECORD_VERSION,
            command: Some("true".into()),
            env: vec![],
            inputs: vec![],
            outputs: vec![],
            probe: None,
            deps: vec![],
        };
        Success {
            fingerprint: record.fingerprint(),
            identity: record.identity(false),
            record,
            finished_at_ms: 1,
            duration_ms: 20,
        }
    }

    #[test]
    fn a_success_is_kept_with_its_attempt_and_contents() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        assert!(state.success("a").unwrap().is_none());
        state.begin("a", ".devgraph/logs/a/1.log").unwrap();
        state.set_pgid("a", 4242).unwrap();
        assert_eq!(
            state.running().unwrap(),
            vec![("a".to_string(), Some(4242))]
        );
        state
            .succeed("a", &success(), Some(&[([1; 32], "hello\n".into())]), None)
            .unwrap();
        let s = state.success("a").unwrap().unwrap();
        assert_eq!(s.record, success().record);
        let attempt = state.attempt("a").unwrap().unwrap();
        assert_eq!(
            (attempt.outcome, attempt.exit_code, attempt.pgid),
            (Outcome::Ok, Some(0), None)
        );
        assert_eq!(state.content(&[1; 32]).unwrap().as_deref(), Some("hello\n"));
        assert!(state.running().unwrap().is_empty());
        // A new success without that content lets it go.
        state.succeed("a", &success(), Some(&[]), None).unwrap();
        assert!(!state.has_content(&[1; 32]).unwrap());
    }

    #[test]
    fn directory_is_private_and_read_only_open_creates_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(State::open_read_only(dir.path()).unwrap().is_none());
        assert!(!dir.path().join(DIR).exists());
        State::open(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(DIR))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(State::open_read_only(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_newer_schema_and_a_damaged_file_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state
            .db()
            .execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        drop(state);
        let err = State::open(dir.path()).err().unwrap();
        assert!(matches!(err, StateError::Newer { found: 99, .. }), "{err}");
        State::destroy(dir.path()).unwrap();
        std::fs::write(
            dir.path().join(DIR).join(DB),
            b"this is not a database, just text",
        )
        .unwrap();
        let err = State::open(dir.path()).err().unwrap();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        State::destroy(dir.path()).unwrap();
        assert!(State::open(dir.path()).is_ok());
    }

    #[test]
    fn forget_drops_a_tasks_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.begin("a", "log").unwrap();
        state.succeed("a", &success(), Some(&[]), None).unwrap();
        assert_eq!(state.forget(&["a", "nothing"]).unwrap(), 1);
        assert!(state.success("a").unwrap().is_none());
        assert!(state.attempt("a").unwrap().is_none());
    }
}
