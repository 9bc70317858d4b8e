//! What every resource family shares: the Describe view, summaries, List pagination, and the
//! checks and bookkeeping of a Create.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::Shared;
use super::lifecycle::{self, Lifecycle, Status};
use super::protocol::{ApiError, Input};
use super::store::{Kind, Record, State};

/// Epoch seconds as the JSON number the model's timestamps are, to the millisecond.
pub fn timestamp(t: f64) -> Value {
    json!((t * 1000.0).round() / 1000.0)
}

/// The record's status now; resources without a lifecycle (schemas) have none. A deletion
/// overrides the lifecycle: DELETE PENDING, then DELETE IN_PROGRESS (a dataset group has only
/// DELETE PENDING, as its Status documentation lists).
pub fn status(record: &Record, now: f64) -> Option<Status> {
    if let Some(deletion) = record.deletion
        && record.life.is_some()
    {
        let pending = now < deletion.pending_until || record.kind == Kind::DatasetGroup;
        let (name, updated) = if pending {
            (lifecycle::DELETE_PENDING, deletion.requested)
        } else {
            (lifecycle::DELETE_IN_PROGRESS, deletion.pending_until)
        };
        return Some(Status { name, updated, failure: None });
    }
    record.life.as_ref().map(|life| life.status(now))
}

/// The full Describe object of a record.
pub fn view(state: &State, record: &Record, now: f64) -> Map<String, Value> {
    let mut out = Map::new();
    // Solution versions may be unnamed; they then have no name member.
    if !record.name.is_empty() {
        out.insert(record.kind.name_key().into(), json!(record.name));
    }
    out.insert(record.kind.arn_key().into(), json!(record.arn));
    for (key, value) in &record.fields {
        out.insert(key.clone(), value.clone());
    }
    if let Some(update) = &record.update
        && update.life.status(now).name == lifecycle::ACTIVE
    {
        // A finished campaign update is the campaign's configuration from then on.
        for (key, value) in &update.fields {
            out.insert(key.clone(), value.clone());
        }
    }
    match status(record, now) {
        Some(status) => {
            out.insert("status".into(), json!(status.name));
            if let Some(reason) = status.failure {
                out.insert("failureReason".into(), json!(reason));
            }
            out.insert("creationDateTime".into(), timestamp(record.created));
            out.insert("lastUpdatedDateTime".into(), timestamp(status.updated));
        }
        None => {
            out.insert("creationDateTime".into(), timestamp(record.created));
            out.insert("lastUpdatedDateTime".into(), timestamp(record.created));
        }
    }
    match record.kind {
        Kind::Solution => {
            if let Some(update) = &record.update {
                out.insert(
                    "latestSolutionUpdate".into(),
                    Value::Object(super::auto_training::latest_update(update, now)),
                );
            }
            let latest = state
                .of_kind(Kind::SolutionVersion)
                .filter(|v| v.field_str("solutionArn") == Some(record.arn.as_str()))
                .max_by_key(|v| v.seq);
            if let Some(version) = latest {
                let full = view(state, version, now);
                out.insert(
                    "latestSolutionVersion".into(),
                    Value::Object(summary(Kind::SolutionVersion, &full)),
                );
            }
        }
        Kind::Campaign => {
            if let Some(update) = &record.update {
                let mut latest = update.fields.clone();
                let status = update.life.status(now);
                latest.insert("status".into(), json!(status.name));
                if let Some(reason) = status.failure {
                    latest.insert("failureReason".into(), json!(reason));
                }
                latest.insert("creationDateTime".into(), timestamp(update.life.created));
                latest.insert("lastUpdatedDateTime".into(), timestamp(status.updated));
                out.insert("latestCampaignUpdate".into(), Value::Object(latest));
            }
        }
        _ => {}
    }
    out
}

