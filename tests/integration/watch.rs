//! `devgraph watch` (SPEC §5): a round per batch of edits, with only the changed tasks and
//! their drifted dependents; one round for a burst of edits; outputs never re-trigger;
//! a running task whose input changes is restarted; graph edits reload (an invalid one is
//! reported and skipped); `--probe-interval` heals a drifted world; Ctrl-C leaves nothing.
//!
//! Real processes, `--json` events read as they come. Every wait is for a condition, with a
//! generous bound; the only sleeps are the quiet periods that show something did *not*
//! happen (no extra round).

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::exec::{Reap, alive, eventually, group_members, signal};
use crate::support::Test;

/// The most any step waits (a loaded 2-core machine must pass).
const LIMIT: Duration = Duration::from_secs(30);
/// How long nothing must happen to show that nothing more happens.
const QUIET: Duration = Duration::from_millis(1500);

/// A `devgraph watch --json` running in the background, its events collected.
pub(crate) struct Watching {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl Watching {
    pub(crate) fn start(t: &Test, args: &[&str]) -> Self {
        let mut all = vec!["watch".to_string(), "--json".to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let mut child = t
            .command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start devgraph watch");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
                sink.lock().unwrap().push(event);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Watching {
            child,
            events,
            stderr,
        }
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn count(&self, kind: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == kind).count()
    }

    /// Waits until round `n` is over: watch says what it watches after each round (and
    /// after an edit it could not load).
    #[track_caller]
    pub(crate) fn wait_round(&self, n: usize) {
        eventually(&format!("round {n} to finish"), LIMIT, || {
            let events = self.events();
            let start = events
                .iter()
                .position(|e| e["event"] == "round_started" && e["round"] == n);
            start.is_some_and(|i| events[i..].iter().any(|e| e["event"] == "watching"))
        });
        if let Some(round) = self.round(n) {
            assert_eq!(round["run_finished"]["event"], "run_finished", "{round:#}");
        }
    }

    /// Round `n`'s `round_started` event, the names of the tasks that started in it (once
    /// per start), and its `run_finished` event.
    pub(crate) fn round(&self, n: usize) -> Option<Value> {
        let mut current = 0;
        let mut started = Vec::new();
        let mut restarted = Vec::new();
        let mut begin = Value::Null;
        let mut end = Value::Null;
        for e in self.events() {
            match e["event"].as_str() {
                Some("round_started") => {
                    current = e["round"].as_u64().unwrap() as usize;
                    if current == n {
                        begin = e.clone();
                    }
                }
                Some("task_started") if current == n => {
                    started.push(e["task"].as_str().unwrap().to_string())
                }
                Some("task_restarted") if current == n => {
                    restarted.push(e["task"].as_str().unwrap().to_string())
                }
                Some("run_finished") if current == n => end = e.clone(),
                _ => {}
            }
        }
        (!begin.is_null()).then(|| {
            serde_json::json!({
                "trigger": begin["trigger"],
                "paths": begin["paths"],
                "probes": begin["probes"],
                "started": started,
                "restarted": restarted,
                "run_finished": end,
            })
        })
    }

    /// The tasks that started in round `n`, sorted.
    #[track_caller]
    pub(crate) fn started(&self, n: usize) -> Vec<String> {
        let round = self.round(n).unwrap_or_else(|| panic!("no round {n}"));
        let mut names: Vec<String> = round["started"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    fn rounds(&self) -> usize {
        self.count("round_started")
    }

    /// Ctrl-C; returns the exit code.
    #[track_caller]
    pub(crate) fn interrupt(&mut self) -> i32 {
        signal(self.child.id(), "INT");
        let mut code = None;
        eventually("watch to exit after Ctrl-C", LIMIT, || {
            code = self
                .child
                .try_wait()
                .unwrap()
                .map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        code.unwrap()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `a` copies its input; `len` counts its bytes (same length, same output: `top` is cut
/// off); `other` is unrelated.
const CHAIN: &str = r#"version = 1
[settings]
default = "all"

[tasks.a]
inputs = ["src/a.txt"]
outputs = ["out/a.txt"]
run = "mkdir -p out && cp src/a.txt out/a.txt"

[tasks.len]
deps = ["a"]
outputs = ["out/len.txt"]
run = "wc -c < out/a.txt > out/len.txt"

[tasks.top]
deps = ["len"]
run = "true"

[tasks.other]
inputs = ["src/o.txt"]
run = "true"

[tasks.all]
deps = ["top", "other"]
"#;

fn chain() -> Test {
    Test::new()
        .tasks(CHAIN)
        .write("src/a.txt", "one\n")
        .write("src/o.txt", "o\n")
}

#[test]
fn an_edit_reruns_that_task_and_its_drifted_dependents_once() {
    let t = chain();
    let mut w = Watching::start(&t, &[]);
    w.wait_round(1);
    assert_eq!(w.started(1), ["a", "all", "len", "other", "top"]);
    t.put("src/a.txt", "two\n");
    w.wait_round(2);
    let round = w.round(2).unwrap();
    assert_eq!(round["trigger"], "files");
    assert_eq!(round["paths"], serde_json::json!(["src/a.txt"]));
    // `len` wrote the same count: `top` and `all` are cut off, `other` untouched.
    assert_eq!(w.started(2), ["a", "len"]);
    assert_eq!(round["run_finished"]["ok"], true);
    std::thread::sleep(QUIET);
    assert_eq!(
        w.rounds(),
        2,
        "the tasks' own writes started a round: {:#?}",
        w.events()
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("out/a.txt")).unwrap(),
        "two\n"
    );
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn fifty_quick_edits_make_one_round() {
    let t = chain();
    let mut w = Watching::start(&t, &["--debounce", "1s"]);
    w.wait_round(1);
    for i in 0..50 {
        let file = if i % 2 == 0 { "src/a.txt" } else { "src/o.txt" };
        t.put(file, &format!("edit {i}\n"));
    }
    w.wait_round(2);
    // Both inputs changed, and with them what is below them.
    assert_eq!(w.started(2), ["a", "all", "len", "other", "top"]);
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 2, "{:#?}", w.events());
    assert_eq!(
        std::fs::read_to_string(t.root().join("out/a.txt")).unwrap(),
        "edit 48\n"
    );
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_task_writing_its_outputs_does_not_trigger_itself() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[tasks.site]
inputs = ["site/**"]
outputs = ["site/index.html", "site/assets/**"]
run = "mkdir -p site/assets && cp site/page.md site/index.html && date +%N > site/assets/stamp"
"#,
        )
        .write("site/page.md", "# hi\n");
    let mut w = Watching::start(&t, &["site"]);
    w.wait_round(1);
    assert_eq!(w.started(1), ["site"]);
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 1, "{:#?}", w.events());
    t.put("site/page.md", "# hello\n");
    w.wait_round(2);
    assert_eq!(w.started(2), ["site"]);
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 2, "{:#?}", w.events());
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn an_edit_to_the_input_of_a_running_task_restarts_it() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[tasks.slow]
inputs = ["src/s.txt"]
outputs = ["out.txt"]
run = "echo $$ >> pids; sleep 2; cp src/s.txt out.txt"

[tasks.after]
deps = ["slow"]
run = "cat out.txt >> seen"
"#,
        )
        .write("src/s.txt", "first\n");
    let mut reap = Reap::default();
    let mut w = Watching::start(&t, &["after"]);
    let pids = t.root().join("pids");
    eventually("slow to start", LIMIT, || {
        std::fs::read_to_string(&pids).is_ok_and(|p| p.ends_with('\n'))
    });
    let first = std::fs::read_to_string(&pids).unwrap();
    let first = reap.add(first.trim());
    t.put("src/s.txt", "second\n");
    w.wait_round(1);
    let round = w.round(1).unwrap();
    assert_eq!(round["restarted"], serde_json::json!(["slow"]), "{round:#}");
    assert_eq!(
        round["started"],
        serde_json::json!(["slow", "slow", "after"]),
        "{round:#}"
    );
    assert!(!alive(first), "the first run of slow is still alive");
    assert!(group_members(first).is_empty());
    // `after` ran once, on what the restarted run produced.
    assert_eq!(
        std::fs::read_to_string(t.root().join("seen")).unwrap(),
        "second\n"
    );
    let results: Vec<(String, String)> = round["run_finished"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["result"]["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("slow".into(), "ran".into()),
            ("after".into(), "ran".into())
        ]
    );
    // The restart already took the edit into account: no round of its own.
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 1, "{:#?}", w.events());
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn an_invalid_graph_edit_is_reported_and_a_valid_one_is_picked_up() {
    let t = chain();
    let mut w = Watching::start(&t, &[]);
    w.wait_round(1);
    t.put("tasks.toml", &CHAIN.replace("[tasks.top]", "[tasks.top"));
    eventually("the diagnostic", LIMIT, || {
        w.stderr().contains("still watching the last valid graph")
    });
    let stderr = w.stderr();
    assert!(stderr.contains("tasks.toml:"), "{stderr}");
    assert_eq!(w.rounds(), 1);
    // A valid edit: a new task below `all`.
    let fixed = CHAIN.replace(
        "deps = [\"top\", \"other\"]",
        "deps = [\"top\", \"other\", \"extra\"]",
    ) + "\n[tasks.extra]\nrun = \"true\"\n";
    t.put("tasks.toml", &fixed);
    w.wait_round(2);
    let round = w.round(2).unwrap();
    assert_eq!(round["trigger"], "graph");
    // The new task runs; `all` has a new dep. Nothing else drifted.
    assert_eq!(w.started(2), ["all", "extra"]);
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_probe_interval_notices_a_changed_probe_and_heals_the_task() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[tasks.svc]
run = "cp want.txt world.txt"
probe = "cat world.txt"
"#,
        )
        .write("want.txt", "running\n");
    let mut w = Watching::start(&t, &["svc", "--probe-interval", "300ms"]);
    w.wait_round(1);
    assert_eq!(w.started(1), ["svc"]);
    // The world drifts: nothing watched changes, only what the probe reads.
    t.put("world.txt", "crashed\n");
    w.wait_round(2);
    let round = w.round(2).unwrap();
    assert_eq!(round["trigger"], "probes");
    assert_eq!(round["probes"], serde_json::json!(["svc"]));
    assert_eq!(w.started(2), ["svc"]);
    assert_eq!(
        std::fs::read_to_string(t.root().join("world.txt")).unwrap(),
        "running\n"
    );
    // Healed: the next ticks find nothing to do.
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 2, "{:#?}", w.events());
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_failing_probe_backs_off_and_says_so() {
    let t = Test::new().tasks(
        r#"version = 1
[tasks.svc]
run = "false"
probe = "cat missing.txt"
"#,
    );
    let mut w = Watching::start(&t, &["svc", "--probe-interval", "200ms"]);
    w.wait_round(1);
    assert_eq!(w.round(1).unwrap()["run_finished"]["ok"], false);
    // The task keeps failing: each probe round doubles the wait (200ms, 400ms, 800ms...),
    // so the quiet period sees a few rounds, not one every tick.
    w.wait_round(2);
    std::thread::sleep(QUIET);
    let rounds = w.rounds();
    assert!(rounds <= 5, "{rounds} rounds: it does not back off");
    let notes: Vec<String> = w
        .events()
        .iter()
        .filter(|e| e["event"] == "note")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with(
            "svc did not recover after its probe drifted (1 failure in a row); next probe check in"
        )),
        "{notes:#?}"
    );
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn ctrl_c_stops_a_running_round_and_leaves_nothing_behind() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[tasks.long]
inputs = ["in.txt"]
run = "echo $$ > pid; sleep 30 & echo $! > child; wait"
"#,
        )
        .write("in.txt", "x\n");
    let mut reap = Reap::default();
    let mut w = Watching::start(&t, &["long"]);
    let read = |f: &str| std::fs::read_to_string(t.root().join(f)).unwrap_or_default();
    eventually("long to start its child", LIMIT, || {
        read("pid").ends_with('\n') && read("child").ends_with('\n')
    });
    let shell = reap.add(read("pid").trim());
    let child = reap.add(read("child").trim());
    assert_eq!(w.interrupt(), 130);
    assert!(
        !alive(shell) && !alive(child),
        "a process of the task survived"
    );
    assert!(group_members(shell).is_empty());
}

