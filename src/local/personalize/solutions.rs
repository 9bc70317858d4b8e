//! Solutions, solution versions (training), their metrics, and stopping a training.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::local::recommender::Model;

use super::Shared;
use super::arn::validate_name;
use super::lifecycle::{self, Lifecycle, Stop};
use super::protocol::{ApiError, Input};
use super::recipes;
use super::resources::{busy_count, commit, copy_members, describe, list, new_record, require, status};
use super::store::Kind;
use super::work::model_file;
use crate::local::faults::JobKind;

/// The service's quota of solution versions pending or in progress at once.
const MAX_ACTIVE_VERSIONS: usize = 20;

const DEFAULT_RECIPE: &str = "aws-user-personalization";

pub fn create_solution(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("name")?;
    validate_name("name", name)?;
    let group_arn = input.req_str("datasetGroupArn")?;
    let recipe_arn = match input.opt_str("recipeArn")? {
        Some(arn) if !recipes::exists(arn) => return Err(ApiError::not_found(arn)),
        Some(arn) => arn.to_string(),
        None if input.opt_bool("performAutoML")?.unwrap_or(false) => super::arn::recipe_arn(DEFAULT_RECIPE),
        None => return Err(ApiError::invalid_input("Provide a recipeArn or set performAutoML.")),
    };
    let arn = shared.arn(Kind::Solution, name);
    let mut state = shared.store.lock();
    require(&state, Kind::DatasetGroup, group_arn)?;
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    let mut fields = Map::new();
    // "By default, all new solutions use automatic training" (CreateSolution API reference):
    // performAutoTraining is the one flag that defaults to true. The emulator records it; it does
    // not train by itself.
    for flag in ["performHPO", "performAutoML", "performAutoTraining", "performIncrementalUpdate"] {
        fields.insert(flag.into(), json!(input.opt_bool(flag)?.unwrap_or(flag == "performAutoTraining")));
    }
    fields.insert("recipeArn".into(), json!(recipe_arn));
    fields.insert("datasetGroupArn".into(), json!(group_arn));
    copy_members(input, &mut fields, &["eventType", "solutionConfig"]);
    let life = Lifecycle::begin(shared, false, 0.0, None);
    commit(shared, &mut state, new_record(Kind::Solution, arn.clone(), name, fields, Some(life)))?;
    Ok(json!({ "solutionArn": arn }))
}

pub fn describe_solution(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::Solution, "solution")
}

pub fn list_solutions(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::Solution, "solutions", Some("datasetGroupArn"))
}

