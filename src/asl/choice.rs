//! The rules of a Choice state: parsing one element of `Choices` (with every definition problem
//! reported at its location) and evaluating it against the state's effective input.
//!
//! Evaluation follows what AWS Step Functions does, as recorded in the conformance corpus: a
//! comparison whose Variable holds a value of another type is simply false (NumericEquals on a
//! string, BooleanEquals on null, ...), numbers compare by value (`1 == 1.0`), and `Is*: false`
//! is the negation of the test. Only a Variable (or `...Path` operand) that does not exist fails,
//! with `States.Runtime`; IsPresent is the one operator that tests presence instead.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Number, Value};

use super::env::Env;
use super::errors::{DefinitionError, StatesError};
use super::jsonata;
use super::path::JsonPath;
use super::query::{Payload, QueryLanguage};

/// One element of a Choice state's `Choices`: when `condition` holds, go to `next`, setting the
/// rule's `assign` variables (and, in JSONata, giving its `output`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub next: String,
    pub condition: Condition,
    pub assign: Option<Payload>,
    pub output: Option<jsonata::Template>,
}

/// A Boolean expression of a choice rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// JSONata: `"Condition": true` or `"Condition": "{% ... %}"`, evaluated by the engine.
    Jsonata(Box<jsonata::Template>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    /// `"Variable": "$.x", "<op>": <operand>`.
    Compare {
        variable: JsonPath,
        op: Operator,
        operand: Operand,
    },
}

/// The comparison operators, without the `Path` suffix (that lives in [`Operand`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    String(Cmp),
    StringMatches,
    Numeric(Cmp),
    BooleanEquals,
    Timestamp(Cmp),
    /// `IsNull`, `IsPresent`, ...; the operand is the Boolean the test must give.
    Is(TypeTest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeTest {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

/// The right-hand side of a comparison: a literal, checked against the operator's type when the
/// definition is parsed, or (for a `...Path` operator) a reference path read at evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    Path(JsonPath),
}

impl Cmp {
    const ALL: [(&'static str, Cmp); 5] = [
        ("Equals", Cmp::Equals),
        ("LessThan", Cmp::LessThan),
        ("GreaterThan", Cmp::GreaterThan),
        ("LessThanEquals", Cmp::LessThanEquals),
        ("GreaterThanEquals", Cmp::GreaterThanEquals),
    ];

    fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Equals => ord.is_eq(),
            Cmp::LessThan => ord.is_lt(),
            Cmp::GreaterThan => ord.is_gt(),
            Cmp::LessThanEquals => ord.is_le(),
            Cmp::GreaterThanEquals => ord.is_ge(),
        }
    }
}

impl Operator {
    /// The operator a field name stands for, and whether it is the `...Path` form.
    /// StringMatches and the `Is*` tests have no `Path` form in ASL.
    fn from_field(field: &str) -> Option<(Operator, bool)> {
        let (base, is_path) = match field.strip_suffix("Path") {
            Some(base) => (base, true),
            None => (field, false),
        };
        let ordered = |prefix: &str| {
            let rest = base.strip_prefix(prefix)?;
            Cmp::ALL.iter().find(|(name, _)| *name == rest).map(|&(_, cmp)| cmp)
        };
        let op = if let Some(cmp) = ordered("String") {
            Operator::String(cmp)
        } else if let Some(cmp) = ordered("Numeric") {
            Operator::Numeric(cmp)
        } else if let Some(cmp) = ordered("Timestamp") {
            Operator::Timestamp(cmp)
        } else {
            match base {
                "BooleanEquals" => Operator::BooleanEquals,
                _ if is_path => return None,
                "StringMatches" => Operator::StringMatches,
                "IsNull" => Operator::Is(TypeTest::Null),
                "IsPresent" => Operator::Is(TypeTest::Present),
                "IsNumeric" => Operator::Is(TypeTest::Numeric),
                "IsString" => Operator::Is(TypeTest::String),
                "IsBoolean" => Operator::Is(TypeTest::Boolean),
                "IsTimestamp" => Operator::Is(TypeTest::Timestamp),
                _ => return None,
            }
        };
        Some((op, is_path))
    }

