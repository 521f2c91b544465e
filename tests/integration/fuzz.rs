//! Proves the loader never panics: arbitrary text, mutated real-world files and generated
//! task graphs go through `load_with` and both diagnostic renderers without a panic, and
//! what comes back is consistent (a project exactly when no diagnostic is an error; a
//! project's graph is acyclic; `render_json` is valid JSON).
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
        // A failure prints its shrunk input: keep it as a plain `#[test]`, not a
        // proptest-regressions file beside the source.
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
    #![proptest_config(config(800))]

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
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    "[", "]", "[[", "]]", "{", "}", "\"", "'", "'''", "\"\"\"", "=", ",", ".", ":", "#", "\n",
    "\r\n", "\r", "\t", " ", "\\", "\\u00e9", "\\U0001F600", "\\n", "{service}", "{env}", "{x}",
    "{", "{}", "{1}", "*", "**", "?", "!", "..", "../", "/", "/etc", "é", "→", "😀", "👩‍💻",
    "\u{301}", "\u{200b}", "\u{feff}", "\u{0}", "\u{7f}", "\u{2028}", "ﬀ", "0", "-1", "1e400",
    "0x7fffffffffffffff", "99999999999999999999", "inf", "nan", "true", "1979-05-27T07:32:00Z",
    "10s", "500ms", "1h", "tasks", "version", "include", "settings", "env", "deps", "matrix", "run",
    "desc", "timeout", "retries", "[tasks.x]\n", "[tasks.\"y:{v}\"]\n", "matrix = { v = [] }\n",
    "deps = [\"*\"]\n", "include = [\"**\"]\n", "a.b.c = 1\n",
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

/// What a mutation inserts inside a quoted string: nothing that ends the string, so the
/// file stays valid TOML and the loader's checks (not the parser) meet the change.
#[rustfmt::skip]
const IN_STRING: &[&str] = &[
    "{service}", "{env}", "{n}", "{x}", "{", "}", "{}", "{1}", "{a,b}", "*", "**", "?", "[", "]",
    "!", "..", "../", "/", ":", " ", ",", "-", "_", ".", "x", "0", "99999999999999999999", "ms",
    "h", "é", "→", "😀", "👩‍💻", "\u{301}", "\u{200b}", "\u{feff}", "\u{2028}", "\t", "\\n",
    "\\u0000", "\\u001b", "\\\"", "\\\\",
];

/// Words a mutation swaps in for a bare word: fields, misspellings, values.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "version", "include", "settings", "env", "tasks", "default", "jobs", "shell", "dotenv", "desc",
    "run", "deps", "inputs", "outputs", "hash_env", "requires_env", "requires_tools", "probe",
    "probe_timeout", "timeout", "retries", "retry_delay", "matrix", "dep", "cmd", "Run", "service",
    "env2", "a", "up", "1", "0", "-1", "2", "true", "3.5",
];

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
    /// Inserts at a place inside a single-line quoted string.
    InString {
        at: Index,
        text: String,
    },
    /// Deletes characters inside a single-line quoted string.
    DeleteInString {
        at: Index,
        chars: usize,
    },
    /// Replaces a bare word (a key, a number, `true`) with another.
    ReplaceWord {
        at: Index,
        word: &'static str,
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
        2 => (any::<Index>(), 1..24usize).prop_map(|(at, chars)| Mutation::Delete { at, chars }),
        3 => (any::<Index>(), inserted()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        2 => (any::<Index>(), 1..8usize, inserted())
            .prop_map(|(at, chars, text)| Mutation::Replace { at, chars, text }),
        6 => (any::<Index>(), select(IN_STRING))
            .prop_map(|(at, text)| Mutation::InString { at, text: text.to_string() }),
        3 => (any::<Index>(), 1..8usize)
            .prop_map(|(at, chars)| Mutation::DeleteInString { at, chars }),
        4 => (any::<Index>(), select(WORDS)).prop_map(|(at, word)| Mutation::ReplaceWord { at, word }),
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

/// Byte offsets inside single-line `"…"` or `'…'` strings where text can go (after the
/// opening quote, before a non-escape char), and whether the char there may be deleted.
fn string_insides(text: &str) -> Vec<(usize, bool)> {
    let mut found = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
            Some(_) if c == '\n' => quote = None,
            Some(q) => {
                if escaped {
                    escaped = false;
                    continue;
                }
                if c == q {
                    found.push((i, false));
                    quote = None;
                } else if q == '"' && c == '\\' {
                    escaped = true;
                } else {
                    found.push((i, !escaped));
                }
            }
        }
    }
    found
}

