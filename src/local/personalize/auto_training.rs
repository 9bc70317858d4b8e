//! Automatic training: the solution versions Personalize creates by itself, and UpdateSolution,
//! which turns it on or off or changes its rate.
//!
//! Rules (CreateSolution and UpdateSolution API references; developer guide, "Configuring
//! automatic training"):
//! - `performAutoTraining` defaults to true; the rate is
//!   `solutionConfig.autoTrainingConfig.schedulingExpression`, `rate(N day[s])` with N from 1 to
//!   30 (the model's pattern `rate\(\d+ days?\)`, 1-16 characters), every 7 days by default.
//! - The first automatic training starts within one hour after the solution turns ACTIVE (or an
//!   update turning it on completes). The emulator starts it at the end of that hour. If a version
//!   is created manually within the hour, the first automatic training is skipped.
//! - "The training schedule is based on the training start date": each next training is one
//!   interval after the previous one (after the manual version, when it replaced the first).
//! - "Automatic training occurs only if you imported bulk or real-time interaction data since the
//!   last training": a slot without an import into the group's interactions that became ACTIVE
//!   since the solution's latest version was created is skipped.
//! - Automatic versions have `trainingType` AUTOMATIC (the model's TrainingType enum; manual ones
//!   are MANUAL) and `trainingMode` AUTOTRAIN (the model's TrainingMode value for them; the
//!   reference does not say which mode they show, so this is the emulator's call).
//! - A slot that finds an import in progress or the quota of trainings full is tried again
//!   shortly (the service does not document this case).
//! - UpdateSolution needs an ACTIVE solution without an update in progress (ResourceInUse
//!   otherwise); the update goes CREATE PENDING, CREATE IN_PROGRESS, ACTIVE as
//!   `latestSolutionUpdate`, and from then on the solution's `performAutoTraining` and
//!   `solutionConfig.autoTrainingConfig` are the updated ones.
//!
//! Times are on the emulator's scaled clock: an emulated hour is `3600 / time_scale` real seconds.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Shared;
use super::lifecycle;
use super::protocol::{ApiError, Input};
use super::resources::{begin_update, require_updatable, status};
use super::store::{CampaignUpdate, Kind, Record, State};

/// Emulated seconds from a solution turning ACTIVE to its first automatic training.
const FIRST_AFTER: f64 = 3600.0;
/// Emulated seconds in a day.
const DAY: f64 = 86_400.0;
/// The scheduler looks again at least this often (real time), for new solutions and imports.
const RECHECK: Duration = Duration::from_millis(100);

/// A solution's automatic-training schedule: when the next slot is, and whether it is the first
/// (which a manual version within the hour replaces).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Schedule {
    pub next: f64,
    pub first: bool,
    /// When the schedule started (the solution or its update turning ACTIVE).
    pub since: f64,
}

/// The default interval between automatic trainings, in days.
pub const DEFAULT_DAYS: u32 = 7;

/// The interval in days that an `autoTrainingConfig` object (or its absence) gives; an
/// InvalidInputException for an expression outside the model's pattern or the 1-30 range.
pub fn interval_days(config: Option<&Value>) -> Result<u32, ApiError> {
    let Some(config) = config.filter(|c| !c.is_null()) else { return Ok(DEFAULT_DAYS) };
    let expression = match config.get("schedulingExpression") {
        None | Some(Value::Null) => return Ok(DEFAULT_DAYS),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::serialization("'schedulingExpression' must be a string")),
    };
    let days = expression
        .strip_prefix("rate(")
        .and_then(|rest| rest.strip_suffix(" days)").or_else(|| rest.strip_suffix(" day)")))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && expression.len() <= 16)
        .and_then(|n| n.parse::<u32>().ok());
    match days {
        Some(days) if (1..=30).contains(&days) => Ok(days),
        _ => Err(ApiError::invalid_input(format!(
            "1 validation error detected: Value '{expression}' at \
             'solutionConfig.autoTrainingConfig.schedulingExpression' failed to satisfy constraint: \
             Member must be rate(value days) with a value from 1 to 30"
        ))),
    }
}

/// The solution's configuration now: its own fields, overlaid with a finished update's.
fn effective<'r>(record: &'r Record, key: &str, now: f64) -> Option<&'r Value> {
    let applied = record.update.as_ref().filter(|u| u.life.status(now).name == lifecycle::ACTIVE);
    applied.and_then(|u| u.fields.get(key)).or_else(|| record.fields.get(key))
}