/// The members of each family's summary shape (e.g. DatasetGroupSummary).
fn summary_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::DatasetGroup => &[
            "name",
            "datasetGroupArn",
            "status",
            "creationDateTime",
            "lastUpdatedDateTime",
            "failureReason",
            "domain",
        ],
        Kind::Schema => &["name", "schemaArn", "creationDateTime", "lastUpdatedDateTime", "domain"],
        Kind::Dataset => {
            &["name", "datasetArn", "datasetType", "status", "creationDateTime", "lastUpdatedDateTime"]
        }
        Kind::Solution => {
            &["name", "solutionArn", "status", "creationDateTime", "lastUpdatedDateTime", "recipeArn"]
        }
        Kind::DatasetImportJob => &[
            "datasetImportJobArn",
            "jobName",
            "status",
            "creationDateTime",
            "lastUpdatedDateTime",
            "failureReason",
            "importMode",
        ],
        Kind::SolutionVersion => &[
            "solutionVersionArn",
            "status",
            "trainingMode",
            "trainingType",
            "creationDateTime",
            "lastUpdatedDateTime",
            "failureReason",
        ],
        Kind::BatchInferenceJob => &[
            "batchInferenceJobArn",
            "jobName",
            "status",
            "creationDateTime",
            "lastUpdatedDateTime",
            "failureReason",
            "solutionVersionArn",
            "batchInferenceJobMode",
        ],
        Kind::BatchSegmentJob => &[
            "batchSegmentJobArn",
            "jobName",
            "status",
            "creationDateTime",
            "lastUpdatedDateTime",
            "failureReason",
            "solutionVersionArn",
        ],
        Kind::Campaign => {
            &["name", "campaignArn", "status", "creationDateTime", "lastUpdatedDateTime", "failureReason"]
        }
        Kind::Filter => &[
            "name",
            "filterArn",
            "creationDateTime",
            "lastUpdatedDateTime",
            "datasetGroupArn",
            "failureReason",
            "status",
        ],
    }
}

pub fn summary(kind: Kind, full: &Map<String, Value>) -> Map<String, Value> {
    summary_keys(kind)
        .iter()
        .filter_map(|key| full.get(*key).map(|v| ((*key).to_string(), v.clone())))
        .collect()
}

/// `Describe<Kind>`: `{"<wrapper>": view}`.
pub fn describe(shared: &Shared, input: &Input, kind: Kind, wrapper: &str) -> Result<Value, ApiError> {
    let arn = input.req_arn(kind.arn_key())?;
    let state = shared.store.lock();
    let record = state.get(arn).filter(|r| r.kind == kind).ok_or_else(|| ApiError::not_found(arn))?;
    Ok(json!({ wrapper: view(&state, record, lifecycle::now()) }))
}

/// `List<Kinds>`, optionally filtered on a parent ARN member (e.g. `datasetGroupArn`).
pub fn list(
    shared: &Shared,
    input: &Input,
    kind: Kind,
    list_key: &str,
    filter_key: Option<&str>,
) -> Result<Value, ApiError> {
    let filter = match filter_key {
        Some(key) => input.opt_arn(key)?.map(|value| (key, value)),
        None => None,
    };
    list_where(shared, input, kind, list_key, |_, record| {
        filter.is_none_or(|(key, value)| record.field_str(key) == Some(value))
    })
}

/// `List<Kinds>`: summaries of the records `keep` accepts, newest first, paged by `maxResults`
/// (1-100, default 100) and an opaque `nextToken`.
pub fn list_where(
    shared: &Shared,
    input: &Input,
    kind: Kind,
    list_key: &str,
    keep: impl Fn(&State, &Record) -> bool,
) -> Result<Value, ApiError> {
    let max = input.opt_i64("maxResults")?.unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(ApiError::invalid_input(format!(
            "1 validation error detected: Value '{max}' at 'maxResults' failed to satisfy constraint: \
             Member must have value between 1 and 100"
        )));
    }
    let start = match input.opt_str("nextToken")? {
        Some(token) => decode_token(token)?,
        None => 0,
    };
    let state = shared.store.lock();
    let now = lifecycle::now();
    let mut records: Vec<&Record> = state.of_kind(kind).filter(|r| keep(&state, r)).collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.seq));
    if start > records.len() {
        return Err(ApiError::invalid_next_token());
    }
    let end = (start + max as usize).min(records.len());
    let page: Vec<Value> =
        records[start..end].iter().map(|r| Value::Object(summary(kind, &view(&state, r, now)))).collect();
    let mut out = Map::new();
    out.insert(list_key.into(), Value::Array(page));
    if end < records.len() {
        out.insert("nextToken".into(), json!(encode_token(end)));
    }
    Ok(Value::Object(out))
}

