//! A small harness in the style of a shell session: write files into a temp project, run
//! the real `devgraph`, compare exit code, stdout and stderr exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// One temp project, and devgraph invocations in it.
pub struct Test {
    dir: TempDir,
    /// Holds the per-user devgraph key (`XDG_DATA_HOME`), outside the project.
    data: TempDir,
    cwd: PathBuf,
    args: Vec<String>,
    env: Vec<(String, Option<String>)>,
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
        let temp = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("temp dir")
        };
        let dir = temp("devgraph-test");
        let cwd = dir.path().to_path_buf();
        Test {
            dir,
            data: temp("devgraph-data"),
            cwd,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the root `tasks.toml`.
    pub fn tasks(self, text: &str) -> Self {
        self.write("tasks.toml", text)
    }

    /// Writes a file relative to the project root, creating its folders.
    pub fn write(self, path: &str, text: &str) -> Self {
        self.put(path, text);
        self
    }

    /// Writes a file relative to the project root, between runs.
    pub fn put(&self, path: &str, text: &str) {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
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

    /// Sets an environment variable for every following run.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable for every following run.
    pub fn env_remove(mut self, name: &str) -> Self {
        self.env.push((name.into(), None));
        self
    }

    /// The command that runs devgraph with `args` in this project (for tests that need the
    /// process itself, e.g. to signal or kill it).
    pub fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_devgraph"));
        cmd.args(args)
            .current_dir(&self.cwd)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .env("COLUMNS", "100")
            .env("XDG_DATA_HOME", self.data.path());
        for (name, value) in &self.env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        cmd
    }

    /// Runs devgraph with these args (not the builder's) and returns what it printed: for
    /// tests that run several commands in one project.
    pub fn run(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.finish(self.command(&args).output().expect("run devgraph"))
    }

    /// Runs devgraph with the builder's args and returns what it printed.
    pub fn output(&self) -> Output {
        self.finish(self.command(&self.args).output().expect("run devgraph"))
    }

    fn finish(&self, out: std::process::Output) -> Output {
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

impl Output {
    /// Asserts the exit code and both streams exactly, after [`Output::normalized`].
    #[track_caller]
    pub fn assert(&self, code: i32, stdout: &str, stderr: &str) -> &Self {
        let (c, out, err) = self.normalized();
        assert_eq!(
            (c, out.as_str(), err.as_str()),
            (code, stdout, stderr),
            "\n--- stdout (normalized) ---\n{out}\n--- stderr (normalized) ---\n{err}"
        );
        self
    }

    /// The output with what differs between runs replaced: durations (`13ms`, `1.2s`) by
    /// `[TIME]` (and the spaces before one by a single space, so padded columns compare),
    /// local dates (`2026-11-22 21:13`) by `[DATE]`, "just now"/"3m ago" by `[AGO]`, and log
    /// file names by `[LOG]`.
    pub fn normalized(&self) -> (i32, String, String) {
        (self.code, normalize(&self.stdout), normalize(&self.stderr))
    }
}

/// See [`Output::normalized`].
pub fn normalize(text: &str) -> String {
    use regex::Regex;
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        vec![
            (Regex::new(r"\d{8}T\d{6}\.\d{3}Z\.log").unwrap(), "[LOG]"),
            (Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d").unwrap(), "[DATE]"),
            (Regex::new(r"just now|\d+[smhd] ago").unwrap(), "[AGO]"),
            // A right-aligned time column pads by the number of digits: one space stays.
            (Regex::new(r" +\d+(\.\d)?(ms|s)\b").unwrap(), " [TIME]"),
            (Regex::new(r"\b\d+(\.\d)?(ms|s)\b").unwrap(), "[TIME]"),
        ]
    });
    let mut text = text.to_string();
    for (re, with) in rules {
        text = re.replace_all(&text, *with).into_owned();
    }
    text
}
