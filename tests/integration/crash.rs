//! devgraph killed with SIGKILL (SPEC §4, §6): the store still opens, what finished stays
//! finished, what was running is recorded as interrupted and runs again, and everything
//! converges.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::Test;

const TASKS: usize = 12;

/// `t01` … `t12`, each needing the one or two before it; every task reads `gen.txt`, so
/// changing it drifts them all.
fn layered() -> String {
    let mut text = String::from("version = 1\n[settings]\ndefault = \"t12\"\n");
    for i in 1..=TASKS {
        let deps: Vec<String> = [i.wrapping_sub(1), i.wrapping_sub(2)]
            .into_iter()
            .filter(|&d| (1..=TASKS).contains(&d))
            .map(|d| format!("\"t{d:02}\""))
            .collect();
        text.push_str(&format!(
            "\n[tasks.t{i:02}]\ndeps = [{}]\ninputs = [\"gen.txt\"]\noutputs = [\"marks/t{i:02}\"]\n\
             run = \"sleep 0.05; mkdir -p marks; cat gen.txt > marks/t{i:02}\"\n",
            deps.join(", ")
        ));
    }
    text
}

/// Starts `devgraph ARGS` in the background, output discarded.
fn spawn(t: &Test, args: &[&str]) -> Child {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    t.command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start devgraph")
}

