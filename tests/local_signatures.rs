//! Every port of the emulator checks SigV4 signatures with its static test credentials, so a
//! misconfigured client fails locally as it would on AWS: unsigned, signed with an unknown
//! access key, or signed with the wrong secret.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/signed.rs"]
mod signed;

use aws_sdk_personalize::error::ProvideErrorMetadata;
use recflow::local::emulator::{Emulator, LocalConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (status, body) of a hand-written POST `/` with `target` and extra header lines.
async fn post(addr: std::net::SocketAddr, content_type: &str, target: &str, extra: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = "{}";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nX-Amz-Target: {target}\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn signature_lines(service: &str, secret: &str, addr: std::net::SocketAddr, target: &str) -> String {
    signed::sigv4_headers("POST", service, secret, &addr.to_string(), "/", target, "{}")
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_and_wrongly_signed_requests_are_refused_on_every_json_port() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&LocalConfig::new(dir.path())).await.unwrap();
    let ports = [
        (
            emulator.personalize.addr(),
            "application/x-amz-json-1.1",
            "AmazonPersonalize.ListDatasetGroups",
            "personalize",
        ),
        (emulator.events.addr(), "application/x-amz-json-1.1", "AWSEvents.PutEvents", "events"),
        (emulator.sqs.addr(), "application/x-amz-json-1.0", "AmazonSQS.ListQueues", "sqs"),
    ];
    for (addr, content_type, target, service) in ports {
        let (status, body) = post(addr, content_type, target, "").await;
        assert_eq!(status, 400, "{target}: {body}");
        assert!(body.contains("MissingAuthenticationTokenException"), "{target}: {body}");
        assert!(body.contains("Missing Authentication Token"), "{target}: {body}");

        let wrong_secret = signature_lines(service, "not-the-secret", addr, target);
        let (status, body) = post(addr, content_type, target, &wrong_secret).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert!(body.contains("InvalidSignatureException"), "{target}: {body}");
        assert!(body.contains("The request signature we calculated does not match"), "{target}: {body}");

        let right = signature_lines(service, signed::SECRET, addr, target);
        let (_, body) = post(addr, content_type, target, &right).await;
        // Past the signature check: answered by the operation (PutEvents without entries is a
        // ValidationException), never by the check.
        for refusal in ["MissingAuthenticationToken", "InvalidSignature", "UnrecognizedClient"] {
            assert!(!body.contains(refusal), "{target}: a correctly signed request passes: {body}");
        }
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_with_other_credentials_fail_as_on_aws() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&LocalConfig::new(dir.path())).await.unwrap();
    let with = |key: &str, secret: &str| {
        aws_sdk_personalize::Client::from_conf(
            aws_sdk_personalize::Config::builder()
                .behavior_version(aws_sdk_personalize::config::BehaviorVersion::latest())
                .region(aws_sdk_personalize::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_personalize::config::Credentials::new(
                    key, secret, None, None, "t",
                ))
                .endpoint_url(emulator.personalize.endpoint())
                .build(),
        )
    };
    let err = with("recflow", "wrong").list_dataset_groups().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    let err = with("AKIAOTHER", signed::SECRET).list_dataset_groups().send().await.unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
    assert_eq!(err.message(), Some("The security token included in the request is invalid."));
    // The runtime (restJson1, its own port) checks signatures too.
    let runtime = aws_sdk_personalizeruntime::Client::from_conf(
        aws_sdk_personalizeruntime::Config::builder()
            .behavior_version(aws_sdk_personalizeruntime::config::BehaviorVersion::latest())
            .region(aws_sdk_personalizeruntime::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_personalizeruntime::config::Credentials::new(
                "recflow", "wrong", None, None, "t",
            ))
            .endpoint_url(emulator.personalize_runtime.endpoint())
            .build(),
    );
    let err = runtime
        .get_recommendations()
        .campaign_arn("arn:aws:personalize:us-east-1:000000000000:campaign/c")
        .user_id("u1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    // The emulator's own credentials keep working, on every client.
    clients::personalize(&emulator).list_dataset_groups().send().await.expect("signed with the static key");
    clients::events(&emulator)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("t")
                .detail_type("d")
                .detail("{}")
                .build(),
        )
        .send()
        .await
        .expect("events with the static key");
    emulator.shutdown().await;
}
