//! What decides a task's result, as one structured record: its fingerprint is the hash of
//! that record, and every explanation of drift is a diff of two records. Hash and
//! explanation come from the same data, so they cannot disagree (n2's hash/explain split).
//! See "Fingerprints" in docs/design.md.

use serde::{Deserialize, Serialize};

/// Bumped whenever the record's meaning changes: an old record then reads as "command
/// changed"-style drift rather than being misread.
pub const RECORD_VERSION: u32 = 1;

/// A blake3 hash.
pub type Hash = [u8; 32];

/// Hashes as hex strings in JSON, as bytes in the store: the same types serve both.
mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &super::Hash, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hash.iter().map(|b| format!("{b:02x}")).collect::<String>())
        } else {
            serde::Serialize::serialize(hash, s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<super::Hash, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            let bytes: Vec<u8> = (0..text.len())
                .step_by(2)
                .filter_map(|i| {
                    text.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect();
            bytes
                .try_into()
                .map_err(|_| serde::de::Error::custom("expected 64 hex digits"))
        } else {
            <super::Hash>::deserialize(d)
        }
    }
}

/// Everything that decides a task's result (SPEC §3, "in the fingerprint"). Lists are kept
/// sorted by name or path so the encoding is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// The `run` text; `None` for a group.
    pub command: Option<String>,
    pub env: Vec<EnvEntry>,
    pub inputs: Vec<FileEntry>,
    pub outputs: Vec<FileEntry>,
    pub probe: Option<ProbeState>,
    pub deps: Vec<DepEntry>,
}

/// One environment variable that enters the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvEntry {
    pub name: String,
    pub value: EnvValue,
}

/// An env value as it may be kept: in the clear (it is in the task files anyway), or only
/// as a keyed hash (a secret: `hash_env`, `dotenv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvValue {
    Plain(String),
    Hidden(#[serde(with = "hex_hash")] Hash),
    /// A `hash_env` variable that is not set.
    Unset,
}

/// An input or output file and the hash of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    #[serde(with = "hex_hash")]
    pub hash: Hash,
    /// The script named by the first word of `run` or `probe` (SPEC §3).
    pub implicit: bool,
}

/// What a probe reported. stdout enters the fingerprint by hash; a short preview is kept
/// for `why`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    Exited {
        status: i32,
        #[serde(with = "hex_hash")]
        stdout_hash: Hash,
        preview: String,
    },
    /// Never equal to anything: a timed-out probe always drifts its task.
    TimedOut { after_ms: u64 },
    /// The probe could not be started.
    Failed { message: String },
}

/// Whether a probe result drifts its task from the recorded one: it changed, or it timed
/// out (never equal to anything).
pub fn probe_drifted(old: &Option<ProbeState>, new: &Option<ProbeState>) -> bool {
    matches!(new, Some(ProbeState::TimedOut { .. })) || new != old
}

/// How many characters of probe output `why` keeps to show.
pub const PREVIEW_CHARS: usize = 200;

impl ProbeState {
    /// The state of a probe that exited with `status`, printing `stdout`.
    pub fn exited(status: i32, stdout: &str) -> Self {
        ProbeState::Exited {
            status,
            stdout_hash: *blake3::hash(stdout.as_bytes()).as_bytes(),
            preview: shorten(stdout, PREVIEW_CHARS),
        }
    }
}

/// A dep and the identity of what it produced (SPEC §4, output identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepEntry {
    pub name: String,
    #[serde(with = "hex_hash")]
    pub identity: Hash,
}

impl Record {
    /// The fingerprint: blake3 over the record's canonical encoding.
    pub fn fingerprint(&self) -> Hash {
        *blake3::hash(&encode(self)).as_bytes()
    }

    /// What dependents see (SPEC §4): the hash of the outputs and the probe result when the
    /// task declares either, otherwise its fingerprint. A task that re-runs and produces
    /// the same outputs and probe result leaves its dependents alone (early cutoff).
    pub fn identity(&self, declares_outputs_or_probe: bool) -> Hash {
        if !declares_outputs_or_probe {
            return self.fingerprint();
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"devgraph identity v1\0");
        hasher.update(&encode(&(&self.outputs, &self.probe)));
        *hasher.finalize().as_bytes()
    }

