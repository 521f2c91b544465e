//! `devgraph watch`: bring the targets up to date, then keep them there as files change
//! (batched), the graph is edited (reloaded) and, with `--probe-interval`, the world drifts
//! (probes). What a changed path means is decided in `watch.rs`; the rounds run through the
//! same code as `run`. See "Watch" in docs/design.md.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

use notify::Watcher as _;

use super::commands::{
    EXIT_INTERRUPTED, RunFiles, context, execute, interrupt_counter, take_over, targets,
};
use super::{EXIT_INVALID, Output};
use crate::fingerprint::{Hash, ProbeState};
use crate::graph::TaskId;
use crate::load::Project;
use crate::report::count;
use crate::state::State;
use crate::watch::{Batch, Meaning, Now, ProbeClock, Scope};
use crate::work::{self, Interrupts, Options, Restarts};

/// How `watch` runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub run: Options,
    /// The batch window: from the first relevant change to the round (watchexec's sense).
    pub debounce: Duration,
    /// How often the wanted tasks' probes are checked; never when `None`.
    pub probe_interval: Option<Duration>,
    pub no_wait: bool,
}

/// Ctrl-C as in `run`, plus the restarts the file events ask for.
struct Signals {
    count: &'static AtomicUsize,
    restarts: Restarts,
}

impl Interrupts for Signals {
    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    fn restarts(&self) -> Option<&Restarts> {
        Some(&self.restarts)
    }
}

/// What the loop shares with the thread that reads file events.
struct Shared {
    root: PathBuf,
    batch: Mutex<Batch>,
    arrived: Condvar,
    scope: RwLock<Scope>,
    watcher: Mutex<Kernel>,
}

/// The kernel watches: one per folder, without recursion (so `.gitignore`d trees such as
/// `node_modules/` cost nothing).
struct Kernel {
    watcher: notify::RecommendedWatcher,
    watched: HashSet<PathBuf>,
}

/// Why watching could not start.
enum WatchError {
    /// A kernel limit: the sysctl to raise and its current value.
    Limit {
        sysctl: &'static str,
        current: Option<u64>,
    },
    Other(String),
}

impl WatchError {
    fn from_notify(e: notify::Error, path: Option<&Path>) -> Self {
        let limit = |sysctl| WatchError::Limit {
            sysctl,
            current: std::fs::read_to_string(format!("/proc/sys/{}", sysctl.replace('.', "/")))
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        };
        match &e.kind {
            notify::ErrorKind::MaxFilesWatch => limit("fs.inotify.max_user_watches"),
            notify::ErrorKind::Io(io) if io.raw_os_error() == Some(24) => {
                limit("fs.inotify.max_user_instances")
            }
            _ => WatchError::Other(match path {
                Some(p) => format!("cannot watch {}: {e}", p.display()),
                None => format!("cannot watch files: {e}"),
            }),
        }
    }

    fn print(&self, what: &str) {
        match self {
            WatchError::Limit { sysctl, current } => {
                let now = current.map(|c| format!(" (now {c})")).unwrap_or_default();
                eprintln!(
                    "error: cannot watch {what}: the kernel's limit {sysctl}{now} is reached"
                );
                eprintln!(
                    "  help: raise it: `sudo sysctl {sysctl}=524288`, and put `{sysctl}=524288` in /etc/sysctl.d/ to keep it"
                );
            }
            WatchError::Other(message) => eprintln!("error: {message}"),
        }
    }
}

impl Kernel {
    fn new(tx: mpsc::Sender<notify::Result<notify::Event>>) -> Result<Self, WatchError> {
        let watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .map_err(|e| WatchError::from_notify(e, None))?;
        Ok(Kernel {
            watcher,
            watched: HashSet::new(),
        })
    }

