//! Proves the loader never panics: arbitrary text, mutated real-world files and generated
//! task graphs go through `load_with` and both diagnostic renderers, and what comes back is
//! consistent (a project exactly when there is no error; a project's graph is acyclic).
//!
//! `PROPTEST_CASES=N` overrides every test's case count, for a longer fuzzing session.

use std::collections::BTreeMap;
use std::path::PathBuf;

use devgraph::error::{Renderer, render_json};
use devgraph::load::{Memory, load_with};
use proptest::prelude::*;
use proptest::sample::{Index, select};

type Files = BTreeMap<String, String>;

const ROOT: &str = "tasks.toml";

fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Panics found here become explicit `#[test]`s below, not files beside the source.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn files(entries: &[(&str, &str)]) -> Files {
    entries
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect()
}

/// Loads `files` and checks everything that must hold whatever they contain (a panic
/// anywhere fails the case too).
fn check(files: &Files) -> Result<(), TestCaseError> {
    let loaded = load_with(PathBuf::from("/nonexistent"), ROOT, &Memory(files.clone()));
    let renderer = Renderer::new(false);
    for d in &loaded.diagnostics {
        let text = renderer.render(d);
        prop_assert!(!text.is_empty(), "empty rendering of {d:?}");
        let json = render_json(d);
        prop_assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "render_json gave invalid JSON: {json}"
        );
    }
    let failed = loaded.diagnostics.iter().any(|d| d.is_error());
    prop_assert_eq!(
        loaded.project.is_some(),
        !failed,
        "a project must be returned exactly when no diagnostic is an error; diagnostics: {:#?}",
        loaded
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    if let Some(project) = &loaded.project {
        let graph = &project.graph;
        let order = graph.topo_order();
        prop_assert_eq!(order.len(), graph.len());
        let mut position: Vec<Option<usize>> = vec![None; graph.len()];
        for (at, id) in order.iter().enumerate() {
            prop_assert!(
                position[id.index()].is_none(),
                "task {} twice in topo_order",
                id.index()
            );
            position[id.index()] = Some(at);
        }
        for id in graph.ids() {
            let mine = position[id.index()];
            prop_assert!(
                mine.is_some(),
                "task {} missing from topo_order",
                id.index()
            );
            for dep in graph.deps(id) {
                prop_assert!(
                    position[dep.index()] < mine,
                    "`{}` ordered before its dep `{}`",
                    graph.task(id).name,
                    graph.task(*dep).name
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 1. Arbitrary text.

/// Text made mostly of what TOML and tasks.toml give meaning to, so the parser gets deep.
fn tomlish() -> impl Strategy<Value = String> {
    let piece = select(TOKENS).prop_map(str::to_string);
    let word = "[a-z_]{1,6}";
    prop::collection::vec(prop_oneof![3 => piece, 1 => word], 0..60).prop_map(|p| p.concat())
}

/// Any bytes, read the way a lossy decoder would.
fn lossy_bytes() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..300)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        lossy_bytes(),
        tomlish(),
        // Valid prefix, garbage after: the parser recovers and the decoder sees the rest.
        tomlish().prop_map(|t| format!("version = 1\n[tasks.a]\nrun = \"x\"\n{t}")),
    ]
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn arbitrary_root_file_never_panics(text in arbitrary_text()) {
        check(&files(&[(ROOT, &text)]))?;
    }

    #[test]
    fn arbitrary_included_files_never_panic(a in arbitrary_text(), b in arbitrary_text()) {
        let root = "version = 1\ninclude = [\"layers/*.toml\"]\n\n[tasks.root]\ndeps = [\"layer:*\"]\n";
        check(&files(&[(ROOT, root), ("layers/a.toml", &a), ("layers/b.toml", &b)]))?;
    }
}

// ---------------------------------------------------------------------------------------
// 2. Mutated valid documents.

/// Pieces that mean something to TOML, to tasks.toml or to a text renderer.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "=",
    ",",
    ".",
    ":",
    "#",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "\\",
    "\\u00e9",
    "\\U0001F600",
    "\\n",
    "{service}",
    "{env}",
    "{x}",
    "{",
    "{}",
    "{1}",
    "*",
    "**",
    "?",
    "!",
    "..",
    "../",
    "/",
    "/etc",
    "é",
    "→",
    "😀",
    "👩‍💻",
    "\u{301}",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "\u{7f}",
    "\u{2028}",
    "ﬀ",
    "0",
    "-1",
    "1e400",
    "0x7fffffffffffffff",
    "99999999999999999999",
    "inf",
    "nan",
    "true",
    "1979-05-27T07:32:00Z",
    "10s",
    "500ms",
    "1h",
    "tasks",
    "version",
    "include",
    "settings",
    "env",
    "deps",
    "matrix",
    "run",
    "desc",
    "timeout",
    "retries",
    "[tasks.x]\n",
    "[tasks.\"y:{v}\"]\n",
    "matrix = { v = [] }\n",
    "deps = [\"*\"]\n",
    "include = [\"**\"]\n",
    "a.b.c = 1\n",
];

const SERVICES: &str = r#"version = 1

[settings]
default = "up"
jobs = 4
shell = ["bash", "-eo", "pipefail", "-c"]
dotenv = [".env", "config/*.env"]

[env]
RUST_LOG = "info"
PORT = 8080
DEBUG = true
RATIO = 0.5

[tasks."image:{service}"]
matrix = { service = ["api", "web", "worker"] }
desc = "build the {service} image"
inputs = ["services/{service}/**", "!services/{service}/target/**"]
outputs = ["build/{service}.tar"]
deps = ["base"]
run = "docker build -t {service} services/{service}"
timeout = "10m"
retries = 2
retry_delay = "500ms"
hash_env = ["RUST_LOG"]

[tasks.base]
run = "docker pull debian"
probe = "docker image inspect debian"
probe_timeout = "10s"
requires_tools = ["docker"]
requires_env = ["HOME"]

[tasks."deploy:{env}:{service}"]
matrix = { env = ["dev", "prod"], service = ["api", "web"] }
deps = ["image:{service}", "infra:{env}"]
run = "deploy {service} to {env}"
env = { TARGET = "x", LEVEL = 3 }

[tasks."infra:{env}"]
matrix = { env = ["dev", "prod"] }
run = "terraform apply -var env=$env"
timeout = "1h30m"

[tasks.up]
desc = "everything"
deps = ["image:*", "deploy:*"]
"#;

const LAYERED_ROOT: &str = r#"version = 1
include = ["layers/*.toml"]

[settings]
default = "all"

[tasks.all]
deps = ["layer:*"]
"#;

const LAYER_A: &str = r#"[tasks."layer:a"]
run = "echo a"
outputs = ["out/a"]

[tasks."layer:a:{n}"]
matrix = { n = [1, 2, 3] }
deps = ["layer:a"]
run = "echo a $n"
"#;

const LAYER_B: &str = r#"# Depends across files.
[tasks."layer:b"]
deps = ["layer:a:*"]
run = '''
echo b
echo "{not_a_placeholder_here}"
'''
"#;

const CYCLE: &str = r#"version = 1

[tasks.a]
deps = ["b"]
run = "a"

[tasks.b]
deps = ["c"]

[tasks.c]
deps = ["a", "c"]
"#;

const FORMS: &str = r#"version = 1
tasks.fmt.run = "cargo fmt"
tasks."lint:clippy" = { run = "cargo clippy", deps = ["fmt"], timeout = "90s" }

[tasks."test:{kind}"]
matrix.kind = ["unit", "doc"]
deps = ["lint:*"]
run = "cargo test --{kind}"
desc = """
Runs the {kind} tests."""

[tasks.'pkg:{kind}']
matrix = { kind = ['tar', 'zip'] }
deps = ['test:*', "fmt"]
outputs = ['dist/*.{kind}']
run = 'pack {kind}'
"#;

const UNICODE: &str = "# Ünïcödé → 🚀\nversion = 1\n\n[env]\nGREETING = \"héllo → wörld 🌍\"\n\n\
[tasks.\"build:{lang}\"]\nmatrix = { lang = [\"fr\", \"de\"] }\n\
desc = \"build \\u00e9 {lang} → 🚀\"\noutputs = ['out/{lang}/**']\n\
run = \"echo \\\"{lang}\\\" \\t done\"\n\n\
[tasks.\"docs/site.v2\"]\ndeps = [\"build:*\"]\nrun = 'echo ✓'\n";

/// Realistic files that load without errors (all but the cycle), to mutate.
fn seeds() -> Vec<Files> {
    vec![
        files(&[
            (ROOT, include_str!("../../examples/quickstart/tasks.toml")),
            (
                "checks.toml",
                include_str!("../../examples/quickstart/checks.toml"),
            ),
        ]),
        files(&[(ROOT, SERVICES)]),
        files(&[(ROOT, &SERVICES.replace('\n', "\r\n"))]),
        files(&[
            (ROOT, LAYERED_ROOT),
            ("layers/a.toml", LAYER_A),
            ("layers/b.toml", LAYER_B),
        ]),
        files(&[(ROOT, CYCLE)]),
        files(&[(ROOT, FORMS)]),
        files(&[(ROOT, UNICODE)]),
    ]
}

#[test]
fn seeds_are_valid_except_the_cycle() {
    for (i, seed) in seeds().iter().enumerate() {
        let loaded = load_with(PathBuf::from("/nonexistent"), ROOT, &Memory(seed.clone()));
        let errors: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
        if seed[ROOT] == CYCLE {
            assert!(loaded.project.is_none(), "the cycle seed loaded");
        } else {
            assert!(
                loaded.project.is_some(),
                "seed {i} does not load: {errors:#?}"
            );
            assert!(errors.is_empty(), "seed {i} has diagnostics: {errors:#?}");
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete {
        at: Index,
        chars: usize,
    },
    Insert {
        at: Index,
        text: String,
    },
    Replace {
        at: Index,
        chars: usize,
        text: String,
    },
    DuplicateLine {
        line: Index,
    },
    SwapLines {
        a: Index,
        b: Index,
    },
    DeleteLine {
        line: Index,
    },
    Truncate {
        at: Index,
    },
}

fn inserted() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(TOKENS).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
        1 => ".{1,6}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1..24usize).prop_map(|(at, chars)| Mutation::Delete { at, chars }),
        4 => (any::<Index>(), inserted()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        3 => (any::<Index>(), 1..8usize, inserted())
            .prop_map(|(at, chars, text)| Mutation::Replace { at, chars, text }),
        1 => any::<Index>().prop_map(|line| Mutation::DuplicateLine { line }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        1 => any::<Index>().prop_map(|line| Mutation::DeleteLine { line }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// The byte offsets of every char boundary of `text`, its end included.
fn boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect()
}

fn apply(text: &mut String, m: &Mutation) {
    let bounds = boundaries(text);
    let pick = |at: &Index| at.index(bounds.len());
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    match m {
        Mutation::Delete { at, chars } => {
            let start = pick(at);
            let end = (start + chars).min(bounds.len() - 1);
            text.replace_range(bounds[start]..bounds[end], "");
        }
        Mutation::Insert { at, text: t } => text.insert_str(bounds[pick(at)], t),
        Mutation::Replace { at, chars, text: t } => {
            let start = pick(at);
            let end = (start + chars).min(bounds.len() - 1);
            text.replace_range(bounds[start]..bounds[end], t);
        }
        Mutation::Truncate { at } => text.truncate(bounds[pick(at)]),
        _ if lines.is_empty() => {}
        Mutation::DuplicateLine { line } => {
            let i = line.index(lines.len());
            let copy = lines[i].clone();
            lines.insert(i, copy);
            *text = lines.concat();
        }
        Mutation::SwapLines { a, b } => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
            *text = lines.concat();
        }
        Mutation::DeleteLine { line } => {
            lines.remove(line.index(lines.len()));
            *text = lines.concat();
        }
    }
}

fn mutated() -> impl Strategy<Value = Files> {
    let count = seeds().len();
    (
        0..count,
        prop::collection::vec((any::<Index>(), mutation()), 1..10),
    )
        .prop_map(|(seed, mutations)| {
            let mut files = seeds().swap_remove(seed);
            for (file, m) in &mutations {
                let i = file.index(files.len());
                let text = files.values_mut().nth(i).expect("index is in range");
                apply(text, m);
            }
            files
        })
}

proptest! {
    #![proptest_config(config(1200))]

    #[test]
    fn mutated_documents_never_panic(files in mutated()) {
        check(&files)?;
    }
}

// ---------------------------------------------------------------------------------------
// 3. Generated documents: valid TOML, arbitrary meaning.

/// Names for tasks and deps, drawn from one pool so deps often hit (and loop).
const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "build",
    "test",
    "up",
    "UP",
    "9lives",
    "x/y.z-1_2",
    "a.b/c",
    "a:",
    "image:api",
    "image:web",
    "image:{svc}",
    "deploy:{env}:{svc}",
    "infra:{n}",
    "{svc}",
    "{svc}:x",
    "ok:{missing}",
    "{svc}{env}",
    "-bad",
    "has space",
    "",
    "é",
    "a*",
    "x→y",
];
/// Deps that are globs or otherwise not names.
const DEP_EXTRAS: &[&str] = &[
    "*",
    "**",
    "image:*",
    "deploy:*",
    "a*",
    "b?",
    "image:[aw]*",
    "[",
    "image:[",
    "{a,b}",
    "{",
    "\\*",
    "!a",
    "nope",
    "infra:{env}",
    "image:{svc}",
    "{svc}",
    "}{",
    "a\\",
];
const VARS: &[&str] = &["svc", "env", "n", "x", "1bad", "a-b", "", "é", "PATH"];
const VALUES: &[&str] = &[
    "api", "web", "1", "dev", "prod", "", "a b", "*", "{svc}", "x:y", "é",
];
const FIELDS: &[&str] = &[
    "desc",
    "run",
    "deps",
    "inputs",
    "outputs",
    "env",
    "hash_env",
    "requires_env",
    "requires_tools",
    "probe",
    "probe_timeout",
    "timeout",
    "retries",
    "retry_delay",
    "matrix",
    "dep",
    "cmd",
    "command",
    "depends_on",
    "Run",
    "input",
    "timout",
    "",
    "é",
    "tasks",
];
const DURATIONS: &[&str] = &[
    "10s",
    "500ms",
    "1m30s",
    "1h",
    "0s",
    "",
    "10",
    "10sec",
    "-1s",
    "1.5s",
    "s",
    "1h1h1h",
    "99999999999999999999s",
    "18446744073709551615h",
    "18446744073709551615s5124095576030432h",
    "18446744073709551615ms",
    "→1s",
    "1sé",
    "1 s",
];
const GLOBS: &[&str] = &[
    "src/**/*.rs",
    "!src/gen/**",
    "out/{svc}",
    "build/{svc}.tar",
    "/etc/passwd",
    "../x",
    "a/../b",
    "",
    "!",
    "[",
    "src/[a",
    "{a,b}",
    "**",
    "\\",
    "é/→.txt",
    "a//b",
    "./x",
];
const STRINGS: &[&str] = &[
    "",
    "echo hi",
    "{svc}",
    "{missing}",
    "{",
    "é → 😀",
    "a\nb",
    "\u{0}",
];
/// Scalars as TOML writes them, of every type.
const RAW: &[&str] = &[
    "1",
    "0",
    "-1",
    "2",
    "9223372036854775807",
    "-9223372036854775808",
    "0x7fffffffffffffff",
    "0xffffffffffffffff",
    "0o17",
    "0b101",
    "1_000",
    "+5",
    "3.5",
    "-0.0",
    "inf",
    "nan",
    "1e400",
    "true",
    "false",
    "1979-05-27T07:32:00Z",
    "1979-05-27",
    "07:32:00",
    "[]",
    "{}",
];

/// A TOML value, rendered valid.
#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Raw(&'static str),
    Arr(Vec<Val>),
    Table(Vec<(String, Val)>),
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key, bare when TOML allows it, quoted otherwise.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { s.to_string() } else { quote(s) }
}

impl Val {
    fn render(&self) -> String {
        match self {
            Val::Str(s) => quote(s),
            Val::Raw(r) => r.to_string(),
            Val::Arr(items) => {
                let items: Vec<String> = items.iter().map(Val::render).collect();
                format!("[{}]", items.join(", "))
            }
            Val::Table(entries) => {
                let entries: Vec<String> = unique(entries)
                    .map(|(k, v)| format!("{} = {}", key(k), v.render()))
                    .collect();
                format!("{{ {} }}", entries.join(", "))
            }
        }
    }
}

/// The entries whose key was not seen before: TOML refuses a key twice in a table.
fn unique<'a, T>(entries: &'a [(String, T)]) -> impl Iterator<Item = &'a (String, T)> {
    let mut seen = std::collections::HashSet::new();
    entries.iter().filter(move |(k, _)| seen.insert(k.as_str()))
}

