//! The local emulator's S3, driven by the real AWS SDK over loopback HTTP.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};
use recflow::local::s3::{self, S3Handle};
use tempfile::TempDir;
use tokio::net::TcpListener;

const MIB: usize = 1024 * 1024;

struct Local {
    dir: TempDir,
    server: S3Handle,
    client: Client,
}

impl Local {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = s3::start(&dir.path().join("s3"), listener).await.expect("start local S3");
        let client = client(&server, s3::ACCESS_KEY, s3::SECRET_KEY);
        Local { dir, server, client }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("s3")
    }

    async fn bucket(&self, name: &str) {
        self.client.create_bucket().bucket(name).send().await.expect("create bucket");
    }

    async fn put(&self, bucket: &str, key: &str, body: &[u8]) -> String {
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("put object");
        out.e_tag().expect("etag").to_owned()
    }

    /// Uploads `body` as `bucket`/`key` in one multipart part; gives the object's ETag.
    async fn put_one_part(&self, bucket: &str, key: &str, body: &'static [u8]) -> String {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("create upload");
        let id = upload.upload_id().expect("upload id");
        let part = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(body))
            .send()
            .await
            .expect("upload part");
        let parts = CompletedPart::builder().part_number(1).e_tag(part.e_tag().expect("etag")).build();
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(CompletedMultipartUpload::builder().parts(parts).build())
            .send()
            .await
            .expect("complete upload");
        done.e_tag().expect("etag").to_owned()
    }

    async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self.client.get_object().bucket(bucket).key(key).send().await.expect("get object");
        out.body.collect().await.expect("read body").into_bytes().to_vec()
    }
}

fn client(server: &S3Handle, access_key: &str, secret_key: &str) -> Client {
    let creds = Credentials::new(access_key, secret_key, None, None, "test");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// The error code and HTTP status of a failed call.
fn failure<E: ProvideErrorMetadata, T>(
    result: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) -> (String, u16) {
    let Err(err) = result else { panic!("the call was expected to fail") };
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or_default();
    (err.code().unwrap_or("<no code>").to_owned(), status)
}

/// Every path under `root`, relative, to compare the store before and after.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.insert(path.strip_prefix(root).expect("under root").to_owned());
        }
    }
    found
}

/// Compares bodies without printing megabytes when they differ.
#[track_caller]
fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual != expected {
        let first_difference = actual.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes, expected {}; first difference at {first_difference:?}",
            actual.len(),
            expected.len()
        );
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn md5_base64(data: &[u8]) -> String {
    BASE64.encode(Md5::digest(data))
}

#[tokio::test]
async fn basic_object_operations_round_trip() {
    let local = Local::start().await;
    assert!(local.server.endpoint().starts_with("http://127.0.0.1:"));
    local.bucket("data").await;

    let etag = local.put("data", "in/a.json", b"{\"a\":1}").await;
    local.put("data", "in/b.json", b"{\"b\":2}").await;
    local.put("data", "out/c.json", b"{\"c\":3}").await;
    assert_eq!(local.get("data", "in/a.json").await, b"{\"a\":1}");

    let head = local.client.head_object().bucket("data").key("in/a.json").send().await.expect("head");
    assert_eq!(head.content_length(), Some(7));
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    let listed = local.client.list_objects_v2().bucket("data").prefix("in/").send().await.expect("list");
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["in/a.json", "in/b.json"]);

    local
        .client
        .copy_object()
        .bucket("data")
        .key("copied/a.json")
        .copy_source("data/in/a.json")
        .send()
        .await
        .expect("copy");
    assert_eq!(local.get("data", "copied/a.json").await, b"{\"a\":1}");

    local.client.delete_object().bucket("data").key("in/a.json").send().await.expect("delete");
    let (code, status) = failure(local.client.get_object().bucket("data").key("in/a.json").send().await);
    assert_eq!((code.as_str(), status), ("NoSuchKey", 404));
    let data = recflow::local::s3::BucketName::parse("data").unwrap();
    let stored = recflow::local::s3::objects::object_path(&local.root(), &data, "in/b.json");
    assert_eq!(
        stored,
        local.root().join("data/in%2Fb.json"),
        "objects live at <root>/<bucket>/<name of key>"
    );
    assert!(stored.is_file());

    // The client still holds a pooled keep-alive connection; shutdown closes it and the port.
    let addr = local.server.addr();
    local.server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn large_object_and_three_part_multipart_upload_round_trip() {
    let local = Local::start().await;
    local.bucket("big").await;

    let blob = pattern(3 * MIB + 123, 7);
    local.put("big", "single.bin", &blob).await;
    assert_same_bytes(&local.get("big", "single.bin").await, &blob, "single put");

    let parts = [pattern(5 * MIB, 1), pattern(5 * MIB, 2), pattern(1000, 3)];
    let upload = local
        .client
        .create_multipart_upload()
        .bucket("big")
        .key("multi.bin")
        .send()
        .await
        .expect("create upload");
    let upload_id = upload.upload_id().expect("upload id");
    let mut completed = Vec::new();
    for (number, part) in (1..).zip(&parts) {
        let out = local
            .client
            .upload_part()
            .bucket("big")
            .key("multi.bin")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .expect("upload part");
        completed
            .push(CompletedPart::builder().part_number(number).e_tag(out.e_tag().expect("etag")).build());
    }
    let done = local
        .client
        .complete_multipart_upload()
        .bucket("big")
        .key("multi.bin")
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
        .send()
        .await
        .expect("complete upload");
    assert!(done.e_tag().expect("etag").ends_with("-3\""), "multipart ETag names its part count");
    assert_same_bytes(&local.get("big", "multi.bin").await, &parts.concat(), "multipart object");

    // partNumber reads one part of it, as S3 does: its bytes, its range, the part count.
    let second = local.client.get_object().bucket("big").key("multi.bin").part_number(2).send().await;
    let second = second.expect("part 2");
    assert_eq!(second.parts_count(), Some(3));
    assert_eq!(
        second.content_range(),
        Some(format!("bytes {}-{}/{}", 5 * MIB, 10 * MIB - 1, 10 * MIB + 1000).as_str())
    );
    let bytes = second.body.collect().await.expect("body").into_bytes();
    assert_same_bytes(&bytes, &parts[1], "part 2");
    let head = local.client.head_object().bucket("big").key("multi.bin").part_number(3).send().await;
    assert_eq!(head.expect("head part 3").content_length(), Some(1000));
    let beyond = local.client.get_object().bucket("big").key("multi.bin").part_number(4).send().await;
    assert_eq!(failure(beyond), ("InvalidPartNumber".to_owned(), 416));
    let whole = local.client.get_object().bucket("big").key("single.bin").part_number(1).send().await;
    assert_eq!(whole.expect("part 1 of a single upload").content_length(), Some(blob.len() as i64));

    local.server.shutdown().await;
}

