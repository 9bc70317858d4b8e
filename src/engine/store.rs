//! Where executions are kept between transitions: the engine's side of the checkpoint, an async
//! store of versioned executions in the style of a metadata store. Every commit names the
//! version it expects to replace (or that the execution must not exist yet); a store answers a
//! stale expectation with [`CheckpointError::Conflict`], so two processes can never both advance
//! one execution, whatever the store (files with flock, S3 with conditional writes, memory).

use std::path::PathBuf;

use serde_json::Value;

use super::execution::Execution;
use super::history::HistoryEvent;

/// The version of a stored execution: opaque to the engine (a commit counter for files and
/// memory, an ETag for S3). Each commit gives the next one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

/// What a commit expects of the stored execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// A new execution: no execution of that name may exist.
    DoesNotExist,
    /// The stored execution is still at this version (nobody else advanced it).
    Matches(Version),
}

/// An execution as a store holds it: its definition, the execution rehydrated from its history
/// ([`Execution::rehydrate`]), and its version.
#[derive(Debug, Clone)]
pub struct Stored {
    pub definition: Value,
    pub execution: Execution,
    pub version: Version,
}

/// A store of executions. Implementations: `checkpoint::MemoryStore` (tests; it checks
/// preconditions like the others), `checkpoint::FileStore` (one folder per execution; blocking
/// file work on tokio's blocking pool), `checkpoint::S3Store` (conditional writes).
#[async_trait::async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Records one transition: `events` (appended to the history), then `execution` as it now
    /// stands, if the stored execution is as `precondition` says; a new execution
    /// ([`Precondition::DoesNotExist`]) also records its `definition`. Gives the new version.
    /// Errors: `Conflict` (someone else advanced or created it), `Exists`, `Locked`, I/O.
    async fn commit(
        &self,
        execution: &Execution,
        events: &[HistoryEvent],
        definition: Option<&Value>,
        precondition: Precondition,
    ) -> Result<Version, CheckpointError>;

    /// Opens an execution to advance it: its definition, state and version, with the right to
    /// commit (a file store takes the execution's lock; another process holding it is `Locked`).
    async fn load(&self, name: &str) -> Result<Stored, CheckpointError>;

    /// Reads an execution without claiming it (`status`).
    async fn read(&self, name: &str) -> Result<Stored, CheckpointError>;

    /// Every execution, oldest first; an unreadable one is reported in place, not skipped.
    async fn list(&self) -> Result<Vec<Result<Execution, CheckpointError>>, CheckpointError>;

    /// An execution's history up to its last commit.
    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, CheckpointError>;

    /// Gives up this process's claim on an execution it loaded or created, so that the next
    /// process may take it at once (the S3 store's lease; the file store's lock, closed) and a
    /// long-lived process keeps nothing of it. A store without claims does nothing.
    async fn release(&self, _name: &str) -> Result<(), CheckpointError> {
        Ok(())
    }
}

/// What can go wrong keeping executions. `dir`/`path` name the place (a folder, a file or an
/// `s3://` URL).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("execution '{name}' is being advanced by another recflow process{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { name: String, pid: Option<u32> },
    #[error(
        "execution '{name}' was advanced by another recflow process (expected version {expected}, found {found}); this process stopped without acting on it"
    )]
    Conflict { name: String, expected: String, found: String },
    #[error("{path}: corrupt checkpoint, left untouched: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: checkpoint format {found} is not one this recflow reads (it reads formats 1, 2 and 3); left untouched: finish it with the recflow version that started it"
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
    #[error("{place}: {message}")]
    Remote { place: String, message: String },
}

impl CheckpointError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CheckpointError {
        let path = path.into();
        move |source| CheckpointError::Io { path, source }
    }
}
