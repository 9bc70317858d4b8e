//! Delete operations for every resource the emulator creates, with the service's ordering rules.
//! Import and batch jobs and solution versions have no Delete (the API has none).
//!
//! Rules (API references of each operation; "ResourceInUseException: The specified resource is in
//! use" is the error for every refusal below):
//! - DeleteDatasetGroup: "Before you delete a dataset group, you must delete ... all associated
//!   solutions [and] all datasets in the dataset group" (event trackers too; the emulator has
//!   none). The group shows DELETE PENDING until it is gone.
//! - DeleteDataset: not while "an associated DatasetImportJob or SolutionVersion is in the
//!   CREATE PENDING or IN PROGRESS state". The dataset's imported data goes with it.
//! - DeleteSchema: not while a dataset uses the schema. A schema has no status: it goes at once.
//! - DeleteSolution: "Before deleting a solution, you must delete all campaigns based on the
//!   solution", and not while one of its versions trains; its versions go with it.
//! - DeleteCampaign: the campaign goes; the solution version it served stays.
//! - A resource still being created (CREATE PENDING or IN_PROGRESS), or already being deleted,
//!   is in use. The API references do not document this; the emulator's call.
//!
//! A deleted resource shows DELETE PENDING, then DELETE IN_PROGRESS (the phases take the
//! configured pending and in-progress times, scaled), then Describe answers
//! ResourceNotFoundException and List leaves it out; its name is free again.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Shared;
use super::lifecycle;
use super::protocol::{ApiError, Input};
use super::resources::{require, status};
use super::store::{Deletion, Kind, Record, State};
use super::work;

pub fn delete_dataset_group(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("datasetGroupArn")?;
    delete(shared, Kind::DatasetGroup, arn, |state, group| {
        let member = |kind: Kind| {
            state.of_kind(kind).find(|r| r.field_str("datasetGroupArn") == Some(group.arn.as_str()))
        };
        // Filters too: they read the group's datasets, and one left behind would attach itself
        // to a new group of the same name (the API reference names only datasets, solutions and
        // event trackers; this is the emulator's call).
        for (kind, what) in
            [(Kind::Dataset, "dataset"), (Kind::Solution, "solution"), (Kind::Filter, "filter")]
        {
            if let Some(dependant) = member(kind) {
                return Err(ApiError::in_use(format!(
                    "The dataset group {} still has the {what} {}; delete it first.",
                    group.arn, dependant.arn
                )));
            }
        }
        Ok(())
    })
}

pub fn delete_dataset(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("datasetArn")?;
    let out = delete(shared, Kind::Dataset, arn, |state, dataset| {
        let now = lifecycle::now();
        let group = dataset.field_str("datasetGroupArn");
        let busy = |r: &&Record| status(r, now).is_some_and(|s| s.is_busy());
        let importing = state
            .of_kind(Kind::DatasetImportJob)
            .filter(busy)
            .find(|j| j.field_str("datasetArn") == Some(dataset.arn.as_str()));
        let training = state
            .of_kind(Kind::SolutionVersion)
            .filter(busy)
            .find(|v| v.field_str("datasetGroupArn") == group);
        match importing.or(training) {
            Some(job) => Err(ApiError::in_use(format!(
                "The dataset {} cannot be deleted while {} is CREATE PENDING or IN_PROGRESS.",
                dataset.arn, job.arn
            ))),
            None => Ok(()),
        }
    })?;
    // The data is unusable from now on, and a dataset made again under the name starts empty.
    let dir = work::dataset_dir(shared, arn);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), error = %e, "cannot remove a deleted dataset's data");
    }
    Ok(out)
}

