//! A local Amazon SQS: standard queues over the awsJson1_0 protocol the current SDKs speak
//! (`POST /`, `X-Amz-Target: AmazonSQS.<Operation>`, `Content-Type: application/x-amz-json-1.0`).
//!
//! Operations: CreateQueue, GetQueueUrl, GetQueueAttributes, SendMessage, ReceiveMessage (with
//! long polling), DeleteMessage and ChangeMessageVisibility. Shapes, bounds and error codes follow
//! the SQS API reference (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/) and the
//! Smithy model aws-sdk-sqs 1.x is generated from. Errors carry, besides `__type` and
//! `x-amzn-errortype`, the `x-amzn-query-error: <code>;Sender` header SQS sends for clients of its
//! older query protocol; aws-sdk-rust takes the error code from it (`AWS.SimpleQueueService.
//! NonExistentQueue` is what it maps to `QueueDoesNotExist`). Source: SQS developer guide,
//! "Interpreting Amazon SQS JSON API responses".
//!
//! Queue URLs are `http://<host>:<port>/<account>/<name>`, ARNs `arn:aws:sqs:<region>:<account>:
//! <name>`. Durations (visibility timeouts, delays, long-poll waits, retention) are emulated
//! seconds that pass `time_scale` times faster than real ones, as the local Personalize's jobs
//! do; timestamps (`SentTimestamp`, ...) are the real clock's epoch milliseconds.
//!
//! State is in memory only: queues and messages are gone when the emulator stops. Not supported
//! (refused with an error, never silently ignored): FIFO queues, message attributes, dead-letter
//! redrive, KMS encryption, and the batch, purge, delete-queue, tagging and permission operations.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use md5::{Digest as _, Md5};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use super::aws_json::{self, JsonVersion};

/// The `X-Amz-Target` prefix of SQS operations.
pub const TARGET_PREFIX: &str = "AmazonSQS.";
/// A queue's default visibility timeout, in (emulated) seconds (CreateQueue, `VisibilityTimeout`).
pub const DEFAULT_VISIBILITY_TIMEOUT: u32 = 30;
/// The longest visibility timeout, and the longest a message may stay in flight from its
/// receive: 12 hours (ChangeMessageVisibility).
pub const MAX_VISIBILITY_TIMEOUT: u32 = 43_200;
/// The longest delivery delay, 15 minutes (CreateQueue and SendMessage, `DelaySeconds`).
pub const MAX_DELAY_SECONDS: u32 = 900;
/// The longest long-poll wait (ReceiveMessage, `WaitTimeSeconds`).
pub const MAX_WAIT_TIME_SECONDS: u32 = 20;
/// The most messages one ReceiveMessage returns (`MaxNumberOfMessages`).
pub const MAX_RECEIVE_MESSAGES: u32 = 10;
/// The default and largest `MaximumMessageSize`: 1 MiB (bytes of the UTF-8 body).
pub const MAX_MESSAGE_BYTES: u32 = 1_048_576;
/// The default message retention: 4 days (`MessageRetentionPeriod`, 60 s to 14 days).
pub const DEFAULT_RETENTION_SECONDS: u32 = 345_600;
/// The longest queue name (alphanumerics, `-` and `_`).
pub const MAX_QUEUE_NAME: usize = 80;
/// Requests larger than this are refused before they are parsed (a 1 MiB body, JSON-escaped).
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// The emulated account, region and clock.
#[derive(Debug, Clone)]
pub struct SqsConfig {
    /// The region in queue ARNs.
    pub region: String,
    /// The account in queue URLs and ARNs.
    pub account: String,
    /// Emulated seconds per real second: 60.0 makes a 30 s visibility timeout last half a second.
    pub time_scale: f64,
    /// Header-read timeout and connection cap of the port.
    pub connections: super::http_server::ConnectionLimits,
}

impl Default for SqsConfig {
    fn default() -> SqsConfig {
        SqsConfig {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            time_scale: 1.0,
            connections: Default::default(),
        }
    }
}

/// Why the local SQS could not start.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listener's address could not be read.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A running local SQS.
pub struct SqsHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl SqsHandle {
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for an SDK client, e.g. `http://127.0.0.1:40126`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of the queue `name` (whether or not it exists).
    pub fn queue_url(&self, name: &str) -> String {
        self.shared.queue_url(name)
    }

    /// The ARN of the queue `name` (whether or not it exists), as EventBridge targets name it.
    pub fn queue_arn(&self, name: &str) -> String {
        self.shared.queue_arn(name)
    }

    /// The queues, for delivering messages in process (the local EventBridge's rule targets).
    pub fn queues(&self) -> SqsQueues {
        SqsQueues { shared: Arc::clone(&self.shared) }
    }

