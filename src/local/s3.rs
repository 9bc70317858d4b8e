//! The local emulator's S3: path-style addressing, SigV4 with static test credentials, objects
//! kept as files under `<data_dir>/s3/<bucket>/<key>` (s3s-fs, with the fixes in
//! `guarded_store`).

mod guarded_store;
mod key_locks;
mod object_key;
mod verified_body;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use guarded_store::GuardedStore;

/// Access key every local client signs with.
pub const ACCESS_KEY: &str = "recflow";
/// Secret key every local client signs with.
pub const SECRET_KEY: &str = "recflow-local-secret";

const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(20);

/// How long `shutdown` lets requests in flight finish before dropping their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("cannot create the local S3 root {path}: {source}")]
    CreateRoot { path: PathBuf, source: std::io::Error },
    /// s3s-fs's error type implements neither Display nor Error, hence the text.
    #[error("cannot open the local S3 store at {path}: {message}")]
    OpenStore { path: PathBuf, message: String },
    #[error("cannot read the local S3 listener's address: {0}")]
    ListenerAddress(#[source] std::io::Error),
}

/// A running local S3 server. Dropping it without `shutdown` also stops the server, without
/// waiting for it.
#[derive(Debug)]
pub struct S3Handle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl S3Handle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for SDK clients, e.g. `http://127.0.0.1:9000`. A listener bound to the
    /// unspecified address is reached over loopback.
    pub fn endpoint(&self) -> String {
        let mut reachable = self.addr;
        if reachable.ip().is_unspecified() {
            reachable.set_ip(match reachable {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{reachable}")
    }

    /// Stops accepting connections, lets requests in flight finish (bounded), and ends the
    /// server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the server task is already gone: nothing left to stop.
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take()
            && let Err(err) = server.await
        {
            tracing::warn!(error = %err, "local S3 server task ended abnormally");
        }
    }
}

impl Drop for S3Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves S3 (path-style addressing, SigV4 with the static test credentials) over `root`
/// (= <data_dir>/s3; created if missing) on an already-bound listener.
pub async fn start(root: &Path, listener: TcpListener) -> Result<S3Handle, S3Error> {
    tokio::fs::create_dir_all(root)
        .await
        .map_err(|source| S3Error::CreateRoot { path: root.to_owned(), source })?;
    let store = open_store(root)?;
    let addr = listener.local_addr().map_err(S3Error::ListenerAddress)?;

    let mut builder = S3ServiceBuilder::new(store);
    builder.set_auth(StaticCredentials(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY)));
    let service = builder.build();

    let (stop_tx, stop_rx) = oneshot::channel();
    let server = tokio::spawn(serve(listener, service, stop_rx));
    tracing::info!(%addr, root = %root.display(), "local S3 listening");
    Ok(S3Handle { addr, stop: Some(stop_tx), server: Some(server) })
}

/// The test credentials, refusing other access keys with S3's own error code (SimpleAuth says
/// NotSignedUp, which AWS clients do not expect from S3).
struct StaticCredentials(SimpleAuth);

#[async_trait::async_trait]
impl S3Auth for StaticCredentials {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<SecretKey> {
        self.0.lookup(access_key).cloned().ok_or_else(|| {
            s3s::S3Error::with_message(
                s3s::S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        })
    }
}

fn open_store(root: &Path) -> Result<GuardedStore, S3Error> {
    let fs = s3s_fs::FileSystem::new(root)
        .map_err(|err| S3Error::OpenStore { path: root.to_owned(), message: format!("{err:?}") })?;
    // The same canonical path s3s-fs resolves keys under.
    let canonical = root
        .canonicalize()
        .map_err(|err| S3Error::OpenStore { path: root.to_owned(), message: err.to_string() })?;
    Ok(GuardedStore::new(fs, canonical))
}

async fn serve(listener: TcpListener, service: S3Service, mut stop: oneshot::Receiver<()>) {
    let builder = ConnectionBuilder::new(TokioExecutor::new());
    // Tells open connections to finish their current request and close.
    let (drain_tx, drain_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    loop {
        let socket = tokio::select! {
            // A dropped handle counts as a stop request too.
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => socket,
                Err(err) => {
                    tracing::warn!(error = %err, "local S3 failed to accept a connection");
                    // Out of file descriptors would fail again at once: give others a moment.
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                }
            },
        };
        // Without it Nagle's algorithm holds a response's last segment until the client's delayed
        // ACK: about 40 ms per GetObject.
        if let Err(err) = socket.set_nodelay(true) {
            tracing::debug!(error = %err, "local S3 could not set TCP_NODELAY");
        }
        let connection = builder.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
        let mut drain = drain_rx.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = drain.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(error = %err, "local S3 connection ended with an error");
            }
        });
    }
    drop(listener);
    // Idle keep-alive connections close at once; busy ones after their response.
    let _ = drain_tx.send(());
    let drained =
        tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("local S3 requests still running after {DRAIN_TIMEOUT:?}; dropping them");
        connections.abort_all();
    }
    tracing::info!("local S3 stopped");
}
