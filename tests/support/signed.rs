//! SigV4 headers for hand-written HTTP requests to the emulator's awsJson ports, signed with
//! aws-sigv4 (the AWS SDK's signer) and the emulator's static credentials or a given secret.
#![allow(dead_code)]

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};

/// The headers (`authorization`, `x-amz-date`) that sign a `method` request of `body` to `host`
/// and `path` with the `x-amz-target` `target`, for `service`, with the access key `recflow` and
/// `secret`.
pub fn sigv4_headers(
    method: &str,
    service: &str,
    secret: &str,
    host: &str,
    path: &str,
    target: &str,
    body: &str,
) -> Vec<(String, String)> {
    let identity = aws_smithy_runtime_api::client::identity::Identity::from(
        aws_sdk_personalize::config::Credentials::new("recflow", secret, None, None, "test"),
    );
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let headers = [("host", host), ("x-amz-target", target)];
    let uri = format!("http://{host}{path}");
    let request =
        SignableRequest::new(method, &uri, headers.into_iter(), SignableBody::Bytes(body.as_bytes()))
            .expect("signable request");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    instructions.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect()
}

/// The emulator's secret key (`recflow local serve` exports it as AWS_SECRET_ACCESS_KEY).
pub const SECRET: &str = "recflow-local-secret";
