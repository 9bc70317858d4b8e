//! awsJson1_1 over HTTP/1.1: `POST /` with `X-Amz-Target: AmazonPersonalize.<Operation>`, JSON in
//! and out, errors as HTTP 4xx/5xx with `{"__type", "message"}` and the `x-amzn-errortype` header
//! (which aws-sdk-rust reads first). Also serves the fault-injection admin endpoint.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::Shared;
use crate::local::faults::{Fault, OperationFault};

const TARGET_PREFIX: &str = "AmazonPersonalize.";
const FAULTS_PATH: &str = "/__recflow/faults";
const MAX_BODY: usize = 4 * 1024 * 1024;

/// An error answered on the wire: `__type` names the model's error shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into() }
    }
    pub fn invalid_input(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidInputException", message)
    }
    pub fn not_found(arn: &str) -> ApiError {
        ApiError::new(400, "ResourceNotFoundException", format!("Could not find resource {arn}."))
    }
    pub fn already_exists(arn: &str) -> ApiError {
        ApiError::new(400, "ResourceAlreadyExistsException", format!("The resource {arn} already exists."))
    }
    pub fn in_use(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "ResourceInUseException", message)
    }
    pub fn limit_exceeded() -> ApiError {
        ApiError::new(
            400,
            "LimitExceededException",
            "More than 5 resources with PENDING or IN_PROGRESS status.",
        )
    }
    pub fn limit_exceeded_with(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "LimitExceededException", message)
    }
    pub fn invalid_next_token() -> ApiError {
        ApiError::new(400, "InvalidNextTokenException", "The next token is invalid.")
    }
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "SerializationException", message)
    }
    pub fn unknown_operation(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "UnknownOperationException", message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalFailure", message)
    }
    pub fn throttling() -> ApiError {
        ApiError::new(429, "ThrottlingException", "Rate exceeded")
    }
}

/// Makes hyper close the connection without writing a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub struct DropConnection;

/// A request's JSON object, read with the model's types.
pub struct Input<'a>(pub &'a Map<String, Value>);

impl<'a> Input<'a> {
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::serialization(format!("'{key}' must be a string"))),
        }
    }
    pub fn req_str(&self, key: &str) -> Result<&'a str, ApiError> {
        self.opt_str(key)?.ok_or_else(|| {
            ApiError::invalid_input(format!(
                "1 validation error detected: Value null at '{key}' must not be null"
            ))
        })
    }
    /// A required member of the model's `Arn` shape, its pattern checked (InvalidInputException).
    pub fn req_arn(&self, key: &str) -> Result<&'a str, ApiError> {
        let arn = self.req_str(key)?;
        super::arn::validate_arn(key, arn)?;
        Ok(arn)
    }
    /// An optional member of the model's `Arn` shape, its pattern checked when present.
    pub fn opt_arn(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        let arn = self.opt_str(key)?;
        if let Some(arn) = arn {
            super::arn::validate_arn(key, arn)?;
        }
        Ok(arn)
    }
    /// Refuses a member the emulator cannot apply, naming it, instead of ignoring it. `unused`
    /// says which values are harmless to accept (e.g. an empty list).
    pub fn refuse(&self, key: &str, unused: impl Fn(&Value) -> bool) -> Result<(), ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(value) if unused(value) => Ok(()),
            Some(_) => Err(ApiError::invalid_input(format!(
                "'{key}' is not supported by the local Personalize emulator; leave it out."
            ))),
        }
    }
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::serialization(format!("'{key}' must be an integer"))),
            Some(_) => Err(ApiError::serialization(format!("'{key}' must be an integer"))),
        }
    }
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::serialization(format!("'{key}' must be a boolean"))),
        }
    }
    /// A nested string, e.g. `jobInput.s3DataSource.path`.
    pub fn req_path(&self, path: &[&str]) -> Result<&'a str, ApiError> {
        let missing =
            || ApiError::invalid_input(format!("Value null at '{}' must not be null", path.join(".")));
        let mut value: &'a Value = self.0.get(path[0]).ok_or_else(missing)?;
        for key in &path[1..] {
            value = value.get(*key).ok_or_else(missing)?;
        }
        value
            .as_str()
            .ok_or_else(|| ApiError::serialization(format!("'{}' must be a string", path.join("."))))
    }
}

