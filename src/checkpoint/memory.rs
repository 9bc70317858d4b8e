//! Stores that keep nothing on disk.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::CheckpointError;
use crate::engine::execution::Execution;
use crate::engine::history::HistoryEvent;
use crate::engine::store::{ExecutionStore, Precondition, Stored, Version};

/// Keeps each execution's latest checkpoint serialized, exactly as a file would hold it, and its
/// whole history; checks preconditions as every store must. Tests reload executions from it to
/// prove that a checkpoint (with its history) is all a resume needs.
#[derive(Default)]
pub struct MemoryStore {
    executions: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone)]
struct Entry {
    definition: Value,
    checkpoint: String,
    history: Vec<HistoryEvent>,
    version: u64,
    start: chrono::DateTime<chrono::Utc>,
}

impl MemoryStore {
    /// The latest checkpoint of `name`, as JSON text.
    pub fn checkpoint(&self, name: &str) -> Option<String> {
        self.entry(name).map(|e| e.checkpoint)
    }

    /// The whole history of `name`.
    pub fn history_of(&self, name: &str) -> Vec<HistoryEvent> {
        self.entry(name).map(|e| e.history).unwrap_or_default()
    }

    /// Commits made to `name` so far.
    pub fn commits(&self, name: &str) -> u64 {
        self.entry(name).map_or(0, |e| e.version)
    }

    fn entry(&self, name: &str) -> Option<Entry> {
        self.executions.lock().expect("memory store lock").get(name).cloned()
    }

    fn stored(&self, name: &str) -> Result<Stored, CheckpointError> {
        let entry = self
            .entry(name)
            .ok_or_else(|| CheckpointError::NotFound { name: name.into(), dir: "memory".into() })?;
        let mut execution: Execution =
            serde_json::from_str(&entry.checkpoint).expect("a checkpoint written by commit");
        execution.rehydrate(&entry.history);
        Ok(Stored { definition: entry.definition, execution, version: Version(entry.version.to_string()) })
    }
}

#[async_trait::async_trait]
impl ExecutionStore for MemoryStore {
    async fn commit(
        &self,
        execution: &Execution,
        events: &[HistoryEvent],
        definition: Option<&Value>,
        precondition: Precondition,
    ) -> Result<Version, CheckpointError> {
        let mut all = self.executions.lock().expect("memory store lock");
        let name = execution.name.clone();
        let checkpoint = serde_json::to_string(execution).expect("an execution serializes");
        let entry = match (all.get_mut(&name), precondition) {
            (None, Precondition::DoesNotExist) => all.entry(name.clone()).or_insert(Entry {
                definition: definition.cloned().unwrap_or(Value::Null),
                checkpoint: String::new(),
                history: Vec::new(),
                version: 0,
                start: execution.start_time,
            }),
            (Some(_), Precondition::DoesNotExist) => {
                return Err(CheckpointError::Exists { name, dir: "memory".into() });
            }
            (Some(entry), Precondition::Matches(Version(v))) if v == entry.version.to_string() => entry,
            (found, Precondition::Matches(Version(expected))) => {
                let found = found.map_or("none".to_string(), |e| e.version.to_string());
                return Err(CheckpointError::Conflict { name, expected, found });
            }
        };
        entry.history.extend_from_slice(events);
        entry.checkpoint = checkpoint;
        entry.version += 1;
        Ok(Version(entry.version.to_string()))
    }

    async fn load(&self, name: &str) -> Result<Stored, CheckpointError> {
        self.stored(name)
    }

    async fn read(&self, name: &str) -> Result<Stored, CheckpointError> {
        self.stored(name)
    }

    async fn list(&self) -> Result<Vec<Result<Execution, CheckpointError>>, CheckpointError> {
        let mut names: Vec<(chrono::DateTime<chrono::Utc>, String)> = {
            let all = self.executions.lock().expect("memory store lock");
            all.iter().map(|(n, e)| (e.start, n.clone())).collect()
        };
        names.sort();
        Ok(names.into_iter().map(|(_, n)| self.stored(&n).map(|s| s.execution)).collect())
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, CheckpointError> {
        self.entry(name)
            .map(|e| e.history)
            .ok_or_else(|| CheckpointError::NotFound { name: name.into(), dir: "memory".into() })
    }
}

/// Keeps nothing: `recflow run --no-checkpoint`, a dry run entirely in memory.
pub struct NullStore;

#[async_trait::async_trait]
impl ExecutionStore for NullStore {
    async fn commit(
        &self,
        _: &Execution,
        _: &[HistoryEvent],
        _: Option<&Value>,
        precondition: Precondition,
    ) -> Result<Version, CheckpointError> {
        // Versions still move on, so the driver's expectations hold.
        let next = match precondition {
            Precondition::DoesNotExist => 1,
            Precondition::Matches(Version(v)) => v.parse::<u64>().unwrap_or(0) + 1,
        };
        Ok(Version(next.to_string()))
    }

    async fn load(&self, name: &str) -> Result<Stored, CheckpointError> {
        Err(CheckpointError::NotFound { name: name.into(), dir: "--no-checkpoint".into() })
    }

    async fn read(&self, name: &str) -> Result<Stored, CheckpointError> {
        self.load(name).await
    }

    async fn list(&self) -> Result<Vec<Result<Execution, CheckpointError>>, CheckpointError> {
        Ok(Vec::new())
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, CheckpointError> {
        Err(CheckpointError::NotFound { name: name.into(), dir: "--no-checkpoint".into() })
    }
}
