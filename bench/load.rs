//! Loader benchmark: `devgraph::load::load_path` on generated projects of 1,000 and 10,000
//! tasks (`bench/gen_graph.py`, 500 tasks per included file). Each project is generated
//! once into a temp dir, checked to load with no diagnostics, then loaded repeatedly.
//! `load_in_memory` does the same work from files already in memory (`load_with`), which
//! separates reading and walking the disk from parsing and validating.
//!
//! Run with `cargo bench --bench load`; see bench/README.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use devgraph::load::{self, Loaded, Memory};
use divan::Bencher;
use tempfile::TempDir;

/// Tasks in each generated project.
const SIZES: [usize; 2] = [1_000, 10_000];
/// Tasks per included file: 2 files for 1,000 tasks, 20 for 10,000.
const TASKS_PER_FILE: usize = 500;

/// Where the projects are generated; removed when the benchmarks are done.
static TEMP: Mutex<Option<TempDir>> = Mutex::new(None);
/// The root file of each project generated so far, by task count.
static ROOTS: Mutex<BTreeMap<usize, PathBuf>> = Mutex::new(BTreeMap::new());

fn main() {
    divan::main();
    drop(TEMP.lock().unwrap().take());
}

/// The root `tasks.toml` of a generated project of `tasks` tasks, generating it the first
/// time and checking that it loads without a single diagnostic.
fn project(tasks: usize) -> PathBuf {
    let mut roots = ROOTS.lock().unwrap();
    if let Some(root) = roots.get(&tasks) {
        return root.clone();
    }
    let mut temp = TEMP.lock().unwrap();
    let base = temp
        .get_or_insert_with(|| tempfile::tempdir().expect("create a temp dir"))
        .path();
    let dir = base.join(format!("graph{tasks}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gen_graph.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .args(["--tasks", &tasks.to_string()])
        .args(["--files", &(tasks / TASKS_PER_FILE).max(1).to_string()])
        .arg("--quiet")
        .status()
        .unwrap_or_else(|e| panic!("run python3 {}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    let root = dir.join(load::ROOT_FILE);
    check(&load::load_path(&root), tasks);
    roots.insert(tasks, root.clone());
    root
}

/// Fails unless the project loaded with `tasks` tasks and no errors or warnings.
fn check(loaded: &Loaded, tasks: usize) {
    assert!(
        loaded.diagnostics.is_empty(),
        "the generated project has {} diagnostics, the first: {:?}",
        loaded.diagnostics.len(),
        loaded.diagnostics.first(),
    );
    let project = loaded.project.as_ref().expect("the project loaded");
    assert_eq!(project.graph.len(), tasks);
}

/// Every file of a generated project, read into memory by root-relative name.
fn in_memory(root_file: &Path) -> Memory {
    let root = root_file.parent().expect("the root file has a folder");
    let mut files = BTreeMap::new();
    let mut add = |path: &Path| {
        let name = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        files.insert(name, std::fs::read_to_string(path).unwrap());
    };
    add(root_file);
    for entry in std::fs::read_dir(root.join("layers")).unwrap() {
        add(&entry.unwrap().path());
    }
    Memory(files)
}

/// Read, parse, expand, validate, resolve and cycle-check, from the disk.
#[divan::bench(args = SIZES, sample_count = 20, sample_size = 1)]
fn load_path(bencher: Bencher, tasks: usize) {
    let root = project(tasks);
    bencher.bench(|| {
        let loaded = load::load_path(divan::black_box(&root));
        assert!(loaded.project.is_some());
        loaded
    });
}

/// The same as `load_path` with the files already in memory: no disk reads, no walk.
#[divan::bench(args = SIZES, sample_count = 20, sample_size = 1)]
fn load_in_memory(bencher: Bencher, tasks: usize) {
    let root_file = project(tasks);
    let files = in_memory(&root_file);
    let root = root_file.parent().unwrap().to_path_buf();
    check(
        &load::load_with(root.clone(), load::ROOT_FILE, &files),
        tasks,
    );
    bencher.bench(|| {
        let loaded = load::load_with(root.clone(), load::ROOT_FILE, divan::black_box(&files));
        assert!(loaded.project.is_some());
        loaded
    });
}
