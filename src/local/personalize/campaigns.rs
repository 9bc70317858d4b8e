//! Campaigns: deployed solution versions, which the runtime (`runtime.rs`) answers from once ACTIVE.
//!
//! CreateCampaign's members: name (validated), solutionVersionArn (validated, must be ACTIVE),
//! minProvisionedTPS (validated, at least 1, echoed: there is no capacity to provision locally),
//! campaignConfig (echoed for the runtime that serves campaigns), tags (refused unless empty).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Shared;
use super::arn::validate_name;
use super::batch::require_active_version;
use super::lifecycle::{self, Lifecycle};
use super::protocol::{ApiError, Input};
use super::resources::{
    begin_update, commit, copy_members, describe, list, list_where, new_record, require, require_updatable,
};
use super::store::Kind;
use crate::local::faults::JobKind;

fn validate_tps(input: &Input) -> Result<Option<i64>, ApiError> {
    let tps = input.opt_i64("minProvisionedTPS")?;
    if tps.is_some_and(|t| t < 1) {
        return Err(ApiError::invalid_input("minProvisionedTPS must be at least 1."));
    }
    Ok(tps)
}

pub fn create_campaign(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("name")?;
    validate_name("name", name)?;
    let version_arn = input.req_arn("solutionVersionArn")?;
    let tps = validate_tps(input)?.unwrap_or(1);
    input.refuse("tags", super::datasets::no_tags)?;
    let arn = shared.arn(Kind::Campaign, name);
    let mut state = shared.store.lock();
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    require_active_version(&state, version_arn, lifecycle::now())?;
    let mut fields = Map::new();
    fields.insert("solutionVersionArn".into(), json!(version_arn));
    fields.insert("minProvisionedTPS".into(), json!(tps));
    copy_members(input, &mut fields, &["campaignConfig"]);
    let faults = shared.faults.take_job(JobKind::Campaign);
    let life = Lifecycle::begin(shared, false, faults.extra_seconds, faults.fail);
    commit(shared, &mut state, new_record(Kind::Campaign, arn.clone(), name, fields, Some(life)))?;
    Ok(json!({ "campaignArn": arn }))
}

pub fn describe_campaign(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::Campaign, "campaign")
}

pub fn list_campaigns(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let Some(solution_arn) = input.opt_arn("solutionArn")? else {
        return list(shared, input, Kind::Campaign, "campaigns", None);
    };
    require(&shared.store.lock(), Kind::Solution, solution_arn)?;
    // Campaigns name their solution version; filter on the version's solution.
    list_where(shared, input, Kind::Campaign, "campaigns", |state, record| {
        record
            .field_str("solutionVersionArn")
            .and_then(|v| state.get(v))
            .is_some_and(|v| v.field_str("solutionArn") == Some(solution_arn))
    })
}

pub fn update_campaign(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_arn("campaignArn")?;
    let tps = validate_tps(input)?;
    let mut state = shared.store.lock();
    let now = lifecycle::now();
    let campaign = require_updatable(&state, Kind::Campaign, "campaign", arn, now)?;
    // The update starts from the campaign's current configuration.
    let mut fields = Map::new();
    for key in ["solutionVersionArn", "minProvisionedTPS", "campaignConfig"] {
        let applied =
            campaign.update.as_ref().and_then(|u| u.fields.get(key)).or_else(|| campaign.fields.get(key));
        if let Some(value) = applied {
            fields.insert(key.into(), value.clone());
        }
    }
    if let Some(version_arn) = input.opt_arn("solutionVersionArn")? {
        require_active_version(&state, version_arn, now)?;
        fields.insert("solutionVersionArn".into(), json!(version_arn));
    }
    if let Some(tps) = tps {
        fields.insert("minProvisionedTPS".into(), json!(tps));
    }
    copy_members(input, &mut fields, &["campaignConfig"]);
    begin_update(shared, &mut state, arn, fields)?;
    Ok(json!({ "campaignArn": arn }))
}
