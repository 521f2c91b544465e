//! devgraph: a declarative, content-hashed DAG task engine for development environments.
//! Start with docs/design.md for the model and the module map.

pub mod cli;
pub mod digest;
pub mod duration;
pub mod error;
pub mod fingerprint;
pub mod graph;
pub mod load;
pub mod lock;
pub mod log;
pub mod manifest;
pub mod matrix;
pub mod names;
pub mod pattern;
pub mod plan;
pub mod preflight;
pub mod probe;
pub mod process;
pub mod report;
pub mod runner;
pub mod secret;
pub mod state;
pub mod suggest;
pub mod watch;
pub mod work;
