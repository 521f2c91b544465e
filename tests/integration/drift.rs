//! Drift as `run` and `plan` see it (SPEC §4, §6, §8): `plan` lines and `--exit-code`,
//! early cutoff, touched-but-unchanged files, failures and what the next run does, the
//! `DEVGRAPH_*` variables, `forget`, secrets kept out of everything devgraph writes, and
//! read-only commands leaving the store alone.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::Test;

/// Runs the default target quietly and asserts it succeeded.
#[track_caller]
fn converge(t: &Test) {
    let out = t.run(&["-q", "run"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
}

/// The JSON document `--json` printed (for `run`, the last line: the summary).
#[track_caller]
fn json(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

const LAYERS: &str = r#"version = 1
[settings]
default = "up"

[tasks.config]
inputs = ["config.txt"]
run = "true"

[tasks.gen]
inputs = ["in.txt"]
outputs = ["gen.txt"]
run = "head -1 in.txt > gen.txt"

[tasks.deploy]
deps = ["config", "gen"]
run = "true"

[tasks.docs]
deps = ["gen"]
run = "true"

[tasks.lint]
run = "true"

[tasks.up]
deps = ["deploy", "docs", "lint"]
"#;

#[test]
fn plan_lines_and_exit_code() {
    let t = Test::new()
        .tasks(LAYERS)
        .write("config.txt", "a\n")
        .write("in.txt", "a\n");
    t.run(&["plan", "--exit-code"]).assert(
        2,
        "\
will run    config  never run
will run    gen     never run
will run    deploy  never run (+2 more)
will run    docs    never run (+1 more)
will run    lint    never run
will run    up      never run (+3 more)
6 tasks: 6 will run, 0 may run, 0 up to date
",
        "",
    );
    // Without --exit-code, the same plan exits 0.
    assert_eq!(t.run(&["plan"]).code, 0);
    converge(&t);
    t.run(&["plan", "--exit-code"]).assert(
        0,
        "\
up to date  config
up to date  gen
up to date  deploy
up to date  docs
up to date  lint
up to date  up
6 tasks: 0 will run, 0 may run, 6 up to date
",
        "",
    );
    // gen has outputs: what depends on it only may run.
    t.put("in.txt", "b\n");
    t.run(&["plan", "--exit-code"]).assert(
        2,
        "\
up to date  config
will run    gen     input changed: in.txt
may run     deploy  if gen's output changes
may run     docs    if gen's output changes
up to date  lint
may run     up      if deploy's output changes (+1 more)
6 tasks: 1 will run, 3 may run, 2 up to date
",
        "",
    );
    // config has none: what depends on it will run.
    t.put("config.txt", "b\n");
    t.run(&["plan", "--exit-code"]).assert(
        2,
        "\
will run    config  input changed: config.txt
will run    gen     input changed: in.txt
will run    deploy  config will run (+1 more)
may run     docs    if gen's output changes
up to date  lint
will run    up      deploy will run (+1 more)
6 tasks: 4 will run, 1 may run, 1 up to date
",
        "",
    );
    // A target limits the plan to it and its deps.
    t.run(&["plan", "docs"]).assert(
        0,
        "\
will run    gen   input changed: in.txt
may run     docs  if gen's output changes
2 tasks: 1 will run, 1 may run, 0 up to date
",
        "",
    );
    let out = t.run(&["plan", "--json", "--exit-code"]);
    assert_eq!((out.code, out.stderr.as_str()), (2, ""));
    let doc = json(&out.stdout);
    let verdicts: Vec<(&str, &str)> = doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("config", "will_run"),
            ("gen", "will_run"),
            ("deploy", "will_run"),
            ("docs", "may_run"),
            ("lint", "up_to_date"),
            ("up", "will_run"),
        ]
    );
    assert_eq!(
        doc["tasks"][2]["causes"],
        serde_json::json!([
            { "cause": "dep_pending", "dep": "config", "certain": true },
            { "cause": "dep_pending", "dep": "gen", "certain": false },
        ])
    );
    // Planning ran nothing.
    assert_eq!(
        std::fs::read_to_string(t.root().join("gen.txt")).unwrap(),
        "a\n"
    );
}

const CUTOFF: &str = r#"version = 1
[settings]
default = "use"

[tasks.gen]
inputs = ["in.txt"]
outputs = ["out.txt"]
run = "head -1 in.txt > out.txt"

[tasks.use]
deps = ["gen"]
run = "cat out.txt >> used.log"
"#;

#[test]
fn early_cutoff_a_rerun_with_the_same_output_leaves_dependents_alone() {
    let t = Test::new().tasks(CUTOFF).write("in.txt", "one\ntwo\n");
    converge(&t);
    // Line 2 does not reach out.txt: gen re-runs, use does not.
    t.put("in.txt", "one\nthree\n");
    t.run(&["run"]).assert(
        0,
        "\
▶ gen (input changed: in.txt)
✔ gen ([TIME])

task  result         time  why
gen   ran [TIME]  input changed: in.txt
use   up to date
1 ran, 1 up to date
",
        "",
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("used.log")).unwrap(),
        "one\n"
    );
    // Before it runs, `use` may be drifted, and `why` says on what it depends.
    t.put("in.txt", "one\nfour\n");
    t.run(&["why", "use"]).assert(
        0,
        "\
use may be drifted:
  dep changed     gen will re-run; this task re-runs only if its output changes
      because gen:
        input changed   in.txt
            @@ -1,2 +1,2 @@
             one
            -three
            +four
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    // Line 1 does: both run, and use says why.
    t.put("in.txt", "ONE\nthree\n");
    t.run(&["run"]).assert(
        0,
        "\
▶ gen (input changed: in.txt)
✔ gen ([TIME])
▶ use (gen changed)
✔ use ([TIME])

task  result         time  why
gen   ran [TIME]  input changed: in.txt
use   ran [TIME]  gen changed
2 ran
",
        "",
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("used.log")).unwrap(),
        "one\nONE\n"
    );
    assert_eq!(t.run(&["plan", "--exit-code"]).code, 0);
}

