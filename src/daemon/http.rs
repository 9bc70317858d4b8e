//! The daemon's HTTP API (axum), bound to 127.0.0.1 unless told otherwise:
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | `{"status":"ok","running":N}` (never needs the token) |
//! | `GET /metrics` | Prometheus text ([`super::Metrics`]) |
//! | `GET /executions` | `{"executions":[...]}`, ListExecutions' items, newest first; `?stateMachine=` and `?statusFilter=` filter |
//! | `GET /executions/{name}` | DescribeExecution's shape, plus `history` (the events) |
//! | `POST /workflows/{id}/executions` | starts one: StartExecution's answer (`executionArn`, `startDate`) |
//! | `POST /executions/{name}/stop` | StopExecution: `{"error":..,"cause":..}` optional; answers `stopDate` |
//! | `GET /`, `GET /ui/executions/{name}` | the status page ([`super::page`]) |
//!
//! A start's body is either StartExecution's (`{"input": {...} or "<JSON text>", "name": "..."}`,
//! both optional) or an EventBridge event as an API destination posts it (a JSON object with
//! `source`, `detail-type` and `detail`): the event is then the execution's input and its `id`
//! names the execution, so an event delivered twice starts one execution.
//!
//! With a token ([`ApiOptions::token`]) every request but `/healthz` needs
//! `Authorization: Bearer <token>`, or Basic authentication with the token as password (a
//! browser asks for it on the 401's `WWW-Authenticate`); compared in constant time; without
//! it: 401 and nothing happens. Bodies over [`ApiOptions::max_body_bytes`] get 413, malformed ones 400, each with
//! `{"error": <Step Functions' error name>, "message": <what is wrong>}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Daemon, StartError, StopError, Trigger, page};
use crate::engine::execution::timestamp;

/// Step Functions' largest execution input, 256 KiB: the default body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 262_144;

/// How the API guards itself.
#[derive(Clone)]
pub struct ApiOptions {
    /// The bearer token every request (but `/healthz`) must carry; none: no check (loopback).
    pub token: Option<String>,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
}

#[derive(Clone)]
struct Api {
    daemon: Arc<Daemon>,
    max_body_bytes: usize,
    /// SHA-256 of the token: equal lengths, so the comparison's time says nothing of it.
    token: Option<[u8; 32]>,
}

/// The API's routes over `daemon`.
pub fn router(daemon: Arc<Daemon>, options: ApiOptions) -> Router {
    let token = options.token.map(|t| Sha256::digest(t.as_bytes()).into());
    let api = Api { daemon, max_body_bytes: options.max_body_bytes, token };
    Router::new()
        .route("/", get(index))
        .route("/ui/executions/{name}", get(execution_page))
        .route("/metrics", get(metrics))
        .route("/executions", get(list))
        .route("/executions/{name}", get(describe))
        .route("/executions/{name}/stop", post(stop))
        .route("/workflows/{id}/executions", post(start))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .with_state(api)
}

/// A JSON error in Step Functions' style.
fn error(status: StatusCode, name: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": name, "message": message.into()}))).into_response()
}

async fn authorize(State(api): State<Api>, headers: HeaderMap, request: Request, next: Next) -> Response {
    if let Some(expected) = &api.token {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(credential);
        let valid =
            given.is_some_and(|g| bool::from(<[u8; 32]>::from(Sha256::digest(g.as_bytes())).ct_eq(expected)));
        if !valid {
            let mut refused = error(
                StatusCode::UNAUTHORIZED,
                "UnauthorizedException",
                "this API needs the daemon's token: `Authorization: Bearer <token>`, or in a browser any user name with the token as password",
            );
            // A browser asks for the password; API clients send Bearer.
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"recflow\", charset=\"UTF-8\""),
            );
            return refused;
        }
    }
    next.run(request).await
}

/// The token an Authorization header carries: `Bearer <token>`, or `Basic` with the token as
/// password (what a browser sends after asking); schemes in any case (RFC 9110 section 11.1).
fn credential(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let (_, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some(password.to_string());
    }
    None
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "no such resource: {} (see GET / for the status page; the API is under /executions and /workflows/{{id}}/executions)",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{method} is not served on {}", uri.path()),
    )
}

async fn healthz(State(api): State<Api>) -> Response {
    let running = api.daemon.inner.lock().expect("daemon lock").running.len();
    axum::Json(json!({"status": "ok", "running": running})).into_response()
}