/// Every key S3 allows is stored as itself (issue 8: `a` beside `a/b`, `a//b`, `./x`, `../x`,
/// a trailing `/` with a body, 1,024 bytes), read back, listed in UTF-8 binary order, rolled up
/// at the delimiter, paged, copied and deleted; none touches anything outside its bucket.
#[tokio::test]
async fn every_key_s3_allows_is_stored_as_itself_inside_its_bucket() {
    let local = Local::start().await;
    local.bucket("data").await;
    local.bucket("secret").await;
    local.put("secret", "k", b"private").await;
    let longest = format!("long/{}", "k".repeat(1019));
    let keys: Vec<String> = [
        "a",
        "a/b",
        "a//b",
        "./x",
        "../x",
        "x/../../other/k",
        "x/../../secret/k",
        "../secret/k",
        "a/./b",
        "/abs",
        "dir/",
        "100%/done",
        "plus+sign .csv",
        "é/ü",
        ".hidden",
        "..",
    ]
    .iter()
    .map(|k| k.to_string())
    .chain([longest.clone()])
    .collect();
    let outside = |root: &Path| -> BTreeSet<PathBuf> {
        tree(root).into_iter().filter(|p| !p.starts_with("data")).collect()
    };
    let before = outside(&local.root());

    for key in &keys {
        local.put("data", key, key.as_bytes()).await;
    }
    for key in &keys {
        assert_eq!(local.get("data", key).await, key.as_bytes(), "get {key:?}");
        let head = local.client.head_object().bucket("data").key(key).send().await.expect("head");
        assert_eq!(head.content_length(), Some(key.len() as i64), "head {key:?}");
    }
    assert_eq!(outside(&local.root()), before, "nothing outside the bucket was created or changed");
    assert!(!local.root().join("other").exists());
    assert_eq!(local.get("secret", "k").await, b"private");

    // One listing, in UTF-8 binary order, then pages of three that resume where they stopped.
    let mut sorted = keys.clone();
    sorted.sort();
    let all = local.client.list_objects_v2().bucket("data").send().await.expect("list");
    let listed: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, sorted);
    assert!(all.contents().iter().all(|o| o.e_tag().is_some() && o.size().is_some()));
    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let page = local
            .client
            .list_objects_v2()
            .bucket("data")
            .max_keys(3)
            .set_continuation_token(token)
            .send()
            .await
            .expect("page");
        assert!(page.key_count().unwrap_or(0) <= 3);
        paged.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        token = page.next_continuation_token().map(str::to_owned);
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
    }
    assert_eq!(paged, sorted);

    // The delimiter rolls keys up after the prefix: `a` and `a/` side by side.
    let rolled = local.client.list_objects_v2().bucket("data").delimiter("/").send().await.expect("rolled");
    let objects: Vec<&str> = rolled.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = rolled.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(objects, ["..", ".hidden", "a", "plus+sign .csv"]);
    assert_eq!(prefixes, ["../", "./", "/", "100%/", "a/", "dir/", "long/", "x/", "é/"]);
    let under_a =
        local.client.list_objects_v2().bucket("data").prefix("a/").delimiter("/").send().await.expect("a/");
    let objects: Vec<&str> = under_a.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = under_a.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!((objects, prefixes), (vec!["a/b"], vec!["a/./", "a//"]));

    // Copies and multipart uploads take such keys on both sides.
    local
        .client
        .copy_object()
        .bucket("data")
        .key("../copied")
        .copy_source("data/a//b")
        .send()
        .await
        .expect("copy");
    assert_eq!(local.get("data", "../copied").await, b"a//b");
    local.put_one_part("data", "./multi/", b"one part").await;
    assert_eq!(local.get("data", "./multi/").await, b"one part");

    // A key over 1,024 bytes is S3's KeyTooLongError; nothing is stored.
    let too_long = format!("{longest}x");
    let put =
        local.client.put_object().bucket("data").key(&too_long).body(ByteStream::from_static(b"x")).send();
    let (code, status) = failure(put.await);
    assert_eq!((code.as_str(), status), ("KeyTooLongError", 400));

    // Deleting `a` leaves `a/b`, and the other way round.
    local.client.delete_object().bucket("data").key("a").send().await.expect("delete a");
    assert_eq!(local.get("data", "a/b").await, b"a/b");
    let batch = Delete::builder()
        .set_objects(Some(
            keys.iter()
                .chain(["../copied".to_string(), "./multi/".to_string()].iter())
                .map(|k| ObjectIdentifier::builder().key(k).build().expect("identifier"))
                .collect(),
        ))
        .build()
        .expect("delete request");
    let out = local.client.delete_objects().bucket("data").delete(batch).send().await.expect("batch delete");
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    let left = local.client.list_objects_v2().bucket("data").send().await.expect("list");
    assert!(left.contents().is_empty(), "{:?}", left.contents());
    local.client.delete_bucket().bucket("data").send().await.expect("the emptied bucket deletes");
    assert_eq!(local.get("secret", "k").await, b"private");
    local.server.shutdown().await;
}

#[tokio::test]
async fn writes_into_a_missing_bucket_answer_no_such_bucket() {
    let local = Local::start().await;
    local.bucket("present").await;
    local.put("present", "src", b"source").await;
    let before = tree(&local.root());

    let put = local.client.put_object().bucket("missing").key("k").body(ByteStream::from_static(b"x")).send();
    assert_eq!(failure(put.await), ("NoSuchBucket".to_owned(), 404));
    let copy = local.client.copy_object().bucket("missing").key("k").copy_source("present/src").send();
    assert_eq!(failure(copy.await).0, "NoSuchBucket");
    let create = local.client.create_multipart_upload().bucket("missing").key("k").send();
    assert_eq!(failure(create.await).0, "NoSuchBucket");
    let get = local.client.get_object().bucket("missing").key("k").send();
    assert_eq!(failure(get.await).0, "NoSuchBucket");

    assert!(!local.root().join("missing").exists(), "no bucket folder was created");
    assert_eq!(tree(&local.root()), before);
    local.server.shutdown().await;
}

