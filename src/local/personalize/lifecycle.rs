//! Status progression derived from time, and the background runner that does a job's work.
//!
//! A resource's status is a pure function of its recorded timestamps and outcome, so Describe
//! never waits on the work and a restarted server reports the same status the old one would have.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Shared;
use super::work;

pub const PENDING: &str = "CREATE PENDING";
pub const IN_PROGRESS: &str = "CREATE IN_PROGRESS";
pub const ACTIVE: &str = "ACTIVE";
pub const FAILED: &str = "CREATE FAILED";
pub const STOPPING: &str = "CREATE STOPPING";
pub const STOPPED: &str = "CREATE STOPPED";
pub const DELETE_PENDING: &str = "DELETE PENDING";
pub const DELETE_IN_PROGRESS: &str = "DELETE IN_PROGRESS";

/// Wall-clock epoch seconds; persisted timestamps must survive a restart, so no monotonic clock.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lifecycle {
    pub created: f64,
    pub pending_until: f64,
    /// The earliest moment the resource may leave CREATE IN_PROGRESS.
    pub in_progress_until: f64,
    /// When the work starts: the end of CREATE PENDING, later for a slow-job fault (the work
    /// itself is what is slow, so a server stopped meanwhile leaves it undone).
    pub work_after: f64,
    /// Set when the work has finished (or at once for resources without work).
    pub outcome: Option<Outcome>,
    pub stop: Option<Stop>,
    /// Whether a background task does real work for this resource.
    pub has_work: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub failure: Option<String>,
    pub at: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stop {
    pub requested: f64,
    pub until: f64,
}

/// The current status, its `lastUpdatedDateTime`, and the failure reason if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub name: &'static str,
    pub updated: f64,
    pub failure: Option<String>,
}

impl Status {
    /// Pending or in progress: what the service's concurrency quotas and in-use checks count.
    pub fn is_busy(&self) -> bool {
        self.name == PENDING || self.name == IN_PROGRESS
    }
}

impl Lifecycle {
    /// A new lifecycle starting now. `extra_seconds` lengthens CREATE IN_PROGRESS (a slow-job
    /// fault); `failure` decides the outcome in advance (a failed-job fault).
    pub fn begin(shared: &Shared, has_work: bool, extra_seconds: f64, failure: Option<String>) -> Lifecycle {
        let created = now();
        let pending_until = created + shared.scaled(shared.config.pending_seconds);
        let work_after = pending_until + shared.scaled(extra_seconds.max(0.0));
        let in_progress_until = work_after + shared.scaled(shared.config.in_progress_seconds);
        let decided = failure.is_some() || !has_work;
        Lifecycle {
            created,
            pending_until,
            in_progress_until,
            work_after,
            outcome: decided.then_some(Outcome { failure, at: created }),
            stop: None,
            has_work,
        }
    }

    pub fn status(&self, at: f64) -> Status {
        if let Some(stop) = &self.stop {
            return if at < stop.until {
                Status { name: STOPPING, updated: stop.requested, failure: None }
            } else {
                Status { name: STOPPED, updated: stop.until, failure: None }
            };
        }
        if at < self.pending_until {
            return Status { name: PENDING, updated: self.created, failure: None };
        }
        match &self.outcome {
            Some(outcome) if at >= outcome.at.max(self.in_progress_until) => {
                let updated = outcome.at.max(self.in_progress_until);
                match &outcome.failure {
                    Some(reason) => Status { name: FAILED, updated, failure: Some(reason.clone()) },
                    None => Status { name: ACTIVE, updated, failure: None },
                }
            }
            _ => Status { name: IN_PROGRESS, updated: self.pending_until, failure: None },
        }
    }

    /// Whether the background runner still owes this resource its work.
    pub fn unfinished(&self) -> bool {
        self.has_work && self.outcome.is_none() && self.stop.is_none()
    }
}

/// Starts the runner for the job `arn` on the server's task set.
pub fn spawn_job(shared: &Arc<Shared>, arn: String) {
    let runner = run_job(Arc::clone(shared), arn);
    let mut tasks = shared.tasks.lock().unwrap_or_else(|p| p.into_inner());
    // Collect finished runners so a long-lived server does not accumulate them.
    while tasks.try_join_next().is_some() {}
    tasks.spawn(runner);
}

