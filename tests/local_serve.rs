//! `recflow local serve` as a user runs it: a real process that prints its endpoints and the
//! environment to export, answers the AWS SDK, keeps its state across a restart, and stops
//! cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_recflow");

/// Starts the emulator on free ports and reads the exported environment from its stdout.
fn serve(data_dir: &std::path::Path) -> (Child, Vec<(String, String)>) {
    let mut child = Command::new(BIN)
        .args(["--log-level", "warn", "local", "serve", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut env = Vec::new();
    // The emulator prints a fixed number of lines before it waits; the bound stops a hang.
    for _ in 0..20 {
        let line = lines.next().expect("the emulator printed its environment").unwrap();
        if let Some(kv) = line.strip_prefix("export ") {
            let (k, v) = kv.split_once('=').unwrap();
            env.push((k.to_string(), v.to_string()));
            if k == "AWS_REGION" {
                break;
            }
        }
    }
    (child, env)
}

fn get<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    &env.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("{key} not exported: {env:?}")).1
}

fn stop(mut child: Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "SIGTERM ends the emulator cleanly");
}

async fn client(env: &[(String, String)]) -> aws_sdk_personalize::Client {
    let conf = aws_sdk_personalize::Config::builder()
        .behavior_version(aws_sdk_personalize::config::BehaviorVersion::latest())
        .region(aws_sdk_personalize::config::Region::new(get(env, "AWS_REGION").to_string()))
        .credentials_provider(aws_sdk_personalize::config::Credentials::new(
            get(env, "AWS_ACCESS_KEY_ID"),
            get(env, "AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "exported",
        ))
        .endpoint_url(get(env, "AWS_ENDPOINT_URL_PERSONALIZE"))
        .build();
    aws_sdk_personalize::Client::from_conf(conf)
}

#[tokio::test]
async fn serve_prints_the_environment_answers_the_sdk_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let (child, env) = serve(dir.path());
    for key in ["AWS_ENDPOINT_URL_PERSONALIZE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_EVENTBRIDGE"] {
        assert!(get(&env, key).starts_with("http://127.0.0.1:"), "{key}");
    }
    let pz = client(&env).await;
    let arn = pz.create_dataset_group().name("kept").send().await.unwrap().dataset_group_arn.unwrap();
    assert_eq!(arn, "arn:aws:personalize:us-east-1:000000000000:dataset-group/kept");
    stop(child);

    let (child, env) = serve(dir.path());
    let pz = client(&env).await;
    let described = pz.describe_dataset_group().dataset_group_arn(&arn).send().await.unwrap();
    assert_eq!(described.dataset_group.unwrap().name(), Some("kept"));
    stop(child);
}

#[test]
fn seed_writes_the_demo_data_into_the_local_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["local", "seed", "--users", "50", "--items", "30", "--interactions", "1200", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(dir.path().join("local/s3/recflow-demo/interactions/interactions.csv"))
        .unwrap();
    assert_eq!(csv.lines().count(), 1 + 1200);
    assert!(csv.starts_with("USER_ID,ITEM_ID,TIMESTAMP"));
    let users = std::fs::read_to_string(dir.path().join("local/s3/recflow-demo/batch/users.jsonl")).unwrap();
    assert_eq!(users.lines().count(), 50);
}