#[tokio::test]
async fn multipart_writes_into_a_deleted_bucket_answer_no_such_bucket() {
    let local = Local::start().await;
    local.bucket("doomed").await;
    let upload = local.client.create_multipart_upload().bucket("doomed").key("k").send().await;
    let upload_id = upload.expect("create upload").upload_id().expect("upload id").to_owned();
    let part = local
        .client
        .upload_part()
        .bucket("doomed")
        .key("k")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"part one"))
        .send()
        .await
        .expect("upload part");
    let done = CompletedPart::builder().part_number(1).e_tag(part.e_tag().expect("etag")).build();
    local.client.delete_bucket().bucket("doomed").send().await.expect("delete bucket");

    let another = local
        .client
        .upload_part()
        .bucket("doomed")
        .key("k")
        .upload_id(&upload_id)
        .part_number(2)
        .body(ByteStream::from_static(b"part two"))
        .send()
        .await;
    assert_eq!(failure(another).0, "NoSuchBucket");
    let complete = local
        .client
        .complete_multipart_upload()
        .bucket("doomed")
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(done).build())
        .send()
        .await;
    assert_eq!(failure(complete).0, "NoSuchBucket");
    assert!(!local.root().join("doomed").exists(), "the deleted bucket was not brought back");
    local.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_if_none_match_puts_let_exactly_one_win() {
    let local = Local::start().await;
    local.bucket("race").await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let client = local.client.clone();
        tasks.spawn(async move {
            let body = format!("writer {i}").into_bytes();
            let result = client
                .put_object()
                .bucket("race")
                .key("once")
                .body(ByteStream::from(body.clone()))
                .if_none_match("*")
                .send()
                .await;
            (body, result.map(|_| ()).map_err(|e| failure::<_, ()>(Err(e))))
        });
    }
    let mut winners = Vec::new();
    let mut refusals = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            (body, Ok(())) => winners.push(body),
            (_, Err((code, status))) => {
                assert_eq!((code.as_str(), status), ("PreconditionFailed", 412));
                refusals += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one conditional put wins");
    assert_eq!(refusals, 15);
    assert_eq!(local.get("race", "once").await, winners[0], "the stored body is the winner's");
    local.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_if_none_match_completions_let_exactly_one_win() {
    let local = Local::start().await;
    local.bucket("race").await;

    let mut uploads = Vec::new();
    for i in 0..8 {
        let upload = local.client.create_multipart_upload().bucket("race").key("assembled").send().await;
        let upload_id = upload.expect("create upload").upload_id().expect("upload id").to_owned();
        let body = format!("assembly {i}").into_bytes();
        let part = local
            .client
            .upload_part()
            .bucket("race")
            .key("assembled")
            .upload_id(&upload_id)
            .part_number(1)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("upload part");
        let done = CompletedPart::builder().part_number(1).e_tag(part.e_tag().expect("etag")).build();
        uploads.push((upload_id, done, body));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (upload_id, part, body) in uploads {
        let client = local.client.clone();
        tasks.spawn(async move {
            let result = client
                .complete_multipart_upload()
                .bucket("race")
                .key("assembled")
                .upload_id(upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().parts(part).build())
                .if_none_match("*")
                .send()
                .await;
            (body, result.map(|_| ()).map_err(|e| failure::<_, ()>(Err(e))))
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            (body, Ok(())) => winners.push(body),
            (_, Err((code, status))) => assert_eq!((code.as_str(), status), ("PreconditionFailed", 412)),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one conditional completion wins");
    assert_eq!(local.get("race", "assembled").await, winners[0]);
    local.server.shutdown().await;
}

#[tokio::test]
async fn if_match_with_a_stale_etag_is_refused() {
    let local = Local::start().await;
    local.bucket("cas").await;
    let first = local.put("cas", "doc", b"version 1").await;
    let second = local.put("cas", "doc", b"version 2").await;
    assert_ne!(first, second);

    let stale = local
        .client
        .put_object()
        .bucket("cas")
        .key("doc")
        .body(ByteStream::from_static(b"lost update"))
        .if_match(&first)
        .send()
        .await;
    assert_eq!(failure(stale), ("PreconditionFailed".to_owned(), 412));
    assert_eq!(local.get("cas", "doc").await, b"version 2");

    local
        .client
        .put_object()
        .bucket("cas")
        .key("doc")
        .body(ByteStream::from_static(b"version 3"))
        .if_match(&second)
        .send()
        .await
        .expect("current ETag matches");
    assert_eq!(local.get("cas", "doc").await, b"version 3");
    local.server.shutdown().await;
}

#[tokio::test]
async fn wrong_content_md5_stores_nothing() {
    let local = Local::start().await;
    local.bucket("md5").await;
    let original = pattern(64 * 1024, 9);
    let etag = local.put("md5", "kept", &original).await;
    let stored = local.root().join("md5/kept");
    let original_file = std::fs::read(&stored).expect("stored object");

    let replacement = pattern(64 * 1024, 10);
    let wrong = md5_base64(b"something else");
    let put = local
        .client
        .put_object()
        .bucket("md5")
        .key("kept")
        .body(ByteStream::from(replacement.clone()))
        .content_md5(&wrong)
        .send()
        .await;
    assert_eq!(failure(put), ("BadDigest".to_owned(), 400));
    assert_same_bytes(
        &std::fs::read(&stored).expect("stored object"),
        &original_file,
        "file after BadDigest",
    );
    assert_same_bytes(&local.get("md5", "kept").await, &original, "object after BadDigest");
    let head = local.client.head_object().bucket("md5").key("kept").send().await.expect("head");
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    let fresh = local
        .client
        .put_object()
        .bucket("md5")
        .key("fresh")
        .body(ByteStream::from(replacement.clone()))
        .content_md5(&wrong)
        .send()
        .await;
    assert_eq!(failure(fresh).0, "BadDigest");
    assert!(!local.root().join("md5/fresh").exists(), "no object for a corrupt first upload");
    let (code, _) = failure(local.client.head_object().bucket("md5").key("fresh").send().await);
    assert_eq!(code, "NotFound");

    // A declared x-amz-checksum-crc32 is held to the same rule.
    let crc = local
        .client
        .put_object()
        .bucket("md5")
        .key("kept")
        .body(ByteStream::from(replacement.clone()))
        .checksum_crc32("AAAAAA==")
        .send()
        .await;
    assert_eq!(failure(crc).0, "BadDigest");
    assert_same_bytes(
        &std::fs::read(&stored).expect("stored object"),
        &original_file,
        "file after bad CRC32",
    );

    // A part is checked the same way.
    let upload = local.client.create_multipart_upload().bucket("md5").key("parts").send().await;
    let upload_id = upload.expect("create upload").upload_id().expect("upload id").to_owned();
    let part = local
        .client
        .upload_part()
        .bucket("md5")
        .key("parts")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(replacement.clone()))
        .content_md5(&wrong)
        .send()
        .await;
    assert_eq!(failure(part).0, "BadDigest");

    // The right digest is accepted.
    local
        .client
        .put_object()
        .bucket("md5")
        .key("kept")
        .body(ByteStream::from(replacement.clone()))
        .content_md5(md5_base64(&replacement))
        .send()
        .await
        .expect("matching Content-MD5");
    assert_same_bytes(&local.get("md5", "kept").await, &replacement, "object after a matching put");
    local.server.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_refused() {
    let local = Local::start().await;
    local.bucket("auth").await;

    let wrong_secret = client(&local.server, s3::ACCESS_KEY, "not-the-secret");
    let refused = wrong_secret.list_objects_v2().bucket("auth").send().await;
    let message = refused.as_ref().err().and_then(|e| e.message()).map(str::to_owned);
    let (code, status) = failure(refused);
    assert_eq!((code.as_str(), status), ("SignatureDoesNotMatch", 403));
    assert!(message.is_some_and(|m| m.starts_with("The request signature we calculated")), "S3's message");

    let unknown_key = client(&local.server, "somebody-else", s3::SECRET_KEY);
    let put = unknown_key.put_object().bucket("auth").key("k").body(ByteStream::from_static(b"x")).send();
    let (code, status) = failure(put.await);
    assert_eq!((code.as_str(), status), ("InvalidAccessKeyId", 403));
    assert!(!local.root().join("auth/k").exists());
    local.server.shutdown().await;
}

#[tokio::test]
async fn create_bucket_refuses_names_that_break_s3s_naming_rules() {
    let local = Local::start().await;
    for name in ["xn--bucket", "192.168.5.4", "amzn-s3-demo-bucket", "bucket-s3alias", "bucket.mrap"] {
        let refused = local.client.create_bucket().bucket(name).send().await;
        assert_eq!(failure(refused), ("InvalidBucketName".to_owned(), 400), "{name}");
    }
    // Names s3s refuses before the store sees them carry S3's message too.
    for name in ["ab", "Upper-Case", "under_score"] {
        let refused = local.client.create_bucket().bucket(name).send().await;
        let message = refused.as_ref().err().and_then(|e| e.message()).map(str::to_owned);
        assert_eq!(failure(refused).0, "InvalidBucketName", "{name}");
        assert!(message.is_some_and(|m| m.starts_with("The specified bucket is not valid.")), "{name}");
    }
    assert!(tree(&local.root()).iter().all(|p| !p.to_string_lossy().contains("bucket")));
}

/// Every S3 answer names its request (`x-amz-request-id`, `x-amz-id-2`), errors in their body
/// too, so SDK errors can be traced as on S3.
#[tokio::test]
async fn answers_and_errors_carry_request_ids() {
    use aws_sdk_s3::operation::{RequestId as _, RequestIdExt as _};
    let local = Local::start().await;
    local.bucket("ids").await;
    let put =
        local.client.put_object().bucket("ids").key("k").body(ByteStream::from_static(b"x")).send().await;
    let put = put.expect("put");
    let first = put.request_id().expect("request id").to_owned();
    assert_eq!(first.len(), 16, "{first}");
    assert!(put.extended_request_id().is_some_and(|id| !id.is_empty()));
    let missing = local.client.get_object().bucket("ids").key("absent").send().await.unwrap_err();
    let id = missing.request_id().expect("an error's request id");
    assert_eq!(id.len(), 16, "{id}");
    assert_ne!(id, first, "each request has its own id");
    let raw = missing.raw_response().expect("a response").body().bytes().expect("buffered");
    let body = String::from_utf8_lossy(raw);
    assert!(body.contains(&format!("<RequestId>{id}</RequestId>")), "{body}");
    assert!(body.contains("<HostId>"), "{body}");
    local.server.shutdown().await;
}

/// BucketAlreadyOwnedByYou: "Amazon S3 returns this error in all Amazon Web Services Regions
/// except in the North Virginia Region", where a repeated CreateBucket answers 200 OK.
#[tokio::test]
async fn a_repeated_create_bucket_is_200_in_us_east_1_and_409_elsewhere() {
    let local = Local::start().await;
    local.bucket("twice").await;
    local.put("twice", "kept.csv", b"kept").await;
    local.client.create_bucket().bucket("twice").send().await.expect("us-east-1 answers 200");
    assert_eq!(local.get("twice", "kept.csv").await, b"kept");

    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let limits = recflow::local::http_server::ConnectionLimits::default();
    let server = s3::start_with(&dir.path().join("s3"), listener, limits, "eu-west-1").await.expect("start");
    let client = client(&server, s3::ACCESS_KEY, s3::SECRET_KEY);
    let in_region = || {
        let config = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        client.create_bucket().bucket("twice").create_bucket_configuration(config)
    };
    in_region().send().await.expect("first create");
    let refused = in_region().send().await;
    assert_eq!(failure(refused), ("BucketAlreadyOwnedByYou".to_owned(), 409));
    let elsewhere = client.create_bucket().bucket("unplaced").send().await;
    assert_eq!(failure(elsewhere), ("IllegalLocationConstraintException".to_owned(), 400));
    let located = client.get_bucket_location().bucket("twice").send().await.unwrap();
    assert_eq!(located.location_constraint().map(|c| c.as_str()), Some("eu-west-1"));
    server.shutdown().await;
    local.server.shutdown().await;
}

#[tokio::test]
async fn delete_bucket_refuses_a_bucket_that_holds_objects() {
    let local = Local::start().await;
    local.bucket("full").await;
    local.put("full", "deep/down/object.csv", b"kept").await;
    let refused = local.client.delete_bucket().bucket("full").send().await;
    assert_eq!(failure(refused), ("BucketNotEmpty".to_owned(), 409));
    assert_eq!(local.get("full", "deep/down/object.csv").await, b"kept");
    local.client.delete_object().bucket("full").key("deep/down/object.csv").send().await.unwrap();
    local.client.delete_bucket().bucket("full").send().await.expect("an emptied bucket can go");
    let gone = local.client.head_bucket().bucket("full").send().await;
    assert_eq!(failure(gone).1, 404);
}

#[tokio::test]
async fn listings_with_encoding_type_url_encode_names_and_decode_back() {
    use aws_sdk_s3::types::EncodingType;
    let local = Local::start().await;
    local.bucket("enc").await;
    local.put("enc", "plus+sign%20.csv", b"p").await;
    local.put("enc", "run books/x.txt", b"r").await;
    let v2 = local
        .client
        .list_objects_v2()
        .bucket("enc")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(v2.encoding_type(), Some(&EncodingType::Url));
    let keys: Vec<&str> = v2.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["plus%2Bsign%2520.csv"]);
    let prefixes: Vec<&str> = v2.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, ["run%20books/"]);
    // Decoded, each name fetches its object, as the AWS CLI does it.
    let decoded = percent_decode(keys[0]);
    assert_eq!(decoded, "plus+sign%20.csv");
    assert_eq!(local.get("enc", &decoded).await, b"p");

    let v1 = local
        .client
        .list_objects()
        .bucket("enc")
        .prefix("plus+")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.prefix(), Some("plus%2B"));
    let keys: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["plus%2Bsign%2520.csv"]);
    // Without the parameter the names come back as they are.
    let plain = local.client.list_objects_v2().bucket("enc").send().await.unwrap();
    let keys: Vec<&str> = plain.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["plus+sign%20.csv", "run books/x.txt"]);
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn missing_keys_and_buckets_carry_s3s_messages() {
    let local = Local::start().await;
    local.bucket("msgs").await;
    let err = local.client.get_object().bucket("msgs").key("absent").send().await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
    assert_eq!(err.message(), Some("The specified key does not exist."));
    let err = local.client.get_object().bucket("nobucket").key("absent").send().await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchBucket"));
    assert_eq!(err.message(), Some("The specified bucket does not exist"));
    let err = local.client.list_objects_v2().bucket("nobucket").send().await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchBucket"));
    assert_eq!(err.message(), Some("The specified bucket does not exist"));
}

#[tokio::test]
async fn an_upload_id_works_only_for_its_own_bucket_and_key() {
    let local = Local::start().await;
    local.bucket("mpu").await;
    local.bucket("other").await;
    let upload = local.client.create_multipart_upload().bucket("mpu").key("a").send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let part = |bucket: &'static str, key: &'static str| {
        local
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(b"part"))
            .send()
    };
    assert_eq!(failure(part("mpu", "b").await), ("NoSuchUpload".to_owned(), 404));
    assert_eq!(failure(part("other", "a").await), ("NoSuchUpload".to_owned(), 404));
    let etag = part("mpu", "a").await.unwrap().e_tag().unwrap().to_owned();
    let parts = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(&etag).build())
        .build();
    let complete = |key: &'static str| {
        local
            .client
            .complete_multipart_upload()
            .bucket("mpu")
            .key(key)
            .upload_id(id)
            .multipart_upload(parts.clone())
            .send()
    };
    assert_eq!(failure(complete("b").await), ("NoSuchUpload".to_owned(), 404));
    assert!(local.client.head_object().bucket("mpu").key("b").send().await.is_err(), "b was not written");
    complete("a").await.expect("its own key completes");
    assert_eq!(local.get("mpu", "a").await, b"part");
    // Completed, the id is gone.
    assert_eq!(failure(complete("a").await), ("NoSuchUpload".to_owned(), 404));
    let bogus =
        local.client.abort_multipart_upload().bucket("mpu").key("a").upload_id("not-an-id").send().await;
    assert_eq!(failure(bogus), ("NoSuchUpload".to_owned(), 404));
}

