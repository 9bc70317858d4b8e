//! All four local services together, on loopback ports, over one data directory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::events::{self, EventsHandle, Routing, Rule};
use super::http_server::ConnectionLimits;
use super::personalize::{self, PersonalizeConfig, PersonalizeHandle, RuntimeHandle};
use super::s3::{self, S3Handle};
use super::sqs::{self, SqsConfig, SqsHandle};

/// How to run the emulator.
pub struct LocalConfig {
    pub data_dir: PathBuf,
    /// Loopback by default; every port checks SigV4 signatures with the static test credentials.
    pub host: IpAddr,
    /// Personalize listens here, S3 on the next port, EventBridge on the one after, SQS on the
    /// one after that (`port + 3`) and the Personalize runtime on `port + 4`; 0 picks free ports
    /// for all five.
    pub port: u16,
    /// Emulated seconds per real second, for Personalize's jobs and SQS's timeouts alike.
    pub time_scale: f64,
    /// The region in ARNs and queue ARNs.
    pub region: String,
    /// The account in ARNs and queue URLs.
    pub account: String,
    /// How long a Personalize job stays CREATE PENDING, and at least CREATE IN_PROGRESS, in
    /// emulated seconds.
    pub pending_seconds: f64,
    pub in_progress_seconds: f64,
    /// EventBridge rules delivering to SQS queues, besides those of
    /// `<data_dir>/events/rules.json`.
    pub rules: Vec<Rule>,
    /// Header-read timeout and connection cap of each port.
    pub connections: ConnectionLimits,
}

