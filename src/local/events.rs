//! The local EventBridge: PutEvents answered as the service answers it, every accepted event
//! recorded as one JSON line under `<data_dir>/events/events.jsonl`, so tests and users can see
//! what a workflow published, and delivered to the local SQS queues of the rules it matches.
//!
//! Rules are not managed over the API (PutRule and PutTargets are not answered): they are read
//! from `<data_dir>/events/rules.json` (a JSON array of [`Rule`]s) when the service starts, and
//! given in [`Routing::rules`]. Each accepted entry becomes the event envelope EventBridge
//! delivers (`version`, `id`, `detail-type`, `source`, `account`, `time`, `region`,
//! `resources`, `detail`; EventBridge user guide, "Amazon EventBridge events"), and for every
//! enabled rule on the entry's bus whose [`EventPattern`] matches it, that envelope's JSON is sent
//! as the message body to each of the rule's SQS targets. Delivery happens before PutEvents
//! answers (EventBridge delivers asynchronously, within about a second); a target queue that does
//! not exist is logged and skipped, as EventBridge drops events it cannot deliver (without a
//! dead-letter queue).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, oneshot};

use super::event_pattern::EventPattern;
use super::faults::{Fault, Faults, OperationFault};
use super::sqs::SqsQueues;

/// PutEvents takes at most this many entries (the service model's list bound).
pub const MAX_ENTRIES: usize = 10;
/// The total entry size limit, raised from 256 KB to 1 MB in January 2026.
pub const MAX_TOTAL_BYTES: usize = 1024 * 1024;

/// Why the local EventBridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The events directory or log could not be created or opened.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// `rules.json` is not a JSON array of rules (an unsupported pattern is reported here too).
    #[error("{path}: not a JSON array of rules: {source}")]
    RulesFile { path: PathBuf, source: serde_json::Error },
    /// A rule that cannot be used.
    #[error("event rule {name:?}: {reason}")]
    Rule { name: String, reason: String },
}

/// The bus a rule listens on when it names none.
pub const DEFAULT_BUS: &str = "default";

fn default_bus() -> String {
    DEFAULT_BUS.to_string()
}

/// An EventBridge rule, in the shape of PutRule's and PutTargets' members: `{"Name": "...",
/// "EventBusName": "default", "EventPattern": {...}, "State": "ENABLED", "Targets": [{"Id":
/// "...", "Arn": "arn:aws:sqs:<region>:<account>:<queue>"}]}`. `EventPattern` may be an object or
/// a string holding one (PutRule takes a string); `EventBusName` (a name or an event bus ARN)
/// defaults to `default`, `State` to `ENABLED`. Unknown members (`Input`, `InputTransformer`,
/// `ScheduleExpression`, ...) are refused rather than ignored.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Rule {
    /// The rule's name, unique on its bus.
    pub name: String,
    /// The bus whose events the rule sees.
    #[serde(default = "default_bus")]
    pub event_bus_name: String,
    /// Which events the rule matches.
    pub event_pattern: EventPattern,
    /// `ENABLED` or `DISABLED`.
    #[serde(default)]
    pub state: RuleState,
    /// Free text, unused.
    #[serde(default)]
    pub description: Option<String>,
    /// Where matching events go: SQS queues only.
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// Whether a rule delivers (PutRule, `State`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum RuleState {
    /// The rule delivers matching events.
    #[default]
    #[serde(rename = "ENABLED")]
    Enabled,
    /// The rule is kept but delivers nothing.
    #[serde(rename = "DISABLED")]
    Disabled,
}

/// A rule's target (PutTargets, `Target`): an SQS queue ARN, `arn:aws:sqs:<region>:<account>:
/// <queue>`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Target {
    /// The target's id, unique in its rule.
    pub id: String,
    /// The queue's ARN.
    pub arn: String,
}

/// Where accepted events go besides the log.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Rules besides those of `<data_dir>/events/rules.json`.
    pub rules: Vec<Rule>,
    /// The local SQS the rules' targets are in; without it, matching events are logged as
    /// undeliverable.
    pub sqs: Option<SqsQueues>,
    /// Header-read timeout and connection cap of the EventBridge port.
    pub connections: super::http_server::ConnectionLimits,
}

/// The name an `EventBusName` member or a rule's bus means: a bus ARN's name, or the name.
fn bus_name(name_or_arn: &str) -> &str {
    match name_or_arn.strip_prefix("arn:") {
        Some(_) => name_or_arn.rsplit_once(":event-bus/").map_or(name_or_arn, |(_, name)| name),
        None => name_or_arn,
    }
}

