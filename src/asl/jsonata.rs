//! JSONata in ASL (QueryLanguage "JSONata"): a string written `{% expression %}` in a JSONata
//! state's fields is an expression, anything else is a literal. Expressions are parsed once,
//! when the definition is loaded, and evaluated by jsonata-core with `$states` (input, result,
//! errorOutput, context) and the workflow variables in scope bound, plus the functions Step
//! Functions adds to JSONata (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`).
//!
//! Source: the developer guide's "Transforming data with JSONata in Step Functions" page, and
//! the executions recorded against AWS in tests/data/conformance/aws-recorded/jsonata-cases.jsonl.
//!
//! Evaluation is deterministic: `$now()` and `$millis()` give the transition's time and `$uuid()`
//! and `$random()` draw from the transition's seeded randomness, so a transition replayed after
//! a crash computes what it computed before.

use std::cell::{OnceCell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;

use chrono::{DateTime, SecondsFormat, Utc};
use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::value::{JArray, JValue};
use serde_json::{Map, Value};

use super::errors::{DefinitionError, StatesError, names};

/// An evaluation that runs longer than this fails with D1012 instead of stalling the process.
const TIMEOUT_MS: u64 = 10_000;

/// One parsed `{% ... %}` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The expression between the delimiters, trimmed, as AWS quotes it in error causes.
    source: String,
    ast: AstNode,
    /// The `$names` the text mentions (variables, `$states`, functions): only these are bound,
    /// so an expression pays for what it reads, not for every variable in scope.
    names: Vec<String>,
}

/// The functions Step Functions adds to JSONata, the built-ins recflow makes deterministic, and
/// `$eval`, which Step Functions leaves out ("use $parse instead": developer guide, "Transforming
/// data with JSONata").
const HOST_FUNCTIONS: [&str; 9] =
    ["now", "millis", "random", "uuid", "partition", "range", "hash", "parse", "eval"];

/// A JSONata state's field value: literals, expressions, and objects and arrays of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A subtree with no expression anywhere: copied as is.
    Literal(Value),
    Expr(Box<Expr>),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

/// Whether JSONata text may read `$states.context` (building it copies the execution input, so
/// it is built only for states that may): `$states.context`, or `$states` on its own.
pub fn reads_context(text: &str) -> bool {
    text.match_indices("$states").any(|(i, _)| {
        let rest = &text[i + "$states".len()..];
        rest.starts_with(".context")
            || !rest.starts_with(|c: char| c == '.' || c.is_alphanumeric() || c == '_')
    })
}

/// The expression inside `{% ... %}`, or None for a string that is not one.
pub fn expression_of(text: &str) -> Option<&str> {
    text.strip_prefix("{%")?.strip_suffix("%}")
}

impl Expr {
    /// Parses the text of a `{% ... %}` string; `Err` says what is wrong with it.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let Some(inner) = expression_of(text) else {
            return Err(format!("'{text}' is not a JSONata expression written as {{% ... %}}"));
        };
        if !inner.starts_with(char::is_whitespace) || !inner.ends_with(char::is_whitespace) {
            return Err(format!(
                "'{text}': write a JSONata expression with a space inside each delimiter, as {{% expression %}}"
            ));
        }
        let source = inner.trim();
        if source.is_empty() {
            return Err("the JSONata expression is empty".into());
        }
        let ast = jsonata_core::parser::parse(source)
            .map_err(|e| format!("'{source}' is not a valid JSONata expression: {e}"))?;
        Ok(Expr { source: source.to_string(), ast, names: dollar_names(source) })
    }

    /// The expression as written between the delimiters, trimmed (AWS quotes it so in causes).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression; `Ok(None)` is JSONata's "undefined" (no value).
    pub fn eval(&self, bindings: &Bindings<'_>, field: &str) -> Result<Option<Value>, StatesError> {
        let value = bindings.evaluate(self).map_err(|e| {
            query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' threw an error during evaluation. {}",
                self.source,
                aws_message(e.message())
            ))
        })?;
        to_json(&value).map_err(|why| {
            query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' returned an unsupported result type: {why}",
                self.source
            ))
        })
    }

    /// Evaluates an expression that must give a value.
    /// AWS's cause comes first, word for word; recflow adds what it can see of why after it.
    pub fn eval_defined(&self, bindings: &Bindings<'_>, field: &str) -> Result<Value, StatesError> {
        self.eval(bindings, field)?.ok_or_else(|| {
            let mut cause = format!(
                "The JSONata expression '{}' specified for the field '{field}' returned nothing (undefined).",
                self.source
            );
            for hint in bindings.why_undefined(self) {
                cause.push(' ');
                cause.push_str(&hint);
            }
            query_error(cause)
        })
    }
}

