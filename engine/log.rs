//! Task logs: `.devgraph/logs/<task>/<time>.log`, mode 0600, the last few kept per task.

use std::fs::File;
use std::io::Write;
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

/// A new log file for a task: its root-relative path and the open file. Older logs beyond
/// [`KEEP`] are removed.
pub fn create(root: &Path, task: &str) -> std::io::Result<(String, File)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = dir(root, task);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%S%.3fZ")
        .to_string();
    let name = format!("{stamp}.log");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(&name))?;
    prune(&dir);
    let relative = Path::new(DIR).join("logs").join(folder(task)).join(name);
    Ok((relative.display().to_string(), file))
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

/// Writes one line to a log, ignoring a full disk: a lost log line must not fail the task.
pub fn line(file: &mut File, text: &str) {
    let _ = writeln!(file, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_private_and_rotated() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..(KEEP + 3) {
            let (path, _) = create(dir.path(), "image:a/b").unwrap();
            assert!(path.starts_with(".devgraph/logs/image:a%2Fb/"), "{path}");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let logs = list(dir.path(), "image:a/b");
        assert_eq!(logs.len(), KEEP);
        let mode = std::fs::metadata(&logs[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
