//! The command line: clap types and dispatch to the engine. No engine logic lives here.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::error::{LoadError, Renderer, to_json};
use crate::load::{self, Loaded, Project};
use crate::report::{self, ColorChoice, count};
use crate::work;

mod commands;
mod watch;

/// Exit code: bad usage or invalid files (SPEC §5).
pub const EXIT_INVALID: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  devgraph check                      validate tasks.toml and every included file
  devgraph list --tree                the tasks and what they depend on
  devgraph graph up --format mermaid  the graph below `up`, for a README";

#[derive(Debug, Parser)]
#[command(
    name = "devgraph",
    version,
    about = "A declarative, content-hashed task graph for development environments",
    after_help = EXAMPLES,
)]
struct Cli {
    /// Change to DIR before doing anything.
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    directory: Option<PathBuf>,
    /// Use this root task file instead of finding tasks.toml in the current or a parent directory.
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    file: Option<PathBuf>,
    /// When to use colour.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
    /// Say more about what is happening.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Print only errors (and requested output).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Machine-readable output where the command has it.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate tasks.toml and every included file, reporting every problem at once.
    #[command(after_help = "\
Exit status: 0 when the files are valid (warnings allowed), 2 when any error was found.

Examples:
  devgraph check
  devgraph check --json               diagnostics as JSON, for editors and CI
  devgraph -f other/tasks.toml check")]
    Check,
    /// List the tasks with their descriptions.
    #[command(after_help = "\
Examples:
  devgraph list
  devgraph list --tree                each top-level task with its deps below it
  devgraph list --json")]
    List {
        /// Show deps as an indented tree, from the tasks nothing depends on.
        #[arg(long)]
        tree: bool,
    },
    /// Print the task graph (all of it, or the targets and their transitive deps).
    #[command(after_help = "\
Edges point from a dep to the task that needs it.

Examples:
  devgraph graph | dot -Tsvg > graph.svg
  devgraph graph up --format mermaid
  devgraph graph 'infra:*' --format json
  devgraph graph up --drift | dot -Tsvg > drift.svg   what would run, in colour")]
    Graph {
        /// Task names or globs (`infra:*`); default: every task.
        targets: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = report::graph::Format::Dot)]
        format: report::graph::Format,
        /// Fill each task by what `run` would do with it, as `plan` decides it (probes
        /// run): green up to date, yellow may run, orange will run.
        #[arg(long)]
        drift: bool,
    },
    /// Bring targets up to date: deps first, drifted tasks only.
    #[command(after_help = "\
Targets are task names or globs; default: `settings.default`.
Exit status: 0 when everything is up to date or ran, 1 when a task failed or timed out,
2 for invalid files or usage.

Examples:
  devgraph run                        bring `settings.default` up to date
  devgraph run infra:24               layer 24 and what it needs, nothing else
  devgraph run 'image:*' --force      rebuild every image even if up to date
  devgraph run smoke --only           just `smoke`, not its deps
  devgraph run --timings run.html     also draw the run on a time axis, critical path marked
  devgraph run --trace run.json       also write a trace for chrome://tracing or Perfetto")]
    Run {
        /// Task names or globs (`infra:*`); default: `settings.default`.
        targets: Vec<String>,
        /// Re-run the named targets even if they are up to date.
        #[arg(long)]
        force: bool,
        /// Re-run every task the targets need.
        #[arg(long)]
        force_all: bool,
        /// Run the targets without their deps (warns when a dep has never succeeded).
        #[arg(long)]
        only: bool,
        /// After a failure, keep running everything that does not depend on it.
        #[arg(short = 'k', long)]
        keep_going: bool,
        /// Show what would run, as `plan` does, and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// How many tasks run at once (default: `settings.jobs`, else the number of CPUs).
        #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// If another run holds the project's lock, exit 2 instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// After the run, write a timeline of it to FILE: a self-contained HTML page with a
        /// bar per task and the critical path marked (also when a task failed).
        #[arg(long, value_name = "FILE.html")]
        timings: Option<PathBuf>,
        /// After the run, write it to FILE in Chrome's trace event format, for
        /// chrome://tracing or ui.perfetto.dev (also when a task failed).
        #[arg(long, value_name = "FILE.json")]
        trace: Option<PathBuf>,
    },
    /// Bring targets up to date, then keep them there: re-run the drifted part whenever
    /// an input file changes (and, with --probe-interval, when a probe drifts).
    #[command(after_help = "\
Changes are batched: a window opens at the first change that matters and the round starts
when it closes (--debounce). A task whose inputs change while it runs is stopped and started
again. Editing tasks.toml reloads the graph; an invalid edit is reported and the last valid
graph stays. Ctrl-C stops running tasks as `run` does (exit 130).