    /// Encodes for the state store.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes from the state store; `None` when the bytes are not a record of this version.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes::<Record>(bytes)
            .ok()
            .filter(|r| r.version == RECORD_VERSION)
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_else(|e| unreachable!("BUG: encoding a record: {e}"))
}

/// One difference between the record of the last success and the current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Command {
        old: Option<String>,
        new: Option<String>,
    },
    Env {
        name: String,
        /// `None`: not set before / not set now.
        old: Option<EnvValue>,
        new: Option<EnvValue>,
    },
    InputAdded {
        path: String,
        implicit: bool,
    },
    InputRemoved {
        path: String,
        implicit: bool,
    },
    InputChanged {
        path: String,
        implicit: bool,
        #[serde(skip)]
        old: Hash,
        #[serde(skip)]
        new: Hash,
    },
    OutputMissing {
        path: String,
    },
    OutputChanged {
        path: String,
    },
    OutputAdded {
        path: String,
    },
    Probe {
        old: Option<ProbeState>,
        new: Option<ProbeState>,
    },
    ProbeTimedOut {
        after_ms: u64,
    },
    Dep {
        name: String,
    },
}

impl Change {
    /// The kind of drift, as `DEVGRAPH_DRIFT` names it (SPEC §6).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Command { .. } => "command",
            Change::Env { .. } => "env",
            Change::InputAdded { .. }
            | Change::InputRemoved { .. }
            | Change::InputChanged { .. } => "inputs",
            Change::OutputMissing { .. }
            | Change::OutputChanged { .. }
            | Change::OutputAdded { .. } => "outputs",
            Change::Probe { .. } | Change::ProbeTimedOut { .. } => "probe",
            Change::Dep { .. } => "deps",
        }
    }
}

/// Every difference between `old` (the last success) and `new` (now), in record order.
/// Empty exactly when the fingerprints are equal, except that a timed-out probe is always a
/// change.
pub fn diff(old: &Record, new: &Record) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.command != new.command {
        changes.push(Change::Command {
            old: old.command.clone(),
            new: new.command.clone(),
        });
    }
    merge(
        &old.env,
        &new.env,
        |e| &e.name,
        |o, n| {
            let (a, b) = (o.map(|e| &e.value), n.map(|e| &e.value));
            if a != b {
                let name = o.or(n).map(|e| e.name.clone()).unwrap_or_default();
                changes.push(Change::Env {
                    name,
                    old: a.cloned(),
                    new: b.cloned(),
                });
            }
        },
    );
    merge(
        &old.inputs,
        &new.inputs,
        |f| &f.path,
        |o, n| match (o, n) {
            (None, Some(n)) => changes.push(Change::InputAdded {
                path: n.path.clone(),
                implicit: n.implicit,
            }),
            (Some(o), None) => changes.push(Change::InputRemoved {
                path: o.path.clone(),
                implicit: o.implicit,
            }),
            (Some(o), Some(n)) if o.hash != n.hash => changes.push(Change::InputChanged {
                path: n.path.clone(),
                implicit: n.implicit,
                old: o.hash,
                new: n.hash,
            }),
            _ => {}
        },
    );
    merge(
        &old.outputs,
        &new.outputs,
        |f| &f.path,
        |o, n| match (o, n) {
            (None, Some(n)) => changes.push(Change::OutputAdded {
                path: n.path.clone(),
            }),
            (Some(o), None) => changes.push(Change::OutputMissing {
                path: o.path.clone(),
            }),
            (Some(o), Some(n)) if o.hash != n.hash => changes.push(Change::OutputChanged {
                path: n.path.clone(),
            }),
            _ => {}
        },
    );
    match &new.probe {
        Some(ProbeState::TimedOut { after_ms }) => changes.push(Change::ProbeTimedOut {
            after_ms: *after_ms,
        }),
        probe if probe_drifted(&old.probe, probe) => changes.push(Change::Probe {
            old: old.probe.clone(),
            new: new.probe.clone(),
        }),
        _ => {}
    }
    merge(
        &old.deps,
        &new.deps,
        |d| &d.name,
        |o, n| {
            if o.map(|d| d.identity) != n.map(|d| d.identity) {
                let name = o.or(n).map(|d| d.name.clone()).unwrap_or_default();
                changes.push(Change::Dep { name });
            }
        },
    );
    changes
}

