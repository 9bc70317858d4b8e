//! `recflow export --target stepfunctions`: a definition rewritten into plain ASL that AWS Step
//! Functions accepts, with recflow's conveniences spelled out.
//!
//! # `.sync` Personalize creates
//!
//! Step Functions has no `.sync` form for Personalize (its AWS SDK integrations are
//! request-response only: developer guide, "AWS SDK service integrations"), and Personalize
//! publishes no job events, so the wait becomes a loop. A state `S` whose Resource is
//! `arn:aws:states:::aws-sdk:personalize:createX.sync` becomes a Parallel state `S` with one
//! branch:
//!
//! `S Create` (`aws-sdk:personalize:createX`, the original Parameters or Arguments) ->
//! `S Wait` -> `S Describe` (`aws-sdk:personalize:describeX`) -> `S Status` (Choice: `ACTIVE`
//! -> `S Done`, `CREATE FAILED` / `CREATE STOPPED` -> a Fail with `Personalize.JobFailed` and
//! the job's failureReason, anything else -> back to `S Wait`).
//!
//! Why a Parallel: a Fail state ends a whole execution, but inside a Parallel branch it fails
//! the Parallel state with its Error and Cause, which the Parallel's Retry and Catch see. So the
//! original Catch (kept on the Parallel, unchanged) catches a failed job exactly as it caught
//! recflow's `Personalize.JobFailed`, with the same ResultPath against the same input. The
//! original Retry is kept on `S Create` and on `S Describe` (a throttled or failed call is
//! repeated there, without a new job, as recflow's retry adopts the running job), and its
//! entries that match `Personalize.JobFailed` go on the Parallel, narrowed to that error: a
//! retry after a failed job runs the branch again and makes a new job, as recflow does.
//!
//! Data: the branch gets the state's effective input (InputPath, kept on the Parallel), so the
//! original Parameters read the same fields; `S Done` applies the original ResultSelector to the
//! Describe output (as a Pass state's Parameters, the same payload template). A Parallel's
//! result is the array of its branches' outputs, so in JSONPath the result goes to the original
//! ResultPath and a Pass state `S Result` (InputPath `<ResultPath>[0]`, ResultPath
//! `<ResultPath>`) puts the single element in its place and applies the original OutputPath; in
//! JSONata, `$states.result` in the state's Assign and Output becomes `$states.result[0]`.
//!
//! Names: Step Functions' `createX` needs the job's name (`JobName`, `Name` for solution
//! versions) where recflow derives one. The export adds `<state>-<UUID>` (`States.UUID()`,
//! JSONata `$uuid()`; the state name cut to 26 characters and made valid, so the whole fits
//! Personalize's 63 characters of `[a-zA-Z0-9-_]`), unique per call; a Parameters that names
//! the job keeps its name.
//!
//! Poll interval: [`poll_interval_seconds`], the adaptive schedule's gap with no earlier runs
//! at the start of a job (`tasks::polling::next_poll_delay(0, [])`, 60 s). A Wait cannot grow with
//! the elapsed time the way recflow's schedule does, so the export polls every 60 s: a job is
//! detected within 60 s of its end, never later than recflow's no-history bound of max(5% of
//! its duration, 60 s), at the cost of more Describe calls on long jobs (360 for a 6-hour job,
//! against recflow's 80; see the README's polling table).
//!
//! Fields with no plain-ASL equivalent on a `.sync` state (TimeoutSeconds and HeartbeatSeconds,
//! which bound the whole create-and-wait in recflow; Credentials; a JSONPath state's Assign,
//! whose paths would read the branch array) are refused, naming the state and field.
//!
//! # recflow-only tasks
//!
//! `arn:recflow:::picks:publish` (today's picks) streams the batch output from S3, which no
//! Step Functions integration does. Without [`ExportOptions::picks_lambda`] it is refused with
//! the state named. With it, the state calls that AWS Lambda function by its ARN as the
//! Resource (the developer guide's "Invoke Lambda" form that passes the state's Parameters or
//! Arguments as the event and returns the function's result as is), keeping Parameters,
//! ResultSelector, ResultPath, Retry and Catch. The function must take the picks task's
//! parameters, return its result and raise its errors by the same names
//! (`Recflow.PicksNoInput`, ...) for the Retry and Catch to mean the same; recflow does not ship
//! such a function.

