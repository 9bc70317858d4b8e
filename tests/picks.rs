//! The "today's picks" task (`arn:recflow:::picks:publish`) against the embedded emulator's S3,
//! through the real AWS SDK client over loopback HTTP.

use std::path::PathBuf;

use aws_sdk_personalize::types::{BatchInferenceJobInput, BatchInferenceJobOutput, S3DataConfig};
use aws_sdk_s3::primitives::ByteStream;
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::seed::{SeedOptions, write_demo_data};
use recflow::tasks::picks::{self, PicksError, PublishOptions, PublishPicks};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[path = "support/clients.rs"]
mod clients;

const BUCKET: &str = "data";

struct Local {
    dir: tempfile::TempDir,
    emulator: Emulator,
    s3: aws_sdk_s3::Client,
}

impl Local {
    async fn start() -> Local {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LocalConfig::new(dir.path());
        config.time_scale = 1000.0;
        let emulator = Emulator::start(&config).await.unwrap();
        let s3 = clients::s3(&emulator);
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        Local { dir, emulator, s3 }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("s3")
    }

    async fn put(&self, key: &str, body: impl Into<Vec<u8>>) {
        let body = ByteStream::from(body.into());
        self.s3.put_object().bucket(BUCKET).key(key).body(body).send().await.unwrap();
    }

    async fn get(&self, key: &str) -> Vec<u8> {
        let out = self.s3.get_object().bucket(BUCKET).key(key).send().await.unwrap();
        out.body.collect().await.unwrap().to_vec()
    }

    async fn text(&self, key: &str) -> String {
        String::from_utf8(self.get(key).await).unwrap()
    }

    async fn json(&self, key: &str) -> Value {
        serde_json::from_slice(&self.get(key).await).unwrap()
    }

    async fn exists(&self, key: &str) -> bool {
        self.s3.head_object().bucket(BUCKET).key(key).send().await.is_ok()
    }

    /// Every key under `prefix`, in order.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self.s3.list_objects_v2().bucket(BUCKET).prefix(prefix).send().await.unwrap();
        listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    /// Every object under `prefix` with its bytes.
    async fn snapshot(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut all = Vec::new();
        for key in self.keys(prefix).await {
            let body = self.get(&key).await;
            all.push((key, body));
        }
        all
    }

    async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}

/// A batch inference output line as Personalize writes it.
fn line(user: &str, items: &[&str], scores: Option<&[f64]>) -> String {
    let mut output = json!({"recommendedItems": items});
    if let Some(scores) = scores {
        output["scores"] = json!(scores);
    }
    let line = json!({"input": {"userId": user}, "output": output, "error": null});
    serde_json::to_string(&line).unwrap() + "\n"
}

fn error_line(user: &str, message: &str) -> String {
    let line = json!({"input": {"userId": user}, "output": {"recommendedItems": []}, "error": message});
    serde_json::to_string(&line).unwrap() + "\n"
}

fn params(date: &str, extra: Value) -> Value {
    let mut params = json!({
        "BatchOutputPath": format!("s3://{BUCKET}/out/"),
        "PicksPath": format!("s3://{BUCKET}/picks/"),
        "Date": date,
    });
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    params
}

fn request(date: &str, extra: Value) -> PublishPicks {
    PublishPicks::from_parameters(&params(date, extra)).unwrap()
}

