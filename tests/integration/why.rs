//! `devgraph why` for every kind of cause (SPEC §7), compared exactly after normalizing
//! times, dates and log names: never run, failed, command, env, hash_env, inputs (added,
//! removed, changed, implicit), outputs (missing, changed, new), probe (changed, timed
//! out), deps (followed to the root cause), forced, up to date, and `--json`.

use crate::support::Test;

/// A project with one task `t` (and the default target `t`) built from `body`.
fn one_task(body: &str) -> Test {
    Test::new().tasks(&format!(
        "version = 1\n[settings]\ndefault = \"t\"\n\n[tasks.t]\n{body}"
    ))
}

/// Runs the default target and asserts it succeeded.
#[track_caller]
fn converge(t: &Test) {
    let out = t.run(&["-q", "run"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
}

#[test]
fn never_run_is_named_with_what_runs_after_it() {
    let t = Test::new().tasks(
        r#"version = 1
[tasks.base]
run = "true"

[tasks.app]
deps = ["base"]
run = "true"
"#,
    );
    t.run(&["why", "base"]).assert(
        0,
        "base is drifted:\n  never run\ndownstream, may re-run after it: app\n",
        "",
    );
    t.run(&["why", "app"]).assert(
        0,
        "\
app is drifted:
  never run
  dep changed     base will re-run
      because base:
        never run
",
        "",
    );
}

#[test]
fn last_attempt_failed_gives_the_exit_code_and_the_log() {
    let t = one_task("run = \"echo broken; exit 3\"\n");
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    t.run(&["why", "t"]).assert(
        0,
        "t is drifted:\n  last attempt failed with exit code 3; log: .devgraph/logs/t/[LOG]\n",
        "",
    );
    // The log named is the one that holds what the task printed, and how it ended.
    let why = t.run(&["why", "t"]).stdout;
    let log = why.trim_end().rsplit("log: ").next().unwrap();
    let text = std::fs::read_to_string(t.root().join(log)).expect("the log exists");
    assert_eq!(text, "broken\ndevgraph: exited with code 3\n");
}

#[test]
fn command_changed_shows_a_diff_of_the_command_text() {
    let t = one_task("run = '''\necho one\necho two\necho three\n'''\n");
    converge(&t);
    t.put(
        "tasks.toml",
        "version = 1\n[settings]\ndefault = \"t\"\n\n[tasks.t]\nrun = '''\necho one\necho 2\necho three\n'''\n",
    );
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  command changed
      @@ -1,3 +1,3 @@
       echo one
      -echo two
      +echo 2
       echo three
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn one_line_command_diff_has_no_end_of_file_markers() {
    let t = one_task("run = \"echo one\"\n");
    converge(&t);
    t.put(
        "tasks.toml",
        "version = 1\n[settings]\ndefault = \"t\"\n\n[tasks.t]\nrun = \"echo two\"\n",
    );
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  command changed
      @@ -1 +1 @@
      -echo one
      +echo two
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn env_changed_shows_old_and_new_values_of_global_and_task_env() {
    let tasks = |mode: &str, level: &str| {
        format!(
            "version = 1\n[settings]\ndefault = \"t\"\n\n[env]\nMODE = \"{mode}\"\n\n\
             [tasks.t]\nenv = {{ LEVEL = \"{level}\" }}\nrun = \"true\"\n"
        )
    };
    let t = Test::new().tasks(&tasks("dev", "1"));
    converge(&t);
    t.put("tasks.toml", &tasks("prod", "2"));
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  env changed     LEVEL: 1 → 2
  env changed     MODE: dev → prod
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    // A variable added to the task's env: unset before.
    t.put(
        "tasks.toml",
        &tasks("dev", "1").replace("LEVEL = \"1\"", "LEVEL = \"1\", EXTRA = \"x\""),
    );
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  env changed     EXTRA: (unset) → x
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn hash_env_changed_names_the_variable_and_hides_its_value() {
    let body = "hash_env = [\"DEVGRAPH_TEST_WHY_TOKEN\"]\nrun = \"true\"\n";
    let t = one_task(body).env("DEVGRAPH_TEST_WHY_TOKEN", "first-value-1234");
    converge(&t);
    let t = t.env("DEVGRAPH_TEST_WHY_TOKEN", "second-value-5678");
    let out = t.run(&["why", "t"]);
    out.assert(
        0,
        "\
t is drifted:
  env changed     DEVGRAPH_TEST_WHY_TOKEN (value hidden)
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    // Unset is a change too, and still hidden.
    let t = t.env_remove("DEVGRAPH_TEST_WHY_TOKEN");
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  env changed     DEVGRAPH_TEST_WHY_TOKEN (value hidden)
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn input_added_is_named() {
    let t = one_task("inputs = [\"src/*.txt\"]\nrun = \"true\"\n").write("src/a.txt", "a\n");
    converge(&t);
    t.put("src/b.txt", "b\n");
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  input added     src/b.txt
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn input_removed_is_named() {
    let t = one_task("inputs = [\"src/*.txt\"]\nrun = \"true\"\n")
        .write("src/a.txt", "a\n")
        .write("src/b.txt", "b\n");
    converge(&t);
    std::fs::remove_file(t.root().join("src/a.txt")).unwrap();
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  input removed   src/a.txt
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn input_changed_shows_a_unified_diff_of_the_text() {
    let t = one_task("inputs = [\"conf/k3d.yaml\"]\nrun = \"true\"\n").write(
        "conf/k3d.yaml",
        "kind: Simple\nservers: 1\nports:\n  - port: 8000:80\nagents: 2\nimage: k3s\n",
    );
    converge(&t);
    t.put(
        "conf/k3d.yaml",
        "kind: Simple\nservers: 1\nports:\n  - port: 8080:80\nagents: 2\nimage: k3s\n",
    );
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  input changed   conf/k3d.yaml
      @@ -2,5 +2,5 @@
       servers: 1
       ports:
      -  - port: 8000:80
      +  - port: 8080:80
       agents: 2
       image: k3s
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn implicit_input_the_script_the_command_starts_is_shown_as_implicit() {
    let t = one_task("run = \"scripts/go.sh fast\"\n")
        .write("scripts/go.sh", "#!/bin/bash\necho \"going $1\"\n");
    std::fs::set_permissions(
        t.root().join("scripts/go.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    converge(&t);
    t.put("scripts/go.sh", "#!/bin/bash\necho \"gone $1\"\n");
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  input changed   scripts/go.sh (implicit: the script the command starts)
      @@ -1,2 +1,2 @@
       #!/bin/bash
      -echo \"going $1\"
      +echo \"gone $1\"
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn output_missing_is_named() {
    let t = one_task("outputs = [\"out.txt\"]\nrun = \"echo made > out.txt\"\n");
    converge(&t);
    std::fs::remove_file(t.root().join("out.txt")).unwrap();
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  output missing  out.txt
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    // Running puts it back.
    converge(&t);
    assert_eq!(
        std::fs::read_to_string(t.root().join("out.txt")).unwrap(),
        "made\n"
    );
    t.run(&["why", "t"])
        .assert(0, "t is up to date since [DATE] ([AGO]), took [TIME]\n", "");
}

#[test]
fn output_changed_and_new_output_are_named() {
    let t = one_task("outputs = [\"out/*.txt\"]\nrun = \"mkdir -p out; echo made > out/a.txt\"\n");
    converge(&t);
    t.put("out/a.txt", "edited by hand\n");
    t.put("out/extra.txt", "left behind\n");
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  output changed  out/a.txt
  new output      out/extra.txt
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn probe_changed_shows_what_it_printed_before_and_now() {
    let t =
        one_task("probe = \"cat state.txt\"\nrun = \"true\"\n").write("state.txt", "3f2a9c41\n");
    converge(&t);
    t.put("state.txt", "77aa01bb\n");
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  probe changed   cat state.txt
      was: 3f2a9c41 (exit 0)
      now: 77aa01bb (exit 0)
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    // A failing probe is state, not an error: its status shows.
    std::fs::remove_file(t.root().join("state.txt")).unwrap();
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  probe changed   cat state.txt
      was: 3f2a9c41 (exit 0)
      now: (no output) (exit 1)
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
}

#[test]
fn probe_timed_out_counts_as_drifted() {
    let t = one_task("probe = \"sleep 5\"\nprobe_timeout = \"200ms\"\nrun = \"true\"\n");
    converge(&t);
    let started = std::time::Instant::now();
    t.run(&["why", "t"]).assert(
        0,
        "\
t is drifted:
  probe timed out after [TIME]: sleep 5
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the probe was not cut short"
    );
    let plan = t.run(&["plan"]);
    plan.assert(
        0,
        "will run    t  probe timed out\n1 task: 1 will run, 0 may run, 0 up to date\n",
        "",
    );
}

const CHAIN: &str = r#"version = 1
[settings]
default = "a"

[tasks.c]
inputs = ["c.txt"]
run = "true"

[tasks.b]
deps = ["c"]
run = "true"

[tasks.a]
deps = ["b"]
run = "true"
"#;

#[test]
fn dep_changed_is_followed_down_to_the_root_cause() {
    let t = Test::new().tasks(CHAIN).write("c.txt", "one\ntwo\nthree\n");
    converge(&t);
    t.put("c.txt", "one\nTWO\nthree\n");
    t.run(&["why", "a"]).assert(
        0,
        "\
a is drifted:
  dep changed     b will re-run
      because b:
        dep changed     c will re-run
            because c:
              input changed   c.txt
                  @@ -1,3 +1,3 @@
                   one
                  -two
                  +TWO
                   three
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    t.run(&["why", "c"]).assert(
        0,
        "\
c is drifted:
  input changed   c.txt
      @@ -1,3 +1,3 @@
       one
      -two
      +TWO
       three
last success: [DATE] ([AGO]), took [TIME]
downstream, may re-run after it: b, a
",
        "",
    );
}

#[test]
fn dep_that_already_ran_is_a_dep_that_produced_something_new() {
    let t = Test::new().tasks(CHAIN).write("c.txt", "one\n");
    converge(&t);
    t.put("c.txt", "two\n");
    let out = t.run(&["-q", "run", "c"]);
    assert_eq!(out.code, 0, "{out:?}");
    t.run(&["why", "a"]).assert(
        0,
        "\
a is drifted:
  dep changed     b will re-run
      because b:
        dep changed     c produced something new since the last success
last success: [DATE] ([AGO]), took [TIME]
",
        "",
    );
    t.run(&["plan"]).assert(
        0,
        "\
up to date  c
will run    b  c changed
will run    a  b will run
3 tasks: 2 will run, 0 may run, 1 up to date
",
        "",
    );
}

#[test]
fn forced_is_the_cause_of_a_forced_run() {
    let t = one_task("run = 'echo \"drift=$DEVGRAPH_DRIFT\"'\n");
    converge(&t);
    t.run(&["run", "--force"]).assert(
        0,
        "\
▶ t (forced)
[t] drift=forced
✔ t ([TIME])

task  result         time  why
t     ran [TIME]  forced
1 ran
",
        "",
    );
    let out = t.run(&["run", "--force", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let last = out.stdout.lines().last().expect("a JSON line");
    let doc: serde_json::Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(doc["tasks"][0]["name"], "t");
    assert_eq!(doc["tasks"][0]["result"]["result"], "ran");
    assert_eq!(
        doc["tasks"][0]["causes"],
        serde_json::json!([{ "cause": "forced" }])
    );
    // Forcing is not remembered: the task is up to date afterwards.
    t.run(&["why", "t"])
        .assert(0, "t is up to date since [DATE] ([AGO]), took [TIME]\n", "");
}

#[test]
fn up_to_date_says_since_when_and_how_long_it_took() {
    let t = one_task("inputs = [\"in.txt\"]\nrun = \"sleep 0.1\"\n").write("in.txt", "x\n");
    converge(&t);
    let out = t.run(&["why", "t"]);
    out.assert(0, "t is up to date since [DATE] ([AGO]), took [TIME]\n", "");
    // The date is today's, as the user's clock shows it, and the time is at least the sleep.
    assert!(out.stdout.contains("(just now)"), "{}", out.stdout);
    let took = out.stdout.trim_end().rsplit("took ").next().unwrap();
    let ms: f64 = match took.strip_suffix("ms") {
        Some(ms) => ms.parse().unwrap(),
        None => took.strip_suffix('s').unwrap().parse::<f64>().unwrap() * 1000.0,
    };
    assert!(ms >= 100.0, "took {took}");
}

#[test]
fn why_json_has_the_task_verdict_and_causes() {
    let t = Test::new().tasks(CHAIN).write("c.txt", "one\n");
    let out = t.run(&["why", "--json", "a"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(doc["task"], "a");
    assert_eq!(doc["verdict"], "will_run");
    assert_eq!(
        doc["causes"],
        serde_json::json!([
            { "cause": "never_run" },
            { "cause": "dep_pending", "dep": "b", "certain": true },
        ])
    );
    assert_eq!(doc["last_success"], serde_json::Value::Null);
    assert_eq!(doc["deps"]["c"]["causes"][0]["cause"], "never_run");

    converge(&t);
    t.put("c.txt", "two\n");
    let out = t.run(&["why", "--json", "c"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(doc["task"], "c");
    assert_eq!(doc["verdict"], "will_run");
    assert_eq!(
        doc["causes"],
        serde_json::json!([
            { "cause": "changed", "kind": "input_changed", "path": "c.txt", "implicit": false },
        ])
    );
    assert!(doc["last_success"]["finished_at_ms"].is_i64());
    assert!(doc["last_success"]["duration_ms"].is_u64());

    t.put("c.txt", "one\n");
    let out = t.run(&["why", "--json", "a"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(doc["verdict"], "up_to_date");
    assert_eq!(doc["causes"], serde_json::json!([]));
}
