//! Running tasks for real (SPEC §5–§6): parallelism and `-j`, dependency order, Ctrl-C and
//! SIGTERM, timeouts, retries, `-k`, the lock, preflight, background processes holding
//! stdout, `run --json`, and every result kind in the summary. These tests start real
//! processes and signal them; they poll for conditions rather than sleep, and the time
//! bounds are wide (a loaded 2-core machine must pass them).

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Output, Test};

// ---------------------------------------------------------------------------------------
// Helpers

/// Polls `cond` every 10 ms until it holds; panics after `limit`.
#[track_caller]
pub(crate) fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until a task has written `file` (non-empty, so a pid is complete) and returns its
/// content, trimmed.
#[track_caller]
fn wait_for_file(t: &Test, file: &str) -> String {
    let path = t.root().join(file);
    let mut text = String::new();
    eventually(file, Duration::from_secs(20), || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        text.ends_with('\n')
    });
    text.trim().to_string()
}

/// `/proc/PID/stat` after the command name: "S ppid pgrp ...".
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// Whether process `pid` is alive; a zombie (or a dying process) is not.
pub(crate) fn alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| !matches!(f[0].as_str(), "Z" | "X"))
}

/// The live (non-zombie) processes of process group `pgid`.
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|f| {
                !matches!(f[0].as_str(), "Z" | "X") && f[2].parse::<i32>() == Ok(pgid)
            })
        })
        .collect()
}

/// Kills, when the test ends (pass or fail), the processes it started and recorded: a
/// failing test must not leave a `sleep 30` or a devgraph behind.
#[derive(Default)]
pub(crate) struct Reap(Vec<i32>);

impl Reap {
    pub(crate) fn add(&mut self, pid: &str) -> i32 {
        let pid: i32 = pid.parse().unwrap_or_else(|_| panic!("not a pid: {pid:?}"));
        self.0.push(pid);
        pid
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Starts `devgraph ARGS` in the background, its output captured.
fn spawn(t: &Test, args: &[&str]) -> Child {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    t.command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start devgraph")
}

/// Sends `signal` (`INT`, `TERM`) to `pid` with kill(1) (no libc in this crate).
pub(crate) fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Waits (at most `limit`) for a devgraph started by [`spawn`] to exit; returns what it
/// printed (the project root shown as `[ROOT]`).
#[track_caller]
fn finish(t: &Test, child: &mut Child, limit: Duration) -> Output {
    let mut status = None;
    eventually("devgraph to exit", limit, || {
        status = child.try_wait().expect("wait for devgraph");
        status.is_some()
    });
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let root = t.root().display().to_string();
    Output {
        code: status.unwrap().code().unwrap_or(-1),
        stdout: stdout.replace(&root, "[ROOT]"),
        stderr: stderr.replace(&root, "[ROOT]"),
    }
}

/// Reads `order.log`, written by [`logged`] tasks: `start NAME` / `end NAME` lines.
fn order_log(t: &Test) -> Vec<(String, String)> {
    std::fs::read_to_string(t.root().join("order.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (what, name) = l.split_once(' ').unwrap_or_else(|| panic!("line {l:?}"));
            (what.to_string(), name.to_string())
        })
        .collect()
}

/// The most tasks running at once, by `order.log`.
fn max_concurrency(log: &[(String, String)]) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for (what, _) in log {
        if what == "start" {
            now += 1;
            max = max.max(now);
        } else {
            now -= 1;
        }
    }
    max
}

/// A task command that logs its start and end around `sleep`; `>>` of one short line is a
/// single O_APPEND write, so lines of parallel tasks never tear.
fn logged(sleep: &str) -> String {
    format!(
        "run = 'echo \"start $DEVGRAPH_TASK\" >> order.log; sleep {sleep}; echo \"end $DEVGRAPH_TASK\" >> order.log'\n"
    )
}

// ---------------------------------------------------------------------------------------
// 1. -j: independent tasks run in parallel, up to N at a time

/// Four independent one-second tasks.
fn four_sleepers() -> Test {
    let mut text = String::from("version = 1\n[tasks.all]\ndeps = [\"w*\"]\n");
    for i in 1..=4 {
        text.push_str(&format!("[tasks.w{i}]\n{}", logged("1")));
    }
    Test::new().tasks(&text)
}

#[test]
fn independent_tasks_run_in_parallel_up_to_j_at_a_time() {
    let t = four_sleepers();
    let started = Instant::now();
    let out = t.run(&["run", "all", "-j4"]);
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        took < Duration::from_millis(2500),
        "-j4 took {took:?} for 4 × 1 s"
    );
    let log = order_log(&t);
    assert_eq!(log.len(), 8, "{log:?}");
    assert_eq!(max_concurrency(&log), 4, "{log:?}");

