//! What devgraph prints: task lists, graph renderings and diagnostics summaries. Nothing
//! here decides anything; it renders data the engine produced.

pub mod cause;
pub mod graph;
pub mod list;
pub mod live;
pub mod plan;
pub mod run;
pub mod timeline;
pub mod why;

use std::io::IsTerminal;

/// `--color`: whether output may use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is not set.
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour what goes to stderr (diagnostics).
    pub fn for_stderr(self) -> bool {
        self.resolve(std::io::stderr().is_terminal())
    }

    /// Whether to colour what goes to stdout.
    pub fn for_stdout(self) -> bool {
        self.resolve(std::io::stdout().is_terminal())
    }

    fn resolve(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// "1 error", "2 warnings".
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Wraps text in a bold style when colour is on.
pub fn bold(text: &str, color: bool) -> String {
    if color {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Wraps text in a dim style when colour is on.
pub fn dim(text: &str, color: bool) -> String {
    if color {
        format!("\x1b[2m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
