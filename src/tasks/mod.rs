//! Task integrations keyed by Resource ARN: the scripted runner of `--mock`, the AWS SDK
//! integrations (Personalize, S3, EventBridge) and recflow's own tasks. The engine sees only the
//! [`crate::engine::TaskRunner`] trait.

pub mod aws;
pub mod events;
pub mod model;
pub mod names;
pub mod personalize;
pub mod picks;
pub mod picks_runner;
pub mod polling;
pub mod s3;
pub mod scripted;
pub mod status_events;

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::asl::errors::DefinitionError;
use crate::engine::task::Registry;

pub use scripted::{Scripted, ScriptedRunner};

/// Checks every Task state's Resource and static Parameters (or, in a JSONata state, Arguments)
/// against the integration that will serve it (Personalize against its service model; S3 and
/// EventBridge against the parameters recflow sends), in nested Parallel branches and Map
/// iterators too. A JSONata expression's value is known only at run time: its field's name is
/// checked, not its value. Resources of integrations recflow does not have are not checked here
/// (a run refuses them up front), but every Resource must be an ARN, as CreateStateMachine
/// demands. Each problem is located as `States.<state>.Parameters.<field>`
/// (`.Arguments.<field>`) or `States.<state>.Resource`.
pub fn check_definition(definition: &Value) -> Vec<DefinitionError> {
    let mut problems = Vec::new();
    check_states(definition, false, &mut problems);
    problems
}

fn is_jsonata(value: &Value, inherited: bool) -> bool {
    match value.get("QueryLanguage").and_then(Value::as_str) {
        Some(language) => language == "JSONata",
        None => inherited,
    }
}

fn check_states(scope: &Value, jsonata: bool, out: &mut Vec<DefinitionError>) {
    let jsonata = is_jsonata(scope, jsonata);
    let Some(states) = scope.get("States").and_then(Value::as_object) else { return };
    for (name, state) in states {
        let jsonata = is_jsonata(state, jsonata);
        for branch in state.get("Branches").and_then(Value::as_array).into_iter().flatten() {
            check_states(branch, jsonata, out);
        }
        for key in ["Iterator", "ItemProcessor"] {
            if let Some(inner) = state.get(key) {
                check_states(inner, jsonata, out);
            }
        }
        if state.get("Type").and_then(Value::as_str) != Some("Task") {
            continue;
        }
        let Some(resource) = state.get("Resource").and_then(Value::as_str) else { continue };
        if let Err(why) = arn_shape(resource) {
            out.push(DefinitionError::new(format!("States.{name}.Resource"), why));
            continue;
        }
        let (field_name, parameters) = if jsonata {
            match state.get("Arguments") {
                // A whole-field expression: nothing is known before the run.
                Some(Value::String(s)) if crate::asl::jsonata::expression_of(s).is_some() => continue,
                arguments => ("Arguments", arguments.map(as_parameters)),
            }
        } else {
            ("Parameters", state.get("Parameters").cloned())
        };
        let found = [personalize::check, s3::check, events::check, picks_runner::check]
            .iter()
            .flat_map(|check| check(resource, parameters.as_ref()))
            .collect::<Vec<_>>();
        for (field, message) in found {
            let at = match field.as_str() {
                "Resource" => format!("States.{name}.Resource"),
                "" => format!("States.{name}.{field_name}"),
                f => format!("States.{name}.{field_name}.{f}"),
            };
            out.push(DefinitionError::new(at, message.replace("Parameters", field_name)));
        }
    }
}

/// Whether a Task's Resource has an ARN's shape, `arn:<partition>:<service>:<region>:<account>:<resource>`
/// (region and account may be empty, as in `arn:aws:states:::personalize:createSolutionVersion.sync`).
/// CreateStateMachine refuses anything else ("Value is not a valid resource ARN"; Step Functions
/// developer guide, "Task workflow state", Resource field). A CloudFormation `${...}` placeholder
/// is named as such: DefinitionSubstitutions replace it before AWS sees the definition.
/// recflow's own integrations use the partition `recflow` (`arn:recflow:::picks:publish`), which
/// only recflow runs.
fn arn_shape(resource: &str) -> Result<(), String> {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if resource.starts_with("arn:recflow:") {
        return Ok(());
    }
    let partition_ok = |p: &str| p == "aws" || p.starts_with("aws-");
    let service_ok = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let account_ok = |a: &str| a.len() <= 12 && a.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["arn", partition, service, _region, account, rest]
            if partition_ok(partition) && service_ok(service) && account_ok(account) && !rest.is_empty() =>
        {
            Ok(())
        }
        _ if resource.contains("${") => Err(format!(
            "'{resource}' is not a valid resource ARN: it holds a CloudFormation placeholder, which \
             DefinitionSubstitutions replace before Step Functions sees the definition; give the ARN itself"
        )),
        _ => Err(format!(
            "'{resource}' is not a valid resource ARN (arn:<partition>:<service>:<region>:<account>:<resource>, \
             such as arn:aws:states:::aws-sdk:personalize:createSolutionVersion.sync); AWS refuses it when the state \
             machine is created"
        )),
    }
}

/// JSONata Arguments in the shape the checks read: a member given by an expression becomes a
/// `name.$` member (checked by name, resolved at run time); an expression inside a list is left
/// out.
fn as_parameters(arguments: &Value) -> Value {
    let expression = |v: &Value| v.as_str().is_some_and(|s| crate::asl::jsonata::expression_of(s).is_some());
    match arguments {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    if expression(v) { (format!("{k}.$"), v.clone()) } else { (k.clone(), as_parameters(v)) }
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().filter(|v| !expression(v)).map(as_parameters).collect())
        }
        other => other.clone(),
    }
}

/// Whether recflow has an integration for `resource` (without `--mock`): the Personalize actions
/// it calls, S3's, EventBridge's putEvents, and recflow's own tasks.
pub fn serves(resource: &str) -> bool {
    personalize::serves(resource)
        || s3::serves(resource)
        || resource == events::RESOURCE
        || RECFLOW_TASKS.contains(&resource)
}

/// recflow's own task resources.
pub const RECFLOW_TASKS: &[&str] = &[picks::RESOURCE];

/// The AWS integrations, ready for a run: Personalize (with `.sync`), S3 and EventBridge.
/// `durations` keeps `.sync` job durations for adaptive polling; `service_time_scale` is 1 on
/// AWS and the emulator's time scale for a local run (see [`personalize::PersonalizeRunner`]).
pub fn aws_registry(
    clients: &aws::Clients,
    durations: Option<Arc<Mutex<polling::JobDurations>>>,
    service_time_scale: f64,
) -> Registry {
    let mut registry = Registry::new();
    let mut pz = personalize::PersonalizeRunner::new(clients.personalize.clone())
        .with_service_time_scale(service_time_scale);
    if let Some(d) = durations {
        pz = pz.with_durations(d);
    }
    registry.register(personalize::PREFIX, Arc::new(pz));
    registry.register(s3::PREFIX, Arc::new(s3::S3Runner::new(clients.s3.clone())));
    registry.register(events::RESOURCE, Arc::new(events::EventsRunner::new(clients.events.clone())));
    registry
}

/// recflow's own tasks (`arn:recflow:::...`), which use the same AWS clients.
pub fn register_recflow_tasks(registry: &mut Registry, clients: &aws::Clients) {
    registry.register(picks::RESOURCE, Arc::new(picks_runner::PicksRunner::new(clients.s3.clone())));
}
