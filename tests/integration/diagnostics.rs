//! A test per diagnostic of SPEC §9: the exact rendered text, with file:line, caret and help.

use crate::support::Test;

#[test]
fn toml_syntax_error_points_at_the_broken_line() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.build
run = "make"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::toml_syntax

  × invalid TOML: unclosed table, expected `]`
   ╭─[tasks.toml:3:13]
 2 │ 
 3 │ [tasks.build
   ·             ▲
   ·             ╰── here
 4 │ run = "make"
   ╰────

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn unknown_field_suggests_the_closest_field() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.build]
run = "make"
input = ["src/**"]
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::unknown_field

  × unknown field `input` in task `build`
   ╭─[tasks.toml:5:1]
 4 │ run = "make"
 5 │ input = ["src/**"]
   · ──┬──
   ·   ╰── unknown field
   ╰────
  help: did you mean `inputs`?

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn unknown_field_translates_other_tools_names() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.build]
cmds = "make"
depends_on = ["x"]
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::unknown_field

  × unknown field `cmds` in task `build`
   ╭─[tasks.toml:4:1]
 3 │ [tasks.build]
 4 │ cmds = "make"
   · ──┬─
   ·   ╰── unknown field
 5 │ depends_on = ["x"]
   ╰────
  help: did you mean `run`?

devgraph::unknown_field

  × unknown field `depends_on` in task `build`
   ╭─[tasks.toml:5:1]
 4 │ cmds = "make"
 5 │ depends_on = ["x"]
   · ─────┬────
   ·      ╰── unknown field
   ╰────
  help: did you mean `deps`?

error: found 2 errors in 1 file
"#,
        );
}

#[test]
fn wrong_type_names_expected_and_found() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.build]
run = ["make", "all"]
retries = "2"
deps = "lint"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::wrong_type

  × `run` must be a string, found an array
   ╭─[tasks.toml:4:7]
 3 │ [tasks.build]
 4 │ run = ["make", "all"]
   ·       ───────┬───────
   ·              ╰── expected a string
 5 │ retries = "2"
   ╰────

devgraph::wrong_type

  × `retries` must be an integer, found a string
   ╭─[tasks.toml:5:11]
 4 │ run = ["make", "all"]
 5 │ retries = "2"
   ·           ─┬─
   ·            ╰── expected an integer
 6 │ deps = "lint"
   ╰────

devgraph::wrong_type

  × `deps` must be an array of strings, found a string
   ╭─[tasks.toml:6:8]
 5 │ retries = "2"
 6 │ deps = "lint"
   ·        ───┬──
   ·           ╰── expected an array of strings
   ╰────

error: found 3 errors in 1 file
"#,
        );
}

#[test]
fn unknown_dep_suggests_close_task_names() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."infra:22"]
run = "true"

[tasks."infra:24"]
run = "true"

[tasks."infra:45"]
deps = ["infra:23"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::unknown_dep

  × task `infra:45` depends on `infra:23`, which is not a task
    ╭─[tasks.toml:10:9]
  9 │ [tasks."infra:45"]
 10 │ deps = ["infra:23"]
    ·         ─────┬────
    ·              ╰── no task named `infra:23`
 11 │ run = "true"
    ╰────
  help: did you mean one of `infra:22`, `infra:24`?

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn unknown_target_suggests_close_task_names() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.registry]
run = "true"
"#,
        )
        .args(&["graph", "regsitry"])
        .expect(
            2,
            "",
            r#"devgraph::unknown_target

  × target `regsitry` is not a task
  help: did you mean `registry`?

"#,
        );
}

#[test]
fn target_glob_matching_nothing_is_an_error() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.registry]
run = "true"
"#,
        )
        .args(&["graph", "infra:*"])
        .expect(
            2,
            "",
            r#"devgraph::target_glob_no_match

  × target glob `infra:*` matches no task
  help: run `devgraph list` to see the task names

"#,
        );
}

