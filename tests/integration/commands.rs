//! The read-only commands on a small graph shaped like the reference environment:
//! `list`, `list --tree`, `graph` in each format, matrix expansion, glob deps, and how the
//! root file is found.

use crate::support::Test;

const TASKS: &str = r#"version = 1
include = ["layers/*.toml"]

[settings]
default = "up"

[tasks.registry]
desc = "local registry container"
run = "scripts/ensure-registry.sh"
probe = "docker inspect -f '{{.Id}}' k3d-ameide.localhost"

[tasks.cluster]
desc = "k3d cluster"
deps = ["registry"]
inputs = ["layers/cluster/k3d.yaml"]
run = "scripts/ensure-k3d-cluster.sh"

[tasks."image:{service}"]
matrix = { service = ["agents", "chat", "www-ameide"] }
desc = "build and push the {service} image"
deps = ["registry"]
inputs = ["services/{service}/**"]
run = 'scripts/build-image.sh "$service"'

[tasks.images]
desc = "every service image"
deps = ["image:*"]

[tasks.up]
desc = "the whole environment"
deps = ["infra:*", "images"]
"#;

const LAYER_10: &str = r#"[tasks."infra:10"]
desc = "bootstrap: namespaces"
deps = ["cluster"]
run = "scripts/run-helm-layer.sh 10-bootstrap"
"#;

const LAYER_50: &str = r#"[tasks."infra:50"]
desc = "product services"
deps = ["infra:10", "images"]
run = "scripts/run-helm-layer.sh 50-product-services"
"#;

fn env() -> Test {
    Test::new()
        .tasks(TASKS)
        .write("layers/10.toml", LAYER_10)
        .write("layers/50.toml", LAYER_50)
        .write("layers/cluster/k3d.yaml", "apiVersion: k3d.io/v1alpha5\n")
        .write("services/agents/Dockerfile", "FROM scratch\n")
        .write("services/chat/Dockerfile", "FROM scratch\n")
        .write("services/www-ameide/Dockerfile", "FROM scratch\n")
}

#[test]
fn check_counts_tasks_and_files() {
    env()
        .args(&["check"])
        .expect(0, "ok: 9 tasks in 3 files\n", "");
}

#[test]
fn verbose_check_names_each_file_read() {
    env().args(&["-v", "check"]).expect(
        0,
        "ok: 9 tasks in 3 files\n",
        "read tasks.toml: 7 tasks\nread layers/10.toml: 1 task\nread layers/50.toml: 1 task\n",
    );
}

#[test]
fn list_aligns_names_and_descriptions_in_definition_order() {
    env().args(&["list"]).expect(
        0,
        "\
registry          local registry container
cluster           k3d cluster
image:agents      build and push the agents image
image:chat        build and push the chat image
image:www-ameide  build and push the www-ameide image
images            every service image
up                the whole environment
infra:10          bootstrap: namespaces
infra:50          product services
",
        "",
    );
}

#[test]
fn list_tree_draws_deps_once_and_marks_repeats() {
    env().args(&["list", "--tree"]).expect(
        0,
        "\
up
├── infra:10
│   └── cluster
│       └── registry
├── infra:50
│   ├── infra:10 (*)
│   └── images
│       ├── image:agents
│       │   └── registry
│       ├── image:chat
│       │   └── registry
│       └── image:www-ameide
│           └── registry
└── images (*)
(*) deps shown above
",
        "",
    );
}

#[test]
fn list_json_gives_names_descriptions_and_deps() {
    let out = env().args(&["list", "--json"]).expect_success();
    let tasks: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 9);
    assert_eq!(
        tasks[5],
        serde_json::json!({
            "name": "images",
            "desc": "every service image",
            "deps": ["image:agents", "image:chat", "image:www-ameide"],
        })
    );
}

#[test]
fn graph_dot_draws_every_task_and_edge_from_dep_to_dependent() {
    env().args(&["graph"]).expect(
        0,
        r#"digraph devgraph {
  rankdir=LR;
  node [shape=box];
  "registry" [tooltip="local registry container"];
  "cluster" [tooltip="k3d cluster"];
  "image:agents" [tooltip="build and push the agents image"];
  "image:chat" [tooltip="build and push the chat image"];
  "image:www-ameide" [tooltip="build and push the www-ameide image"];
  "images" [style=dashed, tooltip="every service image"];
  "up" [style=dashed, tooltip="the whole environment"];
  "infra:10" [tooltip="bootstrap: namespaces"];
  "infra:50" [tooltip="product services"];
  "registry" -> "cluster";
  "registry" -> "image:agents";
  "registry" -> "image:chat";
  "registry" -> "image:www-ameide";
  "image:agents" -> "images";
  "image:chat" -> "images";
  "image:www-ameide" -> "images";
  "infra:10" -> "up";
  "infra:50" -> "up";
  "images" -> "up";
  "cluster" -> "infra:10";
  "infra:10" -> "infra:50";
  "images" -> "infra:50";
}
"#,
        "",
    );
}

