//! The commands that read or change recorded state: `run`, `plan`, `why`, `status`,
//! `forget`. Each opens the store, decides through `plan`, and renders through `report`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{EXIT_INVALID, Output};
use crate::graph::TaskId;
use crate::load::{self, Project};
use crate::lock;
use crate::plan::{self, Context, Verdict};
use crate::report;
use crate::runner::{GroupStopper, TaskRunner};
use crate::state::State;
use crate::work::{self, Interrupts, Options, Runner as _};

/// Exit code: a task failed or timed out (SPEC §5).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: interrupted by Ctrl-C or SIGTERM (SPEC §5).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Counts SIGINT and SIGTERM from now on. Children run in their own process groups, so a
/// terminal's Ctrl-C reaches only devgraph, which then stops them (SPEC §6).
pub(super) fn interrupt_counter() -> &'static AtomicUsize {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            Ok(mut signals) => {
                std::thread::spawn(move || {
                    for _ in signals.forever() {
                        COUNT.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            Err(e) => eprintln!(
                "warning: cannot catch Ctrl-C ({e}); an interrupt will kill devgraph outright"
            ),
        }
    });
    &COUNT
}

/// How many probes `plan`, `why` and `status` run at once.
pub(super) const PROBE_PARALLEL: usize = 8;

/// The targets named on the command line, or `settings.default`.
pub(super) fn targets(
    project: &Project,
    out: &Output,
    names: &[String],
    all_by_default: bool,
) -> Option<Vec<TaskId>> {
    let names: Vec<String> = match (names.is_empty(), &project.settings.default) {
        (false, _) => names.to_vec(),
        (true, _) if all_by_default => return Some(project.graph.ids().collect()),
        (true, Some(default)) => vec![default.clone()],
        (true, None) => {
            eprintln!("error: no target given and no `settings.default` in tasks.toml");
            eprintln!(
                "  help: name a task (`devgraph list` shows them), or set `default` in [settings]"
            );
            return None;
        }
    };
    match load::resolve_targets(&project.graph, &names) {
        Ok(ids) => Some(ids),
        Err(errors) => {
            out.diagnostics(&errors);
            None
        }
    }
}

pub(super) fn context<'a>(project: &'a Project, state: Option<&'a State>) -> Option<Context<'a>> {
    match Context::new(project, state) {
        Ok(ctx) => Some(ctx),
        Err(message) => {
            eprintln!("error: {message}");
            None
        }
    }
}

/// Opens the store read-only; `Err` already reported.
fn read_state(project: &Project, out: &Output) -> Result<Option<State>, ()> {
    State::open_read_only(&project.root).map_err(|e| out.error(&e))
}

/// The files `run` writes after the run: `--timings`, `--trace`.
#[derive(Debug, Default)]
pub struct RunFiles<'a> {
    pub timings: Option<&'a Path>,
    pub trace: Option<&'a Path>,
}

impl RunFiles<'_> {
    fn each(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [("timings", self.timings), ("trace", self.trace)]
            .into_iter()
            .filter_map(|(what, path)| Some((what, path?)))
    }

    /// Refuses, before anything runs, a file whose folder does not exist.
    fn check(&self) -> bool {
        for (what, path) in self.each() {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            if folder.is_some_and(|f| !f.is_dir()) || path.is_dir() {
                eprintln!(
                    "error: cannot write the {what} to {}: {}",
                    path.display(),
                    if path.is_dir() {
                        "it is a directory"
                    } else {
                        "its folder does not exist"
                    }
                );
                return false;
            }
        }
        true
    }

    /// Writes the files of a run that ended; false when one could not be written.
    fn write(&self, graph: &crate::graph::Graph, reports: &[work::Report], quiet: bool) -> bool {
        let entries = report::timeline::entries(graph, reports);
        let mut ok = true;
        for (what, path) in self.each() {
            let text = if what == "timings" {
                report::timeline::html(&entries)
            } else {
                format!("{}\n", report::timeline::trace(&entries))
            };
            match std::fs::write(path, text) {
                Ok(()) if !quiet => eprintln!("devgraph: {what} written to {}", path.display()),
                Ok(()) => {}
                Err(e) => {
                    eprintln!("error: cannot write the {what} to {}: {e}", path.display());
                    ok = false;
                }
            }
        }
        ok
    }
}

