//! Runs started by EventBridge events read from an SQS queue that an EventBridge rule targets:
//! how a daemon without public ingress receives events. Long polling (20 s); each message
//! body is the event EventBridge delivered (its envelope: `id`, `source`, `detail-type`,
//! `detail`, ...), which becomes the execution's input, named by the event's `id` as on the
//! API. A message is deleted only once its execution is durably started (its ExecutionStarted
//! committed) or found already started, so a crash in between redelivers it and the event's
//! `id` keeps it to one execution. A message that can never start (not an event, a workflow
//! that refuses it) or fails [`MAX_RECEIVES`] times is moved aside: written to
//! `<poison_dir>/<message id>.json` with the reason, then deleted.
//!
//! SQS behaviour: ReceiveMessage long polling and visibility timeout, DeleteMessage, per the
//! Amazon SQS API reference; the EventBridge-to-SQS target delivers the event envelope as the
//! body (EventBridge user guide, "Amazon SQS queues as targets").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use backon::{ExponentialBuilder, Retryable};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Daemon, StartError, Trigger};
use crate::atomic_file::{Durability, write_atomic};

/// Receives after which a message that still cannot start is moved aside.
pub const MAX_RECEIVES: u32 = 5;

/// SQS's longest long poll, in seconds.
const WAIT_SECONDS: i32 = 20;

/// One queue feeding one workflow.
pub struct EventQueue {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// The workflow each event starts.
    pub workflow: String,
    /// Where messages that cannot start are kept.
    pub poison_dir: PathBuf,
}

impl Daemon {
    /// Consumes `queue` until the daemon shuts down: every event starts the queue's workflow
    /// once. Call after [`Daemon::start`].
    pub fn consume(self: &Arc<Self>, queue: EventQueue) {
        let daemon = Arc::clone(self);
        self.tracker.spawn(async move { consume(daemon, queue).await });
    }
}

async fn consume(daemon: Arc<Daemon>, queue: EventQueue) {
    info!(queue = %queue.queue_url, workflow = %queue.workflow, "taking events from the queue");
    loop {
        let receive = || async {
            queue
                .client
                .receive_message()
                .queue_url(&queue.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(WAIT_SECONDS)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(60))
            .without_max_times();
        let received = tokio::select! {
            received = receive
                .retry(backoff)
                .notify(|e, after| warn!(queue = %queue.queue_url, error = %crate::error_chain::error_chain(e), retry_in = ?after, "could not receive from the queue")) => received,
            () = daemon.shutdown.cancelled() => return,
        };
        let Ok(received) = received else { continue };
        for message in received.messages() {
            if daemon.shutdown.is_cancelled() {
                // Not deleted: it comes back after its visibility timeout, for the next daemon.
                return;
            }
            handle(&daemon, &queue, message).await;
        }
    }
}

/// Starts the message's execution and deletes it, moves it aside, or leaves it to come back.
async fn handle(daemon: &Arc<Daemon>, queue: &EventQueue, message: &Message) {
    let id = message.message_id().unwrap_or("unknown");
    let receives: u32 = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let event = match parse(message.body().unwrap_or("")) {
        Ok(event) => event,
        Err(reason) => return set_aside(queue, message, &reason).await,
    };
    let event_id = event["id"].as_str().unwrap_or_default().to_string();
    match daemon.start_execution(&queue.workflow, None, event, Trigger::Event(event_id)).await {
        Ok(execution) => {
            info!(message = id, execution = %execution.name, "event from the queue started an execution");
            delete(queue, message).await;
        }
        Err(StartError::Exists(name)) => {
            info!(message = id, execution = %name, "the event's execution already exists (a redelivery)");
            delete(queue, message).await;
        }
        Err(e @ (StartError::NoWorkflow { .. } | StartError::BadName(_))) => {
            set_aside(queue, message, &e.to_string()).await
        }
        Err(StartError::ShuttingDown) => {}
        Err(e) if receives >= MAX_RECEIVES => {
            set_aside(queue, message, &format!("{e} (received {receives} times)")).await
        }
        Err(e) => {
            warn!(message = id, receives, error = %e, "could not start the event's execution; the message comes back after its visibility timeout")
        }
    }
}

/// The event in a message body: a JSON object with EventBridge's `id`, `source` and
/// `detail-type`.
fn parse(body: &str) -> Result<Value, String> {
    let event: Value = serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let is_event = event.get("id").is_some_and(Value::is_string)
        && event.get("source").is_some()
        && event.get("detail-type").is_some();
    if is_event {
        Ok(event)
    } else {
        Err("the body is not an EventBridge event (an object with id, source and detail-type)".into())
    }
}

async fn delete(queue: &EventQueue, message: &Message) {
    let Some(handle) = message.receipt_handle() else { return };
    if let Err(e) =
        queue.client.delete_message().queue_url(&queue.queue_url).receipt_handle(handle).send().await
    {
        // Its execution exists: when the message comes back, the start finds it and deletes it.
        warn!(queue = %queue.queue_url, error = %crate::error_chain::error_chain(&e), "could not delete the message");
    }
}

/// Keeps the message under the poison folder, durably, then deletes it from the queue.
async fn set_aside(queue: &EventQueue, message: &Message, reason: &str) {
    let id = message.message_id().unwrap_or("unknown");
    let file: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let path = queue.poison_dir.join(format!("{file}.json"));
    let record = json!({
        "queueUrl": queue.queue_url,
        "messageId": id,
        "body": message.body(),
        "reason": reason,
        "workflow": queue.workflow,
    });
    let written = std::fs::create_dir_all(&queue.poison_dir).and_then(|()| {
        write_atomic(
            &path,
            serde_json::to_string_pretty(&record).unwrap_or_default().as_bytes(),
            Durability::Fsync,
        )
    });
    match written {
        Ok(()) => {
            warn!(message = id, path = %path.display(), reason, "moved a message that cannot start aside");
            delete(queue, message).await;
        }
        Err(e) => {
            warn!(message = id, path = %path.display(), error = %e, "could not move the message aside; it stays in the queue")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_must_be_an_eventbridge_event() {
        assert!(
            parse(r#"{"id": "1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}}"#)
                .is_ok()
        );
        assert!(parse("not json").unwrap_err().contains("not JSON"));
        assert!(parse(r#"{"id": "1"}"#).unwrap_err().contains("not an EventBridge event"));
    }
}
