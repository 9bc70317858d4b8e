//! `arn:aws:states:::aws-sdk:personalize:<action>`: Amazon Personalize through the AWS SDK, as
//! Step Functions' AWS SDK integration calls it, plus recflow's `.sync` form of the three job
//! creates (`createDatasetImportJob.sync`, `createSolutionVersion.sync`,
//! `createBatchInferenceJob.sync`, and `createBatchSegmentJob.sync`), which returns only when
//! the job is ACTIVE.
//!
//! Requests and results are converted by the service model ([`super::model`]) and sent through
//! the typed `aws_sdk_personalize::Client`, which supplies credentials, endpoints, SigV4 and the
//! SDK's retries: the client sends the model-built body, and the raw response is read back, so
//! every member of the model reaches the workflow exactly as Step Functions would show it.

use std::sync::{Arc, Mutex};

use aws_sdk_personalize::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_personalize::error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::info;

use super::aws::sdk_error;
use super::model::{FieldProblem, Operation, ServiceModel};
use super::names::derived_name;
use super::polling::{JobDurations, next_poll_delay};
use crate::asl::errors::{StatesError, names};
use crate::engine::clock::Clock;
use crate::engine::execution::timestamp;
use crate::engine::task::{Answer, TaskFuture, TaskRunner};
use crate::engine::transition::TaskCall;

/// The Resource prefix this runner serves.
pub const PREFIX: &str = "arn:aws:states:::aws-sdk:personalize:";

/// Error name of a `.sync` job that ended CREATE FAILED or CREATE STOPPED (recflow's own; the
/// job's failureReason is the Cause).
pub const JOB_FAILED: &str = "Personalize.JobFailed";

/// A create whose job recflow can wait for: the create action, the member naming the job, the
/// Describe action and its ARN parameter, the Describe result's wrapper, and how to find a job by
/// name (the List action, the parent member it filters on, the summaries' list member).
pub struct JobKind {
    pub create: &'static str,
    pub name: &'static str,
    pub arn: &'static str,
    pub describe: &'static str,
    pub wrapper: &'static str,
    pub list: &'static str,
    pub parent: &'static str,
    pub summaries: &'static str,
}

/// Every create recflow can wait for (`.sync`), with its Describe and List actions.
pub const JOBS: &[JobKind] = &[
    JobKind {
        create: "createDatasetImportJob",
        name: "JobName",
        arn: "DatasetImportJobArn",
        describe: "describeDatasetImportJob",
        wrapper: "DatasetImportJob",
        list: "listDatasetImportJobs",
        parent: "DatasetArn",
        summaries: "DatasetImportJobs",
    },
    JobKind {
        create: "createSolutionVersion",
        name: "Name",
        arn: "SolutionVersionArn",
        describe: "describeSolutionVersion",
        wrapper: "SolutionVersion",
        list: "listSolutionVersions",
        parent: "SolutionArn",
        summaries: "SolutionVersions",
    },
    JobKind {
        create: "createBatchInferenceJob",
        name: "JobName",
        arn: "BatchInferenceJobArn",
        describe: "describeBatchInferenceJob",
        wrapper: "BatchInferenceJob",
        list: "listBatchInferenceJobs",
        parent: "SolutionVersionArn",
        summaries: "BatchInferenceJobs",
    },
    JobKind {
        create: "createBatchSegmentJob",
        name: "JobName",
        arn: "BatchSegmentJobArn",
        describe: "describeBatchSegmentJob",
        wrapper: "BatchSegmentJob",
        list: "listBatchSegmentJobs",
        parent: "SolutionVersionArn",
        summaries: "BatchSegmentJobs",
    },
];

/// The actions recflow calls (each needs a line in [`send`]); the rest of the model's
/// operations are refused by `validate` with this list.
pub const ACTIONS: &[&str] = &[
    "createBatchInferenceJob",
    "createBatchSegmentJob",
    "createCampaign",
    "createDatasetImportJob",
    "createSolutionVersion",
    "describeBatchInferenceJob",
    "describeBatchSegmentJob",
    "describeCampaign",
    "describeDataset",
    "describeDatasetGroup",
    "describeDatasetImportJob",
    "describeSolution",
    "describeSolutionVersion",
    "getSolutionMetrics",
    "listBatchInferenceJobs",
    "listBatchSegmentJobs",
    "listCampaigns",
    "listDatasetGroups",
    "listDatasetImportJobs",
    "listDatasets",
    "listRecipes",
    "listSolutionVersions",
    "listSolutions",
    "stopSolutionVersionCreation",
    "updateCampaign",
];

