//! The awsJson response framing every local JSON service shares: `Content-Type:
//! application/x-amz-json-1.0` or `-1.1` (the two protocol versions differ in nothing else a
//! server writes), a request id, and errors as `{"__type", "message"}` with the
//! `x-amzn-errortype` header (aws-sdk-rust reads that header first, botocore only `__type`).
//! Personalize and EventBridge speak awsJson1_1, SQS awsJson1_0 (Smithy's `aws.protocols#awsJson1_0`
//! and `awsJson1_1` protocol specifications).

use axum::body::Body;
use hyper::header::{HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::sigv4::StaticCredentials;

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

/// The largest body the signature check reads; a larger one is answered 413 (the services' own
/// limits are smaller, so no valid request comes near it).
const MAX_SIGNED_BODY: usize = 16 * 1024 * 1024;

/// The error answer for a request not signed with the emulator's static credentials, or None
/// when its SigV4 signature checks out (see [`super::sigv4`]).
pub fn signature_refusal(version: JsonVersion, parts: &Parts, body: &[u8]) -> Option<Response<Body>> {
    let credentials =
        StaticCredentials { access_key: super::s3::ACCESS_KEY, secret_key: super::s3::SECRET_KEY };
    let refusal = super::sigv4::verify(parts, body, credentials).err()?;
    tracing::debug!(error = %refusal, "refusing a request's signature");
    Some(error_for(version, StatusCode::BAD_REQUEST, refusal.error_type(), &refusal.to_string()))
}

/// axum middleware: passes on requests signed with the static credentials and answers the rest
/// as the awsJson1_0 service would.
pub async fn signed_v1_0(request: axum::extract::Request, next: axum::middleware::Next) -> Response<Body> {
    signed(JsonVersion::V1_0, request, next).await
}

/// axum middleware: [`signed_v1_0`] for awsJson1_1 services.
pub async fn signed_v1_1(request: axum::extract::Request, next: axum::middleware::Next) -> Response<Body> {
    signed(JsonVersion::V1_1, request, next).await
}

async fn signed(
    version: JsonVersion,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_SIGNED_BODY).await else {
        let message = format!("The request body is larger than {MAX_SIGNED_BODY} bytes, or was cut short");
        return error_for(version, StatusCode::PAYLOAD_TOO_LARGE, "SerializationException", &message);
    };
    if let Some(refusal) = signature_refusal(version, &parts, &body) {
        return refusal;
    }
    next.run(axum::extract::Request::from_parts(parts, Body::from(body))).await
}