/// The bare words of `text`: runs of ASCII letters, digits, `_` and `-` outside strings.
fn words(text: &str) -> Vec<std::ops::Range<usize>> {
    let inside: std::collections::HashSet<usize> =
        string_insides(text).iter().map(|(i, _)| *i).collect();
    let mut found = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        let word = (c.is_ascii_alphanumeric() || c == '_' || c == '-') && !inside.contains(&i);
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                found.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    found
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
        Mutation::InString { at, text: t } => {
            let places = string_insides(text);
            if !places.is_empty() {
                text.insert_str(places[at.index(places.len())].0, t);
            }
        }
        Mutation::DeleteInString { at, chars } => {
            let places = string_insides(text);
            if !places.is_empty() {
                let first = at.index(places.len());
                // Consecutive deletable chars from there, at most `chars` of them.
                let run = places[first..]
                    .iter()
                    .take(*chars)
                    .take_while(|(_, ok)| *ok)
                    .count();
                if run > 0 {
                    let start = places[first].0;
                    let last = places[first + run - 1].0;
                    let end = last + text[last..].chars().next().map_or(0, char::len_utf8);
                    text.replace_range(start..end, "");
                }
            }
        }
        Mutation::ReplaceWord { at, word } => {
            let found = words(text);
            if !found.is_empty() {
                text.replace_range(found[at.index(found.len())].clone(), word);
            }
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

/// Mutations that mostly keep the file valid TOML.
fn gentle_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), select(IN_STRING))
            .prop_map(|(at, text)| Mutation::InString { at, text: text.to_string() }),
        2 => (any::<Index>(), 1..8usize)
            .prop_map(|(at, chars)| Mutation::DeleteInString { at, chars }),
        1 => (any::<Index>(), select(WORDS)).prop_map(|(at, word)| Mutation::ReplaceWord { at, word }),
    ]
}

