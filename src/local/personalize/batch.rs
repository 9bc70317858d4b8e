//! Batch inference jobs and batch segment jobs: a trained solution version run over JSON Lines.
//!
//! What CreateBatchInferenceJob and CreateBatchSegmentJob do with each member (service model
//! `personalize.json` and the two API references):
//!
//! | Member | Decision |
//! |---|---|
//! | jobName | validated (Name pattern), names the ARN |
//! | solutionVersionArn | validated (Arn pattern), must exist and be ACTIVE |
//! | filterArn | validated (Arn pattern), must name an ACTIVE filter of the same dataset group (ResourceNotFound, ResourceInUse, InvalidInput); applied per line with its filterValues; refused on batch segment jobs |
//! | numResults | validated (1-500 for inference, up to 5,000,000 for segments), applied |
//! | jobInput.s3DataSource.path | validated (s3:// path), applied; a missing object or empty prefix fails the job |
//! | jobOutput.s3DataDestination.path | validated, applied; a bucket that does not exist fails the job (Personalize never creates it) |
//! | s3DataSource/s3DataDestination.kmsKeyArn | echoed; nothing is encrypted locally |
//! | roleArn | required, validated (RoleArn pattern), echoed |
//! | batchInferenceJobConfig | refused unless empty: exploration weights and ranking influence have no local model |
//! | batchInferenceJobMode | BATCH_INFERENCE applied; THEME_GENERATION refused |
//! | themeGenerationConfig | refused |
//! | tags | refused unless empty |

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Shared;
use super::arn::{validate_name, validate_s3};
use super::datasets::no_tags;
use super::filters;
use super::lifecycle::{self, Lifecycle};
use super::protocol::{ApiError, Input};
use super::resources::{busy_count, commit, copy_members, describe, list, new_record, require, status};
use super::store::{Kind, State};
use crate::local::faults::JobKind;

/// The service's quota of batch inference (and of batch segment) jobs pending or in progress.
const MAX_ACTIVE_JOBS: usize = 5;
const DEFAULT_NUM_RESULTS: i64 = 25;
const MAX_NUM_RESULTS_INFERENCE: i64 = 500;
const MAX_NUM_RESULTS_SEGMENT: i64 = 5_000_000;

/// A solution version that exists and is ACTIVE: what batch jobs and campaigns run on.
pub fn require_active_version(state: &State, arn: &str, now: f64) -> Result<(), ApiError> {
    let version = require(state, Kind::SolutionVersion, arn)?;
    match status(version, now) {
        Some(s) if s.name == lifecycle::ACTIVE => Ok(()),
        Some(s) if s.is_busy() => Err(ApiError::in_use(format!(
            "The solution version {arn} is {}; wait until it is ACTIVE.",
            s.name
        ))),
        Some(s) => Err(ApiError::invalid_input(format!(
            "The solution version {arn} is {} and can never become ACTIVE.",
            s.name
        ))),
        None => Err(ApiError::not_found(arn)),
    }
}

