//! The local Personalize emulator driven by the real aws-sdk-personalize over loopback HTTP (and
//! by raw HTTP where the wire itself is under test).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_personalize::Client;
use aws_sdk_personalize::config::retry::RetryConfig;
use aws_sdk_personalize::error::ProvideErrorMetadata;
use aws_sdk_personalize::operation::create_batch_inference_job::CreateBatchInferenceJobError;
use aws_sdk_personalize::operation::create_batch_segment_job::CreateBatchSegmentJobError;
use aws_sdk_personalize::operation::create_campaign::CreateCampaignError;
use aws_sdk_personalize::operation::create_dataset_group::CreateDatasetGroupError;
use aws_sdk_personalize::operation::create_dataset_import_job::CreateDatasetImportJobError;
use aws_sdk_personalize::operation::create_solution_version::CreateSolutionVersionError;
use aws_sdk_personalize::operation::describe_dataset_group::DescribeDatasetGroupError;
use aws_sdk_personalize::operation::describe_solution_version::DescribeSolutionVersionError;
use aws_sdk_personalize::operation::get_solution_metrics::GetSolutionMetricsError;
use aws_sdk_personalize::types::{
    BatchInferenceJobInput, BatchInferenceJobOutput, BatchSegmentJobInput, BatchSegmentJobOutput, DataSource,
    S3DataConfig,
};
use recflow::local::personalize::{
    Fault, JobKind, OperationFault, PersonalizeConfig, PersonalizeHandle, start,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/signed.rs"]
mod signed;

#[path = "support/clients.rs"]
mod clients;

use clients::{Group, ROLE, SCHEMA};

// ---------------------------------------------------------------------------------------------
// Harness

fn config(dir: &Path, time_scale: f64) -> PersonalizeConfig {
    let mut config = PersonalizeConfig::new(dir);
    config.time_scale = time_scale;
    config.pending_seconds = 1.0;
    config.in_progress_seconds = 2.0;
    config
}

async fn serve(dir: &Path, time_scale: f64) -> PersonalizeHandle {
    serve_with(config(dir, time_scale)).await
}

/// For tests that observe every status: 300 ms phases, long enough for a Describe to land in
/// each even on a loaded machine.
async fn serve_observable(dir: &Path) -> PersonalizeHandle {
    let mut config = config(dir, 10.0);
    config.pending_seconds = 3.0;
    config.in_progress_seconds = 3.0;
    serve_with(config).await
}

async fn serve_with(config: PersonalizeConfig) -> PersonalizeHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(config, listener).await.unwrap()
}