/// A body far over the XML body limit, sent by a client that keeps writing: the early 4xx
/// answer must reach it, not a connection reset.
#[tokio::test]
async fn a_body_over_the_limit_gets_a_4xx_answer_not_a_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let local = Local::start().await;
    local.bucket("big").await;
    let declared = 64 * MIB;
    let stream = tokio::net::TcpStream::connect(local.server.addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /big?delete HTTP/1.1\r\nHost: {}\r\nContent-Type: application/xml\r\nContent-Length: {declared}\r\n\r\n",
        local.server.addr()
    );
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; MIB];
        for _ in 0..declared / MIB {
            writer.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut response = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), reader.read_to_end(&mut response))
        .await
        .expect("an answer within 30 s");
    let text = String::from_utf8_lossy(&response);
    assert!(read.is_ok(), "the connection was reset: {read:?}, read so far {text:?}");
    let status: u16 = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_default();
    assert!((400..500).contains(&status), "{text}");
    sender.abort();
}

/// GetObject and HeadObject honour If-Match, If-None-Match, If-Modified-Since and
/// If-Unmodified-Since as S3 does (GetObject API reference): 412 for a failed If-Match or
/// If-Unmodified-Since, 304 for a matching If-None-Match or a failed If-Modified-Since.
#[tokio::test]
async fn conditional_reads_answer_304_and_412_as_s3_does() {
    use aws_sdk_s3::primitives::DateTime;
    let local = Local::start().await;
    local.bucket("cond").await;
    let etag = local.put("cond", "k", b"body").await;
    let past = DateTime::from_secs(946_684_800);
    let future = DateTime::from_secs(4_102_444_800);
    let get = || local.client.get_object().bucket("cond").key("k");

    assert_eq!(failure(get().if_none_match(&etag).send().await).1, 304);
    assert_eq!(failure(get().if_match("\"other\"").send().await), ("PreconditionFailed".to_owned(), 412));
    assert_eq!(failure(get().if_modified_since(future).send().await).1, 304);
    assert_eq!(failure(get().if_unmodified_since(past).send().await).1, 412);
    let head = local.client.head_object().bucket("cond").key("k");
    assert_eq!(failure(head.if_none_match(&etag).send().await).1, 304);

    let ok = get().if_match(&etag).if_none_match("\"other\"").if_modified_since(past).send().await;
    let body = ok.expect("every condition holds").body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"body");
    local.server.shutdown().await;
}