#[test]
fn graph_mermaid_restricted_to_a_target_and_its_deps() {
    env()
        .args(&["graph", "infra:10", "--format", "mermaid"])
        .expect(
            0,
            r#"flowchart LR
  t0["registry"]
  t1["cluster"]
  t7["infra:10"]
  t0 --> t1
  t1 --> t7
"#,
            "",
        );
}

#[test]
fn graph_mermaid_draws_groups_as_stadiums() {
    env()
        .args(&["graph", "images", "--format", "mermaid"])
        .expect(
            0,
            r#"flowchart LR
  t0["registry"]
  t2["image:agents"]
  t3["image:chat"]
  t4["image:www-ameide"]
  t5(["images"])
  t0 --> t2
  t0 --> t3
  t0 --> t4
  t2 --> t5
  t3 --> t5
  t4 --> t5
"#,
            "",
        );
}

#[test]
fn graph_json_names_matrix_values_and_where_each_task_is_defined() {
    env()
        .args(&["graph", "image:chat", "--format", "json"])
        .expect(
            0,
            r#"{
  "version": 1,
  "tasks": [
    {
      "name": "registry",
      "desc": "local registry container",
      "group": false,
      "deps": [],
      "file": "tasks.toml",
      "line": 7
    },
    {
      "name": "image:chat",
      "desc": "build and push the chat image",
      "group": false,
      "deps": [
        "registry"
      ],
      "matrix": {
        "service": "chat"
      },
      "file": "tasks.toml",
      "line": 18
    }
  ]
}
"#,
            "",
        );
}

#[test]
fn graph_json_flag_is_the_same_as_format_json() {
    let by_flag = env().args(&["graph", "--json"]).expect_success();
    let by_format = env().args(&["graph", "--format", "json"]).expect_success();
    assert_eq!(by_flag.stdout, by_format.stdout);
}

#[test]
fn graph_targets_may_be_globs() {
    let out = env()
        .args(&["graph", "image:*", "--format", "json"])
        .expect_success();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["registry", "image:agents", "image:chat", "image:www-ameide"]
    );
}

#[test]
fn matrix_expands_with_every_combination_first_variable_slowest() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."build:{os}-{arch}"]
matrix = { os = ["linux", "darwin"], arch = ["amd64", 64] }
desc = "build for {os} on {arch}"
inputs = ["src/{os}/**"]
run = 'make OS="$os" ARCH="$arch"'

[tasks.release]
deps = ["build:linux-*"]
"#,
        )
        .args(&["list", "--tree"])
        .expect(
            0,
            "\
build:darwin-amd64
build:darwin-64
release
├── build:linux-amd64
└── build:linux-64
",
            "",
        );
}

#[test]
fn matrix_substitutes_desc_and_deps_per_instance() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."src:{svc}"]
matrix = { svc = ["api", "web"] }
run = "true"

[tasks."image:{svc}"]
matrix = { svc = ["api", "web"] }
desc = "image of {svc}"
deps = ["src:{svc}"]
run = "true"
"#,
        )
        .args(&["list", "--json"])
        .expect(
            0,
            r#"[{"name":"src:api","desc":null,"deps":[]},{"name":"src:web","desc":null,"deps":[]},{"name":"image:api","desc":"image of api","deps":["src:api"]},{"name":"image:web","desc":"image of web","deps":["src:web"]}]
"#,
            "",
        );
}

#[test]
fn glob_deps_match_across_colons_never_the_task_itself_and_merge_repeats() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."infra:10"]
run = "true"

[tasks."infra:20"]
deps = ["infra:10"]
run = "true"

[tasks."infra:all"]
deps = ["infra:*", "infra:10"]
"#,
        )
        .args(&["list", "--json"])
        .expect(
            0,
            r#"[{"name":"infra:10","desc":null,"deps":[]},{"name":"infra:20","desc":null,"deps":["infra:10"]},{"name":"infra:all","desc":null,"deps":["infra:10","infra:20"]}]
"#,
            "",
        );
}