    /// Watches every folder of `scope` below `under` (everywhere when `None`) and returns
    /// the files in them. A folder is listed, watched, then listed again, until a listing
    /// finds no folder that is not watched yet: one made between a listing and its
    /// parent's watch would otherwise never be seen.
    fn cover(
        &mut self,
        scope: &Scope,
        under: Option<&Path>,
    ) -> Result<Vec<PathBuf>, (WatchError, usize)> {
        loop {
            let found = scope.folders(under);
            let total = found.dirs.len();
            let new: Vec<PathBuf> = found
                .dirs
                .into_iter()
                .filter(|d| !self.watched.contains(d))
                .collect();
            if new.is_empty() {
                return Ok(found.files);
            }
            self.add(&new).map_err(|e| (e, total))?;
        }
    }

    /// Whether `path` is a folder watched now (for a path that went: was it a folder?).
    fn is_watched(&self, path: &Path) -> bool {
        self.watched.contains(path)
    }

    /// `path` went (removed, or moved away): so did the watches of it and below it. A
    /// folder that comes back is watched afresh.
    fn forget(&mut self, path: &Path) {
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|w| w.starts_with(path))
            .cloned()
            .collect();
        for dir in gone {
            // A folder moved elsewhere keeps its kernel watch: drop it. (One removed is
            // already gone, and says so.)
            let _ = self.watcher.unwatch(&dir);
            self.watched.remove(&dir);
        }
    }

    /// Watches each folder not watched yet. A folder that vanished in the meantime is
    /// skipped; a kernel limit is an error.
    fn add(&mut self, dirs: &[PathBuf]) -> Result<(), WatchError> {
        for dir in dirs {
            if self.watched.contains(dir) {
                continue;
            }
            match self.watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir.clone());
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => match WatchError::from_notify(e, Some(dir)) {
                    WatchError::Other(message) if !dir.exists() => drop(message),
                    error => return Err(error),
                },
            }
        }
        Ok(())
    }
}

/// The project being watched, with what follows from it.
struct Watched {
    project: Project,
    /// The targets as given on the command line (empty: `settings.default`).
    names: Vec<String>,
    targets: Vec<TaskId>,
    /// The targets and their deps, deps first.
    wanted: Vec<TaskId>,
    files: usize,
}

/// Why a round runs.
enum Trigger {
    Start,
    Files(Batch),
    /// The graph was reloaded after these changes.
    Reloaded(Batch),
    /// These tasks' probes drifted.
    Probes(Vec<String>),
}

/// `devgraph watch`.
pub fn watch(
    root_file: &Path,
    project: Project,
    out: &Output,
    names: &[String],
    options: &WatchOptions,
) -> u8 {
    let Some(first_targets) = targets(&project, out, names, false) else {
        return EXIT_INVALID;
    };
    let Some((_lock, state)) = take_over(&project, out, options.no_wait) else {
        return EXIT_INVALID;
    };
    let signals = Signals {
        count: interrupt_counter(),
        restarts: Restarts::default(),
    };
    let (tx, rx) = mpsc::channel();
    let Ok((mut watched, scope, kernel)) =
        watch_project(project, names.to_vec(), first_targets, &tx)
    else {
        return EXIT_INVALID;
    };
    let shared = Shared {
        root: watched.project.root.clone(),
        batch: Mutex::new(Batch::default()),
        arrived: Condvar::new(),
        scope: RwLock::new(scope),
        watcher: Mutex::new(kernel),
    };
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| read_events(rx, &shared, &signals.restarts, &done));
        let code = rounds(
            root_file,
            &mut watched,
            &state,
            out,
            options,
            &signals,
            &shared,
            &tx,
        );
        done.store(true, Ordering::SeqCst);
        code
    })
}