fn mutated() -> impl Strategy<Value = Files> {
    let count = seeds().len();
    let mutations = prop_oneof![
        prop::collection::vec((any::<Index>(), gentle_mutation().boxed()), 1..5),
        prop::collection::vec((any::<Index>(), mutation().boxed()), 1..6),
    ];
    (0..count, mutations).prop_map(|(seed, mutations)| {
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
    #![proptest_config(config(3000))]

    #[test]
    fn mutated_documents_never_panic(files in mutated()) {
        check(&files)?;
    }
}

// ---------------------------------------------------------------------------------------
// 3. Generated documents: valid TOML (almost always), arbitrary meaning. A clean document
// draws only well-formed values, so its outcome turns on names, deps, matrices, cycles and
// duplicates; a chaotic one mixes in values of every wrong kind and shape.

/// Valid task names, some of them matrix templates.
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "a", "b", "c", "build", "test", "up", "UP", "9lives", "x/y.z-1_2", "a.b/c", "a:", "image:api",
    "image:web", "image:{svc}", "deploy:{env}:{svc}", "infra:{n}", "{svc}", "{svc}:x", "{env}{n}",
    "{n}/{n}",
];
#[rustfmt::skip]
const BAD_NAMES: &[&str] = &[
    "ok:{missing}", "-bad", "has space", "", "é", "a*", "x→y", "{svc", "{1}", "a\nb", "\u{0}",
];
/// Deps that are not a task's own name: globs, typos, junk.
#[rustfmt::skip]
const OTHER_DEPS: &[&str] = &[
    "*", "image:*", "deploy:*", "a*", "b?", "image:[aw]*", "{a,b}", "\\*", "nope", "[", "image:[",
    "{", "!a", "}{", "a\\", "**", "", "infra:{n}", "image:{svc}", "{missing}",
];
const VARS: &[&str] = &["svc", "env", "n", "x", "1bad", "a-b", "", "é", "PATH"];
const VALUES: &[&str] = &["api", "web", "1", "dev", "prod", "x:y", "v1.2"];
const BAD_VALUES: &[&str] = &["", "a b", "*", "{svc}", "é", "{n}", "-", "\u{0}"];
#[rustfmt::skip]
const FIELDS: &[&str] = &[
    "desc", "run", "deps", "inputs", "outputs", "env", "hash_env", "requires_env", "requires_tools",
    "probe", "probe_timeout", "timeout", "retries", "retry_delay", "matrix", "dep", "cmd",
    "command", "depends_on", "Run", "input", "timout", "", "é", "tasks",
];
const DURATIONS: &[&str] = &["10s", "500ms", "1m30s", "1h", "0s", "2h5s"];
#[rustfmt::skip]
const BAD_DURATIONS: &[&str] = &[
    "", "10", "10sec", "-1s", "1.5s", "s", "1h1h1h", "99999999999999999999s",
    "18446744073709551615h", "18446744073709551615s5124095576030432h", "18446744073709551615ms",
    "→1s", "1sé", "1 s",
];
#[rustfmt::skip]
const GLOBS: &[&str] = &[
    "src/**/*.rs", "!src/gen/**", "out/{a,b}", "**", "é/→.txt", "./x", "a//b",
];
#[rustfmt::skip]
const BAD_GLOBS: &[&str] = &[
    "/etc/passwd", "../x", "a/../b", "", "!", "[", "src/[a", "\\", "out/{svc}", "{missing}/x",
];
#[rustfmt::skip]
const STRINGS: &[&str] = &[
    "", "echo hi", "é → 😀", "a\nb", "jsonpath='{.a}'", "\u{0}\u{1b}",
];
const BAD_STRINGS: &[&str] = &["{missing}", "{svc}", "{", "{n}{n}"];
const ENV_NAMES: &[&str] = &["PATH", "RUST_LOG", "_X", "A1"];
const BAD_ENV_NAMES: &[&str] = &["1A", "a-b", "", "é", "A B", "\u{0}"];
/// Scalars as TOML writes them, of every type.
#[rustfmt::skip]
const RAW: &[&str] = &[
    "1", "0", "-1", "2", "9223372036854775807", "-9223372036854775808", "0x7fffffffffffffff",
    "0xffffffffffffffff", "0o17", "0b101", "1_000", "+5", "3.5", "-0.0", "inf", "nan", "1e400",
    "true", "false", "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "[]", "{}",
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

/// The entries whose key was not seen before: TOML refuses a key twice in a table.
fn unique<T>(entries: &[(String, T)]) -> impl Iterator<Item = &(String, T)> {
    let mut seen = std::collections::HashSet::new();
    entries.iter().filter(move |(k, _)| seen.insert(k.as_str()))
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

fn strs(items: &'static [&'static str]) -> impl Strategy<Value = Val> + Clone {
    select(items).prop_map(|s| Val::Str(s.to_string()))
}

/// `good`, or in a chaotic document now and then `bad`.
fn mix<T: std::fmt::Debug + Clone + 'static>(
    chaos: bool,
    good: impl Strategy<Value = T> + 'static,
    bad: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if chaos {
        prop_oneof![3 => good, 1 => bad].boxed()
    } else {
        good.boxed()
    }
}

fn any_val() -> impl Strategy<Value = Val> {
    let leaf = prop_oneof![
        select(RAW).prop_map(Val::Raw),
        strs(STRINGS),
        strs(BAD_STRINGS),
        strs(NAMES),
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

/// A string from `good` (or, when chaotic, from `bad` or of any type).
fn string(
    chaos: bool,
    good: &'static [&'static str],
    bad: &'static [&'static str],
) -> BoxedStrategy<Val> {
    mix(chaos, strs(good), prop_oneof![strs(bad), any_val()])
}

/// An array of such strings (or, when chaotic, anything).
fn strings(
    chaos: bool,
    good: &'static [&'static str],
    bad: &'static [&'static str],
) -> BoxedStrategy<Val> {
    let list = prop::collection::vec(string(chaos, good, bad), 0..4).prop_map(Val::Arr);
    mix(chaos, list, any_val())
}

