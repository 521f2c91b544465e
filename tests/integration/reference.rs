//! The reference environment (issue 5, `docs/reference-env.md`): the repository's own root
//! `tasks.toml`, `layers/`, `scripts/` and `services/`, copied into a temp project and run
//! against the fake docker, k3d, kubectl, helm and helmfile of `tests/fakes/`. One test per
//! drift scenario of REFERENCE-ENV.md, each asserting the exact set of tasks that ran (from
//! `run --json`), then a few behaviours of the scripts themselves. No test needs Docker or a
//! cluster; the fakes run in the foreground of the tasks, so nothing outlives a test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::Test;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

const SERVICES: [&str; 17] = [
    "agents",
    "agents-runtime",
    "chat",
    "graph",
    "inference",
    "inference-gateway",
    "migrations",
    "platform",
    "repository",
    "threads",
    "transformation",
    "workflow-worker",
    "workflows",
    "workflows-runtime",
    "workspace",
    "www-ameide",
    "www-ameide-platform",
];

const LAYERS: [&str; 9] = [
    "infra:10", "infra:15", "infra:20", "infra:22", "infra:24", "infra:40", "infra:45", "infra:50",
    "infra:60",
];

/// A temp project holding the reference environment, and the fakes' world beside it.
struct Env {
    t: Test,
    world: TempDir,
}

/// What one `devgraph --json run` did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// Each task of the run and its result (`ran`, `up_to_date`, `failed`, `skipped`, ...).
    results: BTreeMap<String, String>,
    /// Each task that started, and its `DEVGRAPH_DRIFT`.
    drift: BTreeMap<String, String>,
    elapsed: Duration,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            // Keeps the mode: the scripts stay executable.
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A set of task names.
fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names.into_iter().map(String::from).collect()
}

fn images() -> Vec<String> {
    SERVICES.iter().map(|s| format!("image:{s}")).collect()
}

/// Every task of the graph.
fn every_task() -> BTreeSet<String> {
    let mut all = set(["registry", "cluster", "images", "smoke:registry", "up"]);
    all.extend(images());
    all.extend(set(LAYERS));
    all
}

impl Env {
    fn new() -> Env {
        let world = tempfile::Builder::new()
            .prefix("devgraph-fake-world")
            .tempdir()
            .expect("temp dir");
        let path = format!(
            "{REPO}/tests/fakes:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        let t = Test::new()
            .env("PATH", &path)
            .env("FAKE_WORLD", &world.path().display().to_string())
            .env("FAKE_DELAY_MS", "20")
            .env("GHCR_TOKEN", "ghp_first-token");
        let repo = Path::new(REPO);
        std::fs::copy(repo.join("tasks.toml"), t.root().join("tasks.toml")).expect("copy");
        for dir in ["layers", "scripts", "services"] {
            copy_tree(&repo.join(dir), &t.root().join(dir));
        }
        Env { t, world }
    }

    fn fakes() -> PathBuf {
        Path::new(REPO).join("tests/fakes")
    }

    /// `devgraph --json run ARGS`, with these changes to the environment.
    #[track_caller]
    fn run_with(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
        let mut all = vec!["--json".to_string(), "run".to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let mut cmd = self.t.command(&all);
        for (name, value) in env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        let start = Instant::now();
        let out = cmd.output().expect("run devgraph");
        let elapsed = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut results = BTreeMap::new();
        let mut drift = BTreeMap::new();
        for line in stdout.lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stdout}"));
            let task = || event["task"].as_str().unwrap().to_string();
            match event["event"].as_str() {
                Some("task_finished") => {
                    let result = event["result"]["result"].as_str().unwrap().to_string();
                    assert!(results.insert(task(), result).is_none(), "{stdout}");
                }
                Some("task_started") => {
                    drift.insert(task(), event["drift"].as_str().unwrap().to_string());
                }
                _ => {}
            }
        }
        // The fakes refuse (and record) any argument the scripts should not use.
        let refused = std::fs::read_to_string(self.world.path().join("errors.log"));
        assert!(
            refused.is_err(),
            "the fakes refused calls:\n{refused:?}\n{stdout}"
        );
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            results,
            drift,
            elapsed,
        }
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// `devgraph run` from scratch, which must run every task.
    #[track_caller]
    fn converge(&self) -> Run {
        let run = self.run(&[]);
        run.ok();
        assert_eq!(run.with("ran"), every_task(), "{}", run.stdout);
        run
    }