/// The rounds, until Ctrl-C.
#[allow(clippy::too_many_arguments)]
fn rounds(
    root_file: &Path,
    watched: &mut Watched,
    state: &State,
    out: &Output,
    options: &WatchOptions,
    signals: &Signals,
    shared: &Shared,
    tx: &mpsc::Sender<notify::Result<notify::Event>>,
) -> u8 {
    let mut trigger = Trigger::Start;
    // The tasks to check this round (with their dependents); `None`: every wanted task.
    let mut checked: Option<HashSet<TaskId>> = None;
    // Tasks that did not end up to date in their last round: checked again every round.
    let mut dirty: HashSet<TaskId> = HashSet::new();
    let mut clock = options
        .probe_interval
        .map(|interval| ProbeClock::new(interval, Instant::now()));
    for round in 1.. {
        announce(out, round, &trigger);
        signals.restarts.clear();
        let graph = &watched.project.graph;
        let (round_targets, only) = match &checked {
            None => (watched.targets.clone(), false),
            Some(ids) => (below(graph, &watched.wanted, ids.union(&dirty)), true),
        };
        let began = Instant::now();
        let run_options = Options {
            only,
            began: Some(began),
            ..options.run.clone()
        };
        // A dotenv file that cannot be read (said by `context`) or a missing tool or
        // variable: nothing runs, and the next round tries these tasks again.
        let ctx = context(&watched.project, Some(state));
        let missing = ctx
            .as_ref()
            .map(|ctx| crate::preflight::check(ctx, &work::wanted(graph, &round_targets, only)));
        if let Some(missing) = missing.as_ref().filter(|m| !m.is_empty()) {
            eprintln!("{missing}");
        }
        let ready = ctx.filter(|_| missing.is_some_and(|m| m.is_empty()));
        if let Some(ctx) = ready {
            let outcome = execute(
                &ctx,
                state,
                out,
                &round_targets,
                &run_options,
                signals,
                &RunFiles::default(),
            );
            if outcome.interrupted {
                return EXIT_INTERRUPTED;
            }
            // Changes that arrived during the round and that it already took into account
            // need no round of their own.
            let decided: HashMap<TaskId, (Instant, Instant)> = outcome
                .reports
                .iter()
                .filter(|r| r.result.was_decided())
                .map(|r| (r.id, (began + r.started, began + r.ended)))
                .collect();
            let mut batch = shared.batch.lock().unwrap_or_else(|p| p.into_inner());
            batch.settle(|id| decided.get(&id).copied());
            // A change whose event came in late (after its task was decided, or done) is
            // seen all the same when the task's new success recorded the file as it is.
            // Each record is decoded, and each file hashed, once.
            let records = RefCell::new(HashMap::new());
            let hashes = RefCell::new(HashMap::new());
            batch.settle_by_content(|rel, id| {
                let mut records = records.borrow_mut();
                let record = records.entry(id).or_insert_with(|| {
                    let name = &graph.task(id).name;
                    state.success(name).ok().flatten().map(|s| s.record)
                });
                let now = *hashes
                    .borrow_mut()
                    .entry(rel.to_path_buf())
                    .or_insert_with(|| {
                        crate::digest::hash_file(&watched.project.root.join(rel)).ok()
                    });
                record
                    .as_ref()
                    .is_some_and(|record| recorded_as_now(record, rel, now))
            });
            drop(batch);
            for report in &outcome.reports {
                if report.result.succeeded() {
                    dirty.remove(&report.id);
                } else {
                    dirty.insert(report.id);
                }
            }
            if let (Some(clock), Trigger::Probes(names)) = (&mut clock, &trigger) {
                settle_probes(clock, names, &outcome.reports, graph, out);
            }
        } else {
            dirty.extend(round_targets.iter().copied());
        }
        status(out, watched);
        // Wait for the next reason to run.
        loop {
            match wait(shared, signals, options.debounce, clock.as_ref()) {
                Wake::Interrupted => return EXIT_INTERRUPTED,
                Wake::Batch(batch) if batch.project => {
                    match reload(root_file, watched, out, shared, tx) {
                        Ok(()) => {
                            dirty.clear();
                            checked = None;
                            trigger = Trigger::Reloaded(batch);
                            break;
                        }
                        // Keep going on the last valid graph, with the rest of the batch.
                        Err(()) if !batch.tasks.is_empty() => {
                            checked = Some(batch.task_ids());
                            trigger = Trigger::Files(batch);
                            break;
                        }
                        Err(()) => {
                            status(out, watched);
                            continue;
                        }
                    }
                }
                Wake::Batch(batch) => {
                    checked = if batch.rescan {
                        // Folders made while events were lost are not watched yet.
                        let scope = shared.scope.read().unwrap_or_else(|p| p.into_inner());
                        let mut kernel = shared.watcher.lock().unwrap_or_else(|p| p.into_inner());
                        if let Err((e, total)) = kernel.cover(&scope, None) {
                            e.print(&format!("the {total} folders of the inputs"));
                        }
                        None
                    } else {
                        Some(batch.task_ids())
                    };
                    trigger = Trigger::Files(batch);
                    break;
                }
                Wake::ProbeTick => {
                    let Some(clock) = &mut clock else { continue };
                    let drifted = check_probes(clock, watched, state, &dirty, out, signals);
                    if signals.count() > 0 {
                        return EXIT_INTERRUPTED;
                    }
                    if !drifted.is_empty() {
                        let graph = &watched.project.graph;
                        trigger = Trigger::Probes(
                            drifted
                                .iter()
                                .map(|&id| graph.task(id).name.clone())
                                .collect(),
                        );
                        // Every wanted task, as `run` would: the world may have moved
                        // under more tasks than the probes that happened to notice it (a
                        // probe that ran a moment earlier saw it as it was).
                        checked = None;
                        break;
                    }
                }
            }
        }
    }
    unreachable!("rounds only end by returning")
}