/// `devgraph run`.
pub fn run(
    project: &Project,
    out: &Output,
    names: &[String],
    options: &Options,
    no_wait: bool,
    files: &RunFiles,
) -> u8 {
    let Some(targets) = targets(project, out, names, false) else {
        return EXIT_INVALID;
    };
    if !files.check() {
        return EXIT_INVALID;
    }
    let Some((_lock, state)) = take_over(project, out, no_wait) else {
        return EXIT_INVALID;
    };
    let Some(ctx) = context(project, Some(&state)) else {
        return EXIT_INVALID;
    };
    let wanted = work::wanted(&project.graph, &targets, options.only);
    let missing = crate::preflight::check(&ctx, &wanted);
    if !missing.is_empty() {
        eprintln!("{missing}");
        return EXIT_INVALID;
    }
    if options.only {
        for &id in &targets {
            for &dep in project.graph.deps(id) {
                if !targets.contains(&dep) && matches!(ctx.recorded_identity(dep), Ok(None)) {
                    eprintln!(
                        "warning: `{}` has never succeeded; --only runs `{}` without it",
                        project.graph.task(dep).name,
                        project.graph.task(id).name
                    );
                }
            }
        }
    }
    let outcome = execute(
        &ctx,
        &state,
        out,
        &targets,
        options,
        interrupt_counter(),
        files,
    );
    outcome.exit_code()
}

/// What one pass of the scheduler came to.
pub(super) struct Outcome {
    pub reports: Vec<work::Report>,
    pub interrupted: bool,
    pub failed: bool,
    /// `--timings` and `--trace` were written (or not asked for).
    pub written: bool,
}

impl Outcome {
    /// `run`'s exit status (SPEC §5).
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self.failed {
            EXIT_FAILED
        } else if !self.written {
            EXIT_INVALID
        } else {
            0
        }
    }
}

/// Runs `targets` (as `options` say) with the store of `ctx`, showing it as `out` asks
/// (live view, lines or JSON events), then writes the summary or the `run_finished`
/// event. One `run`, or one round of `watch`.
pub(super) fn execute(
    ctx: &Context<'_>,
    state: &State,
    out: &Output,
    targets: &[TaskId],
    options: &Options,
    interrupts: &dyn Interrupts,
    files: &RunFiles,
) -> Outcome {
    let project = ctx.project;
    let wanted = work::wanted(&project.graph, targets, options.only);
    let runner = TaskRunner {
        ctx,
        state,
        interrupts,
    };
    let mut lines = report::run::Lines { quiet: out.quiet };
    let mut json = report::run::JsonLines;
    let mut live = (!out.json && !out.quiet && live_terminal()).then(|| {
        let expected = wanted
            .iter()
            .filter_map(|&id| Some((project.graph.task(id).name.clone(), runner.expected(id)?)))
            .collect();
        report::live::Live::new(
            wanted.len(),
            wanted
                .iter()
                .map(|&id| project.graph.task(id).name.as_str()),
            expected,
            out.color.for_stdout(),
        )
    });
    let reporter: &mut dyn work::Reporter = match &mut live {
        Some(live) => live,
        None if out.json => &mut json,
        None => &mut lines,
    };
    if out.json {
        let names: Vec<&str> = targets
            .iter()
            .map(|&id| project.graph.task(id).name.as_str())
            .collect();
        out.stdout(&format!(
            "{}\n",
            serde_json::json!({ "event": "run_started", "targets": names })
        ));
    }
    let recorded = |id| ctx.recorded_identity(id).ok().flatten();
    let reports = work::run(
        &project.graph,
        targets,
        options,
        &runner,
        reporter,
        interrupts,
        &GroupStopper,
        &recorded,
    );
    if let Some(live) = &mut live {
        live.finish();
    }
    let written = files.write(&project.graph, &reports, out.quiet);
    let interrupted = interrupts.count() > 0;
    let failed = reports.iter().any(|r| r.result.is_failure());
    if out.json {
        let tasks: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": project.graph.task(r.id).name,
                    "result": r.result,
                    "causes": r.causes,
                    "duration_ms": r.duration.as_millis() as u64,
                })
            })
            .collect();
        let event = serde_json::json!({ "event": "run_finished", "ok": !failed && !interrupted, "tasks": tasks });
        out.stdout(&format!("{event}\n"));
    } else if !out.quiet || failed {
        out.stdout(&format!(
            "\n{}",
            report::run::summary(&project.graph, &reports)
        ));
    }
    Outcome {
        reports,
        interrupted,
        failed,
        written,
    }
}