async fn run_job(shared: Arc<Shared>, arn: String) {
    let work_after = {
        let state = shared.store.lock();
        match state.get(&arn).and_then(|r| r.life.as_ref()) {
            Some(life) if life.unfinished() => life.work_after,
            _ => return,
        }
    };
    if !sleep_until(&shared, work_after).await {
        return;
    }
    let job = {
        let state = shared.store.lock();
        // Stopped (or otherwise settled) while waiting: nothing to do.
        if !state.get(&arn).and_then(|r| r.life.as_ref()).is_some_and(Lifecycle::unfinished) {
            return;
        }
        work::plan(&shared, &state, &arn)
    };
    let failure = match job {
        Some(job) => match tokio::task::spawn_blocking(move || job.run()).await {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(join_error) => Some(format!("internal error: {join_error}")),
        },
        // The job's inputs are gone from the state (cannot happen through the API): end it
        // rather than leave it in progress forever.
        None => Some("internal error: the job's inputs are missing from the emulator's state".to_string()),
    };
    // A server shutting down leaves the job unfinished; the next server repeats the work.
    if *shared.shutdown.borrow() {
        return;
    }
    if let Some(reason) = &failure {
        tracing::info!(%arn, %reason, "personalize job failed");
    }
    let mut state = shared.store.lock();
    let Some(life) = state.records.get_mut(&arn).and_then(|r| r.life.as_mut()) else { return };
    if !life.unfinished() {
        return;
    }
    life.outcome = Some(Outcome { failure, at: now() });
    if let Err(e) = shared.store.persist(&state) {
        tracing::error!(%arn, error = %e, "cannot persist personalize state");
    }
}

/// Sleeps until the epoch time `until`; false if the server began shutting down meanwhile.
async fn sleep_until(shared: &Shared, until: f64) -> bool {
    let mut shutdown = shared.shutdown.subscribe();
    if *shutdown.borrow() {
        return false;
    }
    // A fault may ask for an absurd delay: sleep "forever" rather than panic.
    let wait = Duration::try_from_secs_f64((until - now()).max(0.0)).unwrap_or(Duration::MAX);
    tokio::select! {
        _ = tokio::time::sleep(wait) => !*shutdown.borrow(),
        _ = shutdown.changed() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(outcome: Option<Outcome>) -> Lifecycle {
        Lifecycle {
            created: 100.0,
            pending_until: 101.0,
            work_after: 101.0,
            in_progress_until: 103.0,
            outcome,
            stop: None,
            has_work: true,
        }
    }

    #[test]
    fn status_follows_time_and_outcome() {
        let running = life(None);
        assert_eq!(running.status(100.5), Status { name: PENDING, updated: 100.0, failure: None });
        assert_eq!(running.status(150.0), Status { name: IN_PROGRESS, updated: 101.0, failure: None });
        assert!(running.unfinished());
        // Work done early still shows IN_PROGRESS until the minimum time has passed.
        let done = life(Some(Outcome { failure: None, at: 101.5 }));
        assert_eq!(done.status(102.0).name, IN_PROGRESS);
        assert_eq!(done.status(103.0), Status { name: ACTIVE, updated: 103.0, failure: None });
        // Work done late finishes when it finishes.
        let failed = life(Some(Outcome { failure: Some("no data".into()), at: 110.0 }));
        assert_eq!(failed.status(109.0).name, IN_PROGRESS);
        assert_eq!(
            failed.status(110.0),
            Status { name: FAILED, updated: 110.0, failure: Some("no data".into()) }
        );
    }

    #[test]
    fn a_stop_overrides_the_progression() {
        let mut stopped = life(None);
        stopped.stop = Some(Stop { requested: 102.0, until: 103.0 });
        assert_eq!(stopped.status(102.5), Status { name: STOPPING, updated: 102.0, failure: None });
        assert_eq!(stopped.status(104.0), Status { name: STOPPED, updated: 103.0, failure: None });
        assert!(!stopped.unfinished());
    }
}