/// Checks the rules: unique names per bus, unique target ids per rule, SQS targets only.
fn check_rules(rules: &[Rule]) -> Result<(), EventsError> {
    let mut seen = std::collections::HashSet::new();
    for rule in rules {
        let fail = |reason: String| EventsError::Rule { name: rule.name.clone(), reason };
        if rule.name.is_empty() {
            return Err(fail("Name must not be empty".into()));
        }
        if !seen.insert((bus_name(&rule.event_bus_name).to_string(), rule.name.clone())) {
            return Err(fail(format!("declared twice on the bus {}", rule.event_bus_name)));
        }
        let mut ids = std::collections::HashSet::new();
        for target in &rule.targets {
            if !ids.insert(target.id.as_str()) {
                return Err(fail(format!("target id {:?} is used twice", target.id)));
            }
            let parts: Vec<&str> = target.arn.split(':').collect();
            if parts.len() != 6 || parts[..3] != ["arn", "aws", "sqs"] || parts[5].is_empty() {
                return Err(fail(format!(
                    "target {} is not an SQS queue ARN (arn:aws:sqs:<region>:<account>:<queue>), the only targets the local EventBridge delivers to",
                    target.arn
                )));
            }
        }
    }
    Ok(())
}

/// A running local EventBridge.
pub struct EventsHandle {
    addr: SocketAddr,
    log: PathBuf,
    sink: Arc<Sink>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl EventsHandle {
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for an SDK client, e.g. `http://127.0.0.1:40125`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The file every accepted event is appended to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Armed faults: `throttle` and `http500` for `PutEvents` (dropping connections is the local
    /// Personalize's only).
    pub fn faults(&self) -> &Faults {
        &self.sink.faults
    }

    /// The rules in force: those of `rules.json`, then those given in [`Routing`].
    pub fn rules(&self) -> &[Rule] {
        &self.sink.rules
    }

    /// Stops accepting requests and waits for the server to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct Sink {
    log: Mutex<tokio::fs::File>,
    faults: Faults,
    region: String,
    account: String,
    rules: Vec<Rule>,
    sqs: Option<SqsQueues>,
}

/// Serves EventBridge's PutEvents on `listener`, recording events under `<data_dir>/events/`,
/// with the rules of `<data_dir>/events/rules.json` (if any) and no SQS to deliver to.
pub async fn start(
    data_dir: &Path,
    region: &str,
    account: &str,
    listener: tokio::net::TcpListener,
) -> Result<EventsHandle, EventsError> {
    start_with(data_dir, region, account, listener, Routing::default()).await
}

/// Reads `<dir>/rules.json`: no file is no rules.
async fn read_rules_file(dir: &Path) -> Result<Vec<Rule>, EventsError> {
    let path = dir.join("rules.json");
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(EventsError::Io { path, source }),
    };
    serde_json::from_str(&text).map_err(|source| EventsError::RulesFile { path, source })
}

/// [`start`], delivering matching events to `routing`'s SQS by the rules of `rules.json` and of
/// `routing`.
pub async fn start_with(
    data_dir: &Path,
    region: &str,
    account: &str,
    listener: tokio::net::TcpListener,
    routing: Routing,
) -> Result<EventsHandle, EventsError> {
    let limits = routing.connections;
    let dir = data_dir.join("events");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EventsError::Io { path, source }
    };
    tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
    let log = dir.join("events.jsonl");
    let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await.map_err(io(&log))?;
    let mut rules = read_rules_file(&dir).await?;
    rules.extend(routing.rules);
    check_rules(&rules)?;
    let addr = listener.local_addr().map_err(io(&dir))?;
    let sink = Arc::new(Sink {
        log: Mutex::new(file),
        faults: Faults::default(),
        region: region.to_string(),
        account: account.to_string(),
        rules,
        sqs: routing.sqs,
    });
    let app = Router::new()
        .route(
            "/",
            axum::routing::post(handle).layer(axum::middleware::from_fn(super::aws_json::signed_v1_1)),
        )
        .route("/__recflow/faults", axum::routing::post(arm_fault).delete(clear_faults))
        .with_state(Arc::clone(&sink));
    let (stop, stopped) = oneshot::channel::<()>();
    let service = hyper_util::service::TowerToHyperService::new(app);
    let task = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        super::http_server::serve("EventBridge", listener, service, limits, stopped).await;
    });
    Ok(EventsHandle { addr, log, sink, stop, task })
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    super::aws_json::error(status, kind, message)
}

