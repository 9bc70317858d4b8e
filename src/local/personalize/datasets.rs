//! Dataset groups, schemas, datasets and dataset import jobs.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Shared;
use super::arn::{validate_name, validate_s3};
use super::lifecycle::{self, Lifecycle};
use super::protocol::{ApiError, Input};
use super::resources::{busy_count, commit, copy_members, describe, list, new_record, require};
use super::store::Kind;
use crate::local::faults::JobKind;

/// At most this many import jobs may be pending or in progress at once (not adjustable).
const MAX_ACTIVE_IMPORTS: usize = 5;

const DATASET_TYPES: &[&str] = &["INTERACTIONS", "ITEMS", "USERS", "ACTIONS", "ACTION_INTERACTIONS"];

fn validate_domain(input: &Input) -> Result<(), ApiError> {
    match input.opt_str("domain")? {
        None | Some("ECOMMERCE" | "VIDEO_ON_DEMAND") => Ok(()),
        Some(other) => Err(ApiError::invalid_input(format!(
            "Value '{other}' at 'domain' failed to satisfy constraint: Member must satisfy enum value set: \
             [ECOMMERCE, VIDEO_ON_DEMAND]"
        ))),
    }
}

pub fn create_dataset_group(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("name")?;
    validate_name("name", name)?;
    validate_domain(input)?;
    let arn = shared.arn(Kind::DatasetGroup, name);
    let mut state = shared.store.lock();
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    let mut fields = Map::new();
    copy_members(input, &mut fields, &["roleArn", "kmsKeyArn", "domain"]);
    let life = Lifecycle::begin(shared, false, 0.0, None);
    commit(shared, &mut state, new_record(Kind::DatasetGroup, arn.clone(), name, fields, Some(life)))?;
    let mut out = Map::new();
    out.insert("datasetGroupArn".into(), json!(arn));
    copy_members(input, &mut out, &["domain"]);
    Ok(Value::Object(out))
}

pub fn describe_dataset_group(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::DatasetGroup, "datasetGroup")
}

pub fn list_dataset_groups(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::DatasetGroup, "datasetGroups", None)
}

pub fn create_schema(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("name")?;
    validate_name("name", name)?;
    validate_domain(input)?;
    let schema = input.req_str("schema")?;
    let parsed: Value = serde_json::from_str(schema)
        .map_err(|e| ApiError::invalid_input(format!("The schema is not valid Avro JSON: {e}")))?;
    if parsed.get("type").and_then(Value::as_str) != Some("record")
        || !parsed.get("fields").is_some_and(Value::is_array)
    {
        return Err(ApiError::invalid_input("The schema must be an Avro record with a fields array."));
    }
    let arn = shared.arn(Kind::Schema, name);
    let mut state = shared.store.lock();
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    let mut fields = Map::new();
    copy_members(input, &mut fields, &["schema", "domain"]);
    commit(shared, &mut state, new_record(Kind::Schema, arn.clone(), name, fields, None))?;
    Ok(json!({ "schemaArn": arn }))
}

pub fn describe_schema(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::Schema, "schema")
}

pub fn list_schemas(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::Schema, "schemas", None)
}

pub fn create_dataset(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("name")?;
    validate_name("name", name)?;
    let schema_arn = input.req_str("schemaArn")?;
    let group_arn = input.req_str("datasetGroupArn")?;
    let dataset_type = input.req_str("datasetType")?;
    let type_upper = dataset_type.to_ascii_uppercase();
    if !DATASET_TYPES.contains(&type_upper.as_str()) {
        return Err(ApiError::invalid_input(format!(
            "Dataset type '{dataset_type}' is not one of Interactions, Items, Users, Actions, Action_Interactions."
        )));
    }
    let mut state = shared.store.lock();
    let group = require(&state, Kind::DatasetGroup, group_arn)?;
    require(&state, Kind::Schema, schema_arn)?;
    let arn = shared.arn(Kind::Dataset, &format!("{}/{type_upper}", group.name));
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    let mut fields = Map::new();
    fields.insert("datasetGroupArn".into(), json!(group_arn));
    fields.insert("datasetType".into(), json!(dataset_type));
    fields.insert("schemaArn".into(), json!(schema_arn));
    let life = Lifecycle::begin(shared, false, 0.0, None);
    commit(shared, &mut state, new_record(Kind::Dataset, arn.clone(), name, fields, Some(life)))?;
    Ok(json!({ "datasetArn": arn }))
}

pub fn describe_dataset(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::Dataset, "dataset")
}

pub fn list_datasets(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::Dataset, "datasets", Some("datasetGroupArn"))
}

pub fn create_dataset_import_job(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    let name = input.req_str("jobName")?;
    validate_name("jobName", name)?;
    let dataset_arn = input.req_str("datasetArn")?;
    let location = input.req_path(&["dataSource", "dataLocation"])?;
    validate_s3("dataSource.dataLocation", location)?;
    let mode = input.opt_str("importMode")?.unwrap_or("FULL");
    if mode != "FULL" && mode != "INCREMENTAL" {
        return Err(ApiError::invalid_input(format!("importMode '{mode}' is not FULL or INCREMENTAL.")));
    }
    let arn = shared.arn(Kind::DatasetImportJob, name);
    let mut state = shared.store.lock();
    require(&state, Kind::Dataset, dataset_arn)?;
    if state.get(&arn).is_some() {
        return Err(ApiError::already_exists(&arn));
    }
    let now = lifecycle::now();
    if busy_count(&state, Kind::DatasetImportJob, now) >= MAX_ACTIVE_IMPORTS {
        return Err(ApiError::limit_exceeded());
    }
    let mut fields = Map::new();
    fields.insert("datasetArn".into(), json!(dataset_arn));
    fields.insert("dataSource".into(), json!({ "dataLocation": location }));
    copy_members(input, &mut fields, &["roleArn"]);
    fields.insert("importMode".into(), json!(mode));
    fields.insert(
        "publishAttributionMetricsToS3".into(),
        json!(input.opt_bool("publishAttributionMetricsToS3")?.unwrap_or(false)),
    );
    let faults = shared.faults.take_job(JobKind::DatasetImportJob);
    let life = Lifecycle::begin(shared, true, faults.extra_seconds, faults.fail);
    commit(shared, &mut state, new_record(Kind::DatasetImportJob, arn.clone(), name, fields, Some(life)))?;
    Ok(json!({ "datasetImportJobArn": arn }))
}

pub fn describe_dataset_import_job(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    describe(shared, input, Kind::DatasetImportJob, "datasetImportJob")
}

pub fn list_dataset_import_jobs(shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    list(shared, input, Kind::DatasetImportJob, "datasetImportJobs", Some("datasetArn"))
}