fn env_table(chaos: bool) -> BoxedStrategy<Val> {
    let name = mix(chaos, select(ENV_NAMES), select(BAD_ENV_NAMES)).prop_map(str::to_string);
    let value = mix(
        chaos,
        prop_oneof![strs(STRINGS), select(RAW[..4].to_vec()).prop_map(Val::Raw)],
        any_val(),
    );
    let table = prop::collection::vec((name, value), 0..4).prop_map(Val::Table);
    mix(chaos, table, any_val())
}

/// One `field = value` of a task besides `deps` and `matrix`.
fn field(chaos: bool) -> BoxedStrategy<(String, Val)> {
    let named =
        |f: &'static [&'static str], v: BoxedStrategy<Val>| (select(f).prop_map(str::to_string), v);
    let retries = mix(
        chaos,
        select(&["0", "1", "2"][..]).prop_map(Val::Raw),
        prop_oneof![select(RAW).prop_map(Val::Raw), any_val()],
    );
    let good = prop_oneof![
        4 => named(&["run"], string(chaos, STRINGS, BAD_STRINGS)),
        2 => named(&["desc", "probe"], string(chaos, STRINGS, BAD_STRINGS)),
        2 => named(&["timeout", "probe_timeout", "retry_delay"], string(chaos, DURATIONS, BAD_DURATIONS)),
        2 => named(&["inputs", "outputs"], strings(chaos, GLOBS, BAD_GLOBS)),
        1 => named(&["hash_env", "requires_env", "requires_tools"], strings(chaos, ENV_NAMES, BAD_ENV_NAMES)),
        1 => named(&["env"], env_table(chaos)),
        1 => named(&["retries"], retries),
    ];
    mix(
        chaos,
        good,
        (select(FIELDS).prop_map(str::to_string), any_val()),
    )
}

/// One dep of a generated task.
#[derive(Debug, Clone)]
enum Dep {
    /// Another task of the document (or itself): its name when the names match up, else
    /// its name with every placeholder as `*`.
    Task(Index),
    /// Like `Task`, but one defined before this one (none for the first): no cycle, unless
    /// a glob or another dep closes one.
    Earlier(Index),
    Other(Val),
}

#[derive(Debug, Clone)]
enum Matrix {
    /// A variable per placeholder of the name, with these values (cycled).
    Auto(Vec<Vec<Val>>),
    Explicit(Val),
    Missing,
}

#[derive(Debug, Clone)]
struct GenTask {
    name: String,
    matrix: Matrix,
    deps: Option<Vec<Dep>>,
    fields: Vec<(String, Val)>,
    /// Which file holds it: the root, or one of two included files.
    file: usize,
    /// `[tasks."name"]` when true, `tasks."name" = { … }` otherwise.
    section: bool,
}

/// One entry of a generated `[settings]`.
#[derive(Debug, Clone)]
enum Setting {
    /// `default = ` the name (or, for a template, the glob) of a task of the document.
    DefaultTask(Index),
    Field(String, Val),
}