#[test]
fn a_run_while_watching_waits_or_exits_2_naming_the_watch() {
    let t = chain();
    let mut w = Watching::start(&t, &[]);
    w.wait_round(1);
    let out = t.run(&["run", "--no-wait"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("error: another devgraph is running in this project: pid "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("watch"), "{}", out.stderr);
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_reload_resolves_glob_targets_again() {
    let base = "version = 1\n[tasks.\"gen:a\"]\nrun = \"true\"\n";
    let t = Test::new().tasks(base);
    let mut w = Watching::start(&t, &["gen:*"]);
    w.wait_round(1);
    assert_eq!(w.started(1), ["gen:a"]);
    t.put(
        "tasks.toml",
        &format!("{base}[tasks.\"gen:b\"]\nrun = \"true\"\n"),
    );
    w.wait_round(2);
    assert_eq!(w.started(2), ["gen:b"]);
    assert_eq!(w.interrupt(), 130);
}

/// `build` reads `src/**`; `gen` writes into it, declaring its outputs.
const TREE: &str = r#"version = 1
include = ["layers/*/layer.toml"]
[settings]
default = "all"

[tasks.gen]
outputs = ["src/gen/**", "!src/gen/README.md"]
run = "mkdir -p src/gen && echo generated > src/gen/api.txt"

[tasks.build]
deps = ["gen"]
inputs = ["src/**"]
run = "true"

[tasks.all]
deps = ["build"]
"#;

fn tree() -> Test {
    Test::new()
        .tasks(TREE)
        .write("src/a/x.txt", "1\n")
        .write("src/gen/README.md", "hand-written\n")
        .write("layers/one/layer.toml", "[tasks.one]\nrun = \"true\"\n")
}

#[test]
fn a_folder_deleted_or_moved_away_is_watched_again_when_it_comes_back() {
    let t = tree();
    let mut w = Watching::start(&t, &[]);
    w.wait_round(1);
    let src_a = t.root().join("src/a");
    std::fs::remove_dir_all(&src_a).unwrap();
    w.wait_round(2);
    assert_eq!(w.started(2), ["all", "build"]);
    std::fs::create_dir_all(&src_a).unwrap();
    t.put("src/a/x.txt", "2\n");
    w.wait_round(3);
    assert_eq!(w.started(3), ["all", "build"]);
    // Moved away and back: still watched, edits inside it count.
    std::fs::rename(&src_a, t.root().join("moved")).unwrap();
    w.wait_round(4);
    std::fs::rename(t.root().join("moved"), &src_a).unwrap();
    w.wait_round(5);
    t.put("src/a/x.txt", "3\n");
    w.wait_round(6);
    assert_eq!(
        w.round(6).unwrap()["paths"],
        serde_json::json!(["src/a/x.txt"])
    );
    assert_eq!(w.started(6), ["all", "build"]);
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_tree_copied_in_is_watched_to_its_last_folder() {
    let t = tree();
    let mut w = Watching::start(&t, &["--debounce", "300ms"]);
    w.wait_round(1);
    // Build the tree elsewhere, then move it in at once (as `cp -r` to a temp name and
    // `mv`, or a `git checkout`, does).
    let staging = tempfile::tempdir().unwrap();
    for i in 0..5 {
        for j in 0..5 {
            let dir = staging.path().join(format!("d{i}/e{j}/f"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("file"), "x\n").unwrap();
        }
    }
    let copy = t.root().join("src/copy");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(staging.path())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    w.wait_round(2);
    assert_eq!(w.started(2), ["all", "build"]);
    // The deepest folder is watched.
    t.put("src/copy/d4/e4/f/file", "changed\n");
    w.wait_round(3);
    assert_eq!(
        w.round(3).unwrap()["paths"],
        serde_json::json!(["src/copy/d4/e4/f/file"])
    );
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_task_file_in_a_new_included_folder_reloads_the_graph() {
    let t = tree();
    let mut w = Watching::start(&t, &["all", "one"]);
    w.wait_round(1);
    t.put(
        "layers/two/layer.toml",
        "[tasks.two]\nrun = \"true\"\n[tasks.extra]\nrun = \"true\"\ndeps = [\"two\"]\n",
    );
    // The new tasks are not targets: the graph is reloaded, nothing of it drifted.
    w.wait_round(2);
    assert_eq!(w.round(2).unwrap()["trigger"], "graph");
    assert_eq!(
        w.round(2).unwrap()["paths"],
        serde_json::json!(["layers/two/layer.toml"])
    );
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn editor_saves_and_unrelated_deletes_start_nothing_more_than_the_edit() {
    let t = tree();
    let mut w = Watching::start(&t, &[]);
    w.wait_round(1);
    // vim: a probe file, then write to a temp name and rename over the original.
    t.put("src/a/4913", "");
    std::fs::remove_file(t.root().join("src/a/4913")).unwrap();
    t.put("src/a/.x.txt.swp", "swap");
    t.put("src/a/x.txt~", "1\n");
    std::fs::rename(
        t.root().join("src/a/x.txt~"),
        t.root().join("src/a/x.txt.new"),
    )
    .unwrap();
    t.put("src/a/x.txt.new", "2\n");
    std::fs::rename(
        t.root().join("src/a/x.txt.new"),
        t.root().join("src/a/x.txt"),
    )
    .unwrap();
    std::fs::remove_file(t.root().join("src/a/.x.txt.swp")).unwrap();
    w.wait_round(2);
    assert_eq!(w.started(2), ["all", "build"]);
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 2, "{:#?}", w.events());
    // Saving the same content again starts nothing.
    t.put("src/a/x.txt", "2\n");
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 2, "{:#?}", w.events());
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_deleted_output_runs_its_task_again_and_an_excluded_one_is_an_input() {
    let t = tree();
    let mut w = Watching::start(&t, &[]);
    w.wait_round(1);
    std::fs::remove_file(t.root().join("src/gen/api.txt")).unwrap();
    w.wait_round(2);
    // `gen` restores it (same content): `build` is cut off.
    assert_eq!(w.started(2), ["gen"]);
    // The README is excluded from `gen`'s outputs: it is `build`'s input.
    t.put("src/gen/README.md", "edited\n");
    w.wait_round(3);
    assert_eq!(w.started(3), ["all", "build"]);
    std::thread::sleep(QUIET);
    assert_eq!(w.rounds(), 3, "{:#?}", w.events());
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_task_rewriting_its_own_input_does_not_restart_forever() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[tasks.codegen]
inputs = ["src/**"]
run = "sleep 0.3; echo same > src/gen.txt; sleep 0.3"
"#,
        )
        .write("src/main.txt", "x\n");
    let mut w = Watching::start(&t, &["codegen"]);
    w.wait_round(1);
    // Its first write is a change (the file is new): one restart at most; its later
    // writes hold the same content and change nothing.
    let restarts = w.count("task_restarted");
    assert!(restarts <= 1, "{restarts} restarts in round 1");
    std::thread::sleep(QUIET);
    assert!(w.rounds() <= 2, "{:#?}", w.events());
    assert_eq!(w.interrupt(), 130);
}

#[test]
fn a_fixed_failure_lets_what_it_held_back_run() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[settings]
default = "all"
[tasks.bad]
inputs = ["flag.txt"]
run = "grep -qx yes flag.txt"
[tasks.after]
deps = ["bad"]
run = "true"
[tasks.other]
run = "true"
[tasks.all]
deps = ["after", "other"]
"#,
        )
        .write("flag.txt", "no\n");
    // -j1: `bad` (first defined, same expected time) fails before `other` can start.
    let mut w = Watching::start(&t, &["-j1"]);
    w.wait_round(1);
    assert_eq!(w.started(1), ["bad"]);
    assert_eq!(w.round(1).unwrap()["run_finished"]["ok"], false);
    t.put("flag.txt", "yes\n");
    w.wait_round(2);
    // Only `bad`'s input changed; `other` (cancelled) and `after`, `all` (skipped) are
    // checked again too.
    assert_eq!(w.started(2), ["after", "all", "bad", "other"]);
    assert_eq!(w.interrupt(), 130);
}
