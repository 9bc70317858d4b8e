//! Signature Version 4 checks for the awsJson ports (Personalize, EventBridge, SQS), so that a
//! client without credentials, or with other ones, fails locally as it would on AWS. S3 checks
//! its own through s3s; the key derivation and HMAC here are aws-sigv4's, the crate the AWS SDK
//! signs with, so only the canonical request is built here.
//!
//! The canonical request, string to sign and header form follow the IAM user guide's "Create a
//! signed AWS API request" (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>).
//! The answers follow what AWS's awsJson services send (not in their API references, which list
//! only `UnrecognizedClientException` in some models): no `Authorization` header gives 400
//! `MissingAuthenticationTokenException` "Missing Authentication Token"; an unknown access key 400
//! `UnrecognizedClientException` "The security token included in the request is invalid."; a
//! signature made with another secret 400 `InvalidSignatureException` "The request signature we
//! calculated does not match the signature you provided. ...". The request time is not checked
//! against the clock (AWS refuses one more than 5 minutes off): the emulator may run on a
//! sped-up clock, and tests replay requests.

use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use hyper::http::request::Parts;
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credentials requests must be signed with.
#[derive(Debug, Clone, Copy)]
pub struct StaticCredentials<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

/// Why a request's signature was refused; [`SignatureError::error_type`] and the text are what
/// the service answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error(
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with \
             the AWS4-HMAC-SHA256 algorithm and an X-Amz-Date header: {0}"
    )]
    Malformed(String),
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your \
             AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    Mismatch,
}

impl SignatureError {
    /// The awsJson `__type` for this refusal.
    pub fn error_type(&self) -> &'static str {
        match self {
            SignatureError::Missing => "MissingAuthenticationTokenException",
            SignatureError::Malformed(_) => "IncompleteSignatureException",
            SignatureError::UnknownAccessKey => "UnrecognizedClientException",
            SignatureError::Mismatch => "InvalidSignatureException",
        }
    }
}

