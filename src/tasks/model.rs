//! Service models (botocore's JSON) driving the AWS SDK integrations the way Step Functions'
//! `arn:aws:states:::aws-sdk:<service>:<action>` does: Parameters and results use the model's
//! member names with the first letter upper-cased (`jobName` is `JobName`, `performHPO` is
//! `PerformHPO`), timestamps are ISO 8601 strings in results (`2026-11-29T02:00:00.000Z`), and a
//! parameter the model does not know is refused. The model also lets `validate` check a Task's
//! static Parameters before anything runs.
//!
//! Source: the Step Functions developer guide, "AWS SDK service integrations" (parameter and
//! result naming, "The field ... is not supported by Step Functions"); the shapes come from
//! `src/tasks/models/` (see its README).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::engine::execution::timestamp;

/// One operation: its PascalCase name and the names of its input and output shapes.
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    input: Option<String>,
    output: Option<String>,
}

#[derive(Debug, Clone)]
enum Shape {
    Structure {
        members: Vec<(String, String)>,
        required: Vec<String>,
    },
    List(String),
    Map(String),
    /// `min`/`max` are lengths in characters, as the model gives them.
    String {
        allowed: Option<Vec<String>>,
        min: Option<u64>,
        max: Option<u64>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Double,
    Boolean,
    Timestamp,
    Blob,
}

/// A parsed service model.
#[derive(Debug)]
pub struct ServiceModel {
    operations: HashMap<String, Operation>,
    shapes: HashMap<String, Shape>,
}

/// A Task parameter problem: the field inside Parameters (`DataSource.DataLocation`) and what is
/// wrong with it.
pub type FieldProblem = (String, String);

const PERSONALIZE: &str = include_str!("models/personalize.json");

/// Step Functions' name for a model member: the first letter upper-cased.
pub fn pascal(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The operation's PascalCase name for a Step Functions action (`createDatasetImportJob`).
pub fn operation_name(action: &str) -> String {
    pascal(action)
}

impl ServiceModel {
    /// Amazon Personalize's model, parsed once.
    pub fn personalize() -> &'static ServiceModel {
        static MODEL: OnceLock<ServiceModel> = OnceLock::new();
        MODEL.get_or_init(|| ServiceModel::parse(PERSONALIZE).expect("the shipped Personalize model parses"))
    }

    /// Parses botocore's `service-2.json` format. Errors name the shape that could not be read.
    pub fn parse(text: &str) -> Result<ServiceModel, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("service model: {e}"))?;
        let mut operations = HashMap::new();
        for (name, op) in doc["operations"].as_object().ok_or("service model: no operations")? {
            let shape_of = |key: &str| op[key]["shape"].as_str().map(str::to_string);
            operations.insert(
                name.clone(),
                Operation { name: name.clone(), input: shape_of("input"), output: shape_of("output") },
            );
        }
        let mut shapes = HashMap::new();
        for (name, shape) in doc["shapes"].as_object().ok_or("service model: no shapes")? {
            let target = |key: &str| {
                shape[key]["shape"].as_str().map(str::to_string).ok_or(format!("shape {name}: no {key}"))
            };
            let parsed = match shape["type"].as_str().unwrap_or_default() {
                "structure" => {
                    let members = shape["members"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| {
                                    (k.clone(), v["shape"].as_str().unwrap_or_default().to_string())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let required = shape["required"]
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default();
                    Shape::Structure { members, required }
                }
                "list" => Shape::List(target("member")?),
                "map" => Shape::Map(target("value")?),
                "string" => Shape::String {
                    allowed: shape["enum"]
                        .as_array()
                        .map(|e| e.iter().filter_map(Value::as_str).map(str::to_string).collect()),
                    min: shape["min"].as_u64(),
                    max: shape["max"].as_u64(),
                },
                "integer" | "long" => {
                    Shape::Integer { min: shape["min"].as_i64(), max: shape["max"].as_i64() }
                }
                "double" | "float" => Shape::Double,
                "boolean" => Shape::Boolean,
                "timestamp" => Shape::Timestamp,
                "blob" => Shape::Blob,
                other => return Err(format!("shape {name}: unknown type '{other}'")),
            };
            shapes.insert(name.clone(), parsed);
        }
        Ok(ServiceModel { operations, shapes })
    }

    /// The operation behind a Step Functions action name, if the service has it.
    pub fn operation(&self, action: &str) -> Option<&Operation> {
        self.operations.get(&operation_name(action))
    }

    /// Every action name as Step Functions spells it (`createDatasetImportJob`), sorted.
    pub fn actions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .operations
            .keys()
            .map(|op| {
                let mut c = op.chars();
                c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect();
        names.sort();
        names
    }

    /// Checks a Task's Parameters as written in the definition: unknown names (with the nearest
    /// known one), missing required members (except those in `derived`, which recflow fills in),
    /// and the types of literal values. Keys ending in `.$` are resolved at run time: only their
    /// names are checked.
    pub fn check_parameters(
        &self,
        op: &Operation,
        params: Option<&Value>,
        derived: &[&str],
    ) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        let Some(input) = &op.input else { return problems };
        let empty = Value::Object(Map::new());
        match params {
            Some(Value::Object(_)) | None => {
                self.check(input, params.unwrap_or(&empty), "", derived, &mut problems)
            }
            Some(_) => problems.push((String::new(), "Parameters must be an object".into())),
        }
        problems
    }

    fn check(&self, shape: &str, value: &Value, at: &str, derived: &[&str], out: &mut Vec<FieldProblem>) {
        let Some(kind) = self.shapes.get(shape) else { return };
        let here = |what: String| (at.to_string(), what);
        match (kind, value) {
            (Shape::Structure { members, required }, Value::Object(map)) => {
                for (key, v) in map {
                    let (name, dynamic) = match key.strip_suffix(".$") {
                        Some(n) => (n, true),
                        None => (key.as_str(), false),
                    };
                    let field = join(at, name);
                    match members.iter().find(|(m, _)| pascal(m) == name) {
                        Some((_, target)) if !dynamic => self.check(target, v, &field, &[], out),
                        Some(_) => {}
                        None => out.push((field, unknown_member(name, members))),
                    }
                }
                for member in required {
                    let name = pascal(member);
                    let given = map.contains_key(&name) || map.contains_key(&format!("{name}.$"));
                    let derived_here = at.is_empty() && derived.contains(&name.as_str());
                    if !(given || derived_here) {
                        out.push((join(at, &name), "required by the service and missing".into()));
                    }
                }
            }
            (Shape::Structure { .. }, other) => {
                out.push(here(format!("must be an object, not {}", type_of(other))))
            }
            (Shape::List(item), Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    self.check(item, v, &format!("{at}[{i}]"), &[], out);
                }
            }
            (Shape::List(_), other) => out.push(here(format!("must be a list, not {}", type_of(other)))),
            (Shape::Map(item), Value::Object(map)) => {
                for (k, v) in map {
                    self.check(item, v, &join(at, k.trim_end_matches(".$")), &[], out);
                }
            }
            (Shape::Map(_), other) => out.push(here(format!("must be an object, not {}", type_of(other)))),
            (Shape::String { allowed, min, max }, Value::String(s)) => {
                let len = s.chars().count() as u64;
                if let Some(allowed) = allowed.as_ref().filter(|a| !a.contains(s)) {
                    out.push(here(format!("'{s}' is not one of {}", allowed.join(", "))));
                } else if min.is_some_and(|m| len < m) || max.is_some_and(|m| len > m) {
                    let (lo, hi) = (min.unwrap_or(0), max.map_or("any".to_string(), |m| m.to_string()));
                    out.push(here(format!("must be {lo} to {hi} characters long, not {len}")));
                }
            }
            (Shape::Integer { min, max }, Value::Number(n)) if n.is_i64() || n.is_u64() => {
                let v = n.as_i64().unwrap_or(i64::MAX);
                if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
                    let lo = min.map_or("any".to_string(), |m| m.to_string());
                    let hi = max.map_or("any".to_string(), |m| m.to_string());
                    out.push(here(format!("must be from {lo} to {hi}, not {v}")));
                }
            }
            (Shape::Double, Value::Number(_)) | (Shape::Boolean, Value::Bool(_)) => {}
            (Shape::Timestamp, Value::Number(_)) | (Shape::Blob, Value::String(_)) => {}
            (Shape::Timestamp, Value::String(s)) if parse_time(s).is_some() => {}
            (kind, other) => out.push(here(format!("must be {}, not {}", kind_name(kind), type_of(other)))),
        }
    }

    /// Resolved Parameters to the request body the service reads (model member names, epoch
    /// seconds for timestamps). An unknown or ill-typed field is an error naming it, as Step
    /// Functions' "The field ... is not supported by Step Functions".
    pub fn to_wire(&self, op: &Operation, params: &Value) -> Result<Value, String> {
        match &op.input {
            Some(input) => self.wire(input, params, ""),
            None => Ok(Value::Object(Map::new())),
        }
    }

    fn wire(&self, shape: &str, value: &Value, at: &str) -> Result<Value, String> {
        let Some(kind) = self.shapes.get(shape) else { return Ok(value.clone()) };
        let wrong = |v: &Value| format!("{}: must be {}, not {}", display(at), kind_name(kind), type_of(v));
        Ok(match (kind, value) {
            (Shape::Structure { members, .. }, Value::Object(map)) => {
                let mut out = Map::new();
                for (key, v) in map {
                    let Some((member, target)) = members.iter().find(|(m, _)| pascal(m) == *key) else {
                        return Err(format!(
                            "The field \"{key}\" is not supported by Step Functions ({})",
                            unknown_member(key, members)
                        ));
                    };
                    out.insert(member.clone(), self.wire(target, v, &join(at, key))?);
                }
                Value::Object(out)
            }
            (Shape::List(item), Value::Array(items)) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.wire(item, v, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            (Shape::Map(item), Value::Object(map)) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.wire(item, v, &join(at, k))?)))
                    .collect::<Result<_, String>>()?,
            ),
            (Shape::Timestamp, Value::String(s)) => {
                let t = parse_time(s)
                    .ok_or_else(|| format!("{}: '{s}' is not an ISO 8601 timestamp", display(at)))?;
                Value::from(t.timestamp_millis() as f64 / 1000.0)
            }
            (Shape::String { .. } | Shape::Blob, Value::String(_))
            | (Shape::Double | Shape::Timestamp, Value::Number(_))
            | (Shape::Boolean, Value::Bool(_)) => value.clone(),
            (Shape::Integer { .. }, Value::Number(n)) if n.is_i64() || n.is_u64() => value.clone(),
            (_, Value::Null) => Value::Null,
            (_, other) => return Err(wrong(other)),
        })
    }

    /// A response body in Step Functions' result form: PascalCase members, ISO 8601 timestamps.
    pub fn from_wire(&self, op: &Operation, body: &Value) -> Value {
        match &op.output {
            Some(output) => self.result(output, body),
            None => Value::Object(Map::new()),
        }
    }

    fn result(&self, shape: &str, value: &Value) -> Value {
        match (self.shapes.get(shape), value) {
            (Some(Shape::Structure { members, .. }), Value::Object(map)) => Value::Object(
                map.iter()
                    .map(|(k, v)| match members.iter().find(|(m, _)| m == k) {
                        Some((_, target)) => (pascal(k), self.result(target, v)),
                        None => (pascal(k), v.clone()),
                    })
                    .collect(),
            ),
            (Some(Shape::List(item)), Value::Array(items)) => {
                Value::Array(items.iter().map(|v| self.result(item, v)).collect())
            }
            (Some(Shape::Map(item)), Value::Object(map)) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.result(item, v))).collect())
            }
            (Some(Shape::Timestamp), Value::Number(n)) => match n.as_f64().and_then(epoch) {
                Some(t) => Value::String(timestamp(t)),
                None => value.clone(),
            },
            _ => value.clone(),
        }
    }

    /// The PascalCase member names of an operation's output shape, recursively, for tests that
    /// hold results against the model: `{"DatasetImportJob": {"Status": {}}, ...}`.
    pub fn output_members(&self, op: &Operation) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        if let Some(output) = &op.output {
            self.collect_members(output, &mut out);
        }
        out
    }

    fn collect_members(&self, shape: &str, out: &mut BTreeMap<String, Vec<String>>) {
        if out.contains_key(shape) {
            return;
        }
        match self.shapes.get(shape) {
            Some(Shape::Structure { members, .. }) => {
                out.insert(shape.to_string(), members.iter().map(|(m, _)| pascal(m)).collect());
                for (_, target) in members {
                    self.collect_members(target, out);
                }
            }
            Some(Shape::List(item) | Shape::Map(item)) => self.collect_members(item, out),
            _ => {}
        }
    }
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() { name.to_string() } else { format!("{at}.{name}") }
}