async fn handle(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(operation) = target.strip_prefix("AWSEvents.") else {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "missing or foreign X-Amz-Target",
        );
    };
    match sink.faults.take_operation(operation) {
        Some(OperationFault::Throttle) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Rate exceeded (injected fault)",
            );
        }
        Some(OperationFault::Http500) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalException", "injected fault");
        }
        Some(OperationFault::Drop) | None => {}
    }
    if operation != "PutEvents" {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("the local EventBridge answers PutEvents only, not {operation}"),
        );
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "SerializationException", &e.to_string()),
    };
    match put_events(&sink, &request).await {
        Ok(response) => super::aws_json::response(StatusCode::OK, &response),
        Err(response) => response,
    }
}

/// `POST /__recflow/faults` with `{"operation": "PutEvents", "fault": "throttle" | "http500", "count": N}`.
async fn arm_fault(State(sink): State<Arc<Sink>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(Fault::Operation { fault: OperationFault::Drop, .. }) => error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the local EventBridge cannot drop connections",
        ),
        Ok(fault @ Fault::Operation { .. }) => {
            sink.faults.inject(fault);
            ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
        }
        Ok(_) => error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "job faults belong to the local Personalize",
        ),
        Err(e) => error(StatusCode::BAD_REQUEST, "SerializationException", &format!("Not a fault: {e}")),
    }
}

async fn clear_faults(State(sink): State<Arc<Sink>>) -> Response {
    sink.faults.clear();
    ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

/// The entry size as EventBridge counts it: Time (14 bytes when present), and the UTF-8 bytes of
/// Source, DetailType, Detail and each Resource.
fn entry_size(entry: &Value) -> usize {
    let text = |k: &str| entry.get(k).and_then(Value::as_str).map_or(0, str::len);
    let resources: usize = entry
        .get("Resources")
        .and_then(Value::as_array)
        .map_or(0, |r| r.iter().filter_map(Value::as_str).map(str::len).sum());
    let time = if entry.get("Time").is_some() { 14 } else { 0 };
    time + text("Source") + text("DetailType") + text("Detail") + resources
}

/// Why an entry is refused, as (ErrorCode, ErrorMessage); None when it is accepted.
fn check_entry(entry: &Value) -> Option<(&'static str, String)> {
    let present = |k: &str| entry.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let missing: Vec<&str> = ["Source", "DetailType", "Detail"].into_iter().filter(|k| !present(k)).collect();
    if !missing.is_empty() {
        return Some(("InvalidArgument", format!("Parameter(s) {} must be specified.", missing.join(", "))));
    }
    let detail = entry.get("Detail").and_then(Value::as_str).unwrap_or_default();
    match serde_json::from_str::<Value>(detail) {
        Ok(Value::Object(_)) => None,
        _ => Some(("MalformedDetail", "Detail is malformed.".to_string())),
    }
}

async fn put_events(sink: &Sink, request: &Value) -> Result<Value, Response> {
    let bad = |m: String| error(StatusCode::BAD_REQUEST, "ValidationException", &m);
    let Some(entries) = request.get("Entries").and_then(Value::as_array) else {
        return Err(bad("1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null".into()));
    };
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(bad(format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and {MAX_ENTRIES} (got {})",
            entries.len()
        )));
    }
    let total: usize = entries.iter().map(entry_size).sum();
    if total > MAX_TOTAL_BYTES {
        return Err(bad(format!(
            "Total size of the entries in the request is over the limit: {total} bytes, at most {MAX_TOTAL_BYTES}"
        )));
    }
    let checks: Vec<Option<(&str, String)>> = entries.iter().map(check_entry).collect();
    if checks.iter().all(Option::is_some) {
        // The service fails the whole request when no entry is complete.
        let (code, message) = checks[0].clone().unwrap_or(("InvalidArgument", String::new()));
        return Err(bad(format!("{code}: {message}")));
    }
    let mut results = Vec::with_capacity(entries.len());
    let mut lines = String::new();
    let mut accepted = Vec::new();
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    for (entry, check) in entries.iter().zip(checks) {
        if let Some((code, message)) = check {
            results.push(json!({"ErrorCode": code, "ErrorMessage": message}));
            continue;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let event = envelope(sink, entry, &id, &now);
        let bus = entry.get("EventBusName").and_then(Value::as_str).unwrap_or(DEFAULT_BUS).to_string();
        let mut record = event.clone();
        record["event-bus-name"] = Value::String(bus.clone());
        lines.push_str(&record.to_string());
        lines.push('\n');
        results.push(json!({"EventId": id}));
        accepted.push((bus, event));
    }
    let failed = results.iter().filter(|r| r.get("ErrorCode").is_some()).count();
    let mut log = sink.log.lock().await;
    if let Err(e) = async {
        log.write_all(lines.as_bytes()).await?;
        log.flush().await
    }
    .await
    {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalException",
            &format!("recording the events: {e}"),
        ));
    }
    drop(log);
    for (bus, event) in &accepted {
        deliver(sink, bus, event);
    }
    Ok(json!({"FailedEntryCount": failed, "Entries": results}))
}

