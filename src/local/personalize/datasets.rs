//! Dataset groups, schemas, datasets and dataset import jobs.
//!
//! What each Create does with each member of its input shape (service model `personalize.json`,
//! API references of the operations):
//!
//! | Operation | Member | Decision |
//! |---|---|---|
//! | CreateDatasetGroup | name | validated (Name pattern, 1-63), names the ARN |
//! | | roleArn, kmsKeyArn | validated (RoleArn / KmsKeyArn patterns), echoed by Describe; no IAM or KMS locally |
//! | | domain | validated (enum), applied: datasets must use a schema of the same domain |
//! | | tags | refused unless empty: the emulator has no tagging operations |
//! | CreateSchema | name, domain | validated; domain applied by CreateDataset |
//! | | schema | validated (Avro record, at most 20,000 characters, supported types), applied by CreateDataset and imports |
//! | CreateDataset | name | validated |
//! | | schemaArn, datasetGroupArn | validated (Arn pattern), must exist; schema checked against the type and domain |
//! | | datasetType | validated (Interactions, Items, Users, Actions, Action_Interactions, any case) |
//! | | tags | refused unless empty |
//! | CreateDatasetImportJob | jobName, datasetArn | validated; datasetArn must exist |
//! | | dataSource.dataLocation | validated (s3:// path), applied; the CSV is checked against the dataset's schema |
//! | | roleArn | validated (RoleArn pattern), echoed |
//! | | importMode | validated (FULL, INCREMENTAL), applied |
//! | | publishAttributionMetricsToS3 | refused when true: the emulator has no metric attributions |
//! | | tags | refused unless empty |

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Shared;
use super::arn::{validate_kms_key_arn, validate_name, validate_role_arn, validate_s3};
use super::lifecycle::{self, Lifecycle};
use super::protocol::{ApiError, Input};
use super::resources::{busy_count, commit, copy_members, describe, list, new_record, require};
use super::schema;
use super::store::Kind;
use crate::local::faults::JobKind;

/// A `tags` list is harmless only when empty: the emulator implements no tagging operations.
pub fn no_tags(value: &Value) -> bool {
    value.as_array().is_some_and(Vec::is_empty)
}

/// Checks the optional `roleArn` member against the model's RoleArn pattern.
pub fn check_role(input: &Input) -> Result<(), ApiError> {
    match input.opt_str("roleArn")? {
        Some(role) => validate_role_arn("roleArn", role),
        None => Ok(()),
    }
}

/// At most this many import jobs may be pending or in progress at once (not adjustable).
const MAX_ACTIVE_IMPORTS: usize = 5;

/// The model's AvroSchema shape: at most 20,000 characters.
const MAX_SCHEMA_CHARS: usize = 20_000;

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
    check_role(input)?;
    if let Some(kms) = input.opt_str("kmsKeyArn")? {
        validate_kms_key_arn("kmsKeyArn", kms)?;
    }
    input.refuse("tags", no_tags)?;
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
    let text = input.req_str("schema")?;
    if text.chars().count() > MAX_SCHEMA_CHARS {
        return Err(ApiError::invalid_input(format!(
            "1 validation error detected: Value at 'schema' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_SCHEMA_CHARS}"
        )));
    }
    schema::parse(text)?;
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
    let schema_arn = input.req_arn("schemaArn")?;
    let group_arn = input.req_arn("datasetGroupArn")?;
    let dataset_type = input.req_str("datasetType")?;
    input.refuse("tags", no_tags)?;
    let type_upper = dataset_type.to_ascii_uppercase();
    if !DATASET_TYPES.contains(&type_upper.as_str()) {
        return Err(ApiError::invalid_input(format!(
            "Dataset type '{dataset_type}' is not one of Interactions, Items, Users, Actions, Action_Interactions."
        )));
    }
    let mut state = shared.store.lock();
    let group = require(&state, Kind::DatasetGroup, group_arn)?;
    let schema_record = require(&state, Kind::Schema, schema_arn)?;
    let fields = schema::parse(schema_record.field_str("schema").unwrap_or_default())?;
    schema::check_dataset(
        &fields,
        &type_upper,
        schema_record.field_str("domain"),
        group.field_str("domain"),
    )?;
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
    let dataset_arn = input.req_arn("datasetArn")?;
    let location = input.req_path(&["dataSource", "dataLocation"])?;
    validate_s3("dataSource.dataLocation", location)?;
    check_role(input)?;
    input.refuse("tags", no_tags)?;
    input.refuse("publishAttributionMetricsToS3", |v| v == &Value::Bool(false))?;
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
    fields.insert("publishAttributionMetricsToS3".into(), json!(false));
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
