//! EventBridge event patterns, in the subset the local EventBridge matches rules with.
//!
//! A pattern is a JSON object whose fields name event fields. A field's pattern is either an
//! object (matched against the event's nested object) or a non-empty array of alternatives, any
//! of which may match:
//!
//! - an exact value: a string (case-sensitive), a number (compared as a number: `5` matches
//!   `5.0`), `true`/`false` or `null`;
//! - `{"prefix": "..."}`: a string value starting with it;
//! - `{"exists": true | false}`: the field is present with a leaf value, or is absent (an object or
//!   an empty array counts as absent: "exists matching only works on leaf nodes");
//! - `{"anything-but": ...}`: a present value equal to none of a value or an array of values, or
//!   `{"anything-but": {"prefix": "..."}}`: a string value not starting with it.
//!
//! Every field of the pattern must match (AND); an event value that is an array matches if any of
//! its elements matches, an array of objects if any element matches the nested pattern. Other
//! comparison operators (`numeric`, `cidr`, `suffix`, `wildcard`, `equals-ignore-case`, `$or`)
//! are refused when the pattern is read, never silently ignored.
//!
//! Source: Amazon EventBridge user guide, "Creating event patterns" and "Comparison operators for
//! use in event patterns" (docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html,
//! eb-create-pattern-operators.html).

use serde_json::{Map, Value};

/// A parsed, validated event pattern. Deserializes from a JSON object, or from a string holding
/// one (the form PutRule's `EventPattern` takes).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(try_from = "Value")]
pub struct EventPattern {
    fields: Vec<(String, Node)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Object(Vec<(String, Node)>),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(String),
    Exists(bool),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
}

/// Why a pattern cannot be used: `path` is the dotted field path (`detail.bucket.name`), empty
/// for the pattern as a whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event pattern{}: {reason}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
pub struct PatternError {
    /// The dotted path of the offending field.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

fn fail<T>(path: &str, reason: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError { path: path.to_string(), reason: reason.into() })
}

impl EventPattern {
    /// Reads `pattern`, a JSON object (or a string holding one). Errors name the first field
    /// that is not in the supported subset.
    pub fn parse(pattern: &Value) -> Result<EventPattern, PatternError> {
        let parsed;
        let pattern = match pattern {
            Value::String(text) => {
                parsed =
                    serde_json::from_str::<Value>(text).or_else(|e| fail("", format!("not JSON: {e}")))?;
                &parsed
            }
            other => other,
        };
        let Value::Object(map) = pattern else {
            return fail("", "must be a JSON object");
        };
        Ok(EventPattern { fields: parse_fields(map, "")? })
    }

    /// Whether `event` (an event envelope: `source`, `detail-type`, `detail`, ...) matches.
    pub fn matches(&self, event: &Value) -> bool {
        match_fields(&self.fields, event.as_object())
    }
}

impl TryFrom<Value> for EventPattern {
    type Error = PatternError;

    fn try_from(value: Value) -> Result<EventPattern, PatternError> {
        EventPattern::parse(&value)
    }
}

fn parse_fields(map: &Map<String, Value>, path: &str) -> Result<Vec<(String, Node)>, PatternError> {
    if map.is_empty() {
        return fail(path, "an empty object matches nothing in particular; name at least one field");
    }
    let mut fields = Vec::with_capacity(map.len());
    for (key, value) in map {
        let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        if key.starts_with('$') {
            return fail(&here, format!("{key} is not supported by the local EventBridge"));
        }
        let node = match value {
            Value::Object(nested) => Node::Object(parse_fields(nested, &here)?),
            Value::Array(alternatives) => Node::Leaf(parse_leaf(alternatives, &here)?),
            _ => return fail(&here, "must be an array of values or matchers, or an object"),
        };
        fields.push((key.clone(), node));
    }
    Ok(fields)
}

fn parse_leaf(alternatives: &[Value], path: &str) -> Result<Vec<Matcher>, PatternError> {
    if alternatives.is_empty() {
        return fail(path, "an empty array matches nothing");
    }
    alternatives.iter().map(|alternative| parse_matcher(alternative, path)).collect()
}