#[test]
fn cycle_is_printed_as_the_whole_loop() {
    Test::new()
        .tasks(
            r#"version = 1
include = ["layers/*.toml"]
"#,
        )
        .write(
            "layers/20.toml",
            r#"[tasks."infra:20"]
run = "true"
"#,
        )
        .write(
            "layers/22.toml",
            r#"[tasks."infra:22"]
deps = ["infra:20", "infra:24"]
run = "true"
"#,
        )
        .write(
            "layers/24.toml",
            r#"[tasks."infra:24"]
deps = ["infra:22"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::cycle

  × dependency cycle: infra:22 → infra:24 → infra:22
   ╭─[layers/24.toml:2:9]
 1 │ [tasks."infra:24"]
 2 │ deps = ["infra:22"]
   ·         ─────┬────
   ·              ╰── this dep closes the cycle
 3 │ run = "true"
   ╰────
  help: a task cannot depend on itself, directly or through other tasks; remove one of these deps

error: found 1 error in 4 files
"#,
        );
}

#[test]
fn self_dependency_is_a_cycle() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.a]
deps = ["a"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::cycle

  × dependency cycle: a → a
   ╭─[tasks.toml:4:9]
 3 │ [tasks.a]
 4 │ deps = ["a"]
   ·         ─┬─
   ·          ╰── this dep closes the cycle
 5 │ run = "true"
   ╰────
  help: a task cannot depend on itself, directly or through other tasks; remove one of these deps

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn duplicate_task_across_files_labels_both_places() {
    Test::new()
        .tasks(
            r#"version = 1
include = ["layers/*.toml"]

[tasks.registry]
run = "scripts/ensure-registry.sh"
"#,
        )
        .write(
            "layers/registry.toml",
            r#"# the same task again
[tasks.registry]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::duplicate_task

  × task `registry` is defined twice
   ╭─[layers/registry.toml:2:8]
 1 │ # the same task again
 2 │ [tasks.registry]
   ·        ────┬───
   ·            ╰── defined again here
 3 │ run = "true"
   ╰────
  help: task names must be unique across all files

Advice: 
  ☞ `registry` was first defined here
   ╭─[tasks.toml:4:8]
 3 │ 
 4 │ [tasks.registry]
   ·        ────┬───
   ·            ╰── first defined here
 5 │ run = "scripts/ensure-registry.sh"
   ╰────

error: found 1 error in 2 files
"#,
        );
}

#[test]
fn duplicate_from_matrix_expansion() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{service}"]
matrix = { service = ["chat", "graph"] }
run = "true"

[tasks."image:chat"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::duplicate_task

  × task `image:chat` is defined twice
   ╭─[tasks.toml:7:8]
 6 │ 
 7 │ [tasks."image:chat"]
   ·        ──────┬─────
   ·              ╰── defined again here
 8 │ run = "true"
   ╰────
  help: task names must be unique across all files

Advice: 
  ☞ `image:chat` was first defined here
   ╭─[tasks.toml:3:8]
 2 │ 
 3 │ [tasks."image:{service}"]
   ·        ────────┬────────
   ·                ╰── first defined here
 4 │ matrix = { service = ["chat", "graph"] }
   ╰────

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn placeholder_without_matrix_value() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{service}"]
matrix = { service = ["chat"] }
inputs = ["services/{servce}/**"]
run = "true"

[tasks."lint:{service}"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::unknown_placeholder

  × `{servce}` has no matrix value in task `image:{service}`
   ╭─[tasks.toml:5:21]
 4 │ matrix = { service = ["chat"] }
 5 │ inputs = ["services/{servce}/**"]
   ·                     ────┬───
   ·                         ╰── no matrix variable `servce`
 6 │ run = "true"
   ╰────
  help: did you mean `{service}`?

devgraph::unknown_placeholder

  × `{service}` has no matrix value in task `lint:{service}`
   ╭─[tasks.toml:8:14]
 7 │ 
 8 │ [tasks."lint:{service}"]
   ·              ────┬────
   ·                  ╰── no matrix variable `service`
 9 │ run = "true"
   ╰────
  help: `{service}` is a matrix placeholder; add `matrix = { service = [...] }` to the task

error: found 2 errors in 1 file
"#,
        );
}

#[test]
fn empty_matrix() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{service}"]
matrix = { service = [] }
run = "true"

[tasks.all]
matrix = {}
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::empty_matrix

  × matrix of task `image:{service}` is empty
   ╭─[tasks.toml:4:12]
 3 │ [tasks."image:{service}"]
 4 │ matrix = { service = [] }
   ·            ───┬───
   ·               ╰── `service` has no values
 5 │ run = "true"
   ╰────
  help: give every matrix variable at least one value, e.g. `matrix = { service = ["api"] }`

devgraph::empty_matrix

  × matrix of task `all` is empty
   ╭─[tasks.toml:8:10]
 7 │ [tasks.all]
 8 │ matrix = {}
   ·          ─┬
   ·           ╰── no variables
 9 │ run = "true"
   ╰────
  help: give every matrix variable at least one value, e.g. `matrix = { service = ["api"] }`

error: found 2 errors in 1 file
"#,
        );
}

