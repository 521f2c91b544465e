//! The state store: one SQLite database under `.devgraph/`, in WAL mode. Per task it keeps
//! the record of the last success, the last attempt, and the stat cache of its files; and
//! the content of small text inputs, so `why` can show a real diff. Every finished task is
//! one transaction, so a killed run loses nothing that finished. See "State" in
//! docs/design.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The longest a running task's process group waits to be written (see
/// [`State::set_pgid`]).
pub const GROUP_DELAY: Duration = Duration::from_millis(50);

/// The open store. The connection sits behind a mutex so that tasks running on several
/// threads can commit their results; every statement is short.
pub struct State {
    shared: Arc<Shared>,
    /// Writes the process groups of long-running tasks; started by the first `set_pgid`.
    flusher: OnceLock<Option<JoinHandle<()>>>,
}

/// What the flusher thread shares with the store.
struct Shared {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Process groups of running tasks not written yet, in the order they were reported.
    /// Lock order: `conn` first, then `groups`.
    groups: Mutex<Vec<(String, i32)>>,
    /// Set when the store closes; wakes the flusher.
    closing: (Mutex<bool>, Condvar),
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
        let state = State::new(conn, path);
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
        let state = State::new(conn, path);
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

    fn new(conn: Connection, path: PathBuf) -> State {
        State {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                path,
                groups: Mutex::new(Vec::new()),
                closing: (Mutex::new(false), Condvar::new()),
            }),
            flusher: OnceLock::new(),
        }
    }

    /// The connection. A panic while it was held cannot leave SQLite inconsistent (every
    /// write is a statement or a transaction), so a poisoned lock is still usable.
    fn db(&self) -> MutexGuard<'_, Connection> {
        self.shared.db()
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
        let err = |e: rusqlite::Error| corrupt(&self.shared.path, e);
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
                path: self.shared.path.clone(),
                message: "it has no schema version".into(),
            }),
            Some(Ok(SCHEMA_VERSION)) => Ok(()),
            Some(Ok(found)) if found > SCHEMA_VERSION => Err(StateError::Newer {
                path: self.shared.path.clone(),
                found,
            }),
            Some(Ok(found)) => Err(StateError::Corrupt {
                path: self.shared.path.clone(),
                message: format!("unknown schema version {found}"),
            }),
            Some(Err(_)) => Err(StateError::Corrupt {
                path: self.shared.path.clone(),
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
            .map_err(|e| corrupt(&self.shared.path, e))
    }

    /// The last success of a task. A record that cannot be decoded (another record version)
    /// counts as no success: the task re-runs, which is always safe.
    pub fn success(&self, task: &str) -> Result<Option<Success>, StateError> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT record, fingerprint, identity, finished_at, duration_ms FROM success WHERE task = ?1")
            .map_err(|e| corrupt(&self.shared.path, e))?;
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
            .map_err(|e| corrupt(&self.shared.path, e))?;
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

    /// The last success and the last attempt of a task, in one query (the runner asks for
    /// both for every task it decides). A record that cannot be decoded counts as no
    /// success, as in [`State::success`].
    pub fn last(&self, task: &str) -> Result<(Option<Success>, Option<Attempt>), StateError> {
        type Row = (
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<i32>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<i32>,
        );
        let db = self.db();
        let mut stmt = db
            .prepare_cached(
                "SELECT s.record, s.fingerprint, s.identity, s.finished_at, s.duration_ms,
                        a.outcome, a.exit_code, a.started_at, a.duration_ms, a.log, a.pgid
                 FROM (SELECT ?1 AS task) AS t
                 LEFT JOIN success AS s ON s.task = t.task
                 LEFT JOIN attempt AS a ON a.task = t.task",
            )
            .map_err(|e| corrupt(&self.shared.path, e))?;
        let row: Row = stmt
            .query_row([task], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .map_err(|e| corrupt(&self.shared.path, e))?;
        let (record, fp, identity, at, ms, outcome, exit_code, started, duration, log, pgid) = row;
        let success = (|| {
            Some(Success {
                record: Record::from_bytes(&record?)?,
                fingerprint: fp?.try_into().ok()?,
                identity: identity?.try_into().ok()?,
                finished_at_ms: at?,
                duration_ms: ms?.max(0) as u64,
            })
        })();
        drop(stmt);
        drop(db);
        let attempt = (|| {
            let outcome = Outcome::parse(&outcome?)?;
            Some(Attempt {
                outcome,
                exit_code,
                started_at_ms: started?,
                duration_ms: duration.map(|d| d.max(0) as u64),
                log,
                pgid: self.group_of(task, outcome, pgid),
            })
        })();
        Ok((success, attempt))
    }

    /// The process group of an attempt: as written, or as reported and not written yet.
    fn group_of(&self, task: &str, outcome: Outcome, written: Option<i32>) -> Option<i32> {
        match outcome {
            Outcome::Running => self.pending_group(task).or(written),
            _ => written,
        }
    }

    /// How long the last success of a task took, without decoding its record (the
    /// scheduler asks this of every task to order the critical path).
    pub fn success_duration(&self, task: &str) -> Result<Option<u64>, StateError> {
        self.db()
            .prepare_cached("SELECT duration_ms FROM success WHERE task = ?1")
            .and_then(|mut s| s.query_row([task], |r| r.get::<_, i64>(0)).optional())
            .map(|d| d.map(|ms| ms.max(0) as u64))
            .map_err(|e| corrupt(&self.shared.path, e))
    }

    /// The last attempt of a task.
    pub fn attempt(&self, task: &str) -> Result<Option<Attempt>, StateError> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT outcome, exit_code, started_at, duration_ms, log, pgid FROM attempt WHERE task = ?1")
            .map_err(|e| corrupt(&self.shared.path, e))?;
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
            .map_err(|e| corrupt(&self.shared.path, e))?;
        drop(stmt);
        drop(db);
        Ok(
            row.and_then(|(outcome, exit_code, started_at_ms, duration, log, pgid)| {
                let outcome = Outcome::parse(&outcome)?;
                Some(Attempt {
                    outcome,
                    exit_code,
                    started_at_ms,
                    duration_ms: duration.map(|d| d.max(0) as u64),
                    log,
                    pgid: self.group_of(task, outcome, pgid),
                })
            }),
        )
    }

    /// The cached stats and hashes of a task's files, by path.
    pub fn stat_cache(&self, task: &str) -> Result<HashMap<String, CacheEntry>, StateError> {
        let db = self.db();
        let mut stmt = db
            .prepare_cached("SELECT entries FROM stat_cache WHERE task = ?1")
            .map_err(|e| corrupt(&self.shared.path, e))?;
        let blob: Option<Vec<u8>> = stmt
            .query_row([task], |r| r.get(0))
            .optional()
            .map_err(|e| corrupt(&self.shared.path, e))?;
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
        self.write(None, true, |db| {
            db.prepare_cached("INSERT OR REPLACE INTO stat_cache (task, entries) VALUES (?1, ?2)")?
                .execute(params![task, blob])?;
            Ok(())
        })
    }

    /// Records that a task started, before its process does anything. This commits at
    /// once (a run killed after the process started must find it), together with the
    /// process groups still waiting to be written.
    pub fn begin(&self, task: &str, log: &str) -> Result<(), StateError> {
        self.write(Some(task), true, |db| {
            db.prepare_cached(
                "INSERT INTO attempt (task, outcome, exit_code, started_at, duration_ms, log, pgid)
                 VALUES (?1, 'running', NULL, ?2, NULL, ?3, NULL)
                 ON CONFLICT (task) DO UPDATE SET outcome = 'running', exit_code = NULL,
                     started_at = excluded.started_at, duration_ms = NULL, log = excluded.log,
                     pgid = NULL",
            )?
            .execute(params![task, now_ms(), log])?;
            Ok(())
        })
    }

    /// Records the process group of a running task. It is written with the next write of
    /// the store (the next task's start, any task's end), and at the latest [`GROUP_DELAY`]
    /// later by a flusher thread, rather than in a commit of its own: most tasks end
    /// before it matters, and their end clears it anyway. Nothing depends on it being
    /// written sooner: a later run finds a killed run's processes by their environment
    /// (see `process::task_groups`), which also covers a run killed before the group was
    /// written.
    ///
    /// Until then, this store's own reads (`attempt`, `last`, `running`) already show it.
    pub fn set_pgid(&self, task: &str, pgid: i32) -> Result<(), StateError> {
        lock(&self.shared.groups).push((task.to_string(), pgid));
        let shared = &self.shared;
        self.flusher.get_or_init(|| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name("devgraph-state".into())
                .spawn(move || shared.flush_groups_until_closed())
                .ok()
        });
        Ok(())
    }

    /// The process group of `task` reported by `set_pgid` and not written yet.
    fn pending_group(&self, task: &str) -> Option<i32> {
        let groups = lock(&self.shared.groups);
        groups
            .iter()
            .rev()
            .find(|(t, _)| t == task)
            .map(|(_, g)| *g)
    }

    /// Runs `write` in one transaction, after writing the process groups waiting to be
    /// written (except `ending`'s, which this write replaces). A `single` statement with
    /// nothing waiting needs no transaction around it.
    fn write<T>(
        &self,
        ending: Option<&str>,
        single: bool,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let db = self.db();
        let groups = std::mem::take(&mut *lock(&self.shared.groups));
        let groups: Vec<(String, i32)> = groups
            .into_iter()
            .filter(|(task, _)| Some(task.as_str()) != ending)
            .collect();
        let result = if single && groups.is_empty() {
            write(&db)
        } else {
            db.unchecked_transaction().and_then(|tx| {
                write_groups(&tx, &groups)?;
                let out = write(&tx)?;
                tx.commit()?;
                Ok(out)
            })
        };
        result.map_err(|e| corrupt(&self.shared.path, e))
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
        self.write(Some(task), false, |tx| {
            if let Some(entries) = stats {
                let blob = postcard::to_allocvec(entries)
                    .unwrap_or_else(|e| unreachable!("BUG: encoding stat cache: {e}"));
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO stat_cache (task, entries) VALUES (?1, ?2)",
                )?
                .execute(params![task, blob])?;
            }
            // An upsert changes the row in place, where a replace would delete it and
            // insert it again (twice the pages written).
            tx.prepare_cached(
                "INSERT INTO success (task, record, fingerprint, identity, finished_at, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (task) DO UPDATE SET record = excluded.record,
                     fingerprint = excluded.fingerprint, identity = excluded.identity,
                     finished_at = excluded.finished_at, duration_ms = excluded.duration_ms",
            )?
            .execute(params![
                task,
                success.record.to_bytes(),
                success.fingerprint.as_slice(),
                success.identity.as_slice(),
                success.finished_at_ms,
                success.duration_ms as i64
            ])?;
            tx.prepare_cached(
                "UPDATE attempt SET outcome = 'ok', exit_code = 0, duration_ms = ?2, pgid = NULL WHERE task = ?1",
            )?
            .execute(params![task, success.duration_ms as i64])?;
            if let Some(contents) = contents {
                // Swap the task's content references, then drop only the content this task
                // stopped referring to and nobody else refers to: the cost follows what
                // changed, not the size of the store.
                let old: Vec<Vec<u8>> = tx
                    .prepare_cached("SELECT hash FROM content_ref WHERE task = ?1")?
                    .query_map([task], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                tx.prepare_cached("DELETE FROM content_ref WHERE task = ?1")?
                    .execute([task])?;
                for (hash, text) in contents {
                    tx.prepare_cached("INSERT OR IGNORE INTO content (hash, text) VALUES (?1, ?2)")?
                        .execute(params![hash.as_slice(), text])?;
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO content_ref (task, hash) VALUES (?1, ?2)",
                    )?
                    .execute(params![task, hash.as_slice()])?;
                }
                for hash in old
                    .iter()
                    .filter(|h| !contents.iter().any(|(c, _)| c.as_slice() == h.as_slice()))
                {
                    tx.prepare_cached(
                        "DELETE FROM content WHERE hash = ?1 AND NOT EXISTS (SELECT 1 FROM content_ref WHERE hash = ?1)",
                    )?
                    .execute([hash])?;
                }
            }
            Ok(())
        })
    }

    /// Commits the end of an attempt that did not succeed.
    pub fn fail(
        &self,
        task: &str,
        outcome: Outcome,
        exit_code: Option<i32>,
        duration_ms: u64,
    ) -> Result<(), StateError> {
        self.write(Some(task), true, |db| {
            db.prepare_cached("UPDATE attempt SET outcome = ?2, exit_code = ?3, duration_ms = ?4, pgid = NULL WHERE task = ?1")?
                .execute(params![task, outcome.as_str(), exit_code, duration_ms as i64])?;
            Ok(())
        })
    }

    /// Whether the store keeps content with this hash (so it need not be read again).
    pub fn has_content(&self, hash: &Hash) -> Result<bool, StateError> {
        self.db()
            .prepare_cached("SELECT 1 FROM content WHERE hash = ?1")
            .and_then(|mut s| s.exists([hash.as_slice()]))
            .map_err(|e| corrupt(&self.shared.path, e))
    }

    /// Kept content of a text input, by hash.
    pub fn content(&self, hash: &Hash) -> Result<Option<String>, StateError> {
        self.db()
            .prepare_cached("SELECT text FROM content WHERE hash = ?1")
            .and_then(|mut s| s.query_row([hash.as_slice()], |r| r.get(0)).optional())
            .map_err(|e| corrupt(&self.shared.path, e))
    }

    /// Tasks recorded as running, with their process groups.
    pub fn running(&self) -> Result<Vec<(String, Option<i32>)>, StateError> {
        let db = self.db();
        let mut stmt = db
            .prepare_cached(
                "SELECT task, pgid FROM attempt WHERE outcome = 'running' ORDER BY task",
            )
            .map_err(|e| corrupt(&self.shared.path, e))?;
        let rows: Vec<(String, Option<i32>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| corrupt(&self.shared.path, e))?;
        drop(stmt);
        drop(db);
        Ok(rows
            .into_iter()
            .map(|(task, pgid)| {
                let pgid = self.group_of(&task, Outcome::Running, pgid);
                (task, pgid)
            })
            .collect())
    }

    /// Drops everything recorded about these tasks, so they drift.
    pub fn forget(&self, tasks: &[&str]) -> Result<usize, StateError> {
        let path = self.shared.path.clone();
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

impl Drop for State {
    /// Stops the flusher, which writes what is left first.
    fn drop(&mut self) {
        if let Some(Some(flusher)) = self.flusher.take() {
            *lock(&self.shared.closing.0) = true;
            self.shared.closing.1.notify_all();
            let _ = flusher.join();
        }
    }
}

impl Shared {
    fn db(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// The flusher thread: every [`GROUP_DELAY`], writes the process groups still waiting,
    /// until the store closes (and then once more).
    fn flush_groups_until_closed(&self) {
        let mut closing = lock(&self.closing.0);
        loop {
            let closed = *closing;
            drop(closing);
            if !lock(&self.groups).is_empty() {
                let db = self.db();
                let groups = std::mem::take(&mut *lock(&self.groups));
                // Only a record for `status`: a failure here loses nothing that matters
                // (see `State::set_pgid`), and the next real write reports the store's
                // trouble.
                let _ = db.unchecked_transaction().and_then(|tx| {
                    write_groups(&tx, &groups)?;
                    tx.commit()
                });
            }
            if closed {
                return;
            }
            closing = lock(&self.closing.0);
            if !*closing {
                closing = self
                    .closing
                    .1
                    .wait_timeout(closing, GROUP_DELAY)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
        }
    }
}

/// Writes the process groups of tasks still marked running.
fn write_groups(db: &Connection, groups: &[(String, i32)]) -> rusqlite::Result<()> {
    let mut stmt =
        db.prepare_cached("UPDATE attempt SET pgid = ?2 WHERE task = ?1 AND outcome = 'running'")?;
    for (task, pgid) in groups {
        stmt.execute(params![task, pgid])?;
    }
    Ok(())
}

/// A lock whose holder panicked is still usable: nothing it guards is left half-changed.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    /// The process group as another process (`status`) reads it.
    fn written_group(root: &Path, task: &str) -> Option<i32> {
        let state = State::open_read_only(root).unwrap().unwrap();
        state.attempt(task).unwrap().and_then(|a| a.pgid)
    }

    #[test]
    fn a_process_group_is_written_with_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.begin("a", "log-a").unwrap();
        state.set_pgid("a", 4242).unwrap();
        // This store sees it at once.
        assert_eq!(state.attempt("a").unwrap().unwrap().pgid, Some(4242));
        assert_eq!(state.last("a").unwrap().1.unwrap().pgid, Some(4242));
        // The next task's start writes it (if the flusher has not already).
        state.begin("b", "log-b").unwrap();
        assert_eq!(written_group(dir.path(), "a"), Some(4242));
        // A task's end clears it, also when it was not written yet.
        state.set_pgid("b", 4343).unwrap();
        state.fail("b", Outcome::Failed, Some(1), 5).unwrap();
        assert_eq!(state.attempt("b").unwrap().unwrap().pgid, None);
        assert_eq!(written_group(dir.path(), "b"), None);
        state.succeed("a", &success(), None, None).unwrap();
        assert_eq!(written_group(dir.path(), "a"), None);
        assert!(lock(&state.shared.groups).is_empty());
    }

    #[test]
    fn a_long_running_tasks_process_group_is_written_by_the_flusher() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.begin("slow", "log").unwrap();
        state.set_pgid("slow", 4242).unwrap();
        // Nothing else writes: the flusher must, within GROUP_DELAY (with room for a busy
        // machine).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while written_group(dir.path(), "slow") != Some(4242) {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            state.running().unwrap(),
            vec![("slow".to_string(), Some(4242))]
        );
    }

    #[test]
    fn closing_the_store_writes_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.begin("a", "log").unwrap();
        state.set_pgid("a", 4242).unwrap();
        // A retry's new start replaces the old group: only the newest one counts.
        state.begin("a", "log").unwrap();
        state.set_pgid("a", 4343).unwrap();
        drop(state);
        assert_eq!(written_group(dir.path(), "a"), Some(4343));
    }

    #[test]
    fn last_reads_what_success_and_attempt_read() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let (success_, attempt) = state.last("a").unwrap();
        assert!(success_.is_none() && attempt.is_none());
        state.begin("a", "log-a").unwrap();
        let (success_, attempt) = state.last("a").unwrap();
        assert!(success_.is_none());
        assert_eq!(attempt, state.attempt("a").unwrap());
        assert_eq!(attempt.unwrap().outcome, Outcome::Running);
        state.succeed("a", &success(), None, None).unwrap();
        let (got, attempt) = state.last("a").unwrap();
        let expected = state.success("a").unwrap().unwrap();
        let got = got.unwrap();
        assert_eq!(
            (
                got.record,
                got.fingerprint,
                got.identity,
                got.finished_at_ms,
                got.duration_ms
            ),
            (
                expected.record,
                expected.fingerprint,
                expected.identity,
                expected.finished_at_ms,
                expected.duration_ms
            )
        );
        assert_eq!(attempt, state.attempt("a").unwrap());
        // A record of another version reads as no success, as `success` does.
        state
            .db()
            .execute("UPDATE success SET record = x'ff00' WHERE task = 'a'", [])
            .unwrap();
        assert!(state.success("a").unwrap().is_none());
        assert!(state.last("a").unwrap().0.is_none());
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
