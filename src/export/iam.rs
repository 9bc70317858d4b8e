//! `recflow iam-policy`: the least-privilege IAM policy for the task calls of workflows.
//!
//! Each Task's Resource gives the API actions it calls; each action's IAM name is the service
//! prefix and the API operation (Service Authorization Reference: Amazon Personalize, Amazon S3,
//! Amazon EventBridge, AWS Lambda). Resources are narrowed where the definition fixes them with
//! literals; a value computed at run time (`.$` paths, JSONata `{% %}`) leaves that part `*`.
//!
//! What recflow calls beyond a Task's own action:
//! - a Personalize create (with or without `.sync`) lists the jobs under its parent (List*)
//!   when it adopts a job an earlier attempt or a crashed process made, and reads a solution
//!   version's name with DescribeSolutionVersion (its summaries carry none);
//! - `.sync` polls the job's Describe action;
//! - today's picks lists the batch output (`s3:ListBucket`), reads it (`s3:GetObject`), writes
//!   the picks (`s3:PutObject`) and deletes a partial day it replaces (`s3:DeleteObject`).
//!
//! S3 operations map to the IAM actions S3 documents for them: HeadObject and GetObject need
//! `s3:GetObject`, ListObjectsV2 `s3:ListBucket` on the bucket, CopyObject `s3:GetObject` on the
//! source and `s3:PutObject` on the target (S3 API reference, "Permissions" of each operation).
//! A role passed to Personalize (`RoleArn`) needs `iam:PassRole` with the condition
//! `iam:PassedToService = personalize.amazonaws.com` (Personalize developer guide, "Giving
//! Amazon Personalize access to Amazon S3 resources").
//!
//! Not derived from workflows: S3 checkpoints (`--checkpoint-dir s3://...`) and status events
//! (`--events-bus`) belong to how recflow is deployed; the templates in deploy/ add them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::ExportError;
use crate::tasks::model::operation_name;
use crate::tasks::personalize;

/// Which engine makes the calls: recflow (its `.sync` polling and job adoption included) or AWS
/// Step Functions running an exported definition (each Task calls exactly its action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Recflow,
    StepFunctions,
}

/// One permission: an IAM action on a resource ARN (`*` when not fixed).
type Grant = (String, String);

/// The IAM actions (`service:Action`) the definitions' Tasks call, sorted, each once.
pub fn actions(definitions: &[&Value], caller: Caller) -> Result<Vec<String>, ExportError> {
    let grants = grants(definitions, caller)?;
    let set: BTreeSet<String> = grants.into_iter().map(|(a, _)| a).collect();
    Ok(set.into_iter().collect())
}

/// The policy document (`{"Version": "2012-10-17", "Statement": [...]}`): one statement per
/// set of resources, actions sorted, no wildcard actions; `iam:PassRole` in its own statement
/// with its condition. A Task whose calls are unknown is refused with its state named.
pub fn policy(definitions: &[&Value], caller: Caller) -> Result<Value, ExportError> {
    let grants = grants(definitions, caller)?;
    // Per action, the resources; `*` absorbs the rest.
    let mut per_action: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (action, resource) in grants {
        per_action.entry(action).or_default().insert(resource);
    }
    let mut per_resources: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut pass_role = None;
    for (action, mut resources) in per_action {
        if resources.contains("*") {
            resources = BTreeSet::from(["*".to_string()]);
        }
        // `arn:...:event-bus/*` covers `arn:...:event-bus/default`.
        let globs: Vec<String> =
            resources.iter().filter_map(|r| r.strip_suffix('*')).map(String::from).collect();
        resources.retain(|r| r.ends_with('*') || !globs.iter().any(|g| r.starts_with(g.as_str())));
        let resources: Vec<String> = resources.into_iter().collect();
        if action == "iam:PassRole" {
            pass_role = Some(resources);
        } else {
            per_resources.entry(resources).or_default().insert(action);
        }
    }
    let mut statements: Vec<Value> = per_resources
        .into_iter()
        .map(|(resources, actions)| json!({"Effect": "Allow", "Action": actions, "Resource": resources}))
        .collect();
    if let Some(resources) = pass_role {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": resources,
            "Condition": {"StringEquals": {"iam:PassedToService": "personalize.amazonaws.com"}}
        }));
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}))
}