use serde_json::{Map, Value, json};

use super::ExportError;
use crate::tasks::personalize::{self, JobKind};

/// How recflow-only tasks are exported.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The Lambda function (`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`)
    /// that stands in for `arn:recflow:::picks:publish`; None refuses picks states.
    pub picks_lambda: Option<String>,
}

/// Seconds between Describe calls in an exported `.sync` loop: the adaptive schedule's first
/// gap without earlier runs (60 s; see the module documentation).
pub fn poll_interval_seconds() -> u64 {
    crate::tasks::polling::next_poll_delay(0.0, &[]).round() as u64
}

/// Longest state name Step Functions accepts (developer guide, "States": 80 characters).
const MAX_STATE_NAME: usize = 80;
/// Room for the state name in a derived job name: 63 minus `-` and a 36-character UUID.
const JOB_NAME_PREFIX: usize = 63 - 37;

/// The definition (JSON, as written) in plain ASL for AWS Step Functions; every state that
/// cannot be exported is named in the error.
pub fn to_step_functions(definition: &Value, opts: &ExportOptions) -> Result<Value, ExportError> {
    if let Some(arn) = &opts.picks_lambda
        && !lambda_arn(arn)
    {
        return Err(ExportError(vec![format!(
            "--picks-lambda '{arn}': not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"
        )]));
    }
    let mut names = Vec::new();
    all_state_names(definition, &mut names);
    let mut out = definition.clone();
    let mut errors = Vec::new();
    let language = language_of(definition, "JSONPath");
    rewrite_machine(&mut out, language, opts, &mut names, &mut errors);
    if errors.is_empty() { Ok(out) } else { Err(ExportError(errors)) }
}

fn lambda_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    (7..=8).contains(&parts.len())
        && parts[..3] == ["arn", "aws", "lambda"]
        && parts[5] == "function"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && !parts[6].is_empty()
}

fn language_of<'a>(state: &'a Value, inherited: &'a str) -> &'a str {
    state["QueryLanguage"].as_str().unwrap_or(inherited)
}

fn all_state_names(machine: &Value, out: &mut Vec<String>) {
    let Some(states) = machine["States"].as_object() else { return };
    for (name, state) in states {
        out.push(name.clone());
        for branch in state["Branches"].as_array().into_iter().flatten() {
            all_state_names(branch, out);
        }
        if let Some(p) = state.get("ItemProcessor").or_else(|| state.get("Iterator")) {
            all_state_names(p, out);
        }
    }
}

fn rewrite_machine(
    machine: &mut Value,
    language: &str,
    opts: &ExportOptions,
    names: &mut Vec<String>,
    errors: &mut Vec<String>,
) {
    let Some(states) = machine.get_mut("States").and_then(Value::as_object_mut) else { return };
    let mut rewritten = Map::new();
    for (name, mut state) in std::mem::take(states) {
        let lang = language_of(&state, language).to_string();
        match state["Type"].as_str() {
            Some("Parallel") => {
                for branch in state["Branches"].as_array_mut().into_iter().flatten() {
                    rewrite_machine(branch, &lang, opts, names, errors);
                }
            }
            Some("Map") => {
                let key = if state.get("ItemProcessor").is_some() { "ItemProcessor" } else { "Iterator" };
                if let Some(p) = state.get_mut(key) {
                    rewrite_machine(p, &lang, opts, names, errors);
                }
            }
            Some("Task") => {
                let resource = state["Resource"].as_str().unwrap_or_default().to_string();
                if let Some(kind) = sync_create(&resource) {
                    match sync_loop(&name, &state, kind, &lang, names) {
                        Ok(states) => rewritten.extend(states),
                        Err(e) => errors.extend(e),
                    }
                    continue;
                }
                if resource == crate::tasks::picks::RESOURCE {
                    match &opts.picks_lambda {
                        Some(arn) => state["Resource"] = arn.clone().into(),
                        None => errors.push(format!(
                            "States.{name}.Resource: '{resource}' (today's picks) is recflow's own task and AWS Step Functions has nothing like it: give --picks-lambda ARN to call a Lambda function that publishes the picks instead"
                        )),
                    }
                } else if resource.starts_with("arn:recflow:") {
                    errors.push(format!(
                        "States.{name}.Resource: '{resource}' is recflow's own task, which AWS Step Functions cannot call"
                    ));
                }
            }
            _ => {}
        }
        rewritten.insert(name, state);
    }
    *states = rewritten;
}