fn pool(items: &'static [&'static str]) -> impl Strategy<Value = Val> + Clone {
    select(items).prop_map(|s| Val::Str(s.to_string()))
}

fn any_val() -> impl Strategy<Value = Val> {
    let leaf = prop_oneof![
        select(RAW).prop_map(Val::Raw),
        pool(STRINGS),
        pool(NAMES),
        "\\PC{0,6}".prop_map(Val::Str),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Val::Arr),
            prop::collection::vec((select(FIELDS).prop_map(str::to_string), inner), 0..4)
                .prop_map(Val::Table),
        ]
    })
}

/// A list of `pool` strings, now and then with a stray value of another type.
fn list(items: &'static [&'static str]) -> impl Strategy<Value = Val> {
    prop::collection::vec(prop_oneof![8 => pool(items), 1 => any_val()], 0..4).prop_map(Val::Arr)
}

fn deps() -> impl Strategy<Value = Val> {
    let dep = prop_oneof![4 => pool(NAMES), 2 => pool(DEP_EXTRAS), 1 => any_val()];
    prop::collection::vec(dep, 0..5).prop_map(Val::Arr)
}

fn matrix() -> impl Strategy<Value = Val> {
    let value = prop_oneof![8 => pool(VALUES), 1 => select(RAW).prop_map(Val::Raw), 1 => any_val()];
    let values = prop_oneof![
        8 => prop::collection::vec(value, 0..4).prop_map(Val::Arr),
        1 => any_val(),
    ];
    let var = select(VARS).prop_map(str::to_string);
    prop_oneof![
        8 => prop::collection::vec((var, values), 0..3).prop_map(Val::Table),
        1 => any_val(),
    ]
}

