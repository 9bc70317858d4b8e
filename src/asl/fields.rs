//! Reading one JSON object of a definition field by field, collecting every problem with its
//! location instead of stopping at the first. Serde's derive stops at the first error and cannot
//! say "only valid in a Task state"; this keeps messages exact for `recflow validate`.

use serde_json::{Map, Value};

use super::errors::DefinitionError;

/// The largest number ASL takes for a count of seconds or attempts (Seconds, TimeoutSeconds,
/// IntervalSeconds, MaxAttempts, MaxConcurrency): 99,999,999, about 3 years of seconds. The
/// engine holds dynamic values (SecondsPath, retry delays) to the same bound.
pub const MAX_SECONDS: u64 = 99_999_999;

pub(crate) struct Fields<'a> {
    pub at: String,
    map: &'a Map<String, Value>,
    pub errors: &'a mut Vec<DefinitionError>,
}

impl<'a> Fields<'a> {
    /// Ok when `value` is an object; otherwise records an error and gives None.
    pub fn of(
        value: &'a Value,
        at: impl Into<String>,
        errors: &'a mut Vec<DefinitionError>,
    ) -> Option<Fields<'a>> {
        let at = at.into();
        match value {
            Value::Object(map) => Some(Fields { at, map, errors }),
            other => {
                errors.push(DefinitionError::new(at, format!("must be an object, not {}", kind(other))));
                None
            }
        }
    }

    pub fn loc(&self, field: &str) -> String {
        if self.at.is_empty() { field.to_string() } else { format!("{}.{}", self.at, field) }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        let at = self.loc(field);
        self.errors.push(DefinitionError::new(at, message));
    }

    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field)
    }

    /// Records "unknown field" for every key not in `allowed`.
    pub fn only(&mut self, allowed: &[&str], what: &str) {
        let unknown: Vec<String> =
            self.map.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
        for key in unknown {
            self.error(&key, format!("unknown field, not allowed in {what}"));
        }
    }

    pub fn string(&mut self, field: &str) -> Option<&'a str> {
        match self.map.get(field) {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                let message = format!("must be a string, not {}", kind(other));
                self.error(field, message);
                None
            }
        }
    }

    pub fn required_string(&mut self, field: &str) -> Option<&'a str> {
        if !self.has(field) {
            self.error(field, "is required");
            return None;
        }
        self.string(field)
    }

    pub fn bool(&mut self, field: &str) -> Option<bool> {
        match self.map.get(field) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                let message = format!("must be true or false, not {}", kind(other));
                self.error(field, message);
                None
            }
        }
    }

    pub fn number(&mut self, field: &str) -> Option<f64> {
        match self.map.get(field) {
            None => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                let message = format!("must be a number, not {}", kind(other));
                self.error(field, message);
                None
            }
        }
    }

    /// A non-negative integer no larger than `max`, with `min` as the least allowed.
    pub fn integer(&mut self, field: &str, min: u64, max: u64) -> Option<u64> {
        match self.map.get(field) {
            None => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    self.error(field, format!("must be an integer from {min} to {max}, not {n}"));
                    None
                }
            },
            Some(other) => {
                let message = format!("must be an integer, not {}", kind(other));
                self.error(field, message);
                None
            }
        }
    }

    pub fn array(&mut self, field: &str) -> Option<&'a Vec<Value>> {
        match self.map.get(field) {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(other) => {
                let message = format!("must be an array, not {}", kind(other));
                self.error(field, message);
                None
            }
        }
    }

    /// Fields that may not appear together.
    pub fn exclusive(&mut self, a: &str, b: &str) {
        if self.has(a) && self.has(b) {
            self.error(b, format!("cannot be used together with {a}"));
        }
    }
}

/// The JSON type of a value, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
