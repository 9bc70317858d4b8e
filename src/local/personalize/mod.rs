//! A local Amazon Personalize control plane: the service's awsJson1_1 wire protocol on loopback
//! HTTP, resources with the service's ARNs, statuses and errors, job lifecycles that take
//! (scaled) time, and the real work done by [`crate::local::recommender`] on files under the
//! shared data directory. State survives restarts; unfinished jobs resume.

mod arn;
mod auto_training;
mod batch;
mod campaigns;
mod datasets;
mod deletes;
mod filters;

mod lifecycle;
mod protocol;
mod recipes;
mod resources;
mod runtime;
mod schema;
mod solutions;
mod store;
mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use crate::local::faults::{Fault, Faults, JobKind, OperationFault};
pub use runtime::RuntimeHandle;

use protocol::{ApiError, Input};
use store::{Kind, Store};

#[derive(Debug, Clone)]
pub struct PersonalizeConfig {
    /// The emulator's root data dir: Personalize owns `<data_dir>/personalize/` and reads and
    /// writes S3 objects through the local S3's files under `<data_dir>/s3`
    /// ([`crate::local::s3::objects`]).
    pub data_dir: PathBuf,
    pub region: String,
    pub account: String,
    /// Emulated seconds per real second: 60.0 makes a 60 s phase take 1 s.
    pub time_scale: f64,
    /// How long a job stays CREATE PENDING (emulated seconds).
    pub pending_seconds: f64,
    /// The least time a job spends CREATE IN_PROGRESS (the work may take longer).
    pub in_progress_seconds: f64,
    /// Header-read timeout and connection cap of the port.
    pub connections: crate::local::http_server::ConnectionLimits,
}

impl PersonalizeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        PersonalizeConfig {
            data_dir: data_dir.into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            time_scale: 1.0,
            pending_seconds: 1.0,
            in_progress_seconds: 2.0,
            connections: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PersonalizeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot use {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the state file {path} is corrupt: {source}")]
    CorruptState { path: PathBuf, source: serde_json::Error },
}

/// What the server, the handlers and the job runners share.
pub(crate) struct Shared {
    config: PersonalizeConfig,
    store: Store,
    faults: Faults,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    /// Serialises imports' read-modify-write of dataset files (an INCREMENTAL import appends).
    import_lock: Arc<Mutex<()>>,
}

impl Shared {
    fn personalize_dir(&self) -> PathBuf {
        self.config.data_dir.join("personalize")
    }

    fn s3_dir(&self) -> PathBuf {
        self.config.data_dir.join("s3")
    }

    fn arn(&self, kind: Kind, resource: &str) -> String {
        arn::resource_arn(&self.config.region, &self.config.account, kind, resource)
    }