/// Whether a task's last success (`record`) has the root-relative `rel`, as an input or an
/// output, with the content hash it has `now`, or neither has it.
fn recorded_as_now(record: &crate::fingerprint::Record, rel: &Path, now: Option<Hash>) -> bool {
    let files = || record.inputs.iter().chain(&record.outputs);
    // A folder that went with recorded files in it: not as recorded.
    if files().any(|f| Path::new(&f.path).starts_with(rel) && Path::new(&f.path) != rel) {
        return false;
    }
    files().find(|f| Path::new(&f.path) == rel).map(|f| f.hash) == now
}

/// `ids` and every wanted task below them, in run order (deps first).
fn below<'a>(
    graph: &crate::graph::Graph,
    wanted: &[TaskId],
    ids: impl Iterator<Item = &'a TaskId>,
) -> Vec<TaskId> {
    let wanted_set: HashSet<TaskId> = wanted.iter().copied().collect();
    let mut found: HashSet<TaskId> = HashSet::new();
    let mut stack: Vec<TaskId> = ids.copied().filter(|id| wanted_set.contains(id)).collect();
    while let Some(id) = stack.pop() {
        if found.insert(id) {
            stack.extend(
                graph
                    .dependents(id)
                    .iter()
                    .filter(|d| wanted_set.contains(d)),
            );
        }
    }
    wanted
        .iter()
        .copied()
        .filter(|id| found.contains(id))
        .collect()
}

enum Wake {
    Interrupted,
    Batch(Batch),
    ProbeTick,
}