impl Template {
    /// Reads a field's value: strings written `{% ... %}` become expressions, wherever they are
    /// in objects and arrays. Parse errors are pushed with their place (`at`). A key ending in
    /// `.$` is an ordinary key here, as AWS has it (a recorded case outputs one literally).
    pub fn parse(value: &Value, at: &str, errors: &mut Vec<DefinitionError>) -> Template {
        match value {
            Value::String(s) if expression_of(s).is_some() => match Expr::parse(s) {
                Ok(expr) => Template::Expr(Box::new(expr)),
                Err(why) => {
                    errors.push(DefinitionError::new(at, why));
                    Template::Literal(Value::Null)
                }
            },
            Value::Object(map) if has_expression(value) => Template::Object(
                map.iter().map(|(k, v)| (k.clone(), Self::parse(v, &format!("{at}.{k}"), errors))).collect(),
            ),
            Value::Array(items) if has_expression(value) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Self::parse(v, &format!("{at}[{i}]"), errors))
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    /// The field's value. `field` names it in errors the way AWS does (`Output`, `Output/result`);
    /// an expression that gives nothing is States.QueryEvaluationError.
    pub fn eval(&self, bindings: &Bindings<'_>, field: &str) -> Result<Value, StatesError> {
        self.eval_at(bindings, &mut field.to_string())
    }

    /// `field` is the path so far, grown and cut back in place on the way down.
    fn eval_at(&self, bindings: &Bindings<'_>, field: &mut String) -> Result<Value, StatesError> {
        let len = field.len();
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Expr(e) => e.eval_defined(bindings, field),
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (key, t) in fields {
                    field.push('/');
                    field.push_str(key);
                    let value = t.eval_at(bindings, field)?;
                    field.truncate(len);
                    out.insert(key.clone(), value);
                }
                Ok(Value::Object(out))
            }
            Template::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, t) in items.iter().enumerate() {
                    write!(field, "[{i}]").expect("writing to a String");
                    out.push(t.eval_at(bindings, field)?);
                    field.truncate(len);
                }
                Ok(Value::Array(out))
            }
        }
    }
}

fn has_expression(value: &Value) -> bool {
    match value {
        Value::String(s) => expression_of(s).is_some(),
        Value::Object(map) => map.values().any(has_expression),
        Value::Array(items) => items.iter().any(has_expression),
        _ => false,
    }
}

/// States.QueryEvaluationError: a JSONata expression failed, or gave a value the field cannot take.
pub fn query_error(cause: impl Into<String>) -> StatesError {
    StatesError::new(names::QUERY_EVALUATION_ERROR, cause)
}

/// Every `$name` in a JSONata text, once each (in string literals too: binding one more name
/// than needed costs little, missing one would be a defect).
fn dollar_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for rest in text.split('$').skip(1) {
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if end > 0 && !names.iter().any(|n| n == &rest[..end]) {
            names.push(rest[..end].to_string());
        }
    }
    names
}

/// What an expression can read: `$states` (input, result, errorOutput, context) and the workflow
/// variables in scope, with the transition's time and randomness behind `$now`, `$millis`,
/// `$random` and `$uuid`. It borrows the values and converts each to JSONata's form only when an
/// expression first names it.
pub struct Bindings<'a> {
    input: &'a Value,
    result: Option<&'a Value>,
    error_output: Option<&'a Value>,
    /// The context object; Null when the state does not read it.
    context: &'a Value,
    variables: &'a Map<String, Value>,
    now: DateTime<Utc>,
    rng: Rc<RefCell<fastrand::Rng>>,
    input_value: OnceCell<JValue>,
    states_value: OnceCell<JValue>,
}

