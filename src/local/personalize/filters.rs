//! Filters: CreateFilter, DescribeFilter, ListFilters, DeleteFilter (service model shapes
//! CreateFilterRequest, Filter, FilterSummary; ListFiltersResponse's list is `Filters`, with a
//! capital F), and what batch jobs and the runtime need to apply one.
//!
//! CreateFilter parses the expression at once and refuses a malformed one with
//! InvalidInputException naming what is wrong; it also refuses an expression reading a dataset
//! the group lacks or a field its schema lacks (the developer guide's filters read the group's
//! datasets; the wording is ours). A filter goes CREATE PENDING -> ACTIVE like a dataset group.
//! At most 10 filters per dataset group (the service's quotas page), LimitExceededException past
//! it.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Shared;
use super::arn::validate_name;
use super::lifecycle::{self, Lifecycle};
use super::protocol::{ApiError, Input};
use super::resources::{commit, describe, list_where, new_record, require, status};
use super::store::{Kind, Record, State};
use super::work::{dataset_dir, stored_files};
use crate::local::recommender::filter::{FilterData, ItemFilter};
use crate::local::recommender::filter_expression::{self, FilterExpression, Source};
use crate::local::recommender::read_interactions;

/// Filters per dataset group (Personalize's quotas page).
const MAX_FILTERS_PER_GROUP: usize = 10;

/// The dataset ARN of a group's dataset of `kind` (INTERACTIONS, ITEMS, USERS).
fn dataset_arn(group_arn: &str, kind: &str) -> String {
    format!("{}/{kind}", group_arn.replacen(":dataset-group/", ":dataset/", 1))
}

/// The field names of a dataset's schema, upper case; None when the group has no such dataset.
fn schema_fields(state: &State, dataset: &str) -> Option<Vec<String>> {
    let record = state.get(dataset)?;
    let schema = state.get(record.field_str("schemaArn")?)?.field_str("schema")?;
    let parsed: Value = serde_json::from_str(schema).ok()?;
    let fields = parsed.get("fields")?.as_array()?;
    Some(
        fields
            .iter()
            .filter_map(|f| f.get("name").and_then(Value::as_str))
            .map(str::to_ascii_uppercase)
            .collect(),
    )
}

/// Every dataset field the expression reads must exist in the group's schemas.
fn check_fields(state: &State, group_arn: &str, expression: &FilterExpression) -> Result<(), ApiError> {
    let conditions = expression.parts.iter().flat_map(|p| p.conditions());
    for condition in conditions {
        let (kind, name) = match condition.source {
            Source::Interactions => ("INTERACTIONS", "Interactions"),
            Source::Items => ("ITEMS", "Items"),
            Source::CurrentUser => ("USERS", "Users"),
        };
        let Some(fields) = schema_fields(state, &dataset_arn(group_arn, kind)) else {
            return Err(ApiError::invalid_input(format!(
                "Invalid filter expression: it reads the {name} dataset, which the dataset group {group_arn} does not have."
            )));
        };
        if !fields.contains(&condition.field) {
            return Err(ApiError::invalid_input(format!(
                "Invalid filter expression: the {name} dataset's schema has no field {}.",
                condition.field
            )));
        }
    }
    Ok(())
}

pub fn create_filter(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("name")?;
    validate_name("name", name)?;
    let group_arn = input.req_str("datasetGroupArn")?;
    let text = input.req_str("filterExpression")?;
    let expression = filter_expression::parse(text).map_err(|e| ApiError::invalid_input(e.to_string()))?;
    let arn = shared.arn(Kind::Filter, name);
    let mut state = shared.store.lock();
    require(&state, Kind::DatasetGroup, group_arn)?;
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    check_fields(&state, group_arn, &expression)?;
    let in_group =
        state.of_kind(Kind::Filter).filter(|f| f.field_str("datasetGroupArn") == Some(group_arn)).count();
    if in_group >= MAX_FILTERS_PER_GROUP {
        return Err(ApiError::limit_exceeded_with(format!(
            "The dataset group {group_arn} already has {MAX_FILTERS_PER_GROUP} filters, the most it may have."
        )));
    }
    let mut fields = Map::new();
    fields.insert("datasetGroupArn".into(), json!(group_arn));
    fields.insert("filterExpression".into(), json!(text));
    let life = Lifecycle::begin(shared, false, 0.0, None);
    commit(shared, &mut state, new_record(Kind::Filter, arn.clone(), name, fields, Some(life)))?;
    Ok(json!({ "filterArn": arn }))
}