    /// Changes the fakes' world behind devgraph's back (`tests/fakes/fake-world`).
    #[track_caller]
    fn world(&self, args: &[&str]) {
        let status = Command::new(Self::fakes().join("fake-world"))
            .args(args)
            .env("FAKE_WORLD", self.world.path())
            .status()
            .expect("fake-world");
        assert!(status.success(), "fake-world {args:?}");
    }

    /// The calls the fakes received so far, as `TOOL ARGS...`.
    fn calls(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.world.path().join("calls.log")).unwrap_or_default();
        log.lines()
            .map(|line| line.splitn(5, ' ').nth(4).unwrap_or_default().to_string())
            .collect()
    }

    /// Appends a line to a file of the project.
    fn append(&self, path: &str, line: &str) {
        let full = self.t.root().join(path);
        let mut text = std::fs::read_to_string(&full).expect("read");
        text.push_str(line);
        text.push('\n');
        std::fs::write(full, text).expect("write");
    }

    /// The lines task `task` printed.
    fn output_of(run: &Run, task: &str) -> Vec<String> {
        run.stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["event"] == "output" && e["task"] == task)
            .map(|e| e["line"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Run {
    /// The tasks whose result is `result`.
    fn with(&self, result: &str) -> BTreeSet<String> {
        self.results
            .iter()
            .filter(|(_, r)| r.as_str() == result)
            .map(|(task, _)| task.clone())
            .collect()
    }

    #[track_caller]
    fn ok(&self) {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "{}",
            self.stdout
        );
        // Every task of the default target is accounted for.
        assert_eq!(
            self.results.keys().cloned().collect::<BTreeSet<_>>(),
            every_task()
        );
    }
}

/// The calls made since `before` calls had been recorded.
fn since(calls: Vec<String>, before: usize) -> Vec<String> {
    calls.into_iter().skip(before).collect()
}

// ---------------------------------------------------------------------------------------
// The drift scenarios of REFERENCE-ENV.md, in its order.

#[test]
fn scenario_01_nothing_changed_runs_nothing_and_checks_quickly() {
    let env = Env::new();
    env.converge();
    let before = env.calls().len();
    let run = env.run(&[]);
    run.ok();
    assert_eq!(run.with("ran"), set([]), "{}", run.stdout);
    assert_eq!(run.with("up_to_date"), every_task());
    // Only the probes asked anything, and they changed nothing.
    for call in since(env.calls(), before) {
        assert!(
            call.starts_with("docker inspect")
                || call.starts_with("docker buildx imagetools inspect")
                || call.starts_with("kubectl --context k3d-ameide --request-timeout=5s get")
                || (call.starts_with("helmfile ") && call.ends_with(" list --skip-charts"))
                || call.starts_with("helm status"),
            "a no-op run made the call {call}"
        );
    }
    // Well under a second on an idle machine (31 probes against the fakes); the bound is
    // wide because CI machines are not idle.
    eprintln!("no-op run of the reference environment: {:?}", run.elapsed);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn scenario_02_a_values_file_of_layer_40_reruns_only_infra_40() {
    let env = Env::new();
    env.converge();
    env.append("layers/40-data-plane/values/redis.yaml", "  # tuned");
    let run = env.run(&[]);
    run.ok();
    // Its releases keep their first-deployed time: early cutoff below it.
    assert_eq!(run.with("ran"), set(["infra:40"]), "{}", run.stdout);
    assert_eq!(run.drift["infra:40"], "inputs");
}

#[test]
fn scenario_03_a_deleted_registry_rebuilds_the_cluster_the_images_and_every_layer() {
    let env = Env::new();
    env.converge();
    env.world(&["delete-registry"]);
    let before = env.calls().len();
    let run = env.run(&[]);
    run.ok();
    let mut expected = set(["registry", "cluster", "smoke:registry", "up"]);
    expected.extend(images());
    expected.extend(set(LAYERS));
    // `images` is not among them: the rebuilt images have the digests they had (the same
    // sources), so the group's identity is unchanged; infra:50 re-runs for the new cluster.
    assert_eq!(run.with("ran"), expected, "{}", run.stdout);
    assert_eq!(run.drift["registry"], "probe");
    assert_eq!(run.drift["cluster"], "deps");
    assert_eq!(run.drift["image:threads"], "probe,deps");
    let calls = since(env.calls(), before);
    assert!(calls.contains(&"k3d registry create ameide.localhost --port 0.0.0.0:5001".into()));
    assert!(calls.contains(&"k3d cluster delete ameide".into()));
    assert!(calls.contains(&"k3d cluster create --config layers/cluster/k3d.yaml".into()));
}

#[test]
fn scenario_04_a_source_file_of_threads_rebuilds_it_and_redeploys_layer_50() {
    let env = Env::new();
    env.converge();
    let before = env.calls().len();
    env.append("services/threads/service.txt", "a new line of threads");
    let run = env.run(&[]);
    run.ok();
    // The groups `images` and `up` pass the new digest on (they run nothing themselves);
    // infra:50 keeps its releases' identity, so infra:60 stays.
    assert_eq!(
        run.with("ran"),
        set(["image:threads", "images", "infra:50", "up"]),
        "{}",
        run.stdout
    );
    assert_eq!(run.drift["infra:50"], "deps");
    let calls = since(env.calls(), before);
    let builds: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("docker build "))
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert!(builds[0].ends_with("services/threads"), "{builds:?}");
    // Layer 50 was synced with the image digests.
    assert!(
        calls.iter().any(
            |c| c.starts_with("helmfile -f layers/50-product-services/helmfile.yaml")
                && c.contains("--state-values-file")
                && c.ends_with(" sync")
        ),
        "{calls:#?}"
    );
}

#[test]
fn scenario_05_a_touched_but_unchanged_threads_file_runs_nothing() {
    let env = Env::new();
    env.converge();
    let file = std::fs::File::options()
        .write(true)
        .open(env.t.root().join("services/threads/service.txt"))
        .expect("open");
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .expect("touch");
    let run = env.run(&[]);
    run.ok();
    assert_eq!(run.with("ran"), set([]), "{}", run.stdout);
}

#[test]
fn scenario_06_a_changed_k3d_yaml_recreates_the_cluster_and_everything_on_it() {
    let env = Env::new();
    env.converge();
    let config = env.t.root().join("layers/cluster/k3d.yaml");
    let text = std::fs::read_to_string(&config).expect("read");
    assert!(text.contains("  - port: 8000:8000\n"));
    std::fs::write(&config, text.replace("8000:8000", "8080:8000")).expect("write");
    let before = env.calls().len();
    let run = env.run(&[]);
    run.ok();
    let mut expected = set(["cluster", "smoke:registry", "up"]);
    expected.extend(set(LAYERS));
    assert_eq!(run.with("ran"), expected, "{}", run.stdout);
    assert_eq!(run.drift["cluster"], "inputs");
    let calls = since(env.calls(), before);
    assert!(
        calls.contains(&"k3d cluster delete ameide".into()),
        "{calls:#?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("docker build ")));
}

#[test]
fn scenario_07_a_stopped_cluster_is_started_and_nothing_else_runs() {
    let env = Env::new();
    env.converge();
    env.world(&["stop-cluster"]);
    let before = env.calls().len();
    let run = env.run(&[]);
    run.ok();
    assert_eq!(run.with("ran"), set(["cluster"]), "{}", run.stdout);
    assert_eq!(run.drift["cluster"], "probe");
    let k3d: Vec<String> = since(env.calls(), before)
        .into_iter()
        .filter(|c| c.starts_with("k3d "))
        .collect();
    assert_eq!(
        k3d,
        ["k3d cluster get ameide", "k3d cluster start ameide"],
        "started, not recreated"
    );
}

#[test]
fn scenario_08_run_infra_24_on_a_fresh_machine_runs_its_chain_only() {
    let env = Env::new();
    // The images are not part of it, so their token is not needed either.
    let run = env.run_with(&["infra:24"], &[("GHCR_TOKEN", None)]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{}", run.stdout);
    let expected = set([
        "registry", "cluster", "infra:10", "infra:15", "infra:20", "infra:24",
    ]);
    assert_eq!(run.with("ran"), expected, "{}", run.stdout);
    assert_eq!(
        run.results.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
}

#[test]
fn scenario_09_a_failing_layer_40_skips_what_needs_it_and_the_next_run_resumes_there() {
    let env = Env::new();
    env.world(&["fail-sync", "40-data-plane"]);
    let run = env.run(&["-k"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.with("failed"), set(["infra:40"]), "{}", run.stdout);
    assert_eq!(
        run.with("skipped"),
        set(["infra:45", "infra:50", "infra:60", "up"])
    );
    let mut finished = set([
        "registry",
        "cluster",
        "images",
        "smoke:registry",
        "infra:10",
        "infra:15",
        "infra:20",
        "infra:22",
        "infra:24",
    ]);
    finished.extend(images());
    assert_eq!(run.with("ran"), finished, "{}", run.stdout);
    let errors = Env::output_of(&run, "infra:40");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("UPGRADE FAILED: context deadline exceeded")),
        "{errors:#?}"
    );

    env.world(&["unfail-sync", "40-data-plane"]);
    let run = env.run(&[]);
    run.ok();
    assert_eq!(
        run.with("ran"),
        set(["infra:40", "infra:45", "infra:50", "infra:60", "up"]),
        "{}",
        run.stdout
    );
    assert_eq!(run.drift["infra:40"], "failed");
}

#[test]
fn scenario_10_an_unset_ghcr_token_is_one_error_before_anything_runs() {
    let env = Env::new();
    let run = env.run_with(&[], &[("GHCR_TOKEN", None)]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (
            2,
            "",
            "\
error: 1 requirement is missing; nothing was run
  env `GHCR_TOKEN` is not set or empty (needed by image:agents, image:agents-runtime, image:chat and 14 more)
  help: install the tools and set the variables (in the environment, [env], or a dotenv file), then run again
"
        )
    );
    // Not a single call, not even a probe.
    assert_eq!(env.calls(), Vec::<String>::new());
    // An empty one is as good as none.
    let run = env.run_with(&[], &[("GHCR_TOKEN", Some(""))]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("env `GHCR_TOKEN` is not set or empty"));
}

#[test]
fn scenario_11_a_rotated_ghcr_token_rebuilds_nothing() {
    let env = Env::new();
    env.converge();
    let run = env.run_with(&[], &[("GHCR_TOKEN", Some("ghp_rotated-token"))]);
    run.ok();
    assert_eq!(run.with("ran"), set([]), "{}", run.stdout);
}

// ---------------------------------------------------------------------------------------
// Parallelism, and what the scripts do beyond the scenarios.

/// When each task of a `--trace` ran: name → (start, end), in microseconds.
fn spans(trace: &Path) -> BTreeMap<String, (u64, u64)> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trace).expect("trace")).expect("JSON");
    doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_u64().unwrap();
            (
                e["name"].as_str().unwrap().to_string(),
                (ts, ts + e["dur"].as_u64().unwrap()),
            )
        })
        .collect()
}

