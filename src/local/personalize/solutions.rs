//! Solutions, solution versions (training), their metrics, and stopping a training.
//!
//! What each Create does with each member of its input shape (service model `personalize.json`,
//! CreateSolution and CreateSolutionVersion API references):
//!
//! | Operation | Member | Decision |
//! |---|---|---|
//! | CreateSolution | name | validated (Name pattern), names the ARN |
//! | | datasetGroupArn | validated (Arn pattern), must exist |
//! | | recipeArn | validated (Arn pattern); a recipe ListRecipes does not list is ResourceNotFound; a listed one the emulator cannot train (domain recipes, which belong to CreateRecommender, and the custom recipes without a local model) is refused naming it |
//! | | performAutoML | applied: true without a recipeArn trains aws-user-personalization (the service's choice among its AutoML candidates is not emulated) |
//! | | performHPO, performIncrementalUpdate | refused when true: the local models have no hyperparameters to tune and no incremental training |
//! | | performAutoTraining | applied (default true): see `auto_training` |
//! | | eventType | refused: the stored interactions keep no event types to train on |
//! | | solutionConfig.autoTrainingConfig | validated (`rate(N day[s])`, N 1-30), applied |
//! | | solutionConfig's other members | refused (hyperparameters, HPO, AutoML, features, objectives, events) |
//! | | tags | refused unless empty |
//! | CreateSolutionVersion | solutionArn | validated, must exist and be ACTIVE |
//! | | name | validated, unique within the solution |
//! | | trainingMode | FULL applied; UPDATE only on aws-user-personalization with an ACTIVE FULL version (API reference), else InvalidInputException; AUTOTRAIN refused: it is the mode of the versions automatic training makes (the reference does not say what a request with it does) |
//! | | tags | refused unless empty |

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::local::recommender::Model;

use super::Shared;
use super::arn::validate_name;
use super::auto_training;
use super::datasets::no_tags;
use super::lifecycle::{self, Lifecycle, Stop};
use super::protocol::{ApiError, Input};
use super::recipes;
use super::resources::{busy_count, commit, copy_members, describe, list, new_record, require, status};
use super::store::{Kind, Record, State};
use super::work::model_file;
use crate::local::faults::JobKind;
use crate::local::recommender::Recipe;

/// The service's quota of solution versions pending or in progress at once.
const MAX_ACTIVE_VERSIONS: usize = 20;

const DEFAULT_RECIPE: &str = "aws-user-personalization";

pub fn create_solution(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("name")?;
    validate_name("name", name)?;
    let group_arn = input.req_arn("datasetGroupArn")?;
    for flag in ["performHPO", "performIncrementalUpdate"] {
        input.refuse(flag, |v| v == &Value::Bool(false))?;
    }
    input.refuse("eventType", |_| false)?;
    input.refuse("tags", no_tags)?;
    if let Some(config) = input.0.get("solutionConfig").filter(|v| !v.is_null()) {
        let config = config
            .as_object()
            .ok_or_else(|| ApiError::serialization("'solutionConfig' must be an object"))?;
        if let Some(key) = config.keys().find(|k| k.as_str() != "autoTrainingConfig") {
            return Err(ApiError::invalid_input(format!(
                "'solutionConfig.{key}' is not supported by the local Personalize emulator; leave it out."
            )));
        }
        auto_training::interval_days(config.get("autoTrainingConfig"))?;
    }
    let recipe_arn = match input.opt_arn("recipeArn")? {
        Some(arn) if !recipes::exists(arn) => return Err(ApiError::not_found(arn)),
        Some(arn) if Recipe::from_arn(arn).is_none() => {
            return Err(ApiError::invalid_input(format!(
                "The recipe {arn} is not supported by the local Personalize emulator: it trains \
                 aws-user-personalization(-v2), aws-personalized-ranking(-v2), aws-sims and \
                 aws-popularity-count (domain recipes belong to recommenders)."
            )));
        }
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
    // performAutoTraining is the one flag that defaults to true.
    for flag in ["performHPO", "performAutoML", "performAutoTraining", "performIncrementalUpdate"] {
        fields.insert(flag.into(), json!(input.opt_bool(flag)?.unwrap_or(flag == "performAutoTraining")));
    }
    fields.insert("recipeArn".into(), json!(recipe_arn));
    fields.insert("datasetGroupArn".into(), json!(group_arn));
    copy_members(input, &mut fields, &["solutionConfig"]);
    let life = Lifecycle::begin(shared, false, 0.0, None);
    commit(shared, &mut state, new_record(Kind::Solution, arn.clone(), name, fields, Some(life)))?;
    Ok(json!({ "solutionArn": arn }))
}

/// trainingMode UPDATE "can only be used when you already have an active solution version
/// created from the input solution using the FULL option and the input solution was trained with
/// the User-Personalization recipe or the legacy HRNN-Coldstart recipe" (CreateSolutionVersion
/// API reference). User-Personalization-v2 is not named there, so it is refused too.
fn check_update(state: &State, solution: &Record, now: f64) -> Result<(), ApiError> {
    const UPDATABLE: &str = "arn:aws:personalize:::recipe/aws-user-personalization";
    let recipe = solution.field_str("recipeArn").unwrap_or_default();
    if recipe != UPDATABLE {
        return Err(ApiError::invalid_input(format!(
            "trainingMode UPDATE is only for solutions with the User-Personalization recipe \
             ({UPDATABLE}); {} uses {recipe}.",
            solution.arn
        )));
    }
    let has_full = state.of_kind(Kind::SolutionVersion).any(|v| {
        v.field_str("solutionArn") == Some(solution.arn.as_str())
            && v.field_str("trainingMode") != Some("UPDATE")
            && status(v, now).is_some_and(|s| s.name == lifecycle::ACTIVE)
    });
    if !has_full {
        return Err(ApiError::invalid_input(format!(
            "trainingMode UPDATE needs an ACTIVE solution version of {} trained with FULL; create one first.",
            solution.arn
        )));
    }
    Ok(())
}

pub fn describe_solution(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::Solution, "solution")
}