    /// How many ReceiveMessage calls are waiting for a message right now (for tests that must
    /// send only once a long poll has begun).
    pub fn long_polls(&self) -> usize {
        self.shared.long_polls.load(Ordering::SeqCst)
    }

    /// Ends waiting long polls (they answer with no messages), stops accepting requests and waits
    /// for the server to finish. The queues are dropped.
    pub async fn shutdown(self) {
        self.shared.shutdown.send_replace(true);
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// A cheap handle on the queues of a running local SQS, for other local services to send to.
#[derive(Clone)]
pub struct SqsQueues {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqsQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueues").field("addr", &self.shared.addr).finish_non_exhaustive()
    }
}

/// Why an in-process delivery failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// The ARN is not `arn:aws:sqs:<region>:<account>:<name>` of this emulator's region and
    /// account, or names no existing queue.
    #[error("no queue {0} in the local SQS")]
    NoSuchQueue(String),
    /// The queue refused the body (too large, or characters SQS does not allow).
    #[error("the queue refused the message: {0}")]
    Refused(String),
}

impl SqsQueues {
    /// Sends `body` to the queue whose ARN is `arn`, as SendMessage would with the queue's own
    /// delay. Returns the new message's id.
    pub fn send_to_arn(&self, arn: &str, body: &str) -> Result<String, DeliveryError> {
        let prefix = format!("arn:aws:sqs:{}:{}:", self.shared.config.region, self.shared.config.account);
        let name = arn.strip_prefix(&prefix).ok_or_else(|| DeliveryError::NoSuchQueue(arn.to_string()))?;
        match self.shared.send(name, body, None) {
            Ok((id, _)) => Ok(id),
            Err(e) if e.shape == QUEUE_DOES_NOT_EXIST => Err(DeliveryError::NoSuchQueue(arn.to_string())),
            Err(e) => Err(DeliveryError::Refused(e.message)),
        }
    }
}

/// Serves SQS on `listener`, with no queues.
pub async fn start(config: SqsConfig, listener: tokio::net::TcpListener) -> Result<SqsHandle, SqsError> {
    if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
        return Err(SqsError::Config(format!("time_scale must be positive, not {}", config.time_scale)));
    }
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        addr,
        state: Mutex::new(BTreeMap::new()),
        shutdown: watch::Sender::new(false),
        long_polls: AtomicUsize::new(0),
    });
    let limits = shared.config.connections;
    let app = Router::new()
        .route("/", axum::routing::post(handle))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn(super::aws_json::signed_v1_0))
        .with_state(Arc::clone(&shared));
    let (stop, stopped) = oneshot::channel::<()>();
    let service = hyper_util::service::TowerToHyperService::new(app);
    let task = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        super::http_server::serve("SQS", listener, service, limits, stopped).await;
    });
    tracing::info!(%addr, "sqs emulator listening");
    Ok(SqsHandle { addr, shared, stop, task })
}

// ---- errors ----------------------------------------------------------------------------------

const QUEUE_DOES_NOT_EXIST: &str = "QueueDoesNotExist";

/// An error answered on the wire: the model's shape name, the query-protocol code aws-sdk-rust
/// matches on (the shape's `awsQueryError` trait), and a message.
#[derive(Debug, Clone, PartialEq)]
struct ApiError {
    status: StatusCode,
    shape: &'static str,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(shape: &'static str, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, shape, code, message: message.into() }
    }
    fn queue_does_not_exist() -> ApiError {
        ApiError::new(
            QUEUE_DOES_NOT_EXIST,
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    }
    /// Not in the model's operation errors; SQS answers bad parameter values with it.
    fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new("InvalidParameterValue", "InvalidParameterValue", message)
    }
    fn missing_parameter(name: &str) -> ApiError {
        ApiError::new(
            "MissingParameter",
            "MissingParameter",
            format!("The request must contain the parameter {name}."),
        )
    }
    fn invalid_address(message: impl Into<String>) -> ApiError {
        ApiError::new("InvalidAddress", "InvalidAddress", message)
    }
    fn invalid_attribute_name(name: &str) -> ApiError {
        ApiError::new("InvalidAttributeName", "InvalidAttributeName", format!("Unknown Attribute {name}."))
    }
    fn invalid_attribute_value(name: &str, reason: &str) -> ApiError {
        ApiError::new(
            "InvalidAttributeValue",
            "InvalidAttributeValue",
            format!("Invalid value for the parameter {name}. Reason: {reason}"),
        )
    }
    fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError::new("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", message)
    }
    fn receipt_handle_invalid(handle: &str) -> ApiError {
        ApiError::new(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    }
    fn message_not_inflight() -> ApiError {
        ApiError::new(
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            "The message referred to isn't in flight.",
        )
    }
    fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new("SerializationException", "SerializationException", message)
    }

    fn into_response(self) -> Response {
        let kind = format!("com.amazonaws.sqs#{}", self.shape);
        let mut response = aws_json::error_for(JsonVersion::V1_0, self.status, &kind, &self.message);
        let fault = if self.status.is_server_error() { "Receiver" } else { "Sender" };
        if let Ok(value) = HeaderValue::from_str(&format!("{};{fault}", self.code)) {
            response.headers_mut().insert(HeaderName::from_static("x-amzn-query-error"), value);
        }
        response
    }
}

