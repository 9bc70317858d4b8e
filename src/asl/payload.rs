//! Payload templates: `Parameters`, `ResultSelector` and `Credentials`. A key ending in `.$`
//! takes its value from a path or an intrinsic call, evaluated when the state runs; everything
//! else is copied as written. Templates are compiled once, when the definition is loaded.

use serde_json::{Map, Value};

use super::env::Env;
use super::errors::{DefinitionError, StatesError};
use super::intrinsics::Intrinsic;
use super::path::JsonPath;

#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A subtree with no `.$` key anywhere: copied as is.
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Path(JsonPath),
    Call(Box<Intrinsic>),
}

impl Template {
    pub fn parse(value: &Value, at: &str, errors: &mut Vec<DefinitionError>) -> Template {
        match value {
            Value::Object(map) if has_dynamic(value) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    let here = format!("{at}.{key}");
                    if let Some(name) = key.strip_suffix(".$") {
                        if map.contains_key(name) {
                            errors.push(DefinitionError::new(
                                &here,
                                format!("conflicts with field '{name}' in the same object"),
                            ));
                        }
                        fields.push((name.to_string(), Self::dynamic(v, &here, errors)));
                    } else {
                        fields.push((key.clone(), Self::parse(v, &here, errors)));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(items) if has_dynamic(value) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Self::parse(v, &format!("{at}[{i}]"), errors))
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    /// The value of a `key.$` field: a path, or an intrinsic function call.
    fn dynamic(value: &Value, at: &str, errors: &mut Vec<DefinitionError>) -> Template {
        let Value::String(text) = value else {
            errors.push(DefinitionError::new(
                at,
                "a field ending in '.$' must hold a JSONPath or an intrinsic function as a string",
            ));
            return Template::Literal(Value::Null);
        };
        let parsed = if text.starts_with('$') {
            JsonPath::parse(text).map(Template::Path)
        } else if Intrinsic::looks_like_call(text) {
            Intrinsic::parse(text).map(|call| Template::Call(Box::new(call)))
        } else {
            Err(format!(
                "'{text}' is neither a JSONPath (starting with '$') nor an intrinsic function (States.*)"
            ))
        };
        parsed.unwrap_or_else(|message| {
            errors.push(DefinitionError::new(at, message));
            Template::Literal(Value::Null)
        })
    }

    /// `field` names the template's field (`Parameters`, `ResultSelector`) in runtime errors.
    pub fn eval(
        &self,
        input: &Value,
        ctx: &Env,
        rng: &mut fastrand::Rng,
        field: &str,
    ) -> Result<Value, StatesError> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (key, t) in fields {
                    let value = match t {
                        Template::Path(path) => select(path, input, ctx, key, field)?,
                        other => other.eval(input, ctx, rng, field)?,
                    };
                    out.insert(key.clone(), value);
                }
                Ok(Value::Object(out))
            }
            Template::Array(items) => Ok(Value::Array(
                items.iter().map(|t| t.eval(input, ctx, rng, field)).collect::<Result<_, _>>()?,
            )),
            Template::Path(path) => select(path, input, ctx, "", field),
            Template::Call(call) => call.eval(input, ctx, rng),
        }
    }
}

fn select(path: &JsonPath, input: &Value, ctx: &Env, key: &str, field: &str) -> Result<Value, StatesError> {
    match path.select(input, ctx) {
        Some(v) => Ok(v.into_owned()),
        None => Err(StatesError::runtime(format!(
            "The JSONPath '{}' specified for the field '{key}.$' in {field} {}",
            path.as_str(),
            path.not_found(input, ctx)
        ))),
    }
}

fn has_dynamic(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k.ends_with(".$") || has_dynamic(v)),
        Value::Array(items) => items.iter().any(has_dynamic),
        _ => false,
    }
}