#[test]
fn a_cold_up_runs_layers_22_24_40_side_by_side_and_builds_images_while_the_cluster_comes_up() {
    let env = Env::new();
    let trace = env.t.root().join("trace.json");
    let run = env.run(&["--trace", trace.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let spans = spans(&trace);
    let overlap = |a: &str, b: &str| {
        let ((a0, a1), (b0, b1)) = (spans[a], spans[b]);
        a0 < b1 && b0 < a1
    };
    for (a, b) in [
        ("infra:22", "infra:24"),
        ("infra:22", "infra:40"),
        ("infra:24", "infra:40"),
    ] {
        assert!(overlap(a, b), "{a} and {b} did not overlap: {spans:#?}");
    }
    let building_with_the_cluster = images().iter().filter(|i| overlap(i, "cluster")).count();
    assert!(building_with_the_cluster >= 2, "{spans:#?}");
}

#[test]
fn a_release_stuck_pending_fails_its_layer_clearly_before_any_sync() {
    let env = Env::new();
    env.converge();
    env.world(&["release-status", "ameide-data", "redis", "pending-upgrade"]);
    let before = env.calls().len();
    let run = env.run(&["infra:40"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.with("failed"), set(["infra:40"]));
    assert_eq!(run.drift["infra:40"], "probe");
    let output = Env::output_of(&run, "infra:40");
    assert!(
        output.contains(&"run-helm-layer: error: release ameide-data/redis is stuck in pending-upgrade (an earlier helm was interrupted)".to_string()),
        "{output:#?}"
    );
    assert!(
        output.iter().any(
            |l| l.contains("fix: helm rollback redis -n ameide-data --kube-context k3d-ameide")
        ),
        "{output:#?}"
    );
    let calls = since(env.calls(), before);
    assert!(!calls.iter().any(|c| c.ends_with(" sync")), "{calls:#?}");
}

#[test]
fn helm_tests_missing_logs_after_a_pass_warn_and_a_failed_suite_fails_its_layer() {
    let env = Env::new();
    env.world(&["lose-test-pods", "data-plane-smoke"]);
    env.world(&["fail-test", "auth-smoke"]);
    let run = env.run(&["-k"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.with("failed"), set(["infra:24"]));
    assert!(run.with("ran").contains("infra:40"));
    let warning = "run-helm-layer: warning: the suite data-plane-smoke passed, but its test pods \
                   were gone before their logs could be read";
    let output = Env::output_of(&run, "infra:40");
    assert!(output.iter().any(|l| l.starts_with(warning)), "{output:#?}");
    let output = Env::output_of(&run, "infra:24");
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("[pod/auth-smoke-test-")
                && l.ends_with("auth-smoke: check failed")),
        "the failed suite's logs are shown: {output:#?}"
    );
    assert!(
        output.contains(
            &"run-helm-layer: error: helm test failed for auth-smoke (logs above)".to_string()
        ),
        "{output:#?}"
    );
    // Each attempt deleted the previous attempt's test Job before `helm test`.
    let calls = env.calls();
    let deletes = calls
        .iter()
        .filter(|c| c.contains("delete jobs -l app.kubernetes.io/instance=auth-smoke,"))
        .count();
    assert_eq!(deletes, 2, "one per attempt (retries = 1)");
}

#[test]
fn the_scripts_fail_fast_naming_the_missing_variable_or_tool() {
    let env = Env::new();
    let script = |name: &str, args: &[&str], env_vars: &[(&str, &str)]| {
        let mut cmd = Command::new(env.t.root().join("scripts").join(name));
        cmd.args(args)
            .env_clear()
            .env("PATH", format!("{REPO}/tests/fakes:/usr/bin:/bin"))
            .env("FAKE_WORLD", env.world.path());
        for (k, v) in env_vars {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("script");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let registry = [
        ("REGISTRY_PUSH_HOST", "localhost:5001"),
        ("REGISTRY_NAMESPACE", "ameide"),
        ("IMAGE_TAG", "dev"),
    ];
    assert_eq!(
        script("build-image.sh", &["threads"], &registry),
        (
            1,
            "build-image: error: GHCR_TOKEN is not set: builds read it as a BuildKit secret \
             (a GitHub token with read:packages)\n"
                .to_string()
        )
    );
    assert_eq!(
        script("build-image.sh", &["no-such-service"], &registry),
        (
            1,
            "build-image: error: services/no-such-service/Dockerfile does not exist\n".to_string()
        )
    );
    assert_eq!(
        script("ensure-k3d-cluster.sh", &[], &[]),
        (
            1,
            "ensure-k3d-cluster: error: CLUSTER_NAME is not set (devgraph sets it from [env] \
             in tasks.toml)\n"
                .to_string()
        )
    );
    let (code, stderr) = script(
        "run-helm-layer.sh",
        &["24-auth"],
        &[
            ("KUBE_CONTEXT", "k3d-ameide"),
            ("HELMFILE_ENVIRONMENT", "local"),
            // No fakes on this PATH.
            ("PATH", "/usr/bin:/bin"),
        ],
    );
    assert_eq!(
        (code, stderr.as_str()),
        (1, "run-helm-layer: error: helmfile is not on PATH\n")
    );
    assert_eq!(
        script("run-helm-layer.sh", &["23-nope"], &[]),
        (
            1,
            "run-helm-layer: error: layers/23-nope/helmfile.yaml does not exist\n".to_string()
        )
    );
}

/// `devgraph watch` on the reference environment: a values edit re-syncs its layer only,
/// and with `--probe-interval` a deleted registry is noticed and healed (scenario 3's set)
/// without any file change.
#[test]
fn watch_keeps_the_environment_converged() {
    let env = Env::new();
    let mut w = crate::watch::Watching::start(&env.t, &["--probe-interval", "500ms"]);
    w.wait_round(1);
    assert_eq!(
        w.started(1).into_iter().collect::<BTreeSet<_>>(),
        every_task()
    );
    env.append("layers/40-data-plane/values/redis.yaml", "  # tuned");
    w.wait_round(2);
    assert_eq!(w.round(2).unwrap()["trigger"], "files");
    assert_eq!(w.started(2), ["infra:40"]);
    env.world(&["delete-registry"]);
    w.wait_round(3);
    let round = w.round(3).unwrap();
    assert_eq!(round["trigger"], "probes");
    let mut expected = set(["registry", "cluster", "smoke:registry", "up"]);
    expected.extend(images());
    expected.extend(set(LAYERS));
    assert_eq!(
        w.started(3).into_iter().collect::<BTreeSet<_>>(),
        expected,
        "{round:#}"
    );
    assert_eq!(round["run_finished"]["ok"], true, "{round:#}");
    assert_eq!(w.interrupt(), 130);
}
