//! What S3 puts on every answer that s3s leaves out.
//!
//! - Request ids: `x-amz-request-id` (16 hex digits) and `x-amz-id-2` on every response, and the
//!   same as `<RequestId>` and `<HostId>` in error documents (S3 API reference, "Error
//!   responses"; "Common response headers"). SDKs show them in errors (`request_id()`), and
//!   support tooling and logs expect them.
//! - S3's `<Message>` on the errors s3s answers before the store is reached: a refused bucket
//!   name in the path, a signature that does not match, a method a path does not take. s3s sends
//!   these with a code alone, which the AWS CLI prints as "Unknown"; S3 always says what went
//!   wrong. The texts are S3's (S3 API reference, "Error responses", list of error codes).

use std::future::Future;
use std::pin::Pin;

use base64::Engine as _;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use hyper::{Request, Response};

/// Largest error body read to add a message: S3's error documents are a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// S3's message for the codes s3s can answer without one.
fn standard_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "InvalidBucketName" => "The specified bucket is not valid.",
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method."
        }
        "AccessDenied" => "Access Denied",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented.",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        "MalformedXML" => {
            "The XML you provided was not well-formed or did not validate against our published schema."
        }
        "RequestTimeTooSkewed" => {
            "The difference between the request time and the current time is too large."
        }
        "EntityTooLarge" => "Your proposed upload exceeds the maximum allowed object size.",
        "InvalidURI" => "Couldn't parse the specified URI.",
        "KeyTooLongError" => "Your key is too long.",
        _ => return None,
    })
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-amz-request-id");
const HOST_ID: HeaderName = HeaderName::from_static("x-amz-id-2");

/// One request's ids: S3's request id is 16 upper-case hex digits, its host id an opaque base64
/// string.
struct Ids {
    request: String,
    host: String,
}

impl Ids {
    fn new() -> Ids {
        let host: [u8; 48] = std::array::from_fn(|_| fastrand::u8(..));
        Ids {
            request: format!("{:016X}", fastrand::u64(..)),
            host: base64::engine::general_purpose::STANDARD.encode(host),
        }
    }
}

/// `body` (an S3 error document) as S3 writes it: with S3's message after its code when it has
/// none and the code has a known text, and with the request's ids before its end when it lacks
/// them. None when there is nothing to add, or it is not an error document.
fn completed(body: &[u8], ids: &Ids) -> Option<Vec<u8>> {
    let mut text = std::str::from_utf8(body).ok()?.to_owned();
    let before = text.len();
    if !text.contains("<Message>")
        && let Some(start) = text.find("<Code>").map(|at| at + "<Code>".len())
        && let Some(end) = text[start..].find("</Code>").map(|len| start + len)
        && let Some(message) = standard_message(&text[start..end])
    {
        text.insert_str(end + "</Code>".len(), &format!("<Message>{message}</Message>"));
    }
    if !text.contains("<RequestId>")
        && let Some(end) = text.rfind("</Error>")
    {
        text.insert_str(end, &format!("<RequestId>{}</RequestId><HostId>{}</HostId>", ids.request, ids.host));
    }
    (text.len() != before).then(|| text.into_bytes())
}

/// Wraps the S3 service so that its answers carry what S3's do: request ids, and messages on
/// errors.
#[derive(Clone)]
pub(super) struct S3Answers<S>(pub S);

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> hyper::service::Service<Request<Incoming>> for S3Answers<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<s3s::Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<s3s::Body>;
    type Error = S::Error;
    type Future = Boxed<Self::Response, Self::Error>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let answer = self.0.call(req);
        Box::pin(async move {
            let mut response = answer.await?;
            let ids = Ids::new();
            let headers = response.headers_mut();
            for (name, value) in [(REQUEST_ID, &ids.request), (HOST_ID, &ids.host)] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            if !(response.status().is_client_error() || response.status().is_server_error()) {
                return Ok(response);
            }
            let (mut parts, mut body) = response.into_parts();
            let bytes = match body.store_all_limited(MAX_ERROR_BODY).await {
                Ok(bytes) => bytes,
                // Not a small document (or a failed stream): what was read is gone, so the
                // status goes out with an empty body rather than half of one.
                Err(_) => {
                    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
                    return Ok(Response::from_parts(parts, s3s::Body::empty()));
                }
            };
            let Some(fixed) = completed(&bytes, &ids) else {
                return Ok(Response::from_parts(parts, s3s::Body::from(bytes)));
            };
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(fixed.len()));
            Ok(Response::from_parts(parts, s3s::Body::from(Bytes::from(fixed))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids { request: "0123456789ABCDEF".into(), host: "aG9zdA==".into() }
    }

    #[test]
    fn a_code_without_a_message_gets_s3s_text_and_every_error_the_request_ids() {
        let ids = ids();
        let bare = br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidBucketName</Code></Error>"#;
        let fixed = String::from_utf8(completed(bare, &ids).unwrap()).unwrap();
        assert!(
            fixed.ends_with(
                "<Code>InvalidBucketName</Code><Message>The specified bucket is not valid.</Message>\
                 <RequestId>0123456789ABCDEF</RequestId><HostId>aG9zdA==</HostId></Error>"
            ),
            "{fixed}"
        );
        let given = b"<Error><Code>InvalidBucketName</Code><Message>own</Message></Error>";
        assert_eq!(
            String::from_utf8(completed(given, &ids).unwrap()).unwrap(),
            "<Error><Code>InvalidBucketName</Code><Message>own</Message>\
             <RequestId>0123456789ABCDEF</RequestId><HostId>aG9zdA==</HostId></Error>"
        );
        let unknown = b"<Error><Code>SomethingElse</Code></Error>";
        assert!(!String::from_utf8(completed(unknown, &ids).unwrap()).unwrap().contains("<Message>"));
        let whole = b"<Error><Code>X</Code><Message>m</Message><RequestId>R</RequestId></Error>";
        assert_eq!(completed(whole, &ids), None);
        assert_eq!(completed(b"not xml", &ids), None);
    }

    #[test]
    fn request_ids_look_like_s3s() {
        let ids = Ids::new();
        assert_eq!(ids.request.len(), 16);
        assert!(ids.request.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()), "{}", ids.request);
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&ids.host).unwrap().len(), 48);
    }
}