#[test]
fn matrix_variable_missing_from_the_name() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{service}"]
matrix = { service = ["chat"], arch = ["amd64", "arm64"] }
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::matrix_var_unused

  × matrix variable `arch` is not used in the name of task `image:{service}`
   ╭─[tasks.toml:4:32]
 3 │ [tasks."image:{service}"]
 4 │ matrix = { service = ["chat"], arch = ["amd64", "arm64"] }
   ·                                ──┬─
   ·                                  ╰── not in the task name
 5 │ run = "true"
   ╰────
  help: every matrix variable must appear in the task name as `{arch}`, or the expanded tasks
        would share one name

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn dep_glob_matching_nothing() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.image]
run = "true"

[tasks.images]
deps = ["image:*"]
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::dep_glob_no_match

  × dep glob `image:*` of task `images` matches no task
   ╭─[tasks.toml:7:9]
 6 │ [tasks.images]
 7 │ deps = ["image:*"]
   ·         ────┬────
   ·             ╰── matches nothing
   ╰────
  help: run `devgraph list` to see the task names

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn invalid_task_name() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."build all"]
run = "true"

[tasks."-x"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::invalid_task_name

  × invalid task name `build all`
   ╭─[tasks.toml:3:8]
 2 │ 
 3 │ [tasks."build all"]
   ·        ─────┬─────
   ·             ╰── contains a space
 4 │ run = "true"
   ╰────
  help: task names start with a letter or digit and contain only letters, digits and `_ . : / -`

devgraph::invalid_task_name

  × invalid task name `-x`
   ╭─[tasks.toml:6:8]
 5 │ 
 6 │ [tasks."-x"]
   ·        ──┬─
   ·          ╰── starts with `-`
 7 │ run = "true"
   ╰────
  help: task names start with a letter or digit and contain only letters, digits and `_ . : / -`

error: found 2 errors in 1 file
"#,
        );
}

#[test]
fn invalid_glob() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.build]
inputs = ["src/[a-", "../secrets/**", "/etc/hosts"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::invalid_glob

  × invalid glob `src/[a-` in `inputs`
   ╭─[tasks.toml:4:11]
 3 │ [tasks.build]
 4 │ inputs = ["src/[a-", "../secrets/**", "/etc/hosts"]
   ·           ────┬────
   ·               ╰── unclosed character class; missing ']'
 5 │ run = "true"
   ╰────

devgraph::invalid_glob

  × invalid glob `../secrets/**` in `inputs`
   ╭─[tasks.toml:4:22]
 3 │ [tasks.build]
 4 │ inputs = ["src/[a-", "../secrets/**", "/etc/hosts"]
   ·                      ───────┬───────
   ·                             ╰── leaves the project root
 5 │ run = "true"
   ╰────
  help: every path must be inside the project; `..` is not allowed

devgraph::invalid_glob

  × invalid glob `/etc/hosts` in `inputs`
   ╭─[tasks.toml:4:39]
 3 │ [tasks.build]
 4 │ inputs = ["src/[a-", "../secrets/**", "/etc/hosts"]
   ·                                       ──────┬─────
   ·                                             ╰── absolute path
 5 │ run = "true"
   ╰────
  help: paths are relative to the project root (the folder of tasks.toml)

error: found 3 errors in 1 file
"#,
        );
}

