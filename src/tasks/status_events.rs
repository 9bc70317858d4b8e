//! Execution status events on EventBridge: when an execution starts and when it ends, recflow
//! puts an event shaped like Step Functions' own "Step Functions Execution Status Change"
//! (source `aws.states`; developer guide, "Automating Step Functions event delivery with
//! EventBridge"), with source `recflow` and detail-type `Recflow Execution Status Change`, so the
//! rules teams already write for Step Functions need only the source and detail-type changed.
//!
//! A publish that fails is retried with backoff (`backon`, on top of the SDK's own retries) and
//! then logged: a status event never fails the workflow.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::{Value, json};

use crate::engine::execution::{Execution, Status};

/// The event's `source`.
pub const SOURCE: &str = "recflow";
/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "Recflow Execution Status Change";
/// Step Functions leaves `input` and `output` out of its status events past 248 KiB and says so
/// in `inputDetails` / `outputDetails` (`{"included": false}`); recflow does the same.
pub const MAX_INCLUDED_BYTES: usize = 248 * 1024;

/// Puts status events on one event bus.
pub struct StatusEvents {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    /// Retries after the SDK's own have given up.
    retries: usize,
}

impl StatusEvents {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> StatusEvents {
        StatusEvents { client, bus: bus.into(), retries: 4 }
    }

    /// Puts the status event of `execution` as it stands (RUNNING at its start, then its end).
    /// Never fails: after the retries a failure is logged and the run goes on.
    pub async fn publish(&self, execution: &Execution) {
        let detail = detail(execution).to_string();
        let put = || async {
            let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(SOURCE)
                .detail_type(DETAIL_TYPE)
                .resources(execution.arn())
                .detail(detail.as_str())
                .build();
            let out = self
                .client
                .put_events()
                .entries(entry)
                .send()
                .await
                .map_err(|e| crate::error_chain::error_chain(&e))?;
            match out.entries().first().and_then(|e| e.error_code()) {
                Some(code) if out.failed_entry_count() > 0 => Err(format!("the entry failed: {code}")),
                _ => Ok(()),
            }
        };
        let policy = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.retries)
            .with_jitter();
        let result = put
            .retry(policy)
            .notify(|e: &String, after: Duration| {
                tracing::warn!(error = %e, retry_in = ?after, bus = %self.bus, "status event not delivered; retrying");
            })
            .await;
        match result {
            Ok(()) => {
                tracing::info!(status = execution.status.as_str(), bus = %self.bus, "status event sent")
            }
            Err(e) => tracing::warn!(
                error = %e,
                status = execution.status.as_str(),
                bus = %self.bus,
                "status event not delivered; the workflow goes on"
            ),
        }
    }
}

/// The event's detail, with Step Functions' field names: `executionArn`, `stateMachineArn`,
/// `name`, `status`, `startDate` and `stopDate` (epoch milliseconds; `stopDate` null while
/// RUNNING), `input` and `output` as JSON strings (or null, with `inputDetails` /
/// `outputDetails` saying whether they were included), `error` and `cause`.
pub fn detail(execution: &Execution) -> Value {
    let (input, input_details) = included(Some(&execution.input));
    let ended = execution.status != Status::Running;
    let (output, output_details) =
        if ended { included(execution.output.as_ref()) } else { (Value::Null, Value::Null) };
    json!({
        "executionArn": execution.arn(),
        "stateMachineArn": execution.state_machine_arn(),
        "name": execution.name,
        "status": execution.status.as_str(),
        "startDate": execution.start_time.timestamp_millis(),
        "stopDate": execution.stop_time.map(|t| t.timestamp_millis()),
        "input": input,
        "inputDetails": input_details,
        "output": output,
        "outputDetails": output_details,
        "error": execution.error,
        "cause": execution.cause,
    })
}

/// A payload as a JSON string, or null past [`MAX_INCLUDED_BYTES`], with its `...Details`.
fn included(value: Option<&Value>) -> (Value, Value) {
    match value {
        None => (Value::Null, Value::Null),
        Some(v) => {
            let text = v.to_string();
            if text.len() > MAX_INCLUDED_BYTES {
                (Value::Null, json!({"included": false}))
            } else {
                (Value::String(text), json!({"included": true}))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn execution(input: Value) -> Execution {
        let start = chrono::Utc.with_ymd_and_hms(2026, 11, 29, 2, 0, 0).unwrap();
        Execution::new("nightly-1", "nightly-refresh", input, "Import", start, 1)
    }

    #[test]
    fn a_running_execution_has_no_stop_date_or_output() {
        let d = detail(&execution(json!({"day": "2026-11-29"})));
        assert_eq!(d["status"], "RUNNING");
        assert_eq!(d["startDate"], 1_795_917_600_000i64);
        assert_eq!(d["stopDate"], Value::Null);
        assert_eq!(d["input"], r#"{"day":"2026-11-29"}"#);
        assert_eq!(d["inputDetails"], json!({"included": true}));
        assert_eq!(d["output"], Value::Null);
        assert_eq!(
            d["executionArn"],
            "arn:aws:states:local:000000000000:execution:nightly-refresh:nightly-1"
        );
    }

    #[test]
    fn payloads_past_248_kib_are_left_out_and_said_to_be() {
        let big = json!({"blob": "x".repeat(MAX_INCLUDED_BYTES)});
        let mut e = execution(big.clone());
        e.status = Status::Succeeded;
        e.stop_time = Some(e.start_time + chrono::Duration::seconds(90));
        e.output = Some(json!({"ok": true}));
        let d = detail(&e);
        assert_eq!(d["input"], Value::Null);
        assert_eq!(d["inputDetails"], json!({"included": false}));
        assert_eq!(d["output"], r#"{"ok":true}"#);
        assert_eq!(d["stopDate"], 1_795_917_690_000i64);
        // Just under the bound is still included.
        let text_len = json!({"blob": ""}).to_string().len();
        let fits = json!({"blob": "x".repeat(MAX_INCLUDED_BYTES - text_len)});
        assert_eq!(detail(&execution(fits))["inputDetails"], json!({"included": true}));
    }
}