// ---- state -----------------------------------------------------------------------------------

/// A queue's settings, from CreateQueue's attributes (emulated seconds, bytes).
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    visibility_timeout: u32,
    delay_seconds: u32,
    maximum_message_size: u32,
    message_retention_period: u32,
    receive_message_wait_time_seconds: u32,
    /// Accepted and answered back, without effect here (`Policy`, `SqsManagedSseEnabled`).
    inert: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            delay_seconds: 0,
            maximum_message_size: MAX_MESSAGE_BYTES,
            message_retention_period: DEFAULT_RETENTION_SECONDS,
            receive_message_wait_time_seconds: 0,
            inert: BTreeMap::new(),
        }
    }
}

/// The numeric attributes: name, bounds, and where they go.
const NUMERIC_ATTRIBUTES: [(&str, u32, u32); 5] = [
    ("VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT),
    ("DelaySeconds", 0, MAX_DELAY_SECONDS),
    ("MaximumMessageSize", 1024, MAX_MESSAGE_BYTES),
    ("MessageRetentionPeriod", 60, 1_209_600),
    ("ReceiveMessageWaitTimeSeconds", 0, MAX_WAIT_TIME_SECONDS),
];

impl Settings {
    fn numeric_mut(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "VisibilityTimeout" => &mut self.visibility_timeout,
            "DelaySeconds" => &mut self.delay_seconds,
            "MaximumMessageSize" => &mut self.maximum_message_size,
            "MessageRetentionPeriod" => &mut self.message_retention_period,
            "ReceiveMessageWaitTimeSeconds" => &mut self.receive_message_wait_time_seconds,
            _ => return None,
        })
    }

    /// Applies CreateQueue's `Attributes` over the defaults.
    fn apply(&mut self, attributes: &BTreeMap<String, String>) -> Result<(), ApiError> {
        for (name, value) in attributes {
            if let Some((_, low, high)) = NUMERIC_ATTRIBUTES.iter().find(|(n, ..)| n == name) {
                let parsed: u32 = value.trim().parse().map_err(|_| {
                    ApiError::invalid_attribute_value(name, &format!("{value:?} is not an integer"))
                })?;
                if !(*low..=*high).contains(&parsed) {
                    return Err(ApiError::invalid_attribute_value(
                        name,
                        &format!("must be between {low} and {high}, not {parsed}"),
                    ));
                }
                if let Some(slot) = self.numeric_mut(name) {
                    *slot = parsed;
                }
                continue;
            }
            match name.as_str() {
                "Policy" | "SqsManagedSseEnabled" => {
                    self.inert.insert(name.clone(), value.clone());
                }
                "FifoQueue" if value == "false" => {}
                "FifoQueue" | "ContentBasedDeduplication" | "DeduplicationScope" | "FifoThroughputLimit" => {
                    return Err(ApiError::unsupported(
                        "the local SQS has standard queues only, no FIFO queues",
                    ));
                }
                "RedrivePolicy" | "RedriveAllowPolicy" => {
                    return Err(ApiError::unsupported("the local SQS has no dead-letter queue redrive"));
                }
                "KmsMasterKeyId" | "KmsDataKeyReusePeriodSeconds" => {
                    return Err(ApiError::unsupported("the local SQS has no KMS encryption"));
                }
                _ => return Err(ApiError::invalid_attribute_name(name)),
            }
        }
        Ok(())
    }

    /// The value of attribute `name` as GetQueueAttributes answers it, for the settings.
    fn get(&self, name: &str) -> Option<String> {
        let value = match name {
            "VisibilityTimeout" => self.visibility_timeout,
            "DelaySeconds" => self.delay_seconds,
            "MaximumMessageSize" => self.maximum_message_size,
            "MessageRetentionPeriod" => self.message_retention_period,
            "ReceiveMessageWaitTimeSeconds" => self.receive_message_wait_time_seconds,
            _ => return self.inert.get(name).cloned(),
        };
        Some(value.to_string())
    }
}

struct Queue {
    settings: Settings,
    /// Epoch seconds.
    created: i64,
    /// In send order; SQS's standard queues order on a best-effort basis, this one strictly.
    messages: Vec<Stored>,
    /// Woken on every change that can make a message visible (send, visibility change).
    notify: Arc<Notify>,
}

