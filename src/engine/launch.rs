//! One launch path for every way recflow runs an execution (`run`, `resume`, a container started
//! by a scheduler, the daemon): an owned [`Launch`] holds what a run needs behind `Arc`s, so a
//! run can be spawned as a task and stopped by a shutdown signal, and every run goes through
//! the same two steps: create (or load) the stored execution, then drive it.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::clock::Clock;
use super::driver::{Driver, Observer, Stop, StopRequest};
use super::execution::Limits;
use super::store::{CheckpointError, ExecutionStore, Precondition, Stored};
use super::task::Registry;
use super::transition::start;
use crate::asl::definition::StateMachine;

/// What runs a workflow's executions: its definition, task runners, clock and store.
#[derive(Clone)]
pub struct Launch {
    pub machine: Arc<StateMachine>,
    /// The definition as JSON, recorded with each new execution.
    pub definition: Arc<Value>,
    pub registry: Arc<Registry>,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn ExecutionStore>,
}

impl Launch {
    /// Records a new execution `name` (its ExecutionStarted event) with `limits`; the store
    /// refuses a name already used (`Exists`).
    pub async fn create(
        &self,
        name: &str,
        state_machine: &str,
        input: Value,
        seed: u64,
        limits: Limits,
    ) -> Result<Stored, CheckpointError> {
        let mut t = start(&self.machine, name, state_machine, input, self.clock.now(), seed);
        t.execution.limits = limits;
        let version = self
            .store
            .commit(&t.execution, &t.events, Some(&self.definition), Precondition::DoesNotExist)
            .await?;
        Ok(Stored { definition: (*self.definition).clone(), execution: t.execution, version })
    }

    /// Drives a stored execution (just created, or loaded with [`ExecutionStore::load`]) until
    /// it ends, until nothing is due before `horizon` (an instant of the execution's clock:
    /// [`Stop::Parked`]), until a [`StopRequest`] arrives on `stop` (it ends ABORTED), or until
    /// `shutdown` completes: then calls already made get [`SHUTDOWN_GRACE`] to answer, their
    /// answers are committed, and it stops ([`Stop::Interrupted`]; the next load continues from
    /// there).
    pub async fn run(
        &self,
        stored: Stored,
        horizon: Option<DateTime<Utc>>,
        observer: Option<Observer<'_>>,
        shutdown: impl Future<Output = ()>,
        stop: Option<tokio::sync::oneshot::Receiver<StopRequest>>,
    ) -> Result<Stop, CheckpointError> {
        let mut driver =
            Driver::resume(&self.machine, &self.registry, self.clock.as_ref(), self.store.as_ref(), stored);
        if let Some(observer) = observer {
            driver = driver.observe(observer);
        }
        driver.run_until(horizon, shutdown, stop, SHUTDOWN_GRACE).await
    }
}

/// How long, in wall time, a shutdown waits for task calls already made to answer (so their
/// answers are checkpointed) before it drops them.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