impl<'a> Bindings<'a> {
    /// `input` is `$states.input` (and `$`); `result` `$states.result`; `error_output`
    /// `$states.errorOutput`; `context` `$states.context` (absent when Null); `variables` those
    /// in scope; `seed` seeds `$random` and `$uuid`.
    pub fn new(
        input: &'a Value,
        result: Option<&'a Value>,
        error_output: Option<&'a Value>,
        context: &'a Value,
        variables: &'a Map<String, Value>,
        now: DateTime<Utc>,
        seed: u64,
    ) -> Self {
        Bindings {
            input,
            result,
            error_output,
            context,
            variables,
            now,
            rng: Rc::new(RefCell::new(fastrand::Rng::with_seed(seed))),
            input_value: OnceCell::new(),
            states_value: OnceCell::new(),
        }
    }

    fn input(&self) -> &JValue {
        self.input_value.get_or_init(|| jvalue(self.input))
    }

    fn states(&self) -> &JValue {
        self.states_value.get_or_init(|| {
            let mut states = indexmap::IndexMap::new();
            states.insert("input".to_string(), self.input().clone());
            if let Some(r) = self.result {
                states.insert("result".to_string(), jvalue(r));
            }
            if let Some(e) = self.error_output {
                states.insert("errorOutput".to_string(), jvalue(e));
            }
            if !self.context.is_null() {
                states.insert("context".to_string(), jvalue(self.context));
            }
            JValue::object(states)
        })
    }

    fn evaluate(&self, expr: &Expr) -> Result<JValue, EvaluatorError> {
        let mut context = Context::new();
        for name in &expr.names {
            if name == "states" {
                context.bind(name.clone(), self.states().clone());
            } else if let Some(value) = self.variables.get(name) {
                context.bind(name.clone(), jvalue(value));
            }
        }
        let options = EvaluatorOptions { timeout_ms: Some(TIMEOUT_MS), ..EvaluatorOptions::default() };
        let mut evaluator = Evaluator::with_options(context, options);
        for name in expr.names.iter().filter(|n| HOST_FUNCTIONS.contains(&n.as_str())) {
            self.register(&mut evaluator, name)?;
        }
        // The input of a JSONata state's expressions is the state input (`$` = `$states.input`).
        evaluator.evaluate(&expr.ast, self.input())
    }

    /// What may have made `expr` give nothing: a variable not in scope (with the nearest name
    /// that is), `$states.result` or `.errorOutput` where the state has none, JSONPath syntax.
    fn why_undefined(&self, expr: &Expr) -> Vec<String> {
        let mut hints = Vec::new();
        let source = expr.source.as_str();
        for name in &expr.names {
            let local = source.contains(&format!("${name} :=")) || source.contains(&format!("${name}:="));
            let called = source.contains(&format!("${name}("));
            if name == "states" || local || called || self.variables.contains_key(name) {
                continue;
            }
            let nearest = self
                .variables
                .keys()
                .map(|k| (strsim::levenshtein(k, name), k))
                .filter(|(d, _)| *d <= 2)
                .min();
            hints.push(match nearest {
                Some((_, k)) => format!("${name} is not a variable in scope here (did you mean ${k}?)."),
                None => format!(
                    "${name} is not a variable in scope here (a state's Assign takes effect as it leaves)."
                ),
            });
        }
        if source.contains("$states.result") && self.result.is_none() {
            hints.push(
                "$states.result exists only in a Task, Parallel or Map state's Output and Assign.".into(),
            );
        }
        if source.contains("$states.errorOutput") && self.error_output.is_none() {
            hints.push("$states.errorOutput exists only in a Catcher's Output and Assign.".into());
        }
        if source.contains("$$") || source.contains("States.") {
            hints.push(
                "JSONPath's $$ and intrinsic functions (States.*) are not JSONata: use $states.context and JSONata's functions."
                    .into(),
            );
        }
        hints
    }