/// Whether automatic training is on for the solution now, and its interval in emulated seconds.
fn settings(record: &Record, now: f64) -> Option<f64> {
    let on = effective(record, "performAutoTraining", now).and_then(Value::as_bool).unwrap_or(true);
    let config = effective(record, "solutionConfig", now).and_then(|c| c.get("autoTrainingConfig"));
    on.then(|| f64::from(interval_days(config).unwrap_or(DEFAULT_DAYS)) * DAY)
}

/// When the solution (or the update that last set its training) turned ACTIVE, if it has.
fn active_since(record: &Record, now: f64) -> Option<f64> {
    let own = status(record, now).filter(|s| s.name == lifecycle::ACTIVE)?.updated;
    match &record.update {
        Some(update) => {
            let s = update.life.status(now);
            (s.name == lifecycle::ACTIVE).then_some(s.updated.max(own))
        }
        None => Some(own),
    }
}

/// Runs the schedules of every solution until the server shuts down.
pub async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let next = tick(&shared, lifecycle::now());
        let wait = next
            .map(|t| Duration::try_from_secs_f64((t - lifecycle::now()).max(0.0)).unwrap_or(RECHECK))
            .map_or(RECHECK, |d| d.min(RECHECK));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // wait_for sees a stop sent before this loop first looked, which changed() would miss.
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Creates the automatic versions due at `now`; gives the earliest next slot.
fn tick(shared: &Arc<Shared>, now: f64) -> Option<f64> {
    let mut state = shared.store.lock();
    let solutions: Vec<String> =
        state.of_kind(Kind::Solution).filter(|s| s.deletion.is_none()).map(|s| s.arn.clone()).collect();
    let mut earliest: Option<f64> = None;
    let mut changed = false;
    for arn in solutions {
        let Some(record) = state.get(&arn) else { continue };
        let (Some(interval), Some(since)) = (settings(record, now), active_since(record, now)) else {
            if record.auto.is_some() {
                // Turned off: a later update turning it on starts a new schedule.
                if let Some(r) = state.records.get_mut(&arn) {
                    r.auto = None;
                }
                changed = true;
            }
            continue;
        };
        let mut schedule = match record.auto {
            Some(schedule) if schedule.since >= since => schedule,
            _ => Schedule { next: since + shared.scaled(FIRST_AFTER), first: true, since },
        };
        if now >= schedule.next {
            schedule = due(shared, &mut state, &arn, schedule, shared.scaled(interval), now);
        }
        if state.get(&arn).is_some_and(|r| {
            r.auto.map(|a| (a.next, a.first, a.since))
                != Some((schedule.next, schedule.first, schedule.since))
        }) {
            if let Some(r) = state.records.get_mut(&arn) {
                r.auto = Some(schedule);
            }
            changed = true;
        }
        earliest = Some(earliest.map_or(schedule.next, |e: f64| e.min(schedule.next)));
    }
    if changed && let Err(e) = shared.store.persist(&state) {
        tracing::warn!(error = %e, "cannot persist automatic training schedules");
    }
    earliest
}

/// The slot `schedule.next` has come: train, skip, or try again shortly. Gives the new schedule.
fn due(
    shared: &Arc<Shared>,
    state: &mut State,
    arn: &str,
    schedule: Schedule,
    interval: f64,
    now: f64,
) -> Schedule {
    let versions: Vec<&Record> =
        state.of_kind(Kind::SolutionVersion).filter(|v| v.field_str("solutionArn") == Some(arn)).collect();
    let latest_start =
        versions.iter().map(|v| v.created).fold(None, |a: Option<f64>, c| Some(a.map_or(c, |a| a.max(c))));
    if schedule.first
        && let Some(manual) = versions
            .iter()
            .filter(|v| v.field_str("trainingType") == Some("MANUAL") && v.created >= schedule.since)
            .map(|v| v.created)
            .reduce(f64::min)
    {
        return Schedule { next: manual + interval, first: false, since: schedule.since };
    }
    let skipped = Schedule { next: schedule.next + interval, first: false, since: schedule.since };
    if !new_interactions(state, arn, latest_start, now) {
        tracing::info!(
            solution = arn,
            "automatic training skipped: no interactions imported since the last training"
        );
        return skipped;
    }
    match super::solutions::start_version(shared, state, arn, None, "AUTOTRAIN", "AUTOMATIC", now) {
        Ok(version) => {
            tracing::info!(solution = arn, %version, "automatic training started");
            skipped
        }
        Err(e) if e.kind == "ResourceInUseException" || e.kind == "LimitExceededException" => {
            Schedule { next: now + shared.scaled(60.0), ..schedule }
        }
        Err(e) => {
            tracing::warn!(solution = arn, error = %e.message, "automatic training could not start");
            skipped
        }
    }
}

