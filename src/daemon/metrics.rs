//! The daemon's Prometheus metrics (prometheus-client, text format 0.0.4 at `GET /metrics`):
//!
//! - `recflow_executions_started_total{workflow,trigger}`, `recflow_executions_ended_total{workflow,status}`
//!   (status as Step Functions spells it: SUCCEEDED, FAILED, TIMED_OUT, ABORTED);
//! - `recflow_firings_skipped_total{workflow}`: firings dropped by `overlap = "forbid"`;
//! - `recflow_task_calls_total{resource}`, `recflow_task_errors_total{resource,error}`;
//! - `recflow_state_duration_seconds{workflow,state}`: a histogram, StateEntered to StateExited
//!   on the execution's clock;
//! - `recflow_next_run_timestamp_seconds{workflow}`: the next scheduled firing, Unix seconds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::{Detail, Execution, HistoryEvent, Observer};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Started {
    workflow: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ended {
    workflow: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OfWorkflow {
    workflow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OfResource {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskError {
    resource: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OfState {
    workflow: String,
    state: String,
}

/// Seconds from 1 to about 3 days, by factors of 4: a Pass state and a day-long training job
/// both land in a bucket of their own.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 10))
}

/// The metrics, shared by the daemon's executions (every family is a cheap, shared handle).
pub struct Metrics {
    registry: Mutex<Registry>,
    started: Family<Started, Counter>,
    ended: Family<Ended, Counter>,
    skipped: Family<OfWorkflow, Counter>,
    task_calls: Family<OfResource, Counter>,
    task_errors: Family<TaskError, Counter>,
    state_seconds: Family<OfState, Histogram, fn() -> Histogram>,
    next_run: Family<OfWorkflow, Gauge>,
}

impl Metrics {
    /// Metrics for `workflows`, whose started and ended counters read 0 before anything runs.
    pub fn new(workflows: &[String]) -> Metrics {
        let mut registry = Registry::default();
        let started = Family::<Started, Counter>::default();
        let ended = Family::<Ended, Counter>::default();
        let skipped = Family::<OfWorkflow, Counter>::default();
        let task_calls = Family::<OfResource, Counter>::default();
        let task_errors = Family::<TaskError, Counter>::default();
        let state_seconds =
            Family::<OfState, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        let next_run = Family::<OfWorkflow, Gauge>::default();
        registry.register(
            "recflow_executions_started",
            "Executions started, by workflow and trigger",
            started.clone(),
        );
        registry.register(
            "recflow_executions_ended",
            "Executions ended, by workflow and status",
            ended.clone(),
        );
        registry.register(
            "recflow_firings_skipped",
            "Scheduled firings skipped because an execution was running (overlap = forbid)",
            skipped.clone(),
        );
        registry.register("recflow_task_calls", "Task calls made, by resource", task_calls.clone());
        registry.register(
            "recflow_task_errors",
            "Task calls that failed, by resource and error name",
            task_errors.clone(),
        );
        registry.register(
            "recflow_state_duration_seconds",
            "Time from entering a state to leaving it, on the execution's clock",
            state_seconds.clone(),
        );
        registry.register(
            "recflow_next_run_timestamp_seconds",
            "The next scheduled firing of a workflow, Unix seconds",
            next_run.clone(),
        );
        for workflow in workflows {
            for status in ["SUCCEEDED", "FAILED"] {
                let _ = ended.get_or_create(&Ended { workflow: workflow.clone(), status: status.into() });
            }
        }
        Metrics {
            registry: Mutex::new(registry),
            started,
            ended,
            skipped,
            task_calls,
            task_errors,
            state_seconds,
            next_run,
        }
    }

    pub(super) fn started(&self, workflow: &str, trigger: &str) {
        self.started.get_or_create(&Started { workflow: workflow.into(), trigger: trigger.into() }).inc();
    }

    pub(super) fn ended(&self, workflow: &str, status: &str) {
        self.ended.get_or_create(&Ended { workflow: workflow.into(), status: status.into() }).inc();
    }

    pub(super) fn skipped(&self, workflow: &str) {
        self.skipped.get_or_create(&OfWorkflow { workflow: workflow.into() }).inc();
    }

    /// An observer for one execution of `workflow`: counts its task calls and errors and times
    /// its states from the history events of each transition. States entered more than once at
    /// a time (Map iterations) are paired first in, first out.
    pub(super) fn observer(&self, workflow: &str) -> Observer<'static> {
        let (calls, errors, seconds) =
            (self.task_calls.clone(), self.task_errors.clone(), self.state_seconds.clone());
        let workflow = workflow.to_string();
        let mut entered: HashMap<String, VecDeque<DateTime<Utc>>> = HashMap::new();
        let mut resources: HashMap<String, String> = HashMap::new();
        Box::new(move |_: &Execution, events: &[HistoryEvent]| {
            for event in events {
                match &event.detail {
                    Detail::StateEntered { state, .. } => {
                        entered.entry(state.clone()).or_default().push_back(event.timestamp)
                    }
                    Detail::StateExited { state, .. } => {
                        if let Some(at) = entered.get_mut(state).and_then(VecDeque::pop_front) {
                            let secs = (event.timestamp - at).num_milliseconds() as f64 / 1000.0;
                            let labels = OfState { workflow: workflow.clone(), state: state.clone() };
                            seconds.get_or_create(&labels).observe(secs);
                        }
                    }
                    Detail::TaskScheduled { state, resource, .. } => {
                        calls.get_or_create(&OfResource { resource: resource.clone() }).inc();
                        resources.insert(state.clone(), resource.clone());
                    }
                    Detail::TaskFailed { state, error, .. } => {
                        let resource = resources.get(state).cloned().unwrap_or_default();
                        errors.get_or_create(&TaskError { resource, error: error.clone() }).inc();
                    }
                    _ => {}
                }
            }
        })
    }

    /// The text exposition, with each workflow's next firing as `next_run` tells it.
    pub(super) fn encode<W>(
        &self,
        workflows: &BTreeMap<String, W>,
        next_run: impl Fn(&str) -> Option<DateTime<Utc>>,
    ) -> String {
        for name in workflows.keys() {
            let gauge = self.next_run.get_or_create(&OfWorkflow { workflow: name.clone() });
            gauge.set(next_run(name).map_or(0, |t| t.timestamp()));
        }
        let mut text = String::new();
        let registry = self.registry.lock().expect("metrics lock");
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("writing to a String");
        text
    }
}
