//! Control-plane state: every resource as a record, persisted as one JSON file written atomically
//! (temp file + rename) after each change, so a restarted server sees exactly what was answered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::PersonalizeError;
use super::lifecycle::Lifecycle;

/// The resource families, with the JSON names the service model uses for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    DatasetGroup,
    Schema,
    Dataset,
    Solution,
    DatasetImportJob,
    SolutionVersion,
    BatchInferenceJob,
    BatchSegmentJob,
    Campaign,
    Filter,
}

impl Kind {
    /// The member holding the ARN, e.g. `datasetGroupArn`.
    pub fn arn_key(self) -> &'static str {
        match self {
            Kind::DatasetGroup => "datasetGroupArn",
            Kind::Schema => "schemaArn",
            Kind::Dataset => "datasetArn",
            Kind::Solution => "solutionArn",
            Kind::DatasetImportJob => "datasetImportJobArn",
            Kind::SolutionVersion => "solutionVersionArn",
            Kind::BatchInferenceJob => "batchInferenceJobArn",
            Kind::BatchSegmentJob => "batchSegmentJobArn",
            Kind::Campaign => "campaignArn",
            Kind::Filter => "filterArn",
        }
    }

    /// The member holding the name: jobs are named by `jobName`, everything else by `name`.
    pub fn name_key(self) -> &'static str {
        match self {
            Kind::DatasetImportJob | Kind::BatchInferenceJob | Kind::BatchSegmentJob => "jobName",
            _ => "name",
        }
    }

    /// The ARN resource type, e.g. `dataset-group`.
    pub fn arn_type(self) -> &'static str {
        match self {
            Kind::DatasetGroup => "dataset-group",
            Kind::Schema => "schema",
            Kind::Dataset => "dataset",
            Kind::Solution | Kind::SolutionVersion => "solution",
            Kind::DatasetImportJob => "dataset-import-job",
            Kind::BatchInferenceJob => "batch-inference-job",
            Kind::BatchSegmentJob => "batch-segment-job",
            Kind::Campaign => "campaign",
            Kind::Filter => "filter",
        }
    }
}

/// One resource. `fields` holds the model members echoed by Describe (request values and
/// defaults); status and timestamps are derived from `life` at read time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub kind: Kind,
    pub arn: String,
    pub name: String,
    pub seq: u64,
    pub created: f64,
    pub fields: Map<String, Value>,
    pub life: Option<Lifecycle>,
    /// A campaign's or solution's pending or applied update (`latestCampaignUpdate`,
    /// `latestSolutionUpdate`).
    #[serde(default)]
    pub update: Option<CampaignUpdate>,
    /// A solution's automatic-training schedule.
    #[serde(default)]
    pub auto: Option<super::auto_training::Schedule>,
    /// Set by a Delete*: the record shows DELETE PENDING, then DELETE IN_PROGRESS, and is gone
    /// (with what the deletion takes along) from `until` on.
    #[serde(default)]
    pub deletion: Option<Deletion>,
}

/// The epoch seconds of a deletion's phases.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Deletion {
    pub requested: f64,
    pub pending_until: f64,
    pub until: f64,
}

impl Record {
    pub fn field_str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignUpdate {
    pub fields: Map<String, Value>,
    pub life: Lifecycle,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub next_seq: u64,
    pub records: BTreeMap<String, Record>,
}

impl State {
    pub fn get(&self, arn: &str) -> Option<&Record> {
        self.records.get(arn)
    }

    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Record> {
        self.records.values().filter(move |r| r.kind == kind)
    }

    /// Removes the records whose deletion has ended, and what each takes along: a solution its
    /// versions, a dataset its import jobs. True if anything was removed.
    pub fn purge_deleted(&mut self, now: f64) -> bool {
        let gone: Vec<(Kind, String)> = self
            .records
            .values()
            .filter(|r| r.deletion.is_some_and(|d| now >= d.until))
            .map(|r| (r.kind, r.arn.clone()))
            .collect();
        for (kind, arn) in &gone {
            let parent_key = match kind {
                Kind::Solution => Some(("solutionArn", Kind::SolutionVersion)),
                Kind::Dataset => Some(("datasetArn", Kind::DatasetImportJob)),
                _ => None,
            };
            if let Some((key, child)) = parent_key {
                self.records.retain(|_, r| !(r.kind == child && r.field_str(key) == Some(arn.as_str())));
            }
            self.records.remove(arn);
        }
        !gone.is_empty()
    }

    pub fn insert(&mut self, mut record: Record) {
        record.seq = self.next_seq;
        self.next_seq += 1;
        self.records.insert(record.arn.clone(), record);
    }
}

pub struct Store {
    path: PathBuf,
    state: Mutex<State>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, PersonalizeError> {
        let path = dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| PersonalizeError::CorruptState { path: path.clone(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => return Err(PersonalizeError::Io { path, source }),
        };
        Ok(Store { path, state: Mutex::new(state) })
    }

    /// The state lock, with finished deletions removed first. A panic while holding it cannot
    /// leave a half-applied change on disk (writes are atomic), so a poisoned lock is taken over
    /// rather than propagated.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.purge_deleted(super::lifecycle::now())
            && let Err(e) = self.persist(&state)
        {
            // The removal is redone from the deletion's time after a restart.
            tracing::warn!(error = %e, "cannot persist the removal of deleted personalize resources");
        }
        state
    }

    /// Writes the state atomically; call with the lock held so writes follow changes in order.
    pub fn persist(&self, state: &State) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(state)?;
        write_atomically(&self.path, &bytes)
    }
}

/// Replaces `path` with `bytes`, durably (see `crate::atomic_file`).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::atomic_file::write_atomic(path, bytes, crate::atomic_file::Durability::Fsync)
}