Examples:
  devgraph watch                      keep `settings.default` up to date
  devgraph watch infra:40             layer 40 and what it needs
  devgraph watch --probe-interval 30s also heal a deleted registry or a stopped cluster
  devgraph watch --json               NDJSON events, one round after another")]
    Watch {
        /// Task names or globs (`infra:*`); default: `settings.default`.
        targets: Vec<String>,
        /// After a failure, keep running everything that does not depend on it.
        #[arg(short = 'k', long)]
        keep_going: bool,
        /// How many tasks run at once (default: `settings.jobs`, else the number of CPUs).
        #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// How long to collect changes after the first one before a round starts.
        #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
        debounce: std::time::Duration,
        /// Also run the targets' probes this often, to notice the world drifting
        /// (a deleted container, a stopped cluster); failing probes back off.
        #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
        probe_interval: Option<std::time::Duration>,
        /// If another run holds the project's lock, exit 2 instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show what `run` would do and why, running no task (probes do run).
    #[command(after_help = "\
Examples:
  devgraph plan
  devgraph plan infra:40 --exit-code  exit 2 when anything would run (for CI)
  devgraph plan --json")]
    Plan {
        /// Task names or globs; default: `settings.default`.
        targets: Vec<String>,
        /// Exit 2 when anything would run.
        #[arg(long)]
        exit_code: bool,
    },
    /// Explain why a task is drifted, down to the diff of a changed file, or since when it is up to date.
    #[command(after_help = "\
Examples:
  devgraph why registry
  devgraph why infra:40 --json")]
    Why {
        /// The task to explain.
        task: String,
    },
    /// One line per task: up to date, drifted, never run, failed.
    #[command(after_help = "\
Examples:
  devgraph status
  devgraph status 'image:*'
  devgraph status --json")]
    Status {
        /// Task names or globs; default: every task.
        targets: Vec<String>,
    },
    /// Print the log of a task's last run.
    #[command(after_help = "\
Logs live in .devgraph/logs/<task>/ (mode 0600); the last 10 runs of each task are kept.

Examples:
  devgraph log infra:40
  devgraph log infra:40 --list        every kept log, oldest first")]
    Log {
        /// The task.
        task: String,
        /// List the kept logs instead of printing the last one.
        #[arg(long)]
        list: bool,
    },
    /// Drop recorded state so tasks drift and run again.
    #[command(after_help = "\
Examples:
  devgraph forget cluster             the next run recreates the cluster
  devgraph forget --all               start afresh; also the way out of a damaged store")]
    Forget {
        /// Tasks (names or globs) to forget.
        #[arg(required_unless_present = "all")]
        tasks: Vec<String>,
        /// Forget everything (deletes .devgraph/state.db).
        #[arg(long, conflicts_with = "tasks")]
        all: bool,
    },
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  devgraph completions bash > ~/.local/share/bash-completion/completions/devgraph
  devgraph completions zsh > ~/.zfunc/_devgraph
  devgraph completions fish > ~/.config/fish/completions/devgraph.fish")]
    Completions {
        /// The shell to write completions for.
        shell: clap_complete::Shell,
    },
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(dispatch(cli))
}