#[test]
fn invalid_duration() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.build]
run = "true"
timeout = "10"
probe_timeout = "5 sec"
retry_delay = "1.5s"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::invalid_duration

  × invalid duration `10` for `timeout`
   ╭─[tasks.toml:5:11]
 4 │ run = "true"
 5 │ timeout = "10"
   ·           ──┬─
   ·             ╰── `10` needs a unit: ms, s, m or h
 6 │ probe_timeout = "5 sec"
   ╰────
  help: durations are a number and a unit: `500ms`, `10s`, `10m`, `1h` (or combined: `1m30s`)

devgraph::invalid_duration

  × invalid duration `5 sec` for `probe_timeout`
   ╭─[tasks.toml:6:17]
 5 │ timeout = "10"
 6 │ probe_timeout = "5 sec"
   ·                 ───┬───
   ·                    ╰── no spaces: write the number and unit together, e.g. `5s`
 7 │ retry_delay = "1.5s"
   ╰────
  help: durations are a number and a unit: `500ms`, `10s`, `10m`, `1h` (or combined: `1m30s`)

devgraph::invalid_duration

  × invalid duration `1.5s` for `retry_delay`
   ╭─[tasks.toml:7:15]
 6 │ probe_timeout = "5 sec"
 7 │ retry_delay = "1.5s"
   ·               ───┬──
   ·                  ╰── fractions are not supported; use a smaller unit, e.g. `1500ms`
   ╰────
  help: durations are a number and a unit: `500ms`, `10s`, `10m`, `1h` (or combined: `1m30s`)

error: found 3 errors in 1 file
"#,
        );
}