pub fn describe_filter(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::Filter, "filter")
}

pub fn list_filters(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let group = input.opt_str("datasetGroupArn")?;
    list_where(shared, input, Kind::Filter, "Filters", |_, record| {
        group.is_none_or(|g| record.field_str("datasetGroupArn") == Some(g))
    })
}

pub fn delete_filter(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let arn = input.req_str("filterArn")?;
    let mut state = shared.store.lock();
    require(&state, Kind::Filter, arn)?;
    let Some(removed) = state.records.remove(arn) else { return Err(ApiError::not_found(arn)) };
    if let Err(e) = shared.store.persist(&state) {
        state.records.insert(arn.to_string(), removed);
        return Err(ApiError::internal(format!("cannot persist the state: {e}")));
    }
    Ok(json!({}))
}

/// A filter a request or job may use: it exists, is ACTIVE, and belongs to `group_arn` (the
/// dataset group of the solution version it filters). Personalize documents none of these
/// errors' wording; a filter still being created is ResourceInUse (wait and retry), as a
/// solution version still training is.
pub fn require_usable<'s>(
    state: &'s State,
    arn: &str,
    group_arn: Option<&str>,
    now: f64,
) -> Result<&'s Record, ApiError> {
    let filter = require(state, Kind::Filter, arn)?;
    match status(filter, now) {
        Some(s) if s.name == lifecycle::ACTIVE => {}
        Some(s) if s.is_busy() => {
            return Err(ApiError::in_use(format!(
                "The filter {arn} is {}; wait until it is ACTIVE.",
                s.name
            )));
        }
        Some(s) => return Err(ApiError::invalid_input(format!("The filter {arn} is {}.", s.name))),
        None => return Err(ApiError::not_found(arn)),
    }
    if let Some(group) = group_arn
        && filter.field_str("datasetGroupArn") != Some(group)
    {
        return Err(ApiError::invalid_input(format!(
            "The filter {arn} belongs to another dataset group than the solution version's ({group})."
        )));
    }
    Ok(filter)
}

/// Where a filter's expression and data are: enough to build an [`ItemFilter`] off the lock.
#[derive(Debug, Clone)]
pub struct FilterSource {
    pub expression: String,
    interactions: PathBuf,
    items: PathBuf,
    users: PathBuf,
}

impl FilterSource {
    pub fn of(shared: &Shared, filter: &Record) -> Option<FilterSource> {
        let group = filter.field_str("datasetGroupArn")?;
        let dir = |kind: &str| dataset_dir(shared, &dataset_arn(group, kind));
        Some(FilterSource {
            expression: filter.field_str("filterExpression")?.to_string(),
            interactions: dir("INTERACTIONS"),
            items: dir("ITEMS"),
            users: dir("USERS"),
        })
    }

    /// Parses the expression and reads the group's imported data it needs.
    pub fn load(&self) -> Result<ItemFilter, String> {
        let expression = filter_expression::parse(&self.expression).map_err(|e| e.to_string())?;
        let reads =
            |source: Source| expression.parts.iter().flat_map(|p| p.conditions()).any(|c| c.source == source);
        let currents = expression
            .parts
            .iter()
            .flat_map(|p| p.conditions())
            .any(|c| matches!(c.operand, filter_expression::Operand::CurrentItem(_)));
        let mut data = FilterData::new();
        let files = |dir: &Path| stored_files(dir).map_err(|e| format!("internal error: {e}"));
        let open =
            |file: &Path| File::open(file).map(BufReader::new).map_err(|e| format!("internal error: {e}"));
        if reads(Source::Interactions) {
            for file in files(&self.interactions)? {
                data.add_interactions(
                    read_interactions(open(&file)?).map_err(|e| format!("internal error: {e}"))?,
                );
            }
        }
        if reads(Source::Items) || currents {
            for file in files(&self.items)? {
                data.add_items_csv(open(&file)?)?;
            }
        }
        if reads(Source::CurrentUser) {
            for file in files(&self.users)? {
                data.add_users_csv(open(&file)?)?;
            }
        }
        Ok(ItemFilter::new(expression, data))
    }
}