struct Stored {
    id: String,
    body: String,
    md5: String,
    /// Epoch milliseconds.
    sent_ms: i64,
    visible_at: Instant,
    expires_at: Instant,
    receive_count: u32,
    /// Epoch milliseconds.
    first_receive_ms: Option<i64>,
    /// The handle of the latest receive; older handles of this message are stale.
    receipt: Option<String>,
    /// When the latest receive happened (in flight for at most 12 h from it).
    received_at: Option<Instant>,
}

struct Shared {
    config: SqsConfig,
    addr: SocketAddr,
    state: Mutex<BTreeMap<String, Queue>>,
    shutdown: watch::Sender<bool>,
    long_polls: AtomicUsize,
}

/// Counts a waiting ReceiveMessage for as long as it lives.
struct LongPoll<'a>(&'a AtomicUsize);

impl<'a> LongPoll<'a> {
    fn new(counter: &'a AtomicUsize) -> LongPoll<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        LongPoll(counter)
    }
}

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn epoch_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// Whether `body` holds only the characters SQS allows: `#x9 | #xA | #xD | #x20` to `#xD7FF` |
/// `#xE000` to `#xFFFD` | `#x10000` to `#x10FFFF` (SendMessage, `MessageBody`).
fn allowed_body(body: &str) -> bool {
    body.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    })
}

fn valid_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_QUEUE_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Queue>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue_url(&self, name: &str) -> String {
        format!("http://{}/{}/{name}", self.addr, self.config.account)
    }

    fn queue_arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.config.region, self.config.account)
    }

    /// Real time for `emulated` seconds.
    fn real(&self, emulated: f64) -> Duration {
        Duration::try_from_secs_f64(emulated / self.config.time_scale).unwrap_or(Duration::MAX)
    }

    /// `now` plus `emulated` seconds, saturating far in the future.
    fn after(&self, now: Instant, emulated: f64) -> Instant {
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        now.checked_add(self.real(emulated).min(far)).unwrap_or(now)
    }

    /// The queue name a `QueueUrl` names: its path is `/<account>/<name>`, whatever the host.
    fn queue_name<'a>(&self, url: &'a str) -> Result<&'a str, ApiError> {
        let path = url.split_once("://").map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
        let mut segments = path.trim_start_matches('/').split('/');
        match (segments.next(), segments.next(), segments.next()) {
            (Some(account), Some(name), None) if !name.is_empty() => {
                if account != self.config.account {
                    return Err(ApiError::queue_does_not_exist());
                }
                Ok(name)
            }
            _ => Err(ApiError::invalid_address(format!("The address {url} is not valid for this endpoint."))),
        }
    }

    /// Appends a message to `queue` after `delay` emulated seconds (the queue's own when None).
    fn send(&self, queue: &str, body: &str, delay: Option<u32>) -> Result<(String, String), ApiError> {
        let mut state = self.lock();
        let queue = state.get_mut(queue).ok_or_else(ApiError::queue_does_not_exist)?;
        if body.is_empty() {
            return Err(ApiError::missing_parameter("MessageBody"));
        }
        if body.len() > queue.settings.maximum_message_size as usize {
            return Err(ApiError::invalid_parameter(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
                queue.settings.maximum_message_size
            )));
        }
        if !allowed_body(body) {
            return Err(ApiError::new(
                "InvalidMessageContents",
                "InvalidMessageContents",
                "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            ));
        }
        let now = Instant::now();
        let delay = delay.unwrap_or(queue.settings.delay_seconds);
        let id = uuid::Uuid::new_v4().to_string();
        let md5 = md5_hex(body);
        queue.messages.push(Stored {
            id: id.clone(),
            body: body.to_string(),
            md5: md5.clone(),
            sent_ms: epoch_ms(),
            visible_at: self.after(now, f64::from(delay)),
            expires_at: self.after(now, f64::from(queue.settings.message_retention_period)),
            receive_count: 0,
            first_receive_ms: None,
            receipt: None,
            received_at: None,
        });
        queue.notify.notify_waiters();
        Ok((id, md5))
    }
}

// ---- requests --------------------------------------------------------------------------------

/// A request's JSON object, read with the model's types.
struct Input(Map<String, Value>);