pub fn create_solution_version(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let solution_arn = input.req_str("solutionArn")?;
    let version_name = input.opt_str("name")?;
    if let Some(name) = version_name {
        validate_name("name", name)?;
    }
    let mode = input.opt_str("trainingMode")?.unwrap_or("FULL");
    if !["FULL", "UPDATE", "AUTOTRAIN"].contains(&mode) {
        return Err(ApiError::invalid_input(format!(
            "trainingMode '{mode}' is not FULL, UPDATE or AUTOTRAIN."
        )));
    }
    let mut state = shared.store.lock();
    let now = lifecycle::now();
    let solution = require(&state, Kind::Solution, solution_arn)?;
    if status(solution, now).is_some_and(|s| s.name != lifecycle::ACTIVE) {
        return Err(ApiError::in_use(format!("The solution {solution_arn} is not ACTIVE yet.")));
    }
    let group_arn = solution.field_str("datasetGroupArn").unwrap_or_default().to_string();
    // Training reads the dataset group's data, so it waits for every import into the group.
    let importing = state.of_kind(Kind::DatasetImportJob).find(|job| {
        let dataset = job.field_str("datasetArn").and_then(|d| state.get(d));
        dataset.is_some_and(|d| d.field_str("datasetGroupArn") == Some(group_arn.as_str()))
            && status(job, now).is_some_and(|s| s.is_busy())
    });
    if let Some(job) = importing {
        return Err(ApiError::in_use(format!(
            "The dataset import job {} into dataset group {group_arn} is still pending or in progress.",
            job.arn
        )));
    }
    if let Some(name) = version_name {
        let taken = state
            .of_kind(Kind::SolutionVersion)
            .find(|v| v.field_str("solutionArn") == Some(solution_arn) && v.name == name);
        if let Some(existing) = taken {
            return Err(ApiError::already_exists(&existing.arn));
        }
    }
    if busy_count(&state, Kind::SolutionVersion, now) >= MAX_ACTIVE_VERSIONS {
        return Err(ApiError::limit_exceeded_with(
            "More than 20 resources with PENDING or IN_PROGRESS status.",
        ));
    }
    let arn = loop {
        let candidate = format!("{solution_arn}/{:08x}", fastrand::u32(..));
        if state.get(&candidate).is_none() {
            break candidate;
        }
    };
    let mut fields = Map::new();
    if let Some(name) = version_name {
        fields.insert("name".into(), json!(name));
    }
    fields.insert("solutionArn".into(), json!(solution_arn));
    for key in [
        "performHPO",
        "performAutoML",
        "performIncrementalUpdate",
        "recipeArn",
        "eventType",
        "solutionConfig",
    ] {
        if let Some(value) = solution.fields.get(key) {
            fields.insert(key.into(), value.clone());
        }
    }
    fields.insert("datasetGroupArn".into(), json!(group_arn));
    fields.insert("trainingMode".into(), json!(mode));
    fields.insert("trainingType".into(), json!("MANUAL"));
    let faults = shared.faults.take_job(JobKind::SolutionVersion);
    let life = Lifecycle::begin(shared, true, faults.extra_seconds, faults.fail);
    let record =
        new_record(Kind::SolutionVersion, arn.clone(), version_name.unwrap_or_default(), fields, Some(life));
    commit(shared, &mut state, record)?;
    Ok(json!({ "solutionVersionArn": arn }))
}

pub fn describe_solution_version(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::SolutionVersion, "solutionVersion")
}

pub fn list_solution_versions(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    if let Some(solution_arn) = input.opt_str("solutionArn")? {
        require(&shared.store.lock(), Kind::Solution, solution_arn)?;
    }
    list(shared, input, Kind::SolutionVersion, "solutionVersions", Some("solutionArn"))
}

pub fn stop_solution_version_creation(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_str("solutionVersionArn")?;
    let mut state = shared.store.lock();
    let now = lifecycle::now();
    let current = status(require(&state, Kind::SolutionVersion, arn)?, now);
    if !current.as_ref().is_some_and(|s| s.is_busy()) {
        let name = current.map(|s| s.name).unwrap_or("unknown");
        return Err(ApiError::invalid_input(format!(
            "The solution version {arn} is {name}; only CREATE PENDING or CREATE IN_PROGRESS versions can be stopped."
        )));
    }
    let until = now + shared.scaled(shared.config.pending_seconds);
    let Some(life) = state.records.get_mut(arn).and_then(|r| r.life.as_mut()) else {
        return Err(ApiError::not_found(arn));
    };
    let previous = life.stop.replace(Stop { requested: now, until });
    if let Err(e) = shared.store.persist(&state) {
        if let Some(life) = state.records.get_mut(arn).and_then(|r| r.life.as_mut()) {
            life.stop = previous;
        }
        return Err(ApiError::internal(format!("cannot persist the state: {e}")));
    }
    Ok(json!({}))
}

pub fn get_solution_metrics(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_str("solutionVersionArn")?;
    {
        let state = shared.store.lock();
        let current = status(require(&state, Kind::SolutionVersion, arn)?, lifecycle::now());
        if let Some(current) = current.filter(|s| s.name != lifecycle::ACTIVE) {
            return Err(ApiError::in_use(format!(
                "The solution version {arn} is {}; metrics exist only for ACTIVE versions.",
                current.name
            )));
        }
    }
    let model = Model::load(&model_file(shared, arn))
        .map_err(|e| ApiError::internal(format!("cannot load the model of {arn}: {e}")))?;
    let metrics: Map<String, Value> = model.metrics().iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    Ok(json!({ "solutionVersionArn": arn, "metrics": metrics }))
}