async fn metrics(State(api): State<Api>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], api.daemon.metrics_text())
        .into_response()
}

/// ListExecutions' filters, as query parameters: `stateMachine` (a workflow's name) and
/// `statusFilter` (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED); anything else is refused.
fn list_filters(query: Option<&str>) -> Result<(Option<String>, Option<String>), String> {
    let (mut workflow, mut status) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "stateMachine" => workflow = Some(value.to_string()),
            "statusFilter" if ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"].contains(&value) => {
                status = Some(value.to_string())
            }
            "statusFilter" => {
                return Err(format!(
                    "statusFilter '{value}' is not one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED"
                ));
            }
            other => {
                return Err(format!(
                    "unknown query parameter '{other}': GET /executions takes stateMachine and statusFilter"
                ));
            }
        }
    }
    Ok((workflow, status))
}

async fn list(State(api): State<Api>, uri: axum::http::Uri) -> Response {
    let (workflow, status) = match list_filters(uri.query()) {
        Ok(filters) => filters,
        Err(message) => return error(StatusCode::BAD_REQUEST, "InvalidRequest", message),
    };
    let executions: Vec<Value> = api
        .daemon
        .executions()
        .await
        .iter()
        .filter(|e| workflow.as_ref().is_none_or(|w| *w == e.state_machine))
        .filter(|e| status.as_deref().is_none_or(|s| s == e.status.as_str()))
        .map(|e| {
            let mut item = json!({
                "executionArn": e.arn(),
                "stateMachineArn": e.state_machine_arn(),
                "name": e.name,
                "status": e.status.as_str(),
                "startDate": timestamp(e.start_time),
            });
            if let Some(t) = e.stop_time {
                item["stopDate"] = timestamp(t).into();
            }
            item
        })
        .collect();
    axum::Json(json!({"executions": executions})).into_response()
}

async fn describe(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.daemon.read(&name).await {
        None => error(StatusCode::NOT_FOUND, "ExecutionDoesNotExist", format!("no execution named '{name}'")),
        Some((stored, history)) => {
            let mut described = stored.execution.describe();
            described["history"] = serde_json::to_value(&history).expect("history events serialize");
            axum::Json(described).into_response()
        }
    }
}

/// Reads a JSON body, or says what is wrong with it (400, or 413 past the size limit, as the
/// status and message of an `InvalidRequest`); an empty body is `{}`.
fn json_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Value, (StatusCode, String)> {
    let bytes = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (
            e.status(),
            format!(
                "the body is larger than this API's limit of {limit} bytes (recflow daemon --max-body-bytes)"
            ),
        ),
        status => (status, e.body_text()),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {e}")))
}

async fn start(
    State(api): State<Api>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(body, api.max_body_bytes) {
        Ok(body) => body,
        Err((status, message)) => return error(status, "InvalidRequest", message),
    };
    let (name, input, trigger) = match start_request(body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, "InvalidExecutionInput", message),
    };
    let event = matches!(trigger, Trigger::Event(_));
    match api.daemon.start_execution(&id, name, input, trigger).await {
        Ok(execution) => axum::Json(json!({
            "executionArn": execution.arn(),
            "name": execution.name,
            "startDate": timestamp(execution.start_time),
        }))
        .into_response(),
        // The same event again: the execution it started answers, as StartExecution does for a
        // repeated name and input.
        Err(StartError::Exists(name)) if event => match api.daemon.read(&name).await {
            Some((stored, _)) => axum::Json(json!({
                "executionArn": stored.execution.arn(),
                "name": name,
                "startDate": timestamp(stored.execution.start_time),
                "alreadyStarted": true,
            }))
            .into_response(),
            None => error(
                StatusCode::CONFLICT,
                "ExecutionAlreadyExists",
                format!("execution '{name}' is being started"),
            ),
        },
        Err(e @ StartError::Exists(_)) => {
            error(StatusCode::CONFLICT, "ExecutionAlreadyExists", e.to_string())
        }
        Err(e @ StartError::NoWorkflow { .. }) => {
            error(StatusCode::NOT_FOUND, "StateMachineDoesNotExist", e.to_string())
        }
        Err(e @ StartError::BadName(_)) => error(StatusCode::BAD_REQUEST, "InvalidName", e.to_string()),
        Err(e @ StartError::ShuttingDown) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", e.to_string())
        }
        Err(e @ StartError::Store(_)) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string())
        }
    }
}