fn parts_of(bytes: usize) -> PublishOptions {
    PublishOptions { part_bytes: bytes, ..PublishOptions::default() }
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_n_exclusion_and_min_score() {
    let local = Local::start().await;
    let mut body = String::new();
    body += &line("u1", &["i1", "i2", "i3", "i4", "i5"], Some(&[0.9, 0.8, 0.7, 0.6, 0.5]));
    body += &line("u2", &["i2", "i6", "i7", "i8"], Some(&[0.5, 0.3, 0.21, 0.1]));
    body += &line("u3", &["i9", "i2"], Some(&[0.1, 0.05]));
    local.put("out/users.json.out", body).await;

    let req = request(
        "2026-11-29",
        json!({"TopN": 3, "ExcludeItems": ["i2", "i4"], "MinScore": 0.25,
               "BatchInferenceJobArn": "arn:aws:personalize:us-east-1:000000000000:batch-inference-job/nightly",
               "SolutionVersionArn": "arn:aws:personalize:us-east-1:000000000000:solution/s/abc"}),
    );
    let result = picks::publish(&local.s3, &req).await.unwrap();

    let part = local.text("picks/2026-11-29/part-00000.jsonl").await;
    assert_eq!(
        part,
        concat!(
            "{\"userId\":\"u1\",\"items\":[\"i1\",\"i3\",\"i5\"],\"scores\":[0.9,0.7,0.5]}\n",
            "{\"userId\":\"u2\",\"items\":[\"i6\"],\"scores\":[0.3]}\n",
            "{\"userId\":\"u3\",\"items\":[],\"scores\":[]}\n",
        )
    );
    let checksum = format!("sha256:{}", hex::encode(Sha256::digest(part.as_bytes())));
    assert_eq!(
        result,
        json!({
            "PicksLocation": "s3://data/picks/2026-11-29/",
            "Manifest": "s3://data/picks/2026-11-29/manifest.json",
            "Latest": "s3://data/picks/latest.json",
            "Users": 3,
            "UsersWithErrors": 0,
            "Parts": 1,
            "Items": 4,
            "Checksum": checksum,
        })
    );

    let manifest = local.json("picks/2026-11-29/manifest.json").await;
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["date"], "2026-11-29");
    assert_eq!(manifest["users"], 3);
    assert_eq!(manifest["items"], 4);
    assert_eq!(manifest["topN"], 3);
    assert_eq!(manifest["minScore"], 0.25);
    assert_eq!(manifest["excludeItems"], json!(["i2", "i4"]));
    assert_eq!(manifest["checksum"], checksum.as_str());
    assert_eq!(manifest["source"]["batchOutput"], "s3://data/out/");
    assert_eq!(
        manifest["source"]["batchInferenceJobArn"],
        "arn:aws:personalize:us-east-1:000000000000:batch-inference-job/nightly"
    );
    assert_eq!(
        manifest["source"]["solutionVersionArn"],
        "arn:aws:personalize:us-east-1:000000000000:solution/s/abc"
    );
    assert_eq!(manifest["source"]["files"][0]["key"], "out/users.json.out");
    assert_eq!(manifest["source"]["files"][0]["lines"], 3);
    assert_eq!(
        manifest["parts"],
        json!([{
            "key": "picks/2026-11-29/part-00000.jsonl",
            "bytes": part.len(),
            "users": 3,
            "items": 4,
            "sha256": hex::encode(Sha256::digest(part.as_bytes())),
        }])
    );
    assert_eq!(
        local.json("picks/latest.json").await,
        json!({
            "date": "2026-11-29",
            "manifest": "s3://data/picks/2026-11-29/manifest.json",
            "location": "s3://data/picks/2026-11-29/",
        })
    );
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_out_files_in_key_order_other_objects_ignored() {
    let local = Local::start().await;
    local.put("out/b.json.out", line("u3", &["i1"], Some(&[0.5])) + &line("u4", &["i2"], Some(&[0.4]))).await;
    local.put("out/a.json.out", line("u1", &["i1", "i2"], Some(&[0.9, 0.1]))).await;
    local.put("out/c/nested.out", line("u5", &["i3"], Some(&[0.3]))).await;
    local.put("out/_SUCCESS", "").await;
    local.put("out/a.json.out.manifest", "{\"not\": \"picks\"}").await;
    local.put("out/readme.txt", "not json at all\n").await;
    // Not under the prefix: a sibling whose name starts the same.
    local.put("outside/x.out", "garbage\n").await;
    local.put("out2/y.out", "garbage\n").await;

    let req = PublishPicks::from_parameters(&json!({
        "BatchOutputPath": "s3://data/out",
        "PicksPath": "s3://data/picks",
        "Date": "2026-11-29",
    }))
    .unwrap();
    let result = picks::publish(&local.s3, &req).await.unwrap();
    assert_eq!(result["Users"], 4);
    assert_eq!(result["Items"], 5);
    let users: Vec<String> = parse_lines(&local.text("picks/2026-11-29/part-00000.jsonl").await)
        .iter()
        .map(|l| l["userId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users, ["u1", "u3", "u4", "u5"]);
    let manifest = local.json("picks/2026-11-29/manifest.json").await;
    let files: Vec<&str> =
        manifest["source"]["files"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(files, ["out/a.json.out", "out/b.json.out", "out/c/nested.out"]);
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_lines_are_counted_and_sampled_itemless_users_kept() {
    let local = Local::start().await;
    let mut body = String::new();
    body += &line("ok1", &["i1"], Some(&[0.5]));
    for n in 0..12 {
        body += &error_line(&format!("bad{n:02}"), &format!("user bad{n:02} failed"));
    }
    // An error line whose input was not even JSON: no user id to sample.
    body += "{\"input\": \"not json\", \"output\": {\"recommendedItems\": []}, \"error\": \"the line is not valid JSON\"}\n";
    // Itemless, but no error: published with an empty list. So is a line without output.
    body += &line("empty", &[], Some(&[]));
    body += "{\"input\": {\"userId\": \"nooutput\"}, \"error\": null}\n";
    body += "\n";
    local.put("out/users.json.out", body).await;

    let result = picks::publish(&local.s3, &request("2026-11-29", json!({}))).await.unwrap();
    assert_eq!(result["Users"], 3);
    assert_eq!(result["UsersWithErrors"], 13);
    assert_eq!(result["Items"], 1);
    let lines = parse_lines(&local.text("picks/2026-11-29/part-00000.jsonl").await);
    assert_eq!(
        lines,
        [
            json!({"userId": "ok1", "items": ["i1"], "scores": [0.5]}),
            json!({"userId": "empty", "items": [], "scores": []}),
            json!({"userId": "nooutput", "items": []}),
        ]
    );
    let manifest = local.json("picks/2026-11-29/manifest.json").await;
    assert_eq!(manifest["usersWithErrors"], 13);
    let samples = manifest["errorSamples"].as_array().unwrap();
    assert_eq!(samples.len(), 10);
    for (n, sample) in samples.iter().enumerate() {
        assert_eq!(
            sample,
            &json!({"userId": format!("bad{n:02}"), "error": format!("user bad{n:02} failed")})
        );
    }
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_without_scores_and_min_score_keeps_whole_lines() {
    let local = Local::start().await;
    let body = line("u1", &["i1", "i2", "i3"], None) + &line("u2", &["i4"], None);
    local.put("out/users.json.out", body).await;

    let req = request("2026-11-29", json!({"TopN": 2, "MinScore": 0.99, "ExcludeItems": ["i2"]}));
    let result = picks::publish(&local.s3, &req).await.unwrap();
    assert_eq!(result["Items"], 3);
    assert_eq!(
        local.text("picks/2026-11-29/part-00000.jsonl").await,
        "{\"userId\":\"u1\",\"items\":[\"i1\",\"i3\"]}\n{\"userId\":\"u2\",\"items\":[\"i4\"]}\n"
    );
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_escapes_are_copied_and_excluded_by_value() {
    let local = Local::start().await;
    let body = concat!(
        r#"{"input": {"userId": "u\u00e9\"1", "segment": "x"}, "output": {"recommendedItems": ["a\"b", "\u0069\u0031", "i2", "c\\d"], "scores": [4e-1, 0.3, 0.20, 1E-2]}, "error": null}"#,
        "\r\n",
        r#"{"error": null, "output": {"scores": [1], "recommendedItems": ["ü"]}, "input": {"userId": "ü"}}"#,
    );
    local.put("out/users.json.out", body).await;
    let req = request("2026-11-29", json!({"ExcludeItems": ["i1", "c\\d"], "MinScore": 0.1}));
    picks::publish(&local.s3, &req).await.unwrap();
    let text = local.text("picks/2026-11-29/part-00000.jsonl").await;
    assert_eq!(
        text,
        concat!(
            r#"{"userId":"u\u00e9\"1","items":["a\"b","i2"],"scores":[4e-1,0.20]}"#,
            "\n",
            r#"{"userId":"ü","items":["ü"],"scores":[1]}"#,
            "\n",
        )
    );
    assert_eq!(parse_lines(&text)[0]["userId"], "ué\"1");
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_longer_than_the_read_buffer() {
    let local = Local::start().await;
    // ~600 KiB lines: they straddle several fills of the 256 KiB read buffer.
    let ids: Vec<String> = (0..500).map(|n| format!("item-{n:04}-{}", "x".repeat(1200))).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let scores: Vec<f64> = (0..500).map(|n| 1.0 - n as f64 / 1000.0).collect();
    let body = line("u1", &ids, Some(&scores))
        + &line("u2", &ids[..3], Some(&scores[..3]))
        + &line("u3", &ids, None);
    local.put("out/users.json.out", body).await;
    let result = picks::publish(&local.s3, &request("2026-11-29", json!({"TopN": 500}))).await.unwrap();
    assert_eq!(result["Items"], 1003);
    let lines = parse_lines(&local.text("picks/2026-11-29/part-00000.jsonl").await);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["items"].as_array().unwrap().len(), 500);
    assert_eq!(lines[0]["items"][499], ids[499]);
    assert_eq!(lines[1]["items"], json!(ids[..3]));
    assert_eq!(lines[2]["items"][7], ids[7]);
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_range_size_gives_the_same_picks() {
    let local = Local::start().await;
    let long: Vec<String> = (0..40).map(|n| format!("é-{n}-{}", "y".repeat(50))).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let mut body: String =
        (0..30).map(|u| line(&format!("ü{u}"), &["i1", "ï2", "i3"], Some(&[0.3, 0.2, 0.1]))).collect();
    body += &line("long", &long, None);
    body += &error_line("bad", "failed");
    body += &line("last", &["i9"], Some(&[0.9]));
    body.pop(); // no newline at the very end
    local.put("out/users.json.out", body.clone()).await;
    let req = request("2026-11-29", json!({"TopN": 50}));
    let reference = picks::publish(&local.s3, &req).await.unwrap();
    let expected = local.get("picks/2026-11-29/part-00000.jsonl").await;
    assert_eq!(parse_lines(std::str::from_utf8(&expected).unwrap()).len(), 32);
    let size = body.len() as u64;
    // (Each GetObject of the local S3 takes some 40 ms: few small ranges.)
    for (range_bytes, ranges_ahead) in [(97, 0), (97, 3), (1000, 2), (size - 1, 2), (size, 0), (size + 1, 2)]
    {
        let options = PublishOptions { range_bytes, ranges_ahead, ..PublishOptions::default() };
        let result = picks::publish_with(&local.s3, &req, &options).await.unwrap();
        assert_eq!(result, reference, "ranges of {range_bytes}, {ranges_ahead} ahead");
        assert_eq!(local.get("picks/2026-11-29/part-00000.jsonl").await, expected);
    }
    // Ranges of one byte: every line and every two-byte character is split.
    let body = line("é", &["ï1", "i2"], Some(&[0.5, 0.25])) + &line("u", &["ü"], None);
    local.put("out/users.json.out", body).await;
    let reference = picks::publish(&local.s3, &req).await.unwrap();
    let expected = local.get("picks/2026-11-29/part-00000.jsonl").await;
    let options = PublishOptions { range_bytes: 1, ranges_ahead: 8, ..PublishOptions::default() };
    assert_eq!(picks::publish_with(&local.s3, &req, &options).await.unwrap(), reference);
    assert_eq!(local.get("picks/2026-11-29/part-00000.jsonl").await, expected);
    // An empty .out file has no lines, in ranges or not.
    local.put("out/users.json.out", "").await;
    let result = picks::publish(&local.s3, &req).await.unwrap();
    assert_eq!((result["Users"].clone(), result["Parts"].clone()), (json!(0), json!(0)));
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_split_at_the_size_limit_and_checksum_covers_them_in_order() {
    let local = Local::start().await;
    let body: String =
        (0..50).map(|u| line(&format!("u{u:03}"), &["i1", "i2", "i3"], Some(&[0.3, 0.2, 0.1]))).collect();
    local.put("out/users.json.out", body).await;
    // Each picks line is 66 bytes: 3 fit in 256.
    let result =
        picks::publish_with(&local.s3, &request("2026-11-29", json!({})), &parts_of(256)).await.unwrap();
    assert_eq!(result["Parts"], 17);
    let manifest = local.json("picks/2026-11-29/manifest.json").await;
    let mut all = Vec::new();
    for (n, part) in manifest["parts"].as_array().unwrap().iter().enumerate() {
        let key = format!("picks/2026-11-29/part-{n:05}.jsonl");
        assert_eq!(part["key"], key.as_str());
        let bytes = local.get(&key).await;
        assert!(bytes.len() <= 256, "{key} has {} bytes", bytes.len());
        assert_eq!(part["bytes"], bytes.len());
        assert_eq!(part["sha256"], hex::encode(Sha256::digest(&bytes)).as_str());
        assert_eq!(part["users"], bytes.iter().filter(|&&b| b == b'\n').count());
        all.extend_from_slice(&bytes);
    }
    assert_eq!(parse_lines(std::str::from_utf8(&all).unwrap()).len(), 50);
    assert_eq!(result["Checksum"], format!("sha256:{}", hex::encode(Sha256::digest(&all))));
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_gives_byte_identical_objects() {
    let local = Local::start().await;
    let body: String = (0..40)
        .map(|u| {
            if u % 7 == 3 {
                error_line(&format!("u{u}"), "no model for this user")
            } else {
                line(&format!("u{u}"), &["i1", "i2", "i3"], Some(&[0.3, 0.2, 0.1]))
            }
        })
        .collect();
    local.put("out/users.json.out", body).await;
    let req = request("2026-11-29", json!({"TopN": 2, "BatchInferenceJobArn": "arn:aws:personalize:x"}));
    let first_result = picks::publish_with(&local.s3, &req, &parts_of(300)).await.unwrap();
    let first = local.snapshot("picks/").await;
    let second_result = picks::publish_with(&local.s3, &req, &parts_of(300)).await.unwrap();
    let second = local.snapshot("picks/").await;
    assert_eq!(first_result, second_result);
    assert!(first.len() > 3, "{} objects", first.len());
    assert_eq!(first, second);
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_with_fewer_parts_deletes_the_stale_ones() {
    let local = Local::start().await;
    let users = |n: usize| -> String {
        (0..n).map(|u| line(&format!("u{u:03}"), &["i1", "i2"], Some(&[0.3, 0.2]))).collect()
    };
    local.put("out/users.json.out", users(30)).await;
    let req = request("2026-11-29", json!({}));
    let first = picks::publish_with(&local.s3, &req, &parts_of(200)).await.unwrap();
    assert_eq!(first["Parts"], 10);
    // Someone else's object in the day's prefix, and another day: both left alone.
    local.put("picks/2026-11-29/notes.txt", "keep me").await;
    let other_day =
        picks::publish_with(&local.s3, &request("2026-11-28", json!({})), &parts_of(200)).await.unwrap();
    assert_eq!(other_day["Parts"], 10);
    let req = request("2026-11-29", json!({}));

    local.put("out/users.json.out", users(7)).await;
    let second = picks::publish_with(&local.s3, &req, &parts_of(200)).await.unwrap();
    assert_eq!(second["Parts"], 3);
    assert_eq!(
        local.keys("picks/2026-11-29/").await,
        [
            "picks/2026-11-29/manifest.json",
            "picks/2026-11-29/notes.txt",
            "picks/2026-11-29/part-00000.jsonl",
            "picks/2026-11-29/part-00001.jsonl",
            "picks/2026-11-29/part-00002.jsonl",
        ]
    );
    assert_eq!(local.keys("picks/2026-11-28/").await.len(), 11);

    // No user at all: no part, and the earlier parts go too.
    local.put("out/users.json.out", error_line("u1", "failed")).await;
    let third = picks::publish_with(&local.s3, &req, &parts_of(200)).await.unwrap();
    assert_eq!(
        (third["Parts"].clone(), third["Users"].clone(), third["UsersWithErrors"].clone()),
        (json!(0), json!(0), json!(1))
    );
    assert_eq!(
        local.keys("picks/2026-11-29/").await,
        ["picks/2026-11-29/manifest.json", "picks/2026-11-29/notes.txt"]
    );
    assert_eq!(local.json("picks/2026-11-29/manifest.json").await["parts"], json!([]));
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_leaves_latest_json_as_it_was() {
    let local = Local::start().await;
    local.put("out/users.json.out", line("u1", &["i1"], Some(&[0.5]))).await;
    picks::publish(&local.s3, &request("2026-11-28", json!({}))).await.unwrap();
    let latest = local.get("picks/latest.json").await;

    // No input for the next day: fails before anything is written.
    let missing = PublishPicks::from_parameters(&json!({
        "BatchOutputPath": "s3://data/out-2026-11-29/", "PicksPath": "s3://data/picks/", "Date": "2026-11-29",
    }))
    .unwrap();
    let err = picks::publish(&local.s3, &missing).await.unwrap_err();
    assert_eq!(err.error_name(), "Recflow.PicksNoInput");
    assert_eq!(local.keys("picks/2026-11-29/").await, Vec::<String>::new());
    assert_eq!(local.get("picks/latest.json").await, latest);

    // A malformed line after whole parts were stored: the parts stay, no manifest, the old
    // latest.json stays.
    let mut body: String = (0..20).map(|u| line(&format!("u{u}"), &["i1"], Some(&[0.5]))).collect();
    body += "{\"input\": {\"userId\": \"u20\"}, \"output\": {\"recommendedItems\": [\"i1\"]\n";
    local.put("out/users.json.out", body).await;
    let err =
        picks::publish_with(&local.s3, &request("2026-11-29", json!({})), &parts_of(100)).await.unwrap_err();
    assert_eq!(err.error_name(), "Recflow.PicksMalformedOutput");
    assert!(local.exists("picks/2026-11-29/part-00000.jsonl").await);
    assert!(!local.exists("picks/2026-11-29/manifest.json").await);
    assert_eq!(local.get("picks/latest.json").await, latest);

    // The manifest stored, latest.json last: a destination bucket without room for
    // latest.json is not to be had, but a file that cannot be replaced is: put a folder where
    // the local store keeps latest.json, so that its PutObject fails after the manifest went in.
    local.put("out/users.json.out", line("u1", &["i1"], Some(&[0.5]))).await;
    let other = request("2026-11-30", json!({"PicksPath": "s3://data/other/"}));
    let bucket = recflow::local::s3::BucketName::parse(BUCKET).unwrap();
    let latest = recflow::local::s3::objects::object_path(&local.root(), &bucket, "other/latest.json");
    std::fs::create_dir_all(latest.join("blocker")).unwrap();
    let err = picks::publish(&local.s3, &other).await.unwrap_err();
    assert_eq!(err.error_name(), "States.TaskFailed", "{err}");
    assert!(err.to_string().contains("PutObject s3://data/other/latest.json"), "{err}");
    assert!(local.exists("other/2026-11-30/manifest.json").await);
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_errors() {
    let local = Local::start().await;
    let publish = |path: &str| {
        let req = PublishPicks::from_parameters(&json!({
            "BatchOutputPath": path, "PicksPath": "s3://data/picks/", "Date": "2026-11-29",
        }))
        .unwrap();
        let s3 = local.s3.clone();
        async move { picks::publish(&s3, &req).await.unwrap_err() }
    };
    let err = publish("s3://data/nothing/").await;
    assert_eq!(err.error_name(), "Recflow.PicksNoInput");
    assert_eq!(
        err.to_string(),
        "no batch inference output at s3://data/nothing/: there is no object under the prefix"
    );

    local.put("out/_SUCCESS", "").await;
    local.put("out/users.json", "{}\n").await;
    let err = publish("s3://data/out/").await;
    assert_eq!(err.error_name(), "Recflow.PicksNoInput");
    assert!(err.to_string().contains("none of the 2 objects under the prefix ends in .out"), "{err}");

    let err = publish("s3://no-such-bucket/out/").await;
    assert_eq!(err.error_name(), "Recflow.PicksNoInput");
    assert!(err.to_string().contains("the bucket no-such-bucket does not exist"), "{err}");
    assert!(matches!(err, PicksError::NoInput { .. }));
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failures_are_task_failed_with_the_s3_error() {
    let local = Local::start().await;
    local.put("out/users.json.out", line("u1", &["i1"], Some(&[0.5]))).await;
    let req = request("2026-11-29", json!({"PicksPath": "s3://missing-bucket/picks/"}));
    let err = picks::publish(&local.s3, &req).await.unwrap_err();
    assert_eq!(err.error_name(), "States.TaskFailed");
    let cause = err.to_string();
    assert!(
        cause.starts_with(
            "S3 PutObject s3://missing-bucket/picks/2026-11-29/part-00000.jsonl failed: NoSuchBucket: "
        ),
        "{cause}"
    );
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_name_the_file_and_line() {
    let local = Local::start().await;
    let good = line("u1", &["i1"], Some(&[0.5]));
    local.put("out/a.out", good.clone()).await;
    let cases: [(&[u8], u64, &str); 7] = [
        (b"{\"input\": {\"userId\": \"u2\"}, \"output\": {\"recommendedItems\": [\"i1\"}, \"error\": null}\n", 3, "expected"),
        (b"[1, 2]\n", 3, "invalid type: sequence"),
        (b"{\"input\": {\"userId\": \"u2\"}, \"output\": {\"recommendedItems\": [\"i1\", 7]}, \"error\": null}\n", 3, "recommendedItems[1] is not a string"),
        (b"{\"input\": {\"userId\": \"u2\"}, \"output\": {\"recommendedItems\": [\"i1\"], \"scores\": []}, \"error\": null}\n", 3, "0 scores for 1 recommendedItems"),
        (b"{\"input\": {\"itemId\": \"i9\"}, \"output\": {\"recommendedItems\": [\"i1\"]}, \"error\": null}\n", 3, "the input has no userId"),
        (b"{\"input\": {\"userId\": \"u\xff\"}, \"output\": {\"recommendedItems\": []}, \"error\": null}\n", 3, "not UTF-8"),
        (b"{\"input\": {\"userId\": \"u2\"}, \"output\": {\"recommendedItems\": []}, \"error\": null} trailing\n", 3, "trailing characters"),
    ];
    for (bad, line_no, reason) in cases {
        let mut body = good.clone().into_bytes();
        body.extend_from_slice(b"\n");
        body.extend_from_slice(bad);
        body.extend_from_slice(good.as_bytes());
        local.put("out/b.out", body).await;
        let err = picks::publish(&local.s3, &request("2026-11-29", json!({}))).await.unwrap_err();
        assert_eq!(err.error_name(), "Recflow.PicksMalformedOutput", "{err}");
        let cause = err.to_string();
        assert!(cause.starts_with(&format!("s3://data/out/b.out line {line_no}: ")), "{cause}");
        assert!(cause.contains(reason), "{cause}");
        let PicksError::MalformedOutput { file, line, .. } = err else { unreachable!() };
        assert_eq!((file.as_str(), line), ("s3://data/out/b.out", line_no));
    }
    // With MinScore, a score that is not a number too.
    local.put("out/b.out", "{\"input\": {\"userId\": \"u2\"}, \"output\": {\"recommendedItems\": [\"i1\"], \"scores\": [\"high\"]}, \"error\": null}\n").await;
    let err = picks::publish(&local.s3, &request("2026-11-29", json!({"MinScore": 0.1}))).await.unwrap_err();
    assert_eq!(err.to_string(), "s3://data/out/b.out line 1: scores[0] is not a number");
    local.shutdown().await;
}

#[test]
fn from_parameters_reads_and_checks_every_field() {
    let req = PublishPicks::from_parameters(&json!({
        "BatchOutputPath": "s3://bucket/batch/out",
        "PicksPath": "s3://bucket/",
        "Date": "2026-11-29",
    }))
    .unwrap();
    assert_eq!(
        (req.batch_output.bucket.as_str(), req.batch_output.prefix.as_str()),
        ("bucket", "batch/out/")
    );
    assert_eq!((req.destination.bucket.as_str(), req.destination.prefix.as_str()), ("bucket", ""));
    assert_eq!(req.top_n, 10);
    assert_eq!(req.exclude_items, Vec::<String>::new());
    assert_eq!((req.min_score, req.source_job_arn, req.solution_version_arn), (None, None, None));

    let req = PublishPicks::from_parameters(&params(
        "2024-02-29",
        json!({"TopN": 500, "ExcludeItems": ["a"], "MinScore": 0, "SolutionVersionArn": "arn:aws:personalize:v",
               "BatchInferenceJobArn": null}),
    ))
    .unwrap();
    assert_eq!((req.top_n, req.min_score, req.exclude_items), (500, Some(0.0), vec!["a".to_string()]));

    let err = |extra: Value| PublishPicks::from_parameters(&params("2026-11-29", extra)).unwrap_err();
    assert_eq!(err(json!({"TopN": 0})), "TopN: must be 1 to 500, not 0");
    assert_eq!(err(json!({"TopN": 501})), "TopN: must be 1 to 500, not 501");
    assert_eq!(err(json!({"TopN": -3})), "TopN: must be 1 to 500, not -3");
    assert_eq!(err(json!({"TopN": 2.5})), "TopN: must be an integer, not the number 2.5");
    assert_eq!(err(json!({"TopN": "10"})), "TopN: must be an integer, not the string \"10\"");
    assert_eq!(
        err(json!({"ExcludeItems": "i1"})),
        "ExcludeItems: must be an array of item ids, not the string \"i1\""
    );
    assert_eq!(
        err(json!({"ExcludeItems": ["i1", 2]})),
        "ExcludeItems: [1] must be a string, not the number 2"
    );
    assert_eq!(err(json!({"MinScore": "0.5"})), "MinScore: must be a number, not the string \"0.5\"");
    assert_eq!(
        err(json!({"BatchInferenceJobArn": "job"})),
        "BatchInferenceJobArn: must be an ARN (arn:...), not \"job\""
    );
    assert_eq!(err(json!({"Date": "2026-02-30"})), "Date: must be a date, YYYY-MM-DD, not \"2026-02-30\"");
    assert_eq!(err(json!({"Date": "2026-1-05"})), "Date: must be a date, YYYY-MM-DD, not \"2026-1-05\"");
    assert_eq!(err(json!({"Date": 20261129})), "Date: must be a date, YYYY-MM-DD, not the number 20261129");
    assert_eq!(
        err(json!({"PicksPath": "bucket/picks/"})),
        "PicksPath: must be an s3:// path, s3://bucket/prefix/, not \"bucket/picks/\" (no s3://)"
    );
    assert_eq!(
        err(json!({"BatchOutputPath": "s3:///out/"})),
        "BatchOutputPath: must be an s3:// path, s3://bucket/prefix/, not \"s3:///out/\" (no bucket)"
    );
    assert_eq!(err(json!({"Topn": 5})), "Topn: unknown parameter; did you mean TopN?");
    // Several problems at once, unknown names first.
    assert_eq!(
        PublishPicks::from_parameters(&json!({"Bucket": "b", "Date": "today", "TopN": 0})).unwrap_err(),
        "Bucket: unknown parameter (expected BatchOutputPath, PicksPath, Date, TopN, ExcludeItems, MinScore, \
         BatchInferenceJobArn, SolutionVersionArn); BatchOutputPath: required (the batch inference job's output \
         path, s3://bucket/prefix/); PicksPath: required (where the picks go, s3://bucket/prefix/); Date: must be \
         a date, YYYY-MM-DD, not \"today\"; TopN: must be 1 to 500, not 0"
    );
    assert_eq!(
        PublishPicks::from_parameters(&json!([1])).unwrap_err(),
        "Parameters: must be an object, not an array"
    );
}

#[test]
fn check_static_reports_names_missing_fields_and_literal_types() {
    assert_eq!(PublishPicks::check_static(&params("2026-11-29", json!({"TopN": 25}))), Vec::<String>::new());
    // Dynamic values are checked by name only.
    let dynamic = json!({
        "BatchOutputPath.$": "$.job.JobOutput.S3DataDestination.Path",
        "PicksPath": "s3://data/picks/",
        "Date.$": "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)",
        "TopN.$": "$.topN",
        "ExcludedItems.$": "$.exclude",
    });
    assert_eq!(
        PublishPicks::check_static(&dynamic),
        ["ExcludedItems: unknown parameter; did you mean ExcludeItems?"]
    );

    let problems = PublishPicks::check_static(&json!({
        "PicksPath": 7,
        "Date": "2026-11-29",
        "TopN": "ten",
        "TopN.$": "$.n",
        "MinScore": [0.5],
        "ExcludeItems": null,
        "SolutionVersionArn": true,
        "minscore": 1,
        "Something": 1,
    }));
    assert_eq!(
        problems,
        [
            "minscore: unknown parameter; did you mean MinScore?",
            "Something: unknown parameter (expected BatchOutputPath, PicksPath, Date, TopN, ExcludeItems, \
             MinScore, BatchInferenceJobArn, SolutionVersionArn)",
            "BatchOutputPath: required (the batch inference job's output path, s3://bucket/prefix/)",
            "PicksPath: must be an s3:// path, not the number 7",
            "TopN: given both as TopN and as TopN.$",
            "TopN: must be an integer, not the string \"ten\"",
            "MinScore: must be a number, not an array",
            "SolutionVersionArn: must be an ARN, not the boolean true",
        ]
    );
    assert_eq!(
        PublishPicks::check_static(&json!("x")),
        ["Parameters: must be an object, not the string \"x\""]
    );
}

/// The whole path: the emulator's own Personalize runs a batch inference job, and its output
/// is what gets published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_the_output_of_a_local_batch_inference_job() {
    let local = Local::start().await;
    let pz = clients::personalize(&local.emulator);
    let opts = SeedOptions { users: 120, items: 60, interactions: 3000, days: 30, clusters: 3, seed: 11 };
    let summary = write_demo_data(&local.root(), BUCKET, &opts).unwrap();
    let group = clients::dataset_group(&pz, "picks", "aws-user-personalization").await;
    let location = format!("s3://{BUCKET}/{}", summary.interactions_key);
    clients::import_and_wait(&pz, "picks-import", &group.dataset, &location, 10, 3000).await;
    let version = clients::train_and_wait(&pz, &group.solution).await;
    let job = pz
        .create_batch_inference_job()
        .job_name("picks-batch")
        .solution_version_arn(&version)
        .num_results(25)
        .job_input(
            BatchInferenceJobInput::builder()
                .s3_data_source(
                    S3DataConfig::builder()
                        .path(format!("s3://{BUCKET}/{}", summary.users_key))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .job_output(
            BatchInferenceJobOutput::builder()
                .s3_data_destination(
                    S3DataConfig::builder().path(format!("s3://{BUCKET}/batch/")).build().unwrap(),
                )
                .build(),
        )
        .role_arn(clients::ROLE)
        .send()
        .await
        .unwrap()
        .batch_inference_job_arn
        .unwrap();
    let status = clients::wait_for("batch inference", 10, 3000, || async {
        let j = pz.describe_batch_inference_job().batch_inference_job_arn(&job).send().await.unwrap();
        j.batch_inference_job.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");

    let req = PublishPicks::from_parameters(&json!({
        "BatchOutputPath": format!("s3://{BUCKET}/batch/"),
        "PicksPath": format!("s3://{BUCKET}/picks/"),
        "Date": "2026-11-29",
        "TopN": 10,
        "BatchInferenceJobArn": job,
        "SolutionVersionArn": version,
    }))
    .unwrap();
    let result = picks::publish(&local.s3, &req).await.unwrap();

    // Each user's picks are the first ten of the job's results, scores included.
    let out_key = local.keys("batch/").await.into_iter().find(|k| k.ends_with(".out")).unwrap();
    let batch = parse_lines(&local.text(&out_key).await);
    let published = parse_lines(&local.text("picks/2026-11-29/part-00000.jsonl").await);
    assert_eq!(batch.len(), opts.users);
    assert_eq!(published.len(), opts.users);
    let mut items = 0;
    for (b, p) in batch.iter().zip(&published) {
        let recommended = b["output"]["recommendedItems"].as_array().unwrap();
        let n = recommended.len().min(10);
        assert!(n > 0);
        items += n;
        assert_eq!(p["userId"], b["input"]["userId"]);
        assert_eq!(p["items"], json!(recommended[..n]));
        assert_eq!(p["scores"], json!(b["output"]["scores"].as_array().unwrap()[..n]));
    }
    assert_eq!(result["Users"], opts.users);
    assert_eq!(result["UsersWithErrors"], 0);
    assert_eq!(result["Items"], items);
    let manifest = local.json("picks/2026-11-29/manifest.json").await;
    assert_eq!(manifest["source"]["batchInferenceJobArn"], job.as_str());
    assert_eq!(manifest["source"]["solutionVersionArn"], version.as_str());
    local.shutdown().await;
}