fn env_table() -> impl Strategy<Value = Val> {
    let name = prop_oneof![select(VARS).prop_map(str::to_string), "\\PC{0,4}"];
    prop_oneof![
        6 => prop::collection::vec((name, any_val()), 0..4).prop_map(Val::Table),
        1 => any_val(),
    ]
}

/// One `field = value` of a task: mostly a known field with a value of roughly its type.
fn field() -> impl Strategy<Value = (String, Val)> {
    let named =
        |f: &'static [&'static str], v: BoxedStrategy<Val>| (select(f).prop_map(str::to_string), v);
    let string = prop_oneof![pool(STRINGS), pool(NAMES), any_val()].boxed();
    let duration = prop_oneof![6 => pool(DURATIONS), 1 => "[0-9]{0,21}(ms|s|m|h|x)?".prop_map(Val::Str), 1 => any_val()].boxed();
    let retries = prop_oneof![select(RAW).prop_map(Val::Raw), any_val()].boxed();
    prop_oneof![
        5 => named(&["deps"], deps().boxed()),
        4 => named(&["matrix"], matrix().boxed()),
        3 => named(&["run", "desc", "probe"], string),
        2 => named(&["timeout", "probe_timeout", "retry_delay"], duration),
        2 => named(&["inputs", "outputs"], list(GLOBS).boxed()),
        1 => named(&["hash_env", "requires_env", "requires_tools"], list(VARS).boxed()),
        1 => named(&["env"], env_table().boxed()),
        1 => named(&["retries"], retries),
        2 => named(FIELDS, any_val().boxed()),
    ]
}