fn parse_matcher(alternative: &Value, path: &str) -> Result<Matcher, PatternError> {
    let map = match alternative {
        Value::Object(map) => map,
        Value::Array(_) => return fail(path, "arrays cannot nest in a pattern"),
        scalar => return Ok(Matcher::Exact(scalar.clone())),
    };
    let mut entries = map.iter();
    let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
        return fail(path, "a matcher object holds exactly one operator");
    };
    match (operator.as_str(), operand) {
        ("prefix", Value::String(prefix)) => Ok(Matcher::Prefix(prefix.clone())),
        ("prefix", _) => fail(path, "prefix takes a string"),
        ("exists", Value::Bool(exists)) => Ok(Matcher::Exists(*exists)),
        ("exists", _) => fail(path, "exists takes true or false"),
        ("anything-but", Value::String(_) | Value::Number(_)) => {
            Ok(Matcher::AnythingBut(vec![operand.clone()]))
        }
        ("anything-but", Value::Array(values)) => {
            if values.is_empty() {
                return fail(path, "anything-but takes a non-empty array");
            }
            if values.iter().any(|v| !(v.is_string() || v.is_number())) {
                return fail(path, "anything-but takes strings or numbers");
            }
            Ok(Matcher::AnythingBut(values.clone()))
        }
        ("anything-but", Value::Object(inner)) => match inner.get("prefix") {
            Some(Value::String(prefix)) if inner.len() == 1 => Ok(Matcher::AnythingButPrefix(prefix.clone())),
            _ => fail(path, "anything-but takes a value, an array of values, or {\"prefix\": \"...\"}"),
        },
        ("anything-but", _) => fail(path, "anything-but takes a value or an array of values"),
        (other, _) => fail(path, format!("the {other:?} operator is not supported by the local EventBridge")),
    }
}

fn match_fields(fields: &[(String, Node)], object: Option<&Map<String, Value>>) -> bool {
    fields.iter().all(|(key, node)| match_node(node, object.and_then(|o| o.get(key))))
}

fn match_node(node: &Node, value: Option<&Value>) -> bool {
    match node {
        Node::Object(fields) => match value {
            None => match_fields(fields, None),
            Some(Value::Object(nested)) => match_fields(fields, Some(nested)),
            Some(Value::Array(items)) => items.iter().any(|item| match_node(node, Some(item))),
            Some(_) => false,
        },
        Node::Leaf(matchers) => matchers.iter().any(|matcher| matcher.matches(value)),
    }
}

impl Matcher {
    fn matches(&self, value: Option<&Value>) -> bool {
        if let Matcher::Exists(wanted) = self {
            let present = match value {
                None | Some(Value::Object(_)) => false,
                Some(Value::Array(items)) => !items.is_empty(),
                Some(_) => true,
            };
            return present == *wanted;
        }
        match value {
            None => false,
            Some(Value::Array(items)) => items.iter().any(|item| self.matches_one(item)),
            Some(one) => self.matches_one(one),
        }
    }

    fn matches_one(&self, value: &Value) -> bool {
        match self {
            Matcher::Exact(expected) => same(expected, value),
            Matcher::Prefix(prefix) => value.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
            Matcher::Exists(_) => unreachable!("handled in matches"),
            Matcher::AnythingBut(excluded) => {
                !value.is_object() && !excluded.iter().any(|excluded| same(excluded, value))
            }
            Matcher::AnythingButPrefix(prefix) => {
                value.as_str().is_some_and(|s| !s.starts_with(prefix.as_str()))
            }
        }
    }
}

