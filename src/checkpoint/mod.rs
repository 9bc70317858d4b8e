//! Durable checkpoints: the stores that keep executions between transitions, behind the
//! engine's [`ExecutionStore`] trait. The file store does it atomically on disk; the memory store
//! keeps it for tests; the null store keeps nothing (`--no-checkpoint`).

mod commit_log;
mod file;
mod memory;
mod s3;

pub use crate::atomic_file::{Durability, write_atomic};
pub use crate::engine::store::{CheckpointError, ExecutionStore, Precondition, Stored, Version};
pub use file::FileStore;
pub use memory::{MemoryStore, NullStore};
pub use s3::S3Store;

/// The checkpoint document's format version written. Format 2 added child frames (Parallel
/// branches, Map iterations), the Map state's phase and the document's `version`; format 3 the
/// workflow variables (`variables`, in the execution and in each frame). An older document is a
/// newer one without them, so it loads as it is (tests/data/checkpoints/format1 proves it); an
/// older recflow refuses a format-3 document instead of dropping its variables unseen.
pub const FORMAT: u32 = 3;

/// The formats read; a file with any other is refused, untouched.
pub const READS: [u64; 3] = [1, 2, 3];