pub fn delete_schema(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("schemaArn")?;
    let mut state = shared.store.lock();
    require(&state, Kind::Schema, arn)?;
    if let Some(dataset) = state.of_kind(Kind::Dataset).find(|d| d.field_str("schemaArn") == Some(arn)) {
        return Err(ApiError::in_use(format!(
            "The schema {arn} is used by the dataset {}; delete the dataset first.",
            dataset.arn
        )));
    }
    let Some(removed) = state.records.remove(arn) else { return Err(ApiError::not_found(arn)) };
    if let Err(e) = shared.store.persist(&state) {
        state.records.insert(arn.to_string(), removed);
        return Err(ApiError::internal(format!("cannot persist the state: {e}")));
    }
    Ok(json!({}))
}

pub fn delete_solution(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("solutionArn")?;
    let versions: Vec<String> = {
        let state = shared.store.lock();
        state
            .of_kind(Kind::SolutionVersion)
            .filter(|v| v.field_str("solutionArn") == Some(arn))
            .map(|v| v.arn.clone())
            .collect()
    };
    let out = delete(shared, Kind::Solution, arn, |state, solution| {
        let now = lifecycle::now();
        let of_solution = |version: Option<&str>| versions.iter().any(|v| Some(v.as_str()) == version);
        if let Some(campaign) = state.of_kind(Kind::Campaign).find(|c| {
            of_solution(c.field_str("solutionVersionArn"))
                || c.update
                    .as_ref()
                    .is_some_and(|u| of_solution(u.fields.get("solutionVersionArn").and_then(Value::as_str)))
        }) {
            return Err(ApiError::in_use(format!(
                "The solution {} is deployed by the campaign {}; delete the campaign first.",
                solution.arn, campaign.arn
            )));
        }
        let training = versions
            .iter()
            .filter_map(|v| state.get(v))
            .find(|v| status(v, now).is_some_and(|s| s.is_busy()));
        let batch = state
            .of_kind(Kind::BatchInferenceJob)
            .chain(state.of_kind(Kind::BatchSegmentJob))
            .filter(|j| of_solution(j.field_str("solutionVersionArn")))
            .find(|j| status(j, now).is_some_and(|s| s.is_busy()));
        match training.or(batch) {
            Some(job) => Err(ApiError::in_use(format!(
                "The solution {} cannot be deleted while {} is CREATE PENDING or IN_PROGRESS.",
                solution.arn, job.arn
            ))),
            None => Ok(()),
        }
    })?;
    for version in &versions {
        let model = work::model_file(shared, version);
        if let Err(e) = std::fs::remove_file(&model)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %model.display(), error = %e, "cannot remove a deleted solution's model");
        }
    }
    Ok(out)
}

pub fn delete_campaign(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("campaignArn")?;
    delete(shared, Kind::Campaign, arn, |_, _| Ok(()))
}

/// Starts the deletion of the `kind` resource `arn` after `check` (the dependants' rule) and the
/// resource's own state allow it.
fn delete(
    shared: &Arc<Shared>,
    kind: Kind,
    arn: &str,
    check: impl FnOnce(&State, &Record) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    let mut state = shared.store.lock();
    let now = lifecycle::now();
    let record = require(&state, kind, arn)?;
    if let Some(current) = status(record, now).filter(|s| s.is_busy() || record.deletion.is_some()) {
        return Err(ApiError::in_use(format!("The resource {arn} is {}.", current.name)));
    }
    if let Some(update) = &record.update
        && update.life.status(now).is_busy()
    {
        return Err(ApiError::in_use(format!("The campaign {arn} has an update in progress.")));
    }
    check(&state, record)?;
    let pending_until = now + shared.scaled(shared.config.pending_seconds);
    let deletion = Deletion {
        requested: now,
        pending_until,
        until: pending_until + shared.scaled(shared.config.in_progress_seconds),
    };
    let Some(record) = state.records.get_mut(arn) else { return Err(ApiError::not_found(arn)) };
    record.deletion = Some(deletion);
    if let Err(e) = shared.store.persist(&state) {
        if let Some(record) = state.records.get_mut(arn) {
            record.deletion = None;
        }
        return Err(ApiError::internal(format!("cannot persist the state: {e}")));
    }
    Ok(json!({}))
}