/// Walks two lists sorted by `key`, calling `f` with the entries of each key.
fn merge<'a, T, K: Ord + ?Sized>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&T) -> &K,
    mut f: impl FnMut(Option<&'a T>, Option<&'a T>),
) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) => match key(o).cmp(key(n)) {
                std::cmp::Ordering::Less => {
                    f(Some(o), None);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    f(None, Some(n));
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    f(Some(o), Some(n));
                    i += 1;
                    j += 1;
                }
            },
            (Some(o), None) => {
                f(Some(o), None);
                i += 1;
            }
            (None, Some(n)) => {
                f(None, Some(n));
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A short hex form of a hash, for messages.
pub fn short_hex(hash: &Hash) -> String {
    hash[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, byte: u8) -> FileEntry {
        FileEntry {
            path: path.into(),
            hash: [byte; 32],
            implicit: false,
        }
    }

    fn record() -> Record {
        Record {
            version: RECORD_VERSION,
            command: Some("make".into()),
            env: vec![EnvEntry {
                name: "A".into(),
                value: EnvValue::Plain("1".into()),
            }],
            inputs: vec![file("a.txt", 1), file("b.txt", 2)],
            outputs: vec![file("out.bin", 3)],
            probe: Some(ProbeState::exited(0, "id-1")),
            deps: vec![DepEntry {
                name: "registry".into(),
                identity: [9; 32],
            }],
        }
    }

    #[test]
    fn equal_records_have_equal_fingerprints_and_no_changes() {
        assert_eq!(record().fingerprint(), record().fingerprint());
        assert!(diff(&record(), &record()).is_empty());
    }

    #[test]
    fn every_component_is_a_named_change() {
        let old = record();
        let mut new = record();
        new.command = Some("make all".into());
        new.env[0].value = EnvValue::Hidden([7; 32]);
        new.inputs = vec![file("b.txt", 5), file("c.txt", 1)];
        new.outputs.clear();
        new.probe = Some(ProbeState::exited(1, "gone"));
        new.deps[0].identity = [8; 32];
        assert_ne!(old.fingerprint(), new.fingerprint());
        let kinds: Vec<&str> = diff(&old, &new).iter().map(Change::kind).collect();
        assert_eq!(
            kinds,
            [
                "command", "env", "inputs", "inputs", "inputs", "outputs", "probe", "deps"
            ]
        );
        let changes = diff(&old, &new);
        assert_eq!(
            changes[2],
            Change::InputRemoved {
                path: "a.txt".into(),
                implicit: false
            }
        );
        assert_eq!(
            changes[4],
            Change::InputAdded {
                path: "c.txt".into(),
                implicit: false
            }
        );
        assert_eq!(
            changes[5],
            Change::OutputMissing {
                path: "out.bin".into()
            }
        );
    }

    #[test]
    fn a_timed_out_probe_always_drifts() {
        let mut old = record();
        old.probe = Some(ProbeState::TimedOut { after_ms: 10 });
        let new = old.clone();
        assert_eq!(
            diff(&old, &new),
            vec![Change::ProbeTimedOut { after_ms: 10 }]
        );
    }

    #[test]
    fn identity_ignores_inputs_when_outputs_or_probe_are_declared() {
        let old = record();
        let mut rebuilt = record();
        rebuilt.inputs[0].hash = [42; 32];
        rebuilt.command = Some("make -j8".into());
        assert_eq!(old.identity(true), rebuilt.identity(true), "early cutoff");
        assert_ne!(old.identity(false), rebuilt.identity(false));
        assert_eq!(old.identity(false), old.fingerprint());
    }

    #[test]
    fn records_round_trip_through_bytes() {
        let r = record();
        assert_eq!(Record::from_bytes(&r.to_bytes()), Some(r));
        assert_eq!(Record::from_bytes(b"garbage"), None);
    }

    #[test]
    fn shortens_on_character_boundaries() {
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hi", 5), "hi");
    }
}