#[test]
fn version_missing() {
    Test::new()
        .tasks(
            r#"[tasks.build]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::version_missing

  × `version` is missing
   ╭─[tasks.toml:1:1]
 1 │ [tasks.build]
   · ▲
   · ╰── expected `version = 1` in this file
 2 │ run = "true"
   ╰────
  help: add `version = 1` as the first line of the root tasks.toml

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn version_unsupported() {
    Test::new()
        .tasks(
            r#"version = 2

[tasks.build]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::version_unsupported

  × unsupported version 2
   ╭─[tasks.toml:1:11]
 1 │ version = 2
   ·           ┬
   ·           ╰── only 1 is supported
 2 │ 
   ╰────
  help: this devgraph reads `version = 1`; a newer file needs a newer devgraph

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn include_matching_nothing_is_a_warning() {
    Test::new()
        .tasks(
            r#"version = 1
include = ["layers/*.toml"]

[tasks.build]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            0,
            r#"ok: 1 task in 1 file, 1 warning
"#,
            r#"devgraph::include_no_match

  ⚠ include `layers/*.toml` matches no file
   ╭─[tasks.toml:2:12]
 1 │ version = 1
 2 │ include = ["layers/*.toml"]
   ·            ───────┬───────
   ·                   ╰── matches nothing
 3 │ 
   ╰────
  help: include globs are relative to the project root

"#,
        );
}

#[test]
fn include_that_fails_to_parse_points_into_that_file() {
    Test::new()
        .tasks(
            r#"version = 1
include = ["layers/*.toml"]

[tasks.build]
run = "true"
"#,
        )
        .write(
            "layers/40.toml",
            r#"[tasks."infra:40"]
run = "true
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::toml_syntax

  × invalid TOML: invalid basic string, expected `"`
   ╭─[layers/40.toml:2:12]
 1 │ [tasks."infra:40"]
 2 │ run = "true
   ·            ▲
   ·            ╰── here
   ╰────

error: found 1 error in 2 files
"#,
        );
}

#[test]
fn include_may_hold_tasks_only() {
    Test::new()
        .tasks(
            r#"version = 1
include = ["layers/*.toml"]
"#,
        )
        .write(
            "layers/40.toml",
            r#"version = 1
[settings]
jobs = 2

[tasks."infra:40"]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::not_in_include

  × `version` is only allowed in the root tasks.toml
   ╭─[layers/40.toml:1:1]
 1 │ version = 1
   · ───┬───
   ·    ╰── not allowed in an included file
 2 │ [settings]
   ╰────
  help: included files may define [tasks.*] only; move `version` to the root file

devgraph::not_in_include

  × `settings` is only allowed in the root tasks.toml
   ╭─[layers/40.toml:2:2]
 1 │ version = 1
 2 │ [settings]
   ·  ────┬───
   ·      ╰── not allowed in an included file
 3 │ jobs = 2
   ╰────
  help: included files may define [tasks.*] only; move `settings` to the root file

error: found 2 errors in 2 files
"#,
        );
}

#[test]
fn check_reports_every_problem_of_every_file() {
    Test::new()
        .tasks(
            r#"version = 1
include = ["layers/*.toml"]

[tasks.registry]
run = "true"
timeout = "soon"

[tasks.cluster]
deps = ["regsitry"]
run = "true"
"#,
        )
        .write(
            "layers/10.toml",
            r#"[tasks."infra:10"]
deps = ["cluster"]
run = "true"
retries = -1
"#,
        )
        .write(
            "layers/20.toml",
            r#"[tasks."infra:20"]
deps = ["infra:10"]
run = "true"
probe = 42
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::invalid_duration

  × invalid duration `soon` for `timeout`
   ╭─[tasks.toml:6:11]
 5 │ run = "true"
 6 │ timeout = "soon"
   ·           ───┬──
   ·              ╰── expected a number at `soon`
 7 │ 
   ╰────
  help: durations are a number and a unit: `500ms`, `10s`, `10m`, `1h` (or combined: `1m30s`)

devgraph::unknown_dep

  × task `cluster` depends on `regsitry`, which is not a task
    ╭─[tasks.toml:9:9]
  8 │ [tasks.cluster]
  9 │ deps = ["regsitry"]
    ·         ─────┬────
    ·              ╰── no task named `regsitry`
 10 │ run = "true"
    ╰────
  help: did you mean `registry`?

devgraph::invalid_value

  × invalid value for `retries`
   ╭─[layers/10.toml:4:11]
 3 │ run = "true"
 4 │ retries = -1
   ·           ─┬
   ·            ╰── must be 0 or more
   ╰────

devgraph::wrong_type

  × `probe` must be a string, found an integer
   ╭─[layers/20.toml:4:9]
 3 │ run = "true"
 4 │ probe = 42
   ·         ─┬
   ·          ╰── expected a string
   ╰────

error: found 4 errors in 3 files
"#,
        );
}

#[test]
fn settings_and_env_are_checked() {
    Test::new()
        .tasks(
            r#"version = 1

[settings]
default = "upp"
jobs = 0
shell = []

[env]
"MY-VAR" = "x"

[tasks.up]
run = "true"
hash_env = ["1TOKEN"]
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::invalid_value

  × invalid value for `settings.default`
   ╭─[tasks.toml:4:11]
 3 │ [settings]
 4 │ default = "upp"
   ·           ──┬──
   ·             ╰── no task named `upp`
 5 │ jobs = 0
   ╰────
  help: did you mean `up`?

devgraph::invalid_value

  × invalid value for `settings.jobs`
   ╭─[tasks.toml:5:8]
 4 │ default = "upp"
 5 │ jobs = 0
   ·        ┬
   ·        ╰── must be 1 or more
 6 │ shell = []
   ╰────
  help: leave `jobs` out to use one job per CPU

devgraph::invalid_value

  × invalid value for `settings.shell`
   ╭─[tasks.toml:6:9]
 5 │ jobs = 0
 6 │ shell = []
   ·         ─┬
   ·          ╰── the shell command cannot be empty
 7 │ 
   ╰────
  help: the default is ["bash", "-eo", "pipefail", "-c"]

devgraph::invalid_value

  × invalid value for `env`
    ╭─[tasks.toml:9:1]
  8 │ [env]
  9 │ "MY-VAR" = "x"
    · ────┬───
    ·     ╰── `MY-VAR` is not a valid environment variable name
 10 │ 
    ╰────
  help: environment variable names are letters, digits and `_`, not starting with a digit

devgraph::invalid_value

  × invalid value for `hash_env`
    ╭─[tasks.toml:13:13]
 12 │ run = "true"
 13 │ hash_env = ["1TOKEN"]
    ·             ────┬───
    ·                 ╰── `1TOKEN` is not a valid environment variable name
    ╰────
  help: environment variable names are letters, digits and `_`, not starting with a digit

error: found 5 errors in 1 file
"#,
        );
}

#[test]
fn group_fields_without_effect_warn() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.a]
run = "true"

[tasks.all]
deps = ["a"]
inputs = ["src/**"]
probe = "true"
"#,
        )
        .args(&["check"])
        .expect(
            0,
            r#"ok: 2 tasks in 1 file, 2 warnings
"#,
            r#"devgraph::ignored_on_group

  ⚠ `inputs` has no effect on group `all` (a task without `run`)
   ╭─[tasks.toml:8:11]
 7 │ deps = ["a"]
 8 │ inputs = ["src/**"]
   ·           ────┬───
   ·               ╰── ignored
 9 │ probe = "true"
   ╰────
  help: add a `run` command, or remove `inputs`

devgraph::ignored_on_group

  ⚠ `probe` has no effect on group `all` (a task without `run`)
   ╭─[tasks.toml:9:9]
 8 │ inputs = ["src/**"]
 9 │ probe = "true"
   ·         ───┬──
   ·            ╰── ignored
   ╰────
  help: add a `run` command, or remove `probe`

"#,
        );
}

#[test]
fn no_tasks_file() {
    Test::new().args(&["check"]).expect(
        2,
        "",
        r#"devgraph::no_tasks_file

  × no tasks.toml in [ROOT] or any parent directory
  help: create a tasks.toml at the project root, or name one with `-f FILE`

"#,
    );
}

#[test]
fn unknown_deps_are_still_reported_next_to_a_broken_template() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{service}"]
matrix = { service = ["chat"], arch = ["arm64"] }
run = "true"

[tasks.images]
deps = ["image:chat", "regsitry"]

[tasks.registry]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::matrix_var_unused

  × matrix variable `arch` is not used in the name of task `image:{service}`
   ╭─[tasks.toml:4:32]
 3 │ [tasks."image:{service}"]
 4 │ matrix = { service = ["chat"], arch = ["arm64"] }
   ·                                ──┬─
   ·                                  ╰── not in the task name
 5 │ run = "true"
   ╰────
  help: every matrix variable must appear in the task name as `{arch}`, or the expanded tasks
        would share one name

devgraph::unknown_dep

  × task `images` depends on `regsitry`, which is not a task
   ╭─[tasks.toml:8:23]
 7 │ [tasks.images]
 8 │ deps = ["image:chat", "regsitry"]
   ·                       ─────┬────
   ·                            ╰── no task named `regsitry`
 9 │ 
   ╰────
  help: did you mean `registry`?

error: found 2 errors in 1 file
"#,
        );
}

