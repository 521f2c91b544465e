//! Running the `probe` commands of several tasks in parallel, each with its own timeout
//! (SPEC §3: a probe's stdout and exit status are live state, part of the fingerprint).
//! Built on `process::capture`.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::process::{self, Exit, Spec};

/// One probe to run: its script, the variables it gets on top of the inherited environment,
/// and how long it may take.
#[derive(Debug, Clone)]
pub struct Probe<'a> {
    /// The `probe` command, run through the shell.
    pub script: &'a str,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// After this long the probe's group is stopped and the outcome is `TimedOut`.
    pub timeout: Duration,
}

/// What a probe said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The probe ran to the end. `status` is the exit code, or 128 + the signal number when a
    /// signal ended it (the shell convention). `stdout` is lossy UTF-8, capped at 1 MiB (with a
    /// note when truncated), with one trailing newline removed.
    Exited {
        /// The exit status; non-zero is state, not an error.
        status: i32,
        /// What it printed.
        stdout: String,
    },
    /// The probe ran past its timeout and was stopped.
    TimedOut {
        /// The timeout, in milliseconds.
        after_ms: u64,
    },
    /// The probe could not be run (e.g. the shell is missing).
    Failed {
        /// Why.
        message: String,
    },
}

/// Runs every probe through `shell` in `cwd`, in parallel (at most `parallel` at once; 0
/// counts as 1), returning outcomes in the same order. A non-zero exit is state, not an
/// error. stdout has a trailing newline trimmed (only one); stderr is not part of the
/// outcome.
pub fn run_all(shell: &[String], cwd: &Path, probes: &[Probe], parallel: usize) -> Vec<Outcome> {
    let one = |probe: &Probe| run_one(shell, cwd, probe);
    let workers = parallel.max(1).min(probes.len());
    if workers <= 1 {
        return probes.iter().map(one).collect();
    }
    let next = AtomicUsize::new(0);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; probes.len()];
    thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, one) = (&next, &one);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(probe) = probes.get(i) else { break };
                    if tx.send((i, one(probe))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, outcome) in rx {
            outcomes[i] = Some(outcome);
        }
    });
    (outcomes.into_iter())
        .map(|o| o.unwrap_or_else(|| unreachable!("BUG: a probe without an outcome")))
        .collect()
}

/// The process groups of the probes running now, and whether they are being stopped (then
/// a probe that starts is stopped at once).
static LIVE: Mutex<(Vec<i32>, bool)> = Mutex::new((Vec::new(), false));

fn live() -> std::sync::MutexGuard<'static, (Vec<i32>, bool)> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills every probe running now, and every one that starts from now on: for Ctrl-C in a
/// command that runs probes but no tasks (`plan`, `why`, `status`, `watch` between rounds),
/// so that no probe outlives devgraph. Returns when they are gone.
pub fn stop_all() {
    let groups: Vec<i32> = {
        let mut live = live();
        live.1 = true;
        live.0.to_vec()
    };
    let stoppers: Vec<_> = groups
        .into_iter()
        .map(|pgid| thread::spawn(move || process::stop_group(pgid, Duration::ZERO)))
        .collect();
    for stopper in stoppers {
        let _ = stopper.join();
    }
}

fn run_one(shell: &[String], cwd: &Path, probe: &Probe) -> Outcome {
    let spec = Spec {
        shell,
        script: probe.script,
        cwd,
        env: &probe.env,
        timeout: Some(probe.timeout),
        stopped_from_outside: None,
    };
    let mut group = None;
    let (exit, stdout, _stderr) = process::capture_group(&spec, &mut |pgid| {
        group = Some(pgid);
        let stopping = {
            let mut live = live();
            live.0.push(pgid);
            live.1
        };
        if stopping {
            process::stop_group(pgid, Duration::ZERO);
        }
    });
    if let Some(pgid) = group {
        live().0.retain(|&g| g != pgid);
    }
    let exited = |status: i32| Outcome::Exited {
        status,
        stdout: trim_newline(stdout),
    };
    match exit {
        Exit::Code(code) => exited(code),
        Exit::Signal(signal) => exited(128 + signal),
        Exit::TimedOut(after) => Outcome::TimedOut {
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        },
        Exit::SpawnFailed(message) => Outcome::Failed { message },
    }
}