/// `status --json` as name → status word; the store must open.
#[track_caller]
fn statuses(t: &Test) -> BTreeMap<String, String> {
    let out = t.run(&["status", "--json"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("status JSON");
    doc.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn sigkill_at_any_moment_loses_nothing_that_finished() {
    let t = Test::new().tasks(&layered());
    let mut partial = 0;
    for i in 0..8u64 {
        let generation = format!("{i}\n");
        t.put("gen.txt", &generation);
        // 50–850 ms, spread over the whole run (about 70 ms a task, 12 tasks).
        let delay = Duration::from_millis(50 + (i * 233) % 800);
        let mut child = spawn(&t, &["run"]);
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL devgraph");
        child.wait().expect("reap devgraph");

        let before = statuses(&t);
        let done: Vec<&String> = before
            .iter()
            .filter(|(_, s)| *s == "up to date")
            .map(|(n, _)| n)
            .collect();
        if !done.is_empty() && done.len() < TASKS {
            partial += 1;
        }
        for name in &done {
            // A success is committed only after the task exited 0: its output is complete.
            let mark = std::fs::read_to_string(t.root().join("marks").join(name)).unwrap();
            assert_eq!(
                mark, generation,
                "iteration {i}: {name} up to date, stale output"
            );
        }
        for (name, status) in &before {
            assert!(
                ["up to date", "drifted", "never run", "interrupted"].contains(&status.as_str()),
                "iteration {i}: {name} is {status}"
            );
            if status == "interrupted" {
                let why = t.run(&["why", name]).normalized().1;
                assert!(
                    why.contains(&format!(
                        "\n  last attempt was interrupted before it finished; log: .devgraph/logs/{name}/[LOG]\n"
                    )),
                    "iteration {i}: why {name}:\n{why}"
                );
            }
        }

        let out = t.run(&["run", "--json"]);
        // The only thing allowed on stderr: stopping what the killed run left running.
        let unexpected: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| {
                !(l.starts_with("devgraph: stopping `")
                    && l.ends_with("left running by a devgraph that was killed"))
            })
            .collect();
        assert_eq!(
            (out.code, unexpected),
            (0, Vec::<&str>::new()),
            "iteration {i} (killed after {delay:?}):\n{}",
            out.stdout
        );
        let last = out.stdout.lines().last().unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(last).expect("run JSON");
        let results: BTreeMap<String, String> = doc["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["result"]["result"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(results.len(), TASKS, "iteration {i}: {results:?}");
        for (name, result) in &results {
            // What finished before the kill is not run again; everything else had drifted
            // (gen.txt changed) and runs.
            let expected = if done.contains(&name) {
                "up_to_date"
            } else {
                "ran"
            };
            assert_eq!(
                result, expected,
                "iteration {i} (killed after {delay:?}): {name} was {:?} before the re-run",
                before[name]
            );
        }
        assert_eq!(t.run(&["plan", "--exit-code"]).code, 0, "iteration {i}");
    }
    assert!(partial > 0, "no kill landed in the middle of a run");
    let out = t.run(&["plan", "--exit-code"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

/// Waits until `path` exists (a task got that far).
#[track_caller]
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` is alive (a zombie is not).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Kills the process left behind by a killed devgraph when the test ends, pass or fail.
struct Leftover(String);

impl Drop for Leftover {
    fn drop(&mut self) {
        if alive(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &self.0])
                .status();
        }
    }
}

/// The first run sleeps (its shell's pid in `pid`); once `pid` exists the task succeeds at
/// once, noting `DEVGRAPH_DRIFT`.
const SLOW: &str = r#"version = 1
[settings]
default = "slow"

[tasks.slow]
run = 'if test -f pid; then echo "$DEVGRAPH_DRIFT" > drift; exit 0; fi; echo $$ > pid; exec sleep 30'
"#;

#[test]
fn a_task_running_when_devgraph_is_killed_is_recorded_as_interrupted() {
    let t = Test::new().tasks(SLOW);
    let mut child = spawn(&t, &["run"]);
    wait_for(&t.root().join("pid"));
    child.kill().unwrap();
    child.wait().unwrap();
    let pid = std::fs::read_to_string(t.root().join("pid")).unwrap();
    let leftover = Leftover(pid.trim().to_string());

    t.run(&["why", "slow"]).assert(
        0,
        "slow is drifted:\n  last attempt was interrupted before it finished; log: .devgraph/logs/slow/[LOG]\n",
        "",
    );
    t.run(&["status"])
        .assert(0, "slow  interrupted  last attempt was interrupted\n", "");
    t.run(&["plan", "--exit-code"]).assert(
        2,
        "will run    slow  last attempt was interrupted\n1 task: 1 will run, 0 may run, 0 up to date\n",
        "",
    );
    drop(leftover);
    t.run(&["run"]).assert(
        0,
        "\
▶ slow (last attempt was interrupted)
✔ slow ([TIME])

task  result         time  why
slow  ran [TIME]  last attempt was interrupted
1 ran
",
        "",
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("drift")).unwrap(),
        "interrupted\n"
    );
    assert_eq!(t.run(&["plan", "--exit-code"]).code, 0);
}

#[test]
fn the_next_run_stops_what_a_killed_run_left_running() {
    let t = Test::new().tasks(SLOW);
    let mut child = spawn(&t, &["run"]);
    wait_for(&t.root().join("pid"));
    child.kill().unwrap();
    child.wait().unwrap();
    let pid = std::fs::read_to_string(t.root().join("pid")).unwrap();
    let leftover = Leftover(pid.trim().to_string());
    assert!(
        alive(&leftover.0),
        "the task should outlive a SIGKILLed devgraph"
    );

    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(&leftover.0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(&leftover.0),
        "the group of the interrupted task is still running after the next run:\n{out:?}"
    );
}

#[test]
fn an_empty_store_left_by_a_kill_reads_as_nothing_recorded() {
    let t = Test::new().tasks(SLOW);
    t.put(".devgraph/state.db", "");
    t.run(&["status"]).assert(0, "slow  never run\n", "");
    t.run(&["plan"]).assert(
        0,
        "will run    slow  never run\n1 task: 1 will run, 0 may run, 0 up to date\n",
        "",
    );
}

/// One run at a time: a second `run --no-wait` exits 2 and names the holder; without
/// `--no-wait` it waits and then runs.
#[test]
fn a_second_run_waits_for_the_lock_or_exits_2_with_no_wait() {
    let t = Test::new().tasks(
        "version = 1\n[tasks.slow]\nrun = \"touch started && sleep 1\"\n[tasks.quick]\nrun = \"true\"\n",
    );
    let mut first = t
        .command(&["run".into(), "slow".into()])
        .spawn()
        .expect("spawn");
    let started = t.root().join("started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never started its task"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let refused = t.run(&["run", "quick", "--no-wait"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .starts_with("error: another devgraph is running in this project: pid "),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("run slow`, since "),
        "{}",
        refused.stderr
    );
    let waited = t.run(&["run", "quick"]);
    assert_eq!(waited.code, 0, "{waited:?}");
    assert!(
        waited.stderr.starts_with("devgraph: waiting for pid ") || waited.stderr.is_empty(),
        "{}",
        waited.stderr
    );
    assert!(first.wait().expect("wait").success());
}
