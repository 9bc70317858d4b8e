//! The connection handling every local service shares: HTTP/1.1 over an already-bound listener,
//! with the three defences a server needs against clients that misbehave or just stall.
//!
//! - A header-read timeout: a connection that does not finish sending a request's headers in
//!   time is closed (hyper's `header_read_timeout`), so half-sent requests cannot pile up.
//! - A cap on open connections per port: beyond it a new connection gets `503 Service
//!   Unavailable` with `Connection: close` (AWS SDKs retry a 503) and is closed, and those
//!   already open keep being served.
//! - A lingering close: when a response goes out before the request body was read (a body over a
//!   limit, a refused signature), the connection stops writing and reads and discards what the
//!   client still sends, for a bounded time and amount, before it closes. Closing a socket with
//!   unread data makes the kernel answer with a reset, which can destroy the response before the
//!   client reads it (the reason Apache and nginx linger too).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How long `serve` lets requests in flight finish after a stop before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// A lingering close reads at most this much, for at most this long.
const LINGER_BYTES: u64 = 64 * 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(20);
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n\
Content-Length: 44\r\n\r\nToo many open connections to this port; retry";

/// Limits on the connections of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client has to send a request's headers, from the connection's start or the
    /// end of the previous response; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// 30 s for headers (hyper's own default once a timer is set) and 512 connections a port:
    /// far more than the SDK clients of a few workflows open, and with four ports well under the
    /// usual 1024 open files even before the soft limit is raised.
    fn default() -> Self {
        ConnectionLimits { header_read_timeout: Duration::from_secs(30), max_connections: 512 }
    }
}

/// Serves `service` on `listener` until `stop` resolves; then stops accepting, lets requests in
/// flight finish (bounded), and returns. `name` labels the logs.
pub async fn serve<S, B>(
    name: &'static str,
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Tells open connections to finish their current request and close.
    let (drain_tx, drain_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let socket = tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => socket,
                Err(err) => {
                    tracing::warn!(error = %err, "local {name} failed to accept a connection");
                    // Out of file descriptors would fail again at once: give others a moment.
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("local {name}: {} connections open; refusing one more", limits.max_connections);
            connections.spawn(refuse_busy(socket));
            continue;
        };
        // Without it Nagle's algorithm holds a response's last segment until the client's
        // delayed ACK: about 40 ms per answer.
        let _ = socket.set_nodelay(true);
        let connection = builder.serve_connection(TokioIo::new(Lingering::new(socket)), service.clone());
        let mut drain = drain_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = drain.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(error = %err, "local {name} connection ended with an error");
            }
        });
    }
    drop(listener);
    // Idle keep-alive connections close at once; busy ones after their response.
    let _ = drain_tx.send(());
    let drained =
        tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("local {name}: requests still running after {DRAIN_TIMEOUT:?}; dropping them");
        connections.abort_all();
    }
    tracing::info!("local {name} stopped");
}

/// Answers a connection beyond the cap with 503 and closes it, lingering like any other. The
/// answer waits for the request's headers (within [`LINGER_TIME`]): an HTTP client treats an
/// answer that comes before its request as a broken connection, not as a 503 to retry.
async fn refuse_busy(socket: TcpStream) {
    let mut socket = Lingering::new(socket);
    let answered = tokio::time::timeout(LINGER_TIME, async {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        socket.write_all(BUSY).await?;
        socket.shutdown().await
    })
    .await;
    if !matches!(answered, Ok(Ok(()))) {
        tracing::debug!("could not answer a connection beyond the cap");
    }
}

/// A TCP stream whose shutdown is a lingering close: it sends FIN, then reads and discards what
/// the peer still sends until the peer closes, [`LINGER_BYTES`] were read or [`LINGER_TIME`]
/// passed.
struct Lingering {
    stream: TcpStream,
    linger: Option<Linger>,
}

struct Linger {
    deadline: Pin<Box<tokio::time::Sleep>>,
    read: u64,
}

impl Lingering {
    fn new(stream: TcpStream) -> Self {
        Lingering { stream, linger: None }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.linger.is_none() {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            this.linger = Some(Linger { deadline: Box::pin(tokio::time::sleep(LINGER_TIME)), read: 0 });
        }
        let Some(linger) = this.linger.as_mut() else { return Poll::Ready(Ok(())) };
        let mut scratch = [0u8; 16 * 1024];
        loop {
            if linger.deadline.as_mut().poll(cx).is_ready() || linger.read >= LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                // The peer closed, or the connection broke: nothing left to wait for.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => linger.read += buf.filled().len() as u64,
            }
        }
    }
}