impl Input {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::serialization(format!("{key} must be a string"))),
        }
    }

    fn str(&self, key: &str) -> Result<&str, ApiError> {
        self.opt_str(key)?.ok_or_else(|| ApiError::missing_parameter(key))
    }

    /// An Integer member, checked against `low..=high`.
    fn opt_int(&self, key: &str, low: u32, high: u32) -> Result<Option<u32>, ApiError> {
        let value = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_i64(),
            Some(_) => None,
        };
        match value {
            Some(v) if (i64::from(low)..=i64::from(high)).contains(&v) => Ok(u32::try_from(v).ok()),
            Some(v) => Err(ApiError::invalid_parameter(format!(
                "Value {v} for parameter {key} is invalid. Reason: Must be between {low} and {high}, if provided."
            ))),
            None => Err(ApiError::serialization(format!("{key} must be an integer"))),
        }
    }

    /// A list of strings (`AttributeNames`, ...), empty when absent.
    fn strings(&self, key: &str) -> Result<Vec<&str>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| ApiError::serialization(format!("{key} holds strings"))))
                .collect(),
            Some(_) => Err(ApiError::serialization(format!("{key} must be a list"))),
        }
    }

    /// A map of strings (`Attributes`), empty when absent.
    fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(ApiError::serialization(format!("{key}.{k} must be a string"))),
                })
                .collect(),
            Some(_) => Err(ApiError::serialization(format!("{key} must be a map"))),
        }
    }

    /// Refuses a member this emulator does not implement, when it is given and not empty.
    fn refuse(&self, key: &str, why: &str) -> Result<(), ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(m)) if m.is_empty() => Ok(()),
            Some(Value::Array(a)) if a.is_empty() => Ok(()),
            Some(_) => Err(ApiError::unsupported(format!("{key}: {why}"))),
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(operation) = target.strip_prefix(TARGET_PREFIX) else {
        return ApiError::unsupported("missing or foreign X-Amz-Target").into_response();
    };
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Input(map),
        Ok(_) => return ApiError::serialization("the request body must be a JSON object").into_response(),
        Err(e) => return ApiError::serialization(e.to_string()).into_response(),
    };
    let result = match operation {
        "CreateQueue" => create_queue(&shared, &input),
        "GetQueueUrl" => get_queue_url(&shared, &input),
        "GetQueueAttributes" => get_queue_attributes(&shared, &input),
        "SendMessage" => send_message(&shared, &input),
        "ReceiveMessage" => receive_message(&shared, &input).await,
        "DeleteMessage" => delete_message(&shared, &input),
        "ChangeMessageVisibility" => change_message_visibility(&shared, &input),
        other => Err(ApiError::unsupported(format!("the local SQS does not implement {other}"))),
    };
    match result {
        Ok(value) => aws_json::response_for(JsonVersion::V1_0, StatusCode::OK, &value),
        Err(error) => error.into_response(),
    }
}

/// A response body for an SDK: `{}` answers operations without output members.
fn empty() -> Value {
    json!({})
}

/// CreateQueue: `QueueName`, `Attributes` (string map) → `QueueUrl`. Creating an existing queue
/// answers its URL when every given attribute equals the queue's, `QueueAlreadyExists` otherwise
/// (API reference, CreateQueue). `tags` are refused.
fn create_queue(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let name = input.str("QueueName")?;
    if name.ends_with(".fifo") {
        return Err(ApiError::unsupported("the local SQS has standard queues only, no FIFO queues"));
    }
    if !valid_queue_name(name) {
        return Err(ApiError::invalid_parameter(format!(
            "Value {name} for parameter QueueName is invalid. Reason: Can only include alphanumeric characters, hyphens, or underscores. 1 to {MAX_QUEUE_NAME} in length"
        )));
    }
    input.refuse("tags", "the local SQS has no queue tags")?;
    let attributes = input.string_map("Attributes")?;
    let mut settings = Settings::default();
    settings.apply(&attributes)?;
    let mut state = shared.lock();
    if let Some(existing) = state.get(name) {
        let differs = attributes.keys().any(|k| existing.settings.get(k) != settings.get(k));
        if differs {
            return Err(ApiError::new(
                "QueueNameExists",
                "QueueAlreadyExists",
                format!(
                    "A queue already exists with the same name and a different value for attribute(s) of {name}"
                ),
            ));
        }
    } else {
        let queue = Queue {
            settings,
            created: chrono::Utc::now().timestamp(),
            messages: Vec::new(),
            notify: Arc::new(Notify::new()),
        };
        state.insert(name.to_string(), queue);
    }
    Ok(json!({"QueueUrl": shared.queue_url(name)}))
}

/// GetQueueUrl: `QueueName`, `QueueOwnerAWSAccountId` → `QueueUrl`, or `QueueDoesNotExist`.
fn get_queue_url(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let name = input.str("QueueName")?;
    if input.opt_str("QueueOwnerAWSAccountId")?.is_some_and(|a| a != shared.config.account) {
        return Err(ApiError::queue_does_not_exist());
    }
    if !shared.lock().contains_key(name) {
        return Err(ApiError::queue_does_not_exist());
    }
    Ok(json!({"QueueUrl": shared.queue_url(name)}))
}

/// The attributes GetQueueAttributes answers for `All`.
const QUEUE_ATTRIBUTES: [&str; 13] = [
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "VisibilityTimeout",
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "Policy",
    "SqsManagedSseEnabled",
];