fn grants(definitions: &[&Value], caller: Caller) -> Result<Vec<Grant>, ExportError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for definition in definitions {
        for (state, task) in super::task_states(definition) {
            match task_grants(task, caller) {
                Some(g) => out.extend(g),
                None => errors.push(format!(
                    "States.{state}.Resource: '{}': recflow does not know which IAM actions it needs",
                    task["Resource"].as_str().unwrap_or_default()
                )),
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(ExportError(errors)) }
}

/// A parameter of a Task as the definition gives it.
enum Param {
    Literal(String),
    Computed,
    Absent,
}

fn param(args: &Value, name: &str) -> Param {
    if args.get(format!("{name}.$")).is_some() {
        return Param::Computed;
    }
    match args.get(name) {
        None => Param::Absent,
        Some(Value::String(s)) if s.starts_with("{%") => Param::Computed,
        Some(Value::String(s)) => Param::Literal(s.clone()),
        Some(_) => Param::Computed,
    }
}

fn arguments(task: &Value) -> &Value {
    task.get("Parameters").or_else(|| task.get("Arguments")).unwrap_or(&Value::Null)
}

fn task_grants(task: &Value, caller: Caller) -> Option<Vec<Grant>> {
    let resource = task["Resource"].as_str()?;
    let args = arguments(task);
    if let Some(action) = resource.strip_prefix(personalize::PREFIX) {
        return Some(personalize_grants(action, args, caller));
    }
    if let Some(action) = resource.strip_prefix(crate::tasks::s3::PREFIX) {
        return s3_grants(action, args);
    }
    if resource == crate::tasks::events::RESOURCE {
        return Some(events_grants(args));
    }
    if resource == crate::tasks::picks::RESOURCE {
        let (bucket_out, objects_out) = s3_location(args, "BatchOutputPath");
        let (bucket_picks, objects_picks) = s3_location(args, "PicksPath");
        return Some(vec![
            ("s3:ListBucket".into(), bucket_out),
            ("s3:ListBucket".into(), bucket_picks),
            ("s3:GetObject".into(), objects_out),
            ("s3:GetObject".into(), objects_picks.clone()),
            ("s3:PutObject".into(), objects_picks.clone()),
            ("s3:DeleteObject".into(), objects_picks),
        ]);
    }
    if resource.starts_with("arn:aws:lambda:") {
        return Some(vec![("lambda:InvokeFunction".into(), resource.to_string())]);
    }
    None
}

fn personalize_grants(action: &str, args: &Value, caller: Caller) -> Vec<Grant> {
    let (action, sync) = match action.strip_suffix(".sync") {
        Some(a) => (a, true),
        None => (action, false),
    };
    let iam = |a: &str| format!("personalize:{}", operation_name(a));
    let kind = personalize::job_kind(action);
    // A create is authorized on the resource it makes, whose ARN is not known beforehand (and
    // not on the ARNs it is given: CreateCampaign's SolutionVersionArn is no campaign); a List
    // on its parent's type, which the Service Authorization Reference gives per action: `*`.
    let unknown = kind.is_some() || action.starts_with("create") || action.starts_with("list");
    let narrowed = if unknown { vec!["*".to_string()] } else { literal_arns(args) };
    let mut out: Vec<Grant> = narrowed.iter().map(|r| (iam(action), r.clone())).collect();
    if let (Some(kind), Caller::Recflow) = (kind, caller) {
        out.push((iam(kind.list), "*".into()));
        if sync || kind.name != "JobName" {
            out.push((iam(kind.describe), "*".into()));
        }
    }
    match param(args, "RoleArn") {
        Param::Literal(role) => out.push(("iam:PassRole".into(), role)),
        Param::Computed => out.push(("iam:PassRole".into(), "arn:aws:iam::*:role/*".into())),
        Param::Absent => {}
    }
    out
}

/// The ARNs a Personalize call names, when every `...Arn` parameter is a literal; else `*`.
fn literal_arns(args: &Value) -> Vec<String> {
    let Some(obj) = args.as_object() else { return vec!["*".into()] };
    let mut arns = Vec::new();
    for key in obj.keys() {
        let name = key.strip_suffix(".$").unwrap_or(key);
        if !name.ends_with("Arn") || name == "RoleArn" {
            continue;
        }
        match param(args, name) {
            Param::Literal(arn) => arns.push(arn),
            _ => return vec!["*".into()],
        }
    }
    if arns.is_empty() { vec!["*".into()] } else { arns }
}

fn s3_grants(action: &str, args: &Value) -> Option<Vec<Grant>> {
    let bucket = match param(args, "Bucket") {
        Param::Literal(b) => b,
        _ => "*".into(),
    };
    let key = match param(args, "Key") {
        Param::Literal(k) => k,
        _ => "*".into(),
    };
    let object = format!("arn:aws:s3:::{bucket}/{key}");
    Some(match action {
        "getObject" | "headObject" => vec![("s3:GetObject".into(), object)],
        "putObject" => vec![("s3:PutObject".into(), object)],
        "listObjectsV2" => vec![("s3:ListBucket".into(), format!("arn:aws:s3:::{bucket}"))],
        "copyObject" => {
            let source = match param(args, "CopySource") {
                Param::Literal(s) => format!("arn:aws:s3:::{}", s.trim_start_matches('/')),
                _ => "arn:aws:s3:::*/*".into(),
            };
            vec![("s3:GetObject".into(), source), ("s3:PutObject".into(), object)]
        }
        _ => return None,
    })
}

/// `s3://bucket/prefix` in a literal parameter: the bucket's ARN and its objects under the
/// prefix; computed or absent: any bucket.
fn s3_location(args: &Value, name: &str) -> (String, String) {
    match param(args, name) {
        Param::Literal(uri) => {
            let rest = uri.strip_prefix("s3://").unwrap_or(&uri);
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            (format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/{prefix}*"))
        }
        _ => ("arn:aws:s3:::*".into(), "arn:aws:s3:::*/*".into()),
    }
}

/// PutEvents on each entry's bus: a literal EventBusName (a name or an ARN), the default bus
/// when none is given, any bus when it is computed.
fn events_grants(args: &Value) -> Vec<Grant> {
    let bus = |name: &str| {
        if name.starts_with("arn:") {
            name.to_string()
        } else {
            format!("arn:aws:events:*:*:event-bus/{name}")
        }
    };
    let Some(entries) = args.get("Entries").and_then(Value::as_array) else {
        return vec![("events:PutEvents".into(), bus("*"))];
    };
    entries
        .iter()
        .map(|entry| {
            let resource = match param(entry, "EventBusName") {
                Param::Literal(name) => bus(&name),
                Param::Absent => bus("default"),
                Param::Computed => bus("*"),
            };
            ("events:PutEvents".into(), resource)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A create is authorized on what it makes: the ARNs it is given do not narrow it.
    #[test]
    fn a_create_given_literal_arns_is_granted_on_every_resource() {
        let definition = json!({"StartAt": "Campaign", "States": {"Campaign": {
            "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:createCampaign", "End": true,
            "Parameters": {"Name": "c", "SolutionVersionArn": "arn:aws:personalize:us-east-1:1:solution/s/v1"}}}});
        let policy = policy(&[&definition], Caller::Recflow).unwrap();
        let text = policy.to_string();
        assert!(text.contains("personalize:CreateCampaign"), "{text}");
        assert!(!text.contains("solution/s/v1"), "{text}");
    }
}
