//! The demo resources `recflow run --local` works on: a dataset group with an interactions
//! dataset and a user-personalization solution, and the demo data in the local bucket. Made
//! through the real AWS SDK against the emulator, reused when they already exist.

use std::time::Duration;

use aws_sdk_personalize::Client;
use backon::{ConstantBuilder, Retryable};
use serde_json::{Value, json};

use super::emulator::Emulator;
use super::seed::{INTERACTIONS_KEY, SeedOptions, USERS_KEY, write_demo_data};

/// The demo's local bucket.
pub const BUCKET: &str = "recflow-demo";
/// The demo dataset group's and solution's name.
pub const NAME: &str = "recflow-demo";
/// The IAM role the demo passes (the emulator does not check roles).
pub const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/recflow-personalize";
const SCHEMA: &str = r#"{"type":"record","name":"Interactions","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"}],"version":"1.0"}"#;

/// What a demo run needs to know, as the workflows' input fields.
#[derive(Debug, Clone)]
pub struct Demo {
    pub dataset_group_arn: String,
    pub dataset_arn: String,
    pub solution_arn: String,
    /// Whether the demo data was written by this call (the bucket held none).
    pub seeded: bool,
}

impl Demo {
    /// The workflow input for the demo: the ARNs and S3 paths every shipped workflow reads.
    pub fn input(&self) -> Value {
        json!({
            "datasetGroupArn": self.dataset_group_arn,
            "datasetArn": self.dataset_arn,
            "solutionArn": self.solution_arn,
            "roleArn": ROLE_ARN,
            "interactionsS3Path": format!("s3://{BUCKET}/{INTERACTIONS_KEY}"),
            "usersS3Path": format!("s3://{BUCKET}/{USERS_KEY}"),
            "outputS3Path": format!("s3://{BUCKET}/batch/output/"),
            "picksS3Path": format!("s3://{BUCKET}/picks/"),
            // The demo imports the same file every run: replace, do not append it again.
            "importMode": "FULL",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("writing the demo data: {0}")]
    Seed(#[from] std::io::Error),
    #[error("local Personalize: {0}")]
    Personalize(String),
}

fn pz_err(what: &str) -> impl Fn(String) -> DemoError + '_ {
    move |e| DemoError::Personalize(format!("{what}: {e}"))
}

/// Seeds the demo data if the bucket holds none, and creates (or finds) the dataset group,
/// schema, dataset and solution, waiting until they are ACTIVE. The solution is created with
/// `performAutoTraining` off: the workflow retrains, and training twice is paid twice.
/// `max_wait` bounds each wait for ACTIVE (real time).
pub async fn prepare(
    emulator: &Emulator,
    client: &Client,
    seed: &SeedOptions,
    max_wait: Duration,
) -> Result<Demo, DemoError> {
    let s3_root = emulator.s3_root();
    let seeded = !s3_root.join(BUCKET).join(INTERACTIONS_KEY).exists();
    if seeded {
        write_demo_data(&s3_root, BUCKET, seed)?;
    }
    let group = existing_or(
        client.create_dataset_group().name(NAME).send().await.map(|o| o.dataset_group_arn),
        || emulator.personalize_arn("dataset-group", NAME),
    )
    .map_err(pz_err("CreateDatasetGroup"))?;
    let schema = existing_or(
        client
            .create_schema()
            .name(format!("{NAME}-interactions"))
            .schema(SCHEMA)
            .send()
            .await
            .map(|o| o.schema_arn),
        || emulator.personalize_arn("schema", &format!("{NAME}-interactions")),
    )
    .map_err(pz_err("CreateSchema"))?;
    wait_active(max_wait, || async {
        let d = client.describe_dataset_group().dataset_group_arn(&group).send().await;
        d.map(|o| o.dataset_group.and_then(|g| g.status).unwrap_or_default()).map_err(|e| e.to_string())
    })
    .await
    .map_err(pz_err("dataset group"))?;
    let dataset = existing_or(
        client
            .create_dataset()
            .name(format!("{NAME}-interactions"))
            .dataset_group_arn(&group)
            .dataset_type("Interactions")
            .schema_arn(&schema)
            .send()
            .await
            .map(|o| o.dataset_arn),
        || emulator.personalize_arn("dataset", &format!("{NAME}/INTERACTIONS")),
    )
    .map_err(pz_err("CreateDataset"))?;
    let solution = existing_or(
        client
            .create_solution()
            .name(NAME)
            .dataset_group_arn(&group)
            .recipe_arn("arn:aws:personalize:::recipe/aws-user-personalization")
            .perform_auto_training(false)
            .send()
            .await
            .map(|o| o.solution_arn),
        || emulator.personalize_arn("solution", NAME),
    )
    .map_err(pz_err("CreateSolution"))?;
    wait_active(max_wait, || async {
        let d = client.describe_solution().solution_arn(&solution).send().await;
        d.map(|o| o.solution.and_then(|s| s.status).unwrap_or_default()).map_err(|e| e.to_string())
    })
    .await
    .map_err(pz_err("solution"))?;
    Ok(Demo { dataset_group_arn: group, dataset_arn: dataset, solution_arn: solution, seeded })
}

/// The created resource's ARN, or the existing one's when the create says it already exists.
fn existing_or<E: aws_sdk_personalize::error::ProvideErrorMetadata + std::error::Error>(
    created: Result<Option<String>, E>,
    existing: impl FnOnce() -> String,
) -> Result<String, String> {
    match created {
        Ok(Some(arn)) => Ok(arn),
        Ok(None) => Err("the answer named no ARN".into()),
        Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(existing()),
        Err(e) => Err(aws_sdk_personalize::error::DisplayErrorContext(e).to_string()),
    }
}

/// Polls a status until ACTIVE (every 20 ms, at most `max_wait`).
async fn wait_active<F, Fut>(max_wait: Duration, mut status: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let check = || {
        let fut = status();
        async move {
            match fut.await?.as_str() {
                "ACTIVE" => Ok(()),
                s @ ("CREATE FAILED" | "CREATE STOPPED") => Err(format!("ended {s}")),
                s => Err(format!("still {s}")),
            }
        }
    };
    let tries = (max_wait.as_millis() / 20).clamp(1, usize::MAX as u128) as usize;
    let policy = ConstantBuilder::default().with_delay(Duration::from_millis(20)).with_max_times(tries);
    check.retry(policy).when(|e: &String| e.starts_with("still")).await
}