fn display(at: &str) -> &str {
    if at.is_empty() { "Parameters" } else { at }
}

fn unknown_member(name: &str, members: &[(String, String)]) -> String {
    let known: Vec<String> = members.iter().map(|(m, _)| pascal(m)).collect();
    let nearest = known
        .iter()
        .map(|k| (strsim::levenshtein(&k.to_ascii_lowercase(), &name.to_ascii_lowercase()), k))
        .min()
        .filter(|(d, _)| *d <= 3);
    match nearest {
        Some((_, k)) => format!("unknown parameter '{name}'; did you mean '{k}'?"),
        None => format!("unknown parameter '{name}'; the service knows {}", known.join(", ")),
    }
}

fn kind_name(kind: &Shape) -> &'static str {
    match kind {
        Shape::Structure { .. } | Shape::Map(_) => "an object",
        Shape::List(_) => "a list",
        Shape::String { .. } | Shape::Blob => "a string",
        Shape::Integer { .. } => "an integer",
        Shape::Double => "a number",
        Shape::Boolean => "a boolean",
        Shape::Timestamp => "an ISO 8601 timestamp",
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn epoch(seconds: f64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn model() -> &'static ServiceModel {
        ServiceModel::personalize()
    }

    #[test]
    fn parameters_are_checked_against_the_model() {
        let op = model().operation("createDatasetImportJob").unwrap();
        let ok = json!({"JobName": "j", "DatasetArn.$": "$.arn", "DataSource": {"DataLocation.$": "$.s3"}, "ImportMode": "FULL"});
        assert_eq!(model().check_parameters(op, Some(&ok), &[]), vec![]);
        let typo = json!({"JobNmae": "j", "DatasetArn": "a", "DataSource": {"DataLocation": 3}, "ImportMode": "SOME"});
        let problems = model().check_parameters(op, Some(&typo), &[]);
        let text: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        assert!(
            text.contains(&"JobNmae: unknown parameter 'JobNmae'; did you mean 'JobName'?".to_string()),
            "{text:?}"
        );
        assert!(text.contains(&"JobName: required by the service and missing".to_string()), "{text:?}");
        assert!(
            text.contains(&"DataSource.DataLocation: must be a string, not a number".to_string()),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("ImportMode: 'SOME' is not one of")), "{text:?}");
        let long =
            json!({"JobName": "n".repeat(64), "DatasetArn": "a", "DataSource": {"DataLocation": "s3://b/k"}});
        let problems = model().check_parameters(op, Some(&long), &[]);
        assert_eq!(
            problems,
            vec![("JobName".to_string(), "must be 1 to 63 characters long, not 64".to_string())]
        );
        // A name recflow derives need not be given.
        let derived = json!({"DatasetArn": "a", "DataSource": {"DataLocation": "s3://b/k"}});
        assert_eq!(model().check_parameters(op, Some(&derived), &["JobName"]), vec![]);
    }

    #[test]
    fn wire_and_result_names_follow_step_functions() {
        let op = model().operation("createBatchInferenceJob").unwrap();
        let wire = model()
            .to_wire(op, &json!({"JobName": "j", "JobInput": {"S3DataSource": {"Path": "s3://b/in"}}, "NumResults": 10}))
            .unwrap();
        assert_eq!(
            wire,
            json!({"jobName": "j", "jobInput": {"s3DataSource": {"path": "s3://b/in"}}, "numResults": 10})
        );
        let err = model().to_wire(op, &json!({"JobNmae": "j"})).unwrap_err();
        assert!(err.starts_with("The field \"JobNmae\" is not supported by Step Functions"), "{err}");
        let err = model().to_wire(op, &json!({"NumResults": "ten"})).unwrap_err();
        assert_eq!(err, "NumResults: must be an integer, not a string");

        let op = model().operation("describeDatasetImportJob").unwrap();
        let result = model().from_wire(
            op,
            &json!({"datasetImportJob": {"jobName": "j", "status": "ACTIVE", "creationDateTime": 1.7646e9, "dataSource": {"dataLocation": "s3://b/k"}}}),
        );
        assert_eq!(
            result,
            json!({"DatasetImportJob": {"JobName": "j", "Status": "ACTIVE", "CreationDateTime": "2025-12-01T14:40:00.000Z", "DataSource": {"DataLocation": "s3://b/k"}}})
        );
    }

    #[test]
    fn metrics_keep_their_keys() {
        let op = model().operation("getSolutionMetrics").unwrap();
        let result =
            model().from_wire(op, &json!({"solutionVersionArn": "a", "metrics": {"precision_at_25": 0.1}}));
        assert_eq!(result, json!({"SolutionVersionArn": "a", "Metrics": {"precision_at_25": 0.1}}));
    }
}