#[test]
fn early_cutoff_through_a_probe_that_reports_the_same_state() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[settings]
default = "app"

[tasks.cluster]
inputs = ["k3d.yaml"]
probe = "cat cluster-id"
run = "test -f cluster-id || echo c-1 > cluster-id"

[tasks.app]
deps = ["cluster"]
run = "echo deployed >> app.log"
"#,
        )
        .write("k3d.yaml", "servers: 1\n");
    converge(&t);
    // The cluster is re-applied but is the same cluster: the app is left alone.
    t.put("k3d.yaml", "servers: 1 # comment\n");
    let out = t.run(&["run"]);
    out.assert(
        0,
        "\
▶ cluster (input changed: k3d.yaml)
✔ cluster ([TIME])

task     result         time  why
cluster  ran [TIME]  input changed: k3d.yaml
app      up to date
1 ran, 1 up to date
",
        "",
    );
    // A new cluster (the probe reports another id): the app is deployed again.
    t.put("cluster-id", "c-2\n");
    t.run(&["plan"]).assert(
        0,
        "\
will run    cluster  probe changed
may run     app      if cluster's output changes
2 tasks: 1 will run, 1 may run, 0 up to date
",
        "",
    );
    converge(&t);
    assert_eq!(
        std::fs::read_to_string(t.root().join("app.log")).unwrap(),
        "deployed\ndeployed\n"
    );
}