    /// Registers host function `name` (one of [`HOST_FUNCTIONS`]).
    fn register(&self, ev: &mut Evaluator, name: &str) -> Result<(), EvaluatorError> {
        let now = self.now;
        match name {
            "now" => ev.register_fn_override("now", move |_: &[JValue]| {
                Ok(JValue::from(now.to_rfc3339_opts(SecondsFormat::Millis, true)))
            }),
            "millis" => ev.register_fn_override("millis", move |_: &[JValue]| {
                Ok(JValue::from_i64(now.timestamp_millis()))
            }),
            "random" => {
                let rng = self.rng.clone();
                ev.register_fn_override("random", move |args: &[JValue]| match args.first() {
                    None | Some(JValue::Undefined) => Ok(JValue::from_f64(rng.borrow_mut().f64())),
                    Some(seed) => match seed.as_f64() {
                        Some(s) if s.fract() == 0.0 => {
                            Ok(JValue::from_f64(fastrand::Rng::with_seed(s as u64).f64()))
                        }
                        _ => Err(arg_error("$random", "its seed must be an integer")),
                    },
                })
            }
            "uuid" => {
                let rng = self.rng.clone();
                ev.register_fn("uuid", move |_: &[JValue]| {
                    Ok(JValue::from(super::intrinsics::uuid(&mut rng.borrow_mut())))
                })
            }
            "partition" => ev.register_fn("partition", partition),
            "range" => ev.register_fn("range", range),
            "hash" => ev.register_fn("hash", hash),
            "parse" => ev.register_fn("parse", parse),
            "eval" => ev.register_fn_override("eval", |_: &[JValue]| {
                Err(EvaluatorError::EvaluationError("T1006: Attempted to invoke a non-function".into()))
            }),
            _ => Ok(()),
        }
    }
}

fn arg_error(function: &str, why: &str) -> EvaluatorError {
    EvaluatorError::EvaluationError(format!("{function}: {why}"))
}

/// `$partition(array, size)`: the array in chunks of `size` items, the last one shorter.
fn partition(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let (Some(items), Some(size)) =
        (args.first().and_then(JValue::as_array), args.get(1).and_then(JValue::as_f64))
    else {
        return Err(arg_error("$partition", "takes an array and a chunk size"));
    };
    if size < 1.0 || size.fract() != 0.0 {
        return Err(arg_error("$partition", "the chunk size must be a positive integer"));
    }
    Ok(JValue::array(items.chunks(size as usize).map(|c| JValue::array(c.to_vec())).collect()))
}

/// `$range(start, end, step)`: start, start + step, ... up to and including `end`.
fn range(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let numbers: Option<Vec<f64>> = args.iter().take(3).map(JValue::as_f64).collect();
    let Some([start, end, step]) = numbers.as_deref().and_then(|n| <[f64; 3]>::try_from(n).ok()) else {
        return Err(arg_error("$range", "takes three numbers: start, end and step"));
    };
    if step == 0.0 || !step.is_finite() {
        return Err(arg_error("$range", "the step must not be 0"));
    }
    let count = ((end - start) / step).floor();
    if count > 1_000_000.0 {
        return Err(arg_error("$range", "would give more than 1,000,000 items"));
    }
    let items = (0..=count.max(-1.0) as i64).map(|i| JValue::from_f64(start + i as f64 * step)).collect();
    Ok(JValue::array(items))
}

/// `$hash(value, algorithm)`: the hex digest, by States.Hash's algorithm names.
fn hash(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let (Some(data), Some(algorithm)) =
        (args.first().and_then(JValue::as_str), args.get(1).and_then(JValue::as_str))
    else {
        return Err(arg_error("$hash", "takes a string and an algorithm name"));
    };
    super::intrinsics::hash(algorithm, data.as_bytes()).map(JValue::from).ok_or_else(|| {
        arg_error(
            "$hash",
            &format!("unknown algorithm '{algorithm}' (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"),
        )
    })
}

/// `$parse(text)`: the JSON value the string holds.
fn parse(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let Some(text) = args.first().and_then(JValue::as_str) else {
        return Err(arg_error("$parse", "takes a string of JSON"));
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| arg_error("$parse", &format!("not JSON: {e}")))?;
    Ok(JValue::from(value))
}

/// jsonata-core's error message as jsonata-js (which AWS runs) words it: jsonata-core names the
/// function in T1006 ("Attempted to invoke a non-function: $f"), the reference does not.
fn aws_message(message: &str) -> &str {
    match message.rsplit_once(": $") {
        Some((head, _)) if message.starts_with("T1006:") => head,
        _ => message,
    }
}