#[derive(Debug, Clone)]
struct GenDoc {
    version: Option<Val>,
    include: Option<Val>,
    settings: Option<Vec<Setting>>,
    /// Other top-level `key = value`s: `env`, typos.
    top: Vec<(String, Val)>,
    tasks: Vec<GenTask>,
}

fn matrix(chaos: bool) -> BoxedStrategy<Matrix> {
    if !chaos {
        let values = prop::sample::subsequence(VALUES, 1..4)
            .prop_map(|vs| vs.iter().map(|v| Val::Str(v.to_string())).collect());
        return prop::collection::vec(values, 1..3)
            .prop_map(Matrix::Auto)
            .boxed();
    }
    let value =
        prop_oneof![3 => strs(VALUES), 1 => strs(BAD_VALUES), 1 => select(RAW).prop_map(Val::Raw)];
    let auto =
        prop::collection::vec(prop::collection::vec(value, 1..4), 1..3).prop_map(Matrix::Auto);
    let var = select(VARS).prop_map(str::to_string);
    let explicit_values = prop_oneof![
        4 => prop::collection::vec(prop_oneof![strs(VALUES), strs(BAD_VALUES), any_val()], 0..4).prop_map(Val::Arr),
        1 => any_val(),
    ];
    let explicit = prop_oneof![
        4 => prop::collection::vec((var, explicit_values), 0..3).prop_map(Val::Table),
        1 => any_val(),
    ];
    prop_oneof![
        4 => auto,
        2 => explicit.prop_map(Matrix::Explicit),
        1 => Just(Matrix::Missing),
    ]
    .boxed()
}

fn dep(chaos: bool) -> BoxedStrategy<Dep> {
    let other = prop_oneof![strs(OTHER_DEPS), strs(NAMES), strs(BAD_NAMES), any_val()];
    let good = prop_oneof![
        12 => any::<Index>().prop_map(Dep::Earlier),
        1 => any::<Index>().prop_map(Dep::Task),
        1 => strs(&OTHER_DEPS[..3]).prop_map(Dep::Other),
    ];
    mix(chaos, good, other.prop_map(Dep::Other))
}

fn task(chaos: bool) -> BoxedStrategy<GenTask> {
    let name = mix(
        chaos,
        select(NAMES).prop_map(str::to_string),
        prop_oneof![
            select(BAD_NAMES).prop_map(str::to_string),
            "[a-z{}:*é]{0,6}"
        ],
    );
    let deps = prop::option::weighted(0.7, prop::collection::vec(dep(chaos), 0..4));
    (
        name,
        matrix(chaos),
        deps,
        prop::collection::vec(field(chaos), 0..5),
        0..3usize,
        any::<bool>(),
    )
        .prop_map(|(name, matrix, deps, fields, file, section)| GenTask {
            name,
            matrix,
            deps,
            fields,
            file,
            section,
        })
        .boxed()
}