/// Sets a file's modification time to `secs` after the epoch.
fn set_mtime(path: &Path, secs: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn a_touched_but_unchanged_file_drifts_nothing() {
    let t = Test::new().tasks(CUTOFF).write("in.txt", "one\ntwo\n");
    converge(&t);
    // A new mtime (and ctime), same content; the output too.
    set_mtime(&t.root().join("in.txt"), 1_000_000_000);
    set_mtime(&t.root().join("out.txt"), 1_000_000_000);
    t.run(&["plan", "--exit-code"]).assert(
        0,
        "up to date  gen\nup to date  use\n2 tasks: 0 will run, 0 may run, 2 up to date\n",
        "",
    );
    // The same content written again (new mtime, same inode).
    t.put("in.txt", "one\ntwo\n");
    t.run(&["run"]).assert(
        0,
        "\ntask  result         time  why\ngen   up to date\nuse   up to date\n2 up to date\n",
        "",
    );
    // A new file (new inode) with the same content.
    std::fs::remove_file(t.root().join("in.txt")).unwrap();
    t.put("in.txt", "one\ntwo\n");
    t.run(&["plan", "--exit-code"]).assert(
        0,
        "up to date  gen\nup to date  use\n2 tasks: 0 will run, 0 may run, 2 up to date\n",
        "",
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("used.log")).unwrap(),
        "one\n"
    );
}

const FAILING: &str = r#"version = 1
[settings]
default = "after"

[tasks.bad]
run = "echo oops; test -f fixed || exit 3"

[tasks.after]
deps = ["bad"]
run = "true"
"#;

#[test]
fn a_failed_task_exits_1_and_its_dependent_is_skipped() {
    let t = Test::new().tasks(FAILING);
    t.run(&["run"]).assert(
        1,
        "\
▶ bad (never run)
[bad] oops

task   result         time  why
bad    failed [TIME]  never run
after  skipped              dep failed: bad
1 failed, 1 skipped
first failure: bad, log: .devgraph/logs/bad/[LOG]
",
        "✘ bad failed (exit 3) after [TIME]; log: .devgraph/logs/bad/[LOG]\n",
    );
}

#[test]
fn after_a_failure_the_next_run_starts_again_at_the_failed_task() {
    let t = Test::new().tasks(FAILING);
    // -k: the dependent is skipped either way (the default is checked above).
    t.run(&["run", "-k"]).assert(
        1,
        "\
▶ bad (never run)
[bad] oops

task   result         time  why
bad    failed [TIME]  never run
after  skipped              dep failed: bad
1 failed, 1 skipped
first failure: bad, log: .devgraph/logs/bad/[LOG]
",
        "✘ bad failed (exit 3) after [TIME]; log: .devgraph/logs/bad/[LOG]\n",
    );
    t.run(&["status"]).assert(
        0,
        "bad    failed       exit 3, [AGO]\nafter  never run\n",
        "",
    );
    t.run(&["plan", "--exit-code"]).assert(
        2,
        "\
will run    bad    last attempt failed (exit 3)
will run    after  never run (+1 more)
2 tasks: 2 will run, 0 may run, 0 up to date
",
        "",
    );
    t.run(&["run"]).assert(
        1,
        "\
▶ bad (last attempt failed (exit 3))
[bad] oops

task   result         time  why
bad    failed [TIME]  last attempt failed (exit 3)
after  skipped              dep failed: bad
1 failed, 1 skipped
first failure: bad, log: .devgraph/logs/bad/[LOG]
",
        "✘ bad failed (exit 3) after [TIME]; log: .devgraph/logs/bad/[LOG]\n",
    );
    t.put("fixed", "");
    t.run(&["run"]).assert(
        0,
        "\
▶ bad (last attempt failed (exit 3))
[bad] oops
✔ bad ([TIME])
▶ after (never run)
✔ after ([TIME])

task   result         time  why
bad    ran [TIME]  last attempt failed (exit 3)
after  ran [TIME]  never run
2 ran
",
        "",
    );
    assert_eq!(t.run(&["plan", "--exit-code"]).code, 0);
}

#[test]
fn a_failure_after_a_success_keeps_the_task_drifted_until_it_succeeds() {
    // The recorded success stays, but the failed attempt wins: the task is not up to date.
    let t = Test::new().tasks(FAILING).write("fixed", "");
    converge(&t);
    std::fs::remove_file(t.root().join("fixed")).unwrap();
    let out = t.run(&["run", "--force", "bad"]);
    assert_eq!(out.code, 1, "{out:?}");
    t.run(&["why", "bad"]).assert(
        0,
        "\
bad is drifted:
  last attempt failed with exit code 3; log: .devgraph/logs/bad/[LOG]
last success: [DATE] ([AGO]), took [TIME]
downstream, may re-run after it: after
",
        "",
    );
    assert_eq!(t.run(&["plan", "--exit-code"]).code, 2);
}

