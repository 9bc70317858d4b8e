//! `arn:aws:states:::events:putEvents`, Step Functions' optimized EventBridge integration:
//! `Entries[]` of `{Detail (JSON), DetailType, Source, EventBusName, Resources, Time}`; the
//! execution's and state machine's ARNs are appended to each entry's Resources; a response with
//! a non-zero FailedEntryCount fails the task with `EventBridge.FailedEntry`. Result:
//! `{"Entries": [{"EventId": ...}], "FailedEntryCount": 0}`. Source: Step Functions developer
//! guide, "Add EventBridge events with Step Functions".

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::{Value, json};

use super::aws::sdk_error;
use super::model::FieldProblem;
use crate::asl::errors::StatesError;
use crate::engine::clock::Clock;
use crate::engine::task::{Answer, TaskFuture, TaskRunner};
use crate::engine::transition::TaskCall;

/// The optimized integration's Resource.
pub const RESOURCE: &str = "arn:aws:states:::events:putEvents";
/// Step Functions' error when PutEvents answers a non-zero FailedEntryCount.
pub const FAILED_ENTRY: &str = "EventBridge.FailedEntry";

const ENTRY_FIELDS: &[&str] =
    &["Detail", "DetailType", "Source", "EventBusName", "Resources", "Time", "TraceHeader"];

/// Checks a putEvents Task's static Parameters: `Entries` given, each entry's field names known.
pub fn check(resource: &str, parameters: Option<&Value>) -> Vec<FieldProblem> {
    if !resource.starts_with("arn:aws:states:::events:") {
        return Vec::new();
    }
    if resource != RESOURCE {
        return vec![("Resource".into(), format!("the optimized EventBridge integration is {RESOURCE}"))];
    }
    let Some(params) = parameters.and_then(Value::as_object) else {
        return vec![("Entries".into(), "required and missing".into())];
    };
    let mut problems = Vec::new();
    for key in params.keys() {
        if key.trim_end_matches(".$") != "Entries" {
            problems.push((key.clone(), format!("unknown parameter '{key}'; putEvents takes Entries")));
        }
    }
    match params.get("Entries") {
        Some(Value::Array(entries)) => {
            for (i, entry) in entries.iter().enumerate() {
                let Some(entry) = entry.as_object() else { continue };
                for key in entry.keys() {
                    let name = key.trim_end_matches(".$");
                    if !ENTRY_FIELDS.contains(&name) {
                        let near = ENTRY_FIELDS.iter().min_by_key(|f| strsim::levenshtein(f, name));
                        let hint = near.map(|n| format!("; did you mean '{n}'?")).unwrap_or_default();
                        problems
                            .push((format!("Entries[{i}].{name}"), format!("unknown field '{name}'{hint}")));
                    }
                }
            }
        }
        Some(_) => problems.push(("Entries".into(), "must be a list of entries".into())),
        None if params.contains_key("Entries.$") => {}
        None => problems.push(("Entries".into(), "required and missing".into())),
    }
    problems
}

/// EventBridge PutEvents for the engine.
pub struct EventsRunner {
    client: aws_sdk_eventbridge::Client,
}

impl EventsRunner {
    pub fn new(client: aws_sdk_eventbridge::Client) -> EventsRunner {
        EventsRunner { client }
    }

    async fn put(&self, call: &TaskCall) -> Result<Value, StatesError> {
        let bad = |m: String| StatesError::runtime(format!("putEvents: {m}"));
        let entries =
            call.parameters["Entries"].as_array().ok_or_else(|| bad("Entries must be a list".into()))?;
        let execution_arn =
            format!("arn:aws:states:local:000000000000:execution:{}:{}", call.state_machine, call.execution);
        let machine_arn = format!("arn:aws:states:local:000000000000:stateMachine:{}", call.state_machine);
        let mut request = self.client.put_events();
        for (i, e) in entries.iter().enumerate() {
            let field = |k: &str| -> Result<Option<String>, StatesError> {
                match &e[k] {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    other => Err(bad(format!("Entries[{i}].{k} must be a string, not {other}"))),
                }
            };
            let detail = match &e["Detail"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            let mut resources: Vec<String> = match &e["Resources"] {
                Value::Array(r) => r.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                _ => Vec::new(),
            };
            resources.extend([execution_arn.clone(), machine_arn.clone()]);
            let time = match field("Time")? {
                Some(t) => Some(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| aws_sdk_eventbridge::primitives::DateTime::from_millis(t.timestamp_millis()))
                        .map_err(|_| bad(format!("Entries[{i}].Time '{t}' is not an ISO 8601 timestamp")))?,
                ),
                None => None,
            };
            request = request.entries(
                PutEventsRequestEntry::builder()
                    .set_source(field("Source")?)
                    .set_detail_type(field("DetailType")?)
                    .set_detail(detail)
                    .set_event_bus_name(field("EventBusName")?)
                    .set_trace_header(field("TraceHeader")?)
                    .set_time(time)
                    .set_resources(Some(resources))
                    .build(),
            );
        }
        let out = request.send().await.map_err(|e| sdk_error("EventBridge", e))?;
        let results: Vec<Value> = out
            .entries()
            .iter()
            .map(|r| match (r.event_id(), r.error_code()) {
                (Some(id), _) => json!({"EventId": id}),
                (None, code) => json!({"ErrorCode": code, "ErrorMessage": r.error_message()}),
            })
            .collect();
        if out.failed_entry_count() > 0 {
            let failed: Vec<&Value> = results.iter().filter(|r| r.get("ErrorCode").is_some()).collect();
            return Err(StatesError::new(
                FAILED_ENTRY,
                format!(
                    "{} of {} entries failed: {}",
                    out.failed_entry_count(),
                    results.len(),
                    json!(failed)
                ),
            ));
        }
        Ok(json!({"Entries": results, "FailedEntryCount": out.failed_entry_count()}))
    }
}

impl TaskRunner for EventsRunner {
    fn call<'a>(&'a self, call: &'a TaskCall, _clock: &'a dyn Clock) -> TaskFuture<'a> {
        Box::pin(async move { Ok(Answer::done(self.put(call).await?)) })
    }

    fn accepts(&self, _state: &str, resource: &str) -> bool {
        resource == RESOURCE
    }
}