fn dispatch(cli: Cli) -> u8 {
    if let Some(dir) = &cli.directory
        && let Err(e) = std::env::set_current_dir(dir)
    {
        eprintln!("error: cannot change to directory {}: {e}", dir.display());
        return EXIT_INVALID;
    }
    let out = Output::new(&cli);
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "devgraph",
                &mut std::io::stdout(),
            );
            0
        }
        Command::Check => check(&cli, &out),
        Command::Run {
            targets,
            force,
            force_all,
            only,
            keep_going,
            dry_run,
            no_wait,
            jobs,
            timings,
            trace,
        } => with_project(&cli, &out, |project| {
            let jobs = jobs_for(*jobs, project);
            let options = work::Options {
                force: *force,
                force_all: *force_all,
                only: *only,
                keep_going: *keep_going,
                jobs,
                began: None,
            };
            if *dry_run {
                commands::plan(project, &out, targets, false, &options)
            } else {
                let files = commands::RunFiles {
                    timings: timings.as_deref(),
                    trace: trace.as_deref(),
                };
                commands::run(project, &out, targets, &options, *no_wait, &files)
            }
        }),
        Command::Watch {
            targets,
            keep_going,
            jobs,
            debounce,
            probe_interval,
            no_wait,
        } => {
            let root_file = match root_file(&cli) {
                Ok(file) => file,
                Err(e) => {
                    out.error(e.as_ref());
                    return EXIT_INVALID;
                }
            };
            let loaded = load::load_path(&root_file);
            out.diagnostics(&loaded.diagnostics);
            let Some(project) = loaded.project else {
                return invalid_files(&loaded);
            };
            let options = watch::WatchOptions {
                run: work::Options {
                    keep_going: *keep_going,
                    jobs: jobs_for(*jobs, &project),
                    ..Default::default()
                },
                debounce: *debounce,
                probe_interval: *probe_interval,
                no_wait: *no_wait,
            };
            watch::watch(&root_file, project, &out, targets, &options)
        }
        Command::Plan { targets, exit_code } => with_project(&cli, &out, |project| {
            commands::plan(
                project,
                &out,
                targets,
                *exit_code,
                &work::Options {
                    jobs: 1,
                    ..Default::default()
                },
            )
        }),
        Command::Why { task } => {
            with_project(&cli, &out, |project| commands::why(project, &out, task))
        }
        Command::Log { task, list } => with_project(&cli, &out, |project| {
            commands::log(project, &out, task, *list)
        }),
        Command::Status { targets } => with_project(&cli, &out, |project| {
            commands::status(project, &out, targets)
        }),
        Command::Forget { tasks, all } => {
            if *all {
                match project_root(&cli) {
                    Ok(root) => commands::forget_all(&root, &out),
                    Err(e) => {
                        out.error(e.as_ref());
                        EXIT_INVALID
                    }
                }
            } else {
                with_project(&cli, &out, |project| commands::forget(project, &out, tasks))
            }
        }
        Command::List { tree } => with_project(&cli, &out, |project| {
            let color = cli.color.for_stdout();
            let text = if cli.json {
                list_json(project)
            } else if *tree {
                report::list::tree(&project.graph, color)
            } else {
                report::list::flat(&project.graph, color)
            };
            out.stdout(&text)
        }),
        Command::Graph {
            targets,
            format,
            drift,
        } => with_project(&cli, &out, |project| {
            let tasks = if targets.is_empty() {
                project.graph.ids().collect()
            } else {
                match load::resolve_targets(&project.graph, targets) {
                    Ok(ids) => {
                        let mut closure = project.graph.closure(&ids);
                        closure.sort();
                        closure
                    }
                    Err(errors) => {
                        out.diagnostics(&errors);
                        return EXIT_INVALID;
                    }
                }
            };
            // `--json` is the global spelling of `--format json`.
            let format = if cli.json {
                report::graph::Format::Json
            } else {
                *format
            };
            if *drift {
                commands::graph_with_drift(project, &out, &tasks, format)
            } else {
                out.stdout(&report::graph::render(project, &tasks, format, None))
            }
        }),
    }
}

/// Where output goes, and how it looks.
pub(crate) struct Output {
    renderer: Renderer,
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    /// `--color`, for what decides per stream (the live view of `run`).
    pub(crate) color: ColorChoice,
}

impl Output {
    fn new(cli: &Cli) -> Self {
        Output {
            renderer: Renderer::new(cli.color.for_stderr()),
            json: cli.json,
            quiet: cli.quiet,
            color: cli.color,
        }
    }

    /// Writes to stdout; a closed pipe (`devgraph list | head`) is not an error.
    pub(crate) fn stdout(&self, text: &str) -> u8 {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush());
        0
    }

    /// Prints diagnostics to stderr; warnings are left out with `--quiet`.
    pub(crate) fn diagnostics(&self, diagnostics: &[LoadError]) {
        let mut stderr = std::io::stderr().lock();
        for d in diagnostics {
            if self.quiet && !d.is_error() {
                continue;
            }
            let _ = writeln!(stderr, "{}", self.renderer.render(d));
        }
    }
}

impl Output {
    /// Prints one diagnostic of any kind to stderr.
    pub(crate) fn error(&self, diagnostic: &dyn miette::Diagnostic) {
        eprintln!("{}", self.renderer.render(diagnostic));
    }
}

/// The root file named by `-f`, or found by walking up from the current directory.
fn root_file(cli: &Cli) -> Result<PathBuf, Box<LoadError>> {
    match &cli.file {
        Some(file) => Ok(file.clone()),
        None => match std::env::current_dir() {
            Ok(dir) => {
                load::find_root_file(&dir).ok_or_else(|| Box::new(LoadError::NotFound { dir }))
            }
            Err(e) => Err(Box::new(LoadError::Io {
                path: PathBuf::from("."),
                message: e.to_string(),
            })),
        },
    }
}

/// The project root, without loading the files (for `forget --all`).
fn project_root(cli: &Cli) -> Result<PathBuf, Box<LoadError>> {
    let file = root_file(cli)?;
    let root = file.parent().filter(|p| !p.as_os_str().is_empty());
    Ok(root.unwrap_or(std::path::Path::new(".")).to_path_buf())
}

fn load_project(cli: &Cli) -> Loaded {
    match root_file(cli) {
        Ok(path) => load::load_path(&path),
        Err(e) => Loaded {
            project: None,
            diagnostics: vec![*e],
            file_count: 0,
        },
    }
}

