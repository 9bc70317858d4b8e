//! The local SQS through the real aws-sdk-sqs client over loopback HTTP, and EventBridge rules
//! that deliver PutEvents entries to its queues (aws-sdk-eventbridge in, aws-sdk-sqs out).

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{MessageSystemAttributeName as Attr, QueueAttributeName};
use md5::{Digest as _, Md5};
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::events::Rule;
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

async fn start(time_scale: f64, rules: Vec<Rule>) -> (tempfile::TempDir, Emulator) {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_in(dir.path(), time_scale, rules).await;
    (dir, emulator)
}

async fn start_in(dir: &std::path::Path, time_scale: f64, rules: Vec<Rule>) -> Emulator {
    let mut config = LocalConfig::new(dir.join("local"));
    config.time_scale = time_scale;
    config.rules = rules;
    Emulator::start(&config).await.unwrap()
}

fn sqs(emulator: &Emulator) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(REGION))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "recflow",
                "recflow-local-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(emulator.sqs.endpoint())
            .build(),
    )
}

fn events(emulator: &Emulator) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .region(aws_sdk_eventbridge::config::Region::new(REGION))
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                "recflow",
                "recflow-local-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(emulator.events.endpoint())
            .build(),
    )
}

async fn create(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

/// The queue's `(ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible)`.
async fn counts(client: &aws_sdk_sqs::Client, url: &str) -> (u32, u32) {
    let out = client.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send();
    let attributes = out.await.unwrap().attributes.unwrap();
    let get = |name: QueueAttributeName| attributes[&name].parse::<u32>().unwrap();
    (
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

async fn receive_now(client: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(Attr::All)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    out.messages.unwrap_or_default()
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

fn attribute(message: &aws_sdk_sqs::types::Message, name: Attr) -> String {
    message.attributes().unwrap_or_else(|| panic!("no attributes: {message:?}"))[&name].clone()
}

#[tokio::test]
async fn queues_are_created_once_and_found_by_name() {
    let (_dir, emulator) = start(1.0, Vec::new()).await;
    let client = sqs(&emulator);
    let url = create(&client, "recflow-picks").await;
    assert_eq!(url, format!("http://{}/{ACCOUNT}/recflow-picks", emulator.sqs.addr()));
    assert_eq!(create(&client, "recflow-picks").await, url, "idempotent for the same name");
    let same = client
        .create_queue()
        .queue_name("recflow-picks")
        .attributes(QueueAttributeName::VisibilityTimeout, "30");
    assert_eq!(same.send().await.unwrap().queue_url(), Some(url.as_str()), "30 s is the default");
    let other = client
        .create_queue()
        .queue_name("recflow-picks")
        .attributes(QueueAttributeName::VisibilityTimeout, "5");
    let err = other.send().await.unwrap_err().into_service_error();
    assert!(err.is_queue_name_exists(), "{err:?}");

    let found = client.get_queue_url().queue_name("recflow-picks").send().await.unwrap();
    assert_eq!(found.queue_url(), Some(url.as_str()));
    let err = client.get_queue_url().queue_name("missing").send().await.unwrap_err().into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
    assert_eq!(err.code(), Some("AWS.SimpleQueueService.NonExistentQueue"));
    let missing = format!("http://{}/{ACCOUNT}/missing", emulator.sqs.addr());
    let err = client.send_message().queue_url(missing).message_body("x").send().await.unwrap_err();
    assert!(err.into_service_error().is_queue_does_not_exist());

    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(
        attributes[&QueueAttributeName::QueueArn],
        format!("arn:aws:sqs:{REGION}:{ACCOUNT}:recflow-picks")
    );
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "30");

    let err = client.receive_message().queue_url(&url).max_number_of_messages(11).send().await.unwrap_err();
    assert_eq!(err.into_service_error().code(), Some("InvalidParameterValue"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn received_messages_hide_for_their_visibility_timeout_then_return_until_deleted() {
    // 30 emulated seconds a real second: the 60 s visibility timeout below lasts 2 s.
    let (_dir, emulator) = start(30.0, Vec::new()).await;
    let client = sqs(&emulator);
    let url = create(&client, "work").await;
    let body = r#"{"picks": "s3://recflow-demo/picks/", "note": "ü ✓"}"#;
    let sent = client.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    assert_eq!(sent.md5_of_message_body(), Some(md5_hex(body).as_str()));
    let id = sent.message_id().unwrap().to_string();

    let first = client
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(60)
        .message_system_attribute_names(Attr::All)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(first.len(), 1);
    let first = &first[0];
    assert_eq!((first.message_id(), first.body()), (Some(id.as_str()), Some(body)));
    assert_eq!(first.md5_of_body(), Some(md5_hex(body).as_str()));
    assert_eq!(attribute(first, Attr::ApproximateReceiveCount), "1");
    let sent_at: i64 = attribute(first, Attr::SentTimestamp).parse().unwrap();
    let first_receive: i64 = attribute(first, Attr::ApproximateFirstReceiveTimestamp).parse().unwrap();
    assert!(first_receive >= sent_at);

    // In flight: nobody else sees it.
    assert!(receive_now(&client, &url).await.is_empty());
    assert_eq!(counts(&client, &url).await, (0, 1));

    // Once its visibility timeout has passed, it is back with a new receipt handle; long polls
    // (20 emulated seconds each) wake when it turns visible.
    let mut again = Vec::new();
    for _ in 0..50 {
        let out = client
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(20)
            .message_system_attribute_names(Attr::ApproximateReceiveCount)
            .message_system_attribute_names(Attr::ApproximateFirstReceiveTimestamp)
            .send()
            .await
            .unwrap();
        again = out.messages.unwrap_or_default();
        if !again.is_empty() {
            break;
        }
    }
    assert_eq!(again.len(), 1, "the message never came back");
    let second = &again[0];
    assert_eq!(second.message_id(), Some(id.as_str()));
    assert_eq!(attribute(second, Attr::ApproximateReceiveCount), "2");
    assert_eq!(attribute(second, Attr::ApproximateFirstReceiveTimestamp), first_receive.to_string());
    assert_ne!(second.receipt_handle(), first.receipt_handle());

    // The first receive's handle is stale: the call succeeds, the message stays (API reference,
    // DeleteMessage: "the request will succeed, but the message might not be deleted").
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(first.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(counts(&client, &url).await, (0, 1));
    let err = client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(first.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_receipt_handle_is_invalid(), "{err:?}");

    // The latest handle deletes it; deleting again succeeds and changes nothing.
    let handle = second.receipt_handle().unwrap();
    client.delete_message().queue_url(&url).receipt_handle(handle).send().await.unwrap();
    assert_eq!(counts(&client, &url).await, (0, 0));
    client.delete_message().queue_url(&url).receipt_handle(handle).send().await.unwrap();
    let err = client.delete_message().queue_url(&url).receipt_handle("forged").send().await.unwrap_err();
    assert!(err.into_service_error().is_receipt_handle_is_invalid());
    assert!(receive_now(&client, &url).await.is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn changing_the_visibility_to_zero_makes_a_message_visible_at_once() {
    // Real time: the default 30 s visibility timeout cannot pass during the test.
    let (_dir, emulator) = start(1.0, Vec::new()).await;
    let client = sqs(&emulator);
    let url = create(&client, "retry").await;
    client.send_message().queue_url(&url).message_body("job-1").send().await.unwrap();
    let received = receive_now(&client, &url).await;
    assert_eq!(received.len(), 1);
    assert!(receive_now(&client, &url).await.is_empty());

    let handle = received[0].receipt_handle().unwrap();
    client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    // Visible again, so no longer in flight.
    let err = client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(handle)
        .visibility_timeout(10)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_message_not_inflight(), "{err:?}");
    let again = receive_now(&client, &url).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body(), Some("job-1"));
    assert_eq!(attribute(&again[0], Attr::ApproximateReceiveCount), "2");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_a_message_is_sent() {
    let (_dir, emulator) = start(1.0, Vec::new()).await;
    let client = sqs(&emulator);
    let url = create(&client, "wake-up").await;
    let poll = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            client.receive_message().queue_url(url).wait_time_seconds(20).send().await.unwrap()
        })
    };
    // Send only once the receive is waiting, so the send is what must wake it.
    for _ in 0..1000 {
        if emulator.sqs.long_polls() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(emulator.sqs.long_polls(), 1, "the receive never started waiting");
    let sender = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            client.send_message().queue_url(url).message_body("ping").send().await.unwrap()
        })
    };
    let sent = sender.await.unwrap();
    // Bounded by the wait itself: an answer after 19 s could be the wait running out.
    let out = tokio::time::timeout(Duration::from_secs(19), poll)
        .await
        .expect("the long poll was not woken by the send")
        .unwrap();
    let messages = out.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message_id(), sent.message_id());
    assert_eq!(emulator.sqs.long_polls(), 0);
    emulator.shutdown().await;
}

fn rule(name: &str, pattern: Value, queue: &str) -> Value {
    json!({
        "Name": name,
        "EventPattern": pattern,
        "Targets": [{"Id": "queue", "Arn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}")}],
    })
}

fn s3_entry(detail_type: &str, key: &str) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .source("aws.s3")
        .detail_type(detail_type)
        .detail(json!({"bucket": {"name": "recflow-demo"}, "object": {"key": key}}).to_string())
        .build()
}