    /// What a literal operand must be, as said in an error ("must be a number").
    fn literal_kind(self) -> &'static str {
        match self {
            Operator::String(_) | Operator::StringMatches => "a string",
            Operator::Numeric(_) => "a number",
            Operator::BooleanEquals | Operator::Is(_) => "a boolean",
            Operator::Timestamp(_) => "a timestamp string such as \"2016-03-14T01:59:00Z\"",
        }
    }

    fn accepts_literal(self, value: &Value) -> bool {
        match self {
            Operator::String(_) | Operator::StringMatches => value.is_string(),
            Operator::Numeric(_) => value.is_number(),
            Operator::BooleanEquals | Operator::Is(_) => value.is_boolean(),
            Operator::Timestamp(_) => value.as_str().and_then(parse_timestamp).is_some(),
        }
    }

    /// The comparison itself, once both sides are known. A value of another type than the
    /// operator's makes it false, as on AWS (no error).
    fn test(self, variable: &Value, operand: &Value) -> bool {
        match (self, variable, operand) {
            (Operator::String(cmp), Value::String(a), Value::String(b)) => cmp.holds(a.cmp(b)),
            (Operator::StringMatches, Value::String(a), Value::String(pattern)) => string_matches(a, pattern),
            (Operator::Numeric(cmp), Value::Number(a), Value::Number(b)) => {
                compare_numbers(a, b).is_some_and(|ord| cmp.holds(ord))
            }
            (Operator::BooleanEquals, Value::Bool(a), Value::Bool(b)) => a == b,
            (Operator::Timestamp(cmp), Value::String(a), Value::String(b)) => {
                match (parse_timestamp(a), parse_timestamp(b)) {
                    (Some(a), Some(b)) => cmp.holds(a.cmp(&b)),
                    _ => false,
                }
            }
            (Operator::Is(test), value, Value::Bool(expected)) => {
                let holds = match test {
                    // Reached only for a present value (see `Condition::eval`).
                    TypeTest::Present => true,
                    TypeTest::Null => value.is_null(),
                    TypeTest::Numeric => value.is_number(),
                    TypeTest::String => value.is_string(),
                    TypeTest::Boolean => value.is_boolean(),
                    TypeTest::Timestamp => value.as_str().and_then(parse_timestamp).is_some(),
                };
                holds == *expected
            }
            _ => false,
        }
    }
}

