//! The integration tests: the real `devgraph` binary run in temp dirs, output compared
//! exactly. One binary (fast to link), a module per feature.

mod commands;
mod crash;
mod diagnostics;
mod drift;
mod exec;
mod fuzz;
mod reference;
mod support;
mod watch;
mod why;