/// Loads the project and runs `f` on it, or prints why it could not be loaded.
fn with_project(cli: &Cli, out: &Output, f: impl FnOnce(&Project) -> u8) -> u8 {
    let loaded = load_project(cli);
    out.diagnostics(&loaded.diagnostics);
    match &loaded.project {
        Some(project) => f(project),
        None => invalid_files(&loaded),
    }
}

/// The last line when the task files could not be loaded (their diagnostics are printed).
fn invalid_files(loaded: &Loaded) -> u8 {
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    eprintln!(
        "error: the task files have {}; run `devgraph check` for the full report",
        count(errors, "error")
    );
    EXIT_INVALID
}

/// `-j`, else `settings.jobs`, else the number of CPUs.
fn jobs_for(flag: Option<u16>, project: &Project) -> usize {
    flag.map(usize::from)
        .or(project.settings.jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(text)
}

/// A duration between two checks: at least 100 ms (0 would run the probes back to back).
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let interval = parse_duration(text)?;
    if interval < std::time::Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(interval)
}

fn check(cli: &Cli, out: &Output) -> u8 {
    let mut loaded = load_project(cli);
    if let Some(project) = &loaded.project {
        loaded.diagnostics.extend(unmatched_inputs(project));
    }
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    let code = if errors > 0 || loaded.project.is_none() {
        EXIT_INVALID
    } else {
        0
    };
    if out.json {
        let diagnostics: Vec<serde_json::Value> =
            loaded.diagnostics.iter().map(|d| to_json(d)).collect();
        let doc = serde_json::json!({
            "ok": code == 0,
            "files": loaded.file_count,
            "tasks": loaded.project.as_ref().map_or(0, |p| p.graph.len()),
            "errors": errors,
            "warnings": warnings,
            "diagnostics": diagnostics,
        });
        return out.stdout(&format!("{doc}\n")).max(code);
    }
    out.diagnostics(&loaded.diagnostics);
    let files = count(loaded.file_count, "file");
    match &loaded.project {
        Some(project) if code == 0 => {
            if cli.verbose > 0 {
                let mut per_file = vec![0usize; project.files.len()];
                project
                    .graph
                    .ids()
                    .for_each(|id| per_file[project.graph.task(id).origin.file] += 1);
                for (file, n) in project.files.iter().zip(per_file) {
                    eprintln!("read {}: {}", file.name, count(n, "task"));
                }
            }
            if !out.quiet {
                let tail = if warnings > 0 {
                    format!(", {}", count(warnings, "warning"))
                } else {
                    String::new()
                };
                out.stdout(&format!(
                    "ok: {} in {files}{tail}\n",
                    count(project.graph.len(), "task")
                ));
            }
        }
        _ if loaded.file_count == 0 => {}
        _ => {
            let tail = if warnings > 0 {
                format!(" and {}", count(warnings, "warning"))
            } else {
                String::new()
            };
            eprintln!("error: found {}{tail} in {files}", count(errors, "error"));
        }
    }
    code
}

/// Input globs that match no file right now: a warning from `check` only (the other commands
/// do not walk the tree for it). A template's glob is reported once, naming the template's
/// first instance that misses.
fn unmatched_inputs(project: &Project) -> Vec<LoadError> {
    let expander = crate::digest::Expander::new(&project.root);
    let mut seen = std::collections::HashSet::new();
    let mut warnings = Vec::new();
    for id in project.graph.ids() {
        let task = project.graph.task(id);
        // A group's inputs do nothing (and are warned about as such).
        if task.is_group() {
            continue;
        }
        for (glob, at) in task.inputs.iter().zip(&task.inputs_at) {
            let key = (task.origin.file, at.start);
            if glob.starts_with('!') || seen.contains(&key) {
                continue;
            }
            if expander.expand(std::slice::from_ref(glob)).is_empty() {
                seen.insert(key);
                warnings.push(LoadError::InputNoMatch {
                    src: project.files[task.origin.file].src.clone(),
                    span: crate::error::span(at),
                    task: task.name.clone(),
                    glob: glob.clone(),
                });
            }
        }
    }
    warnings
}

fn list_json(project: &Project) -> String {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        name: &'a str,
        desc: Option<&'a str>,
        deps: Vec<&'a str>,
    }
    let graph = &project.graph;
    let tasks: Vec<Entry> = graph
        .ids()
        .map(|id| Entry {
            name: &graph.task(id).name,
            desc: graph.task(id).desc.as_deref(),
            deps: graph
                .deps(id)
                .iter()
                .map(|&d| graph.task(d).name.as_str())
                .collect(),
        })
        .collect();
    let json =
        serde_json::to_string(&tasks).unwrap_or_else(|e| unreachable!("BUG: list JSON: {e}"));
    format!("{json}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