/// What a Resource names: the action and whether `.sync` was asked for.
fn parse_resource(resource: &str) -> Option<(&str, bool)> {
    let action = resource.strip_prefix(PREFIX)?;
    Some(match action.strip_suffix(".sync") {
        Some(a) => (a, true),
        None => (action, false),
    })
}

/// Whether recflow calls this Personalize resource (an action in [`ACTIONS`], `.sync` on a job
/// create).
pub fn serves(resource: &str) -> bool {
    parse_resource(resource)
        .is_some_and(|(action, sync)| ACTIONS.contains(&action) && (!sync || job_kind(action).is_some()))
}

/// The job kind `action` (a create, camelCase) makes, if recflow can wait for it.
pub fn job_kind(action: &str) -> Option<&'static JobKind> {
    JOBS.iter().find(|j| j.create == action)
}

/// Checks a Personalize Task before a run: the action exists and recflow calls it, `.sync` is
/// used only on a job create, and the static Parameters fit the model (a create's name may be
/// left out: recflow derives it). Problems are (field, message); the field is `Resource` for the
/// first two.
pub fn check(resource: &str, parameters: Option<&Value>) -> Vec<FieldProblem> {
    let Some((action, sync)) = parse_resource(resource) else { return Vec::new() };
    let model = ServiceModel::personalize();
    let Some(op) = model.operation(action).filter(|_| ACTIONS.contains(&action)) else {
        let known = model.actions();
        let hint = if known.iter().any(|a| a == action) {
            format!("recflow does not call '{action}' yet; it calls {}", ACTIONS.join(", "))
        } else {
            let nearest = known.iter().min_by_key(|a| strsim::levenshtein(a, action));
            format!(
                "Personalize has no action '{action}'{}",
                nearest.map(|n| format!("; did you mean '{n}'?")).unwrap_or_default()
            )
        };
        return vec![("Resource".into(), hint)];
    };
    let kind = job_kind(action);
    if sync && kind.is_none() {
        let creates: Vec<&str> = JOBS.iter().map(|j| j.create).collect();
        return vec![(
            "Resource".into(),
            format!("'.sync' waits for a job: recflow offers it on {} only", creates.join(", ")),
        )];
    }
    let derived: Vec<&str> = kind.map(|k| vec![k.name]).unwrap_or_default();
    model.check_parameters(op, parameters, &derived)
}

/// Amazon Personalize for the engine.
pub struct PersonalizeRunner {
    client: aws_sdk_personalize::Client,
    durations: Option<Arc<Mutex<JobDurations>>>,
    /// How many seconds of the execution's clock one second of the service's timestamps is
    /// worth: 1 for AWS; the emulator's time scale for a local run, whose job timestamps are
    /// wall-clock while its jobs run sped up.
    service_time_scale: f64,
}

impl PersonalizeRunner {
    pub fn new(client: aws_sdk_personalize::Client) -> PersonalizeRunner {
        PersonalizeRunner { client, durations: None, service_time_scale: 1.0 }
    }

    /// Keeps the durations of `.sync` jobs, per state machine and state, to poll the next run's
    /// jobs around the time they are expected to end.
    pub fn with_durations(mut self, durations: Arc<Mutex<JobDurations>>) -> PersonalizeRunner {
        self.durations = Some(durations);
        self
    }

    /// See the field's doc; must be positive.
    pub fn with_service_time_scale(mut self, scale: f64) -> PersonalizeRunner {
        self.service_time_scale = scale;
        self
    }

    /// Calls `action` with Step Functions-style (PascalCase) parameters and gives its result in
    /// the same form.
    pub async fn call_action(&self, action: &str, params: &Value) -> Result<Value, StatesError> {
        let model = ServiceModel::personalize();
        let op = model
            .operation(action)
            .filter(|_| ACTIONS.contains(&action))
            .ok_or_else(|| StatesError::runtime(format!("recflow does not call Personalize '{action}'")))?;
        let wire = model.to_wire(op, params).map_err(|cause| {
            StatesError::runtime(format!(
                "The Parameters {params} could not be used to start the Task: [{cause}]"
            ))
        })?;
        let body = send(&self.client, op, wire).await?;
        Ok(model.from_wire(op, &body))
    }