/// The event envelope EventBridge delivers for an accepted PutEvents entry: `version` "0", `id`,
/// `detail-type`, `source`, `account`, `time` (the entry's `Time`, else now; RFC 3339 to the
/// second, UTC), `region`, `resources` (`[]` when not given) and `detail` (the parsed `Detail`).
fn envelope(sink: &Sink, entry: &Value, id: &str, now: &str) -> Value {
    let detail: Value = entry
        .get("Detail")
        .and_then(Value::as_str)
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    json!({
        "version": "0",
        "id": id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": sink.account,
        "time": entry.get("Time").and_then(event_time).unwrap_or_else(|| now.to_string()),
        "region": sink.region,
        "resources": entry.get("Resources").cloned().unwrap_or_else(|| json!([])),
        "detail": detail,
    })
}

/// A PutEvents `Time` (awsJson timestamps are epoch seconds; an RFC 3339 string is taken too) as
/// the envelope writes it: `2026-01-01T03:00:00Z`.
fn event_time(time: &Value) -> Option<String> {
    let parsed = match time {
        Value::Number(n) => {
            let seconds = n.as_f64()?;
            chrono::DateTime::from_timestamp(seconds.floor() as i64, 0)?
        }
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc),
        _ => return None,
    };
    Some(parsed.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Sends `event` to the targets of every enabled rule on `bus` that it matches.
fn deliver(sink: &Sink, bus: &str, event: &Value) {
    let bus = bus_name(bus);
    let mut body = None;
    for rule in &sink.rules {
        if rule.state != RuleState::Enabled
            || bus_name(&rule.event_bus_name) != bus
            || !rule.event_pattern.matches(event)
        {
            continue;
        }
        let body = body.get_or_insert_with(|| event.to_string());
        for target in &rule.targets {
            let Some(sqs) = &sink.sqs else {
                tracing::warn!(rule = %rule.name, target = %target.arn, "no local SQS to deliver the event to");
                continue;
            };
            match sqs.send_to_arn(&target.arn, body) {
                Ok(message) => {
                    tracing::debug!(rule = %rule.name, target = %target.arn, %message, "event delivered")
                }
                Err(e) => {
                    tracing::warn!(rule = %rule.name, target = %target.arn, error = %e, "event not delivered")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: Value) -> Rule {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn rules_read_like_put_rule_and_put_targets() {
        let r = rule(json!({
            "Name": "s3-created",
            "EventPattern": "{\"source\": [\"aws.s3\"]}",
            "Targets": [{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:000000000000:q"}]
        }));
        assert_eq!((r.event_bus_name.as_str(), r.state), ("default", RuleState::Enabled));
        assert!(r.event_pattern.matches(&json!({"source": "aws.s3"})));
        assert!(check_rules(std::slice::from_ref(&r)).is_ok());
        assert!(matches!(check_rules(&[r.clone(), r]), Err(EventsError::Rule { .. })));

        let unknown = json!({"Name": "x", "EventPattern": {"source": ["a"]}, "InputPath": "$.detail"});
        assert!(serde_json::from_value::<Rule>(unknown).unwrap_err().to_string().contains("InputPath"));
        let lambda = rule(json!({
            "Name": "x", "EventPattern": {"source": ["a"]},
            "Targets": [{"Id": "f", "Arn": "arn:aws:lambda:us-east-1:000000000000:function:f"}]
        }));
        let err = check_rules(&[lambda]).unwrap_err().to_string();
        assert!(err.contains("not an SQS queue ARN"), "{err}");
    }

    #[test]
    fn buses_are_named_or_given_by_arn() {
        assert_eq!(bus_name("default"), "default");
        assert_eq!(bus_name("arn:aws:events:us-east-1:000000000000:event-bus/recflow"), "recflow");
    }

    #[test]
    fn entry_times_become_rfc3339_seconds() {
        assert_eq!(event_time(&json!(1767236400.5)).as_deref(), Some("2026-01-01T03:00:00Z"));
        assert_eq!(event_time(&json!("2026-01-01T04:00:00+01:00")).as_deref(), Some("2026-01-01T03:00:00Z"));
        assert_eq!(event_time(&json!("yesterday")), None);
    }
}