/// A JSON value in JSONata's form, converted from a borrow (jsonata-core's `From` takes the
/// value: a clone first would allocate everything twice).
fn jvalue(value: &Value) -> JValue {
    match value {
        Value::Null => JValue::Null,
        Value::Bool(b) => JValue::Bool(*b),
        Value::Number(n) => JValue::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JValue::string(s.as_str()),
        Value::Array(items) => {
            let flat = !items.iter().any(Value::is_array);
            JValue::Array(JArray::new_flat(items.iter().map(jvalue).collect(), flat))
        }
        Value::Object(map) => JValue::object(map.iter().map(|(k, v)| (k.clone(), jvalue(v))).collect()),
    }
}

/// A JSONata value as JSON; None for undefined. Functions and regular expressions have no JSON
/// form: `Err` names them.
fn to_json(value: &JValue) -> Result<Option<Value>, String> {
    if value.is_undefined() {
        return Ok(None);
    }
    if value.is_function() || value.is_regex() {
        return Err("a function or regular expression is not JSON".into());
    }
    serde_json::to_value(value).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn eval(text: &str, input: Value) -> Result<Option<Value>, StatesError> {
        let mut variables = Map::new();
        variables.insert("x".into(), json!(41));
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let bindings = Bindings::new(&input, None, None, &Value::Null, &variables, now, 7);
        Expr::parse(text).unwrap().eval(&bindings, "Output")
    }

    #[test]
    fn expressions_need_their_delimiters_and_a_space_inside() {
        assert!(Expr::parse("{% 1 %}").is_ok());
        assert!(Expr::parse("{%1%}").unwrap_err().contains("space inside"));
        assert!(Expr::parse("{% $.a[?(@.p < 10)] %}").unwrap_err().contains("not a valid JSONata"));
        assert!(expression_of(" {% 1 %} ").is_none());
    }

    #[test]
    fn states_variables_and_numbers() {
        assert_eq!(eval("{% $states.input.a + $x %}", json!({"a": 1})).unwrap(), Some(json!(42)));
        assert_eq!(eval("{% $.a %}", json!({"a": 1.5})).unwrap(), Some(json!(1.5)));
        assert_eq!(eval("{% $nope %}", json!({})).unwrap(), None);
    }

    #[test]
    fn the_functions_aws_adds() {
        assert_eq!(eval("{% $partition([0,1,2,3], 3) %}", json!({})).unwrap(), Some(json!([[0, 1, 2], [3]])));
        assert_eq!(eval("{% $range(1, 9, 2) %}", json!({})).unwrap(), Some(json!([1, 3, 5, 7, 9])));
        assert_eq!(eval("{% $parse('{\"a\": [1]}') %}", json!({})).unwrap(), Some(json!({"a": [1]})));
        assert_eq!(
            eval("{% $hash('abc', 'SHA-256') %}", json!({})).unwrap(),
            Some(json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
        );
        assert_eq!(eval("{% $now() %}", json!({})).unwrap(), Some(json!("2026-01-01T00:00:00.000Z")));
        let a = eval("{% $uuid() %}", json!({})).unwrap();
        assert_eq!(a, eval("{% $uuid() %}", json!({})).unwrap(), "seeded: the same draw again");
        assert_eq!(eval("{% $random(3) = $random(3) %}", json!({})).unwrap(), Some(json!(true)));
    }

    #[test]
    fn errors_are_query_evaluation_errors_with_the_jsonata_code() {
        let err = eval("{% $randomSeeded(1) %}", json!({})).unwrap_err();
        assert_eq!(err.error, names::QUERY_EVALUATION_ERROR);
        assert!(err.cause.ends_with("T1006: Attempted to invoke a non-function"), "{}", err.cause);
        let err = eval("{% $eval('1 + 1') %}", json!({})).unwrap_err();
        assert!(
            err.cause.ends_with("T1006: Attempted to invoke a non-function"),
            "$eval is not in AWS's JSONata: {}",
            err.cause
        );
        assert!(err.cause.contains("'Output'"), "{}", err.cause);
    }
}