#[test]
fn devgraph_variables_reach_the_command() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[settings]
default = "app"

[tasks.cluster]
inputs = ["k3d.yaml"]
probe = "cat state.txt"
run = 'echo "$DEVGRAPH_TASK|$DEVGRAPH_DRIFT|$DEVGRAPH_ROOT" >> seen.txt'

[tasks.app]
deps = ["cluster"]
run = 'echo "$DEVGRAPH_TASK|$DEVGRAPH_DRIFT" >> seen.txt'
"#,
        )
        .write("k3d.yaml", "servers: 1\n")
        .write("state.txt", "running\n");
    let seen = |t: &Test| -> Vec<String> {
        let root = t.root().canonicalize().unwrap().display().to_string();
        std::fs::read_to_string(t.root().join("seen.txt"))
            .unwrap()
            .lines()
            .map(|l| l.replace(&root, "[ROOT]"))
            .collect()
    };
    converge(&t);
    assert_eq!(seen(&t), ["cluster|never-run|[ROOT]", "app|never-run"]);
    // Only the live state changed: exactly `probe`; the app sees a new cluster: `deps`.
    t.put("state.txt", "stopped\n");
    converge(&t);
    assert_eq!(seen(&t)[2..], ["cluster|probe|[ROOT]", "app|deps"]);
    // Several kinds, in SPEC order, once each.
    t.put("state.txt", "gone\n");
    t.put("k3d.yaml", "servers: 3\n");
    converge(&t);
    assert_eq!(seen(&t)[4..], ["cluster|inputs,probe|[ROOT]", "app|deps"]);
    let out = t.run(&["-q", "run", "--force", "cluster"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(seen(&t)[6..], ["cluster|forced|[ROOT]"]);
}

#[test]
fn run_json_prints_only_json_on_stdout() {
    let t = Test::new().tasks(CUTOFF).write("in.txt", "one\n");
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    // SPEC §6: one JSON event per line on stdout.
    for line in out.stdout.lines() {
        let value: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(
            value.is_ok_and(|v| v.is_object()),
            "not a JSON object: {line:?}\n{}",
            out.stdout
        );
    }
}

const FORGET: &str = r#"version = 1
[settings]
default = "all"

[tasks.a]
outputs = ["a.txt"]
run = "echo a > a.txt"

[tasks.b]
deps = ["a"]
run = "true"

[tasks.c]
run = "true"

[tasks.all]
deps = ["b", "c"]
"#;

#[test]
fn forget_a_task_makes_exactly_that_task_never_run() {
    let t = Test::new().tasks(FORGET);
    converge(&t);
    t.run(&["forget", "a"]).assert(0, "forgot 1 task\n", "");
    t.run(&["plan"]).assert(
        0,
        "\
will run    a    never run
may run     b    if a's output changes
up to date  c
may run     all  if b's output changes
4 tasks: 1 will run, 2 may run, 1 up to date
",
        "",
    );
    t.run(&["why", "a"]).assert(
        0,
        "a is drifted:\n  never run\ndownstream, may re-run after it: b, all\n",
        "",
    );
    // a re-creates the same output: nothing else runs.
    t.run(&["run"]).assert(
        0,
        "\
▶ a (never run)
✔ a ([TIME])

task  result         time  why
a     ran [TIME]  never run
b     up to date
c     up to date
all   up to date
1 ran, 3 up to date
",
        "",
    );
    // Forgetting what has no state counts nothing; an unknown task is an error.
    t.run(&["forget", "a"]).assert(0, "forgot 1 task\n", "");
    t.run(&["forget", "a"]).assert(0, "forgot 0 tasks\n", "");
    let out = t.run(&["forget", "nosuch"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("target `nosuch` is not a task"),
        "{}",
        out.stderr
    );
}

const DAMAGED: &str = "\
devgraph::state_corrupt

  × the state store [ROOT]/.devgraph/state.db is damaged: file is not a database
  help: run `devgraph forget --all` to start afresh (every task will re-run)

";

#[test]
fn forget_all_recovers_from_a_damaged_store() {
    let t = Test::new().tasks(FORGET);
    converge(&t);
    t.put(
        ".devgraph/state.db",
        &"this is not a database\n".repeat(200),
    );
    for args in [
        &["run"][..],
        &["plan"],
        &["plan", "--exit-code"],
        &["why", "a"],
        &["status"],
        &["run", "--dry-run"],
    ] {
        let out = t.run(args);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (2, "", DAMAGED),
            "devgraph {args:?}"
        );
    }
    t.run(&["forget", "--all"])
        .assert(0, "forgot everything: every task will run again\n", "");
    t.run(&["plan", "--exit-code"]).assert(
        2,
        "\
will run    a    never run
will run    b    never run (+1 more)
will run    c    never run
will run    all  never run (+2 more)
4 tasks: 4 will run, 0 may run, 0 up to date
",
        "",
    );
    converge(&t);
    assert_eq!(t.run(&["plan", "--exit-code"]).code, 0);
    // And with no store at all, forget --all is still fine.
    t.run(&["forget", "--all"])
        .assert(0, "forgot everything: every task will run again\n", "");
    t.run(&["forget", "--all"])
        .assert(0, "forgot everything: every task will run again\n", "");
}

#[test]
fn forget_a_task_in_a_damaged_store_reports_it_and_exits_2() {
    let t = Test::new().tasks(FORGET);
    converge(&t);
    t.put(
        ".devgraph/state.db",
        &"this is not a database\n".repeat(200),
    );
    t.run(&["forget", "a"]).assert(2, "", DAMAGED);
}

/// Every file under `dir`, recursively, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                found.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

const TOKEN_1: &str = "tok-3f9a-first-SECRET";
const TOKEN_2: &str = "tok-77b1-second-SECRET";
const DB_1: &str = "hunter2-db-PASSWORD";
const DB_2: &str = "hunter3-db-PASSWORD";

#[test]
fn secrets_appear_nowhere_devgraph_writes() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[settings]
default = "t"
dotenv = [".env"]

[tasks.t]
hash_env = ["DEVGRAPH_TEST_API_TOKEN"]
inputs = ["in.txt", ".env"]
outputs = ["out.txt"]
probe = "echo live"
run = 'echo "token: ${#DEVGRAPH_TEST_API_TOKEN} chars, db: ${#DB_PASSWORD} chars" | tee out.txt'
"#,
        )
        .write("in.txt", "x\n")
        .write(".env", &format!("DB_PASSWORD={DB_1}\n"))
        .env("DEVGRAPH_TEST_API_TOKEN", TOKEN_1);
    let secrets = [TOKEN_1, TOKEN_2, DB_1, DB_2];
    let clean = |what: &str, text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what} shows a secret value:\n{text}");
        }
    };
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    clean("run", &out.stdout);
    // The values did reach the task.
    assert_eq!(
        std::fs::read_to_string(t.root().join("out.txt")).unwrap(),
        "token: 21 chars, db: 19 chars\n"
    );

    let t = t.env("DEVGRAPH_TEST_API_TOKEN", TOKEN_2);
    t.put(".env", &format!("DB_PASSWORD={DB_2}\n"));
    let out = t.run(&["why", "t"]);
    out.assert(
        0,
        "\
t is drifted:
  env changed     DB_PASSWORD (value hidden)
  env changed     DEVGRAPH_TEST_API_TOKEN (value hidden)
  input changed   .env
      (no diff: binary, larger than 64 KiB, or not kept)
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    for args in [
        &["why", "--json", "t"][..],
        &["plan"],
        &["plan", "--json"],
        &["status"],
        &["status", "--json"],
    ] {
        let out = t.run(args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        clean(
            &format!("{args:?}"),
            &format!("{}{}", out.stdout, out.stderr),
        );
    }
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    clean("run --json", &format!("{}{}", out.stdout, out.stderr));
    assert_eq!(
        json(&out.stdout)["tasks"][0]["result"]["result"],
        "ran",
        "{}",
        out.stdout
    );
    let out = t.run(&["why", "--json", "t"]);
    clean("why --json", &out.stdout);
    assert_eq!(json(&out.stdout)["verdict"], "up_to_date");

    // Every byte under .devgraph: the store, its WAL, the logs.
    let files = files_under(&t.root().join(".devgraph"));
    assert!(files.contains_key("state.db"), "{:?}", files.keys());
    assert!(
        files.keys().any(|f| f.starts_with("logs/t/")),
        "{:?}",
        files.keys()
    );
    for (name, bytes) in &files {
        for s in secrets {
            assert!(!contains(bytes, s), ".devgraph/{name} holds a secret value");
        }
    }
}

#[test]
fn a_dotenv_file_that_is_also_an_input_is_kept_only_as_a_keyed_hash() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[settings]
default = "t"
dotenv = [".env"]

[tasks.t]
inputs = ["*"]
run = "true"
"#,
        )
        .write(".env", &format!("DB_PASSWORD={DB_1}\n"));
    converge(&t);
    // SPEC §8: secrets enter the state only as keyed hashes, so a copied state file is no
    // oracle for guessing them. The plain hash of the file is such an oracle.
    let plain = blake3::hash(format!("DB_PASSWORD={DB_1}\n").as_bytes());
    for (name, bytes) in files_under(&t.root().join(".devgraph")) {
        assert!(
            !bytes.windows(32).any(|w| w == plain.as_bytes()),
            ".devgraph/{name} holds the plain hash of .env"
        );
    }
}