#[test]
fn root_file_is_found_by_walking_up_from_a_subdirectory() {
    env()
        .current_dir("services/chat/src")
        .args(&["check"])
        .expect(0, "ok: 9 tasks in 3 files\n", "");
}

#[test]
fn dash_capital_c_changes_directory_first() {
    Test::new()
        .write(
            "project/tasks.toml",
            "version = 1\n[tasks.a]\nrun = \"true\"\n",
        )
        .args(&["-C", "project", "list"])
        .expect(0, "a\n", "");
}

#[test]
fn dash_f_names_the_root_file_and_its_folder_is_the_root() {
    Test::new()
        .write(
            "env/dev.toml",
            "version = 1\ninclude = [\"more/*.toml\"]\n[tasks.a]\nrun = \"true\"\n",
        )
        .write(
            "env/more/b.toml",
            "[tasks.b]\ndeps = [\"a\"]\nrun = \"true\"\n",
        )
        .args(&["-f", "env/dev.toml", "list", "--tree"])
        .expect(0, "b\n└── a\n", "");
}

#[test]
fn includes_are_read_as_one_list_sorted_by_path() {
    Test::new()
        .tasks("version = 1\ninclude = [\"layers/*.toml\", \"extra.toml\"]\n")
        .write("layers/b.toml", "[tasks.b]\nrun = \"true\"\n")
        .write("layers/a.toml", "[tasks.a]\nrun = \"true\"\n")
        .write("extra.toml", "[tasks.z]\nrun = \"true\"\n")
        .args(&["list"])
        .expect(0, "z\na\nb\n", "");
}

#[test]
fn other_commands_refuse_invalid_files_and_point_to_check() {
    Test::new()
        .tasks("version = 1\n[tasks.a]\ndeps = [\"b\"]\nrun = \"true\"\n")
        .args(&["list"])
        .expect(
            2,
            "",
            r#"devgraph::unknown_dep

  × task `a` depends on `b`, which is not a task
   ╭─[tasks.toml:3:9]
 2 │ [tasks.a]
 3 │ deps = ["b"]
   ·         ─┬─
   ·          ╰── no task named `b`
 4 │ run = "true"
   ╰────

error: the task files have 1 error; run `devgraph check` for the full report
"#,
        );
}

#[test]
fn check_json_reports_counts_and_diagnostics() {
    let out = Test::new()
        .tasks("version = 1\ninclude = [\"none/*.toml\"]\n[tasks.a]\nrun = \"true\"\ntimeout = \"1x\"\n")
        .args(&["check", "--json"])
        .output();
    assert_eq!(out.code, 2);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["errors"], 1);
    assert_eq!(doc["warnings"], 1);
    assert_eq!(doc["diagnostics"][0]["code"], "devgraph::include_no_match");
    assert_eq!(doc["diagnostics"][0]["severity"], "warning");
    assert_eq!(doc["diagnostics"][1]["code"], "devgraph::invalid_duration");
    assert_eq!(
        doc["diagnostics"][1]["labels"][0],
        serde_json::json!({
            "label": "unknown unit `x`; use ms, s, m or h",
            "file": "tasks.toml",
            "line": 5,
            "column": 11,
            "offset": 71,
            "length": 4,
        })
    );
}

#[test]
fn quiet_hides_warnings_but_not_errors() {
    Test::new()
        .tasks("version = 1\ninclude = [\"none/*.toml\"]\n[tasks.a]\nrun = \"true\"\n")
        .args(&["-q", "check"])
        .expect(0, "", "");
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Test::new().args(&["completions", shell]).expect_success();
        assert!(out.stdout.contains("devgraph"), "{shell}: {}", out.stdout);
        assert!(
            out.stdout.contains("graph"),
            "{shell} completes subcommands"
        );
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in ["check", "list", "graph", "completions"] {
        let out = Test::new().args(&[command, "--help"]).expect_success();
        assert!(
            out.stdout.contains("Examples:\n  devgraph "),
            "{command}: {}",
            out.stdout
        );
    }
    let top = Test::new().args(&["--help"]).expect_success();
    assert!(top.stdout.contains("Examples:\n  devgraph check"));
}

#[test]
fn bad_usage_exits_2() {
    let out = Test::new().args(&["frobnicate"]).output();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        out.stderr
    );
}