    async fn create(&self, call: &TaskCall, kind: &JobKind) -> Result<(String, Value), StatesError> {
        let mut params = call.parameters.clone();
        let Some(obj) = params.as_object_mut() else {
            return Err(StatesError::runtime("Parameters must be an object"));
        };
        let parent = obj.get(kind.parent).and_then(Value::as_str).unwrap_or_default().to_string();
        let derived = !obj.contains_key(kind.name);
        if derived {
            // A retry first looks for a job an earlier attempt made (its answer may have been
            // lost): a live or finished one is adopted; only when all of them failed, or there
            // are none, does the retry make its own job under its own name.
            if call.attempt > 0 {
                let names: Vec<String> = (0..call.attempt)
                    .map(|a| derived_name(&call.execution, &call.state, call.visit, a))
                    .collect();
                let found = self.find_jobs(kind, &parent, &names).await?;
                if let Some(job) = found.iter().find(|j| !failed(&j.status)) {
                    info!(arn = %job.arn, name = %job.name, "adopted the job an earlier attempt made");
                    return Ok((job.arn.clone(), json!({ kind.arn: job.arn })));
                }
            }
            let name = derived_name(&call.execution, &call.state, call.visit, call.attempt);
            obj.insert(kind.name.into(), name.into());
        }
        let name = obj[kind.name].as_str().unwrap_or_default().to_string();
        match self.call_action(kind.create, &params).await {
            Ok(result) => {
                let arn = result[kind.arn].as_str().unwrap_or_default().to_string();
                Ok((arn, result))
            }
            // A name this execution chose or already sent (an earlier attempt of this visit,
            // or a call the process before a crash may have made): the job is ours, adopt it.
            Err(e)
                if e.error == "Personalize.ResourceAlreadyExistsException"
                    && (derived || call.resumed || call.attempt > 0) =>
            {
                let found = self.find_jobs(kind, &parent, std::slice::from_ref(&name)).await?;
                let job = found.into_iter().next().ok_or(e)?;
                info!(arn = %job.arn, name = %name, "adopted the job this execution created before");
                Ok((job.arn.clone(), json!({ kind.arn: job.arn })))
            }
            Err(e) => Err(e),
        }
    }