/// CopyObject onto itself without REPLACE is S3's InvalidRequest; a copy's ETag is the MD5 of
/// its bytes even from a multipart source; stored checksums come back only with
/// `x-amz-checksum-mode: ENABLED`; ListObjects (v1) gives NextMarker only with a delimiter.
#[tokio::test]
async fn copies_checksum_mode_and_v1_markers_follow_s3() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, MetadataDirective};
    let local = Local::start().await;
    local.bucket("cpy").await;
    local.put("cpy", "k", b"body").await;
    let onto_itself = local.client.copy_object().bucket("cpy").key("k").copy_source("cpy/k").send().await;
    assert_eq!(failure(onto_itself), ("InvalidRequest".to_owned(), 400));
    local
        .client
        .copy_object()
        .bucket("cpy")
        .key("k")
        .copy_source("cpy/k")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .send()
        .await
        .expect("a copy onto itself that replaces the metadata");
    let head = local.client.head_object().bucket("cpy").key("k").send().await.expect("head");
    assert_eq!(head.content_type(), Some("text/plain"));
    // Changing the storage class is a change too (`aws s3 cp s3://b/k s3://b/k --storage-class`);
    // the class comes from the request, the metadata from the source.
    local
        .client
        .copy_object()
        .bucket("cpy")
        .key("k")
        .copy_source("cpy/k")
        .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
        .send()
        .await
        .expect("a copy onto itself that changes the storage class");
    let head = local.client.head_object().bucket("cpy").key("k").send().await.expect("head");
    assert_eq!(head.storage_class(), Some(&aws_sdk_s3::types::StorageClass::StandardIa));
    assert_eq!(head.content_type(), Some("text/plain"));

    let multipart = local.put_one_part("cpy", "m", b"multi").await;
    assert!(multipart.ends_with("-1\""));
    let copy =
        local.client.copy_object().bucket("cpy").key("m2").copy_source("cpy/m").send().await.expect("copy");
    let plain = format!("\"{}\"", hex::encode(Md5::digest(b"multi")));
    assert_eq!(copy.copy_object_result().and_then(|r| r.e_tag()), Some(plain.as_str()));

    local
        .client
        .put_object()
        .bucket("cpy")
        .key("sum")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"summed"))
        .send()
        .await
        .expect("put with a checksum");
    let asked = local.client.head_object().bucket("cpy").key("sum").checksum_mode(ChecksumMode::Enabled);
    assert!(asked.send().await.expect("head").checksum_sha256().is_some());
    let raw = local.client.head_object().bucket("cpy").key("sum").send().await.expect("head");
    assert_eq!(raw.checksum_sha256(), None);

    let v1 = local.client.list_objects().bucket("cpy").max_keys(1).send().await.expect("v1");
    assert_eq!((v1.is_truncated(), v1.next_marker()), (Some(true), None));
    let v1 = local.client.list_objects().bucket("cpy").max_keys(1).delimiter("/").send().await.expect("v1");
    assert_eq!(v1.next_marker(), Some("k"));
    local.server.shutdown().await;
}