    let t = four_sleepers();
    let started = Instant::now();
    let out = t.run(&["run", "all", "-j1"]);
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        took >= Duration::from_millis(3900),
        "-j1 took {took:?} for 4 × 1 s"
    );
    let log = order_log(&t);
    assert_eq!(log.len(), 8, "{log:?}");
    assert_eq!(max_concurrency(&log), 1, "{log:?}");
}

// ---------------------------------------------------------------------------------------
// 2. Dependency order holds under parallelism

#[test]
fn every_task_starts_after_all_its_deps_ended_under_j8() {
    // Four layers of five; each task needs two of the layer below; `top` needs layer 4 by a
    // glob. 21 tasks.
    let letters = ["a", "b", "c", "d", "e"];
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    let mut text = String::from("version = 1\n");
    for layer in 1..=4 {
        for (i, letter) in letters.iter().enumerate() {
            let name = format!("l{layer}:{letter}");
            let these: Vec<String> = if layer == 1 {
                Vec::new()
            } else {
                vec![
                    format!("l{}:{}", layer - 1, letters[i]),
                    format!("l{}:{}", layer - 1, letters[(i + 2) % 5]),
                ]
            };
            let quoted: Vec<String> = these.iter().map(|d| format!("\"{d}\"")).collect();
            text.push_str(&format!(
                "[tasks.\"{name}\"]\ndeps = [{}]\n{}",
                quoted.join(", "),
                logged("0.1")
            ));
            deps.insert(name, these);
        }
    }
    text.push_str(&format!("[tasks.top]\ndeps = [\"l4:*\"]\n{}", logged("0")));
    deps.insert(
        "top".into(),
        letters.iter().map(|l| format!("l4:{l}")).collect(),
    );
    let t = Test::new().tasks(&text);

    let out = t.run(&["run", "top", "-j8"]);
    assert_eq!(out.code, 0, "{out:?}");
    let log = order_log(&t);
    let position = |what: &str, name: &str| {
        let at: Vec<usize> = (log.iter().enumerate())
            .filter(|(_, (w, n))| w == what && n == name)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 1, "`{what} {name}` not exactly once in {log:#?}");
        at[0]
    };
    assert_eq!(log.len(), 2 * deps.len(), "{log:#?}");
    for (name, its_deps) in &deps {
        let start = position("start", name);
        assert!(start < position("end", name), "{name}: {log:#?}");
        for dep in its_deps {
            assert!(
                position("end", dep) < start,
                "{name} started before its dep {dep} ended: {log:#?}"
            );
        }
    }
    // And it did run in parallel (five tasks a layer, 100 ms each).
    assert!(max_concurrency(&log) >= 2, "{log:#?}");
    assert!(max_concurrency(&log) <= 8, "{log:#?}");
}

// ---------------------------------------------------------------------------------------
// 3. Ctrl-C and SIGTERM