#[test]
fn unquoted_dotted_task_name_gets_a_quoting_hint() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.infra.24]
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::unknown_field

  × unknown field `24` in task `infra`
   ╭─[tasks.toml:3:14]
 2 │ 
 3 │ [tasks.infra.24]
   ·              ─┬
   ·               ╰── unknown field
 4 │ run = "true"
   ╰────
  help: to name a task `infra.24`, quote it: [tasks."infra.24"]

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn matrix_value_listed_twice() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{service}"]
matrix = { service = ["chat", "graph", "chat"] }
run = "true"
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::invalid_value

  × invalid value for `matrix.service`
   ╭─[tasks.toml:4:40]
 3 │ [tasks."image:{service}"]
 4 │ matrix = { service = ["chat", "graph", "chat"] }
   ·                                        ───┬──
   ·                                           ╰── `chat` is listed twice
 5 │ run = "true"
   ╰────
  help: each matrix value makes one task; list it once

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn invalid_target_glob_says_why() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks.a]
run = "true"
"#,
        )
        .args(&["graph", "a["])
        .expect(
            2,
            "",
            r#"devgraph::invalid_target_glob

  × invalid target glob `a[`: unclosed character class; missing ']'

"#,
        );
}

#[test]
fn mistyped_matrix_variable_is_one_error() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{s}"]
matrix = { s = "chat" }
run = "true"