fn sync_create(resource: &str) -> Option<&'static JobKind> {
    let action = resource.strip_prefix(personalize::PREFIX)?.strip_suffix(".sync")?;
    personalize::job_kind(action)
}

/// Fields of a `.sync` Task that the loop carries over (the rest are refused).
const CARRIED_JSONPATH: &[&str] =
    &["Type", "Resource", "Comment", "InputPath", "Parameters", "ResultSelector", "ResultPath", "OutputPath"];
const CARRIED_JSONATA: &[&str] = &["Type", "Resource", "Comment", "Arguments", "Assign", "Output"];
const CARRIED_BOTH: &[&str] = &["Retry", "Catch", "Next", "End", "QueryLanguage"];

/// The states that replace the `.sync` Task `name` (the Parallel under the same name first).
fn sync_loop(
    name: &str,
    task: &Value,
    kind: &JobKind,
    language: &str,
    names: &mut Vec<String>,
) -> Result<Map<String, Value>, Vec<String>> {
    let jsonata = language == "JSONata";
    let carried = if jsonata { CARRIED_JSONATA } else { CARRIED_JSONPATH };
    let fields = task.as_object().cloned().unwrap_or_default();
    let mut problems: Vec<String> = fields
        .keys()
        .filter(|k| !carried.contains(&k.as_str()) && !CARRIED_BOTH.contains(&k.as_str()))
        .map(|k| {
            format!("States.{name}.{k}: a .sync create becomes a Wait/Describe loop, which has no equivalent of {k}")
        })
        .collect();
    let step = |suffix: &str| format!("{name} {suffix}");
    let mut added = vec!["Create", "Wait", "Describe", "Status", "Done", "Failed"];
    let result_path = fields.get("ResultPath").cloned().unwrap_or_else(|| "$".into());
    let unwrap = !jsonata && !result_path.is_null();
    if unwrap {
        added.push("Result");
    }
    if !jsonata {
        added.push("Failed without reason");
    }
    for suffix in &added {
        let new = step(suffix);
        if new.len() > MAX_STATE_NAME {
            problems.push(format!(
                "States.{name}: the exported loop's state '{new}' is longer than Step Functions' {MAX_STATE_NAME} characters: shorten the state's name"
            ));
        } else if names.contains(&new) {
            problems
                .push(format!("States.{name}: the exported loop needs a state named '{new}', which exists"));
        }
        names.push(new);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let retry = fields.get("Retry").cloned();
    let mut create = json!({"Type": "Task", "Resource": format!("{}{}", personalize::PREFIX, kind.create)});
    let mut describe =
        json!({"Type": "Task", "Resource": format!("{}{}", personalize::PREFIX, kind.describe)});
    let prefix = job_name_prefix(name);
    if jsonata {
        let mut args = fields.get("Arguments").cloned().unwrap_or_else(|| json!({}));
        match args.as_object_mut() {
            Some(obj) if !obj.contains_key(kind.name) => {
                obj.insert(kind.name.into(), format!("{{% '{prefix}-' & $uuid() %}}").into());
            }
            Some(_) => {}
            // recflow names the job itself; Step Functions would call the create without a name.
            None => problems.push(format!(
                "States.{name}.Arguments: give the create's members as an object (with {n}), not one expression: the export must add {n} to it",
                n = kind.name
            )),
        }
        create["Arguments"] = args;
        describe["Arguments"] = json!({ kind.arn: format!("{{% $states.input.{} %}}", kind.arn) });
        describe["Output"] =
            format!("{{% {{'{arn}': $states.input.{arn}, 'Described': $states.result}} %}}", arn = kind.arn)
                .into();
    } else {
        let mut params = fields.get("Parameters").cloned().unwrap_or_else(|| json!({}));
        match params.as_object_mut() {
            Some(obj) if !obj.contains_key(kind.name) && !obj.contains_key(&format!("{}.$", kind.name)) => {
                obj.insert(
                    format!("{}.$", kind.name),
                    format!("States.Format('{prefix}-{{}}', States.UUID())").into(),
                );
            }
            Some(_) => {}
            None => problems
                .push(format!("States.{name}.Parameters: must be an object holding the create's members")),
        }
        create["Parameters"] = params;
        create["ResultSelector"] = json!({ format!("{}.$", kind.arn): format!("$.{}", kind.arn) });
        describe["Parameters"] = json!({ format!("{}.$", kind.arn): format!("$.{}", kind.arn) });
        describe["ResultPath"] = "$.Described".into();
    }
    if let Some(r) = &retry {
        create["Retry"] = r.clone();
        describe["Retry"] = r.clone();
    }
    create["Next"] = step("Wait").into();
    describe["Next"] = step("Status").into();
    let wait = json!({"Type": "Wait", "Seconds": poll_interval_seconds(), "Next": step("Describe")});
    let status = status_choice(kind, jsonata, &step);
    let (done, failed) = if jsonata {
        let job = format!("$states.input.Described.{}", kind.wrapper);
        (
            json!({"Type": "Pass", "Output": "{% $states.input.Described %}", "End": true}),
            json!({
                "Type": "Fail",
                "Error": personalize::JOB_FAILED,
                "Cause": format!(
                    "{{% '{w} ' & $states.input.{arn} & ' ended ' & {job}.Status & ': ' & ($exists({job}.FailureReason) ? {job}.FailureReason : 'no failure reason given') %}}",
                    w = kind.wrapper,
                    arn = kind.arn
                )
            }),
        )
    } else {
        let mut done = json!({"Type": "Pass", "InputPath": "$.Described", "End": true});
        if let Some(selector) = fields.get("ResultSelector") {
            done["Parameters"] = selector.clone();
        }
        (
            done,
            json!({
                "Type": "Fail",
                "Error": personalize::JOB_FAILED,
                "CausePath": format!(
                    "States.Format('{w} {{}} ended {{}}: {{}}', $.{arn}, $.Described.{w}.Status, $.Described.{w}.FailureReason)",
                    w = kind.wrapper,
                    arn = kind.arn
                )
            }),
        )
    };
    let mut branch_states = Map::new();
    branch_states.insert(step("Create"), create);
    branch_states.insert(step("Wait"), wait);
    branch_states.insert(step("Describe"), describe);
    branch_states.insert(step("Status"), status);
    branch_states.insert(step("Done"), done);
    branch_states.insert(step("Failed"), failed);
    if !jsonata {
        let cause = format!(
            "States.Format('{w} {{}} ended {{}}: no failure reason given', $.{arn}, $.Described.{w}.Status)",
            w = kind.wrapper,
            arn = kind.arn
        );
        branch_states.insert(
            step("Failed without reason"),
            json!({"Type": "Fail", "Error": personalize::JOB_FAILED, "CausePath": cause}),
        );
    }
    // A state's own QueryLanguage is not inherited by the states of its branches: repeat it.
    if let Some(q) = fields.get("QueryLanguage") {
        for state in branch_states.values_mut() {
            state["QueryLanguage"] = q.clone();
        }
    }
    let mut parallel = Map::new();
    parallel.insert("Type".into(), "Parallel".into());
    for key in ["Comment", "QueryLanguage", "InputPath"] {
        if let Some(v) = fields.get(key) {
            parallel.insert(key.into(), v.clone());
        }
    }
    parallel.insert(
        "Branches".into(),
        json!([{"StartAt": step("Create"), "States": Value::Object(branch_states)}]),
    );
    if jsonata {
        for key in ["Assign", "Output"] {
            if let Some(v) = fields.get(key) {
                parallel.insert(key.into(), first_result(v));
            }
        }
        // A Task without Output outputs its result; a Parallel would output `[result]`.
        if !fields.contains_key("Output") {
            parallel.insert("Output".into(), "{% $states.result[0] %}".into());
        }
    } else if unwrap {
        if result_path != "$" {
            parallel.insert("ResultPath".into(), result_path.clone());
        }
    } else {
        parallel.insert("ResultPath".into(), Value::Null);
        if let Some(v) = fields.get("OutputPath") {
            parallel.insert("OutputPath".into(), v.clone());
        }
    }
    if let Some(jobfailed) = retry.as_ref().and_then(job_failed_retriers) {
        parallel.insert("Retry".into(), jobfailed);
    }
    if let Some(c) = fields.get("Catch") {
        parallel.insert("Catch".into(), c.clone());
    }
    let mut out = Map::new();
    let ending = |target: &mut Map<String, Value>| {
        for key in ["Next", "End"] {
            if let Some(v) = fields.get(key) {
                target.insert(key.into(), v.clone());
            }
        }
    };
    if unwrap {
        let path = result_path.as_str().unwrap_or("$");
        let mut result = Map::new();
        result.insert("Type".into(), "Pass".into());
        result.insert("InputPath".into(), format!("{path}[0]").into());
        result.insert("ResultPath".into(), path.into());
        if let Some(v) = fields.get("OutputPath") {
            result.insert("OutputPath".into(), v.clone());
        }
        ending(&mut result);
        parallel.insert("Next".into(), step("Result").into());
        out.insert(name.into(), Value::Object(parallel));
        out.insert(step("Result"), Value::Object(result));
    } else {
        ending(&mut parallel);
        out.insert(name.into(), Value::Object(parallel));
    }
    Ok(out)
}

/// `S Status`: ACTIVE ends the branch, CREATE FAILED and CREATE STOPPED fail it (recflow's
/// `.sync` treats both as a failed job), anything else polls again.
fn status_choice(kind: &JobKind, jsonata: bool, step: &dyn Fn(&str) -> String) -> Value {
    if jsonata {
        let status = format!("$states.input.Described.{}.Status", kind.wrapper);
        json!({
            "Type": "Choice",
            "Choices": [
                {"Condition": format!("{{% {status} = 'ACTIVE' %}}"), "Next": step("Done")},
                {"Condition": format!("{{% {status} in ['CREATE FAILED', 'CREATE STOPPED'] %}}"), "Next": step("Failed")}
            ],
            "Default": step("Wait")
        })
    } else {
        let status = format!("$.Described.{}.Status", kind.wrapper);
        let failed = json!({"Or": [
            {"Variable": status, "StringEquals": "CREATE FAILED"},
            {"Variable": status, "StringEquals": "CREATE STOPPED"}
        ]});
        // Personalize may leave FailureReason out (a stopped version has none); a CausePath that
        // finds nothing would be States.Runtime, which no Catch catches.
        let reason =
            json!({"Variable": format!("$.Described.{}.FailureReason", kind.wrapper), "IsPresent": true});
        json!({
            "Type": "Choice",
            "Choices": [
                {"Variable": status, "StringEquals": "ACTIVE", "Next": step("Done")},
                {"And": [failed, reason], "Next": step("Failed")},
                {"And": [failed, {"Not": reason}], "Next": step("Failed without reason")}
            ],
            "Default": step("Wait")
        })
    }
}

/// The retriers that match `Personalize.JobFailed` (by name, `States.TaskFailed` or `States.ALL`), narrowed to it:
/// the Parallel's Retry. None when no retrier matches it.
fn job_failed_retriers(retry: &Value) -> Option<Value> {
    // Narrowed, they all name the one error, and only the first retrier that matches an error
    // ever applies (ASL's rule): the first is the Parallel's whole Retry.
    let first = retry.as_array()?.iter().find(|r| {
        r["ErrorEquals"].as_array().is_some_and(|names| {
            // recflow's `States.TaskFailed` matches a failed job too (asl/retry.rs).
            names
                .iter()
                .any(|n| n == personalize::JOB_FAILED || n == "States.ALL" || n == "States.TaskFailed")
        })
    })?;
    let mut narrowed = first.clone();
    narrowed["ErrorEquals"] = json!([personalize::JOB_FAILED]);
    Some(json!([narrowed]))
}

/// A JSONata Assign or Output with `$states.result` read from the Parallel's one-element array.
fn first_result(value: &Value) -> Value {
    match value {
        Value::String(s) => s.replace("$states.result", "$states.result[0]").into(),
        Value::Array(items) => items.iter().map(first_result).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), first_result(v))).collect(),
        other => other.clone(),
    }
}