/// A start body's name, input and trigger: an EventBridge event, or StartExecution's fields.
fn start_request(body: Value) -> Result<(Option<String>, Value, Trigger), String> {
    let Value::Object(mut fields) = body else {
        return Err(
            "the body must be a JSON object: {\"input\": {...}, \"name\": \"...\"} or an EventBridge event"
                .into(),
        );
    };
    if fields.contains_key("detail-type") && fields.contains_key("source") {
        let id = match fields.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(
                    "the EventBridge event has no \"id\" (a string), which names its execution".into()
                );
            }
        };
        return Ok((None, Value::Object(fields), Trigger::Event(id)));
    }
    for key in fields.keys() {
        if key != "input" && key != "name" {
            return Err(format!(
                "unknown field '{key}': a start takes \"input\" and \"name\", or an EventBridge event (with \"source\", \"detail-type\" and \"detail\")"
            ));
        }
    }
    let name = match fields.remove("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(other) => return Err(format!("\"name\" must be a string, not {other}")),
    };
    let input = match fields.remove("input") {
        None => json!({}),
        // StartExecution's input is JSON text; an object is taken as it is.
        Some(Value::String(text)) => serde_json::from_str(&text)
            .map_err(|e| format!("\"input\" is a string but not JSON text: {e}"))?,
        Some(value) => value,
    };
    Ok((name, input, Trigger::Api))
}

async fn stop(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(body, api.max_body_bytes) {
        Ok(body) => body,
        Err((status, message)) => return error(status, "InvalidRequest", message),
    };
    let field = |key: &str| match body.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("\"{key}\" must be a string, not {other}")),
    };
    let (error_name, cause) = match (field("error"), field("cause")) {
        (Ok(e), Ok(c)) => (e, c),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, "InvalidRequest", m),
    };
    match api.daemon.stop_execution(&name, error_name, cause).await {
        Ok(()) => axum::Json(json!({"stopDate": timestamp(api.daemon.clock().now())})).into_response(),
        Err(e @ StopError::ShuttingDown) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", e.to_string())
        }
        Err(e @ StopError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, "ExecutionDoesNotExist", e.to_string())
        }
        Err(e) => error(StatusCode::CONFLICT, "ExecutionNotRunning", e.to_string()),
    }
}

async fn index(State(api): State<Api>) -> Html<String> {
    Html(page::index(&api.daemon).await)
}

async fn execution_page(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.daemon.read(&name).await {
        Some((stored, history)) => Html(page::execution(&api.daemon, &stored, &history)).into_response(),
        None => (StatusCode::NOT_FOUND, Html(page::not_found(&name))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_are_list_executions_and_nothing_else() {
        assert_eq!(list_filters(None), Ok((None, None)));
        assert_eq!(
            list_filters(Some("stateMachine=nightly&statusFilter=FAILED")),
            Ok((Some("nightly".into()), Some("FAILED".into())))
        );
        assert!(list_filters(Some("statusFilter=failed")).unwrap_err().contains("not one of"));
        assert!(
            list_filters(Some("maxResults=1")).unwrap_err().contains("unknown query parameter 'maxResults'")
        );
    }

    #[test]
    fn a_token_comes_as_bearer_or_as_a_basic_password() {
        assert_eq!(credential("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(credential("bearer  abc ").as_deref(), Some("abc"));
        // "anyone:abc"
        assert_eq!(credential("Basic YW55b25lOmFiYw==").as_deref(), Some("abc"));
        assert_eq!(credential("abc"), None);
        assert_eq!(credential("Digest abc"), None);
    }

    #[test]
    fn a_start_body_is_an_event_or_start_executions_fields() {
        let (name, input, trigger) = start_request(json!({"input": "{\"a\":1}", "name": "n"})).unwrap();
        assert_eq!((name.as_deref(), input, trigger), (Some("n"), json!({"a": 1}), Trigger::Api));
        let event = json!({"id": "e-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
        let (name, input, trigger) = start_request(event.clone()).unwrap();
        assert_eq!((name, input, trigger), (None, event, Trigger::Event("e-1".into())));
        assert!(start_request(json!([1])).unwrap_err().contains("JSON object"));
        assert!(start_request(json!({"inptu": {}})).unwrap_err().contains("unknown field 'inptu'"));
        assert!(start_request(json!({"input": "{"})).unwrap_err().contains("not JSON text"));
        assert!(start_request(json!({"source": "s", "detail-type": "d"})).unwrap_err().contains("\"id\""));
    }
}