fn client(handle: &PersonalizeHandle, retries: bool) -> Client {
    let creds =
        aws_sdk_personalize::config::Credentials::new("recflow", "recflow-local-secret", None, None, "test");
    let retry = if retries { RetryConfig::standard() } else { RetryConfig::disabled() };
    let conf = aws_sdk_personalize::Config::builder()
        .behavior_version(aws_sdk_personalize::config::BehaviorVersion::latest())
        .region(aws_sdk_personalize::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(handle.endpoint())
        .retry_config(retry)
        .build();
    Client::from_conf(conf)
}

/// The file of `bucket`/`key` in the local S3 of `dir` (`<data_dir>`).
fn stored(dir: &Path, bucket: &str, key: &str) -> PathBuf {
    let bucket = recflow::local::s3::BucketName::parse(bucket).unwrap();
    recflow::local::s3::objects::object_path(&dir.join("s3"), &bucket, key)
}

/// Stores `body` as `bucket`/`key` in the local S3 of `dir` (`<data_dir>`); returns its file.
fn put_object(dir: &Path, bucket: &str, key: &str, body: &str) -> PathBuf {
    let root = dir.join("s3");
    let bucket = recflow::local::s3::BucketName::parse(bucket).unwrap();
    recflow::local::s3::write_object_with(&root, &bucket, key, |w| w.write_all(body.as_bytes())).unwrap();
    recflow::local::s3::objects::object_path(&root, &bucket, key)
}

/// `users` users with `per_user` interactions each over a catalogue of 60 items.
fn interactions_csv(users: usize, per_user: usize) -> String {
    let mut csv = String::from("USER_ID,ITEM_ID,TIMESTAMP\n");
    for u in 0..users {
        for k in 0..per_user {
            let item = (u * 7 + k * k) % 60;
            csv.push_str(&format!("u{u},i{item},{}\n", 1_700_000_000 + (u * per_user + k) as i64));
        }
    }
    csv
}

#[derive(Clone, Copy, Debug)]
enum Res {
    Import,
    Version,
    Inference,
    Segment,
    Campaign,
}

/// (status, failureReason) from Describe.
async fn describe(client: &Client, res: Res, arn: &str) -> (String, Option<String>) {
    macro_rules! get {
        ($call:ident, $arg:ident, $field:ident) => {{
            let out = client.$call().$arg(arn).send().await.unwrap();
            let r = out.$field().unwrap();
            (r.status().unwrap().to_string(), r.failure_reason().map(str::to_string))
        }};
    }
    match res {
        Res::Import => get!(describe_dataset_import_job, dataset_import_job_arn, dataset_import_job),
        Res::Version => get!(describe_solution_version, solution_version_arn, solution_version),
        Res::Inference => get!(describe_batch_inference_job, batch_inference_job_arn, batch_inference_job),
        Res::Segment => get!(describe_batch_segment_job, batch_segment_job_arn, batch_segment_job),
        Res::Campaign => get!(describe_campaign, campaign_arn, campaign),
    }
}

const TERMINAL: &[&str] = &["ACTIVE", "CREATE FAILED", "CREATE STOPPED"];

/// Polls until a terminal status (bounded: 2,000 polls, 20 s); returns every distinct status seen.
async fn wait(client: &Client, res: Res, arn: &str) -> (Vec<String>, Option<String>) {
    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for _ in 0..2000 {
        let (status, reason) = describe(client, res, arn).await;
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if TERMINAL.contains(&status.as_str()) {
            return (seen, reason);
        }
        assert!(tokio::time::Instant::now() < deadline, "{res:?} {arn} never finished: {seen:?}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    panic!("{res:?} {arn} never finished: {seen:?}");
}

async fn wait_active(client: &Client, res: Res, arn: &str) {
    let (seen, reason) = wait(client, res, arn).await;
    assert_eq!(seen.last().map(String::as_str), Some("ACTIVE"), "{res:?}: {seen:?} {reason:?}");
}

/// Dataset group, schema, interactions dataset and a solution with `recipe`; the group ACTIVE.
async fn group(client: &Client, name: &str, recipe: &str) -> Group {
    clients::dataset_group(client, name, recipe).await
}

async fn import(client: &Client, name: &str, dataset: &str, location: &str) -> String {
    client
        .create_dataset_import_job()
        .job_name(name)
        .dataset_arn(dataset)
        .data_source(DataSource::builder().data_location(location).build())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .dataset_import_job_arn
        .unwrap()
}

/// Waits for the solution to be ACTIVE, then asks for a version.
async fn train(client: &Client, solution: &str) -> String {
    for _ in 0..2000 {
        let out = client.describe_solution().solution_arn(solution).send().await.unwrap();
        if out.solution.unwrap().status() == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    client
        .create_solution_version()
        .solution_arn(solution)
        .send()
        .await
        .unwrap()
        .solution_version_arn
        .unwrap()
}

/// A dataset group with imported interactions and an ACTIVE solution version.
async fn trained(client: &Client, dir: &Path, name: &str) -> (Group, String) {
    put_object(dir, "data", &format!("{name}/interactions.csv"), &interactions_csv(40, 30));
    let g = group(client, name, "aws-user-personalization").await;
    let job =
        import(client, &format!("{name}-import"), &g.dataset, &format!("s3://data/{name}/interactions.csv"))
            .await;
    wait_active(client, Res::Import, &job).await;
    let version = train(client, &g.solution).await;
    wait_active(client, Res::Version, &version).await;
    (g, version)
}

fn s3(path: &str) -> S3DataConfig {
    S3DataConfig::builder().path(path).build().unwrap()
}

async fn batch_inference(client: &Client, name: &str, version: &str, input: &str, output: &str) -> String {
    client
        .create_batch_inference_job()
        .job_name(name)
        .solution_version_arn(version)
        .job_input(BatchInferenceJobInput::builder().s3_data_source(s3(input)).build())
        .job_output(BatchInferenceJobOutput::builder().s3_data_destination(s3(output)).build())
        .role_arn(ROLE)
        .num_results(5)
        .send()
        .await
        .unwrap()
        .batch_inference_job_arn
        .unwrap()
}

/// A raw awsJson1_1 call: (HTTP status, lower-cased headers, body). `None` for a dropped
/// connection (no response at all).
async fn raw(
    handle: &PersonalizeHandle,
    method: &str,
    path: &str,
    target: Option<&str>,
    body: &str,
) -> Option<(u16, HashMap<String, String>, String)> {
    let mut stream = tokio::net::TcpStream::connect(handle.addr()).await.unwrap();
    // API calls are signed as the SDK signs them; the admin endpoint takes none.
    let signature: String = target
        .map(|t| signed::sigv4_headers(method, "personalize", signed::SECRET, "localhost", path, t, body))
        .unwrap_or_default()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let target = target.map(|t| format!("X-Amz-Target: {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.1\r\n{target}\
         {signature}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await.unwrap().ok()?;
    if response.is_empty() {
        return None;
    }
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((status, headers, body.to_string()))
}

async fn call(handle: &PersonalizeHandle, op: &str, body: Value) -> Value {
    let (status, _, text) =
        raw(handle, "POST", "/", Some(&format!("AmazonPersonalize.{op}")), &body.to_string()).await.unwrap();
    assert_eq!(status, 200, "{op}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Rows stored for a dataset: one CSV per import job, each with a header.
fn stored_rows(dataset: &Path) -> usize {
    std::fs::read_dir(dataset)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count() - 1)
        .sum()
}

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The whole path by hand

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_train_and_batch_by_hand_with_each_status_in_order() {
    let dir = data_dir();
    let handle = serve_observable(dir.path()).await;
    let client = client(&handle, true);
    let arn_prefix = "arn:aws:personalize:us-east-1:000000000000";

    put_object(dir.path(), "data", "in/part-1.csv", &interactions_csv(20, 30));
    put_object(dir.path(), "data", "in/part-2.csv", &interactions_csv(40, 30).replace("\nu", "\nv"));
    let g = group(&client, "shop", "aws-user-personalization").await;
    assert_eq!(g.group, format!("{arn_prefix}:dataset-group/shop"));
    assert_eq!(g.dataset, format!("{arn_prefix}:dataset/shop/INTERACTIONS"));
    assert_eq!(g.solution, format!("{arn_prefix}:solution/shop-solution"));

    // A prefix imports every file under it.
    let job = import(&client, "shop-import", &g.dataset, "s3://data/in/").await;
    assert_eq!(job, format!("{arn_prefix}:dataset-import-job/shop-import"));
    let (seen, _) = wait(&client, Res::Import, &job).await;
    assert_eq!(seen, ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]);
    assert_eq!(stored_rows(&dir.path().join("personalize/datasets/shop/INTERACTIONS")), 20 * 30 + 40 * 30);

    let version = train(&client, &g.solution).await;
    let id = version.strip_prefix(&format!("{}/", g.solution)).unwrap();
    assert!(id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
    let (seen, _) = wait(&client, Res::Version, &version).await;
    assert_eq!(seen, ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]);
    let described = client.describe_solution_version().solution_version_arn(&version).send().await.unwrap();
    let described = described.solution_version.unwrap();
    assert!(described.last_updated_date_time.unwrap().secs() >= described.creation_date_time.unwrap().secs());
    let metrics = client.get_solution_metrics().solution_version_arn(&version).send().await.unwrap();
    assert!(!metrics.metrics.unwrap().is_empty());
    assert!(dir.path().join(format!("personalize/models/shop-solution/{id}.model")).is_file());

    let users: String = (0..30).map(|u| format!("{{\"userId\": \"u{u}\"}}\n")).collect();
    put_object(dir.path(), "data", "batch/users.json", &users);
    let bij =
        batch_inference(&client, "shop-batch", &version, "s3://data/batch/users.json", "s3://data/out/")
            .await;
    assert_eq!(bij, format!("{arn_prefix}:batch-inference-job/shop-batch"));
    let (seen, _) = wait(&client, Res::Inference, &bij).await;
    assert_eq!(seen, ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]);
    let out = std::fs::read_to_string(stored(dir.path(), "data", "out/users.json.out")).unwrap();
    assert_eq!(out.lines().count(), 30);
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["input"], json!({"userId": "u0"}));
    assert_eq!(first["output"]["recommendedItems"].as_array().unwrap().len(), 5);
    // Only the finished object is under the output path, and no temporary file is left.
    let data = recflow::local::s3::BucketName::parse("data").unwrap();
    let listed = recflow::local::s3::objects::list(&dir.path().join("s3"), &data, "out/").unwrap();
    assert_eq!(listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["out/users.json.out"]);
    let temporaries: Vec<String> = std::fs::read_dir(dir.path().join("s3/data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temporaries.is_empty(), "{temporaries:?}");

    let bsj = client
        .create_batch_segment_job()
        .job_name("shop-segments")
        .solution_version_arn(&version)
        .job_input(BatchSegmentJobInput::builder().s3_data_source(s3("s3://data/batch/")).build())
        .job_output(BatchSegmentJobOutput::builder().s3_data_destination(s3("s3://data/segments")).build())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .batch_segment_job_arn
        .unwrap();
    let (seen, _) = wait(&client, Res::Segment, &bsj).await;
    assert_eq!(seen, ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]);
    assert!(stored(dir.path(), "data", "segments/users.json.out").is_file());

    let campaign = client
        .create_campaign()
        .name("shop-live")
        .solution_version_arn(&version)
        .send()
        .await
        .unwrap()
        .campaign_arn
        .unwrap();
    assert_eq!(campaign, format!("{arn_prefix}:campaign/shop-live"));
    let (seen, _) = wait(&client, Res::Campaign, &campaign).await;
    assert_eq!(seen, ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]);
    client.update_campaign().campaign_arn(&campaign).min_provisioned_tps(3).send().await.unwrap();
    let mut applied = false;
    for _ in 0..2000 {
        let c = client.describe_campaign().campaign_arn(&campaign).send().await.unwrap().campaign.unwrap();
        let update = c.latest_campaign_update.unwrap();
        if update.status() == Some("ACTIVE") {
            assert_eq!(c.min_provisioned_tps, Some(3));
            applied = true;
            break;
        }
        assert_eq!(c.min_provisioned_tps, Some(1), "the update is not applied before it is ACTIVE");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert!(applied);

    // Lists: filters, summaries, pagination.
    let imports = client.list_dataset_import_jobs().dataset_arn(&g.dataset).send().await.unwrap();
    assert_eq!(imports.dataset_import_jobs().len(), 1);
    let versions = client.list_solution_versions().solution_arn(&g.solution).send().await.unwrap();
    assert_eq!(versions.solution_versions()[0].solution_version_arn(), Some(version.as_str()));
    let campaigns = client.list_campaigns().solution_arn(&g.solution).send().await.unwrap();
    assert_eq!(campaigns.campaigns().len(), 1);
    let jobs = client.list_batch_inference_jobs().solution_version_arn(&version).send().await.unwrap();
    assert_eq!(jobs.batch_inference_jobs()[0].status(), Some("ACTIVE"));
    let other = client.create_dataset_group().name("other").send().await.unwrap();
    assert!(other.dataset_group_arn.is_some());
    let page1 = client.list_dataset_groups().max_results(1).send().await.unwrap();
    assert_eq!(page1.dataset_groups().len(), 1);
    let token = page1.next_token.clone().unwrap();
    let page2 = client.list_dataset_groups().max_results(1).next_token(token).send().await.unwrap();
    assert_eq!(page2.dataset_groups().len(), 1);
    assert!(page2.next_token.is_none());
    assert_ne!(page1.dataset_groups()[0].name(), page2.dataset_groups()[0].name());
    let filtered = client.list_solutions().dataset_group_arn(&g.group).send().await.unwrap();
    assert_eq!(filtered.solutions().len(), 1);
    let recipes = client.list_recipes().send().await.unwrap();
    let names: Vec<&str> = recipes.recipes().iter().filter_map(|r| r.name()).collect();
    for expected in [
        "aws-user-personalization",
        "aws-user-personalization-v2",
        "aws-sims",
        "aws-popularity-count",
        "aws-personalized-ranking",
        "aws-personalized-ranking-v2",
        "aws-item-affinity",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert!(
        recipes
            .recipes()
            .iter()
            .all(|r| r.recipe_arn().unwrap().starts_with("arn:aws:personalize:::recipe/aws-"))
    );
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Errors as the SDK's typed errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_out_as_the_sdks_typed_errors() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    let (g, version) = trained(&client, dir.path(), "err").await;

    let err = client.create_dataset_group().name("err").send().await.unwrap_err().into_service_error();
    assert!(matches!(err, CreateDatasetGroupError::ResourceAlreadyExistsException(_)), "{err:?}");

    let missing = "arn:aws:personalize:us-east-1:000000000000:dataset-group/nope";
    let err = client
        .describe_dataset_group()
        .dataset_group_arn(missing)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(err, DescribeDatasetGroupError::ResourceNotFoundException(_)), "{err:?}");
    assert!(err.message().unwrap().contains(missing));
    let missing_version = format!("{}/deadbeef", g.solution);
    let err = client.describe_solution_version().solution_version_arn(&missing_version).send().await;
    let err = err.unwrap_err().into_service_error();
    assert!(matches!(err, DescribeSolutionVersionError::ResourceNotFoundException(_)), "{err:?}");

    for bad in ["-starts-with-dash", "has space", &"x".repeat(64)] {
        let err = client.create_dataset_group().name(bad).send().await.unwrap_err().into_service_error();
        assert!(matches!(err, CreateDatasetGroupError::InvalidInputException(_)), "{bad}: {err:?}");
    }
    for bad in ["https://example.com/x.csv", "s3://", "s3://bucket", "/local/file.csv"] {
        let err = client
            .create_dataset_import_job()
            .job_name("bad-path")
            .dataset_arn(&g.dataset)
            .data_source(DataSource::builder().data_location(bad).build())
            .role_arn(ROLE)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(matches!(err, CreateDatasetImportJobError::InvalidInputException(_)), "{bad}: {err:?}");
    }
    for n in [0, 501] {
        let err = client
            .create_batch_inference_job()
            .job_name("bad-n")
            .solution_version_arn(&version)
            .job_input(BatchInferenceJobInput::builder().s3_data_source(s3("s3://data/x.json")).build())
            .job_output(BatchInferenceJobOutput::builder().s3_data_destination(s3("s3://data/out/")).build())
            .role_arn(ROLE)
            .num_results(n)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(matches!(err, CreateBatchInferenceJobError::InvalidInputException(_)), "{n}: {err:?}");
    }

    // A training asked for while an import into the group is in progress.
    handle.faults().inject(Fault::SlowNextJob { kind: JobKind::DatasetImportJob, seconds: 1000.0 });
    let slow = import(&client, "err-slow-import", &g.dataset, "s3://data/err/interactions.csv").await;
    let err = client.create_solution_version().solution_arn(&g.solution).send().await.unwrap_err();
    let err = err.into_service_error();
    assert!(matches!(err, CreateSolutionVersionError::ResourceInUseException(_)), "{err:?}");
    assert!(err.message().unwrap().contains(&slow));

    // Jobs and campaigns asked for on a version still training.
    let (g2, _) = (group(&client, "err2", "aws-sims").await, ());
    put_object(dir.path(), "data", "err2.csv", &interactions_csv(40, 30));
    let job = import(&client, "err2-import", &g2.dataset, "s3://data/err2.csv").await;
    wait_active(&client, Res::Import, &job).await;
    handle.faults().inject(Fault::SlowNextJob { kind: JobKind::SolutionVersion, seconds: 1000.0 });
    let training = train(&client, &g2.solution).await;
    let err = client
        .create_batch_inference_job()
        .job_name("too-early")
        .solution_version_arn(&training)
        .job_input(BatchInferenceJobInput::builder().s3_data_source(s3("s3://data/x.json")).build())
        .job_output(BatchInferenceJobOutput::builder().s3_data_destination(s3("s3://data/out/")).build())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(err, CreateBatchInferenceJobError::ResourceInUseException(_)), "{err:?}");
    let err = client
        .create_batch_segment_job()
        .job_name("too-early")
        .solution_version_arn(&training)
        .job_input(BatchSegmentJobInput::builder().s3_data_source(s3("s3://data/x.json")).build())
        .job_output(BatchSegmentJobOutput::builder().s3_data_destination(s3("s3://data/out/")).build())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(err, CreateBatchSegmentJobError::ResourceInUseException(_)), "{err:?}");
    let err = client.create_campaign().name("too-early").solution_version_arn(&training).send().await;
    let err = err.unwrap_err().into_service_error();
    assert!(matches!(err, CreateCampaignError::ResourceInUseException(_)), "{err:?}");
    let err = client.get_solution_metrics().solution_version_arn(&training).send().await.unwrap_err();
    let err = err.into_service_error();
    assert!(matches!(err, GetSolutionMetricsError::ResourceInUseException(_)), "{err:?}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_concurrent_import_or_batch_inference_job_is_limit_exceeded() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    let (g, version) = trained(&client, dir.path(), "lim").await;
    for i in 0..5 {
        handle.faults().inject(Fault::SlowNextJob { kind: JobKind::DatasetImportJob, seconds: 1000.0 });
        import(&client, &format!("lim-import-{i}"), &g.dataset, "s3://data/lim/interactions.csv").await;
    }
    let err = client
        .create_dataset_import_job()
        .job_name("lim-import-6")
        .dataset_arn(&g.dataset)
        .data_source(DataSource::builder().data_location("s3://data/lim/interactions.csv").build())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(err, CreateDatasetImportJobError::LimitExceededException(_)), "{err:?}");
    assert_eq!(err.message(), Some("More than 5 resources with PENDING or IN_PROGRESS status."));

    put_object(dir.path(), "data", "lim/users.json", "{\"userId\": \"u1\"}\n");
    for i in 0..5 {
        handle.faults().inject(Fault::SlowNextJob { kind: JobKind::BatchInferenceJob, seconds: 1000.0 });
        batch_inference(
            &client,
            &format!("lim-batch-{i}"),
            &version,
            "s3://data/lim/users.json",
            "s3://data/o/",
        )
        .await;
    }
    let err = client
        .create_batch_inference_job()
        .job_name("lim-batch-6")
        .solution_version_arn(&version)
        .job_input(BatchInferenceJobInput::builder().s3_data_source(s3("s3://data/lim/users.json")).build())
        .job_output(BatchInferenceJobOutput::builder().s3_data_destination(s3("s3://data/o/")).build())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(err, CreateBatchInferenceJobError::LimitExceededException(_)), "{err:?}");
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Jobs that fail or stop

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fail_with_the_services_reasons() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    let g = group(&client, "fail", "aws-user-personalization").await;

    // A missing file is accepted at create and fails the job.
    let job = import(&client, "fail-missing", &g.dataset, "s3://data/nothing-here.csv").await;
    let (seen, reason) = wait(&client, Res::Import, &job).await;
    assert_eq!(seen.last().unwrap(), "CREATE FAILED");
    assert!(reason.unwrap().contains("s3://data/nothing-here.csv"));

    // A bad row names its line.
    put_object(
        dir.path(),
        "data",
        "bad.csv",
        "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\nu2,i2,yesterday\n",
    );
    let job = import(&client, "fail-bad-row", &g.dataset, "s3://data/bad.csv").await;
    let (seen, reason) = wait(&client, Res::Import, &job).await;
    assert_eq!(seen.last().unwrap(), "CREATE FAILED");
    assert!(reason.as_deref().unwrap().contains("line 3"), "{reason:?}");

    // Too little data: the recommender's reason.
    put_object(dir.path(), "data", "small.csv", &interactions_csv(10, 5));
    let job = import(&client, "fail-small", &g.dataset, "s3://data/small.csv").await;
    wait_active(&client, Res::Import, &job).await;
    let version = train(&client, &g.solution).await;
    let (seen, reason) = wait(&client, Res::Version, &version).await;
    assert_eq!(seen.last().unwrap(), "CREATE FAILED");
    // Matched rather than unwrap_err: the recommender's Model need not implement Debug.
    let expected = match recflow::local::recommender::train(
        recflow::local::recommender::Recipe::UserPersonalization,
        &recflow::local::recommender::read_interactions(interactions_csv(10, 5).as_bytes()).unwrap(),
    ) {
        Ok(_) => panic!("50 interactions must be too few to train on"),
        Err(e) => e.to_string(),
    };
    assert_eq!(reason.unwrap(), expected);
    let err = client.get_solution_metrics().solution_version_arn(&version).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), GetSolutionMetricsError::ResourceInUseException(_)));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_training_goes_through_stopping_to_stopped() {
    let dir = data_dir();
    let handle = serve_observable(dir.path()).await;
    let client = client(&handle, false);
    let g = group(&client, "stop", "aws-popularity-count").await;
    put_object(dir.path(), "data", "stop.csv", &interactions_csv(40, 30));
    let job = import(&client, "stop-import", &g.dataset, "s3://data/stop.csv").await;
    wait_active(&client, Res::Import, &job).await;
    handle.faults().inject(Fault::SlowNextJob { kind: JobKind::SolutionVersion, seconds: 1000.0 });
    let version = train(&client, &g.solution).await;
    client.stop_solution_version_creation().solution_version_arn(&version).send().await.unwrap();
    let (seen, _) = wait(&client, Res::Version, &version).await;
    assert_eq!(seen, ["CREATE STOPPING", "CREATE STOPPED"]);
    let err = client.stop_solution_version_creation().solution_version_arn(&version).send().await;
    assert!(err.is_err(), "a stopped version cannot be stopped again");
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Restart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart_and_unfinished_jobs_finish_afterwards() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let first = client(&handle, false);
    let (g, version) = trained(&first, dir.path(), "keep").await;
    // An import still in progress when the server stops: a slow job's work waits 25 emulated
    // seconds (500 ms) into CREATE IN_PROGRESS.
    handle.faults().inject(Fault::SlowNextJob { kind: JobKind::DatasetImportJob, seconds: 25.0 });
    put_object(dir.path(), "data", "more.csv", &interactions_csv(30, 10).replace("\nu", "\nw"));
    let job = first
        .create_dataset_import_job()
        .job_name("keep-more")
        .dataset_arn(&g.dataset)
        .data_source(DataSource::builder().data_location("s3://data/more.csv").build())
        .import_mode(aws_sdk_personalize::types::ImportMode::Incremental)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .dataset_import_job_arn
        .unwrap();
    for _ in 0..2000 {
        if describe(&first, Res::Import, &job).await.0 == "CREATE IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(describe(&first, Res::Import, &job).await.0, "CREATE IN_PROGRESS");
    handle.shutdown().await;
    let stored = dir.path().join("personalize/datasets/keep/INTERACTIONS");
    let before = stored_rows(&stored);

    let handle = serve(dir.path(), 50.0).await;
    let second = client(&handle, false);
    assert_eq!(describe(&second, Res::Version, &version).await.0, "ACTIVE");
    let metrics = second.get_solution_metrics().solution_version_arn(&version).send().await.unwrap();
    assert!(!metrics.metrics.unwrap().is_empty());
    let groups = second.list_dataset_groups().send().await.unwrap();
    assert_eq!(groups.dataset_groups().len(), 1);
    let err = second.create_dataset_group().name("keep").send().await.unwrap_err().into_service_error();
    assert!(matches!(err, CreateDatasetGroupError::ResourceAlreadyExistsException(_)));
    let (seen, reason) = wait(&second, Res::Import, &job).await;
    assert_eq!(seen.last().map(String::as_str), Some("ACTIVE"), "{seen:?} {reason:?}");
    // The resumed import did its work: the incremental rows were appended.
    assert_eq!(before, 40 * 30, "the import's work was not done before the shutdown");
    assert_eq!(stored_rows(&stored), 40 * 30 + 30 * 10);
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_throttle_fail_drop_and_clear() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);

    // Over the admin endpoint: throttling, twice.
    let body = json!({"operation": "CreateDatasetGroup", "fault": "throttle", "count": 2}).to_string();
    let (status, _, _) = raw(&handle, "POST", "/__recflow/faults", None, &body).await.unwrap();
    assert_eq!(status, 200);
    for _ in 0..2 {
        let err = client.create_dataset_group().name("f").send().await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429));
        assert_eq!(err.into_service_error().code(), Some("ThrottlingException"));
    }
    client.create_dataset_group().name("f").send().await.unwrap();

    // Through the handle: HTTP 500.
    handle.faults().inject(Fault::Operation {
        operation: "ListDatasetGroups".into(),
        fault: OperationFault::Http500,
        count: 1,
    });
    let err = client.list_dataset_groups().send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    client.list_dataset_groups().send().await.unwrap();

    // The connection closed without a response.
    handle.faults().inject(Fault::Operation {
        operation: "ListRecipes".into(),
        fault: OperationFault::Drop,
        count: 1,
    });
    let err = client.list_recipes().send().await.unwrap_err();
    assert!(matches!(err, aws_sdk_personalize::error::SdkError::DispatchFailure(_)), "{err:?}");
    client.list_recipes().send().await.unwrap();
    handle.faults().inject(Fault::Operation {
        operation: "ListSchemas".into(),
        fault: OperationFault::Drop,
        count: 1,
    });
    assert!(raw(&handle, "POST", "/", Some("AmazonPersonalize.ListSchemas"), "{}").await.is_none());

    // The next job of a kind fails with the given reason (admin endpoint), or is slow (handle).
    let g = group(&client, "faulty", "aws-user-personalization").await;
    put_object(dir.path(), "data", "f.csv", &interactions_csv(40, 30));
    let body = json!({"failNextJob": "DatasetImportJob", "reason": "injected: bucket policy denies access"});
    raw(&handle, "POST", "/__recflow/faults", None, &body.to_string()).await.unwrap();
    let job = import(&client, "faulty-1", &g.dataset, "s3://data/f.csv").await;
    let (seen, reason) = wait(&client, Res::Import, &job).await;
    assert_eq!(seen.last().unwrap(), "CREATE FAILED");
    assert_eq!(reason.as_deref(), Some("injected: bucket policy denies access"));
    let job = import(&client, "faulty-2", &g.dataset, "s3://data/f.csv").await;
    wait_active(&client, Res::Import, &job).await;

    let body = json!({"slowNextJob": "SolutionVersion", "seconds": 1000});
    raw(&handle, "POST", "/__recflow/faults", None, &body.to_string()).await.unwrap();
    let slow = train(&client, &g.solution).await;
    let normal = client.create_solution_version().solution_arn(&g.solution).send().await.unwrap();
    wait_active(&client, Res::Version, normal.solution_version_arn().unwrap()).await;
    assert_eq!(describe(&client, Res::Version, &slow).await.0, "CREATE IN_PROGRESS");

    handle.faults().inject(Fault::FailNextJob { kind: JobKind::SolutionVersion, reason: "injected".into() });
    let failed = client.create_solution_version().solution_arn(&g.solution).send().await.unwrap();
    let (_, reason) = wait(&client, Res::Version, failed.solution_version_arn().unwrap()).await;
    assert_eq!(reason.as_deref(), Some("injected"));

    // DELETE clears every armed fault.
    let body = json!({"operation": "ListDatasetGroups", "fault": "http500", "count": 5});
    raw(&handle, "POST", "/__recflow/faults", None, &body.to_string()).await.unwrap();
    let (status, _, _) = raw(&handle, "DELETE", "/__recflow/faults", None, "").await.unwrap();
    assert_eq!(status, 200);
    client.list_dataset_groups().send().await.unwrap();
    let (status, _, text) =
        raw(&handle, "POST", "/__recflow/faults", None, r#"{"fault": "boom"}"#).await.unwrap();
    assert_eq!(status, 400, "{text}");
    // An absurd delay is refused instead of stalling (or crashing) the job runner.
    let body = r#"{"slowNextJob": "SolutionVersion", "seconds": 1e300}"#;
    let (status, _, text) = raw(&handle, "POST", "/__recflow/faults", None, body).await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("one year"), "{text}");
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The wire

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_operations_and_malformed_bodies_get_clear_errors() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let (status, headers, body) =
        raw(&handle, "POST", "/", Some("AmazonPersonalize.CreateRecommender"), "{}").await.unwrap();
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "UnknownOperationException");
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    assert!(body["message"].as_str().unwrap().contains("CreateRecommender"));

    let (status, headers, _) = raw(&handle, "POST", "/", Some(""), "{}").await.unwrap();
    assert_eq!((status, headers["x-amzn-errortype"].as_str()), (400, "UnknownOperationException"));
    // Unsigned, a request is refused before its operation is looked at, as on AWS.
    let (status, headers, _) = raw(&handle, "POST", "/", None, "{}").await.unwrap();
    assert_eq!((status, headers["x-amzn-errortype"].as_str()), (400, "MissingAuthenticationTokenException"));
    let (status, headers, _) = raw(&handle, "POST", "/", Some("Other.ListRecipes"), "{}").await.unwrap();
    assert_eq!((status, headers["x-amzn-errortype"].as_str()), (400, "UnknownOperationException"));

    for malformed in ["{\"name\": ", "[1, 2]", "{\"name\": 5}"] {
        let (status, headers, body) =
            raw(&handle, "POST", "/", Some("AmazonPersonalize.CreateDatasetGroup"), malformed).await.unwrap();
        assert_eq!(status, 400, "{malformed}");
        assert_eq!(headers["x-amzn-errortype"], "SerializationException", "{malformed}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["__type"], "SerializationException");
    }
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Responses against the service model

fn model() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/service-models/personalize.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every member of `value` is a member of `shape` (recursively) with the model's type.
fn check_shape(model: &Value, shape_name: &str, value: &Value, at: &str, problems: &mut Vec<String>) {
    let shape = &model["shapes"][shape_name];
    let kind = shape["type"].as_str().unwrap_or("?");
    let ok = match kind {
        "structure" => {
            if let Some(object) = value.as_object() {
                for (key, member) in object {
                    match shape["members"].get(key) {
                        Some(m) => check_shape(
                            model,
                            m["shape"].as_str().unwrap(),
                            member,
                            &format!("{at}.{key}"),
                            problems,
                        ),
                        None => problems.push(format!("{at}.{key}: not a member of {shape_name}")),
                    }
                }
                true
            } else {
                false
            }
        }
        "list" => match value.as_array() {
            Some(items) => {
                let member = shape["member"]["shape"].as_str().unwrap();
                for (i, item) in items.iter().enumerate() {
                    check_shape(model, member, item, &format!("{at}[{i}]"), problems);
                }
                true
            }
            None => false,
        },
        "map" => match value.as_object() {
            Some(entries) => {
                let member = shape["value"]["shape"].as_str().unwrap();
                for (key, item) in entries {
                    check_shape(model, member, item, &format!("{at}[{key}]"), problems);
                }
                true
            }
            None => false,
        },
        "string" => match value.as_str() {
            Some(s) => {
                if let Some(allowed) = shape["enum"].as_array()
                    && !allowed.iter().any(|a| a == s)
                {
                    problems.push(format!("{at}: '{s}' is not in the enum of {shape_name}"));
                }
                true
            }
            None => false,
        },
        "integer" | "long" => value.is_i64() || value.is_u64(),
        "double" | "float" => value.is_number(),
        "boolean" => value.is_boolean(),
        // Timestamps on awsJson1_1 are epoch seconds in JSON numbers.
        "timestamp" => value.is_number(),
        _ => false,
    };
    if !ok {
        problems.push(format!("{at}: {value} is not a {kind} ({shape_name})"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_matches_the_service_model() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    let mut responses: Vec<(&str, Value)> = Vec::new();
    macro_rules! op {
        ($op:expr, $body:expr) => {{
            let out = call(&handle, $op, $body).await;
            responses.push(($op, out.clone()));
            out
        }};
    }
    let group = op!("CreateDatasetGroup", json!({"name": "model", "roleArn": ROLE}));
    let group = group["datasetGroupArn"].as_str().unwrap().to_string();
    let schema = op!("CreateSchema", json!({"name": "model-schema", "schema": SCHEMA}));
    let schema = schema["schemaArn"].as_str().unwrap().to_string();
    let dataset = op!(
        "CreateDataset",
        json!({"name": "model-ds", "schemaArn": schema, "datasetGroupArn": group, "datasetType": "Interactions"})
    );
    let dataset = dataset["datasetArn"].as_str().unwrap().to_string();
    let solution = op!(
        "CreateSolution",
        json!({"name": "model-sol", "datasetGroupArn": group, "recipeArn": "arn:aws:personalize:::recipe/aws-sims",
               "solutionConfig": {"autoTrainingConfig": {"schedulingExpression": "rate(3 days)"}}})
    );
    let solution = solution["solutionArn"].as_str().unwrap().to_string();
    put_object(dir.path(), "data", "model.csv", &interactions_csv(40, 30));
    let job = op!(
        "CreateDatasetImportJob",
        json!({"jobName": "model-import", "datasetArn": dataset, "dataSource": {"dataLocation": "s3://data/model.csv"},
               "roleArn": ROLE, "importMode": "FULL"})
    );
    let job = job["datasetImportJobArn"].as_str().unwrap().to_string();
    wait_active(&client, Res::Import, &job).await;
    let version = train(&client, &solution).await;
    wait_active(&client, Res::Version, &version).await;
    let named = op!(
        "CreateSolutionVersion",
        json!({"solutionArn": solution, "name": "model-v2", "trainingMode": "FULL"})
    );
    let named = named["solutionVersionArn"].as_str().unwrap().to_string();
    op!("StopSolutionVersionCreation", json!({"solutionVersionArn": named}));
    put_object(dir.path(), "data", "items.json", "{\"itemId\": \"i1\"}\nnot json\n");
    let bij = op!(
        "CreateBatchInferenceJob",
        json!({"jobName": "model-bij", "solutionVersionArn": version, "numResults": 10, "roleArn": ROLE,
               "jobInput": {"s3DataSource": {"path": "s3://data/items.json"}},
               "jobOutput": {"s3DataDestination": {"path": "s3://data/model-out/"}}})
    );
    let bij = bij["batchInferenceJobArn"].as_str().unwrap().to_string();
    let bsj = op!(
        "CreateBatchSegmentJob",
        json!({"jobName": "model-bsj", "solutionVersionArn": version, "roleArn": ROLE,
               "jobInput": {"s3DataSource": {"path": "s3://data/items.json"}},
               "jobOutput": {"s3DataDestination": {"path": "s3://data/model-seg/"}}})
    );
    let bsj = bsj["batchSegmentJobArn"].as_str().unwrap().to_string();
    let campaign = op!(
        "CreateCampaign",
        json!({"name": "model-camp", "solutionVersionArn": version, "minProvisionedTPS": 2,
               "campaignConfig": {"enableMetadataWithRecommendations": false}})
    );
    let campaign = campaign["campaignArn"].as_str().unwrap().to_string();
    wait_active(&client, Res::Inference, &bij).await;
    wait_active(&client, Res::Segment, &bsj).await;
    wait_active(&client, Res::Campaign, &campaign).await;
    op!("UpdateCampaign", json!({"campaignArn": campaign, "minProvisionedTPS": 4}));
    let items_schema = op!(
        "CreateSchema",
        json!({"name": "model-items", "schema": r#"{"type":"record","name":"Items","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"ITEM_ID","type":"string"},{"name":"GENRE","type":"string","categorical":true}],"version":"1.0"}"#})
    );
    op!(
        "CreateDataset",
        json!({"name": "model-items", "schemaArn": items_schema["schemaArn"], "datasetGroupArn": group, "datasetType": "Items"})
    );
    let filter = op!(
        "CreateFilter",
        json!({"name": "model-filter", "datasetGroupArn": group, "filterExpression": "EXCLUDE ItemID WHERE Items.GENRE IN ($GENRES)"})
    );
    op!("DescribeFilter", json!({"filterArn": filter["filterArn"]}));
    op!("ListFilters", json!({"datasetGroupArn": group}));
    op!("DeleteFilter", json!({"filterArn": filter["filterArn"]}));
    op!("UpdateSolution", json!({"solutionArn": solution, "performAutoTraining": false}));

    op!("DescribeDatasetGroup", json!({"datasetGroupArn": group}));
    op!("ListDatasetGroups", json!({"maxResults": 10}));
    op!("DescribeSchema", json!({"schemaArn": schema}));
    op!("ListSchemas", json!({}));
    op!("DescribeDataset", json!({"datasetArn": dataset}));
    op!("ListDatasets", json!({"datasetGroupArn": group}));
    op!("DescribeSolution", json!({"solutionArn": solution}));
    op!("ListSolutions", json!({"datasetGroupArn": group}));
    op!("DescribeDatasetImportJob", json!({"datasetImportJobArn": job}));
    op!("ListDatasetImportJobs", json!({"datasetArn": dataset}));
    op!("DescribeSolutionVersion", json!({"solutionVersionArn": version}));
    op!("DescribeSolutionVersion", json!({"solutionVersionArn": named}));
    let versions = op!("ListSolutionVersions", json!({"solutionArn": solution, "maxResults": 1}));
    op!("ListSolutionVersions", json!({"solutionArn": solution, "nextToken": versions["nextToken"]}));
    op!("GetSolutionMetrics", json!({"solutionVersionArn": version}));
    op!("DescribeBatchInferenceJob", json!({"batchInferenceJobArn": bij}));
    op!("ListBatchInferenceJobs", json!({"solutionVersionArn": version}));
    op!("DescribeBatchSegmentJob", json!({"batchSegmentJobArn": bsj}));
    op!("ListBatchSegmentJobs", json!({}));
    op!("DescribeCampaign", json!({"campaignArn": campaign}));
    op!("ListCampaigns", json!({"solutionArn": solution}));
    op!("ListRecipes", json!({"recipeProvider": "SERVICE"}));
    op!("ListRecipes", json!({"domain": "VIDEO_ON_DEMAND"}));

    let model = model();
    let mut problems = Vec::new();
    let mut operations = std::collections::BTreeSet::new();
    for (op, response) in &responses {
        operations.insert(*op);
        match model["operations"][op]["output"]["shape"].as_str() {
            Some(shape) => check_shape(&model, shape, response, op, &mut problems),
            None => assert_eq!(response, &json!({}), "{op} has no output shape"),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(operations.len(), 36, "{operations:?}");
    // The checker itself rejects what the model does not define.
    let mut caught = Vec::new();
    check_shape(
        &model,
        "DescribeDatasetGroupResponse",
        &json!({"datasetGroup": {"bogus": 1, "creationDateTime": "x"}}),
        "t",
        &mut caught,
    );
    assert_eq!(caught.len(), 2, "{caught:?}");
    // The Describe of a failed job carries a failureReason and both timestamps.
    let described = call(&handle, "DescribeSolutionVersion", json!({"solutionVersionArn": named})).await;
    let sv = &described["solutionVersion"];
    assert!(sv["creationDateTime"].is_number() && sv["lastUpdatedDateTime"].is_number(), "{sv}");
    assert_eq!(sv["name"], "model-v2");
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Every member honoured or refused; schemas; ARNs; deletes

/// A raw call expected to fail: (`__type`, message).
async fn call_err(handle: &PersonalizeHandle, op: &str, body: Value) -> (String, String) {
    let (status, _, text) =
        raw(handle, "POST", "/", Some(&format!("AmazonPersonalize.{op}")), &body.to_string()).await.unwrap();
    assert_eq!(status, 400, "{op} {body}: {text}");
    let error: Value = serde_json::from_str(&text).unwrap();
    (error["__type"].as_str().unwrap().to_string(), error["message"].as_str().unwrap().to_string())
}

/// A dataset group holding one `dataset_type` dataset of `schema`: (group, dataset).
async fn dataset_of(
    handle: &PersonalizeHandle,
    name: &str,
    dataset_type: &str,
    schema: &str,
) -> (String, String) {
    let group = call(handle, "CreateDatasetGroup", json!({"name": name})).await;
    let group = group["datasetGroupArn"].as_str().unwrap().to_string();
    let schema =
        call(handle, "CreateSchema", json!({"name": format!("{name}-schema"), "schema": schema})).await;
    let dataset = call(
        handle,
        "CreateDataset",
        json!({"name": format!("{name}-ds"), "datasetGroupArn": group, "datasetType": dataset_type,
               "schemaArn": schema["schemaArn"]}),
    )
    .await;
    (group, dataset["datasetArn"].as_str().unwrap().to_string())
}

const WITH_EVENTS: &str = r#"{"type":"record","name":"Interactions","fields":[{"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"},{"name":"EVENT_VALUE","type":["null","float"]}],"version":"1.0"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_fail_on_csvs_that_do_not_fit_the_datasets_schema() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    let (_, dataset) = dataset_of(&handle, "cols", "Interactions", WITH_EVENTS).await;

    // EVENT_TYPE is a plain "string": its column is required.
    put_object(dir.path(), "data", "no-events.csv", &interactions_csv(5, 2));
    let job = import(&client, "cols-missing", &dataset, "s3://data/no-events.csv").await;
    let (seen, reason) = wait(&client, Res::Import, &job).await;
    assert_eq!(seen.last().unwrap(), "CREATE FAILED");
    assert_eq!(
        reason.as_deref(),
        Some("no-events.csv: Input CSV is missing the following columns: [EVENT_TYPE]")
    );

    // EVENT_VALUE is nullable: it may be absent or empty, but a value must be a float.
    let good = "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu1,i1,1700000000,click,\nu2,i2,1700000001,buy,2.5\n";
    put_object(dir.path(), "data", "good.csv", good);
    wait_active(&client, Res::Import, &import(&client, "cols-good", &dataset, "s3://data/good.csv").await)
        .await;
    put_object(
        dir.path(),
        "data",
        "lean.csv",
        "user_id,item_id,timestamp,event_type\nu1,i1,1700000000,click\n",
    );
    wait_active(&client, Res::Import, &import(&client, "cols-lean", &dataset, "s3://data/lean.csv").await)
        .await;
    for (file, body, expected) in [
        (
            "value.csv",
            "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu1,i1,1700000000,click,lots\n",
            "value.csv: line 2: the value 'lots' in column EVENT_VALUE is not of type float",
        ),
        (
            "time.csv",
            "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,i1,1700000000,click\nu1,i1,noon,click\n",
            "time.csv: line 3: the value 'noon' in column TIMESTAMP is not of type long",
        ),
        (
            "empty.csv",
            "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,i1,1700000000,\n",
            "empty.csv: line 2: the column EVENT_TYPE has no value, and it is not nullable",
        ),
    ] {
        put_object(dir.path(), "data", file, body);
        let job = import(
            &client,
            &format!("cols-{}", file.trim_end_matches(".csv")),
            &dataset,
            &format!("s3://data/{file}"),
        )
        .await;
        let (seen, reason) = wait(&client, Res::Import, &job).await;
        assert_eq!(seen.last().unwrap(), "CREATE FAILED", "{file}");
        assert_eq!(reason.as_deref(), Some(expected));
    }
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_need_a_schema_that_fits_their_type_and_domain() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let items = r#"{"type":"record","name":"Items","fields":[{"name":"ITEM_ID","type":"string"},{"name":"GENRE","type":["null","string"]}],"version":"1.0"}"#;
    let group =
        call(&handle, "CreateDatasetGroup", json!({"name": "types"})).await["datasetGroupArn"].clone();
    let items_schema =
        call(&handle, "CreateSchema", json!({"name": "types-items", "schema": items})).await["schemaArn"]
            .clone();
    let interactions =
        call(&handle, "CreateSchema", json!({"name": "types-int", "schema": SCHEMA})).await["schemaArn"]
            .clone();
    let create = |name: &str, dataset_type: &str, schema: &Value| json!({"name": name, "datasetGroupArn": group, "datasetType": dataset_type, "schemaArn": schema});
    for (dataset_type, schema, missing) in [
        ("Interactions", &items_schema, "USER_ID is missing; TIMESTAMP is missing"),
        ("Users", &items_schema, "USER_ID is missing"),
        ("Actions", &interactions, "ACTION_ID is missing"),
    ] {
        let (kind, message) = call_err(&handle, "CreateDataset", create("d", dataset_type, schema)).await;
        assert_eq!(kind, "InvalidInputException", "{dataset_type}");
        assert!(message.contains(missing), "{dataset_type}: {message}");
    }
    call(&handle, "CreateDataset", create("items", "Items", &items_schema)).await;
    call(&handle, "CreateDataset", create("interactions", "INTERACTIONS", &interactions)).await;

    // Schemas the emulator cannot read are refused at CreateSchema.
    for bad in [
        r#"{"type":"record","fields":[{"name":"X","type":{"type":"map"}}]}"#,
        "not json",
        &"x".repeat(20_001),
    ] {
        let (kind, _) = call_err(&handle, "CreateSchema", json!({"name": "bad", "schema": bad})).await;
        assert_eq!(kind, "InvalidInputException");
    }
    // A domain group takes only schemas of its domain, whose interactions carry EVENT_TYPE.
    let shop = call(&handle, "CreateDatasetGroup", json!({"name": "shop", "domain": "ECOMMERCE"})).await;
    let shop = &shop["datasetGroupArn"];
    let domain_schema =
        |name: &str, schema: &str| json!({"name": name, "schema": schema, "domain": "ECOMMERCE"});
    let plain = call(&handle, "CreateSchema", domain_schema("shop-plain", SCHEMA)).await["schemaArn"].clone();
    let events =
        call(&handle, "CreateSchema", domain_schema("shop-events", WITH_EVENTS)).await["schemaArn"].clone();
    let in_shop = |schema: &Value| json!({"name": "s", "datasetGroupArn": shop, "datasetType": "Interactions", "schemaArn": schema});
    let (_, message) = call_err(&handle, "CreateDataset", in_shop(&interactions)).await;
    assert!(message.contains("domain"), "{message}");
    let (_, message) = call_err(&handle, "CreateDataset", in_shop(&plain)).await;
    assert!(message.contains("EVENT_TYPE is missing"), "{message}");
    call(&handle, "CreateDataset", in_shop(&events)).await;
    let (_, message) = call_err(&handle, "CreateDataset", create("custom", "Interactions", &events)).await;
    assert!(message.contains("domain"), "{message}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_arns_are_invalid_input_and_unknown_ones_not_found() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let unknown = "arn:aws:personalize:us-east-1:000000000000:solution/nope";
    for (op, member) in [
        ("DescribeDatasetGroup", "datasetGroupArn"),
        ("DescribeSchema", "schemaArn"),
        ("DescribeDataset", "datasetArn"),
        ("DescribeSolution", "solutionArn"),
        ("DescribeSolutionVersion", "solutionVersionArn"),
        ("DescribeCampaign", "campaignArn"),
        ("DescribeDatasetImportJob", "datasetImportJobArn"),
        ("DescribeBatchInferenceJob", "batchInferenceJobArn"),
        ("CreateSolutionVersion", "solutionArn"),
        ("ListSolutionVersions", "solutionArn"),
        ("DeleteSolution", "solutionArn"),
        ("DeleteDatasetGroup", "datasetGroupArn"),
    ] {
        for malformed in ["nope", "arn:aws:s3:::bucket/key", "arn:aws:personalize:us-east-1:nope"] {
            let (kind, message) = call_err(&handle, op, json!({ member: malformed })).await;
            assert_eq!(kind, "InvalidInputException", "{op} {malformed}");
            assert!(message.contains(&format!("at '{member}'")), "{op}: {message}");
        }
        let (kind, _) = call_err(&handle, op, json!({ member: unknown })).await;
        assert_eq!(kind, "ResourceNotFoundException", "{op}");
    }
    let (kind, message) = call_err(
        &handle,
        "CreateDataset",
        json!({"name": "d", "datasetType": "Items", "schemaArn": "schema-1",
               "datasetGroupArn": "arn:aws:personalize:us-east-1:000000000000:dataset-group/g"}),
    )
    .await;
    assert_eq!((kind.as_str(), message.contains("at 'schemaArn'")), ("InvalidInputException", true));
    let (kind, message) =
        call_err(&handle, "CreateDatasetGroup", json!({"name": "g", "roleArn": "arn:aws:iam::123:role/x"}))
            .await;
    assert_eq!((kind.as_str(), message.contains("at 'roleArn'")), ("InvalidInputException", true));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_training_needs_an_active_full_version_of_user_personalization() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    put_object(dir.path(), "data", "upd.csv", &interactions_csv(40, 30));
    let g = group(&client, "upd", "aws-user-personalization").await;
    wait_active(&client, Res::Import, &import(&client, "upd-import", &g.dataset, "s3://data/upd.csv").await)
        .await;
    train(&client, &g.solution).await;
    let update = json!({"solutionArn": g.solution, "trainingMode": "UPDATE"});
    // The FULL version is still training: no ACTIVE FULL version yet.
    let (kind, message) = call_err(&handle, "CreateSolutionVersion", update.clone()).await;
    assert_eq!(kind, "InvalidInputException");
    assert!(message.contains("ACTIVE solution version"), "{message}");
    let versions = client.list_solution_versions().solution_arn(&g.solution).send().await.unwrap();
    let full = versions.solution_versions()[0].solution_version_arn().unwrap().to_string();
    wait_active(&client, Res::Version, &full).await;
    let updated = call(&handle, "CreateSolutionVersion", update).await;
    let updated = updated["solutionVersionArn"].as_str().unwrap();
    let described = client.describe_solution_version().solution_version_arn(updated).send().await.unwrap();
    assert_eq!(described.solution_version().unwrap().training_mode().unwrap().as_str(), "UPDATE");
    let (kind, _) = call_err(
        &handle,
        "CreateSolutionVersion",
        json!({"solutionArn": g.solution, "trainingMode": "AUTOTRAIN"}),
    )
    .await;
    assert_eq!(kind, "InvalidInputException");

    // Another recipe never takes UPDATE, even with an ACTIVE FULL version.
    let sims = call(
        &handle,
        "CreateSolution",
        json!({"name": "upd-sims", "datasetGroupArn": g.group, "recipeArn": "arn:aws:personalize:::recipe/aws-sims"}),
    )
    .await;
    let sims = sims["solutionArn"].as_str().unwrap();
    wait_active(&client, Res::Version, &train(&client, sims).await).await;
    let (kind, message) =
        call_err(&handle, "CreateSolutionVersion", json!({"solutionArn": sims, "trainingMode": "UPDATE"}))
            .await;
    assert_eq!(kind, "InvalidInputException");
    assert!(message.contains("aws-sims"), "{message}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_the_emulator_cannot_apply_are_refused_by_name() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    let (g, version) = trained(&client, dir.path(), "refuse").await;
    let solution = |extra: Value| {
        let mut body = json!({"name": "refused", "datasetGroupArn": g.group,
                              "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let tags = json!([{"tagKey": "team", "tagValue": "recs"}]);
    let batch = |extra: Value| {
        let mut body = json!({"jobName": "refused", "solutionVersionArn": version, "roleArn": ROLE,
                              "jobInput": {"s3DataSource": {"path": "s3://data/x.json"}},
                              "jobOutput": {"s3DataDestination": {"path": "s3://data/out/"}}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        ("CreateDatasetGroup", json!({"name": "refused", "tags": tags}), "'tags'"),
        ("CreateSolution", solution(json!({"performHPO": true})), "'performHPO'"),
        ("CreateSolution", solution(json!({"performIncrementalUpdate": true})), "'performIncrementalUpdate'"),
        ("CreateSolution", solution(json!({"eventType": "click"})), "'eventType'"),
        (
            "CreateSolution",
            solution(json!({"solutionConfig": {"algorithmHyperParameters": {"hidden_dimension": "64"}}})),
            "'solutionConfig.algorithmHyperParameters'",
        ),
        (
            "CreateSolution",
            solution(
                json!({"solutionConfig": {"autoTrainingConfig": {"schedulingExpression": "rate(31 days)"}}}),
            ),
            "schedulingExpression",
        ),
        (
            "CreateSolution",
            solution(json!({"recipeArn": "arn:aws:personalize:::recipe/aws-trending-now"})),
            "aws-trending-now is not supported",
        ),
        (
            "CreateSolution",
            solution(json!({"recipeArn": "arn:aws:personalize:::recipe/aws-vod-top-picks"})),
            "aws-vod-top-picks is not supported",
        ),
        (
            "CreateDatasetImportJob",
            json!({"jobName": "refused", "datasetArn": g.dataset, "dataSource": {"dataLocation": "s3://data/x.csv"},
                   "publishAttributionMetricsToS3": true}),
            "'publishAttributionMetricsToS3'",
        ),
        ("CreateSolutionVersion", json!({"solutionArn": g.solution, "tags": tags}), "'tags'"),
        (
            "CreateBatchInferenceJob",
            batch(
                json!({"batchInferenceJobConfig": {"itemExplorationConfig": {"explorationWeight": "0.3"}}}),
            ),
            "'batchInferenceJobConfig'",
        ),
        (
            "CreateBatchInferenceJob",
            batch(json!({"themeGenerationConfig": {"fieldsForThemeGeneration": {"itemName": "TITLE"}}})),
            "'themeGenerationConfig'",
        ),
        ("CreateCampaign", json!({"name": "refused", "solutionVersionArn": version, "tags": tags}), "'tags'"),
    ];
    for (op, body, named) in cases {
        let (kind, message) = call_err(&handle, op, body.clone()).await;
        assert_eq!(kind, "InvalidInputException", "{op} {body}");
        assert!(message.contains(named), "{op}: {message}");
    }
    // What is harmless passes: empty tags, false flags, an automatic-training rate.
    call(
        &handle,
        "CreateSolution",
        solution(json!({"tags": [], "performHPO": false,
        "solutionConfig": {"autoTrainingConfig": {"schedulingExpression": "rate(3 days)"}}})),
    )
    .await;
    // A filter must exist, and this emulator keeps none.
    let filter = "arn:aws:personalize:us-east-1:000000000000:filter/recent";
    let (kind, _) = call_err(&handle, "CreateBatchInferenceJob", batch(json!({"filterArn": filter}))).await;
    assert_eq!(kind, "ResourceNotFoundException");
    let (kind, _) = call_err(&handle, "CreateBatchInferenceJob", batch(json!({"filterArn": "recent"}))).await;
    assert_eq!(kind, "InvalidInputException");
    handle.shutdown().await;
}

/// Polls a deleted resource's Describe until it answers ResourceNotFoundException; returns the
/// statuses seen on the way.
async fn wait_gone(handle: &PersonalizeHandle, op: &str, member: &str, arn: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..2000 {
        let body = json!({ member: arn }).to_string();
        let (status, _, text) =
            raw(handle, "POST", "/", Some(&format!("AmazonPersonalize.{op}")), &body).await.unwrap();
        let answer: Value = serde_json::from_str(&text).unwrap();
        if status == 400 {
            assert_eq!(answer["__type"], "ResourceNotFoundException", "{op}: {text}");
            return seen;
        }
        let described = answer.as_object().unwrap().values().next().unwrap();
        let current = described["status"].as_str().unwrap_or("none").to_string();
        if seen.last() != Some(&current) {
            seen.push(current);
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    panic!("{arn} was never gone: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notebooks_cleanup_deletes_the_whole_chain_in_dependency_order() {
    use aws_sdk_personalize::operation::delete_dataset_group::DeleteDatasetGroupError;
    use aws_sdk_personalize::operation::delete_schema::DeleteSchemaError;
    use aws_sdk_personalize::operation::delete_solution::DeleteSolutionError;

    let dir = data_dir();
    let handle = serve_observable(dir.path()).await;
    let client = client(&handle, false);
    let (g, version) = trained(&client, dir.path(), "chain").await;
    let campaign =
        client.create_campaign().name("chain-campaign").solution_version_arn(&version).send().await;
    let campaign = campaign.unwrap().campaign_arn.unwrap();
    let schema = client.describe_dataset().dataset_arn(&g.dataset).send().await.unwrap();
    let schema = schema.dataset.unwrap().schema_arn.unwrap();

    // Refusals while dependants exist (or the campaign is still being created).
    let err = client.delete_campaign().campaign_arn(&campaign).send().await.unwrap_err().into_service_error();
    assert_eq!(err.code(), Some("ResourceInUseException"), "{err:?}");
    wait_active(&client, Res::Campaign, &campaign).await;
    let err =
        client.delete_solution().solution_arn(&g.solution).send().await.unwrap_err().into_service_error();
    assert!(matches!(err, DeleteSolutionError::ResourceInUseException(_)), "{err:?}");
    assert!(err.message().unwrap().contains(&campaign));
    let err = client.delete_schema().schema_arn(&schema).send().await.unwrap_err().into_service_error();
    assert!(matches!(err, DeleteSchemaError::ResourceInUseException(_)), "{err:?}");
    let err = client.delete_dataset_group().dataset_group_arn(&g.group).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DeleteDatasetGroupError::ResourceInUseException(_)));

    // The notebooks' order: campaign, solution, dataset, schema, dataset group.
    client.delete_campaign().campaign_arn(&campaign).send().await.unwrap();
    let seen = wait_gone(&handle, "DescribeCampaign", "campaignArn", &campaign).await;
    assert_eq!(seen, ["DELETE PENDING", "DELETE IN_PROGRESS"]);
    let listed = client.list_campaigns().solution_arn(&g.solution).send().await.unwrap();
    assert!(listed.campaigns().is_empty(), "{listed:?}");

    client.delete_solution().solution_arn(&g.solution).send().await.unwrap();
    let err =
        client.delete_solution().solution_arn(&g.solution).send().await.unwrap_err().into_service_error();
    assert!(matches!(err, DeleteSolutionError::ResourceInUseException(_)), "deleted twice: {err:?}");
    let seen = wait_gone(&handle, "DescribeSolution", "solutionArn", &g.solution).await;
    assert_eq!(seen, ["DELETE PENDING", "DELETE IN_PROGRESS"]);
    let err = client.describe_solution_version().solution_version_arn(&version).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DescribeSolutionVersionError::ResourceNotFoundException(_)));

    // The group still holds its dataset.
    let err = client.delete_dataset_group().dataset_group_arn(&g.group).send().await.unwrap_err();
    let err = err.into_service_error();
    assert!(err.message().unwrap().contains(&g.dataset), "{err:?}");
    client.delete_dataset().dataset_arn(&g.dataset).send().await.unwrap();
    let seen = wait_gone(&handle, "DescribeDataset", "datasetArn", &g.dataset).await;
    assert_eq!(seen, ["DELETE PENDING", "DELETE IN_PROGRESS"]);
    let imports = client.list_dataset_import_jobs().dataset_arn(&g.dataset).send().await.unwrap();
    assert!(imports.dataset_import_jobs().is_empty(), "{imports:?}");

    client.delete_schema().schema_arn(&schema).send().await.unwrap();
    wait_gone(&handle, "DescribeSchema", "schemaArn", &schema).await;

    client.delete_dataset_group().dataset_group_arn(&g.group).send().await.unwrap();
    let seen = wait_gone(&handle, "DescribeDatasetGroup", "datasetGroupArn", &g.group).await;
    assert_eq!(seen, ["DELETE PENDING"]);
    assert!(client.list_dataset_groups().send().await.unwrap().dataset_groups().is_empty());

    // Names are free again, and the new dataset starts without the old data.
    let again = group(&client, "chain", "aws-user-personalization").await;
    assert_eq!(again.dataset, g.dataset);
    let version = train(&client, &again.solution).await;
    let (seen, reason) = wait(&client, Res::Version, &version).await;
    assert_eq!(seen.last().unwrap(), "CREATE FAILED", "{reason:?}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solutions_train_by_themselves_an_hour_after_turning_active_unless_told_otherwise() {
    let dir = data_dir();
    // An emulated hour is 2 real seconds.
    let handle = serve(dir.path(), 1800.0).await;
    let client = client(&handle, false);
    put_object(dir.path(), "data", "auto.csv", &interactions_csv(40, 30));
    put_object(dir.path(), "data", "more.csv", &interactions_csv(40, 31));
    let g = group(&client, "auto", "aws-sims").await;
    let solution = |name: &str| json!({"name": name, "datasetGroupArn": g.group, "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"});
    // Created before the watched solution, so their first slots come no later than its own.
    let manual = call(&handle, "CreateSolution", solution("auto-manual")).await["solutionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let off = call(&handle, "CreateSolution", solution("auto-off")).await["solutionArn"]
        .as_str()
        .unwrap()
        .to_string();
    wait_active(
        &client,
        Res::Import,
        &import(&client, "auto-import", &g.dataset, "s3://data/auto.csv").await,
    )
    .await;

    // Turned off by UpdateSolution, whose status and settings Describe shows.
    for _ in 0..2000 {
        let described = client.describe_solution().solution_arn(&off).send().await.unwrap();
        if described.solution().unwrap().status() == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (kind, _) = call_err(
        &handle,
        "UpdateSolution",
        json!({"solutionArn": off, "solutionUpdateConfig": {"autoTrainingConfig": {"schedulingExpression": "rate(0 days)"}}}),
    )
    .await;
    assert_eq!(kind, "InvalidInputException");
    client.update_solution().solution_arn(&off).perform_auto_training(false).send().await.unwrap();
    // A manual version within the hour takes the first automatic training's place, even with
    // interactions imported after it.
    let manual_version = train(&client, &manual).await;
    wait_active(&client, Res::Version, &manual_version).await;
    wait_active(&client, Res::Import, &import(&client, "auto-more", &g.dataset, "s3://data/more.csv").await)
        .await;

    let watched = call(&handle, "CreateSolution", solution("auto-watched")).await["solutionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let mut automatic = None;
    for _ in 0..3000 {
        let listed = client.list_solution_versions().solution_arn(&watched).send().await.unwrap();
        if let Some(version) = listed.solution_versions().first() {
            assert_eq!(version.training_type().map(|t| t.as_str()), Some("AUTOMATIC"), "{version:?}");
            automatic = version.solution_version_arn().map(str::to_string);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let automatic = automatic.expect("no automatic version within 15 s (7.5 emulated hours)");
    wait_active(&client, Res::Version, &automatic).await;
    let described = client.describe_solution_version().solution_version_arn(&automatic).send().await.unwrap();
    let version = described.solution_version().unwrap();
    assert_eq!(version.training_type().map(|t| t.as_str()), Some("AUTOMATIC"));
    assert_eq!(version.training_mode().map(|t| t.as_str()), Some("AUTOTRAIN"));

    let versions_of = |arn: String| {
        let client = client.clone();
        async move {
            client
                .list_solution_versions()
                .solution_arn(arn)
                .send()
                .await
                .unwrap()
                .solution_versions()
                .to_vec()
        }
    };
    let manual_versions = versions_of(manual.clone()).await;
    assert_eq!(manual_versions.len(), 1, "{manual_versions:?}");
    assert_eq!(manual_versions[0].training_type().map(|t| t.as_str()), Some("MANUAL"));
    assert!(versions_of(off.clone()).await.is_empty());
    let described = client.describe_solution().solution_arn(&off).send().await.unwrap();
    let described = described.solution().unwrap();
    assert_eq!(described.perform_auto_training(), Some(false));
    let update = described.latest_solution_update().unwrap();
    assert_eq!((update.status(), update.perform_auto_training()), (Some("ACTIVE"), Some(false)));
    // The group's first solution was created with performAutoTraining false: never trained.
    assert!(versions_of(g.solution.clone()).await.is_empty());
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_recipe_works_end_to_end_or_is_refused_at_create_solution() {
    let dir = data_dir();
    let handle = serve(dir.path(), 50.0).await;
    let client = client(&handle, false);
    let (g, _) = trained(&client, dir.path(), "recipes").await;
    let recipes = client.list_recipes().send().await.unwrap();
    let mut trained_recipes = Vec::new();
    for recipe in recipes.recipes() {
        let (name, arn) = (recipe.name().unwrap(), recipe.recipe_arn().unwrap());
        let body = json!({"name": format!("r-{name}"), "datasetGroupArn": g.group, "recipeArn": arn,
                          "performAutoTraining": false});
        let (status, _, text) =
            raw(&handle, "POST", "/", Some("AmazonPersonalize.CreateSolution"), &body.to_string())
                .await
                .unwrap();
        let answer: Value = serde_json::from_str(&text).unwrap();
        if status != 200 {
            assert_eq!(answer["__type"], "InvalidInputException", "{name}: {text}");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .contains("is not supported by the local Personalize emulator")
            );
            continue;
        }
        let version = train(&client, answer["solutionArn"].as_str().unwrap()).await;
        trained_recipes.push((name.to_string(), version));
    }
    let names: Vec<&str> = trained_recipes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "aws-personalized-ranking",
            "aws-personalized-ranking-v2",
            "aws-popularity-count",
            "aws-sims",
            "aws-user-personalization",
            "aws-user-personalization-v2"
        ]
    );
    for (name, version) in &trained_recipes {
        wait_active(&client, Res::Version, version).await;
        // Each recipe's batch input (Personalize's "Preparing input data for batch recommendations").
        let line = match name.as_str() {
            "aws-sims" => json!({"itemId": "i1"}),
            n if n.starts_with("aws-personalized-ranking") => {
                json!({"userId": "u1", "itemList": ["i1", "i2", "i3"]})
            }
            _ => json!({"userId": "u1"}),
        };
        put_object(dir.path(), "data", &format!("{name}/in.json"), &format!("{line}\n"));
        let job = batch_inference(
            &client,
            name,
            version,
            &format!("s3://data/{name}/in.json"),
            &format!("s3://data/{name}/out/"),
        )
        .await;
        wait_active(&client, Res::Inference, &job).await;
        let out =
            std::fs::read_to_string(stored(dir.path(), "data", &format!("{name}/out/in.json.out"))).unwrap();
        let out: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(out["error"], Value::Null, "{name}: {out}");
        assert!(!out["output"]["recommendedItems"].as_array().unwrap().is_empty(), "{name}: {out}");
    }
    handle.shutdown().await;
}