/// Checks the SigV4 `Authorization` header of a request whose body is `body`, for any region
/// and the service named in its credential scope.
///
/// # Errors
/// [`SignatureError`] saying what is missing or wrong.
pub fn verify(parts: &Parts, body: &[u8], credentials: StaticCredentials<'_>) -> Result<(), SignatureError> {
    let authorization = header(&parts.headers, "authorization").ok_or(SignatureError::Missing)?;
    let auth = Authorization::parse(authorization)?;
    if auth.access_key != credentials.access_key {
        return Err(SignatureError::UnknownAccessKey);
    }
    let amz_date = header(&parts.headers, "x-amz-date")
        .ok_or_else(|| SignatureError::Malformed("no X-Amz-Date header".into()))?;
    if !amz_date.starts_with(auth.date) {
        return Err(SignatureError::Malformed("X-Amz-Date and the credential scope name other days".into()));
    }
    let canonical = canonical_request(parts, body, &auth.signed_headers)?;
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let string_to_sign =
        format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let key = aws_sigv4::sign::v4::generate_signing_key(
        credentials.secret_key,
        scope_day(auth.date)?,
        auth.region,
        auth.service,
    );
    let expected = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/personalize/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=hex`.
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: &'a str) -> Result<Self, SignatureError> {
        let malformed = |why: &str| SignatureError::Malformed(why.to_owned());
        let rest = header.strip_prefix(ALGORITHM).ok_or_else(|| malformed("not AWS4-HMAC-SHA256"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for field in rest.split(',').map(str::trim) {
            match field.split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let credential = credential.ok_or_else(|| malformed("no Credential"))?;
        let mut scope = credential.split('/');
        let (Some(access_key), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
            (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
        else {
            return Err(malformed("Credential is not KEY/DATE/REGION/SERVICE/aws4_request"));
        };
        let signed_headers: Vec<&str> =
            signed.ok_or_else(|| malformed("no SignedHeaders"))?.split(';').collect();
        if !signed_headers.contains(&"host") {
            return Err(malformed("SignedHeaders must include host"));
        }
        let signature = signature.ok_or_else(|| malformed("no Signature"))?;
        Ok(Authorization { access_key, date, region, service, signed_headers, signature })
    }
}

/// The credential scope's day (`YYYYMMDD`) as a time on that day, for aws-sigv4's key derivation.
fn scope_day(date: &str) -> Result<SystemTime, SignatureError> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y%m%d")
        .map_err(|_| SignatureError::Malformed(format!("{date:?} is not a YYYYMMDD date")))?;
    let seconds = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or_default();
    let seconds =
        u64::try_from(seconds).map_err(|_| SignatureError::Malformed(format!("{date:?} is before 1970")))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

fn canonical_request(parts: &Parts, body: &[u8], signed: &[&str]) -> Result<String, SignatureError> {
    let mut out =
        format!("{}\n{}\n{}\n", parts.method, canonical_path(parts.uri.path()), canonical_query(parts));
    for name in signed {
        let values: Vec<String> = parts
            .headers
            .get_all(*name)
            .iter()
            .map(|v| v.to_str().map(collapse_spaces))
            .collect::<Result<_, _>>()
            .map_err(|_| SignatureError::Malformed(format!("header {name} is not text")))?;
        if values.is_empty() && *name != "host" {
            return Err(SignatureError::Malformed(format!("signed header {name} is missing")));
        }
        let value = if *name == "host" && values.is_empty() {
            parts.uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default()
        } else {
            values.join(",")
        };
        out.push_str(&format!("{name}:{value}\n"));
    }
    let payload = match header(&parts.headers, "x-amz-content-sha256") {
        Some(declared) => declared.to_owned(),
        None => hex::encode(Sha256::digest(body)),
    };
    out.push_str(&format!("\n{}\n{payload}", signed.join(";")));
    Ok(out)
}

/// Non-S3 services sign the path with each segment URI-encoded once more than it was sent.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

/// Query parameters sorted by name then value, as sent (the client encoded them already).
fn canonical_query(parts: &Parts) -> String {
    let Some(query) = parts.uri.query() else { return String::new() };
    let mut pairs: Vec<(&str, &str)> =
        query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    pairs.sort_unstable();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn uri_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: StaticCredentials<'static> = StaticCredentials { access_key: "AKID", secret_key: "secret" };

    /// Signs a request the way the AWS SDK does, with aws-sigv4's own request signer.
    fn signed(secret: &str, body: &str) -> Parts {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = aws_smithy_runtime_api::client::identity::Identity::from(
            aws_sdk_personalize::config::Credentials::new("AKID", secret, None, None, "test"),
        );
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("personalize")
            .time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [("host", "127.0.0.1:9000"), ("x-amz-target", "AmazonPersonalize.ListSolutions")];
        let request = SignableRequest::new(
            "POST",
            "http://127.0.0.1:9000/",
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut request = hyper::Request::post("http://127.0.0.1:9000/").body(()).unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        instructions.apply_to_request_http1x(&mut request);
        request.into_parts().0
    }

    #[test]
    fn a_request_signed_like_the_sdk_passes() {
        assert_eq!(verify(&signed("secret", "{}"), b"{}", CREDS), Ok(()));
    }

    #[test]
    fn another_secret_or_body_is_a_mismatch() {
        assert_eq!(verify(&signed("other", "{}"), b"{}", CREDS), Err(SignatureError::Mismatch));
        assert_eq!(verify(&signed("secret", "{}"), b"{\"a\":1}", CREDS), Err(SignatureError::Mismatch));
    }

    #[test]
    fn no_header_and_another_key_are_named() {
        let unsigned = hyper::Request::post("/").body(()).unwrap().into_parts().0;
        assert_eq!(verify(&unsigned, b"", CREDS), Err(SignatureError::Missing));
        let other = StaticCredentials { access_key: "OTHER", secret_key: "secret" };
        assert_eq!(verify(&signed("secret", "{}"), b"{}", other), Err(SignatureError::UnknownAccessKey));
    }
}