/// Blocks until Ctrl-C, a batch whose window closed, or the next probe tick.
fn wait(shared: &Shared, signals: &Signals, window: Duration, clock: Option<&ProbeClock>) -> Wake {
    let mut batch = shared.batch.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        // Ctrl-C does not wait for the window.
        if signals.count() > 0 {
            return Wake::Interrupted;
        }
        let now = Instant::now();
        if batch.due(now, window) {
            return Wake::Batch(std::mem::take(&mut *batch));
        }
        if clock.is_some_and(|c| now >= c.next()) && batch.first.is_none() {
            return Wake::ProbeTick;
        }
        // Look at the interrupt counter now and then; otherwise sleep until something is due.
        let mut until = now + Duration::from_millis(50);
        if let Some(closes) = batch.closes_at(window) {
            until = until.min(closes);
        }
        // (A tick waits while a window is open: the round comes first.)
        if let Some(clock) = clock.filter(|_| batch.first.is_none()) {
            until = until.min(clock.next().max(now));
        }
        batch = shared
            .arrived
            .wait_timeout(batch, until.saturating_duration_since(now))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// Reads file events until the loop is done: what each path means goes into the batch,
/// new folders are watched, and tasks whose inputs changed are asked to restart (the
/// scheduler restarts those that are running).
fn read_events(
    rx: mpsc::Receiver<notify::Result<notify::Event>>,
    shared: &Shared,
    restarts: &Restarts,
    done: &AtomicBool,
) {
    let mut warned = false;
    let mut contents = Contents::default();
    while !done.load(Ordering::SeqCst) {
        let event = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(event)) => event,
            Ok(Err(e)) => {
                if !warned {
                    WatchError::from_notify(e, None).print("some files");
                    warned = true;
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let now = Instant::now();
        if event.need_rescan() {
            shared
                .batch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .lost_events(now);
            shared.arrived.notify_all();
            continue;
        }
        // The scope stays read-locked until the batch has what it means, so a reload
        // cannot slip in between and leave the old graph's tasks in the batch.
        let scope = shared.scope.read().unwrap_or_else(|p| p.into_inner());
        let changed = {
            let mut kernel = shared.watcher.lock().unwrap_or_else(|p| p.into_inner());
            what_changed(&event, &scope, &mut kernel, &mut contents)
        };
        let ignores = crate::pattern::Ignores::default();
        let mut batch = shared.batch.lock().unwrap_or_else(|p| p.into_inner());
        for (path, what) in changed {
            let meaning = scope.meaning(&path, what, &ignores);
            // A task whose input changed while it runs starts again; not for its own
            // outputs, nor for a folder that went and may have held none of its inputs.
            if let Meaning::Tasks {
                inputs,
                certain: true,
                ..
            } = &meaning
            {
                restarts.request(inputs.iter().copied());
            }
            batch.add(&shared.root, &path, meaning, now);
        }
        drop(batch);
        drop(scope);
        shared.arrived.notify_all();
    }
}

/// The paths an event is about, each with what is there now. Folders that appeared are
/// watched (and their files count as changed: they may have been written before the watch
/// was in place); folders that went are forgotten. A file whose content is the same as at
/// its last event (an editor saving an unchanged buffer, a task rewriting a file with what
/// it held) is left out.
fn what_changed(
    event: &notify::Event,
    scope: &Scope,
    kernel: &mut Kernel,
    contents: &mut Contents,
) -> Vec<(PathBuf, Now)> {
    use notify::EventKind;
    use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};
    let mut changed = Vec::with_capacity(event.paths.len());
    for path in &event.paths {
        let what = match event.kind {
            // Reads and attribute changes (`touch`, `chmod`) change no content.
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => continue,
            EventKind::Create(CreateKind::Folder) => Now::Folder,
            EventKind::Remove(RemoveKind::File) => Now::GoneFile,
            EventKind::Remove(RemoveKind::Folder) => Now::GoneFolder,
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) if kernel.is_watched(path) => {
                Now::GoneFolder
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Now::GoneFile,
            _ => Now::of(path, kernel.is_watched(path)),
        };
        match what {
            Now::Folder => {
                match kernel.cover(scope, Some(path)) {
                    Ok(files) => {
                        changed.extend(files.into_iter().map(|f| (f, Now::File)));
                    }
                    Err((e, _)) => e.print(&format!("the new folder {}", path.display())),
                }
                continue;
            }
            Now::GoneFolder => {
                kernel.forget(path);
                contents.forget(path);
            }
            Now::GoneFile => contents.forget(path),
            Now::File if contents.unchanged(path) => continue,
            Now::File => {}
        }
        changed.push((path.clone(), what));
    }
    changed
}

/// The content hash of each small file at its last event, to tell a write that changed
/// nothing from one that did.
#[derive(Default)]
struct Contents(HashMap<PathBuf, Hash>);

impl Contents {
    /// Files up to this size are hashed; a bigger one always counts as changed.
    const MAX: u64 = 1 << 20;

    /// Whether `path` holds what it held at its last event; remembers what it holds now.
    fn unchanged(&mut self, path: &Path) -> bool {
        let small =
            std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() <= Self::MAX);
        let hash = small.then(|| crate::digest::hash_file(path).ok()).flatten();
        match hash {
            Some(hash) => self.0.insert(path.to_path_buf(), hash) == Some(hash),
            None => {
                self.0.remove(path);
                false
            }
        }
    }

    fn forget(&mut self, path: &Path) {
        self.0.retain(|p, _| !p.starts_with(path));
    }
}