/// A task whose script traps SIGTERM (cleaning up for 300 ms) and has a grandchild
/// `sleep 30`. It writes its group id and the grandchild's pid once both exist.
fn trapping() -> Test {
    Test::new()
        .tasks("version = 1\n[tasks.stop]\nrun = \"scripts/stop.sh\"\n")
        .write(
            "scripts/stop.sh",
            r#"#!/bin/bash
trap 'sleep 0.3; echo "cleanup done" > cleanup; exit 0' TERM
sleep 30 &
echo $! > grandchild.pid
echo $$ > shell.pid
cut -d' ' -f5 /proc/$$/stat > group.pid
echo waiting
wait
"#,
        )
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn ctrl_c_stops_the_task_group_gracefully_and_exits_130() {
    for sig in ["INT", "TERM"] {
        let t = trapping();
        make_executable(&t.root().join("scripts/stop.sh"));
        let mut reap = Reap::default();
        let mut child = spawn(&t, &["run", "stop"]);
        reap.0.push(child.id() as i32);
        let grandchild = reap.add(&wait_for_file(&t, "grandchild.pid"));
        let shell = reap.add(&wait_for_file(&t, "shell.pid"));
        let group: i32 = wait_for_file(&t, "group.pid").parse().unwrap();
        assert!(alive(grandchild) && alive(shell));

        signal(child.id(), sig);
        let out = finish(&t, &mut child, Duration::from_secs(15));
        out.assert(
            130,
            "\
▶ stop (never run)
[stop] waiting

task  result          time  why
stop  interrupted [TIME]  never run
1 interrupted
",
            "devgraph: interrupted: stopping running tasks (again to stop them at once)\n",
        );
        // The graceful stop waited for the trap's cleanup, and nothing of the task is left.
        assert_eq!(
            std::fs::read_to_string(t.root().join("cleanup")).ok(),
            Some("cleanup done\n".to_string()),
            "SIG{sig}: the trap's cleanup did not complete"
        );
        assert!(!alive(shell), "SIG{sig}: the task's shell survived");
        assert!(!alive(grandchild), "SIG{sig}: the grandchild survived");
        assert_eq!(group_members(group), Vec::<i32>::new(), "SIG{sig}");

        t.run(&["why", "stop"]).assert(
            0,
            "stop is drifted:\n  last attempt was interrupted before it finished; log: .devgraph/logs/stop/[LOG]\n",
            "",
        );
    }
}

/// watchexec #960 as a user meets it: the task's shell does not trap SIGTERM and dies at
/// once; its child does, and keeps logging while it cleans up (as servers do). The graceful
/// stop must let that child finish, output included.
#[test]
fn ctrl_c_lets_a_child_of_the_task_shell_finish_its_cleanup() {
    let t = Test::new()
        .tasks("version = 1\n[tasks.stop]\nrun = 'scripts/stop.sh; echo never'\n")
        .write(
            "scripts/stop.sh",
            r#"#!/bin/bash
trap 'echo "cleaning up"; sleep 0.5; echo "still cleaning up"; echo "cleanup done" > cleanup; exit 0' TERM
sleep 30 &
echo $! > grandchild.pid
echo $$ > child.pid
cut -d' ' -f5 /proc/$$/stat > group.pid
echo waiting
wait
"#,
        );
    make_executable(&t.root().join("scripts/stop.sh"));
    let mut reap = Reap::default();
    let mut child = spawn(&t, &["run", "stop"]);
    reap.0.push(child.id() as i32);
    let grandchild = reap.add(&wait_for_file(&t, "grandchild.pid"));
    let trapping = reap.add(&wait_for_file(&t, "child.pid"));
    let group: i32 = wait_for_file(&t, "group.pid").parse().unwrap();

    signal(child.id(), "INT");
    let out = finish(&t, &mut child, Duration::from_secs(15));
    assert_eq!(out.code, 130, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(t.root().join("cleanup")).ok(),
        Some("cleanup done\n".to_string()),
        "the trap's cleanup did not complete: {out:?}"
    );
    assert!(
        out.stdout
            .contains("[stop] cleaning up\n[stop] still cleaning up\n"),
        "{out:?}"
    );
    assert!(!alive(trapping) && !alive(grandchild));
    assert_eq!(group_members(group), Vec::<i32>::new());
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let t = Test::new().tasks(
        "version = 1\n[tasks.stubborn]\nrun = 'trap \"\" TERM; sleep 30 & echo $! > grandchild.pid; echo $$ > shell.pid; wait'\n",
    );
    let mut reap = Reap::default();
    let mut child = spawn(&t, &["run", "stubborn"]);
    reap.0.push(child.id() as i32);
    let grandchild = reap.add(&wait_for_file(&t, "grandchild.pid"));
    let shell = reap.add(&wait_for_file(&t, "shell.pid"));

    let started = Instant::now();
    signal(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(child.id(), "INT");
    let out = finish(&t, &mut child, Duration::from_secs(15));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "two Ctrl-C took {took:?}: the grace period was not cut short"
    );
    out.assert(
        130,
        "\
▶ stubborn (never run)

task      result          time  why
stubborn  interrupted [TIME]  never run
1 interrupted
",
        "\
devgraph: interrupted: stopping running tasks (again to stop them at once)
devgraph: interrupted again: killing running tasks
",
    );
    assert!(!alive(shell), "the task's shell survived");
    assert!(!alive(grandchild), "the grandchild survived");
}

/// Ctrl-C while a task is being decided (its probe runs): its command must not start
/// afterwards, and the run must end promptly.
#[test]
fn ctrl_c_while_a_task_is_being_decided_does_not_start_it() {
    let t = Test::new().tasks(
        "version = 1\n[tasks.late]\nprobe = 'touch probing; sleep 1'\nrun = 'touch started; echo $$ > shell.pid; sleep 5'\n",
    );
    let mut reap = Reap::default();
    let mut child = spawn(&t, &["run", "late"]);
    reap.0.push(child.id() as i32);
    eventually("the probe", Duration::from_secs(20), || {
        t.root().join("probing").exists()
    });
    let started = Instant::now();
    signal(child.id(), "INT");
    let out = finish(&t, &mut child, Duration::from_secs(20));
    if let Ok(pid) = std::fs::read_to_string(t.root().join("shell.pid")) {
        reap.add(pid.trim());
    }
    let took = started.elapsed();
    out.assert(
        130,
        "
task  result         time  why
late  cancelled            not started: the run stopped
1 cancelled
",
        "",
    );
    assert!(
        !t.root().join("started").exists(),
        "the task's command started after Ctrl-C"
    );
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    t.run(&["why", "late"])
        .assert(0, "late is drifted:\n  never run\n", "");
}

/// The same between attempts: Ctrl-C during `retry_delay` ends the run at once and starts
/// no further attempt.
#[test]
fn ctrl_c_during_a_retry_delay_starts_no_further_attempt() {
    let t = Test::new().tasks(
        "version = 1\n[tasks.r]\nretries = 1\nretry_delay = \"3s\"\n\
         run = 'echo x >> attempts; if [ $(wc -l < attempts) -gt 1 ]; then sleep 5; fi; exit 1'\n",
    );
    let mut reap = Reap::default();
    let mut child = spawn(&t, &["run", "r"]);
    reap.0.push(child.id() as i32);
    wait_for_file(&t, "attempts");
    // The first attempt exits right after writing `attempts`; the runner is then in the delay.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    signal(child.id(), "INT");
    let out = finish(&t, &mut child, Duration::from_secs(20));
    let took = started.elapsed();
    assert_eq!(out.code, 130, "{out:?}");
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    let logs = t.run(&["log", "r", "--list"]).normalized().1;
    assert_eq!(
        logs, ".devgraph/logs/r/[LOG]\n",
        "a retry was started after Ctrl-C"
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("attempts")).unwrap(),
        "x\n",
        "a retry ran after Ctrl-C"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Timeouts

#[test]
fn a_timed_out_task_is_killed_with_its_children() {
    let t = Test::new().tasks(
        "version = 1\n[tasks.hang]\ntimeout = \"500ms\"\nrun = 'sleep 30 & echo $! > grandchild.pid; echo $$ > shell.pid; wait'\n",
    );
    let mut reap = Reap::default();
    let started = Instant::now();
    let out = t.run(&["run", "hang"]);
    let took = started.elapsed();
    let grandchild = reap.add(&wait_for_file(&t, "grandchild.pid"));
    let shell = reap.add(&wait_for_file(&t, "shell.pid"));
    out.assert(
        1,
        "\
▶ hang (never run)

task  result         time  why
hang  timed out [TIME]  never run
1 timed out
first failure: hang, log: .devgraph/logs/hang/[LOG]
",
        "✘ hang timed out after [TIME]\n",
    );
    assert!(out.stderr.contains("timed out after 500ms"), "{out:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(!alive(grandchild), "the grandchild outlived the timeout");
    assert!(!alive(shell), "the shell outlived the timeout");
    t.run(&["why", "hang"]).assert(
        0,
        "hang is drifted:\n  last attempt timed out; log: .devgraph/logs/hang/[LOG]\n",
        "",
    );
}

// ---------------------------------------------------------------------------------------
// 5. Retries

/// Fails its first two attempts (a counter in `count`).
fn flaky(retries: u32) -> Test {
    Test::new().tasks(&format!(
        "version = 1\n[tasks.flaky]\nretries = {retries}\nretry_delay = \"100ms\"\n\
         run = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo \"attempt $n\"; test $n -gt 2'\n"
    ))
}

#[test]
fn a_flaky_task_succeeds_within_its_retries_with_a_doubling_delay() {
    let t = flaky(2);
    let started = Instant::now();
    let out = t.run(&["run", "flaky"]);
    let took = started.elapsed();
    out.assert(
        0,
        "\
▶ flaky (never run)
[flaky] attempt 1
[flaky] attempt 2
[flaky] attempt 3
✔ flaky ([TIME])

task   result         time  why
flaky  ran [TIME]  never run
1 ran
",
        "\
devgraph: flaky failed; retry 1 of 2 in [TIME]
devgraph: flaky failed; retry 2 of 2 in [TIME]
",
    );
    assert!(
        out.stderr.contains("retry 1 of 2 in 100ms")
            && out.stderr.contains("retry 2 of 2 in 200ms"),
        "{}",
        out.stderr
    );
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert_eq!(t.run(&["plan", "flaky", "--exit-code"]).code, 0);

    let t = flaky(1);
    let out = t.run(&["run", "flaky"]);
    out.assert(
        1,
        "\
▶ flaky (never run)
[flaky] attempt 1
[flaky] attempt 2

task   result         time  why
flaky  failed [TIME]  never run
1 failed
first failure: flaky, log: .devgraph/logs/flaky/[LOG]
",
        "\
devgraph: flaky failed; retry 1 of 1 in [TIME]
✘ flaky failed (exit 1) after [TIME]; log: .devgraph/logs/flaky/[LOG]
",
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("count")).unwrap(),
        "2\n"
    );
}

// ---------------------------------------------------------------------------------------
// 6. -k / --keep-going

/// `bad` fails at once; `branch` (independent of it) needs `slow`.
const KEEP_GOING: &str = r#"version = 1
[tasks.bad]
run = "exit 3"
[tasks.slow]
run = "sleep 0.5"
[tasks.branch]
deps = ["slow"]
run = "touch branch-ran"
"#;

/// The summary after the blank line, and the sorted lines before it (with -j2 tasks start in
/// either order).
#[track_caller]
fn split_run(out: &Output) -> (Vec<String>, String) {
    let stdout = out.normalized().1;
    let (live, summary) = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    let mut live: Vec<String> = live.lines().map(String::from).collect();
    live.sort();
    (live, summary.to_string())
}

#[test]
fn after_a_failure_nothing_new_starts_unless_keep_going() {
    // With -j2 `bad` and `slow` start together and `bad` fails while `slow` runs. With -j1
    // the longest chain (`slow` → `branch`) starts first, then `bad` (defined first) before
    // `branch`. Either way `branch` is ready only after the failure; `slow` was running then
    // and finishes.
    for jobs in ["-j1", "-j2"] {
        let t = Test::new().tasks(KEEP_GOING);
        let out = t.run(&["run", "bad", "branch", jobs]);
        let (code, _, stderr) = out.normalized();
        assert_eq!(
            (code, stderr.as_str()),
            (
                1,
                "✘ bad failed (exit 3) after [TIME]; log: .devgraph/logs/bad/[LOG]\n"
            ),
            "{jobs}: {out:?}"
        );
        assert_eq!(
            split_run(&out),
            (
                ["▶ bad (never run)", "▶ slow (never run)", "✔ slow ([TIME])"]
                    .map(String::from)
                    .to_vec(),
                "\
task    result         time  why
bad     failed [TIME]  never run
slow    ran [TIME]  never run
branch  cancelled            not started: the run stopped
1 failed, 1 ran, 1 cancelled
first failure: bad, log: .devgraph/logs/bad/[LOG]
"
                .to_string()
            ),
            "{jobs}"
        );
        assert!(!t.root().join("branch-ran").exists(), "{jobs}");

        let t = Test::new().tasks(KEEP_GOING);
        let out = t.run(&["run", "bad", "branch", jobs, "-k"]);
        let (code, _, stderr) = out.normalized();
        assert_eq!(
            (code, stderr.as_str()),
            (
                1,
                "✘ bad failed (exit 3) after [TIME]; log: .devgraph/logs/bad/[LOG]\n"
            ),
            "{jobs} -k: {out:?}"
        );
        assert_eq!(
            split_run(&out),
            (
                [
                    "▶ bad (never run)",
                    "▶ branch (never run)",
                    "▶ slow (never run)",
                    "✔ branch ([TIME])",
                    "✔ slow ([TIME])"
                ]
                .map(String::from)
                .to_vec(),
                "\
task    result         time  why
bad     failed [TIME]  never run
slow    ran [TIME]  never run
branch  ran [TIME]  never run
1 failed, 2 ran
first failure: bad, log: .devgraph/logs/bad/[LOG]
"
                .to_string()
            ),
            "{jobs} -k"
        );
        assert!(t.root().join("branch-ran").exists(), "{jobs} -k");
    }
}

// ---------------------------------------------------------------------------------------
// 7. The lock (crash.rs checks the prefix of the message and waiting; this checks the
// whole message, the holder's pid, and that the refused run did nothing)

#[test]
fn a_refused_run_names_the_holder_exactly_and_does_nothing() {
    let t = Test::new().tasks(
        "version = 1\n[tasks.slow]\nrun = 'touch started; sleep 2'\n[tasks.quick]\nrun = 'touch quick-ran'\n",
    );
    let mut reap = Reap::default();
    let mut first = spawn(&t, &["run", "slow"]);
    reap.0.push(first.id() as i32);
    eventually("the first run's task", Duration::from_secs(20), || {
        t.root().join("started").exists()
    });
    let refused = t.run(&["run", "quick", "--no-wait"]);
    let bin = env!("CARGO_BIN_EXE_devgraph");
    let since = regex::Regex::new(r"since \d\d:\d\d:\d\d\)").unwrap();
    assert_eq!(
        (
            refused.code,
            refused.stdout.as_str(),
            since.replace(&refused.stderr, "since [HH:MM:SS])").as_ref()
        ),
        (
            2,
            "",
            format!(
                "error: another devgraph is running in this project: pid {} (`{bin} run slow`, since [HH:MM:SS])\n  \
                 help: wait for it to finish, or leave out --no-wait to wait for it\n",
                first.id()
            )
            .as_str()
        ),
    );
    assert!(!t.root().join("quick-ran").exists());
    assert!(!t.root().join(".devgraph/logs/quick").exists());
    let out = finish(&t, &mut first, Duration::from_secs(20));
    assert_eq!(out.code, 0, "{out:?}");
}

// ---------------------------------------------------------------------------------------
// 8. Preflight

#[test]
fn missing_tools_and_env_are_all_reported_before_anything_runs() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[settings]
default = "all"

[tasks.all]
deps = ["build", "push"]

[tasks.build]
run = "touch build-ran"
probe = "touch probe-ran"
requires_tools = ["sh", "devgraph-test-no-such-tool-a"]
requires_env = ["DEVGRAPH_TEST_SET", "DEVGRAPH_TEST_UNSET"]

[tasks.push]
deps = ["build"]
run = "touch push-ran"
requires_tools = ["devgraph-test-no-such-tool-b", "devgraph-test-no-such-tool-a"]

[tasks.elsewhere]
run = "touch elsewhere-ran"
requires_tools = ["devgraph-test-no-such-tool-c"]
"#,
        )
        .env("DEVGRAPH_TEST_SET", "yes")
        .env_remove("DEVGRAPH_TEST_UNSET");
    t.run(&["run"]).assert(
        2,
        "",
        "\
error: 3 requirements are missing; nothing was run
  tool `devgraph-test-no-such-tool-a` is not on PATH (needed by build, push)
  tool `devgraph-test-no-such-tool-b` is not on PATH (needed by push)
  env `DEVGRAPH_TEST_UNSET` is not set or empty (needed by build)
  help: install the tools and set the variables (in the environment, [env], or a dotenv file), then run again
",
    );
    for side_effect in ["build-ran", "probe-ran", "push-ran", "elsewhere-ran"] {
        assert!(!t.root().join(side_effect).exists(), "{side_effect} exists");
    }
    assert!(!t.root().join(".devgraph/logs").exists());
    t.run(&["status"]).assert(
        0,
        "build      never run\npush       never run\nall        never run\nelsewhere  never run\n",
        "",
    );
}

