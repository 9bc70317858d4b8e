//! The awsJson response framing every local JSON service shares: `Content-Type:
//! application/x-amz-json-1.0` or `-1.1` (the two protocol versions differ in nothing else a
//! server writes), a request id, and errors as `{"__type", "message"}` with the
//! `x-amzn-errortype` header (aws-sdk-rust reads that header first, botocore only `__type`).
//! Personalize and EventBridge speak awsJson1_1, SQS awsJson1_0 (Smithy's `aws.protocols#awsJson1_0`
//! and `awsJson1_1` protocol specifications).

use axum::body::Body;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

/// The awsJson protocol version a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonVersion {
    /// awsJson1_0 (Amazon SQS, DynamoDB).
    V1_0,
    /// awsJson1_1 (Amazon Personalize, EventBridge).
    V1_1,
}

impl JsonVersion {
    /// The content type of requests and responses in this version.
    pub const fn content_type(self) -> &'static str {
        match self {
            JsonVersion::V1_0 => "application/x-amz-json-1.0",
            JsonVersion::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// An awsJson1_1 answer with a fresh `x-amzn-requestid`.
pub fn response(status: StatusCode, value: &Value) -> Response<Body> {
    response_for(JsonVersion::V1_1, status, value)
}

/// An awsJson1_1 error answer: `kind` is the model's error shape name (`ResourceInUseException`).
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    error_for(JsonVersion::V1_1, status, kind, message)
}

/// A JSON answer with `version`'s content type and a fresh `x-amzn-requestid`.
pub fn response_for(version: JsonVersion, status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(version.content_type()));
    if let Ok(id) = uuid::Uuid::new_v4().to_string().parse() {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), id);
    }
    response
}

/// An error answer in `version`: `kind` is the model's error shape name, bare
/// (`ResourceInUseException`) or with its namespace (`com.amazonaws.sqs#QueueDoesNotExist`), and
/// goes into `__type` as given; the `x-amzn-errortype` header carries the bare shape name, as the
/// SDKs strip the namespace anyway.
pub fn error_for(version: JsonVersion, status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let mut response = response_for(version, status, &json!({"__type": kind, "message": message}));
    let shape = kind.rsplit_once('#').map_or(kind, |(_, shape)| shape);
    if let Ok(value) = HeaderValue::from_str(shape) {
        response.headers_mut().insert(HeaderName::from_static("x-amzn-errortype"), value);
    }
    response
}