[tasks.images]
deps = ["image:*"]
"#,
        )
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::wrong_type

  × `matrix.s` must be an array of strings or integers, found a string
   ╭─[tasks.toml:4:16]
 3 │ [tasks."image:{s}"]
 4 │ matrix = { s = "chat" }
   ·                ───┬──
   ·                   ╰── expected an array of strings or integers
 5 │ run = "true"
   ╰────

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn matrix_expanding_beyond_the_limit_is_refused_before_expanding() {
    Test::new()
        .tasks(r#"version = 1

[tasks."t:{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}{q}{r}{s}{t}"]
run = "x"
matrix = { a = [0, 1], b = [0, 1], c = [0, 1], d = [0, 1], e = [0, 1], f = [0, 1], g = [0, 1], h = [0, 1], i = [0, 1], j = [0, 1], k = [0, 1], l = [0, 1], m = [0, 1], n = [0, 1], o = [0, 1], p = [0, 1], q = [0, 1], r = [0, 1], s = [0, 1], t = [0, 1] }
"#)
        .args(&["check"])
        .expect(
            2,
            "",
            r#"devgraph::matrix_too_large

  × matrix of task `t:{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}{q}{r}{s}{t}` expands to
  │ 1048576 tasks
   ╭─[tasks.toml:5:10]
 4 │ run = "x"
 5 │ matrix = { a = [0, 1], b = [0, 1], c = [0, 1], d = [0, 1], e = [0, 1], f = [0, 1], g = [0, 1], h = [0, 1], i = [0, 1], j = [0, 1], k = [0, 1], l = [0, 1], m = [0, 1], n = [0, 1], o = [0, 1], p = [0, 1], q = [0, 1], r = [0, 1], s = [0, 1], t = [0, 1] }
   ·          ─────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┬────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────
   ·                                                                                                                                   ╰── 1048576 combinations
   ╰────
  help: one template may expand to at most 10000 tasks; split it, or use fewer values

error: found 1 error in 1 file
"#,
        );
}

#[test]
fn an_input_glob_matching_no_file_is_a_warning() {
    Test::new()
        .tasks(
            r#"version = 1

[tasks."image:{service}"]
matrix = { service = ["chat", "graph"] }
inputs = ["services/{service}/**", "!services/**/node_modules/**"]
run = "true"
"#,
        )
        .write(
            "services/chat/main.go",
            r#"package main
"#,
        )
        .args(&["check"])
        .expect(
            0,
            r#"ok: 2 tasks in 1 file, 1 warning
"#,
            r#"devgraph::input_no_match

  ⚠ input glob `services/graph/**` of task `image:graph` matches no file
   ╭─[tasks.toml:5:11]
 4 │ matrix = { service = ["chat", "graph"] }
 5 │ inputs = ["services/{service}/**", "!services/**/node_modules/**"]
   ·           ───────────┬───────────
   ·                      ╰── matches nothing now
 6 │ run = "true"
   ╰────
  help: globs are relative to the project root; files ignored by .gitignore do not count

"#,
        );
}