/// Loads the task files again; on success the watch moves to the new graph (new scope,
/// new kernel watches). An invalid edit is reported and changes nothing.
fn reload(
    root_file: &Path,
    watched: &mut Watched,
    out: &Output,
    shared: &Shared,
    tx: &mpsc::Sender<notify::Result<notify::Event>>,
) -> Result<(), ()> {
    let loaded = crate::load::load_path(root_file);
    out.diagnostics(&loaded.diagnostics);
    let keep_going = || {
        eprintln!("devgraph: still watching the last valid graph; fix the files to go on");
        Err(())
    };
    let Some(project) = loaded.project else {
        let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!("error: the task files have {}", count(errors, "error"));
        return keep_going();
    };
    // The targets as given (globs, or `settings.default`), resolved in the new graph.
    let Some(targets) = targets(&project, out, &watched.names, false) else {
        return keep_going();
    };
    let names = watched.names.clone();
    let Ok((new, scope, kernel)) = watch_project(project, names, targets, tx) else {
        return keep_going();
    };
    *shared.scope.write().unwrap_or_else(|p| p.into_inner()) = scope;
    *shared.watcher.lock().unwrap_or_else(|p| p.into_inner()) = kernel;
    *watched = new;
    Ok(())
}

/// What watching `targets` of `project` needs: the wanted tasks, what their changes mean,
/// and a new inotify instance watching their folders. `Err` when the folders cannot be
/// watched (reported, naming the kernel limit when that is why).
fn watch_project(
    project: Project,
    names: Vec<String>,
    targets: Vec<TaskId>,
    tx: &mpsc::Sender<notify::Result<notify::Event>>,
) -> Result<(Watched, Scope, Kernel), ()> {
    let wanted = work::wanted(&project.graph, &targets, false);
    let scope = Scope::new(&project, &wanted);
    let mut kernel = Kernel::new(tx.clone()).map_err(|e| e.print("files"))?;
    let files = kernel
        .cover(&scope, None)
        .map_err(|(e, total)| e.print(&format!("the {total} folders of the inputs")))?;
    let watched = Watched {
        project,
        names,
        targets,
        wanted,
        files: scope.input_count(&files),
    };
    Ok((watched, scope, kernel))
}

/// Runs the due probes of the wanted tasks; returns the tasks whose probe drifted (or that
/// never succeeded), and backs off probes that fail.
fn check_probes(
    clock: &mut ProbeClock,
    watched: &Watched,
    state: &State,
    dirty: &HashSet<TaskId>,
    out: &Output,
    signals: &Signals,
) -> Vec<TaskId> {
    let now = Instant::now();
    clock.ticked(now);
    let graph = &watched.project.graph;
    let due: Vec<TaskId> = watched
        .wanted
        .iter()
        .copied()
        .filter(|&id| {
            let task = graph.task(id);
            task.probe.is_some() && !task.is_group() && clock.due(&task.name, now)
        })
        .collect();
    if due.is_empty() {
        return Vec::new();
    }
    let Some(ctx) = context(&watched.project, Some(state)) else {
        return Vec::new();
    };
    // Ctrl-C while the probes run kills them (they could take their whole timeout).
    let done = AtomicBool::new(false);
    let probes = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if signals.count() > 0 {
                    crate::probe::stop_all();
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let probes = ctx.probes(&due, super::commands::PROBE_PARALLEL);
        done.store(true, Ordering::SeqCst);
        probes
    });
    let mut drifted = Vec::new();
    for (id, probe) in due.into_iter().zip(probes) {
        let name = &graph.task(id).name;
        let recorded = state.success(name).ok().flatten().map(|s| s.record.probe);
        let changed = match &recorded {
            Some(old) => crate::fingerprint::probe_drifted(old, &probe),
            None => true,
        };
        if changed || dirty.contains(&id) {
            drifted.push(id);
        } else if let Some(failure) = probe.as_ref().and_then(probe_failure) {
            // Not drifted (it failed the same way after the task's last success), but
            // failing: check it less often, and say so.
            let (wait, times) = clock.failed(name, now);
            note(
                out,
                &format!(
                    "the probe of {name} {failure}, {} in a row; next check in {}",
                    count(times as usize, "failure"),
                    crate::duration::format(wait)
                ),
            );
        } else {
            clock.recovered(name);
        }
    }
    drifted
}