    /// The jobs under `parent` whose names are in `names`, in the order of `names`, through
    /// List* (and Describe for solution versions, whose summaries carry no name).
    async fn find_jobs(
        &self,
        kind: &JobKind,
        parent: &str,
        names: &[String],
    ) -> Result<Vec<FoundJob>, StatesError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = json!({ kind.parent: parent, "MaxResults": 100 });
            if let Some(t) = &token {
                req["NextToken"] = t.clone().into();
            }
            let page = self.call_action(kind.list, &req).await?;
            for summary in page[kind.summaries].as_array().into_iter().flatten() {
                let Some(arn) = summary[kind.arn].as_str() else { continue };
                let status = summary["Status"].as_str().unwrap_or_default().to_string();
                let name = match summary.get("JobName").and_then(Value::as_str) {
                    Some(n) => n.to_string(),
                    None => {
                        let d = self.call_action(kind.describe, &json!({ kind.arn: arn })).await?;
                        d[kind.wrapper]["Name"].as_str().unwrap_or_default().to_string()
                    }
                };
                if names.contains(&name) {
                    found.push(FoundJob { name, arn: arn.to_string(), status });
                }
            }
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        found.sort_by_key(|j| names.iter().position(|n| *n == j.name));
        Ok(found)
    }

    fn earlier(&self, call: &TaskCall) -> Vec<f64> {
        self.durations
            .as_ref()
            .map(|d| d.lock().unwrap_or_else(|p| p.into_inner()).earlier(&call.state_machine, &call.state))
            .unwrap_or_default()
    }

    async fn sync(&self, call: &TaskCall, kind: &JobKind, clock: &dyn Clock) -> Result<Answer, StatesError> {
        let now = clock.now();
        let poll = match &call.poll {
            // A retry after the job itself failed needs a new job, not another look at the
            // failed one; a retry after a failed Describe goes on polling the same job.
            Some(poll) if poll.token["Attempt"].as_u64().unwrap_or(0) < u64::from(call.attempt) => {
                let arn = poll.token["Arn"].as_str().unwrap_or_default();
                let d = self.call_action(kind.describe, &json!({ kind.arn: arn })).await?;
                if failed(d[kind.wrapper]["Status"].as_str().unwrap_or_default()) { None } else { Some(poll) }
            }
            other => other.as_ref(),
        };
        let Some(poll) = poll else {
            let (arn, _) = self.create(call, kind).await?;
            let token =
                json!({"Arn": arn, "CreatedAt": timestamp(now), "DescribeCalls": 0, "Attempt": call.attempt});
            let after = next_poll_delay(0.0, &self.earlier(call));
            return Ok(Answer::Poll { token, after_seconds: after, status: "CREATED".into() });
        };
        let arn = poll.token["Arn"].as_str().unwrap_or_default().to_string();
        let created = poll.token["CreatedAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.with_timezone(&Utc));
        let calls = poll.token["DescribeCalls"].as_u64().unwrap_or(0) + 1;
        let described = self.call_action(kind.describe, &json!({ kind.arn: arn })).await?;
        let job = &described[kind.wrapper];
        let status = job["Status"].as_str().unwrap_or_default().to_string();
        let elapsed = (now - created).num_milliseconds() as f64 / 1000.0;
        match status.as_str() {
            "ACTIVE" => {
                let job_seconds = self.job_seconds(job).unwrap_or(elapsed).min(elapsed);
                if let Some(d) = &self.durations {
                    let mut book = d.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = book.record(&call.state_machine, &call.state, job_seconds) {
                        tracing::warn!(error = %e, "could not record the job's duration");
                    }
                }
                let report = json!({
                    "DescribeCalls": calls,
                    "JobSeconds": round3(job_seconds),
                    "DetectionDelaySeconds": round3((elapsed - job_seconds).max(0.0)),
                });
                Ok(Answer::Done { output: described, report: Some(report) })
            }
            s if failed(s) => Err(StatesError::new(
                JOB_FAILED,
                format!(
                    "{} {arn} ended {status}: {}",
                    kind.wrapper,
                    job["FailureReason"].as_str().unwrap_or("no failure reason given")
                ),
            )),
            _ => {
                let mut token = poll.token.clone();
                token["DescribeCalls"] = calls.into();
                token["Attempt"] = call.attempt.into();
                let after = next_poll_delay(elapsed, &self.earlier(call));
                Ok(Answer::Poll { token, after_seconds: after, status })
            }
        }
    }

    /// The job's own duration from its timestamps, in the execution's seconds.
    fn job_seconds(&self, job: &Value) -> Option<f64> {
        let at = |key: &str| {
            job[key]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let seconds =
            (at("LastUpdatedDateTime")? - at("CreationDateTime")?).num_milliseconds() as f64 / 1000.0;
        Some(seconds * self.service_time_scale)
    }
}

/// A job found by name.
struct FoundJob {
    name: String,
    arn: String,
    status: String,
}

/// Whether a job's status means it ended without a result.
fn failed(status: &str) -> bool {
    matches!(status, "CREATE FAILED" | "CREATE STOPPED")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl TaskRunner for PersonalizeRunner {
    fn call<'a>(&'a self, call: &'a TaskCall, clock: &'a dyn Clock) -> TaskFuture<'a> {
        Box::pin(async move {
            let (action, sync) = parse_resource(&call.resource).ok_or_else(|| {
                StatesError::runtime(format!("'{}' is not a Personalize resource", call.resource))
            })?;
            match (job_kind(action), sync) {
                (Some(kind), true) => self.sync(call, kind, clock).await,
                (Some(kind), false) => Ok(Answer::done(self.create(call, kind).await?.1)),
                (None, _) => Ok(Answer::done(self.call_action(action, &call.parameters).await?)),
            }
        })
    }

    fn accepts(&self, _state: &str, resource: &str) -> bool {
        serves(resource)
    }
}