#[derive(Debug, Clone)]
struct GenTask {
    name: String,
    fields: Vec<(String, Val)>,
    /// Which file holds it: the root, or one of two included files.
    file: usize,
    /// `[tasks."name"]` when true, `tasks."name" = { … }` otherwise.
    section: bool,
}

#[derive(Debug, Clone)]
struct GenDoc {
    /// `version = …`, or nothing.
    version: Option<Val>,
    /// Top-level `key = value`s besides `version` and `tasks` (settings, env, include, typos).
    top: Vec<(String, Val)>,
    tasks: Vec<GenTask>,
    include: Option<Val>,
}

fn task() -> impl Strategy<Value = GenTask> {
    let name = prop_oneof![6 => select(NAMES).prop_map(str::to_string), 1 => "[a-z{}:*é]{0,6}"];
    (
        name,
        prop::collection::vec(field(), 0..6),
        0..3usize,
        any::<bool>(),
    )
        .prop_map(|(name, fields, file, section)| GenTask {
            name,
            fields,
            file,
            section,
        })
}

fn top_entry() -> impl Strategy<Value = (String, Val)> {
    let settings_field = prop_oneof![
        (
            Just("default".to_string()),
            prop_oneof![pool(NAMES), pool(DEP_EXTRAS), any_val()]
        ),
        (
            Just("jobs".to_string()),
            prop_oneof![select(RAW).prop_map(Val::Raw), any_val()]
        ),
        (
            Just("shell".to_string()),
            prop_oneof![list(STRINGS), any_val()]
        ),
        (
            Just("dotenv".to_string()),
            prop_oneof![list(GLOBS), any_val()]
        ),
        (select(FIELDS).prop_map(str::to_string), any_val()),
    ];
    let settings = prop_oneof![
        4 => prop::collection::vec(settings_field, 0..4).prop_map(Val::Table),
        1 => any_val(),
    ];
    prop_oneof![
        3 => (Just("settings".to_string()), settings),
        2 => (Just("env".to_string()), env_table()),
        1 => (select(&["setting", "Version", "task", "includes", ""][..]).prop_map(str::to_string), any_val()),
    ]
}

