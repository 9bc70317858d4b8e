//! The daemon's HTTP API over real TCP on 127.0.0.1: the token off loopback, body limits and
//! malformed bodies, an EventBridge event starting `event-import` once, StopExecution, the
//! description with its history, and the status page.

#[path = "support/daemon.rs"]
mod daemon;

use std::sync::Arc;
use std::time::Duration;

use daemon::{ended, event_import_daemon, imported_location, object_created_detail};
use recflow::checkpoint::MemoryStore;
use recflow::daemon::Daemon;
use recflow::daemon::http::{ApiOptions, router};
use recflow::engine::{ExecutionStore, Status};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The test daemon (`event-import` and `parked`), served on a free loopback port.
async fn serve(
    token: Option<&str>,
    max_body_bytes: usize,
) -> (std::net::SocketAddr, Arc<Daemon>, Arc<MemoryStore>) {
    let (daemon, store) = event_import_daemon().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(Arc::clone(&daemon), ApiOptions { token: token.map(String::from), max_body_bytes });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, daemon, store)
}

/// One HTTP/1.1 request; the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A body past the limit may be refused before it is all sent.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await.unwrap().unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
}

async fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let (status, body) = request(addr, "POST", path, "", body).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}")))
}

fn s3_event(id: &str, key: &str) -> String {
    json!({
        "version": "0", "id": id, "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": "2026-11-29T03:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:s3:::recflow-drop"],
        "detail": object_created_detail(key)
    })
    .to_string()
}

#[tokio::test]
async fn an_s3_object_created_event_starts_event_import_with_its_key_once() {
    let (addr, _daemon, store) = serve(None, 262_144).await;
    let event = s3_event("7f1a-22", "interactions/2026-11-29.csv");
    let (status, first) = post(addr, "/workflows/event-import/executions", &event).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["name"], "event-import-7f1a-22");
    // EventBridge delivers at least once: the same event again starts nothing new.
    let (status, again) = post(addr, "/workflows/event-import/executions", &event).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["executionArn"].clone(), again["alreadyStarted"].clone()),
        (first["executionArn"].clone(), json!(true))
    );
    let execution = ended(&store, "event-import-7f1a-22").await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
    let all = store.list().await.unwrap();
    assert_eq!(all.iter().flatten().filter(|e| e.state_machine == "event-import").count(), 1);
    // The import read the event's object.
    assert_eq!(
        imported_location(&store, "event-import-7f1a-22"),
        Some(json!("s3://recflow-drop/interactions/2026-11-29.csv"))
    );
    let history = store.history_of("event-import-7f1a-22");
    // Described with its history.
    let (status, body) = request(addr, "GET", "/executions/event-import-7f1a-22", "", "").await;
    let described: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, described["status"].as_str()), (200, Some("SUCCEEDED")));
    assert_eq!(described["history"].as_array().unwrap().len(), history.len());
}