fn doc(chaos: bool) -> BoxedStrategy<GenDoc> {
    let version = mix(
        chaos,
        Just(Some(Val::Raw("1"))),
        prop::option::of(prop_oneof![select(RAW).prop_map(Val::Raw), any_val()]),
    );
    let include = mix(
        chaos,
        Just(Some(Val::Arr(vec![Val::Str("layers/*.toml".into())]))),
        prop::option::of(strings(
            true,
            &["layers/a.toml", "layers/*.toml", "**", "none/*"],
            &["layers/[", "!x", "../x", "/x", ""],
        )),
    );
    let field = |name: &'static str, v: BoxedStrategy<Val>| {
        v.prop_map(move |v| Setting::Field(name.to_string(), v))
    };
    let jobs = mix(chaos, select(&["1", "2"][..]).prop_map(Val::Raw), any_val());
    let settings_field = prop_oneof![
        3 => any::<Index>().prop_map(Setting::DefaultTask),
        1 => field("default", strs(&OTHER_DEPS[..3]).boxed()),
        1 => field("jobs", jobs),
        1 => field("shell", strings(chaos, &["bash", "-c", "sh"], &[""])),
        1 => field("dotenv", strings(chaos, GLOBS, BAD_GLOBS)),
    ];
    let typo = (select(FIELDS).prop_map(str::to_string), any_val())
        .prop_map(|(k, v)| Setting::Field(k, v));
    let settings_field = mix(chaos, settings_field, typo);
    let settings = prop::option::weighted(0.5, prop::collection::vec(settings_field, 0..3));
    let top_entry = mix(
        chaos,
        env_table(chaos).prop_map(|v| ("env".to_string(), v)),
        (
            select(
                &[
                    "setting", "Version", "task", "includes", "", "settings", "tasks",
                ][..],
            )
            .prop_map(str::to_string),
            any_val(),
        ),
    );
    // A clean document's names are distinct (matrix expansions may still collide).
    let tasks = if chaos {
        prop::collection::vec(task(true), 0..8).boxed()
    } else {
        let names = prop::sample::subsequence(NAMES, 0..=8).prop_shuffle();
        (names, prop::collection::vec(task(false), 8))
            .prop_map(|(names, tasks)| {
                names
                    .iter()
                    .zip(tasks)
                    .map(|(name, t)| GenTask {
                        name: name.to_string(),
                        ..t
                    })
                    .collect()
            })
            .boxed()
    };
    (
        version,
        include,
        settings,
        prop::collection::vec(top_entry, 0..2),
        tasks,
    )
        .prop_map(|(version, include, settings, top, tasks)| GenDoc {
            version,
            include,
            settings,
            top,
            tasks,
        })
        .boxed()
}

/// The distinct placeholder names of `text`, in order.
fn vars_of(text: &str) -> Vec<String> {
    let mut vars: Vec<String> = Vec::new();
    for p in devgraph::matrix::placeholders(text) {
        if !vars.iter().any(|v| v == p.var) {
            vars.push(p.var.to_string());
        }
    }
    vars
}

impl GenDoc {
    /// `name` as a dep of a task whose matrix has `mine`: itself when `mine` covers its
    /// placeholders, else with each placeholder as `*`.
    fn name_as_dep(name: &str, mine: &[String]) -> String {
        if vars_of(name).iter().all(|v| mine.contains(v)) {
            return name.to_string();
        }
        let mut out = name.to_string();
        for p in devgraph::matrix::placeholders(name).iter().rev() {
            out.replace_range(p.range.clone(), "*");
        }
        out
    }

