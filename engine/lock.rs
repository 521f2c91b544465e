//! One `run` at a time per project: an exclusive `flock` on `.devgraph/lock`, which also
//! says who holds it. The kernel releases a flock when its holder dies, so a lock left by a
//! killed devgraph is simply taken over. `plan`, `why` and `status` never take it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use crate::state::DIR;

/// Who holds the lock, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
    pub since_ms: i64,
}

/// The held lock; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Held by another process, and the caller did not want to wait.
    Held(Option<Holder>),
    Io(std::io::Error),
}

/// Takes the project's lock. When another process holds it: with `wait`, calls `waiting`
/// with the holder and blocks until it is free; without, returns [`LockError::Held`].
pub fn acquire(
    root: &Path,
    wait: bool,
    waiting: impl FnOnce(Option<&Holder>),
) -> Result<Lock, LockError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = root.join(DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(LockError::Io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join("lock"))
        .map_err(LockError::Io)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let holder = read_holder(&mut file);
        if !wait {
            return Err(LockError::Held(holder));
        }
        waiting(holder.as_ref());
        flock(&file, FlockOperation::LockExclusive).map_err(|e| LockError::Io(e.into()))?;
    }
    let command: Vec<String> = std::env::args().collect();
    let text = format!(
        "{}\n{}\n{}\n",
        std::process::id(),
        crate::state::now_ms(),
        command.join(" ")
    );
    file.set_len(0).map_err(LockError::Io)?;
    file.rewind().map_err(LockError::Io)?;
    file.write_all(text.as_bytes()).map_err(LockError::Io)?;
    Ok(Lock { _file: file })
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    let mut lines = text.lines();
    Some(Holder {
        pid: lines.next()?.parse().ok()?,
        since_ms: lines.next()?.parse().ok()?,
        command: lines.next().unwrap_or_default().to_string(),
    })
}

/// "pid 4242 (`devgraph run up`, since 21:30)".
pub fn describe(holder: Option<&Holder>) -> String {
    match holder {
        Some(h) => {
            let since = jiff::Timestamp::from_millisecond(h.since_ms)
                .map(|t| {
                    t.to_zoned(jiff::tz::TimeZone::system())
                        .strftime("%H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            format!("pid {} (`{}`, since {since})", h.pid, h.command)
        }
        None => "another process".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), false, |_| {}).unwrap();
        // flock locks belong to open file descriptions: a second open in this process
        // contends like another process would.
        match acquire(dir.path(), false, |_| {}) {
            Err(LockError::Held(Some(holder))) => assert_eq!(holder.pid, std::process::id()),
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        drop(held);
        assert!(acquire(dir.path(), false, |_| {}).is_ok());
    }
}
