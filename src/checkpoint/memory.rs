//! Stores that keep nothing on disk.

use serde_json::Value;

use super::{CheckpointError, CheckpointStore};
use crate::engine::execution::Execution;
use crate::engine::history::HistoryEvent;

/// Keeps the latest checkpoint serialized, exactly as a file would hold it, and the whole
/// history: tests reload executions from it to prove that a checkpoint is all a resume needs.
#[derive(Default)]
pub struct MemoryStore {
    pub definition: Option<Value>,
    pub checkpoint: Option<String>,
    pub history: Vec<HistoryEvent>,
    pub commits: u64,
}

impl MemoryStore {
    /// The execution as the latest checkpoint holds it, rehydrated from the history as the
    /// file store does it.
    pub fn load(&self) -> Option<Execution> {
        let mut exec: Execution =
            serde_json::from_str(self.checkpoint.as_deref()?).expect("a checkpoint written by commit");
        exec.rehydrate(&self.history);
        Some(exec)
    }
}

impl CheckpointStore for MemoryStore {
    fn create(
        &mut self,
        definition: &Value,
        exec: &Execution,
        events: &[HistoryEvent],
    ) -> Result<(), CheckpointError> {
        self.definition = Some(definition.clone());
        self.commit(exec, events)
    }

    fn commit(&mut self, exec: &Execution, events: &[HistoryEvent]) -> Result<(), CheckpointError> {
        self.checkpoint = Some(serde_json::to_string(exec).expect("an execution serializes"));
        self.history.extend_from_slice(events);
        self.commits += 1;
        Ok(())
    }
}

/// Keeps nothing: `recflow run --no-checkpoint`, a dry run entirely in memory.
pub struct NullStore;

impl CheckpointStore for NullStore {
    fn create(&mut self, _: &Value, _: &Execution, _: &[HistoryEvent]) -> Result<(), CheckpointError> {
        Ok(())
    }

    fn commit(&mut self, _: &Execution, _: &[HistoryEvent]) -> Result<(), CheckpointError> {
        Ok(())
    }
}
