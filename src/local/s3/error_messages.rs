//! S3's `<Message>` on the errors s3s answers before the store is reached: a refused bucket
//! name in the path, a signature that does not match, a method a path does not take. s3s sends
//! these with a code alone, which the AWS CLI prints as "Unknown"; S3 always says what went
//! wrong. The texts are S3's (S3 API reference, "Error responses", list of error codes).

use std::future::Future;
use std::pin::Pin;

use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, HeaderValue};
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
        _ => return None,
    })
}

/// `body` (an S3 error document) with S3's message after its code, when it has none and the
/// code has a known text; None to leave it as it is.
fn with_message(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    if text.contains("<Message>") {
        return None;
    }
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    let message = standard_message(&text[start..end])?;
    let at = end + "</Code>".len();
    Some(format!("{}<Message>{message}</Message>{}", &text[..at], &text[at..]).into_bytes())
}

/// Wraps the S3 service so that its error answers carry S3's messages.
#[derive(Clone)]
pub(super) struct WithMessages<S>(pub S);

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> hyper::service::Service<Request<Incoming>> for WithMessages<S>
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
            let response = answer.await?;
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
            let Some(fixed) = with_message(&bytes) else {
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

    #[test]
    fn a_code_without_a_message_gets_s3s_text_and_others_stay() {
        let bare = br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidBucketName</Code></Error>"#;
        let fixed = String::from_utf8(with_message(bare).unwrap()).unwrap();
        assert!(
            fixed.ends_with(
                "<Code>InvalidBucketName</Code><Message>The specified bucket is not valid.</Message></Error>"
            ),
            "{fixed}"
        );
        let given = b"<Error><Code>InvalidBucketName</Code><Message>own</Message></Error>";
        assert_eq!(with_message(given), None);
        assert_eq!(with_message(b"<Error><Code>SomethingElse</Code></Error>"), None);
        assert_eq!(with_message(b"not xml"), None);
    }
}
