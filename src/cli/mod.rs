//! The commands, one file each. `main.rs` parses arguments into these option structs and calls
//! the matching function; each returns the process exit code.

pub mod args;
pub mod daemon;
pub mod export;
pub mod graph;
pub mod history;
pub mod iam_policy;
pub mod integrations;
pub mod local;
mod progress;
pub mod resume;
pub mod run;
pub mod schedule;
mod signals;
pub mod status;
mod summary;
pub mod validate;

mod common;
pub mod config;

pub use common::{ExitCode, OutputFormat};
