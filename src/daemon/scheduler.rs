//! The daemon's schedules: one loop per workflow that sleeps on the daemon's clock until the
//! next firing of any of its schedules, fires, and records the firing, so that a restarted
//! daemon knows which firings it missed (`catch_up`) and where rates count from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{CatchUp, Daemon};
use crate::atomic_file::{Durability, write_atomic};
use crate::engine::execution::timestamp;

/// The most missed firings counted at start (a rate(1 minute) down for a year is not listed).
const MISSED_LIMIT: usize = 10_000;

/// What the daemon remembers of one workflow's schedules.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Remembered {
    /// Where `rate(...)` schedules count from: the first start of the daemon with the workflow.
    anchor: DateTime<Utc>,
    /// The last firing handled (started, skipped or queued).
    last_fired: Option<DateTime<Utc>>,
}

/// Every workflow's [`Remembered`], kept in a JSON file (written atomically after each firing).
pub(super) struct ScheduleState {
    file: Option<PathBuf>,
    workflows: Mutex<BTreeMap<String, Remembered>>,
}

impl ScheduleState {
    pub(super) fn open(file: Option<PathBuf>) -> std::io::Result<ScheduleState> {
        let workflows = match &file {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: not the daemon's schedule state: {e}", path.display()),
                    )
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            },
            None => BTreeMap::new(),
        };
        Ok(ScheduleState { file, workflows: Mutex::new(workflows) })
    }

    /// The workflow's memory, made (anchored at `now`) and recorded on its first start, so a
    /// restart before the first firing keeps counting rates from there.
    fn get(&self, workflow: &str, now: DateTime<Utc>) -> Remembered {
        let mut workflows = self.workflows.lock().expect("schedule state lock");
        if let Some(remembered) = workflows.get(workflow) {
            return *remembered;
        }
        let remembered = Remembered { anchor: now, last_fired: None };
        workflows.insert(workflow.to_string(), remembered);
        self.save(&workflows);
        remembered
    }

    fn fired(&self, workflow: &str, at: DateTime<Utc>) {
        let mut workflows = self.workflows.lock().expect("schedule state lock");
        if let Some(r) = workflows.get_mut(workflow) {
            r.last_fired = Some(at);
        }
        self.save(&workflows);
    }

    fn save(&self, workflows: &BTreeMap<String, Remembered>) {
        let text = serde_json::to_vec_pretty(workflows).expect("the schedule state serializes");
        if let Some(path) = &self.file
            && let Err(e) = write_atomic(path, &text, Durability::Fsync)
        {
            warn!(path = %path.display(), error = %e, "could not record the schedules' state; a restart may miss or repeat a firing");
        }
    }
}

/// The firings of `workflow`'s schedules after `after`, earliest first, at most `limit`.
fn firings(
    daemon: &Daemon,
    workflow: &str,
    after: DateTime<Utc>,
    anchor: DateTime<Utc>,
    limit: usize,
) -> Vec<DateTime<Utc>> {
    let wf = &daemon.workflows[workflow];
    let mut all: Vec<DateTime<Utc>> =
        wf.schedules.iter().flat_map(|s| s.fire_times(wf.tz, after, anchor, limit)).collect();
    all.sort();
    all.dedup();
    all.truncate(limit);
    all
}

/// Runs one workflow's schedules until the daemon shuts down.
pub(super) async fn run(daemon: Arc<Daemon>, workflow: String) {
    let now = daemon.clock.now();
    let remembered = daemon.schedules.get(&workflow, now);
    let catch_up = daemon.workflows[&workflow].catch_up;
    // Missed: what fell due since the last firing, or since the first start if none has yet.
    if let Some(last) = remembered.last_fired.or(Some(remembered.anchor)).filter(|t| *t < now) {
        let missed: Vec<_> = firings(&daemon, &workflow, last, remembered.anchor, MISSED_LIMIT)
            .into_iter()
            .filter(|t| *t <= now)
            .collect();
        if let Some(latest) = missed.last().copied() {
            match catch_up {
                CatchUp::Skip => {
                    info!(workflow, missed = missed.len(), latest = %timestamp(latest), "skipping firings missed while the daemon was down (catch_up = \"skip\")");
                }
                CatchUp::Once => {
                    info!(workflow, missed = missed.len(), latest = %timestamp(latest), "starting the latest firing missed while the daemon was down (catch_up = \"once\")");
                    daemon.fire(&workflow, latest).await;
                }
            }
            daemon.schedules.fired(&workflow, latest);
        }
    }
    let jitter = daemon.workflows[&workflow].jitter;
    let mut after = now;
    loop {
        let Some(next) = firings(&daemon, &workflow, after, remembered.anchor, 1).first().copied() else {
            info!(workflow, "its schedules fire no more");
            daemon.set_next_run(&workflow, None);
            return;
        };
        daemon.set_next_run(&workflow, Some(next));
        let delay = chrono::Duration::from_std(jitter.mul_f64(fastrand::f64())).unwrap_or_default();
        tokio::select! {
            () = daemon.clock.sleep_until(next + delay) => {}
            () = daemon.shutdown.cancelled() => return,
        }
        daemon.fire(&workflow, next).await;
        daemon.schedules.fired(&workflow, next);
        after = next;
    }
}
