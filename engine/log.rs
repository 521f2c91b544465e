//! Task logs: `.devgraph/logs/<task>/<time>.log`, mode 0600, the last few kept per task.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::state::DIR;

/// How many logs are kept per task.
pub const KEEP: usize = 10;

/// A task name as a folder name: `/` (allowed in task names) would nest folders.
fn folder(task: &str) -> String {
    task.replace('%', "%25").replace('/', "%2F")
}

/// The folder of a task's logs, under the project root.
pub fn dir(root: &Path, task: &str) -> PathBuf {
    root.join(DIR).join("logs").join(folder(task))
}

/// The log of one attempt. The file (and the task's log folder) is created on the first
/// line written, so a task that prints nothing costs no inode: on a graph of thousands of
/// quiet tasks, creating them dominated the run. A failure always writes a closing line, so
/// a failed attempt always has a log to point at.
pub struct TaskLog {
    dir: PathBuf,
    name: String,
    /// Root-relative path, known before the file exists (it is recorded with the attempt).
    pub path: String,
    file: Option<std::io::Result<File>>,
}

impl TaskLog {
    /// The log of a new attempt of `task`; nothing is written yet.
    pub fn new(root: &Path, task: &str) -> Self {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%S%.3fZ")
            .to_string();
        let name = format!("{stamp}.log");
        let path = Path::new(DIR).join("logs").join(folder(task)).join(&name);
        TaskLog {
            dir: dir(root, task),
            name,
            path: path.display().to_string(),
            file: None,
        }
    }

    /// Appends one line; a full disk or an unwritable folder loses the line, never the task.
    pub fn line(&mut self, text: &str) {
        let file = self.file.get_or_insert_with(|| {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)?;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(self.dir.join(&self.name))?;
            prune(&self.dir);
            Ok(file)
        });
        if let Ok(file) = file {
            let _ = writeln!(file, "{text}");
        }
    }
}

/// Every log of a task, oldest first.
pub fn list(root: &Path, task: &str) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir(root, task))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

fn prune(dir: &Path) {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.sort();
    let excess = logs.len().saturating_sub(KEEP);
    for old in &logs[..excess] {
        let _ = std::fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_created_on_the_first_line_private_and_rotated() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let quiet = TaskLog::new(dir.path(), "quiet");
        assert!(quiet.path.starts_with(".devgraph/logs/quiet/"));
        assert!(
            !dir.path().join(".devgraph").exists(),
            "nothing written, nothing created"
        );
        for _ in 0..(KEEP + 3) {
            let mut log = TaskLog::new(dir.path(), "image:a/b");
            assert!(
                log.path.starts_with(".devgraph/logs/image:a%2Fb/"),
                "{}",
                log.path
            );
            log.line("hello");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let logs = list(dir.path(), "image:a/b");
        assert_eq!(logs.len(), KEEP);
        let mode = std::fs::metadata(&logs[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&logs[KEEP - 1]).unwrap(), "hello\n");
    }
}
