//! The local emulator's S3: path-style addressing, SigV4 with static test credentials (s3s's
//! HTTP front), objects kept as files under `<data_dir>/s3/<bucket>/` (see [`objects`] for the
//! layout and `store` for the operations).

mod answers;
pub mod bucket_name;
mod digests;
mod key_locks;
mod list_encoding;
mod listing;
mod messages;
mod migration;
mod multipart;
pub mod object_names;
pub mod objects;
mod store;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::http_server::{self, ConnectionLimits};

pub use bucket_name::{BucketName, InvalidBucketName};
use store::LocalStore;

/// Stores what `body` writes as `bucket`/`key` in the local S3 at `s3_root`, for the
/// emulator's own writers (Personalize's batch output, `local seed`, the demo): brings a data
/// directory of an earlier recflow to this layout first ([`migration`]), then writes atomically
/// with a record holding the ETag ([`objects`]).
///
/// # Errors
/// An invalid key (`InvalidInput`) or the file system's.
pub fn write_object_with(
    s3_root: &Path,
    bucket: &BucketName,
    key: &str,
    body: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    migration::ensure_layout(s3_root)?;
    objects::write_object_with(s3_root, bucket, key, body)
}

/// Access key every local client signs with.
pub const ACCESS_KEY: &str = "recflow";
/// Secret key every local client signs with.
pub const SECRET_KEY: &str = "recflow-local-secret";

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("cannot create the local S3 root {path}: {source}")]
    CreateRoot { path: PathBuf, source: std::io::Error },
    #[error("cannot open the local S3 store at {path}: {source}")]
    OpenStore { path: PathBuf, source: std::io::Error },
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
/// (= <data_dir>/s3; created if missing) on an already-bound listener, as us-east-1, with the
/// default connection limits.
pub async fn start(root: &Path, listener: TcpListener) -> Result<S3Handle, S3Error> {
    start_with(root, listener, ConnectionLimits::default(), "us-east-1").await
}

/// [`start`] with the given connection limits, as the endpoint of `region` (which decides how a
/// repeated CreateBucket is answered).
pub async fn start_with(
    root: &Path,
    listener: TcpListener,
    limits: ConnectionLimits,
    region: &str,
) -> Result<S3Handle, S3Error> {
    tokio::fs::create_dir_all(root)
        .await
        .map_err(|source| S3Error::CreateRoot { path: root.to_owned(), source })?;
    let store = open_store(root, region)?;
    let addr = listener.local_addr().map_err(S3Error::ListenerAddress)?;

    let mut builder = S3ServiceBuilder::new(store);
    builder.set_auth(StaticCredentials(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY)));
    let service = answers::S3Answers(builder.build());

    let (stop_tx, stop_rx) = oneshot::channel();
    let stopped = async {
        // An error means the handle was dropped, which counts as a stop request too.
        let _ = stop_rx.await;
    };
    let server = tokio::spawn(http_server::serve("S3", listener, service, limits, stopped));
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

fn open_store(root: &Path, region: &str) -> Result<LocalStore, S3Error> {
    let open_error = |source| S3Error::OpenStore { path: root.to_owned(), source };
    let canonical = root.canonicalize().map_err(open_error)?;
    let moved = migration::ensure_layout(&canonical).map_err(open_error)?;
    if moved > 0 {
        tracing::info!(objects = moved, root = %canonical.display(), "moved the objects of the earlier S3 layout to their names");
    }
    let swept = migration::sweep_temporaries(&canonical).map_err(open_error)?;
    if swept > 0 {
        tracing::info!(files = swept, "removed temporary files of writers that ended mid-write");
    }
    Ok(LocalStore::new(canonical, region))
}