/// GetQueueAttributes: `QueueUrl`, `AttributeNames` (`All` or names) → `Attributes` (string
/// map; counts are exact here, approximate in SQS).
fn get_queue_attributes(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let name = shared.queue_name(input.str("QueueUrl")?)?;
    let requested = input.strings("AttributeNames")?;
    let mut state = shared.lock();
    let queue = state.get_mut(name).ok_or_else(ApiError::queue_does_not_exist)?;
    let now = Instant::now();
    queue.messages.retain(|m| m.expires_at > now);
    let names: Vec<&str> =
        if requested.contains(&"All") { QUEUE_ATTRIBUTES.to_vec() } else { requested.clone() };
    let mut attributes = Map::new();
    for attribute in names {
        let count = |f: &dyn Fn(&Stored) -> bool| queue.messages.iter().filter(|m| f(m)).count().to_string();
        let value = match attribute {
            "QueueArn" => Some(shared.queue_arn(name)),
            "ApproximateNumberOfMessages" => Some(count(&|m| m.visible_at <= now)),
            "ApproximateNumberOfMessagesNotVisible" => {
                Some(count(&|m| m.visible_at > now && m.receive_count > 0))
            }
            "ApproximateNumberOfMessagesDelayed" => {
                Some(count(&|m| m.visible_at > now && m.receive_count == 0))
            }
            "CreatedTimestamp" | "LastModifiedTimestamp" => Some(queue.created.to_string()),
            other if QUEUE_ATTRIBUTES.contains(&other) => queue.settings.get(other),
            other => return Err(ApiError::invalid_attribute_name(other)),
        };
        if let Some(value) = value {
            attributes.insert(attribute.to_string(), Value::String(value));
        }
    }
    Ok(json!({"Attributes": attributes}))
}

/// SendMessage: `QueueUrl`, `MessageBody`, `DelaySeconds` (0-900, the queue's by default) →
/// `MessageId`, `MD5OfMessageBody` (hex MD5 of the UTF-8 body). Message attributes, system
/// attributes and FIFO members are refused.
fn send_message(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let name = shared.queue_name(input.str("QueueUrl")?)?;
    let body = input.str("MessageBody")?;
    let delay = input.opt_int("DelaySeconds", 0, MAX_DELAY_SECONDS)?;
    input.refuse("MessageAttributes", "the local SQS does not store message attributes")?;
    input.refuse("MessageSystemAttributes", "the local SQS does not store message system attributes")?;
    input.refuse("MessageDeduplicationId", "only FIFO queues take it, and the local SQS has none")?;
    input.refuse("MessageGroupId", "the local SQS does not group messages")?;
    let (id, md5) = shared.send(name, body, delay)?;
    Ok(json!({"MessageId": id, "MD5OfMessageBody": md5}))
}

/// The message system attributes ReceiveMessage answers (`All` selects them all).
const MESSAGE_ATTRIBUTES: [&str; 4] =
    ["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp", "SenderId"];