/// Size, mtime and bytes of every file under `.devgraph`.
fn snapshot(root: &Path) -> BTreeMap<String, (u64, std::time::SystemTime, Vec<u8>)> {
    files_under(&root.join(".devgraph"))
        .into_iter()
        .map(|(name, bytes)| {
            let meta = std::fs::metadata(root.join(".devgraph").join(&name)).unwrap();
            (name, (meta.len(), meta.modified().unwrap(), bytes))
        })
        .collect()
}

#[test]
fn read_only_commands_never_change_recorded_state() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[settings]
default = "use"

[tasks.gen]
inputs = ["in.txt"]
outputs = ["out.txt"]
probe = "cat state.txt"
run = "head -1 in.txt > out.txt"

[tasks.use]
deps = ["gen"]
run = "true"
"#,
        )
        .write("in.txt", "one\n")
        .write("state.txt", "up\n");
    let read_only: [&[&str]; 13] = [
        &["plan"],
        &["plan", "--json", "--exit-code"],
        &["run", "--dry-run"],
        &["why", "use"],
        &["why", "--json", "gen"],
        &["status"],
        &["status", "--json"],
        &["list"],
        &["list", "--tree"],
        &["graph"],
        &["graph", "--format", "mermaid"],
        &["check"],
        &["check", "--json"],
    ];
    // With no store, they create none.
    for args in read_only {
        t.run(args);
    }
    assert!(
        !t.root().join(".devgraph").exists(),
        "a read-only command created .devgraph"
    );

    converge(&t);
    let before = snapshot(t.root());
    let status_before = t.run(&["status", "--json"]).stdout;
    // Drift of every sort, so they hash files and run probes.
    t.put("in.txt", "two\n");
    t.put("state.txt", "down\n");
    std::fs::remove_file(t.root().join("out.txt")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for args in read_only {
        let out = t.run(args);
        assert!(out.code == 0 || out.code == 2, "{args:?}: {out:?}");
    }
    let after = snapshot(t.root());
    for (name, (size, mtime, bytes)) in &before {
        let Some((size2, mtime2, bytes2)) = after.get(name) else {
            panic!(".devgraph/{name} was removed by a read-only command");
        };
        assert_eq!(
            (size, mtime),
            (size2, mtime2),
            ".devgraph/{name} was touched"
        );
        assert!(bytes == bytes2, ".devgraph/{name} was changed");
    }
    // SQLite may add its (empty) write-ahead log and shared-memory index when reading a
    // WAL-mode database; anything else, or a WAL with content, is a write.
    for (name, (size, _, _)) in &after {
        if before.contains_key(name) {
            continue;
        }
        match name.as_str() {
            "state.db-shm" => {}
            "state.db-wal" => assert_eq!(*size, 0, "a read-only command wrote to the store"),
            _ => panic!("a read-only command created .devgraph/{name}"),
        }
    }
    // What is recorded reads back the same (the tasks are drifted now, so compare the
    // recorded parts: the last success of each).
    let recorded = |text: &str| -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(text)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| serde_json::json!([t["name"], t["last_success_ms"], t["duration_ms"]]))
            .collect()
    };
    let status_after = t.run(&["status", "--json"]).stdout;
    assert_eq!(recorded(&status_before), recorded(&status_after));
    // Putting the world back makes everything up to date again: nothing was forgotten.
    t.put("in.txt", "one\n");
    t.put("state.txt", "up\n");
    t.put("out.txt", "one\n");
    t.run(&["plan", "--exit-code"]).assert(
        0,
        "up to date  gen\nup to date  use\n2 tasks: 0 will run, 0 may run, 2 up to date\n",
        "",
    );
}

