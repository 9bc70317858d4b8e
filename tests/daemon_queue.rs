//! Runs started by EventBridge events through SQS: the embedded emulator's EventBridge rule
//! delivers an S3 "Object Created" event to a queue, the daemon reads it with the real
//! aws-sdk-sqs client over loopback HTTP, starts `event-import` with the event's key once and
//! deletes the message; a message that is no event is moved aside.

#[path = "support/daemon.rs"]
mod daemon;

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use daemon::{ended, event_import_daemon, imported_location, object_created_detail};
use recflow::daemon::EventQueue;
use recflow::engine::{ExecutionStore, Status};
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::tasks::aws::Clients;
use serde_json::{Value, json};

async fn emulator(dir: &std::path::Path) -> (Emulator, Clients) {
    let mut config = LocalConfig::new(dir.join("local"));
    config.rules = vec![
        serde_json::from_value(json!({
            "Name": "new-interactions",
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": ["recflow-drop"]}}},
            "Targets": [{"Id": "daemon", "Arn": "arn:aws:sqs:us-east-1:000000000000:recflow-events"}]
        }))
        .unwrap(),
    ];
    let emulator = Emulator::start(&config).await.unwrap();
    let clients = Clients::local(&emulator.endpoints());
    (emulator, clients)
}

async fn queue_depth(clients: &Clients, url: &str) -> usize {
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await;
    match attributes {
        Ok(a) => {
            let of = |name| {
                a.attributes().and_then(|m| m.get(&name)).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0)
            };
            of(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                + of(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        }
        // Without GetQueueAttributes, a receive that finds nothing says the same.
        Err(_) => clients
            .sqs
            .receive_message()
            .queue_url(url)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap()
            .messages()
            .len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_through_the_rule_and_the_queue_starts_event_import_once_and_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, clients) = emulator(dir.path()).await;
    let url = clients.sqs.create_queue().queue_name("recflow-events").send().await.unwrap();
    let url = url.queue_url().unwrap().to_string();
    let (daemon, store) = event_import_daemon().await;
    daemon.consume(EventQueue {
        client: clients.sqs.clone(),
        queue_url: url.clone(),
        workflow: "event-import".into(),
        poison_dir: dir.path().join("poison"),
    });
    let put = clients
        .events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source("aws.s3")
                .detail_type("Object Created")
                .resources("arn:aws:s3:::recflow-drop")
                .detail(object_created_detail("interactions/2026-11-30.csv").to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_entry_count(), 0);
    // The execution is named by the event's id, which EventBridge gave it.
    let mut started = Vec::new();
    for _ in 0..1000 {
        started = daemon.executions().await;
        if !started.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(started.len(), 1, "one execution");
    let name = started[0].name.clone();
    assert!(name.starts_with("event-import-"), "{name}");
    let execution = ended(&store, &name).await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
    assert_eq!(
        imported_location(&store, &name),
        Some(json!("s3://recflow-drop/interactions/2026-11-30.csv"))
    );
    assert_eq!(execution.input["detail-type"], "Object Created");
    // Deleted once started, and nothing else arrived.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(queue_depth(&clients, &url).await, 0);
    assert_eq!(daemon.executions().await.len(), 1);
    daemon.shutdown();
    daemon.stopped().await;
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_no_event_is_moved_aside_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, clients) = emulator(dir.path()).await;
    let url = clients.sqs.create_queue().queue_name("recflow-events").send().await.unwrap();
    let url = url.queue_url().unwrap().to_string();
    let (daemon, store) = event_import_daemon().await;
    clients.sqs.send_message().queue_url(&url).message_body("{\"hello\": 1}").send().await.unwrap();
    let poison = dir.path().join("poison");
    daemon.consume(EventQueue {
        client: clients.sqs.clone(),
        queue_url: url.clone(),
        workflow: "event-import".into(),
        poison_dir: poison.clone(),
    });
    let mut kept: Vec<Value> = Vec::new();
    for _ in 0..1000 {
        kept = std::fs::read_dir(&poison)
            .map(|d| {
                d.map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        if !kept.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["body"], "{\"hello\": 1}");
    assert!(kept[0]["reason"].as_str().unwrap().contains("not an EventBridge event"), "{}", kept[0]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(queue_depth(&clients, &url).await, 0);
    assert!(store.list().await.unwrap().is_empty(), "nothing started");
    daemon.shutdown();
    daemon.stopped().await;
    emulator.shutdown().await;
}