/// ListMultipartUploads finds uploads in progress (so abandoned ones can be aborted), by key,
/// with markers and a delimiter.
#[tokio::test]
async fn list_multipart_uploads_pages_by_key_and_upload_id() {
    let local = Local::start().await;
    local.bucket("ups").await;
    local.bucket("other").await;
    let mut ids = Vec::new();
    for key in ["a", "b/1", "b/2", "c", "c"] {
        let upload = local.client.create_multipart_upload().bucket("ups").key(key).send().await.expect("mpu");
        ids.push((key, upload.upload_id().unwrap().to_owned()));
    }
    local.client.create_multipart_upload().bucket("other").key("a").send().await.expect("mpu elsewhere");

    let all = local.client.list_multipart_uploads().bucket("ups").send().await.expect("list");
    let keys: Vec<&str> = all.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["a", "b/1", "b/2", "c", "c"]);
    assert_eq!(all.is_truncated(), Some(false));

    let rolled =
        local.client.list_multipart_uploads().bucket("ups").delimiter("/").send().await.expect("list");
    let keys: Vec<&str> = rolled.uploads().iter().filter_map(|u| u.key()).collect();
    let prefixes: Vec<&str> = rolled.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!((keys, prefixes), (vec!["a", "c", "c"], vec!["b/"]));

    // Pages of one with a delimiter: the common prefix comes once, not again after its page.
    let mut names = Vec::new();
    let mut key_marker = None;
    loop {
        let page = local
            .client
            .list_multipart_uploads()
            .bucket("ups")
            .delimiter("/")
            .max_uploads(1)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(None)
            .send()
            .await
            .expect("page");
        names.extend(page.uploads().iter().filter_map(|u| u.key().map(str::to_owned)));
        names.extend(page.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)));
        if page.is_truncated() != Some(true) {
            break;
        }
        assert!(names.len() < 10, "the listing does not end: {names:?}");
        key_marker = page.next_key_marker().map(str::to_owned);
    }
    // The two uploads of `c` share one key: a key marker alone passes both.
    assert_eq!(names, ["a", "b/", "c"]);

    let mut seen = Vec::new();
    let (mut key_marker, mut id_marker) = (None, None);
    loop {
        let page = local
            .client
            .list_multipart_uploads()
            .bucket("ups")
            .max_uploads(2)
            .set_key_marker(key_marker)
            .set_upload_id_marker(id_marker)
            .send()
            .await
            .expect("page");
        seen.extend(page.uploads().iter().map(|u| u.upload_id().unwrap().to_owned()));
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        id_marker = page.next_upload_id_marker().map(str::to_owned);
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let mut expected: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);

    for (key, id) in &ids {
        local
            .client
            .abort_multipart_upload()
            .bucket("ups")
            .key(*key)
            .upload_id(id)
            .send()
            .await
            .expect("abort");
    }
    let none = local.client.list_multipart_uploads().bucket("ups").send().await.expect("list");
    assert!(none.uploads().is_empty());
    local.server.shutdown().await;
}

/// A storage class given on a write is kept and shown by HeadObject and listings (STANDARD is
/// not named in headers, as S3 does); the archive classes, whose objects S3 cannot read until
/// restored, are refused rather than ignored; every object reports S3's default encryption.
#[tokio::test]
async fn storage_classes_are_kept_or_refused_and_encryption_is_reported() {
    use aws_sdk_s3::types::{ObjectStorageClass, ServerSideEncryption, StorageClass};
    let local = Local::start().await;
    local.bucket("classes").await;
    let put = |key: &'static str, class: StorageClass| {
        local
            .client
            .put_object()
            .bucket("classes")
            .key(key)
            .storage_class(class)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    let out = put("ia", StorageClass::StandardIa).await.expect("STANDARD_IA");
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    put("std", StorageClass::Standard).await.expect("STANDARD");
    assert_eq!(failure(put("cold", StorageClass::Glacier).await), ("NotImplemented".to_owned(), 501));

    let head = local.client.head_object().bucket("classes").key("ia").send().await.expect("head");
    assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa));
    let head = local.client.head_object().bucket("classes").key("std").send().await.expect("head");
    assert_eq!(
        (head.storage_class(), head.server_side_encryption()),
        (None, Some(&ServerSideEncryption::Aes256))
    );
    let listed = local.client.list_objects_v2().bucket("classes").send().await.expect("list");
    let classes: Vec<_> =
        listed.contents().iter().map(|o| (o.key().unwrap(), o.storage_class().cloned())).collect();
    assert_eq!(
        classes,
        [("ia", Some(ObjectStorageClass::StandardIa)), ("std", Some(ObjectStorageClass::Standard))]
    );
    local.server.shutdown().await;
}