/// Sends a model-built body as `op` through the typed client and gives back the response body.
async fn send(
    client: &aws_sdk_personalize::Client,
    op: &Operation,
    body: Value,
) -> Result<Value, StatesError> {
    let capture = Capture::default();
    let bytes = serde_json::to_vec(&body).map_err(|e| StatesError::runtime(e.to_string()))?;
    let replace = move |req: &mut HttpRequest| {
        let len = bytes.len().to_string();
        *req.body_mut() = SdkBody::from(bytes.clone());
        req.headers_mut().insert("content-length", len);
    };
    macro_rules! dispatch {
        ($($name:literal => $method:ident),* $(,)?) => {
            match op.name.as_str() {
                $($name => client
                    .$method()
                    .customize()
                    .interceptor(capture.clone())
                    .mutate_request(replace)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error("Personalize", e))?,)*
                other => return Err(StatesError::runtime(format!("recflow does not call Personalize {other}"))),
            }
        };
    }
    dispatch! {
        "CreateBatchInferenceJob" => create_batch_inference_job,
        "CreateBatchSegmentJob" => create_batch_segment_job,
        "CreateCampaign" => create_campaign,
        "CreateDatasetImportJob" => create_dataset_import_job,
        "CreateSolutionVersion" => create_solution_version,
        "DescribeBatchInferenceJob" => describe_batch_inference_job,
        "DescribeBatchSegmentJob" => describe_batch_segment_job,
        "DescribeCampaign" => describe_campaign,
        "DescribeDataset" => describe_dataset,
        "DescribeDatasetGroup" => describe_dataset_group,
        "DescribeDatasetImportJob" => describe_dataset_import_job,
        "DescribeSolution" => describe_solution,
        "DescribeSolutionVersion" => describe_solution_version,
        "GetSolutionMetrics" => get_solution_metrics,
        "ListBatchInferenceJobs" => list_batch_inference_jobs,
        "ListBatchSegmentJobs" => list_batch_segment_jobs,
        "ListCampaigns" => list_campaigns,
        "ListDatasetGroups" => list_dataset_groups,
        "ListDatasetImportJobs" => list_dataset_import_jobs,
        "ListDatasets" => list_datasets,
        "ListRecipes" => list_recipes,
        "ListSolutionVersions" => list_solution_versions,
        "ListSolutions" => list_solutions,
        "StopSolutionVersionCreation" => stop_solution_version_creation,
        "UpdateCampaign" => update_campaign,
    }
    let raw = capture.0.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
    if raw.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&raw).map_err(|e| {
        StatesError::new(names::TASK_FAILED, format!("Personalize answered a body that is not JSON: {e}"))
    })
}

/// Keeps the raw response body of the call it is attached to.
#[derive(Clone, Default, Debug)]
struct Capture(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "recflow-capture-response"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.response().body().bytes().map(<[u8]>::to_vec);
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = body;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_recflow_calls_is_in_the_model() {
        let model = ServiceModel::personalize();
        for action in ACTIONS {
            assert!(model.operation(action).is_some(), "{action}");
        }
        for job in JOBS {
            assert!(
                ACTIONS.contains(&job.create)
                    && ACTIONS.contains(&job.describe)
                    && ACTIONS.contains(&job.list)
            );
        }
    }

    #[test]
    fn resources_and_parameters_are_checked() {
        let p = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(
            check(
                "arn:aws:states:::aws-sdk:personalize:describeSolutionVersion",
                Some(&p(r#"{"SolutionVersionArn.$": "$.a"}"#))
            ),
            vec![]
        );
        let typo = check("arn:aws:states:::aws-sdk:personalize:describeSolutionVersoin", None);
        assert!(typo[0].1.contains("did you mean 'describeSolutionVersion'"), "{typo:?}");
        let later = check("arn:aws:states:::aws-sdk:personalize:deleteSolution", None);
        assert!(later[0].1.starts_with("recflow does not call 'deleteSolution' yet"), "{later:?}");
        let sync = check("arn:aws:states:::aws-sdk:personalize:describeSolution.sync", None);
        assert!(sync[0].1.contains("'.sync' waits for a job"), "{sync:?}");
        let missing =
            check("arn:aws:states:::aws-sdk:personalize:createSolutionVersion.sync", Some(&p("{}")));
        assert_eq!(
            missing,
            vec![("SolutionArn".to_string(), "required by the service and missing".to_string())]
        );
    }
}