fn create_job(shared: &Arc<Shared>, input: &Input, kind: Kind) -> Result<Value, ApiError> {
    let (job_kind, max_results) = match kind {
        Kind::BatchSegmentJob => (JobKind::BatchSegmentJob, MAX_NUM_RESULTS_SEGMENT),
        _ => (JobKind::BatchInferenceJob, MAX_NUM_RESULTS_INFERENCE),
    };
    let name = input.req_str("jobName")?;
    validate_name("jobName", name)?;
    let version_arn = input.req_arn("solutionVersionArn")?;
    let input_path = input.req_path(&["jobInput", "s3DataSource", "path"])?;
    validate_s3("jobInput.s3DataSource.path", input_path)?;
    let output_path = input.req_path(&["jobOutput", "s3DataDestination", "path"])?;
    validate_s3("jobOutput.s3DataDestination.path", output_path)?;
    super::arn::validate_role_arn("roleArn", input.req_str("roleArn")?)?;
    input.refuse("tags", no_tags)?;
    input.refuse("batchInferenceJobConfig", |v| v.as_object().is_some_and(Map::is_empty))?;
    input.refuse("themeGenerationConfig", |_| false)?;
    let filter_arn = input.opt_arn("filterArn")?;
    let num_results = input.opt_i64("numResults")?.unwrap_or(DEFAULT_NUM_RESULTS);
    if !(1..=max_results).contains(&num_results) {
        return Err(ApiError::invalid_input(format!(
            "numResults {num_results} is out of range: it must be between 1 and {max_results}."
        )));
    }
    if kind == Kind::BatchInferenceJob
        && let Some(mode) = input.opt_str("batchInferenceJobMode")?
        && mode != "BATCH_INFERENCE"
    {
        return Err(ApiError::invalid_input(format!(
            "batchInferenceJobMode '{mode}' is not supported by the local emulator (BATCH_INFERENCE only)."
        )));
    }
    let arn = shared.arn(kind, name);
    let mut state = shared.store.lock();
    let now = lifecycle::now();
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    require_active_version(&state, version_arn, now)?;
    if let Some(filter_arn) = filter_arn {
        if kind == Kind::BatchSegmentJob {
            // The emulator's filters are ItemID filters; a segment job's filter selects users.
            return Err(ApiError::invalid_input(
                "filterArn on a batch segment job is not supported by the local emulator (its filters are ItemID filters).",
            ));
        }
        let group = state.get(version_arn).and_then(|v| v.field_str("datasetGroupArn"));
        filters::require_usable(&state, filter_arn, group, now)?;
    }
    if busy_count(&state, kind, now) >= MAX_ACTIVE_JOBS {
        return Err(ApiError::limit_exceeded());
    }
    let mut fields = Map::new();
    copy_members(input, &mut fields, &["filterArn"]);
    fields.insert("solutionVersionArn".into(), json!(version_arn));
    fields.insert("numResults".into(), json!(num_results));
    // Rebuilt from the members the model defines, so Describe echoes nothing else.
    fields.insert("jobInput".into(), s3_config(input, "jobInput", "s3DataSource", input_path));
    fields.insert("jobOutput".into(), s3_config(input, "jobOutput", "s3DataDestination", output_path));
    if kind == Kind::BatchInferenceJob {
        copy_members(input, &mut fields, &["batchInferenceJobConfig"]);
    }
    copy_members(input, &mut fields, &["roleArn"]);
    if kind == Kind::BatchInferenceJob {
        fields.insert("batchInferenceJobMode".into(), json!("BATCH_INFERENCE"));
    }
    let faults = shared.faults.take_job(job_kind);
    let life = Lifecycle::begin(shared, true, faults.extra_seconds, faults.fail);
    commit(shared, &mut state, new_record(kind, arn.clone(), name, fields, Some(life)))?;
    Ok(json!({ kind.arn_key(): arn }))
}

/// `{"<inner>": {"path": ..., "kmsKeyArn": ...}}` from the request's `<outer>` member.
fn s3_config(input: &Input, outer: &str, inner: &str, path: &str) -> Value {
    let mut config = Map::new();
    config.insert("path".into(), json!(path));
    let kms = input.0.get(outer).and_then(|o| o.get(inner)).and_then(|i| i.get("kmsKeyArn"));
    if let Some(kms) = kms.and_then(Value::as_str) {
        config.insert("kmsKeyArn".into(), json!(kms));
    }
    json!({ inner: config })
}

pub fn create_batch_inference_job(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    create_job(shared, input, Kind::BatchInferenceJob)
}

pub fn describe_batch_inference_job(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::BatchInferenceJob, "batchInferenceJob")
}

pub fn list_batch_inference_jobs(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::BatchInferenceJob, "batchInferenceJobs", Some("solutionVersionArn"))
}

pub fn create_batch_segment_job(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    create_job(shared, input, Kind::BatchSegmentJob)
}

pub fn describe_batch_segment_job(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::BatchSegmentJob, "batchSegmentJob")
}

pub fn list_batch_segment_jobs(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::BatchSegmentJob, "batchSegmentJobs", Some("solutionVersionArn"))
}
