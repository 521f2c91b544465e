//! devgraph: a declarative, content-hashed DAG task engine for development environments.
//! Start with docs/design.md for the model and the module map.

pub mod cli;
pub mod duration;
pub mod error;
pub mod graph;
pub mod load;
pub mod manifest;
pub mod matrix;
pub mod names;
pub mod pattern;
pub mod report;
pub mod suggest;