/// Answers one HTTP request.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return Ok(error_response(&ApiError::serialization(format!("cannot read the body: {e}")))),
    };
    if parts.uri.path() == FAULTS_PATH {
        return Ok(admin(&shared, &parts.method, &body));
    }
    if let Some(refusal) =
        crate::local::aws_json::signature_refusal(crate::local::aws_json::JsonVersion::V1_1, &parts, &body)
    {
        return Ok(refusal);
    }
    if parts.method != Method::POST || parts.uri.path() != "/" {
        return Ok(error_response(&ApiError::unknown_operation(format!(
            "No operation at {} {}; Personalize takes POST / with X-Amz-Target",
            parts.method,
            parts.uri.path()
        ))));
    }
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(operation) = target.strip_prefix(TARGET_PREFIX).filter(|op| !op.is_empty()) else {
        return Ok(error_response(&ApiError::unknown_operation(format!(
            "Missing or unknown X-Amz-Target header '{target}'; expected {TARGET_PREFIX}<Operation>"
        ))));
    };
    match shared.faults.take_operation(operation) {
        Some(OperationFault::Drop) => return Err(DropConnection),
        Some(OperationFault::Throttle) => return Ok(error_response(&ApiError::throttling())),
        Some(OperationFault::Http500) => {
            return Ok(error_response(&ApiError::internal("Injected internal failure")));
        }
        None => {}
    }
    let Some(handler) = super::handler(operation) else {
        return Ok(error_response(&ApiError::unknown_operation(format!(
            "Operation {operation} is not supported by the local Personalize emulator"
        ))));
    };
    let input: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Ok(error_response(&ApiError::serialization(
                    "The request body must be a JSON object",
                )));
            }
            Err(e) => {
                return Ok(error_response(&ApiError::serialization(format!("Malformed JSON body: {e}"))));
            }
        }
    };
    let response = match handler(&shared, &Input(&input)) {
        Ok(output) => json_response(StatusCode::OK, &output),
        Err(error) => {
            tracing::debug!(operation, kind = error.kind, message = %error.message, "personalize error");
            error_response(&error)
        }
    };
    Ok(response)
}

fn admin(shared: &Shared, method: &Method, body: &Bytes) -> Response<Body> {
    match *method {
        Method::DELETE => {
            shared.faults.clear();
            json_response(StatusCode::OK, &json!({}))
        }
        Method::POST => match serde_json::from_slice::<Fault>(body) {
            Ok(Fault::SlowNextJob { seconds, .. })
                if !(seconds.is_finite()
                    && (0.0..=crate::local::faults::MAX_SLOW_SECONDS).contains(&seconds)) =>
            {
                error_response(&ApiError::serialization(format!(
                    "slowNextJob seconds must be from 0 to {} (one year), not {seconds}",
                    crate::local::faults::MAX_SLOW_SECONDS
                )))
            }
            Ok(fault) => {
                shared.faults.inject(fault);
                json_response(StatusCode::OK, &json!({}))
            }
            Err(e) => error_response(&ApiError::serialization(format!("Not a fault: {e}"))),
        },
        _ => error_response(&ApiError::unknown_operation("Use POST or DELETE on /__recflow/faults")),
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    crate::local::aws_json::response(status, value)
}

pub fn error_response(error: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    crate::local::aws_json::error(status, error.kind, &error.message)
}

/// Serves connections with `handle` until `shutdown` turns true (see
/// [`crate::local::http_server`]). The control plane ([`handle`]) and the runtime share it.
pub async fn serve<F, Fut>(shared: Arc<Shared>, listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(Arc<Shared>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, DropConnection>> + Send + 'static,
{
    let mut shutdown = shared.shutdown.subscribe();
    let limits = shared.config.connections;
    let service = {
        let shared = Arc::clone(&shared);
        hyper::service::service_fn(move |request| handle(Arc::clone(&shared), request))
    };
    let stopped = async move {
        // An error means the sender is gone, which is a stop as well.
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    crate::local::http_server::serve("Personalize", listener, service, limits, stopped).await;
}
