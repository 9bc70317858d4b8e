//! Taking a workflow from recflow to AWS: the definition rewritten into plain Amazon States
//! Language that AWS Step Functions accepts ([`stepfunctions`]), wrapped in a CloudFormation
//! template ([`cloudformation`]), and the least-privilege IAM policy its task calls need
//! ([`iam`]).

pub mod cloudformation;
pub mod iam;
pub mod stepfunctions;

/// Why a definition cannot be exported: each problem names its state (`States.<name>`, nested
/// states by their own name, since names are unique across a state machine) and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ExportError(pub Vec<String>);

/// The Task states of a definition (JSON, as written), Parallel branches and Map processors
/// included, as (state name, state object), in definition order.
pub fn task_states(definition: &serde_json::Value) -> Vec<(&str, &serde_json::Value)> {
    let mut out = Vec::new();
    collect_tasks(definition, &mut out);
    out
}

fn collect_tasks<'a>(machine: &'a serde_json::Value, out: &mut Vec<(&'a str, &'a serde_json::Value)>) {
    let Some(states) = machine["States"].as_object() else { return };
    for (name, state) in states {
        match state["Type"].as_str() {
            Some("Task") => out.push((name.as_str(), state)),
            Some("Parallel") => {
                state["Branches"].as_array().into_iter().flatten().for_each(|b| collect_tasks(b, out))
            }
            Some("Map") => {
                let processor = state.get("ItemProcessor").or_else(|| state.get("Iterator"));
                if let Some(p) = processor {
                    collect_tasks(p, out);
                }
            }
            _ => {}
        }
    }
}