fn doc() -> impl Strategy<Value = GenDoc> {
    let version = prop::option::weighted(
        0.9,
        prop_oneof![8 => Just(Val::Raw("1")), 1 => select(RAW).prop_map(Val::Raw), 1 => any_val()],
    );
    let include = prop::option::weighted(
        0.5,
        prop_oneof![
            6 => Just(Val::Arr(vec![Val::Str("layers/*.toml".into())])),
            1 => list(&["layers/a.toml", "layers/*.toml", "**", "layers/[", "!x", "../x", "/x", "none/*"]),
            1 => any_val(),
        ],
    );
    (
        version,
        prop::collection::vec(top_entry(), 0..3),
        prop::collection::vec(task(), 0..7),
        include,
    )
        .prop_map(|(version, top, tasks, include)| GenDoc {
            version,
            top,
            tasks,
            include,
        })
}

impl GenDoc {
    fn render(&self) -> Files {
        let mut texts = [String::new(), String::new(), String::new()];
        let root = &mut texts[0];
        if let Some(v) = &self.version {
            root.push_str(&format!("version = {}\n", v.render()));
        }
        if let Some(inc) = &self.include {
            root.push_str(&format!("include = {}\n", inc.render()));
        }
        for (k, v) in unique(&self.top) {
            root.push_str(&format!("{} = {}\n", key(k), v.render()));
        }
        // A name once per file (the same name in two files is the loader's to report).
        let mut seen = std::collections::HashSet::new();
        let tasks: Vec<&GenTask> = self
            .tasks
            .iter()
            .filter(|t| seen.insert((t.file, t.name.as_str())))
            .collect();
        // Inline tasks first (they are plain keys of the root table), sections after.
        for t in tasks.iter().filter(|t| !t.section) {
            let fields = Val::Table(t.fields.clone()).render();
            texts[t.file].push_str(&format!("tasks.{} = {fields}\n", key(&t.name)));
        }
        for t in tasks.iter().filter(|t| t.section) {
            let text = &mut texts[t.file];
            text.push_str(&format!("\n[tasks.{}]\n", key(&t.name)));
            for (k, v) in unique(&t.fields) {
                text.push_str(&format!("{} = {}\n", key(k), v.render()));
            }
        }
        let [root, a, b] = texts;
        files(&[(ROOT, &root), ("layers/a.toml", &a), ("layers/b.toml", &b)])
    }
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn generated_documents_never_panic(doc in doc()) {
        check(&doc.render())?;
    }
}