/// Sends a presigned request's head and the first `sent` bytes of `body` over a raw connection,
/// so a test can act while the body is still arriving; [`HalfSent::finish`] sends the rest.
struct HalfSent {
    stream: tokio::net::TcpStream,
    rest: Vec<u8>,
}

impl HalfSent {
    async fn start(
        server: &S3Handle,
        request: aws_sdk_s3::presigning::PresignedRequest,
        body: &[u8],
        sent: usize,
    ) -> HalfSent {
        use tokio::io::AsyncWriteExt as _;
        let uri: hyper::Uri = request.uri().parse().expect("presigned uri");
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            request.method(),
            uri.path_and_query().expect("path"),
            uri.authority().expect("authority"),
            body.len()
        );
        for (name, value) in request.headers() {
            if !name.eq_ignore_ascii_case("host") {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("\r\n");
        let mut stream = tokio::net::TcpStream::connect(server.addr()).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("send head");
        stream.write_all(&body[..sent]).await.expect("send first bytes");
        stream.flush().await.expect("flush");
        // The server has the head and is receiving the body once it made its temporary file.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        HalfSent { stream, rest: body[sent..].to_vec() }
    }

    /// Sends the rest of the body; the status code and the response's body.
    async fn finish(mut self) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        self.stream.write_all(&self.rest).await.expect("send the rest");
        let mut answer = Vec::new();
        self.stream.read_to_end(&mut answer).await.expect("read the answer");
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }
}

fn presigning() -> aws_sdk_s3::presigning::PresigningConfig {
    aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300)).expect("config")
}

/// S3: a part that arrives for an aborted upload is NoSuchUpload (UploadPart API reference),
/// and aborting never leaves part of the upload behind.
#[tokio::test]
async fn a_part_still_arriving_when_its_upload_is_aborted_answers_no_such_upload() {
    let local = Local::start().await;
    local.bucket("aborts").await;
    let upload = local.client.create_multipart_upload().bucket("aborts").key("k").send().await;
    let upload_id = upload.expect("create").upload_id().expect("id").to_owned();
    let part = local.client.upload_part().bucket("aborts").key("k").upload_id(&upload_id).part_number(1);
    let body = pattern(64 * 1024, 5);
    let arriving =
        HalfSent::start(&local.server, part.presigned(presigning()).await.unwrap(), &body, 1000).await;
    local
        .client
        .abort_multipart_upload()
        .bucket("aborts")
        .key("k")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let (status, text) = arriving.finish().await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("<Code>NoSuchUpload</Code>"), "{text}");
    // An upload id is the text S3 gave, nothing equivalent: one upload, one id.
    let other = local.client.create_multipart_upload().bucket("aborts").key("k").send().await.unwrap();
    let other_id = other.upload_id().unwrap();
    for variant in [other_id.to_uppercase(), other_id.replace('-', ""), format!("{{{other_id}}}")] {
        let aborted =
            local.client.abort_multipart_upload().bucket("aborts").key("k").upload_id(&variant).send();
        assert_eq!(failure(aborted.await).0, "NoSuchUpload", "{variant}");
    }
    local.client.abort_multipart_upload().bucket("aborts").key("k").upload_id(other_id).send().await.unwrap();
    let uploads = Path::new(".uploads");
    let left: Vec<_> =
        tree(&local.root()).into_iter().filter(|p| p.starts_with(uploads) && p != uploads).collect();
    assert!(left.is_empty(), "nothing of the upload is left: {left:?}");
    local.server.shutdown().await;
}

/// A bucket deleted while an object's body arrives stays deleted, and the write answers
/// NoSuchBucket.
#[tokio::test]
async fn a_put_still_arriving_when_its_bucket_is_deleted_answers_no_such_bucket() {
    let local = Local::start().await;
    local.bucket("brief").await;
    let put = local.client.put_object().bucket("brief").key("k");
    let body = pattern(64 * 1024, 6);
    let arriving =
        HalfSent::start(&local.server, put.presigned(presigning()).await.unwrap(), &body, 1000).await;
    local.client.delete_bucket().bucket("brief").send().await.expect("an empty bucket is deleted");
    let (status, text) = arriving.finish().await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("<Code>NoSuchBucket</Code>"), "{text}");
    assert!(!local.root().join("brief").exists(), "the bucket was not brought back");
    let buckets = local.client.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty(), "{buckets:?}");
    local.server.shutdown().await;
}

/// A part file that is not the one its record describes (changed on disk) is not put into the
/// object: CompleteMultipartUpload answers InvalidPart.
#[tokio::test]
async fn a_part_changed_on_disk_is_refused_at_completion() {
    let local = Local::start().await;
    local.bucket("parts").await;
    let upload = local.client.create_multipart_upload().bucket("parts").key("k").send().await;
    let upload_id = upload.expect("create").upload_id().expect("id").to_owned();
    let out = local
        .client
        .upload_part()
        .bucket("parts")
        .key("k")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"the part"))
        .send()
        .await
        .expect("upload part");
    let part_file = local.root().join(".uploads").join(&upload_id).join("1.part");
    std::fs::write(&part_file, b"other bytes").unwrap();
    let done = CompletedPart::builder().part_number(1).e_tag(out.e_tag().unwrap()).build();
    let complete = local
        .client
        .complete_multipart_upload()
        .bucket("parts")
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(done).build())
        .send()
        .await;
    assert_eq!(failure(complete), ("InvalidPart".to_owned(), 400));
    let get = local.client.get_object().bucket("parts").key("k").send().await;
    assert_eq!(failure(get).0, "NoSuchKey");
    local.server.shutdown().await;
}

