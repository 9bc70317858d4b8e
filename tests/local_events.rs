//! The local EventBridge through the real aws-sdk-eventbridge client over loopback HTTP.

use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use recflow::local::events;
use serde_json::Value;

async fn setup() -> (tempfile::TempDir, events::EventsHandle, aws_sdk_eventbridge::Client) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = events::start(dir.path(), "us-east-1", "000000000000", listener).await.unwrap();
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("recflow", "recflow-local-secret", None, None, "test"))
        .endpoint_url(handle.endpoint())
        .build();
    (dir, handle, aws_sdk_eventbridge::Client::from_conf(conf))
}

fn entry(detail: &str) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder().source("recflow").detail_type("TodaysPicksReady").detail(detail).build()
}

fn recorded(handle: &events::EventsHandle) -> Vec<Value> {
    std::fs::read_to_string(handle.log_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn put_events_answers_like_the_service_and_records_each_event() {
    let (_dir, handle, client) = setup().await;
    let out = client
        .put_events()
        .entries(entry(r#"{"picks": "s3://b/out/"}"#))
        .entries(entry("not json"))
        .entries(PutEventsRequestEntry::builder().source("recflow").detail("{}").build())
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 2);
    let entries = out.entries();
    assert_eq!(entries.len(), 3);
    assert!(entries[0].event_id().is_some() && entries[0].error_code().is_none());
    assert_eq!(entries[1].error_code(), Some("MalformedDetail"));
    assert_eq!(entries[2].error_code(), Some("InvalidArgument"));
    assert!(entries[2].error_message().unwrap().contains("DetailType"));

    let events = recorded(&handle);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "TodaysPicksReady");
    assert_eq!(events[0]["detail"]["picks"], "s3://b/out/");
    assert_eq!(events[0]["id"].as_str(), entries[0].event_id());
    handle.shutdown().await;
}

#[tokio::test]
async fn more_than_ten_entries_or_one_megabyte_is_refused() {
    let (_dir, handle, client) = setup().await;
    let mut request = client.put_events();
    for _ in 0..11 {
        request = request.entries(entry("{}"));
    }
    let err = request.send().await.unwrap_err().into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationException"), "{err:?}");

    let big = format!(r#"{{"blob": "{}"}}"#, "x".repeat(300 * 1024));
    let mut request = client.put_events();
    for _ in 0..4 {
        request = request.entries(entry(&big));
    }
    let err = request.send().await.unwrap_err().into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationException"));
    assert!(err.meta().message().unwrap().contains("over the limit"));

    // Just under the limit passes: 3 entries of 300 KB.
    let mut request = client.put_events();
    for _ in 0..3 {
        request = request.entries(entry(&big));
    }
    assert_eq!(request.send().await.unwrap().failed_entry_count(), 0);
    assert_eq!(recorded(&handle).len(), 3);
    handle.shutdown().await;
}

#[tokio::test]
async fn other_operations_get_a_clear_error() {
    let (_dir, handle, client) = setup().await;
    let err = client.list_event_buses().send().await.unwrap_err().into_service_error();
    assert_eq!(err.meta().code(), Some("UnknownOperationException"));
    handle.shutdown().await;
}

#[tokio::test]
async fn injected_faults_throttle_then_fail_then_clear() {
    let (_dir, handle, client) = setup().await;
    let fault = recflow::local::faults::Fault::Operation {
        operation: "PutEvents".into(),
        fault: recflow::local::faults::OperationFault::Throttle,
        count: 1,
    };
    let no_retry = aws_sdk_eventbridge::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
            .build(),
    );
    handle.faults().inject(fault);
    let err = no_retry.put_events().entries(entry("{}")).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429));
    assert_eq!(err.into_service_error().meta().code(), Some("ThrottlingException"));
    assert_eq!(no_retry.put_events().entries(entry("{}")).send().await.unwrap().failed_entry_count(), 0);

    // Armed over HTTP, as a test in any language would.
    let http =
        admin_post(handle.addr(), r#"{"operation": "PutEvents", "fault": "http500", "count": 1}"#).await;
    assert!(http.starts_with("HTTP/1.1 200"), "{http}");
    let err = no_retry.put_events().entries(entry("{}")).send().await.unwrap_err();
    let raw = err.raw_response().expect("an HTTP response");
    assert_eq!(raw.status().as_u16(), 500);
    assert_eq!(no_retry.put_events().entries(entry("{}")).send().await.unwrap().failed_entry_count(), 0);

    let http = admin_post(handle.addr(), r#"{"operation": "PutEvents", "fault": "drop"}"#).await;
    assert!(http.starts_with("HTTP/1.1 400"), "dropping is the local Personalize's only: {http}");
    assert_eq!(recorded(&handle).len(), 2);
    handle.shutdown().await;
}

/// A bare HTTP/1.1 POST to the admin endpoint; returns the raw response text.
async fn admin_post(addr: std::net::SocketAddr, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /__recflow/faults HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}