#[tokio::test]
async fn put_events_delivers_the_envelope_to_the_queues_of_matching_rules() {
    let created = rule(
        "s3-object-created",
        json!({"source": ["aws.s3"], "detail-type": ["Object Created"]}),
        "s3-events",
    );
    let (_dir, emulator) = start(1.0, vec![serde_json::from_value(created).unwrap()]).await;
    let client = sqs(&emulator);
    let url = create(&client, "s3-events").await;
    let eb = events(&emulator);

    // An event the rule does not match delivers nothing.
    let out = eb.put_events().entries(s3_entry("Object Deleted", "picks/old.json")).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0);
    assert_eq!(counts(&client, &url).await, (0, 0));
    assert!(receive_now(&client, &url).await.is_empty());

    let out = eb.put_events().entries(s3_entry("Object Created", "picks/today.json")).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0);
    let event_id = out.entries()[0].event_id().unwrap().to_string();
    let messages = receive_now(&client, &url).await;
    assert_eq!(messages.len(), 1, "exactly one delivery: {messages:?}");
    let body = messages[0].body().unwrap();
    assert_eq!(messages[0].md5_of_body(), Some(md5_hex(body).as_str()));
    let envelope: Value = serde_json::from_str(body).unwrap();
    assert_eq!(envelope["version"], "0");
    assert_eq!(envelope["id"], event_id.as_str());
    assert_eq!(envelope["source"], "aws.s3");
    assert_eq!(envelope["detail-type"], "Object Created");
    assert_eq!(envelope["account"], ACCOUNT);
    assert_eq!(envelope["region"], REGION);
    assert_eq!(envelope["resources"], json!([]));
    assert_eq!(
        envelope["detail"],
        json!({"bucket": {"name": "recflow-demo"}, "object": {"key": "picks/today.json"}})
    );
    let time = envelope["time"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z') && time.len() == 20,
        "{time}"
    );
    assert_eq!(envelope.as_object().unwrap().len(), 9, "the envelope's fields only: {envelope}");
    assert_eq!(counts(&client, &url).await, (0, 1));

    // Both events are still recorded.
    let log = std::fs::read_to_string(emulator.events.log_path()).unwrap();
    assert_eq!(log.lines().count(), 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn rules_json_is_read_at_start_and_missing_queues_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let events_dir = dir.path().join("local/events");
    std::fs::create_dir_all(&events_dir).unwrap();
    let rules = json!([
        rule("to-missing-queue", json!({"source": ["aws.s3"]}), "nowhere"),
        rule("picks-only", json!(r#"{"detail": {"object": {"key": [{"prefix": "picks/"}]}}}"#), "from-file",),
    ]);
    std::fs::write(events_dir.join("rules.json"), rules.to_string()).unwrap();
    let emulator = start_in(dir.path(), 1.0, Vec::new()).await;
    assert_eq!(emulator.events.rules().len(), 2);
    let client = sqs(&emulator);
    let url = create(&client, "from-file").await;
    let eb = events(&emulator);
    let out = eb
        .put_events()
        .entries(s3_entry("Object Created", "batch/input.jsonl"))
        .entries(s3_entry("Object Created", "picks/today.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 0, "an undeliverable target does not fail PutEvents");
    let messages = receive_now(&client, &url).await;
    assert_eq!(messages.len(), 1);
    let envelope: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(envelope["detail"]["object"]["key"], "picks/today.json");
    emulator.shutdown().await;

    // A pattern outside the supported subset stops the emulator from starting, naming it.
    let bad = json!([rule("numeric", json!({"detail": {"size": [{"numeric": [">", 0]}]}}), "q")]);
    std::fs::write(events_dir.join("rules.json"), bad.to_string()).unwrap();
    let mut config = LocalConfig::new(dir.path().join("local"));
    config.time_scale = 1.0;
    let err = Emulator::start(&config).await.err().expect("the numeric operator is refused").to_string();
    assert!(err.contains("numeric") && err.contains("rules.json"), "{err}");
}
