//! The local EventBridge: PutEvents answered as the service answers it, every accepted event
//! recorded as one JSON line under `<data_dir>/events/events.jsonl`, so tests and users can see
//! what a workflow published.

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

use super::faults::{Fault, Faults, OperationFault};

/// PutEvents takes at most this many entries (the service model's list bound).
pub const MAX_ENTRIES: usize = 10;
/// The total entry size limit, raised from 256 KB to 1 MB in January 2026.
pub const MAX_TOTAL_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub struct EventsHandle {
    addr: SocketAddr,
    log: PathBuf,
    sink: Arc<Sink>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl EventsHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

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
}

/// Serves EventBridge's PutEvents on `listener`, recording events under `<data_dir>/events/`.
pub async fn start(
    data_dir: &Path,
    region: &str,
    account: &str,
    listener: tokio::net::TcpListener,
) -> Result<EventsHandle, EventsError> {
    let dir = data_dir.join("events");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EventsError::Io { path, source }
    };
    tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
    let log = dir.join("events.jsonl");
    let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await.map_err(io(&log))?;
    let addr = listener.local_addr().map_err(io(&dir))?;
    let sink = Arc::new(Sink {
        log: Mutex::new(file),
        faults: Faults::default(),
        region: region.to_string(),
        account: account.to_string(),
    });
    let app = Router::new()
        .route("/", axum::routing::post(handle))
        .route("/__recflow/faults", axum::routing::post(arm_fault).delete(clear_faults))
        .with_state(Arc::clone(&sink));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "local EventBridge stopped");
        }
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
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    for (entry, check) in entries.iter().zip(checks) {
        if let Some((code, message)) = check {
            results.push(json!({"ErrorCode": code, "ErrorMessage": message}));
            continue;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let detail: Value = entry
            .get("Detail")
            .and_then(Value::as_str)
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        let event = json!({
            "version": "0",
            "id": id,
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": sink.account,
            "time": entry.get("Time").cloned().unwrap_or_else(|| now.clone().into()),
            "region": sink.region,
            "resources": entry.get("Resources").cloned().unwrap_or_else(|| json!([])),
            "detail": detail,
            "event-bus-name": entry.get("EventBusName").and_then(Value::as_str).unwrap_or("default"),
        });
        lines.push_str(&event.to_string());
        lines.push('\n');
        results.push(json!({"EventId": id}));
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
    Ok(json!({"FailedEntryCount": failed, "Entries": results}))
}