/// Whether `run` shows the live view: stdout is a terminal that can move its cursor.
fn live_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal() && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
}

/// Takes the project's lock (see `lock.rs`): waits for another run when `wait`, saying
/// who holds it; otherwise reports the holder. `None` when it could not be taken (reported).
fn take_lock(root: &std::path::Path, wait: bool) -> Option<lock::Lock> {
    let waiting = |holder: Option<&lock::Holder>| {
        eprintln!("devgraph: waiting for {} to finish", lock::describe(holder));
    };
    match lock::acquire(root, wait, waiting) {
        Ok(lock) => Some(lock),
        Err(lock::LockError::Held(holder)) => {
            eprintln!(
                "error: another devgraph is running in this project: {}",
                lock::describe(holder.as_ref())
            );
            eprintln!("  help: wait for it to finish, or leave out --no-wait to wait for it");
            None
        }
        Err(lock::LockError::Io(e)) => {
            eprintln!(
                "error: cannot take the lock {}/lock: {e}",
                crate::state::DIR
            );
            None
        }
    }
}

/// What `run` and `watch` do before anything else: take the lock (waiting unless
/// `no_wait`), open the store, and stop what a killed run left running. `None` when one of
/// them failed (reported).
pub(super) fn take_over(
    project: &Project,
    out: &Output,
    no_wait: bool,
) -> Option<(lock::Lock, State)> {
    let lock = take_lock(&project.root, !no_wait)?;
    let state = State::open(&project.root).map_err(|e| out.error(&e)).ok()?;
    stop_leftovers(&state, &project.root)
        .map_err(|e| out.error(&e))
        .ok()?;
    Some((lock, state))
}

/// Stops the process groups a killed run left behind (SPEC §6) and records those tasks as
/// interrupted. Called with the lock held, so no other run owns them. A group is found by
/// the environment of its processes (see `process::task_groups`), which covers a run killed
/// before it could record the group; the recorded group is one of those found.
fn stop_leftovers(state: &State, root: &std::path::Path) -> Result<(), crate::state::StateError> {
    for (task, _recorded) in state.running()? {
        for pgid in crate::process::task_groups(&task, root) {
            eprintln!(
                "devgraph: stopping `{task}` (process group {pgid}), left running by a devgraph that was killed"
            );
            crate::process::stop_group(pgid, crate::runner::STOP_GRACE);
        }
        state.fail(&task, crate::state::Outcome::Interrupted, None, 0)?;
    }
    Ok(())
}

