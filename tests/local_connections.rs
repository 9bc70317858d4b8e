//! The emulator's ports under half-sent requests: a header-read timeout closes them, a cap
//! bounds how many are open, and well-formed requests keep being answered.

#[path = "support/clients.rs"]
mod clients;

use std::time::Duration;

use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::http_server::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CAP: usize = 8;

async fn half_sent(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty").await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_beyond_the_cap_do_not_stop_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(dir.path());
    config.connections =
        ConnectionLimits { header_read_timeout: Duration::from_millis(300), max_connections: CAP };
    let emulator = Emulator::start(&config).await.unwrap();
    let mut stalled = Vec::new();
    for addr in [emulator.s3.addr(), emulator.personalize.addr(), emulator.events.addr(), emulator.sqs.addr()]
    {
        for _ in 0..CAP * 4 {
            stalled.push(half_sent(addr).await);
        }
    }
    // Every stalled connection is closed by the server: beyond the cap at once (with a 503), the
    // others when their headers are late. Bounded, so a server that never closes fails the test.
    for stream in &mut stalled {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a half-sent connection stayed open");
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 503") || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    // While more stall, well-formed requests are answered (the SDK retries a 503).
    let mut more = Vec::new();
    for _ in 0..CAP * 2 {
        more.push(half_sent(emulator.s3.addr()).await);
        more.push(half_sent(emulator.personalize.addr()).await);
    }
    // The in-cap stalled connections free their slots only after the header-read timeout, and the
    // SDK's default three attempts with jittered backoff can all come before it (one run in ~50
    // did). Ten attempts make the retries outlast the timeout on any draw, as an operator
    // expecting a loaded emulator would configure.
    let retries = aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(10);
    let s3 = aws_sdk_s3::Client::from_conf(
        clients::s3(&emulator).config().to_builder().retry_config(retries.clone()).build(),
    );
    let personalize = aws_sdk_personalize::Client::from_conf(
        clients::personalize(&emulator).config().to_builder().retry_config(retries).build(),
    );
    s3.list_buckets().send().await.expect("S3 answers");
    personalize.list_dataset_groups().send().await.expect("Personalize answers");
    emulator.shutdown().await;
}