pub fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("offset:{offset}"))
}

pub fn decode_token(token: &str) -> Result<usize, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .ok_or_else(ApiError::invalid_next_token)
}

/// A record that must exist and be of `kind`.
pub fn require<'s>(state: &'s State, kind: Kind, arn: &str) -> Result<&'s Record, ApiError> {
    state.get(arn).filter(|r| r.kind == kind).ok_or_else(|| ApiError::not_found(arn))
}

/// The record an Update* changes: it must be ACTIVE and have no update in progress
/// (ResourceInUseException otherwise, as UpdateCampaign and UpdateSolution answer). `what` names
/// the kind in the message ("campaign", "solution").
pub fn require_updatable<'s>(
    state: &'s State,
    kind: Kind,
    what: &str,
    arn: &str,
    now: f64,
) -> Result<&'s Record, ApiError> {
    let record = require(state, kind, arn)?;
    let current = status(record, now);
    if current.as_ref().is_none_or(|s| s.name != lifecycle::ACTIVE) {
        let name = current.map(|s| s.name).unwrap_or("unknown");
        return Err(ApiError::in_use(format!(
            "The {what} {arn} is {name}; only ACTIVE {what}s can be updated."
        )));
    }
    if let Some(update) = &record.update
        && update.life.status(now).is_busy()
    {
        return Err(ApiError::in_use(format!("The {what} {arn} has an update in progress.")));
    }
    Ok(record)
}

/// Starts an Update*'s change of `arn` to `fields`; the change goes through its own lifecycle
/// and applies once ACTIVE. The state is persisted, or left as it was when that fails.
pub fn begin_update(
    shared: &Arc<Shared>,
    state: &mut State,
    arn: &str,
    fields: Map<String, Value>,
) -> Result<(), ApiError> {
    let life = Lifecycle::begin(shared, false, 0.0, None);
    let Some(record) = state.records.get_mut(arn) else { return Err(ApiError::not_found(arn)) };
    let previous = record.update.replace(super::store::CampaignUpdate { fields, life });
    if let Err(e) = shared.store.persist(state) {
        if let Some(record) = state.records.get_mut(arn) {
            record.update = previous;
        }
        return Err(ApiError::internal(format!("cannot persist the state: {e}")));
    }
    Ok(())
}

/// How many records of `kind` are pending or in progress now (the service's quotas count these).
pub fn busy_count(state: &State, kind: Kind, now: f64) -> usize {
    state.of_kind(kind).filter(|r| status(r, now).is_some_and(|s| s.is_busy())).count()
}

/// A new record; the caller checks names and quotas first.
pub fn new_record(
    kind: Kind,
    arn: String,
    name: &str,
    fields: Map<String, Value>,
    life: Option<Lifecycle>,
) -> Record {
    let created = life.as_ref().map(|l| l.created).unwrap_or_else(lifecycle::now);
    Record {
        kind,
        arn,
        name: name.to_string(),
        seq: 0,
        created,
        fields,
        life,
        update: None,
        deletion: None,
        auto: None,
    }
}

/// Inserts, persists, and starts the job's runner if it has work; undoes the insert if the
/// state cannot be written, so what was answered is always what is on disk.
pub fn commit(shared: &Arc<Shared>, state: &mut State, record: Record) -> Result<(), ApiError> {
    let arn = record.arn.clone();
    let has_work = record.life.as_ref().is_some_and(|l| l.unfinished());
    state.insert(record);
    if let Err(e) = shared.store.persist(state) {
        state.records.remove(&arn);
        return Err(ApiError::internal(format!("cannot persist the state: {e}")));
    }
    if has_work {
        lifecycle::spawn_job(shared, arn);
    }
    Ok(())
}

/// Copies the optional members `keys` from the request into `fields` when present.
pub fn copy_members(input: &Input, fields: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        if let Some(value) = input.0.get(*key).filter(|v| !v.is_null()) {
            fields.insert((*key).to_string(), value.clone());
        }
    }
}