pub fn list_solutions(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::Solution, "solutions", Some("datasetGroupArn"))
}

pub fn create_solution_version(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let solution_arn = input.req_arn("solutionArn")?;
    let version_name = input.opt_str("name")?;
    if let Some(name) = version_name {
        validate_name("name", name)?;
    }
    input.refuse("tags", no_tags)?;
    let mode = input.opt_str("trainingMode")?.unwrap_or("FULL");
    match mode {
        "FULL" | "UPDATE" => {}
        "AUTOTRAIN" => {
            return Err(ApiError::invalid_input(
                "trainingMode AUTOTRAIN is the mode of the versions automatic training creates; \
                 ask for FULL or UPDATE.",
            ));
        }
        _ => {
            return Err(ApiError::invalid_input(format!(
                "1 validation error detected: Value '{mode}' at 'trainingMode' failed to satisfy constraint: \
                 Member must satisfy enum value set: [FULL, UPDATE, AUTOTRAIN]"
            )));
        }
    }
    let mut state = shared.store.lock();
    let now = lifecycle::now();
    let solution = require(&state, Kind::Solution, solution_arn)?;
    if status(solution, now).is_some_and(|s| s.name != lifecycle::ACTIVE) {
        return Err(ApiError::in_use(format!("The solution {solution_arn} is not ACTIVE yet.")));
    }
    if mode == "UPDATE" {
        check_update(&state, solution, now)?;
    }
    let arn = start_version(shared, &mut state, solution_arn, version_name, mode, "MANUAL", now)?;
    Ok(json!({ "solutionVersionArn": arn }))
}

/// Starts training a new version of the ACTIVE solution `solution_arn`: what CreateSolutionVersion
/// and automatic training share. `training_type` is the model's TrainingType (MANUAL or
/// AUTOMATIC). ResourceInUse while an import into the group runs, LimitExceeded past the quota.
pub fn start_version(
    shared: &Arc<Shared>,
    state: &mut State,
    solution_arn: &str,
    version_name: Option<&str>,
    mode: &str,
    training_type: &str,
    now: f64,
) -> Result<String, ApiError> {
    let solution = require(state, Kind::Solution, solution_arn)?;
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
    if busy_count(state, Kind::SolutionVersion, now) >= MAX_ACTIVE_VERSIONS {
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
    fields.insert("trainingType".into(), json!(training_type));
    let faults = shared.faults.take_job(JobKind::SolutionVersion);
    let life = Lifecycle::begin(shared, true, faults.extra_seconds, faults.fail);
    let record =
        new_record(Kind::SolutionVersion, arn.clone(), version_name.unwrap_or_default(), fields, Some(life));
    commit(shared, state, record)?;
    Ok(arn)
}

pub fn describe_solution_version(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::SolutionVersion, "solutionVersion")
}

pub fn list_solution_versions(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    if let Some(solution_arn) = input.opt_arn("solutionArn")? {
        require(&shared.store.lock(), Kind::Solution, solution_arn)?;
    }
    list(shared, input, Kind::SolutionVersion, "solutionVersions", Some("solutionArn"))
}

pub fn stop_solution_version_creation(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("solutionVersionArn")?;
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
    let arn = input.req_arn("solutionVersionArn")?;
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
