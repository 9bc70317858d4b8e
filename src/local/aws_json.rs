//! The awsJson1_1 response framing every local JSON service shares: `Content-Type:
//! application/x-amz-json-1.1`, a request id, and errors as `{"__type", "message"}` with the
//! `x-amzn-errortype` header (aws-sdk-rust reads that header first, botocore only `__type`).

use axum::body::Body;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

/// awsJson1_1's content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A JSON answer with the protocol's content type and a fresh `x-amzn-requestid`.
pub fn response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = uuid::Uuid::new_v4().to_string().parse() {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), id);
    }
    response
}

/// An error answer: `kind` is the model's error shape name (`ResourceInUseException`).
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let mut response = self::response(status, &json!({"__type": kind, "message": message}));
    if let Ok(value) = HeaderValue::from_str(kind) {
        response.headers_mut().insert(HeaderName::from_static("x-amzn-errortype"), value);
    }
    response
}