// ---------------------------------------------------------------------------------------
// 9. A background process holding stdout

#[test]
fn a_background_process_holding_stdout_does_not_hang_the_run() {
    let t = Test::new()
        .tasks("version = 1\n[tasks.bg]\nrun = 'sleep 30 & echo $! > bg.pid; echo started'\n");
    let mut reap = Reap::default();
    let started = Instant::now();
    let out = t.run(&["run", "bg"]);
    let took = started.elapsed();
    let background = reap.add(&wait_for_file(&t, "bg.pid"));
    out.assert(
        0,
        "\
▶ bg (never run)
[bg] started
✔ bg ([TIME])

task  result         time  why
bg    ran [TIME]  never run
1 ran
",
        "",
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!alive(background), "the task's `sleep 30` outlived the run");
    t.run(&["log", "bg"]).assert(
        0,
        "started\ndevgraph: stopping processes the task left running\n",
        "",
    );
}

// ---------------------------------------------------------------------------------------
// 10. run --json

fn json_events(out: &Output) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{out:?}"))
        })
        .collect()
}

#[test]
fn run_json_is_one_event_per_line_in_order() {
    let t = Test::new().tasks(
        "version = 1\n[tasks.a]\nrun = 'echo one; echo two >&2; echo three'\n\
         [tasks.b]\ndeps = [\"a\"]\nrun = 'echo four'\n",
    );
    let out = t.run(&["run", "b", "--json"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    let events = json_events(&out);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["task"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("run_started", ""),
            ("task_started", "a"),
            ("output", "a"),
            ("output", "a"),
            ("output", "a"),
            ("task_finished", "a"),
            ("task_started", "b"),
            ("output", "b"),
            ("task_finished", "b"),
            ("run_finished", ""),
        ],
        "{}",
        out.stdout
    );
    assert_eq!(events[0]["targets"], serde_json::json!(["b"]));
    assert_eq!(events[1]["drift"], "never-run");
    assert_eq!(
        events[1]["causes"],
        serde_json::json!([{ "cause": "never_run" }])
    );
    // Lines of one stream in order; the two streams may interleave either way.
    let lines = |stream: &str| -> Vec<(&str, &str)> {
        (events.iter())
            .filter(|e| e["event"] == "output" && e["stream"] == stream)
            .map(|e| (e["task"].as_str().unwrap(), e["line"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(
        lines("stdout"),
        [("a", "one"), ("a", "three"), ("b", "four")]
    );
    assert_eq!(lines("stderr"), [("a", "two")]);
    assert_eq!(events[5]["result"], serde_json::json!({ "result": "ran" }));
    assert!(events[5]["duration_ms"].is_u64());
    let last = &events[9];
    assert_eq!(last["ok"], true);
    let tasks: Vec<(&str, &str)> = (last["tasks"].as_array().unwrap().iter())
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["result"]["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(tasks, [("a", "ran"), ("b", "ran")]);

    // Converged: no task starts, each is reported up to date.
    let out = t.run(&["run", "b", "--json"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    let kinds: Vec<String> = json_events(&out)
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["event"].as_str().unwrap(),
                e["task"].as_str().unwrap_or("-"),
                e["result"]["result"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started - -",
            "task_finished a up_to_date",
            "task_finished b up_to_date",
            "run_finished - -",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 11. Every result kind in one summary

#[test]
fn the_summary_names_every_result_kind() {
    // With -j8 the five roots start together: `bad` fails at once, `hang` times out at
    // 300 ms, `gate` is still running then and finishes; `after_bad` is below a failure
    // (skipped), `after_gate` becomes ready only after the failure (cancelled).
    let t = Test::new().tasks(
        r#"version = 1
[tasks.done]
run = "true"
[tasks.ok]
run = "true"
[tasks.bad]
run = "exit 3"
[tasks.hang]
timeout = "300ms"
run = "sleep 5"
[tasks.gate]
run = "sleep 1"
[tasks.after_bad]
deps = ["bad"]
run = "true"
[tasks.after_gate]
deps = ["gate"]
run = "true"
"#,
    );
    assert_eq!(t.run(&["run", "done"]).code, 0);
    let out = t.run(&[
        "run",
        "done",
        "ok",
        "bad",
        "hang",
        "gate",
        "after_bad",
        "after_gate",
        "-j8",
    ]);
    let (code, _, stderr) = out.normalized();
    assert_eq!(code, 1, "{out:?}");
    let (live, summary) = split_run(&out);
    assert_eq!(
        live,
        [
            "▶ bad (never run)",
            "▶ gate (never run)",
            "▶ hang (never run)",
            "▶ ok (never run)",
            "✔ gate ([TIME])",
            "✔ ok ([TIME])",
        ],
        "{out:?}"
    );
    assert_eq!(
        summary,
        "\
task        result         time  why
done        up to date
ok          ran [TIME]  never run
bad         failed [TIME]  never run
hang        timed out [TIME]  never run
gate        ran [TIME]  never run
after_bad   skipped              dep failed: bad
after_gate  cancelled            not started: the run stopped
1 up to date, 2 ran, 1 failed, 1 timed out, 1 skipped, 1 cancelled
first failure: bad, log: .devgraph/logs/bad/[LOG]
",
        "{out:?}"
    );
    // The failures are on stderr, in the order they happened.
    assert_eq!(
        stderr,
        "✘ bad failed (exit 3) after [TIME]; log: .devgraph/logs/bad/[LOG]\n✘ hang timed out after [TIME]\n"
    );
}

/// `plan`, `why` and `status` run probes but no task: Ctrl-C kills the probes still running
/// (a probe may hang until its timeout) and exits 130 at once.
#[test]
fn ctrl_c_during_plan_kills_the_running_probes() {
    for command in ["plan", "why", "status"] {
        let t = Test::new().tasks(
            "version = 1\n[tasks.svc]\nrun = 'true'\nprobe = 'sleep 30 & echo $! > child.pid; echo $$ > probe.pid; wait'\nprobe_timeout = '1m'\n",
        );
        let mut reap = Reap::default();
        let mut child = spawn(&t, &[command, "svc"]);
        reap.0.push(child.id() as i32);
        let probe = reap.add(&wait_for_file(&t, "probe.pid"));
        let sleeper = reap.add(&wait_for_file(&t, "child.pid"));
        let started = Instant::now();
        signal(child.id(), "INT");
        let out = finish(&t, &mut child, Duration::from_secs(10));
        assert_eq!(out.code, 130, "{command}: {out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{command} waited for its probe"
        );
        assert!(
            !alive(probe) && !alive(sleeper),
            "{command}: a probe process survived"
        );
    }
}