/// The state name as the start of a Personalize job name: `[a-zA-Z0-9-_]`, starting with a
/// letter or digit, at most [`JOB_NAME_PREFIX`] characters.
fn job_name_prefix(state: &str) -> String {
    let mut prefix: String = state
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(JOB_NAME_PREFIX)
        .collect();
    if !prefix.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        prefix.replace_range(..1, "x");
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_name_prefixes_fit_personalize() {
        assert_eq!(job_name_prefix("Import data?"), "Import-data-");
        assert_eq!(job_name_prefix("_x"), "xx");
        assert_eq!(job_name_prefix(&"a".repeat(40)).len(), JOB_NAME_PREFIX);
    }

    #[test]
    fn lambda_arns_are_checked() {
        assert!(lambda_arn("arn:aws:lambda:eu-west-1:123456789012:function:picks"));
        assert!(lambda_arn("arn:aws:lambda:eu-west-1:123456789012:function:picks:live"));
        assert!(!lambda_arn("arn:aws:lambda:eu-west-1:123:function:picks"));
        assert!(!lambda_arn("picks"));
    }

    #[test]
    fn a_state_level_query_language_reaches_the_loop_states() {
        let definition = json!({
            "StartAt": "Train",
            "States": {"Train": {
                "Type": "Task",
                "QueryLanguage": "JSONata",
                "Resource": "arn:aws:states:::aws-sdk:personalize:createSolutionVersion.sync",
                "Arguments": {"SolutionArn": "{% $states.input.solutionArn %}"},
                "Output": "{% $states.result.SolutionVersion %}",
                "TimeoutSeconds": 60,
                "End": true
            }}
        });
        let refused = to_step_functions(&definition, &ExportOptions::default()).unwrap_err();
        assert_eq!(refused.0.len(), 1);
        assert!(refused.0[0].starts_with("States.Train.TimeoutSeconds: "), "{refused}");
        let mut definition = definition;
        definition["States"]["Train"].as_object_mut().unwrap().remove("TimeoutSeconds");
        let out = to_step_functions(&definition, &ExportOptions::default()).unwrap();
        let train = &out["States"]["Train"];
        assert_eq!(train["QueryLanguage"], "JSONata");
        assert_eq!(train["Output"], "{% $states.result[0].SolutionVersion %}");
        let states = train["Branches"][0]["States"].as_object().unwrap();
        assert_eq!(states.len(), 6);
        assert!(states.values().all(|s| s["QueryLanguage"] == "JSONata"), "{states:?}");
    }

    #[test]
    fn retriers_that_match_a_failed_job_go_on_the_parallel() {
        // In recflow a failed job is Personalize.JobFailed, which States.TaskFailed and
        // States.ALL match as well (asl/retry.rs): each such retrier makes a new job.
        let retry = json!([
            {"ErrorEquals": ["Personalize.JobFailed", "Personalize.InvalidInputException"], "MaxAttempts": 0},
            {"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 3}
        ]);
        assert_eq!(
            job_failed_retriers(&retry),
            Some(json!([{"ErrorEquals": ["Personalize.JobFailed"], "MaxAttempts": 0}]))
        );
        assert_eq!(
            job_failed_retriers(&json!([{"ErrorEquals": ["States.TaskFailed"]}])),
            Some(json!([{"ErrorEquals": ["Personalize.JobFailed"]}]))
        );
        assert_eq!(
            job_failed_retriers(&json!([{"ErrorEquals": ["Personalize.LimitExceededException"]}])),
            None
        );
    }

    /// A JSONata .sync state without Output still outputs the job, not a one-element array;
    /// a JSONPath job that failed without a FailureReason still reaches a Fail (not a
    /// CausePath that finds nothing, which would be an uncatchable States.Runtime).
    #[test]
    fn a_jsonata_state_without_output_and_a_failure_without_reason() {
        let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Train", "States": {"Train": {
            "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:createSolutionVersion.sync",
            "Arguments": {"SolutionArn": "{% $states.input.solutionArn %}"}, "End": true}}});
        let out = to_step_functions(&definition, &ExportOptions::default()).unwrap();
        assert_eq!(out["States"]["Train"]["Output"], "{% $states.result[0] %}");

        let definition = json!({"StartAt": "Train", "States": {"Train": {
            "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:createSolutionVersion.sync",
            "Parameters": {"SolutionArn.$": "$.solutionArn"}, "End": true}}});
        let out = to_step_functions(&definition, &ExportOptions::default()).unwrap();
        let states = &out["States"]["Train"]["Branches"][0]["States"];
        let choices = states["Train Status"]["Choices"].as_array().unwrap();
        assert_eq!(choices[2]["Next"], "Train Failed without reason");
        assert_eq!(states["Train Failed without reason"]["Type"], "Fail");
        assert!(
            !states["Train Failed without reason"]["CausePath"].as_str().unwrap().contains("FailureReason")
        );
    }
}