#[tokio::test]
async fn a_token_is_required_when_one_is_set_and_compared_whole() {
    let (addr, daemon, _) = serve(Some("s3cret-token"), 262_144).await;
    let start = r#"{"input": {"a": 1}}"#;
    for headers in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Bearer s3cret-toke\r\n",
        "Authorization: s3cret-token\r\n",
    ] {
        let (status, body) = request(addr, "POST", "/workflows/parked/executions", headers, start).await;
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert!(body.contains("UnauthorizedException"), "{body}");
    }
    assert!(daemon.executions().await.is_empty(), "nothing started without the token");
    for path in ["/executions", "/metrics", "/"] {
        assert_eq!(request(addr, "GET", path, "", "").await.0, 401, "{path}");
    }
    // Health checks need no token.
    assert_eq!(request(addr, "GET", "/healthz", "", "").await.0, 200);
    // A browser sends it as the password of Basic authentication.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("me:s3cret-token");
    let (status, page) = request(addr, "GET", "/", &format!("Authorization: Basic {basic}\r\n"), "").await;
    assert!(status == 200 && page.contains("Workflows"), "{status}: {page}");
    let (status, body) = request(
        addr,
        "POST",
        "/workflows/parked/executions",
        "Authorization: Bearer s3cret-token\r\n",
        start,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused_with_a_reason() {
    let (addr, daemon, _) = serve(None, 1024).await;
    let big = format!(r#"{{"input": {{"pad": "{}"}}}}"#, "x".repeat(4096));
    let (status, body) = request(addr, "POST", "/workflows/parked/executions", "", &big).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("limit of 1024 bytes"), "{body}");
    let cases = [
        ("{\"input\": ", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("{\"inputs\": {}}", "unknown field 'inputs'"),
        ("{\"input\": \"{oops\"}", "not JSON text"),
        ("{\"name\": 7}", "must be a string, not 7"),
    ];
    for (bad, reason) in cases {
        let (status, body) = request(addr, "POST", "/workflows/parked/executions", "", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(reason), "{bad}: {body}");
    }
    let (status, body) = post(addr, "/workflows/nightly/executions", "{}").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("StateMachineDoesNotExist")));
    // Unknown paths and methods say so, in JSON.
    let (status, body) = request(addr, "GET", "/nowhere", "", "").await;
    assert!(status == 404 && body.contains("no such resource: /nowhere"), "{body}");
    let (status, body) = request(addr, "DELETE", "/executions/x", "", "").await;
    assert!(status == 405 && body.contains("DELETE is not served on /executions/x"), "{body}");
    let (status, body) = post(addr, "/workflows/parked/executions", r#"{"name": "no spaces please"}"#).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidName")));
    assert!(daemon.executions().await.is_empty());
}

#[tokio::test]
async fn stop_execution_aborts_a_running_execution_and_the_page_shows_it() {
    let (addr, _daemon, store) = serve(None, 262_144).await;
    let (status, body) =
        post(addr, "/workflows/parked/executions", r#"{"name": "parked-1", "input": {}}"#).await;
    assert_eq!(status, 200, "{body}");
    // It reaches its Wait.
    for _ in 0..1000 {
        if store.read("parked-1").await.unwrap().execution.at.as_ref().is_some_and(|a| a.state == "Pause") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, page) = request(addr, "GET", "/ui/executions/parked-1", "", "").await;
    assert_eq!(status, 200);
    assert!(page.contains("<svg") && page.contains("stroke=\"#0b62c4\""), "the current state is highlighted");
    assert!(page.contains("at <b>Pause</b>"), "{page}");
    let (status, front) = request(addr, "GET", "/", "", "").await;
    assert!(status == 200 && front.contains("/ui/executions/parked-1") && front.contains("event-import"));
    let (status, body) =
        post(addr, "/executions/parked-1/stop", r#"{"error": "Operator", "cause": "wrong day"}"#).await;
    assert_eq!(status, 200, "{body}");
    let execution = ended(&store, "parked-1").await;
    assert_eq!(execution.status, Status::Aborted);
    let (_, listed) =
        request(addr, "GET", "/executions?statusFilter=ABORTED&stateMachine=parked", "", "").await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["executions"].as_array().unwrap().len(), 1, "{listed}");
    let (status, _) =
        request(addr, "GET", "/executions?statusFilter=RUNNING&stateMachine=parked", "", "").await;
    assert_eq!(status, 200);
    // An ended execution's page shows its input and no longer refreshes itself.
    let (_, page) = request(addr, "GET", "/ui/executions/parked-1", "", "").await;
    assert!(page.contains("<h2>Input</h2>") && !page.contains("http-equiv=\"refresh\""), "{page}");
    assert_eq!(execution.cause.as_deref(), Some("wrong day"));
    // Stopping it again, or something that does not exist, says why.
    let (status, body) = post(addr, "/executions/parked-1/stop", "").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("ExecutionNotRunning")), "{body}");
    let (status, _) = post(addr, "/executions/nobody/stop", "").await;
    assert_eq!(status, 404);
    let (_, metrics) = request(addr, "GET", "/metrics", "", "").await;
    assert!(
        metrics.contains("recflow_executions_ended_total{workflow=\"parked\",status=\"ABORTED\"} 1"),
        "{metrics}"
    );
}
