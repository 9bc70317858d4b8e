//! The demo resources `recflow run --local` works on: a dataset group with an interactions
//! dataset, a user-personalization solution (and a SIMS and a personalized-ranking one for
//! train-compare), a filter that leaves out what each user already bought, and the demo data in
//! the local bucket. Made through the real AWS SDK against
//! the emulator, reused when they already exist.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use aws_sdk_personalize::Client;
use backon::{ConstantBuilder, Retryable};
use serde_json::{Value, json};

use super::emulator::Emulator;
use super::s3::BucketName;
use super::s3::objects::object_path;
use super::s3::write_object_with;
use super::seed::{INTERACTIONS_KEY, SeedOptions, USERS_KEY, write_demo_data};

/// The demo's local bucket.
pub const BUCKET: &str = "recflow-demo";
/// The demo dataset group's and solution's name.
pub const NAME: &str = "recflow-demo";
/// The demo's SIMS solution (aws-sims), for train-compare.
pub const SIMS_NAME: &str = "recflow-demo-sims";
/// The demo's personalized-ranking solution (aws-personalized-ranking), for train-compare.
pub const RANKING_NAME: &str = "recflow-demo-ranking";
/// SIMS batch input: one `{"itemId": ...}` per item of the interactions, most popular first.
pub const ITEMS_KEY: &str = "batch/items.jsonl";
/// Personalized-ranking batch input: one `{"userId": ..., "itemList": [...]}` per line of the
/// users batch input, each list the [`RANKING_CANDIDATES`] most popular items.
pub const RANKING_KEY: &str = "batch/ranking.jsonl";
/// Items each user's ranking input asks to be ranked.
pub const RANKING_CANDIDATES: usize = 25;
/// The demo's filter for today's picks: leaves out what each user already bought.
pub const FILTER_NAME: &str = "recflow-demo-exclude-purchased";
/// The demo filter's expression (developer guide, "Filter expression examples").
pub const FILTER_EXPRESSION: &str = r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")"#;
/// The IAM role the demo passes (the emulator does not check roles).
pub const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/recflow-personalize";
const SCHEMA: &str = r#"{"type":"record","name":"Interactions","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"}],"version":"1.0"}"#;