/// Copies every file under `from` to `to`: new inodes and modification times, the same bytes, as
/// a backup restored or a volume copied gives.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A data directory copied elsewhere keeps every object's ETag (a multipart one too) and
/// headers: a record whose object has a new inode is kept when the bytes give its ETag again,
/// and stored again for the new file.
#[tokio::test]
async fn a_copied_data_directory_keeps_every_objects_etag_and_headers() {
    let local = Local::start().await;
    local.bucket("kept").await;
    let put = local
        .client
        .put_object()
        .bucket("kept")
        .key("page.html")
        .content_type("text/html")
        .metadata("owner", "recflow")
        .body(ByteStream::from_static(b"<p>hi</p>"))
        .send()
        .await
        .expect("put");
    let single_tag = put.e_tag().unwrap().to_owned();
    let multi_tag = local.put_one_part("kept", "multi.bin", b"one part").await;
    assert!(multi_tag.ends_with("-1\""), "{multi_tag}");
    // An upload in progress, completed over the copy.
    let upload = local.client.create_multipart_upload().bucket("kept").key("later.bin").send().await;
    let upload_id = upload.expect("create").upload_id().expect("id").to_owned();
    let part = local
        .client
        .upload_part()
        .bucket("kept")
        .key("later.bin")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"a part"))
        .send()
        .await
        .expect("upload part");
    let done = CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).build();
    let root = local.root();
    local.server.shutdown().await;

    let copy = tempfile::tempdir().unwrap();
    copy_tree(&root, &copy.path().join("s3"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = s3::start(&copy.path().join("s3"), listener).await.expect("start over the copy");
    let client = client(&server, s3::ACCESS_KEY, s3::SECRET_KEY);
    for _ in 0..2 {
        let head = client.head_object().bucket("kept").key("page.html").send().await.expect("head");
        assert_eq!(head.e_tag(), Some(single_tag.as_str()));
        assert_eq!(head.content_type(), Some("text/html"));
        assert_eq!(head.metadata().and_then(|m| m.get("owner")).map(String::as_str), Some("recflow"));
        let head = client.head_object().bucket("kept").key("multi.bin").send().await.expect("head");
        assert_eq!(head.e_tag(), Some(multi_tag.as_str()));
    }
    let completed = client
        .complete_multipart_upload()
        .bucket("kept")
        .key("later.bin")
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(done).build())
        .send()
        .await
        .expect("a part copied with its upload is still the part");
    assert!(completed.e_tag().is_some_and(|t| t.ends_with("-1\"")));
    // Stored again for the copied file, so it is not hashed on every read.
    use std::os::unix::fs::MetadataExt as _;
    let object = copy.path().join("s3/kept/page.html");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.path().join("s3/kept/.records/page.html.json")).unwrap())
            .unwrap();
    assert_eq!(record["inode"], std::fs::metadata(&object).unwrap().ino());
    server.shutdown().await;
}

/// HeadObject with a Range: "If the Range is satisfiable, only the ContentLength is affected in
/// the response. If the Range is not satisfiable, S3 returns a 416" (HeadObject API reference).
#[tokio::test]
async fn head_object_with_a_range_answers_for_the_range() {
    let local = Local::start().await;
    local.bucket("heads").await;
    local.put("heads", "k", b"0123456789").await;
    let head = local.client.head_object().bucket("heads").key("k").range("bytes=2-5").send().await.unwrap();
    assert_eq!(head.content_length(), Some(4));
    assert_eq!(head.content_range(), Some("bytes 2-5/10"));
    let whole = local.client.head_object().bucket("heads").key("k").send().await.unwrap();
    assert_eq!((whole.content_length(), whole.content_range()), (Some(10), None));
    let beyond = local.client.head_object().bucket("heads").key("k").range("bytes=10-").send().await;
    assert_eq!(failure(beyond).1, 416);
    local.server.shutdown().await;
}

/// What S3 refuses that a loose emulator would take: us-east-1 named as a LocationConstraint
/// (InvalidLocationConstraint; another region's is kept and given back by GetBucketLocation),
/// more than 1,000 keys in one DeleteObjects (MalformedXML), and, since the local S3 keeps no
/// tags, a write that sets them (NotImplemented rather than tags silently dropped).
#[tokio::test]
async fn location_constraints_delete_limits_and_tags_are_refused_as_s3_refuses_them() {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let local = Local::start().await;
    let config = |region: &str| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build()
    };
    // us-east-1 makes a bucket in another region when asked (a client configured for it does).
    let abroad =
        local.client.create_bucket().bucket("abroad").create_bucket_configuration(config("eu-west-1"));
    abroad.send().await.expect("another region's bucket");
    let located = local.client.get_bucket_location().bucket("abroad").send().await.unwrap();
    assert_eq!(located.location_constraint().map(|c| c.as_str()), Some("eu-west-1"));
    let named = local.client.create_bucket().bucket("named").create_bucket_configuration(config("us-east-1"));
    assert_eq!(failure(named.send().await), ("InvalidLocationConstraint".to_owned(), 400));
    assert!(!local.root().join("named").exists());

    local.bucket("limits").await;
    let keys: Vec<ObjectIdentifier> =
        (0..1001).map(|i| ObjectIdentifier::builder().key(format!("k{i}")).build().unwrap()).collect();
    let delete = Delete::builder().set_objects(Some(keys)).build().unwrap();
    let too_many = local.client.delete_objects().bucket("limits").delete(delete).send().await;
    assert_eq!(failure(too_many), ("MalformedXML".to_owned(), 400));

    let tagged = local
        .client
        .put_object()
        .bucket("limits")
        .key("tagged")
        .tagging("a=1&b=2")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(failure(tagged), ("NotImplemented".to_owned(), 501));
    let location = local.client.get_bucket_location().bucket("limits").send().await.unwrap();
    let named = location.location_constraint().map_or("", |c| c.as_str());
    assert_eq!(named, "", "us-east-1 is named by an empty constraint");
    local.server.shutdown().await;
}

/// A 304 carries the ETag and Last-Modified a 200 would (RFC 9110, "304 Not Modified").
#[tokio::test]
async fn not_modified_names_the_etag_and_last_modified() {
    let local = Local::start().await;
    local.bucket("cache").await;
    let e_tag = local.put("cache", "k", b"cached").await;
    let get = local.client.get_object().bucket("cache").key("k").if_none_match(&e_tag).send().await;
    let err = get.unwrap_err();
    let response = err.raw_response().expect("a response");
    assert_eq!(response.status().as_u16(), 304);
    assert_eq!(response.headers().get("etag"), Some(e_tag.as_str()));
    assert!(response.headers().get("last-modified").is_some_and(|d| d.ends_with(" GMT")));
    local.server.shutdown().await;
}