impl Condition {
    /// Evaluates against the state's effective input and the context object.
    /// A Variable or `...Path` operand that does not exist fails with `States.Runtime`,
    /// except under IsPresent, which tests exactly that.
    pub fn eval(&self, input: &Value, ctx: &Env) -> Result<bool, StatesError> {
        match self {
            // Short-circuit like AWS's And/Or: later rules are not read once the result is known.
            Condition::And(all) => {
                for c in all {
                    if !c.eval(input, ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(any) => {
                for c in any {
                    if c.eval(input, ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(c) => Ok(!c.eval(input, ctx)?),
            Condition::Jsonata(_) => Err(StatesError::runtime(
                "a JSONata Condition is evaluated by the engine, not as a JSONPath rule",
            )),
            Condition::Compare { variable, op, operand } => {
                let value = variable.select(input, ctx);
                if *op == Operator::Is(TypeTest::Present) {
                    return Ok(match operand {
                        Operand::Literal(Value::Bool(expected)) => value.is_some() == *expected,
                        _ => false,
                    });
                }
                let value = value.ok_or_else(|| invalid_path(variable))?;
                match operand {
                    Operand::Literal(literal) => Ok(op.test(&value, literal)),
                    Operand::Path(path) => {
                        let other = path.select(input, ctx).ok_or_else(|| invalid_path(path))?;
                        Ok(op.test(&value, &other))
                    }
                }
            }
        }
    }
}

fn invalid_path(path: &JsonPath) -> StatesError {
    StatesError::runtime(format!(
        "Invalid path '{}': The choice state's condition path references an invalid value.",
        path.as_str()
    ))
}

/// Compares two JSON numbers by value: exactly when both are integers, as doubles otherwise.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// An ASL timestamp: RFC 3339 with an uppercase `T` between date and time and an uppercase `Z`
/// when there is no numeric offset (chrono alone would also take `t`, `z` and a space).
fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    super::timestamp::parse(s)
}

/// One unit of a StringMatches pattern.
#[derive(Clone, Copy, PartialEq)]
enum Glob {
    Star,
    Char(char),
}

/// The pattern unit starting at byte `at`, and where the next one starts. `\*` is a literal
/// star and `\\` a literal backslash; any other backslash stands for itself.
fn glob_at(pattern: &str, at: usize) -> Option<(Glob, usize)> {
    let mut chars = pattern[at..].chars();
    let unit = match chars.next()? {
        '*' => (Glob::Star, at + 1),
        '\\' => match chars.next() {
            Some(c @ ('*' | '\\')) => (Glob::Char(c), at + 2),
            _ => (Glob::Char('\\'), at + 1),
        },
        c => (Glob::Char(c), at + c.len_utf8()),
    };
    Some(unit)
}

/// StringMatches: `*` matches any run of characters. Greedy with one backtrack point (the
/// latest star), which is enough for patterns whose only wildcard is `*`; no allocation.
fn string_matches(text: &str, pattern: &str) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a star: where the pattern resumes, and the text position that star has consumed up to.
    let mut retry: Option<(usize, usize)> = None;
    loop {
        match glob_at(pattern, p) {
            Some((Glob::Star, next)) => {
                retry = Some((next, t));
                p = next;
                continue;
            }
            Some((Glob::Char(c), next)) if text[t..].starts_with(c) => {
                p = next;
                t += c.len_utf8();
                continue;
            }
            None if t == text.len() => return true,
            _ => {}
        }
        // Mismatch: let the latest star swallow one more character, or fail.
        match retry {
            Some((resume, swallowed)) => match text[swallowed..].chars().next() {
                Some(c) => {
                    let swallowed = swallowed + c.len_utf8();
                    retry = Some((resume, swallowed));
                    p = resume;
                    t = swallowed;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// Parses one element of a Choice state's `Choices` array. `at` is its location, e.g.
/// `States.Route.Choices[0]`; nested rules extend it (`States.Route.Choices[0].And[1].Not`).
/// Top-level rules must have `Next`; nested ones (inside And/Or/Not) must not.
/// Every problem found is reported, each at `<location>.<Field>`.
pub fn parse_choice_rule(
    value: &Value,
    at: &str,
    language: QueryLanguage,
) -> Result<ChoiceRule, Vec<DefinitionError>> {
    let mut errors = Vec::new();
    let assign = value
        .get("Assign")
        .and_then(|v| Payload::parse_assign(v, &format!("{at}.Assign"), language, &mut errors));
    if language == QueryLanguage::Jsonata {
        return parse_jsonata_rule(value, at, assign, errors);
    }
    for field in ["Condition", "Output"] {
        if value.get(field).is_some() {
            errors.push(DefinitionError::new(
                format!("{at}.{field}"),
                "is a JSONata field, not allowed in a JSONPath Choice state: add \"QueryLanguage\": \"JSONata\"",
            ));
        }
    }
    // Assign, Condition and Output are checked above; the condition is the rest.
    let rest = match value {
        Value::Object(map) if ["Assign", "Condition", "Output"].iter().any(|k| map.contains_key(*k)) => {
            let mut map = map.clone();
            map.retain(|k, _| !matches!(k.as_str(), "Assign" | "Condition" | "Output"));
            std::borrow::Cow::Owned(Value::Object(map))
        }
        _ => std::borrow::Cow::Borrowed(value),
    };
    let value = rest.as_ref();
    let next = match value.get("Next") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(other) => {
            let found = describe(other);
            errors.push(DefinitionError::new(
                format!("{at}.Next"),
                format!("must be the name of a state, not {found}"),
            ));
            None
        }
        None if value.is_object() => {
            errors.push(DefinitionError::new(
                format!("{at}.Next"),
                "required: a top-level choice rule names the state to go to",
            ));
            None
        }
        None => None,
    };
    let condition = parse_condition(value, at, true, &mut errors);
    match (next, condition) {
        (Some(next), Some(condition)) if errors.is_empty() => {
            Ok(ChoiceRule { next, condition, assign, output: None })
        }
        _ => Err(errors),
    }
}

/// A JSONata rule: `Condition` (true, false or an expression), `Next`, and optionally `Assign`,
/// `Output` and `Comment`.
fn parse_jsonata_rule(
    value: &Value,
    at: &str,
    assign: Option<Payload>,
    mut errors: Vec<DefinitionError>,
) -> Result<ChoiceRule, Vec<DefinitionError>> {
    let Value::Object(map) = value else {
        errors.push(DefinitionError::new(
            at,
            format!("a choice rule must be an object, not {}", describe(value)),
        ));
        return Err(errors);
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "Condition" | "Next" | "Comment" | "Assign" | "Output") {
            let hint = if key == "Variable" || Operator::from_field(key).is_some() || key == "And" {
                ": a JSONata Choice rule tests a Condition such as \"{% $states.input.n > 3 %}\""
            } else {
                ""
            };
            errors.push(DefinitionError::new(format!("{at}.{key}"), format!("unknown field{hint}")));
        }
    }
    let next = match map.get("Next") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        other => {
            let found = other.map_or("nothing".to_string(), describe);
            errors.push(DefinitionError::new(
                format!("{at}.Next"),
                format!("must be the name of a state, not {found}"),
            ));
            None
        }
    };
    let condition = match map.get("Condition") {
        None => {
            errors.push(DefinitionError::new(
                format!("{at}.Condition"),
                "is required in a JSONata Choice rule",
            ));
            None
        }
        Some(v @ (Value::Bool(_) | Value::String(_))) => {
            let template = jsonata::Template::parse(v, &format!("{at}.Condition"), &mut errors);
            match template {
                jsonata::Template::Literal(Value::String(s)) => {
                    errors.push(DefinitionError::new(
                        format!("{at}.Condition"),
                        format!("'{s}' is neither true, false nor a {{% ... %}} expression"),
                    ));
                    None
                }
                t => Some(Condition::Jsonata(Box::new(t))),
            }
        }
        Some(other) => {
            errors.push(DefinitionError::new(
                format!("{at}.Condition"),
                format!("must be true, false or a {{% ... %}} expression, not {}", describe(other)),
            ));
            None
        }
    };
    let output = map.get("Output").map(|v| jsonata::Template::parse(v, &format!("{at}.Output"), &mut errors));
    match (next, condition) {
        (Some(next), Some(condition)) if errors.is_empty() => {
            Ok(ChoiceRule { next, condition, assign, output })
        }
        _ => Err(errors),
    }
}

/// Parses the condition part of a rule, pushing every problem; None if there was any.
fn parse_condition(
    value: &Value,
    at: &str,
    top_level: bool,
    errors: &mut Vec<DefinitionError>,
) -> Option<Condition> {
    let Value::Object(map) = value else {
        errors.push(DefinitionError::new(
            at,
            format!("a choice rule must be an object, not {}", describe(value)),
        ));
        return None;
    };
    let before = errors.len();
    let mut err = |field: &str, message: String| {
        errors.push(DefinitionError::new(format!("{at}.{field}"), message));
    };

    // The one operator of the rule: a combinator or a comparison.
    let mut operator: Option<&str> = None;
    for key in map.keys() {
        let is_operator = matches!(key.as_str(), "And" | "Or" | "Not") || Operator::from_field(key).is_some();
        match key.as_str() {
            "Variable" => {}
            "Next" | "Comment" if top_level => {}
            "Next" => {
                err(key, "not allowed inside And, Or or Not: only a top-level choice rule has Next".into())
            }
            _ if is_operator => match operator {
                None => operator = Some(key),
                Some(first) => err(
                    key,
                    format!("a choice rule has exactly one operator, and this one already has '{first}'"),
                ),
            },
            _ => err(key, format!("unknown field '{key}'")),
        }
    }
    if top_level
        && let Some(comment) = map.get("Comment")
        && !comment.is_string()
    {
        err("Comment", format!("must be a string, not {}", describe(comment)));
    }
    let Some(operator) = operator else {
        errors.push(DefinitionError::new(
            at,
            "a choice rule needs one operator: And, Or, Not or a comparison such as StringEquals or IsPresent",
        ));
        return None;
    };

    let condition = match operator {
        "And" | "Or" => {
            if map.contains_key("Variable") {
                err("Variable", format!("not allowed in an {operator} rule"));
            }
            let rules = parse_list(&map[operator], &format!("{at}.{operator}"), errors);
            rules.map(|rules| if operator == "And" { Condition::And(rules) } else { Condition::Or(rules) })
        }
        "Not" => {
            if map.contains_key("Variable") {
                err("Variable", "not allowed in a Not rule".into());
            }
            parse_condition(&map["Not"], &format!("{at}.Not"), false, errors)
                .map(|c| Condition::Not(Box::new(c)))
        }
        _ => parse_comparison(map, operator, at, errors),
    };
    condition.filter(|_| errors.len() == before)
}

fn parse_list(value: &Value, at: &str, errors: &mut Vec<DefinitionError>) -> Option<Vec<Condition>> {
    match value {
        Value::Array(items) if !items.is_empty() => {
            let rules: Vec<Option<Condition>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_condition(item, &format!("{at}[{i}]"), false, errors))
                .collect();
            rules.into_iter().collect()
        }
        other => {
            errors.push(DefinitionError::new(
                at,
                format!("must be a non-empty array of choice rules, not {}", describe(other)),
            ));
            None
        }
    }
}

fn parse_comparison(
    map: &Map<String, Value>,
    field: &str,
    at: &str,
    errors: &mut Vec<DefinitionError>,
) -> Option<Condition> {
    let (op, is_path) = Operator::from_field(field)?;
    let variable = match map.get("Variable") {
        None => {
            errors.push(DefinitionError::new(format!("{at}.Variable"), format!("required with {field}")));
            None
        }
        Some(v) => reference_path(v, "Variable", &format!("{at}.Variable"), errors),
    };
    let raw = &map[field];
    let operand = if is_path {
        reference_path(raw, field, &format!("{at}.{field}"), errors).map(Operand::Path)
    } else if op.accepts_literal(raw) {
        Some(Operand::Literal(raw.clone()))
    } else {
        errors.push(DefinitionError::new(
            format!("{at}.{field}"),
            format!("must be {}, not {}", op.literal_kind(), describe(raw)),
        ));
        None
    };
    Some(Condition::Compare { variable: variable?, op, operand: operand? })
}

/// A Variable or `...Path` operand: a reference path (names and indices only), never an
/// intrinsic function such as `States.ArrayContains(...)`.
fn reference_path(
    value: &Value,
    field: &str,
    at: &str,
    errors: &mut Vec<DefinitionError>,
) -> Option<JsonPath> {
    let problem = match value {
        Value::String(s) => match JsonPath::parse_reference(s) {
            Ok(path) => return Some(path),
            Err(why) => format!("{field} {why}"),
        },
        other => format!("{field} must be a reference path string, not {}", describe(other)),
    };
    errors.push(DefinitionError::new(at, problem));
    None
}

/// A short description of a JSON value for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> ChoiceRule {
        parse_choice_rule(&v, "States.C.Choices[0]", QueryLanguage::JsonPath)
            .unwrap_or_else(|e| panic!("{v}: {e:?}"))
    }

    fn errors(v: Value) -> Vec<(String, String)> {
        match parse_choice_rule(&v, "States.C.Choices[0]", QueryLanguage::JsonPath) {
            Ok(r) => panic!("accepted {v}: {r:?}"),
            Err(e) => e.into_iter().map(|e| (e.at, e.message)).collect(),
        }
    }

    fn eval(v: Value, input: Value) -> Result<bool, StatesError> {
        rule(v).condition.eval(&input, &Env::default())
    }

    fn holds(v: Value, input: Value) -> bool {
        eval(v, input).unwrap()
    }

    #[test]
    fn parses_a_comparison() {
        let r = rule(json!({"Variable": "$.n", "NumericLessThan": 3, "Next": "Small"}));
        assert_eq!(r.next, "Small");
        assert_eq!(
            r.condition,
            Condition::Compare {
                variable: JsonPath::parse("$.n").unwrap(),
                op: Operator::Numeric(Cmp::LessThan),
                operand: Operand::Literal(json!(3)),
            }
        );
    }

    #[test]
    fn parses_every_operator_name() {
        for base in ["String", "Numeric", "Timestamp"] {
            for (name, cmp) in Cmp::ALL {
                let field = format!("{base}{name}");
                let (op, path) = Operator::from_field(&field).unwrap();
                assert!(!path);
                assert_eq!(Operator::from_field(&format!("{field}Path")), Some((op, true)));
                assert!(matches!(op,
                    Operator::String(c) | Operator::Numeric(c) | Operator::Timestamp(c) if c == cmp));
            }
        }
        assert_eq!(Operator::from_field("BooleanEqualsPath"), Some((Operator::BooleanEquals, true)));
        assert_eq!(Operator::from_field("StringMatches"), Some((Operator::StringMatches, false)));
        for none in ["StringMatchesPath", "IsNullPath", "IsPresentPath", "Numeric", "StringEqual", "Path"] {
            assert_eq!(Operator::from_field(none), None, "{none}");
        }
        let is = ["IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"];
        for name in is {
            assert!(matches!(Operator::from_field(name), Some((Operator::Is(_), false))), "{name}");
        }
    }

    #[test]
    fn parses_nested_rules_with_locations() {
        let r = rule(json!({
            "And": [
                {"Variable": "$.a", "IsPresent": true},
                {"Not": {"Or": [{"Variable": "$.b", "StringEquals": "x"}, {"Variable": "$$.c", "BooleanEquals": true}]}}
            ],
            "Next": "N", "Comment": "both"
        }));
        let Condition::And(parts) = &r.condition else { panic!() };
        assert_eq!(parts.len(), 2);
        assert!(
            matches!(&parts[1], Condition::Not(inner) if matches!(**inner, Condition::Or(ref v) if v.len() == 2))
        );

        let e = errors(json!({
            "And": [
                {"Variable": "$.a", "IsPresent": "yes"},
                {"Not": {"Variable": "$.b", "Foo": 1, "Next": "X"}},
                {"Or": []}
            ],
            "Next": "N"
        }));
        let at = "States.C.Choices[0].And";
        assert_eq!(e, vec![
            (format!("{at}[0].IsPresent"), "must be a boolean, not the string \"yes\"".into()),
            (format!("{at}[1].Not.Foo"), "unknown field 'Foo'".into()),
            (format!("{at}[1].Not.Next"), "not allowed inside And, Or or Not: only a top-level choice rule has Next".into()),
            (format!("{at}[1].Not"), "a choice rule needs one operator: And, Or, Not or a comparison such as StringEquals or IsPresent".into()),
            (format!("{at}[2].Or"), "must be a non-empty array of choice rules, not an array".into()),
        ]);
    }

    #[test]
    fn reports_every_top_level_problem() {
        let e = errors(json!({"Variable": 3, "StringEquals": 1, "NumericEquals": 2, "Foo": true}));
        let at = |f: &str| format!("States.C.Choices[0].{f}");
        assert_eq!(
            e,
            vec![
                (at("Next"), "required: a top-level choice rule names the state to go to".into()),
                (
                    at("NumericEquals"),
                    "a choice rule has exactly one operator, and this one already has 'StringEquals'".into()
                ),
                (at("Foo"), "unknown field 'Foo'".into()),
                (at("Variable"), "Variable must be a reference path string, not the number 3".into()),
                (at("StringEquals"), "must be a string, not the number 1".into()),
            ]
        );
        assert_eq!(
            errors(json!("x")),
            vec![(
                "States.C.Choices[0]".into(),
                "a choice rule must be an object, not the string \"x\"".into()
            )]
        );
        assert_eq!(errors(json!({"Variable": "$.x", "IsNull": true, "Next": 1}))[0].0, at("Next"));
        assert_eq!(
            errors(json!({"Variable": "$.x", "IsNull": true, "Next": "N", "Comment": 2}))[0].0,
            at("Comment")
        );
        assert_eq!(
            errors(json!({"IsNull": true, "Next": "N"})),
            vec![(at("Variable"), "required with IsNull".into())]
        );
        assert_eq!(
            errors(json!({"Variable": "$.x", "Not": {"Variable": "$.x", "IsNull": true}, "Next": "N"})),
            vec![(at("Variable"), "not allowed in a Not rule".into())]
        );
        assert_eq!(errors(json!({"Variable": "$.x", "StringMatchesPath": "$.p", "Next": "N"})),
            vec![
                (at("StringMatchesPath"), "unknown field 'StringMatchesPath'".into()),
                ("States.C.Choices[0]".into(), "a choice rule needs one operator: And, Or, Not or a comparison such as StringEquals or IsPresent".into()),
            ]);
    }

    #[test]
    fn variable_must_be_a_reference_path() {
        // From the asl-validator corpus (invalid-choice-state-variable.json).
        let e = errors(json!({
            "Variable": "States.ArrayContains($.clients.unique, 'null')",
            "NumericEquals": 1, "Next": "FirstMatchState"
        }));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "States.C.Choices[0].Variable");
        assert!(e[0].1.starts_with("Variable must be a reference path"), "{}", e[0].1);
        let e = errors(json!({"Variable": "$.items[*]", "IsPresent": true, "Next": "N"}));
        assert_eq!(
            e,
            vec![(
                "States.C.Choices[0].Variable".into(),
                "Variable must be a reference path (names and indices only), not '$.items[*]'".into()
            )]
        );
        let e = errors(json!({"Variable": "$.a", "NumericEqualsPath": "limit", "Next": "N"}));
        assert_eq!(e[0].0, "States.C.Choices[0].NumericEqualsPath");
        assert!(e[0].1.starts_with("NumericEqualsPath must be a reference path"));
        assert!(
            rule(json!({"Variable": "$$.Execution.Input.a[0]", "IsPresent": true, "Next": "N"})).condition
                != Condition::And(vec![])
        );
    }

    #[test]
    fn checks_operand_types() {
        let bad = [
            ("StringEquals", json!(1)),
            ("StringMatches", json!(null)),
            ("NumericEquals", json!("1")),
            ("NumericGreaterThan", json!(true)),
            ("BooleanEquals", json!("true")),
            ("IsNull", json!(1)),
            ("IsTimestamp", json!("true")),
            ("TimestampEquals", json!("2016-03-14")),
            ("TimestampLessThan", json!("2016-03-14T01:59:00")),
            ("TimestampLessThan", json!(0)),
        ];
        for (op, operand) in bad {
            let e = errors(json!({"Variable": "$.x", op: operand, "Next": "N"}));
            assert_eq!(e.len(), 1, "{op}");
            assert_eq!(e[0].0, format!("States.C.Choices[0].{op}"));
            assert!(e[0].1.starts_with("must be "), "{}", e[0].1);
        }
        rule(json!({"Variable": "$.x", "TimestampEquals": "2016-03-14T01:59:00.5+02:00", "Next": "N"}));
    }

    #[test]
    fn missing_variable_is_a_runtime_error_except_for_is_present() {
        let err = eval(json!({"Variable": "$.x", "NumericEquals": 1, "Next": "N"}), json!({})).unwrap_err();
        assert_eq!(
            err,
            StatesError::runtime(
                "Invalid path '$.x': The choice state's condition path references an invalid value."
            )
        );
        assert_eq!(
            eval(json!({"Variable": "$.x", "IsNull": true, "Next": "N"}), json!({})).unwrap_err().error,
            "States.Runtime"
        );
        let err = eval(json!({"Variable": "$.a", "NumericEqualsPath": "$.b", "Next": "N"}), json!({"a": 1}))
            .unwrap_err();
        assert!(err.cause.starts_with("Invalid path '$.b'"));
        assert!(!holds(json!({"Variable": "$.x", "IsPresent": true, "Next": "N"}), json!({})));
        assert!(holds(json!({"Variable": "$.x", "IsPresent": false, "Next": "N"}), json!({})));
        assert!(holds(json!({"Variable": "$.x", "IsPresent": true, "Next": "N"}), json!({"x": null})));
        assert!(!holds(json!({"Variable": "$.x.y", "IsPresent": true, "Next": "N"}), json!({"x": 1})));
    }

    #[test]
    fn reads_the_context_object() {
        let r = rule(json!({"Variable": "$$.Execution.Name", "StringEqualsPath": "$.name", "Next": "N"}));
        let ctx = json!({"Execution": {"Name": "run-1"}});
        let ctx = Env::with_context(ctx);
        assert!(r.condition.eval(&json!({"name": "run-1"}), &ctx).unwrap());
        assert!(!r.condition.eval(&json!({"name": "run-2"}), &ctx).unwrap());
    }

    #[test]
    fn numbers_compare_by_value() {
        let cases = [
            ("NumericEquals", json!(1), json!(1.0), true),
            ("NumericEquals", json!(-0.0), json!(0), true),
            ("NumericEquals", json!(2.22), json!(2.22), true),
            ("NumericEquals", json!(u64::MAX), json!(u64::MAX - 1), false),
            ("NumericEquals", json!(i64::MIN), json!(u64::MAX), false),
            ("NumericLessThan", json!(i64::MIN), json!(u64::MAX), true),
            ("NumericLessThan", json!(1), json!(1.5), true),
            ("NumericGreaterThan", json!(2), json!(1.5), true),
            ("NumericLessThanEquals", json!(1.0), json!(1), true),
            ("NumericGreaterThanEquals", json!(0.9), json!(1), false),
        ];
        for (op, var, operand, expected) in cases {
            let r = json!({"Variable": "$.v", op: operand, "Next": "N"});
            assert_eq!(holds(r, json!({"v": var})), expected, "{var} {op} {operand}");
            let r = json!({"Variable": "$.v", format!("{op}Path"): "$.o", "Next": "N"});
            assert_eq!(holds(r, json!({"v": var, "o": operand})), expected, "{var} {op}Path {operand}");
        }
    }

    #[test]
    fn other_types_are_false_not_errors() {
        let r = |op: &str, operand: Value| json!({"Variable": "$.v", op: operand, "Next": "N"});
        for v in [json!(null), json!("1"), json!([1]), json!({"a": 1}), json!(true)] {
            assert!(!holds(r("NumericEquals", json!(1)), json!({"v": v})));
            assert!(!holds(r("NumericLessThan", json!(1)), json!({"v": v})));
        }
        for v in [json!(null), json!(1), json!(["a"]), json!(false)] {
            assert!(!holds(r("StringEquals", json!("a")), json!({"v": v})));
            assert!(!holds(r("StringMatches", json!("*")), json!({"v": v})));
            assert!(!holds(r("TimestampLessThan", json!("2030-01-01T00:00:00Z")), json!({"v": v})));
        }
        for v in [json!(null), json!(0), json!("true"), json!([true])] {
            assert!(!holds(r("BooleanEquals", json!(true)), json!({"v": v})));
            assert!(!holds(r("BooleanEquals", json!(false)), json!({"v": v})));
        }
        // A ...Path operand of another type: false as well (not recorded on AWS; see the report).
        let input = json!({"v": true, "o": "true", "n": 1, "s": "1"});
        assert!(!holds(json!({"Variable": "$.v", "BooleanEqualsPath": "$.o", "Next": "N"}), input.clone()));
        assert!(!holds(json!({"Variable": "$.n", "NumericEqualsPath": "$.s", "Next": "N"}), input.clone()));
        assert!(!holds(json!({"Variable": "$.s", "StringEqualsPath": "$.n", "Next": "N"}), input));
    }

    #[test]
    fn strings_compare_and_match() {
        let r = |op: &str, operand: &str| json!({"Variable": "$.v", op: operand, "Next": "N"});
        let input = json!({"v": "beta"});
        assert!(holds(r("StringEquals", "beta"), input.clone()));
        assert!(holds(r("StringLessThan", "gamma"), input.clone()));
        assert!(holds(r("StringGreaterThan", "alpha"), input.clone()));
        assert!(holds(r("StringLessThanEquals", "beta"), input.clone()));
        assert!(holds(r("StringGreaterThanEquals", "beta"), input.clone()));
        assert!(!holds(r("StringGreaterThan", "beta"), input.clone()));
        assert!(!holds(r("StringEquals", "Beta"), input));
    }

    #[test]
    fn string_matches_star_and_escapes() {
        let yes = [
            ("log-2024.txt", "log-*.txt"),
            ("", "*"),
            ("", ""),
            ("abc", "a*c"),
            ("ac", "a*c"),
            ("aXbXc", "a*b*c"),
            ("abcbc", "a*bc"),
            ("a*b", r"a\*b"),
            (r"a\b", r"a\\b"),
            ("a*xyz", r"a\**"),
            (r"a\q", r"a\q"),
            ("héllo wörld", "h*w*d"),
            ("mississippi", "*sip*"),
        ];
        for (text, pattern) in yes {
            assert!(string_matches(text, pattern), "{text:?} ~ {pattern:?}");
        }
        let no = [
            ("log.txt", "log-*.txt"),
            ("abc", "a*d"),
            ("axb", r"a\*b"),
            ("ab", "abc"),
            ("abc", "ab"),
            ("a", ""),
            ("abcb", "a*bc"),
            (r"a\\b", r"a\\b"),
        ];
        for (text, pattern) in no {
            assert!(!string_matches(text, pattern), "{text:?} !~ {pattern:?}");
        }
    }

    #[test]
    fn timestamps_compare_as_instants() {
        let r = |op: &str, operand: &str| json!({"Variable": "$.v", op: operand, "Next": "N"});
        let input = json!({"v": "2016-03-14T01:59:00Z"});
        assert!(holds(r("TimestampEquals", "2016-03-14T03:59:00+02:00"), input.clone()));
        assert!(holds(r("TimestampEquals", "2016-03-14T01:59:00.000Z"), input.clone()));
        assert!(holds(r("TimestampLessThan", "2016-03-14T01:59:00.001Z"), input.clone()));
        assert!(holds(r("TimestampGreaterThan", "2016-03-14T02:58:00+01:00"), input.clone()));
        assert!(holds(r("TimestampGreaterThanEquals", "2016-03-14T01:59:00Z"), input.clone()));
        assert!(holds(r("TimestampLessThanEquals", "2016-03-14T01:59:00Z"), input.clone()));
        // Not timestamps: the comparison is false, never an error.
        for v in [
            "2016-03-14T01:59:00",
            "2016-03-14",
            "2016-03-14 01:59:00Z",
            "2016-03-14t01:59:00Z",
            "2016-03-14T01:59:00z",
            "date",
            "",
        ] {
            assert!(!holds(r("TimestampLessThanEquals", "2030-01-01T00:00:00Z"), json!({"v": v})), "{v}");
            assert!(
                !holds(json!({"Variable": "$.v", "IsTimestamp": true, "Next": "N"}), json!({"v": v})),
                "{v}"
            );
        }
        for v in ["2016-03-14T01:59:00Z", "2016-03-14T01:59:00.123456+05:30", "2016-03-14T01:59:00-00:00"] {
            assert!(
                holds(json!({"Variable": "$.v", "IsTimestamp": true, "Next": "N"}), json!({"v": v})),
                "{v}"
            );
        }
        let r = json!({"Variable": "$.a", "TimestampLessThanPath": "$.b", "Next": "N"});
        assert!(holds(r.clone(), json!({"a": "2012-10-09T19:00:55Z", "b": "2012-10-09T19:00:56Z"})));
        assert!(!holds(r, json!({"a": "2012-10-09T19:00:55Z", "b": "soon"})));
    }

    #[test]
    fn is_tests_and_their_negation() {
        let values = [
            json!(null),
            json!(0),
            json!(1.5),
            json!(""),
            json!("2016-03-14T01:59:00Z"),
            json!([]),
            json!({}),
            json!(true),
        ];
        type Truth = fn(&Value) -> bool;
        let tests: [(&str, Truth); 5] = [
            ("IsNull", Value::is_null),
            ("IsNumeric", Value::is_number),
            ("IsString", Value::is_string),
            ("IsBoolean", Value::is_boolean),
            ("IsTimestamp", |v| v.as_str().is_some_and(|s| s.ends_with('Z'))),
        ];
        for (op, truth) in tests {
            for v in &values {
                for flag in [true, false] {
                    let r = json!({"Variable": "$.v", op: flag, "Next": "N"});
                    assert_eq!(holds(r, json!({"v": v})), truth(v) == flag, "{op}: {flag} on {v}");
                }
            }
        }
    }

    #[test]
    fn and_or_not_short_circuit() {
        let r = json!({"And": [
            {"Variable": "$.a", "NumericGreaterThan": 1},
            {"Not": {"Variable": "$.b", "StringEquals": "x"}}
        ], "Next": "N"});
        assert!(holds(r.clone(), json!({"a": 2, "b": "y"})));
        assert!(!holds(r.clone(), json!({"a": 2, "b": "x"})));
        // $.b is not read once the first rule is false.
        assert!(!holds(r.clone(), json!({"a": 0})));
        assert!(eval(r, json!({"a": 2})).is_err());
        let r = json!({"Or": [{"Variable": "$.a", "IsPresent": true}, {"Variable": "$.b", "BooleanEquals": true}], "Next": "N"});
        assert!(holds(r.clone(), json!({"a": 1})));
        assert!(holds(r.clone(), json!({"b": true})));
        assert!(!holds(r.clone(), json!({"b": false})));
        assert!(eval(r, json!({})).is_err());
    }
}