/// Equality as EventBridge compares values: numbers by value, everything else exactly.
fn same(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => pattern == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event() -> Value {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "000000000000",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::recflow-demo"],
            "detail": {
                "bucket": {"name": "recflow-demo"},
                "object": {"key": "picks/2026-01-01.json", "size": 42},
                "tags": ["a", "b"],
                "reason": null
            }
        })
    }

    fn matches(pattern: Value) -> bool {
        EventPattern::parse(&pattern).unwrap().matches(&s3_event())
    }

    #[test]
    fn exact_values_in_arrays_and_nested_objects() {
        assert!(matches(json!({"source": ["aws.s3"]})));
        assert!(matches(json!({"source": ["aws.ec2", "aws.s3"], "detail-type": ["Object Created"]})));
        assert!(!matches(json!({"source": ["aws.s3"], "detail-type": ["Object Deleted"]})));
        assert!(!matches(json!({"source": ["AWS.S3"]})), "case-sensitive");
        assert!(matches(json!({"detail": {"bucket": {"name": ["recflow-demo"]}}})));
        assert!(!matches(json!({"detail": {"bucket": {"name": ["other"]}}})));
        assert!(matches(json!({"detail": {"object": {"size": [42.0]}}})), "numbers by value");
        assert!(matches(json!({"detail": {"reason": [null]}})));
        assert!(!matches(json!({"detail": {"missing": ["x"]}})));
        // A nested pattern against a leaf value does not match.
        assert!(!matches(json!({"source": {"name": ["aws.s3"]}})));
    }

    #[test]
    fn an_event_array_matches_if_any_element_matches() {
        assert!(matches(json!({"resources": ["arn:aws:s3:::recflow-demo"]})));
        assert!(matches(json!({"detail": {"tags": ["b", "z"]}})));
        assert!(!matches(json!({"detail": {"tags": ["z"]}})));
        let event = json!({"detail": {"items": [{"id": "1"}, {"id": "2"}]}});
        let pattern = EventPattern::parse(&json!({"detail": {"items": {"id": ["2"]}}})).unwrap();
        assert!(pattern.matches(&event));
    }

    #[test]
    fn prefix_exists_and_anything_but() {
        assert!(matches(json!({"detail": {"object": {"key": [{"prefix": "picks/"}]}}})));
        assert!(!matches(json!({"detail": {"object": {"key": [{"prefix": "batch/"}]}}})));
        assert!(!matches(json!({"detail": {"object": {"size": [{"prefix": "4"}]}}})), "strings only");

        assert!(matches(json!({"detail": {"bucket": {"name": [{"exists": true}]}}})));
        assert!(!matches(json!({"detail": {"bucket": {"name": [{"exists": false}]}}})));
        assert!(matches(json!({"detail": {"version-id": [{"exists": false}]}})));
        assert!(!matches(json!({"detail": {"version-id": [{"exists": true}]}})));
        assert!(matches(json!({"detail": {"bucket": [{"exists": false}]}})), "leaf nodes only");
        assert!(matches(json!({"nothing": {"here": [{"exists": false}]}})), "a missing parent");

        assert!(matches(json!({"source": [{"anything-but": ["aws.ec2", "aws.sqs"]}]})));
        assert!(!matches(json!({"source": [{"anything-but": ["aws.ec2", "aws.s3"]}]})));
        assert!(!matches(json!({"source": [{"anything-but": "aws.s3"}]})));
        assert!(!matches(json!({"absent": [{"anything-but": "x"}]})), "needs a value");
        assert!(matches(json!({"detail": {"object": {"size": [{"anything-but": [41, 43]}]}}})));
        assert!(matches(json!({"detail-type": [{"anything-but": {"prefix": "Object Deleted"}}]})));
        assert!(!matches(json!({"detail-type": [{"anything-but": {"prefix": "Object"}}]})));
        // Alternatives are ORed.
        assert!(matches(json!({"source": [{"prefix": "aws.e"}, "aws.s3"]})));
    }

    #[test]
    fn a_string_pattern_is_parsed_like_put_rule_s() {
        let pattern = EventPattern::parse(&json!(r#"{"source": ["aws.s3"]}"#)).unwrap();
        assert!(pattern.matches(&s3_event()));
        let rule: EventPattern = serde_json::from_value(json!({"detail-type": ["Object Created"]})).unwrap();
        assert!(rule.matches(&s3_event()));
    }

    #[test]
    fn patterns_outside_the_subset_are_refused_with_their_path() {
        let err = |p: Value| EventPattern::parse(&p).unwrap_err();
        assert_eq!(err(json!({"detail": {"size": [{"numeric": [">", 0]}]}})).path, "detail.size");
        assert!(err(json!({"source": [{"suffix": ".png"}]})).reason.contains("suffix"));
        assert!(err(json!({"$or": [{"source": ["a"]}]})).reason.contains("$or"));
        assert!(err(json!({"source": "aws.s3"})).reason.contains("array"));
        assert!(err(json!({"source": []})).reason.contains("empty"));
        assert!(err(json!({})).reason.contains("empty"));
        assert!(err(json!(["aws.s3"])).reason.contains("object"));
        assert!(err(json!({"source": [{"prefix": "a", "exists": true}]})).reason.contains("exactly one"));
        assert!(err(json!({"source": [{"exists": "yes"}]})).reason.contains("true or false"));
        assert!(err(json!("{not json")).reason.contains("not JSON"));
        assert_eq!(
            err(json!({"detail": {"a": [{"cidr": "10.0.0.0/8"}]}})).to_string(),
            "event pattern at detail.a: the \"cidr\" operator is not supported by the local EventBridge"
        );
    }
}