#[test]
fn a_declared_output_inside_an_input_glob_is_not_an_input() {
    let t = Test::new()
        .tasks(
            r#"version = 1
[tasks.gen]
inputs = ["site/**"]
outputs = ["site/index.html"]
run = "cat site/page.md > site/index.html && echo built >> site/index.html"
"#,
        )
        .write("site/page.md", "# hi\n");
    t.run(&["-q", "run", "gen"]).assert(0, "", "");
    // Its own output, just written, does not drift it; the page does.
    t.run(&["plan", "gen", "--exit-code"]).assert(
        0,
        "up to date  gen\n1 task: 0 will run, 0 may run, 1 up to date\n",
        "",
    );
    t.put("site/page.md", "# hello\n");
    let out = t.run(&["plan", "gen"]);
    assert!(
        out.stdout
            .starts_with("will run    gen  input changed: site/page.md\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn graph_drift_fills_each_task_by_its_plan_verdict() {
    let t = Test::new()
        .tasks(LAYERS)
        .write("config.txt", "a\n")
        .write("in.txt", "a\n");
    converge(&t);
    t.put("in.txt", "b\n");
    t.run(&["graph", "--drift", "--format", "mermaid"]).assert(
        0,
        r#"flowchart LR
  t0["config"]
  t1["gen"]
  t2["deploy"]
  t3["docs"]
  t4["lint"]
  t5(["up"])
  t0 --> t2
  t1 --> t2
  t1 --> t3
  t2 --> t5
  t3 --> t5
  t4 --> t5
  classDef uptodate fill:#b7e1a1
  class t0,t4 uptodate
  classDef mayrun fill:#fbe38e
  class t2,t3,t5 mayrun
  classDef willrun fill:#f4a261
  class t1 willrun
"#,
        "",
    );
    let out = t.run(&["graph", "gen", "--drift"]);
    assert_eq!(
        out.stdout,
        "digraph devgraph {\n  rankdir=LR;\n  node [shape=box];\n  \"gen\" [style=filled, fillcolor=\"#f4a261\"];\n}\n"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&t.run(&["graph", "--drift", "--json"]).stdout).unwrap();
    let drift: Vec<(&str, &str)> = doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["drift"].as_str().unwrap()))
        .collect();
    assert_eq!(
        drift,
        [
            ("config", "up_to_date"),
            ("gen", "will_run"),
            ("deploy", "may_run"),
            ("docs", "may_run"),
            ("lint", "up_to_date"),
            ("up", "may_run")
        ]
    );
    // Without --drift, no verdicts and no probes.
    assert!(!t.run(&["graph", "--json"]).stdout.contains("drift"));
}
