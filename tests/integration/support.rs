//! A small harness in the style of a shell session: write files into a temp project, run
//! the real `devgraph`, compare exit code, stdout and stderr exactly.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

/// One invocation of devgraph in a fresh temp project.
pub struct Test {
    dir: TempDir,
    cwd: PathBuf,
    args: Vec<String>,
}

/// What a run printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Test {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("devgraph-test")
            .tempdir()
            .expect("temp dir");
        let cwd = dir.path().to_path_buf();
        Test {
            dir,
            cwd,
            args: Vec::new(),
        }
    }

    /// Writes the root `tasks.toml`.
    pub fn tasks(self, text: &str) -> Self {
        self.write("tasks.toml", text)
    }

    /// Writes a file relative to the project root, creating its folders.
    pub fn write(self, path: &str, text: &str) -> Self {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
        self
    }

    /// Runs devgraph from this folder (relative to the root) instead of the root.
    pub fn current_dir(mut self, relative: &str) -> Self {
        self.cwd = self.dir.path().join(relative);
        std::fs::create_dir_all(&self.cwd).expect("mkdir cwd");
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Runs devgraph and returns what it printed.
    pub fn output(&self) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_devgraph"))
            .args(&self.args)
            .current_dir(&self.cwd)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .env("COLUMNS", "100")
            .output()
            .expect("run devgraph");
        // Temp paths differ per run: show the project root as `[ROOT]`.
        let root = self.dir.path().display().to_string();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&root, "[ROOT]");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    /// Runs devgraph and asserts the exit code and both streams exactly.
    #[track_caller]
    pub fn expect(&self, code: i32, stdout: &str, stderr: &str) -> Output {
        let out = self.output();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (code, stdout, stderr),
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.stdout,
            out.stderr
        );
        out
    }

    /// Runs devgraph, asserts exit 0 and an empty stderr, and returns the output.
    #[track_caller]
    pub fn expect_success(&self) -> Output {
        let out = self.output();
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (0, ""),
            "\n--- stdout ---\n{}",
            out.stdout
        );
        out
    }
}