/// After a round the probes started: a task that still did not succeed backs off.
fn settle_probes(
    clock: &mut ProbeClock,
    names: &[String],
    reports: &[work::Report],
    graph: &crate::graph::Graph,
    out: &Output,
) {
    let now = Instant::now();
    for report in reports {
        let name = &graph.task(report.id).name;
        if !names.contains(name) {
            continue;
        }
        if report.result.succeeded() {
            if clock.recovered(name) {
                note(out, &format!("{name} is healthy again"));
            }
        } else {
            let (wait, times) = clock.failed(name, now);
            note(
                out,
                &format!(
                    "{name} did not recover after its probe drifted ({} in a row); next probe check in {}",
                    count(times as usize, "failure"),
                    crate::duration::format(wait)
                ),
            );
        }
    }
}

/// Why a probe result counts as failing: exit status, timeout, or no start.
fn probe_failure(probe: &ProbeState) -> Option<String> {
    match probe {
        ProbeState::Exited { status: 0, .. } => None,
        ProbeState::Exited { status, .. } => Some(format!("exits {status}")),
        ProbeState::TimedOut { after_ms } => Some(format!(
            "timed out after {}",
            crate::duration::format(Duration::from_millis(*after_ms))
        )),
        ProbeState::Failed { message } => Some(format!("cannot start: {message}")),
    }
}

fn note(out: &Output, text: &str) {
    if out.json {
        out.stdout(&format!(
            "{}\n",
            serde_json::json!({ "event": "note", "message": text })
        ));
    } else {
        eprintln!("devgraph: {text}");
    }
}

/// The first line of a round: what triggered it.
fn announce(out: &Output, round: usize, trigger: &Trigger) {
    let (kind, paths, probes): (&str, Vec<String>, &[String]) = match trigger {
        Trigger::Start => ("start", Vec::new(), &[]),
        Trigger::Files(batch) => ("files", shown(batch), &[]),
        Trigger::Reloaded(batch) => ("graph", shown(batch), &[]),
        Trigger::Probes(names) => ("probes", Vec::new(), names),
    };
    if out.json {
        let event = serde_json::json!({
            "event": "round_started",
            "round": round,
            "trigger": kind,
            "paths": paths,
            "probes": probes,
        });
        out.stdout(&format!("{event}\n"));
        return;
    }
    if out.quiet {
        return;
    }
    let what = match trigger {
        Trigger::Start => "bringing the targets up to date".to_string(),
        Trigger::Files(batch) if batch.rescan => {
            "file events were lost; checking every task".to_string()
        }
        Trigger::Files(batch) => batch.describe(3),
        Trigger::Reloaded(batch) => format!("{}; graph reloaded", batch.describe(3)),
        Trigger::Probes(names) => match names.as_slice() {
            [one] => format!("the probe of {one} drifted"),
            many => format!("the probes of {} drifted", many.join(", ")),
        },
    };
    let time = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
    out.stdout(&format!(
        "{}── {time} {what}\n",
        if round > 1 { "\n" } else { "" }
    ));
}

/// The batch's paths, for the JSON event (all of them, up to a thousand).
fn shown(batch: &Batch) -> Vec<String> {
    batch
        .paths
        .keys()
        .take(1000)
        .map(|p| p.display().to_string())
        .collect()
}

/// Between rounds: what is watched, on stderr and in the terminal's title.
fn status(out: &Output, watched: &Watched) {
    let text = format!(
        "watching {}, {}",
        count(watched.wanted.len(), "task"),
        count(watched.files, "file")
    );
    if out.json {
        let event = serde_json::json!({
            "event": "watching",
            "tasks": watched.wanted.len(),
            "files": watched.files,
        });
        out.stdout(&format!("{event}\n"));
        return;
    }
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        eprint!("\x1b]0;devgraph: {text}\x07");
    }
    if !out.quiet {
        eprintln!("devgraph: {text} (Ctrl-C to stop)");
    }
}
