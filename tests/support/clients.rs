//! AWS SDK clients pointed at the embedded emulator, with its static test credentials. Shared by
//! the end-to-end test and the emulator benchmark (`#[path]`-included).
#![allow(dead_code)]

use recflow::local::emulator::Emulator;

fn creds() -> aws_sdk_s3::config::Credentials {
    aws_sdk_s3::config::Credentials::new("recflow", "recflow-local-secret", None, None, "test")
}

pub fn s3(emulator: &Emulator) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .endpoint_url(emulator.s3.endpoint())
            .force_path_style(true)
            .build(),
    )
}

pub fn personalize(emulator: &Emulator) -> aws_sdk_personalize::Client {
    aws_sdk_personalize::Client::from_conf(
        aws_sdk_personalize::Config::builder()
            .behavior_version(aws_sdk_personalize::config::BehaviorVersion::latest())
            .region(aws_sdk_personalize::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .endpoint_url(emulator.personalize.endpoint())
            .build(),
    )
}

pub fn events(emulator: &Emulator) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .endpoint_url(emulator.events.endpoint())
            .build(),
    )
}

pub const SCHEMA: &str = r#"{"type":"record","name":"Interactions","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":"long"}],"version":"1.0"}"#;
pub const ROLE: &str = "arn:aws:iam::000000000000:role/recflow-personalize";

/// Polls a status until it is terminal; bounded so a broken emulator fails instead of hanging.
pub async fn wait_for<F, Fut>(what: &str, poll_ms: u64, max_polls: u32, mut status: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    for _ in 0..max_polls {
        let s = status().await;
        if ["ACTIVE", "CREATE FAILED", "CREATE STOPPED"].contains(&s.as_str()) {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(poll_ms)).await;
    }
    panic!("{what} never finished");
}

/// A dataset group with its interactions dataset and a solution, the group ACTIVE. Automatic
/// training is off, as in the demo's solution: the workflows retrain themselves, and with
/// Personalize's automatic training on, a run slower than an emulated hour would find an extra
/// version in the group.
pub struct Group {
    pub group: String,
    pub dataset: String,
    pub solution: String,
}

/// The nightly refresh's input for `group` on the demo bucket.
pub fn nightly_input(group: &Group) -> serde_json::Value {
    serde_json::json!({
        "datasetArn": group.dataset,
        "solutionArn": group.solution,
        "roleArn": ROLE,
        "interactionsS3Path": "s3://recflow-demo/interactions/interactions.csv",
        "usersS3Path": "s3://recflow-demo/batch/users.jsonl",
        "outputS3Path": "s3://recflow-demo/batch/output/",
        "picksS3Path": "s3://recflow-demo/picks/",
    })
}

/// Asserts that `group` holds exactly one import job, one solution version and one batch
/// inference job: however often the nightly refresh was stopped, nothing was created twice.
pub async fn assert_one_job_of_each(pz: &aws_sdk_personalize::Client, group: &Group) {
    let imports = pz.list_dataset_import_jobs().dataset_arn(&group.dataset).send().await.unwrap();
    assert_eq!(imports.dataset_import_jobs().len(), 1, "{imports:?}");
    let versions = pz.list_solution_versions().solution_arn(&group.solution).send().await.unwrap();
    assert_eq!(versions.solution_versions().len(), 1, "{versions:?}");
    let version = versions.solution_versions()[0].solution_version_arn().unwrap();
    let batches = pz.list_batch_inference_jobs().solution_version_arn(version).send().await.unwrap();
    assert_eq!(batches.batch_inference_jobs().len(), 1, "{batches:?}");
}

pub async fn dataset_group(pz: &aws_sdk_personalize::Client, name: &str, recipe: &str) -> Group {
    dataset_group_training(pz, name, recipe, false).await
}

/// [`dataset_group`] with the solution's `performAutoTraining` as given.
pub async fn dataset_group_training(
    pz: &aws_sdk_personalize::Client,
    name: &str,
    recipe: &str,
    auto_training: bool,
) -> Group {
    let group = pz.create_dataset_group().name(name).send().await.unwrap().dataset_group_arn.unwrap();
    let schema = pz
        .create_schema()
        .name(format!("{name}-schema"))
        .schema(SCHEMA)
        .send()
        .await
        .unwrap()
        .schema_arn
        .unwrap();
    let dataset = pz
        .create_dataset()
        .name(format!("{name}-interactions"))
        .dataset_group_arn(&group)
        .dataset_type("Interactions")
        .schema_arn(schema)
        .send()
        .await
        .unwrap()
        .dataset_arn
        .unwrap();
    let solution = pz
        .create_solution()
        .name(format!("{name}-solution"))
        .dataset_group_arn(&group)
        .recipe_arn(format!("arn:aws:personalize:::recipe/{recipe}"))
        .perform_auto_training(auto_training)
        .send()
        .await
        .unwrap()
        .solution_arn
        .unwrap();
    let status = wait_for("dataset group", 5, 10_000, || async {
        pz.describe_dataset_group()
            .dataset_group_arn(&group)
            .send()
            .await
            .unwrap()
            .dataset_group
            .unwrap()
            .status
            .unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");
    Group { group, dataset, solution }
}

/// Trains a version of `solution` and waits until it is ACTIVE; gives its ARN.
pub async fn train_and_wait(pz: &aws_sdk_personalize::Client, solution: &str) -> String {
    let version = pz
        .create_solution_version()
        .solution_arn(solution)
        .send()
        .await
        .unwrap()
        .solution_version_arn
        .unwrap();
    let status = wait_for("training", 10, 3000, || async {
        let v = pz.describe_solution_version().solution_version_arn(&version).send().await.unwrap();
        v.solution_version.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");
    version
}

/// Imports `location` into `dataset` as the job `name` and waits until the job is ACTIVE.
pub async fn import_and_wait(
    pz: &aws_sdk_personalize::Client,
    name: &str,
    dataset: &str,
    location: &str,
    poll_ms: u64,
    max_polls: u32,
) -> String {
    let import = pz
        .create_dataset_import_job()
        .job_name(name)
        .dataset_arn(dataset)
        .data_source(aws_sdk_personalize::types::DataSource::builder().data_location(location).build())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .dataset_import_job_arn
        .unwrap();
    let status = wait_for("import", poll_ms, max_polls, || async {
        let j = pz.describe_dataset_import_job().dataset_import_job_arn(&import).send().await.unwrap();
        j.dataset_import_job.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");
    import
}
