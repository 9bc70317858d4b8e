//! Durable checkpoints. A store records an execution after every transition; the file store
//! does it atomically on disk, the memory store keeps it for tests and `--no-checkpoint`.

mod file;
mod memory;

use std::path::PathBuf;

use serde_json::Value;

use crate::engine::execution::Execution;
use crate::engine::history::HistoryEvent;

pub use file::{Durability, FileStore, Loaded};
pub use memory::{MemoryStore, NullStore};

/// The checkpoint document's format version written. Format 2 added child frames (Parallel
/// branches, Map iterations) and the Map state's phase; a format-1 document is a format-2 one
/// without them, so it loads as it is (tests/data/checkpoints/format1 proves it).
pub const FORMAT: u32 = 2;

/// The formats read; a file with any other is refused, untouched.
pub const READS: [u64; 2] = [1, 2];

pub trait CheckpointStore: Send {
    /// Records a new execution with its definition and first events.
    fn create(
        &mut self,
        definition: &Value,
        exec: &Execution,
        events: &[HistoryEvent],
    ) -> Result<(), CheckpointError>;
    /// Records one transition: its history events, then the execution as it now stands.
    fn commit(&mut self, exec: &Execution, events: &[HistoryEvent]) -> Result<(), CheckpointError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("execution '{name}' is being advanced by another recflow process{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { name: String, pid: Option<u32> },
    #[error("{path}: corrupt checkpoint, left untouched: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: checkpoint format {found} is not one this recflow reads (it reads formats 1 and {FORMAT}); left untouched: finish it with the recflow version that started it"
    )]
    UnknownFormat { path: PathBuf, found: String },
    #[error("an execution named '{name}' already exists in {dir}")]
    Exists { name: String, dir: PathBuf },
    #[error(
        "execution '{name}' could not be checkpointed and stopped; `recflow resume {name}` continues it from its last checkpoint"
    )]
    Unrecorded { name: String },
    #[error("no execution named '{name}' in {dir}")]
    NotFound { name: String, dir: PathBuf },
}

impl CheckpointError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CheckpointError {
        let path = path.into();
        move |source| CheckpointError::Io { path, source }
    }
}