/// Removes one trailing `\n` (or `\r\n`).
fn trim_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash() -> Vec<String> {
        ["bash", "-eo", "pipefail", "-c"].map(String::from).to_vec()
    }

    fn probe(script: &str) -> Probe<'_> {
        Probe {
            script,
            env: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    fn exited(status: i32, stdout: &str) -> Outcome {
        Outcome::Exited {
            status,
            stdout: stdout.to_owned(),
        }
    }

    #[test]
    fn outcomes_keep_the_order_of_the_probes() {
        let dir = tempfile::tempdir().unwrap();
        // Later probes finish first.
        let scripts: Vec<String> = (0..6)
            .map(|i| format!("sleep 0.0{}; echo {i}", 6 - i))
            .collect();
        let probes: Vec<Probe> = scripts.iter().map(|s| probe(s)).collect();
        let outcomes = run_all(&bash(), dir.path(), &probes, 6);
        let expected: Vec<Outcome> = (0..6).map(|i| exited(0, &i.to_string())).collect();
        assert_eq!(outcomes, expected);
    }

    /// Each probe waits until every probe has left its marker: only possible if all of them
    /// run at the same time.
    #[test]
    fn probes_run_at_the_same_time() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"touch "m.$I"; for _ in $(seq 200); do set -- m.*; [ $# -ge 4 ] && exit 0; sleep 0.02; done; exit 1"#;
        let probes: Vec<Probe> = (0..4)
            .map(|i| Probe {
                env: vec![("I".to_owned(), i.to_string())],
                ..probe(script)
            })
            .collect();
        let outcomes = run_all(&bash(), dir.path(), &probes, 4);
        assert_eq!(outcomes, vec![exited(0, ""); 4]);
    }

    /// Each probe counts the probes running with it: never more than `parallel`.
    #[test]
    fn at_most_parallel_probes_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"touch "run.$I"; set -- run.*; echo $#; sleep 0.05; rm "run.$I""#;
        let probes: Vec<Probe> = (0..6)
            .map(|i| Probe {
                env: vec![("I".to_owned(), i.to_string())],
                ..probe(script)
            })
            .collect();
        for outcome in run_all(&bash(), dir.path(), &probes, 2) {
            let Outcome::Exited { status: 0, stdout } = &outcome else {
                panic!("{outcome:?}")
            };
            assert!(["1", "2"].contains(&stdout.as_str()), "{stdout}");
        }
    }

    #[test]
    fn a_slow_probe_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let probes = [
            Probe {
                timeout: Duration::from_millis(200),
                ..probe("sleep 30")
            },
            probe("echo fast"),
        ];
        let outcomes = run_all(&bash(), dir.path(), &probes, 2);
        assert_eq!(
            outcomes,
            [Outcome::TimedOut { after_ms: 200 }, exited(0, "fast")]
        );
    }

    #[test]
    fn a_non_zero_exit_is_state() {
        let dir = tempfile::tempdir().unwrap();
        let probes = [
            probe("echo down; echo noise >&2; exit 3"),
            probe("kill -KILL $$"),
        ];
        let outcomes = run_all(&bash(), dir.path(), &probes, 1);
        assert_eq!(outcomes, [exited(3, "down"), exited(137, "")]);
    }

    #[test]
    fn only_one_trailing_newline_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let probes = [
            probe(r"printf 'a\n\n'"),
            probe(r"printf 'b\r\n'"),
            probe("printf c"),
        ];
        let outcomes = run_all(&bash(), dir.path(), &probes, 3);
        assert_eq!(outcomes, [exited(0, "a\n"), exited(0, "b"), exited(0, "c")]);
    }

    #[test]
    fn env_is_passed() {
        let dir = tempfile::tempdir().unwrap();
        let probes = [Probe {
            env: vec![("service".to_owned(), "chat".to_owned())],
            ..probe(r#"echo "$service""#)
        }];
        assert_eq!(
            run_all(&bash(), dir.path(), &probes, 1),
            [exited(0, "chat")]
        );
    }

    #[test]
    fn a_missing_shell_fails_every_probe_and_no_probes_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let shell = ["/nonexistent/shell".to_owned()];
        let outcomes = run_all(&shell, dir.path(), &[probe("true"), probe("true")], 0);
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Failed { .. })),
            "{outcomes:?}"
        );
        assert_eq!(run_all(&bash(), dir.path(), &[], 4), []);
    }
}