/// Whether an import into the solution's group's interactions became ACTIVE after `since`
/// (or at all, when the solution has never trained).
fn new_interactions(state: &State, solution: &str, since: Option<f64>, now: f64) -> bool {
    let Some(group) = state.get(solution).and_then(|s| s.field_str("datasetGroupArn")) else { return false };
    let interactions = format!("{}/INTERACTIONS", group.replacen(":dataset-group/", ":dataset/", 1));
    state
        .of_kind(Kind::DatasetImportJob)
        .filter(|j| j.field_str("datasetArn") == Some(interactions.as_str()))
        .any(|j| {
            status(j, now).is_some_and(|s| s.name == lifecycle::ACTIVE && since.is_none_or(|t| s.updated > t))
        })
}

/// UpdateSolution: `performAutoTraining`, `solutionUpdateConfig.autoTrainingConfig` applied;
/// `performIncrementalUpdate` true and `solutionUpdateConfig.eventsConfig` refused.
pub fn update_solution(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("solutionArn")?;
    let auto = input.opt_bool("performAutoTraining")?;
    input.refuse("performIncrementalUpdate", |v| v == &Value::Bool(false))?;
    let config = match input.0.get("solutionUpdateConfig").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::Object(config)) => {
            if let Some(key) = config.keys().find(|k| k.as_str() != "autoTrainingConfig") {
                return Err(ApiError::invalid_input(format!(
                    "'solutionUpdateConfig.{key}' is not supported by the local Personalize emulator; leave it out."
                )));
            }
            interval_days(config.get("autoTrainingConfig"))?;
            config.get("autoTrainingConfig").cloned()
        }
        Some(_) => return Err(ApiError::serialization("'solutionUpdateConfig' must be an object")),
    };
    let mut state = shared.store.lock();
    let now = lifecycle::now();
    let solution = require_updatable(&state, Kind::Solution, "solution", arn, now)?;
    let mut fields = Map::new();
    let on = auto.or_else(|| effective(solution, "performAutoTraining", now).and_then(Value::as_bool));
    fields.insert("performAutoTraining".into(), json!(on.unwrap_or(true)));
    let mut solution_config =
        effective(solution, "solutionConfig", now).cloned().unwrap_or_else(|| json!({}));
    if let (Some(auto_config), Some(target)) = (config, solution_config.as_object_mut()) {
        target.insert("autoTrainingConfig".into(), auto_config);
    }
    fields.insert("solutionConfig".into(), solution_config);
    begin_update(shared, &mut state, arn, fields)?;
    Ok(json!({ "solutionArn": arn }))
}

/// `latestSolutionUpdate` (SolutionUpdateSummary) of a solution with an update.
pub fn latest_update(update: &CampaignUpdate, now: f64) -> Map<String, Value> {
    let mut out = Map::new();
    let auto_config = update.fields.get("solutionConfig").and_then(|c| c.get("autoTrainingConfig"));
    let mut config = Map::new();
    if let Some(auto_config) = auto_config {
        config.insert("autoTrainingConfig".into(), auto_config.clone());
    }
    out.insert("solutionUpdateConfig".into(), Value::Object(config));
    let status = update.life.status(now);
    out.insert("status".into(), json!(status.name));
    if let Some(reason) = status.failure {
        out.insert("failureReason".into(), json!(reason));
    }
    out.insert(
        "performAutoTraining".into(),
        update.fields.get("performAutoTraining").cloned().unwrap_or(json!(true)),
    );
    out.insert("performIncrementalUpdate".into(), json!(false));
    out.insert("creationDateTime".into(), super::resources::timestamp(update.life.created));
    out.insert("lastUpdatedDateTime".into(), super::resources::timestamp(status.updated));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_in_days_from_1_to_30() {
        assert_eq!(interval_days(None).unwrap(), 7);
        assert_eq!(interval_days(Some(&json!({}))).unwrap(), 7);
        assert_eq!(interval_days(Some(&json!({"schedulingExpression": "rate(1 day)"}))).unwrap(), 1);
        assert_eq!(interval_days(Some(&json!({"schedulingExpression": "rate(30 days)"}))).unwrap(), 30);
        for bad in ["rate(0 days)", "rate(31 days)", "rate(7 hours)", "cron(0 2 * * ? *)", "rate( days)"] {
            let err = interval_days(Some(&json!({ "schedulingExpression": bad }))).unwrap_err();
            assert_eq!(err.kind, "InvalidInputException", "{bad}");
        }
    }
}
