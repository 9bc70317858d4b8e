//! Argument groups that several commands share: where data and checkpoints live, and how tasks
//! are answered.

use std::path::PathBuf;

use super::integrations::TaskOptions;

/// Where recflow keeps its data and checkpoints (`--data-dir`, `--checkpoint-dir`).
#[derive(clap::Args)]
pub struct Store {
    /// recflow's folder: checkpoints in <DIR>/executions, the embedded emulator in <DIR>/local.
    #[arg(long, env = "RECFLOW_DATA_DIR", default_value = ".recflow", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Where executions are checkpointed, one folder per execution [default: <data-dir>/executions].
    /// `s3://bucket/prefix/` keeps them in S3 with conditional writes (S3 from the environment:
    /// AWS, or AWS_ENDPOINT_URL_S3 for a local S3 such as `recflow local serve`'s).
    #[arg(long, env = "RECFLOW_CHECKPOINT_DIR", value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
}

impl Store {
    /// The checkpoint location: `--checkpoint-dir`, else `<data-dir>/executions`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.checkpoint_dir.clone().unwrap_or_else(|| self.data_dir.join("executions"))
    }
}

/// How tasks are answered (`--mock`, `--local`, AWS) and how a run keeps time and checkpoints.
#[derive(clap::Args)]
pub struct Tasks {
    /// Scripted task answers per state name, in the spirit of Step Functions Local's mock files:
    /// {"State": {"Return": {...}}, "Other": [{"Throw": {"Error": "E", "Cause": "C"}}, {"Return": 1}]}.
    /// The n-th call of a state gets the n-th answer; the last one repeats.
    #[arg(long, value_name = "FILE")]
    pub mock: Option<PathBuf>,
    /// Append one JSON line per scripted task call (state, attempt, idempotency key) to FILE.
    #[arg(long, value_name = "FILE", requires = "mock")]
    pub mock_call_log: Option<PathBuf>,
    /// Run the tasks against the embedded emulator (Personalize, S3, EventBridge, SQS on free
    /// loopback ports, data in <data-dir>/local): no AWS account needed. It creates or reuses the
    /// demo dataset group, dataset and solution, seeds demo data into s3://recflow-demo/ when it
    /// is empty, and fills the execution input with their ARNs and paths (--input overrides).
    /// Without --local and --mock, tasks call AWS with the standard credential chain, region,
    /// AWS_PROFILE and AWS_ENDPOINT_URL_* variables.
    #[arg(long, conflicts_with = "mock")]
    pub local: bool,
    /// Run Waits, retry delays and polls this many times faster than real time (demos, trials);
    /// with --local the emulated jobs run at the same speed [default: 600 with --local, else 1].
    #[arg(long, value_name = "N")]
    pub time_scale: Option<f64>,
    /// Skip fsync: checkpoints survive a killed process but not a power loss.
    #[arg(long)]
    pub no_fsync: bool,
    /// Put an event on this EventBridge bus when an execution starts and when it ends (source
    /// `recflow`, detail-type `Recflow Execution Status Change`, Step Functions' status-change
    /// detail). With --local it is the emulator's bus; otherwise AWS's (with --mock too). A failed
    /// put is retried and never fails the workflow.
    #[arg(long, value_name = "NAME", env = "RECFLOW_EVENTS_BUS")]
    pub events_bus: Option<String>,
}

impl Tasks {
    /// The task options these flags and `store` give.
    pub fn options(&self, store: &Store) -> TaskOptions {
        TaskOptions {
            mock: self.mock.clone(),
            mock_call_log: self.mock_call_log.clone(),
            local: self.local,
            data_dir: store.data_dir.clone(),
            time_scale: self.time_scale,
            events_bus: self.events_bus.clone(),
        }
    }
}