/// ReceiveMessage: `QueueUrl`, `MaxNumberOfMessages` (1-10, default 1), `VisibilityTimeout`
/// (0-43200, the queue's by default), `WaitTimeSeconds` (0-20, the queue's
/// `ReceiveMessageWaitTimeSeconds` by default), `MessageSystemAttributeNames` or the deprecated
/// `AttributeNames` → `Messages`: `MessageId`, `ReceiptHandle` (new on every receive), `MD5OfBody`,
/// `Body`, `Attributes` (the requested ones: `ApproximateReceiveCount`, `SentTimestamp` and
/// `ApproximateFirstReceiveTimestamp` in epoch ms, `SenderId` as the account). With a wait, the
/// call returns as soon as a message is visible (woken by SendMessage, ChangeMessageVisibility or
/// an expiring visibility timeout, never by polling), or with no messages when the wait ends.
async fn receive_message(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let name = shared.queue_name(input.str("QueueUrl")?)?;
    let max = input.opt_int("MaxNumberOfMessages", 1, MAX_RECEIVE_MESSAGES)?.unwrap_or(1) as usize;
    let visibility = input.opt_int("VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT)?;
    let wait = input.opt_int("WaitTimeSeconds", 0, MAX_WAIT_TIME_SECONDS)?;
    let mut wanted = input.strings("AttributeNames")?;
    wanted.extend(input.strings("MessageSystemAttributeNames")?);
    let wanted: Vec<&str> = if wanted.contains(&"All") { MESSAGE_ATTRIBUTES.to_vec() } else { wanted };

    let (notify, wait) = {
        let state = shared.lock();
        let queue = state.get(name).ok_or_else(ApiError::queue_does_not_exist)?;
        (Arc::clone(&queue.notify), wait.unwrap_or(queue.settings.receive_message_wait_time_seconds))
    };
    let deadline = shared.after(Instant::now(), f64::from(wait));
    let mut stop = shared.shutdown.subscribe();
    let mut waiting = None;
    loop {
        // Registered before looking, so a send between the look and the wait is not missed.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next_visible = {
            let mut state = shared.lock();
            let queue = state.get_mut(name).ok_or_else(ApiError::queue_does_not_exist)?;
            let taken = take_visible(shared, queue, max, visibility, &wanted);
            if !taken.is_empty() {
                return Ok(json!({"Messages": taken}));
            }
            let now = Instant::now();
            queue.messages.iter().map(|m| m.visible_at).filter(|at| *at > now).min()
        };
        let now = Instant::now();
        if now >= deadline || *stop.borrow() {
            // SQS leaves `Messages` out when there are none.
            return Ok(empty());
        }
        waiting.get_or_insert_with(|| LongPoll::new(&shared.long_polls));
        let wake = next_visible.map_or(deadline, |at| at.min(deadline));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Takes up to `max` visible messages of `queue` in flight, dropping expired ones first.
fn take_visible(
    shared: &Shared,
    queue: &mut Queue,
    max: usize,
    visibility: Option<u32>,
    wanted: &[&str],
) -> Vec<Value> {
    let now = Instant::now();
    queue.messages.retain(|m| m.expires_at > now);
    let visibility = f64::from(visibility.unwrap_or(queue.settings.visibility_timeout));
    let mut taken = Vec::new();
    for message in queue.messages.iter_mut().filter(|m| m.visible_at <= now).take(max) {
        let received_ms = epoch_ms();
        message.receive_count += 1;
        message.first_receive_ms.get_or_insert(received_ms);
        message.visible_at = shared.after(now, visibility);
        message.received_at = Some(now);
        let handle =
            URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", message.id, uuid::Uuid::new_v4(), received_ms));
        message.receipt = Some(handle.clone());
        let mut attributes = Map::new();
        for name in wanted {
            let value = match *name {
                "ApproximateReceiveCount" => message.receive_count.to_string(),
                "ApproximateFirstReceiveTimestamp" => {
                    message.first_receive_ms.unwrap_or(received_ms).to_string()
                }
                "SentTimestamp" => message.sent_ms.to_string(),
                "SenderId" => shared.config.account.clone(),
                _ => continue,
            };
            attributes.insert((*name).to_string(), Value::String(value));
        }
        let mut out = json!({
            "MessageId": message.id,
            "ReceiptHandle": handle,
            "MD5OfBody": message.md5,
            "Body": message.body,
        });
        if !attributes.is_empty() {
            out["Attributes"] = Value::Object(attributes);
        }
        taken.push(out);
    }
    taken
}

/// The message id a receipt handle was issued for, if it is one of ours.
fn handle_message_id(handle: &str) -> Option<String> {
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(handle).ok()?).ok()?;
    let (id, _) = decoded.split_once(':')?;
    uuid::Uuid::parse_str(id).ok().map(|_| id.to_string())
}

/// DeleteMessage: `QueueUrl`, `ReceiptHandle` → `{}`. As the API reference says of DeleteMessage,
/// a handle from an earlier receive of a message received again since "will succeed, but the
/// message might not be deleted": here it is never deleted by a stale handle, so a consumer that
/// lost its message to a visibility timeout sees the duplicate. Deleting an already deleted
/// message succeeds; a string that is no receipt handle of this SQS is `ReceiptHandleIsInvalid`.
fn delete_message(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let name = shared.queue_name(input.str("QueueUrl")?)?;
    let handle = input.str("ReceiptHandle")?;
    let id = handle_message_id(handle).ok_or_else(|| ApiError::receipt_handle_invalid(handle))?;
    let mut state = shared.lock();
    let queue = state.get_mut(name).ok_or_else(ApiError::queue_does_not_exist)?;
    match queue.messages.iter().position(|m| m.id == id) {
        Some(at) if queue.messages[at].receipt.as_deref() == Some(handle) => {
            queue.messages.remove(at);
        }
        Some(_) => tracing::debug!(queue = name, message = %id, "stale receipt handle: message kept"),
        None => {}
    }
    Ok(empty())
}

/// ChangeMessageVisibility: `QueueUrl`, `ReceiptHandle`, `VisibilityTimeout` (0-43200) → `{}`. The
/// new timeout counts from now; 0 makes the message visible at once. A message that is visible
/// again is `MessageNotInflight`; a handle that is not the message's latest, or of a deleted
/// message, is `ReceiptHandleIsInvalid`; a timeout that would keep the message in flight more
/// than 12 hours after its receive is `InvalidParameterValue` (API reference,
/// ChangeMessageVisibility).
fn change_message_visibility(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let name = shared.queue_name(input.str("QueueUrl")?)?;
    let handle = input.str("ReceiptHandle")?;
    let timeout = input
        .opt_int("VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT)?
        .ok_or_else(|| ApiError::missing_parameter("VisibilityTimeout"))?;
    let id = handle_message_id(handle).ok_or_else(|| ApiError::receipt_handle_invalid(handle))?;
    let mut state = shared.lock();
    let queue = state.get_mut(name).ok_or_else(ApiError::queue_does_not_exist)?;
    let now = Instant::now();
    let message = queue
        .messages
        .iter_mut()
        .find(|m| m.id == id && m.receipt.as_deref() == Some(handle))
        .ok_or_else(|| ApiError::receipt_handle_invalid(handle))?;
    if message.visible_at <= now {
        return Err(ApiError::message_not_inflight());
    }
    let in_flight = message.received_at.map_or(0.0, |at| (now - at).as_secs_f64() * shared.config.time_scale);
    if in_flight + f64::from(timeout) > f64::from(MAX_VISIBILITY_TIMEOUT) {
        return Err(ApiError::invalid_parameter(format!(
            "Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [{MAX_VISIBILITY_TIMEOUT} seconds]"
        )));
    }
    message.visible_at = shared.after(now, f64::from(timeout));
    queue.notify.notify_waiters();
    Ok(empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            config: SqsConfig::default(),
            addr: "127.0.0.1:4576".parse().unwrap(),
            state: Mutex::new(BTreeMap::new()),
            shutdown: watch::Sender::new(false),
            long_polls: AtomicUsize::new(0),
        }
    }

    #[test]
    fn queue_urls_name_their_queue_whatever_the_host() {
        let s = shared();
        assert_eq!(s.queue_url("q"), "http://127.0.0.1:4576/000000000000/q");
        assert_eq!(s.queue_name("http://127.0.0.1:4576/000000000000/q"), Ok("q"));
        assert_eq!(s.queue_name("http://localhost:1/000000000000/q"), Ok("q"));
        assert_eq!(s.queue_name("http://h/111111111111/q").unwrap_err().shape, QUEUE_DOES_NOT_EXIST);
        assert_eq!(s.queue_name("http://h/q").unwrap_err().shape, "InvalidAddress");
        assert_eq!(s.queue_name("q").unwrap_err().shape, "InvalidAddress");
    }

    #[test]
    fn attributes_are_checked_against_their_bounds() {
        let mut settings = Settings::default();
        let attrs = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()
        };
        settings.apply(&attrs(&[("VisibilityTimeout", "5"), ("DelaySeconds", "900")])).unwrap();
        assert_eq!((settings.visibility_timeout, settings.delay_seconds), (5, 900));
        let err = |pairs| Settings::default().apply(&attrs(pairs)).unwrap_err().shape;
        assert_eq!(err(&[("VisibilityTimeout", "43201")]), "InvalidAttributeValue");
        assert_eq!(err(&[("MaximumMessageSize", "1023")]), "InvalidAttributeValue");
        assert_eq!(err(&[("DelaySeconds", "soon")]), "InvalidAttributeValue");
        assert_eq!(err(&[("Colour", "blue")]), "InvalidAttributeName");
        assert_eq!(err(&[("FifoQueue", "true")]), "UnsupportedOperation");
    }

    #[test]
    fn bodies_and_names_follow_the_service_s_character_rules() {
        assert!(allowed_body("plain\ttext\n{\"json\": \"ü ✓ 𝄞\"}"));
        assert!(!allowed_body("bell\u{7}"));
        assert!(!allowed_body("\u{FFFE}"));
        assert!(valid_queue_name("recflow-events_1"));
        assert!(!valid_queue_name(""));
        assert!(!valid_queue_name("has space"));
        assert!(!valid_queue_name(&"q".repeat(81)));
    }

    #[test]
    fn receipt_handles_carry_their_message_id() {
        let id = uuid::Uuid::new_v4().to_string();
        let handle = URL_SAFE_NO_PAD.encode(format!("{id}:{}:1", uuid::Uuid::new_v4()));
        assert_eq!(handle_message_id(&handle), Some(id));
        assert_eq!(handle_message_id("not-a-handle"), None);
        assert_eq!(handle_message_id(&URL_SAFE_NO_PAD.encode("x:y")), None);
    }

    #[test]
    fn errors_carry_the_query_code_the_sdk_matches() {
        let response = ApiError::queue_does_not_exist().into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let header = |name: &str| response.headers().get(name).unwrap().to_str().unwrap().to_string();
        assert_eq!(header("x-amzn-query-error"), "AWS.SimpleQueueService.NonExistentQueue;Sender");
        assert_eq!(header("x-amzn-errortype"), "QueueDoesNotExist");
        assert_eq!(header("content-type"), "application/x-amz-json-1.0");
    }
}