impl LocalConfig {
    /// Loopback on free ports, real time, us-east-1, account 000000000000, no extra rules.
    pub fn new(data_dir: impl Into<PathBuf>) -> LocalConfig {
        LocalConfig {
            data_dir: data_dir.into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            time_scale: 1.0,
            region: "us-east-1".into(),
            account: "000000000000".into(),
            pending_seconds: 1.0,
            in_progress_seconds: 2.0,
            rules: Vec::new(),
            connections: ConnectionLimits::default(),
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("local Personalize: {0}")]
    Personalize(#[from] personalize::PersonalizeError),
    #[error("local S3: {0}")]
    S3(#[from] s3::S3Error),
    #[error("local EventBridge: {0}")]
    Events(#[from] events::EventsError),
    /// The local SQS could not start (a time scale out of range).
    #[error("local SQS: {0}")]
    Sqs(#[from] sqs::SqsError),
    #[error(
        "{dir} is in use by another recflow emulator{}; stop it or give another --data-dir",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { dir: PathBuf, pid: Option<u32> },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The running local services.
pub struct Emulator {
    pub personalize: PersonalizeHandle,
    /// GetRecommendations and GetPersonalizedRanking on the control plane's campaigns.
    pub personalize_runtime: RuntimeHandle,
    pub s3: S3Handle,
    pub events: EventsHandle,
    /// In memory: its queues are gone when the emulator stops.
    pub sqs: SqsHandle,
    region: String,
    account: String,
    data_dir: PathBuf,
    /// Held (flock) while the emulator runs: two emulators on one data directory would each
    /// overwrite the other's state.
    _lock: std::fs::File,
}

/// Takes `<data_dir>/lock` for this process, or says who holds it.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, LocalError> {
    use std::io::{Read, Seek, Write};
    let io = |path: PathBuf| move |source| LocalError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let path = dir.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io(path.clone()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LocalError::Locked { dir: dir.to_path_buf(), pid: text.trim().parse().ok() });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(LocalError::Io { path, source: e }),
    }
    file.set_len(0).map_err(io(path.clone()))?;
    file.rewind().map_err(io(path.clone()))?;
    write!(file, "{}", std::process::id()).map_err(io(path))?;
    Ok(file)
}

async fn bind(host: IpAddr, port: u16) -> Result<tokio::net::TcpListener, LocalError> {
    let addr = SocketAddr::new(host, port);
    tokio::net::TcpListener::bind(addr).await.map_err(|source| LocalError::Bind { addr, source })
}

impl Emulator {
    /// Starts the five services over `config.data_dir`, which it locks for as long as it runs.
    pub async fn start(config: &LocalConfig) -> Result<Emulator, LocalError> {
        let lock = lock_data_dir(&config.data_dir)?;
        let port = |offset: u16| if config.port == 0 { 0 } else { config.port.saturating_add(offset) };
        // Every connection holds a descriptor; the usual soft limit of 1024 is soon reached.
        crate::open_files::raise_soft_limit();
        let s3 = s3::start_with(
            &config.data_dir.join("s3"),
            bind(config.host, port(1)).await?,
            config.connections,
            &config.region,
        )
        .await?;
        // A service that fails to start stops those already started, so none outlives the error.
        let sqs_config = SqsConfig {
            region: config.region.clone(),
            account: config.account.clone(),
            time_scale: config.time_scale,
            connections: config.connections,
        };
        let sqs = match async {
            Ok::<_, LocalError>(sqs::start(sqs_config, bind(config.host, port(3)).await?).await?)
        }
        .await
        {
            Ok(sqs) => sqs,
            Err(e) => {
                s3.shutdown().await;
                return Err(e);
            }
        };
        let routing =
            Routing { rules: config.rules.clone(), sqs: Some(sqs.queues()), connections: config.connections };
        let events = async {
            let listener = bind(config.host, port(2)).await?;
            Ok::<_, LocalError>(
                events::start_with(&config.data_dir, &config.region, &config.account, listener, routing)
                    .await?,
            )
        };
        let events = match events.await {
            Ok(events) => events,
            Err(e) => {
                s3.shutdown().await;
                sqs.shutdown().await;
                return Err(e);
            }
        };
        let mut pz = PersonalizeConfig::new(&config.data_dir);
        pz.region = config.region.clone();
        pz.account = config.account.clone();
        pz.time_scale = config.time_scale;
        pz.pending_seconds = config.pending_seconds;
        pz.in_progress_seconds = config.in_progress_seconds;
        pz.connections = config.connections;
        let personalize = match async {
            Ok::<_, LocalError>(personalize::start(pz, bind(config.host, port(0)).await?).await?)
        }
        .await
        {
            Ok(personalize) => personalize,
            Err(e) => {
                s3.shutdown().await;
                events.shutdown().await;
                sqs.shutdown().await;
                return Err(e);
            }
        };
        let runtime = async {
            let listener = bind(config.host, port(4)).await?;
            let addr = listener.local_addr().ok();
            personalize.serve_runtime(listener).map_err(|source| LocalError::Bind {
                addr: addr.unwrap_or_else(|| SocketAddr::new(config.host, port(4))),
                source,
            })
        };
        let personalize_runtime = match runtime.await {
            Ok(runtime) => runtime,
            Err(e) => {
                personalize.shutdown().await;
                s3.shutdown().await;
                events.shutdown().await;
                sqs.shutdown().await;
                return Err(e);
            }
        };
        Ok(Emulator {
            personalize,
            personalize_runtime,
            s3,
            events,
            sqs,
            region: config.region.clone(),
            account: config.account.clone(),
            data_dir: config.data_dir.clone(),
            _lock: lock,
        })
    }

    /// Where the local S3 keeps buckets: `<root>/<bucket>/`, one file per object (layout in
    /// [`crate::local::s3::objects`]).
    pub fn s3_root(&self) -> PathBuf {
        self.data_dir.join("s3")
    }

    /// A Personalize ARN as this emulator writes it (`dataset-group`, `recflow-demo`).
    pub fn personalize_arn(&self, kind: &str, resource: &str) -> String {
        format!("arn:aws:personalize:{}:{}:{kind}/{resource}", self.region, self.account)
    }

    /// The endpoints and static credentials for recflow's own AWS clients.
    pub fn endpoints(&self) -> crate::tasks::aws::LocalEndpoints {
        crate::tasks::aws::LocalEndpoints {
            personalize: self.personalize.endpoint(),
            s3: self.s3.endpoint(),
            events: self.events.endpoint(),
            sqs: self.sqs.endpoint(),
            region: self.region.clone(),
            access_key: s3::ACCESS_KEY.to_string(),
            secret_key: s3::SECRET_KEY.to_string(),
        }
    }

    /// The environment that points any AWS SDK or the AWS CLI at the emulator.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_PERSONALIZE", self.personalize.endpoint()),
            ("AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME", self.personalize_runtime.endpoint()),
            ("AWS_ENDPOINT_URL_S3", self.s3.endpoint()),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", self.events.endpoint()),
            ("AWS_ENDPOINT_URL_SQS", self.sqs.endpoint()),
            ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY.to_string()),
            // boto3 and the AWS CLI v1 read only this one.
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("AWS_REGION", self.region.clone()),
        ]
    }

    /// Stops every service; waiting SQS long polls answer with no messages.
    pub async fn shutdown(self) {
        bounded("Personalize", self.personalize.shutdown()).await;
        bounded("the Personalize runtime", self.personalize_runtime.stopped()).await;
        bounded("S3", self.s3.shutdown()).await;
        bounded("EventBridge", self.events.shutdown()).await;
        bounded("SQS", self.sqs.shutdown()).await;
    }
}

/// How long one service may take to stop before the emulator stops waiting for it: a stop must
/// end (a supervisor's SIGTERM, a test's), and every write is atomic, so what is cut short is
/// redone by the next emulator on the same data directory.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

async fn bounded(service: &str, stop: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(SHUTDOWN_LIMIT, stop).await.is_err() {
        tracing::warn!("local {service} did not stop within {SHUTDOWN_LIMIT:?}; leaving it");
    }
}