    /// Real seconds for `emulated` seconds.
    fn scaled(&self, emulated: f64) -> f64 {
        emulated / self.config.time_scale
    }
}

type Handler = fn(&Arc<Shared>, &Input) -> Result<serde_json::Value, ApiError>;

/// The operations this emulator answers; anything else is an UnknownOperationException.
fn handler(operation: &str) -> Option<Handler> {
    Some(match operation {
        "CreateDatasetGroup" => datasets::create_dataset_group,
        "DescribeDatasetGroup" => datasets::describe_dataset_group,
        "ListDatasetGroups" => datasets::list_dataset_groups,
        "CreateSchema" => datasets::create_schema,
        "DescribeSchema" => datasets::describe_schema,
        "ListSchemas" => datasets::list_schemas,
        "CreateDataset" => datasets::create_dataset,
        "DescribeDataset" => datasets::describe_dataset,
        "ListDatasets" => datasets::list_datasets,
        "CreateDatasetImportJob" => datasets::create_dataset_import_job,
        "DescribeDatasetImportJob" => datasets::describe_dataset_import_job,
        "ListDatasetImportJobs" => datasets::list_dataset_import_jobs,
        "CreateSolution" => solutions::create_solution,
        "DescribeSolution" => solutions::describe_solution,
        "UpdateSolution" => auto_training::update_solution,
        "ListSolutions" => solutions::list_solutions,
        "CreateSolutionVersion" => solutions::create_solution_version,
        "DescribeSolutionVersion" => solutions::describe_solution_version,
        "ListSolutionVersions" => solutions::list_solution_versions,
        "StopSolutionVersionCreation" => solutions::stop_solution_version_creation,
        "GetSolutionMetrics" => solutions::get_solution_metrics,
        "ListRecipes" => recipes::list_recipes,
        "CreateBatchInferenceJob" => batch::create_batch_inference_job,
        "DescribeBatchInferenceJob" => batch::describe_batch_inference_job,
        "ListBatchInferenceJobs" => batch::list_batch_inference_jobs,
        "CreateBatchSegmentJob" => batch::create_batch_segment_job,
        "DescribeBatchSegmentJob" => batch::describe_batch_segment_job,
        "ListBatchSegmentJobs" => batch::list_batch_segment_jobs,
        "CreateCampaign" => campaigns::create_campaign,
        "DescribeCampaign" => campaigns::describe_campaign,
        "ListCampaigns" => campaigns::list_campaigns,
        "UpdateCampaign" => campaigns::update_campaign,
        "CreateFilter" => filters::create_filter,
        "DescribeFilter" => filters::describe_filter,
        "ListFilters" => filters::list_filters,
        "DeleteFilter" => filters::delete_filter,
        "DeleteDatasetGroup" => deletes::delete_dataset_group,
        "DeleteDataset" => deletes::delete_dataset,
        "DeleteSchema" => deletes::delete_schema,
        "DeleteSolution" => deletes::delete_solution,
        "DeleteCampaign" => deletes::delete_campaign,
        _ => return None,
    })
}

/// A running server.
pub struct PersonalizeHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl PersonalizeHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for an SDK client, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's fault switchboard (the same one `/__recflow/faults` sets).
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Stops accepting requests, closes connections, and waits for the job runners: a job in
    /// the middle of its work finishes the work but records nothing, so the next server on the
    /// same data directory redoes it.
    pub async fn shutdown(self) {
        self.shared.shutdown.send_replace(true);
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "personalize server task failed");
        }
        let mut tasks = std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        while tasks.join_next().await.is_some() {}
    }
}

/// Starts the server on `listener` with the state found under `<data_dir>/personalize/`, and
/// resumes the work of every job that had not finished.
pub async fn start(
    config: PersonalizeConfig,
    listener: tokio::net::TcpListener,
) -> Result<PersonalizeHandle, PersonalizeError> {
    if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
        return Err(PersonalizeError::Config(format!(
            "time_scale must be positive, not {}",
            config.time_scale
        )));
    }
    for (name, seconds) in
        [("pending_seconds", config.pending_seconds), ("in_progress_seconds", config.in_progress_seconds)]
    {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(PersonalizeError::Config(format!("{name} must be non-negative, not {seconds}")));
        }
    }
    let dir = config.data_dir.join("personalize");
    for sub in [dir.clone(), dir.join("models"), dir.join("datasets")] {
        std::fs::create_dir_all(&sub).map_err(|source| PersonalizeError::Io { path: sub.clone(), source })?;
    }
    let store = Store::open(&dir)?;
    let addr = listener.local_addr().map_err(|source| PersonalizeError::Io { path: dir.clone(), source })?;
    let shared = Arc::new(Shared {
        config,
        store,
        faults: Faults::default(),
        shutdown: watch::Sender::new(false),
        tasks: Mutex::new(JoinSet::new()),
        import_lock: Arc::new(Mutex::new(())),
    });
    let unfinished: Vec<String> = shared
        .store
        .lock()
        .records
        .values()
        .filter(|r| r.life.as_ref().is_some_and(|l| l.unfinished()))
        .map(|r| r.arn.clone())
        .collect();
    for arn in unfinished {
        tracing::info!(%arn, "resuming unfinished personalize job");
        lifecycle::spawn_job(&shared, arn);
    }
    {
        let mut tasks = shared.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.spawn(auto_training::run(Arc::clone(&shared)));
    }
    let server = tokio::spawn(protocol::serve(Arc::clone(&shared), listener, protocol::handle));
    tracing::info!(%addr, "personalize emulator listening");
    Ok(PersonalizeHandle { addr, shared, server })
}