/// What a demo run needs to know, as the workflows' input fields.
#[derive(Debug, Clone)]
pub struct Demo {
    pub dataset_group_arn: String,
    pub dataset_arn: String,
    pub solution_arn: String,
    pub sims_solution_arn: String,
    pub ranking_solution_arn: String,
    /// [`FILTER_NAME`]'s ARN, the workflows' `filterArn`.
    pub filter_arn: String,
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
            "filterArn": self.filter_arn,
            "roleArn": ROLE_ARN,
            "interactionsS3Path": format!("s3://{BUCKET}/{INTERACTIONS_KEY}"),
            "usersS3Path": format!("s3://{BUCKET}/{USERS_KEY}"),
            "outputS3Path": format!("s3://{BUCKET}/batch/output/"),
            "picksS3Path": format!("s3://{BUCKET}/picks/"),
            // train-compare's other two solutions and their batch inputs.
            "simsSolutionArn": self.sims_solution_arn,
            "rankingSolutionArn": self.ranking_solution_arn,
            "itemsS3Path": format!("s3://{BUCKET}/{ITEMS_KEY}"),
            "rankingS3Path": format!("s3://{BUCKET}/{RANKING_KEY}"),
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
/// schema, dataset and solutions, waiting until they are ACTIVE. The solutions are created with
/// `performAutoTraining` off: the workflows retrain, and training twice is paid twice. The SIMS
/// and ranking batch inputs are (re)written from the bucket's interactions and users input when
/// they are missing or older than those. `max_wait` bounds each wait for ACTIVE (real time).
pub async fn prepare(
    emulator: &Emulator,
    client: &Client,
    seed: &SeedOptions,
    max_wait: Duration,
) -> Result<Demo, DemoError> {
    let s3_root = emulator.s3_root();
    let bucket = BucketName::parse(BUCKET)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let seeded = !object_path(&s3_root, &bucket, INTERACTIONS_KEY).exists();
    if seeded {
        write_demo_data(&s3_root, bucket.as_str(), seed)?;
    }
    write_compare_inputs(&s3_root, &bucket)?;
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
    let filter = existing_or(
        client
            .create_filter()
            .name(FILTER_NAME)
            .dataset_group_arn(&group)
            .filter_expression(FILTER_EXPRESSION)
            .send()
            .await
            .map(|o| o.filter_arn),
        || emulator.personalize_arn("filter", FILTER_NAME),
    )
    .map_err(pz_err("CreateFilter"))?;
    let solution = create_solution(emulator, client, &group, NAME, "aws-user-personalization").await?;
    // Created before any wait, so that the three solutions become ACTIVE together.
    let sims = create_solution(emulator, client, &group, SIMS_NAME, "aws-sims").await?;
    let ranking = create_solution(emulator, client, &group, RANKING_NAME, "aws-personalized-ranking").await?;
    for arn in [&solution, &sims, &ranking] {
        wait_active(max_wait, || async {
            let d = client.describe_solution().solution_arn(arn).send().await;
            d.map(|o| o.solution.and_then(|s| s.status).unwrap_or_default()).map_err(|e| e.to_string())
        })
        .await
        .map_err(pz_err("solution"))?;
    }
    wait_active(max_wait, || async {
        let d = client.describe_filter().filter_arn(&filter).send().await;
        d.map(|o| o.filter.and_then(|f| f.status).unwrap_or_default()).map_err(|e| e.to_string())
    })
    .await
    .map_err(pz_err("filter"))?;
    Ok(Demo {
        dataset_group_arn: group,
        dataset_arn: dataset,
        solution_arn: solution,
        sims_solution_arn: sims,
        ranking_solution_arn: ranking,
        filter_arn: filter,
        seeded,
    })
}

/// Creates (or finds) the solution `name` with the recipe `recipe` and automatic training off.
async fn create_solution(
    emulator: &Emulator,
    client: &Client,
    group: &str,
    name: &str,
    recipe: &str,
) -> Result<String, DemoError> {
    existing_or(
        client
            .create_solution()
            .name(name)
            .dataset_group_arn(group)
            .recipe_arn(format!("arn:aws:personalize:::recipe/{recipe}"))
            .perform_auto_training(false)
            .send()
            .await
            .map(|o| o.solution_arn),
        || emulator.personalize_arn("solution", name),
    )
    .map_err(pz_err("CreateSolution"))
}

/// Writes [`ITEMS_KEY`] and [`RANKING_KEY`] from the bucket's interactions and users batch input
/// (the synthetic seed's or `local seed --from-csv`'s), unless both are newer than those.
fn write_compare_inputs(s3_root: &Path, bucket: &BucketName) -> std::io::Result<()> {
    let interactions = object_path(s3_root, bucket, INTERACTIONS_KEY);
    let users = object_path(s3_root, bucket, USERS_KEY);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (Some(a), Some(b)) = (modified(&interactions), modified(&users)) else { return Ok(()) };
    let fresh = [ITEMS_KEY, RANKING_KEY]
        .iter()
        .all(|key| modified(&object_path(s3_root, bucket, key)) >= Some(a.max(b)));
    if fresh {
        return Ok(());
    }
    // Items by interaction count, most first (ties by id): every item for SIMS, the head for ranking.
    let mut reader = csv::Reader::from_path(&interactions)?;
    let column =
        reader.headers()?.iter().position(|h| h.eq_ignore_ascii_case("ITEM_ID")).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: no ITEM_ID column", interactions.display()),
            )
        })?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        if let Some(item) = record?.get(column) {
            *counts.entry(item.to_string()).or_default() += 1;
        }
    }
    let mut items: Vec<(String, u64)> = counts.into_iter().collect();
    items.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    write_object_with(s3_root, bucket, ITEMS_KEY, |w| {
        for (item, _) in &items {
            serde_json::to_writer(&mut *w, &json!({ "itemId": item }))?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    let candidates: Vec<&str> = items.iter().take(RANKING_CANDIDATES).map(|(i, _)| i.as_str()).collect();
    let users = BufReader::new(std::fs::File::open(&users)?);
    write_object_with(s3_root, bucket, RANKING_KEY, |w| {
        for line in users.lines() {
            let line = line?;
            let user = serde_json::from_str::<Value>(&line).ok().and_then(|v| v.get("userId").cloned());
            if let Some(user) = user {
                serde_json::to_writer(&mut *w, &json!({ "userId": user, "itemList": candidates }))?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    })
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