    fn task_entries(&self, at: usize) -> Vec<(String, Val)> {
        let t = &self.tasks[at];
        let vars = vars_of(&t.name);
        let mut entries = Vec::new();
        let mine: Vec<String> = match &t.matrix {
            Matrix::Auto(lists) if !vars.is_empty() => {
                let table = vars
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), Val::Arr(lists[i % lists.len()].clone())))
                    .collect();
                entries.push(("matrix".to_string(), Val::Table(table)));
                vars
            }
            Matrix::Explicit(m) => {
                entries.push(("matrix".to_string(), m.clone()));
                match m {
                    Val::Table(t) => t.iter().map(|(k, _)| k.clone()).collect(),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        if let Some(deps) = &t.deps {
            let deps = deps
                .iter()
                .filter_map(|d| {
                    let name = match d {
                        Dep::Other(v) => return Some(v.clone()),
                        Dep::Task(i) => &self.tasks[i.index(self.tasks.len())].name,
                        Dep::Earlier(_) if at == 0 => return None,
                        Dep::Earlier(i) => &self.tasks[i.index(at)].name,
                    };
                    Some(Val::Str(Self::name_as_dep(name, &mine)))
                })
                .collect();
            entries.push(("deps".to_string(), Val::Arr(deps)));
        }
        entries.extend(t.fields.iter().cloned());
        entries
    }

    fn render(&self) -> Files {
        let mut texts = [String::new(), String::new(), String::new()];
        let root = &mut texts[0];
        if let Some(v) = &self.version {
            root.push_str(&format!("version = {}\n", v.render()));
        }
        if let Some(inc) = &self.include {
            root.push_str(&format!("include = {}\n", inc.render()));
        }
        let mut top = self.top.clone();
        if let Some(settings) = &self.settings {
            let settings = settings
                .iter()
                .map(|setting| match setting {
                    Setting::DefaultTask(i) => {
                        let name = match self.tasks.len() {
                            0 => "nothing".to_string(),
                            n => Self::name_as_dep(&self.tasks[i.index(n)].name, &[]),
                        };
                        ("default".to_string(), Val::Str(name))
                    }
                    Setting::Field(k, v) => (k.clone(), v.clone()),
                })
                .collect();
            top.push(("settings".to_string(), Val::Table(settings)));
        }
        for (k, v) in unique(&top) {
            root.push_str(&format!("{} = {}\n", key(k), v.render()));
        }
        // A name once per file (the same name in two files is the loader's to report).
        let mut seen = std::collections::HashSet::new();
        let tasks: Vec<(usize, &GenTask)> = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| seen.insert((t.file, t.name.as_str())))
            .collect();
        // Inline tasks first (they are plain keys of the root table), sections after.
        for &(at, t) in tasks.iter().filter(|(_, t)| !t.section) {
            let fields = Val::Table(self.task_entries(at)).render();
            texts[t.file].push_str(&format!("tasks.{} = {fields}\n", key(&t.name)));
        }
        for &(at, t) in tasks.iter().filter(|(_, t)| t.section) {
            let entries = self.task_entries(at);
            let text = &mut texts[t.file];
            text.push_str(&format!("\n[tasks.{}]\n", key(&t.name)));
            for (k, v) in unique(&entries) {
                text.push_str(&format!("{} = {}\n", key(k), v.render()));
            }
        }
        let [root, a, b] = texts;
        files(&[(ROOT, &root), ("layers/a.toml", &a), ("layers/b.toml", &b)])
    }
}

fn generated() -> impl Strategy<Value = Files> {
    prop_oneof![doc(false), doc(true)].prop_map(|d| d.render())
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn generated_documents_never_panic(files in generated()) {
        check(&files)?;
    }
}

/// Found by this fuzzer: 40 two-valued matrix variables asked for 2^40 tasks and the
/// loader ran out of memory. The size is now counted before anything is expanded.
#[test]
fn a_huge_matrix_is_refused_not_expanded() {
    let vars: Vec<String> = (0..40).map(|i| format!("v{i} = [\"a\", \"b\"]")).collect();
    let text = format!(
        "version = 1\n[tasks.t]\nrun = \"x\"\nmatrix = {{ {} }}\n",
        vars.join(", ")
    );
    let loaded = load_with(
        PathBuf::from("/nonexistent"),
        ROOT,
        &Memory(files(&[(ROOT, &text)])),
    );
    let codes: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter_map(|d| miette::Diagnostic::code(d).map(|c| c.to_string()))
        .collect();
    assert!(codes.contains(&"devgraph::matrix_too_large".to_string()));
    assert!(loaded.project.is_none());
}

/// Found by this fuzzer: "did you mean" over two 40,000-character names took a minute
/// (edit distance is quadratic). Suggestions are skipped for names that long.
#[test]
fn suggestions_for_huge_names_stay_cheap() {
    let (a, b) = ("a".repeat(40_000), "b".repeat(40_000));
    let text = format!("version = 1\n[tasks.{a}]\nrun = \"x\"\n[tasks.c]\ndeps = [\"{b}\"]\n");
    let loaded = load_with(
        PathBuf::from("/nonexistent"),
        ROOT,
        &Memory(files(&[(ROOT, &text)])),
    );
    assert_eq!(loaded.diagnostics.len(), 1);
    assert!(loaded.project.is_none());
}