/// For commands that run probes but no task: Ctrl-C (or SIGTERM) kills the probes running
/// and exits 130 at once, leaving no probe behind.
fn exit_on_interrupt() {
    let count = interrupt_counter();
    std::thread::spawn(move || {
        while count.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        crate::probe::stop_all();
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
}

/// What `plan`, `why` and `status` share: open the store read-only, decide `ids` without
/// running anything but probes, and hand the decisions to `show`.
fn with_decisions(
    project: &Project,
    out: &Output,
    ids: &[TaskId],
    forced: &HashSet<TaskId>,
    show: impl FnOnce(&Context<'_>, Option<&State>, &[plan::Decision]) -> u8,
) -> u8 {
    let Ok(state) = read_state(project, out) else {
        return EXIT_INVALID;
    };
    let Some(ctx) = context(project, state.as_ref()) else {
        return EXIT_INVALID;
    };
    exit_on_interrupt();
    let decided = plan::decide_all(&ctx, ids, forced, PROBE_PARALLEL);
    // Probes killed by Ctrl-C decided nothing: show nothing.
    if interrupt_counter().load(Ordering::SeqCst) > 0 {
        return EXIT_INTERRUPTED;
    }
    match decided {
        Ok(decisions) => show(&ctx, state.as_ref(), &decisions),
        Err(e) => {
            out.error(&e);
            EXIT_INVALID
        }
    }
}

/// `devgraph plan` (and `run --dry-run`).
pub fn plan(
    project: &Project,
    out: &Output,
    names: &[String],
    exit_code: bool,
    options: &Options,
) -> u8 {
    let Some(targets) = targets(project, out, names, false) else {
        return EXIT_INVALID;
    };
    let ids = work::wanted(&project.graph, &targets, options.only);
    let forced: HashSet<TaskId> = if options.force_all {
        ids.iter().copied().collect()
    } else if options.force {
        targets.iter().copied().collect()
    } else {
        HashSet::new()
    };
    with_decisions(project, out, &ids, &forced, |_, _, decisions| {
        if out.json {
            out.stdout(&format!(
                "{}\n",
                report::plan::plan_json(&project.graph, decisions)
            ));
        } else {
            out.stdout(&report::plan::plan(&project.graph, decisions));
        }
        let anything = decisions.iter().any(|d| d.verdict != Verdict::UpToDate);
        if exit_code && anything {
            EXIT_INVALID
        } else {
            0
        }
    })
}

/// `devgraph graph --drift`: the graph of `tasks`, each filled by its `plan` verdict.
pub fn graph_with_drift(
    project: &Project,
    out: &Output,
    tasks: &[TaskId],
    format: report::graph::Format,
) -> u8 {
    // Decided deps first, as `plan` does; drawn in the order asked.
    let ids = project.graph.closure(tasks);
    with_decisions(project, out, &ids, &HashSet::new(), |_, _, decisions| {
        let drift: report::graph::Drift = decisions.iter().map(|d| (d.id, d.verdict)).collect();
        out.stdout(&report::graph::render(project, tasks, format, Some(&drift)))
    })
}

/// `devgraph why TASK`.
pub fn why(project: &Project, out: &Output, task: &str) -> u8 {
    let Some(targets) = targets(project, out, &[task.to_string()], false) else {
        return EXIT_INVALID;
    };
    let ids = project.graph.closure(&targets);
    with_decisions(
        project,
        out,
        &ids,
        &HashSet::new(),
        |ctx, state, decisions| {
            let why = report::why::Why {
                ctx,
                state,
                decisions,
            };
            for &id in &targets {
                match if out.json {
                    why.json(id)
                } else {
                    why.render(id)
                } {
                    Ok(text) => {
                        out.stdout(&text);
                    }
                    Err(e) => {
                        out.error(&e);
                        return EXIT_INVALID;
                    }
                }
            }
            0
        },
    )
}

/// `devgraph status`.
pub fn status(project: &Project, out: &Output, names: &[String]) -> u8 {
    let Some(targets) = targets(project, out, names, true) else {
        return EXIT_INVALID;
    };
    let ids = project.graph.closure(&targets);
    with_decisions(
        project,
        out,
        &ids,
        &HashSet::new(),
        |_, state, decisions| {
            let graph = &project.graph;
            let width = decisions
                .iter()
                .map(|d| graph.task(d.id).name.len())
                .max()
                .unwrap_or(0);
            let mut text = String::new();
            let mut json = Vec::new();
            for d in decisions.iter().filter(|d| targets.contains(&d.id)) {
                let name = &graph.task(d.id).name;
                let (success, attempt) = match state {
                    Some(s) => match (s.success(name), s.attempt(name)) {
                        (Ok(a), Ok(b)) => (a, b),
                        (Err(e), _) | (_, Err(e)) => {
                            out.error(&e);
                            return EXIT_INVALID;
                        }
                    },
                    None => (None, None),
                };
                let (word, detail) =
                    report::plan::status_line(d, success.as_ref(), attempt.as_ref());
                json.push(serde_json::json!({
                    "name": name,
                    "status": word,
                    "detail": detail,
                    "last_success_ms": success.as_ref().map(|s| s.finished_at_ms),
                    "duration_ms": success.as_ref().map(|s| s.duration_ms),
                }));
                let line = format!("{name:width$}  {word:11}  {detail}");
                text.push_str(line.trim_end());
                text.push('\n');
            }
            if out.json {
                out.stdout(&format!("{}\n", serde_json::Value::Array(json)))
            } else {
                out.stdout(&text)
            }
        },
    )
}

/// `devgraph log TASK`: the last log, or with `--list` every kept one.
pub fn log(project: &Project, out: &Output, task: &str, list: bool) -> u8 {
    let Some(ids) = targets(project, out, &[task.to_string()], false) else {
        return EXIT_INVALID;
    };
    let name = &project.graph.task(ids[0]).name;
    if project.graph.task(ids[0]).is_group() {
        if !out.quiet {
            eprintln!("devgraph: `{name}` is a group: it runs no command, so it has no log");
        }
        return 0;
    }
    let logs = crate::log::list(&project.root, name);
    let relative = |p: &std::path::Path| {
        p.strip_prefix(&project.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    if list {
        let text: String = logs.iter().map(|p| format!("{}\n", relative(p))).collect();
        return out.stdout(&text);
    }
    // The last attempt's log, as recorded: a quiet run writes no file, and then an older
    // file would be the wrong answer.
    let recorded = State::open_read_only(&project.root)
        .ok()
        .flatten()
        .and_then(|state| state.attempt(name).ok().flatten())
        .and_then(|attempt| attempt.log)
        .filter(|log| !log.is_empty());
    let last = match recorded {
        Some(log) => project.root.join(log),
        None => match logs.last() {
            Some(last) => last.clone(),
            None => {
                eprintln!("error: `{name}` has no log yet: it has not run in this project");
                return EXIT_INVALID;
            }
        },
    };
    if !last.exists() {
        if !out.quiet {
            eprintln!("devgraph: the last run of `{name}` printed nothing");
        }
        return 0;
    }
    let last = &last;
    match std::fs::read(last) {
        Ok(bytes) => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&bytes);
            0
        }
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", relative(last));
            EXIT_INVALID
        }
    }
}

/// `devgraph forget TASK...`.
pub fn forget(project: &Project, out: &Output, names: &[String]) -> u8 {
    let Some(ids) = targets(project, out, names, false) else {
        return EXIT_INVALID;
    };
    match read_state(project, out) {
        Err(()) => return EXIT_INVALID,
        Ok(None) => {
            if !out.quiet {
                println!("nothing recorded yet");
            }
            return 0;
        }
        Ok(Some(_)) => {}
    }
    let state = match State::open(&project.root) {
        Ok(s) => s,
        Err(e) => {
            out.error(&e);
            return EXIT_INVALID;
        }
    };
    // Never change the store under a running `run`.
    let Some(_lock) = take_lock(&project.root, true) else {
        return EXIT_INVALID;
    };
    let names: Vec<&str> = ids
        .iter()
        .map(|&id| project.graph.task(id).name.as_str())
        .collect();
    match state.forget(&names) {
        Ok(n) => {
            if !out.quiet {
                println!("forgot {}", report::count(n, "task"));
            }
            0
        }
        Err(e) => {
            out.error(&e);
            EXIT_INVALID
        }
    }
}

/// `devgraph forget --all`: deletes the store without opening it, so it also works when
/// the store is damaged or from a newer devgraph.
pub fn forget_all(root: &std::path::Path, out: &Output) -> u8 {
    let _lock = match take_lock(root, false) {
        Some(lock) => lock,
        None => return EXIT_INVALID,
    };
    match State::destroy(root) {
        Ok(()) => {
            if !out.quiet {
                println!("forgot everything: every task will run again");
            }
            0
        }
        Err(e) => {
            out.error(&e);
            EXIT_INVALID
        }
    }
}
