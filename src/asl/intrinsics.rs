//! Intrinsic functions (`States.Format(...)`, `States.ArrayRange(...)`, ...): parsed once when
//! the definition is loaded, evaluated each time the state runs.
//!
//! The behaviours that differ from the obvious reading of the documentation were taken from
//! executions recorded against AWS (see the tests): `States.MathAdd` rounds like Java's
//! `Math.round`, `States.Format` prints objects the way a Java `Map` prints itself,
//! `States.StringSplit` splits on any of the delimiter characters and drops empty tokens,
//! `States.ArrayRange` includes its end, and `States.StringToJson('')` is `null`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use sha2::Digest as _;

use super::env::Env;
use super::errors::StatesError;
use super::path::JsonPath;

#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Literal(Value),
    /// A string literal as the first argument of `States.Format`, where an unescaped `{}` is
    /// a placeholder but `\{\}` is not.
    Template(Vec<Piece>),
    Path(JsonPath),
    Call(Box<Intrinsic>),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Hole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

/// Name, function, and the least and most number of arguments.
const FUNCTIONS: &[(&str, Func, usize, usize)] = &[
    ("States.Format", Func::Format, 1, usize::MAX),
    ("States.StringToJson", Func::StringToJson, 1, 1),
    ("States.JsonToString", Func::JsonToString, 1, 1),
    ("States.Array", Func::Array, 0, usize::MAX),
    ("States.ArrayPartition", Func::ArrayPartition, 2, 2),
    ("States.ArrayContains", Func::ArrayContains, 2, 2),
    ("States.ArrayRange", Func::ArrayRange, 3, 3),
    ("States.ArrayGetItem", Func::ArrayGetItem, 2, 2),
    ("States.ArrayLength", Func::ArrayLength, 1, 1),
    ("States.ArrayUnique", Func::ArrayUnique, 1, 1),
    ("States.Base64Encode", Func::Base64Encode, 1, 1),
    ("States.Base64Decode", Func::Base64Decode, 1, 1),
    ("States.Hash", Func::Hash, 2, 2),
    ("States.JsonMerge", Func::JsonMerge, 3, 3),
    ("States.MathRandom", Func::MathRandom, 2, 3),
    ("States.MathAdd", Func::MathAdd, 2, 2),
    ("States.StringSplit", Func::StringSplit, 2, 2),
    ("States.UUID", Func::Uuid, 0, 0),
];

/// Documented service limits.
const MAX_RANGE_ITEMS: i64 = 1000;
const MAX_ENCODE_CHARS: usize = 10_000;

impl Func {
    fn name(self) -> &'static str {
        FUNCTIONS.iter().find(|f| f.1 == self).map_or("States.?", |f| f.0)
    }
}

impl Intrinsic {
    /// Parses a call such as `States.Format('Hello {}', $.name)`.
    pub fn parse(s: &str) -> Result<Intrinsic, String> {
        let mut p = Parser { src: s, pos: 0, depth: 0 };
        let call = p.call().and_then(|call| {
            p.skip_ws();
            match p.peek() {
                None => Ok(call),
                Some(c) => Err(p.error(format!("unexpected '{c}' after the call"))),
            }
        });
        call.map_err(|reason| format!("Invalid intrinsic function '{s}': {reason}"))
    }

    /// `States.` then a name then `(`: the text is meant as a call (it may still be invalid).
    pub fn looks_like_call(s: &str) -> bool {
        s.strip_prefix("States.").is_some_and(|rest| {
            let name_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
            name_len > 0 && rest[name_len..].starts_with('(')
        })
    }

    /// Evaluates the call; randomness comes only from `rng`.
    pub fn eval(&self, input: &Value, ctx: &Env, rng: &mut fastrand::Rng) -> Result<Value, StatesError> {
        let mut args = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            args.push(arg.eval(input, ctx, rng)?);
        }
        let f = self.func;
        let fail = |msg: String| fail(f, msg);
        match (f, args.as_slice()) {
            (Func::Format, [template, values @ ..]) => {
                let runtime;
                let pieces = match (self.args.first(), template.as_ref()) {
                    (Some(Arg::Template(pieces)), _) => pieces,
                    (_, Value::String(s)) => {
                        runtime = runtime_template(s);
                        &runtime
                    }
                    (_, other) => {
                        return Err(fail(format!("the template must be a string, not {other}")));
                    }
                };
                format(pieces, values).map(Value::String).ok_or_else(|| {
                    fail(format!(
                        "the template has {} placeholders but {} arguments were given",
                        holes(pieces),
                        values.len()
                    ))
                })
            }
            (Func::StringToJson, [s]) => {
                let s = string(f, s)?;
                if s.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(s).map_err(|e| fail(format!("the string is not JSON: {e}")))
            }
            (Func::JsonToString, [v]) => Ok(Value::String(v.to_string())),
            (Func::Array, values) => Ok(Value::Array(values.iter().map(|v| v.as_ref().clone()).collect())),
            (Func::ArrayPartition, [items, size]) => {
                let items = array(f, items)?;
                let size = integer(size)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| fail(format!("the chunk size must be a positive integer, not {size}")))?;
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                Ok(Value::Array(items.chunks(size).map(|c| Value::Array(c.to_vec())).collect()))
            }
            (Func::ArrayContains, [items, wanted]) => {
                Ok(Value::Bool(array(f, items)?.contains(wanted.as_ref())))
            }
            (Func::ArrayRange, [start, end, step]) => {
                let [start, end, step] = [start, end, step].map(|v| {
                    integer(v).ok_or_else(|| fail(format!("the arguments must be integers, not {v}")))
                });
                let (start, end, step) = (start?, end?, step?);
                if step == 0 {
                    return Err(fail("the step must not be 0".into()));
                }
                // The end is included when the steps land on it.
                // i128: the span of two i64 values may not fit in an i64.
                let span = i128::from(end) - i128::from(start);
                let count =
                    if span.signum() == -i128::from(step.signum()) { 0 } else { span / i128::from(step) + 1 };
                if count > i128::from(MAX_RANGE_ITEMS) {
                    return Err(fail(format!(
                        "the range has {count} items; at most {MAX_RANGE_ITEMS} are allowed"
                    )));
                }
                Ok(Value::Array((0..count as i64).map(|i| Value::from(start + i * step)).collect()))
            }
            (Func::ArrayGetItem, [items, index]) => {
                let items = array(f, items)?;
                let item = integer(index)
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| items.get(i))
                    .ok_or_else(|| {
                        fail(format!("index {index} is not valid for an array of {} items", items.len()))
                    })?;
                Ok(item.clone())
            }
            (Func::ArrayLength, [items]) => Ok(Value::from(array(f, items)?.len())),
            (Func::ArrayUnique, [items]) => {
                let mut seen = HashSet::new();
                let unique = array(f, items)?.iter().filter(|v| seen.insert(canonical(v))).cloned().collect();
                Ok(Value::Array(unique))
            }
            (Func::Base64Encode, [s]) => Ok(Value::String(BASE64.encode(limited(f, s)?))),
            (Func::Base64Decode, [s]) => {
                let bytes = BASE64.decode(limited(f, s)?).map_err(|e| fail(format!("not base64: {e}")))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| fail("the decoded bytes are not UTF-8 text".into()))
            }
            (Func::Hash, [data, algorithm]) => {
                let data = limited(f, data)?.as_bytes();
                let algorithm = string(f, algorithm)?;
                let digest = hash(algorithm, data).ok_or_else(|| {
                    fail(format!(
                        "unknown algorithm '{algorithm}' (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"
                    ))
                })?;
                Ok(Value::String(digest))
            }
            (Func::JsonMerge, [left, right, deep]) => {
                let (Value::Object(left), Value::Object(right)) = (left.as_ref(), right.as_ref()) else {
                    return Err(fail("the first two arguments must be objects".into()));
                };
                if deep.as_ref() != &Value::Bool(false) {
                    return Err(fail(format!(
                        "only a shallow merge is supported: the third argument must be false, not {deep}"
                    )));
                }
                let mut merged = left.clone();
                merged.extend(right.iter().map(|(k, v)| (k.clone(), v.clone())));
                Ok(Value::Object(merged))
            }
            (Func::MathRandom, [start, end, seed @ ..]) => {
                let (start, end) = (rounded(f, start)?, rounded(f, end)?);
                if start >= end {
                    return Err(fail(format!("the start ({start}) must be less than the end ({end})")));
                }
                let n = match seed {
                    [seed] => fastrand::Rng::with_seed(rounded(f, seed)? as u64).i64(start..end),
                    _ => rng.i64(start..end),
                };
                Ok(Value::from(n))
            }
            (Func::MathAdd, [a, b]) => rounded(f, a)?
                .checked_add(rounded(f, b)?)
                .map(Value::from)
                .ok_or_else(|| fail("the sum is out of range".into())),
            (Func::StringSplit, [s, delimiters]) => {
                let delimiters = string(f, delimiters)?;
                // Like Java's StringTokenizer: every character is a delimiter, no empty tokens.
                let tokens = string(f, s)?
                    .split(|c| delimiters.contains(c))
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_string()))
                    .collect();
                Ok(Value::Array(tokens))
            }
            (Func::Uuid, []) => Ok(Value::String(uuid(rng))),
            // The parser checked the argument counts.
            _ => Err(fail(format!("wrong number of arguments ({})", args.len()))),
        }
    }
}

impl Arg {
    fn eval<'a>(
        &'a self,
        input: &'a Value,
        ctx: &'a Env,
        rng: &mut fastrand::Rng,
    ) -> Result<Cow<'a, Value>, StatesError> {
        match self {
            Arg::Literal(v) => Ok(Cow::Borrowed(v)),
            Arg::Template(pieces) => Ok(Cow::Owned(Value::String(template_text(pieces)))),
            Arg::Path(path) => path.select(input, ctx).ok_or_else(|| {
                StatesError::runtime(format!(
                    "The JsonPath '{}' used in an intrinsic function {}",
                    path.as_str(),
                    path.not_found(input, ctx)
                ))
            }),
            Arg::Call(call) => call.eval(input, ctx, rng).map(Cow::Owned),
        }
    }
}

/// What a literal argument of a function may be (the developer guide's "Intrinsic functions"
/// page gives each argument's type).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    String,
    Integer,
    Number,
    /// An array or object: only a path or a call can give one, never a literal.
    Json,
    /// `false`: States.JsonMerge supports only a shallow merge.
    False,
    /// A hash algorithm States.Hash knows (MD5, SHA-1, SHA-256, SHA-384, SHA-512).
    Algorithm,
}

impl Kind {
    fn admits(self, v: &Value) -> bool {
        match self {
            Kind::Any => true,
            Kind::String => v.is_string(),
            Kind::Integer => integer(v).is_some(),
            Kind::Number => v.is_number(),
            Kind::Json => false,
            Kind::False => v == &Value::Bool(false),
            Kind::Algorithm => v.as_str().is_some_and(|a| hash(a, b"").is_some()),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Any => "any value",
            Kind::String => "a string",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Json => "an array or object (from a path or a call; a literal cannot be one)",
            Kind::False => "false (only a shallow merge is supported)",
            Kind::Algorithm => "one of MD5, SHA-1, SHA-256, SHA-384 and SHA-512",
        }
    }
}

/// The kinds of each argument; the last repeats for variadic functions.
fn kinds(func: Func) -> &'static [Kind] {
    use Kind::*;
    match func {
        Func::Format => &[String, Any],
        Func::StringToJson | Func::Base64Encode | Func::Base64Decode => &[String],
        Func::JsonToString | Func::Array => &[Any],
        Func::ArrayPartition | Func::ArrayGetItem => &[Json, Integer],
        Func::ArrayContains => &[Json, Any],
        Func::ArrayRange => &[Integer, Integer, Integer],
        Func::ArrayLength | Func::ArrayUnique => &[Json],
        Func::Hash => &[String, Algorithm],
        Func::JsonMerge => &[Json, Json, False],
        Func::MathRandom | Func::MathAdd => &[Number, Number, Number],
        Func::StringSplit => &[String, String],
        Func::Uuid => &[],
    }
}

/// Refuses, when the definition is read, a literal argument of the wrong kind
/// (`States.ArrayRange(1, 'a', 1)`), as CreateStateMachine does.
fn check_literal_kinds(func: Func, args: &[Arg]) -> Result<(), String> {
    let kinds = kinds(func);
    for (i, arg) in args.iter().enumerate() {
        let kind = kinds.get(i).or(kinds.last()).copied().unwrap_or(Kind::Any);
        let literal = match arg {
            Arg::Literal(v) => v.clone(),
            Arg::Template(pieces) => Value::String(template_text(pieces)),
            Arg::Path(_) | Arg::Call(_) => continue,
        };
        if !kind.admits(&literal) {
            return Err(format!(
                "argument {} of {} must be {}, not {literal}",
                i + 1,
                func.name(),
                kind.describe()
            ));
        }
    }
    Ok(())
}

impl Intrinsic {
    /// A call whose arguments are all literals gives the same answer on every run: evaluates
    /// it once when the definition is read, so `States.ArrayRange(1, 5, 0)` or
    /// `States.MathRandom(5, 1)` is refused there rather than failing a run. Functions whose
    /// answer changes per run (UUID, unseeded MathRandom) are checked all the same: only their
    /// failure matters here.
    fn check_if_literal(&self) -> Result<(), String> {
        if !self.args.iter().all(|a| matches!(a, Arg::Literal(_) | Arg::Template(_))) {
            return Ok(());
        }
        let env = super::env::Env::with_context(Value::Null);
        let mut rng = fastrand::Rng::with_seed(0);
        self.eval(&Value::Null, &env, &mut rng).map(drop).map_err(|e| e.cause)
    }
}

fn fail(func: Func, msg: String) -> StatesError {
    StatesError::new(
        crate::asl::errors::names::INTRINSIC_FAILURE,
        format!("Invalid arguments in {}: {msg}", func.name()),
    )
}

fn string(func: Func, v: &Value) -> Result<&str, StatesError> {
    v.as_str().ok_or_else(|| fail(func, format!("expected a string, not {v}")))
}

/// A string within the documented 10,000-character limit.
fn limited(func: Func, v: &Value) -> Result<&str, StatesError> {
    let s = string(func, v)?;
    if s.chars().count() > MAX_ENCODE_CHARS {
        return Err(fail(func, format!("the string is longer than {MAX_ENCODE_CHARS} characters")));
    }
    Ok(s)
}

fn array(func: Func, v: &Value) -> Result<&Vec<Value>, StatesError> {
    v.as_array().ok_or_else(|| fail(func, format!("expected an array, not {v}")))
}

/// An integral number (`3` or `3.0`).
fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
}

/// A number rounded like Java's `Math.round`: halves go up (2.5 -> 3, -2.5 -> -2).
fn rounded(func: Func, v: &Value) -> Result<i64, StatesError> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    let f = v.as_f64().ok_or_else(|| fail(func, format!("expected a number, not {v}")))?;
    // `floor(f + 0.5)` would round 0.49999999999999994 up; compare the fraction instead.
    let floor = f.floor();
    let r = if f - floor >= 0.5 { floor + 1.0 } else { floor };
    if r.abs() < 9.0e18 { Ok(r as i64) } else { Err(fail(func, format!("{v} is out of range"))) }
}

/// A key equal for equal JSON values, whatever the order of object members.
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut members: Vec<_> = map.iter().collect();
                members.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}:", Value::String(k.clone()));
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn holes(pieces: &[Piece]) -> usize {
    pieces.iter().filter(|p| **p == Piece::Hole).count()
}

/// A template that came from the input: every `{}` is a placeholder.
fn runtime_template(s: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (i, text) in s.split("{}").enumerate() {
        if i > 0 {
            pieces.push(Piece::Hole);
        }
        pieces.push(Piece::Text(text.to_string()));
    }
    pieces
}

fn template_text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Hole => "{}",
        })
        .collect()
}

/// Fills the placeholders; `None` when their number differs from the number of values.
fn format(pieces: &[Piece], values: &[Cow<'_, Value>]) -> Option<String> {
    if holes(pieces) != values.len() {
        return None;
    }
    let mut values = values.iter();
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Hole => write_java(values.next()?, &mut out),
        }
    }
    Some(out)
}

/// How Step Functions (Java) prints a value into a string: strings bare, objects as
/// `{a=1, b=[1, 2]}`, arrays as `[1, 2]`.
fn write_java(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                write_java(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java(v, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// How deep intrinsic function calls may nest in one expression. Far beyond any real definition;
/// it keeps a hostile one (thousands of nested `States.Array(`) from overflowing the stack.
pub const MAX_NESTING: usize = 64;

struct Parser<'s> {
    src: &'s str,
    pos: usize,
    /// Calls open around the current position: bounded, so deep nesting is an error, not a
    /// stack overflow.
    depth: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn error(&self, reason: String) -> String {
        format!("{reason} at position {}", self.pos + 1)
    }

    /// `States.Name(arg, ...)`, at most [`MAX_NESTING`] calls deep.
    fn call(&mut self) -> Result<Intrinsic, String> {
        if self.depth >= MAX_NESTING {
            return Err(self.error(format!("intrinsic functions nested more than {MAX_NESTING} deep")));
        }
        self.depth += 1;
        let call = self.call_here();
        self.depth -= 1;
        call
    }

    fn call_here(&mut self) -> Result<Intrinsic, String> {
        let start = self.pos;
        let name_len =
            self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || c == '.')).unwrap_or(self.rest().len());
        let name = &self.src[start..start + name_len];
        let Some(&(_, func, min, max)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
            return Err(self.error(format!("unknown function '{name}'")));
        };
        self.pos += name_len;
        self.skip_ws();
        if self.bump() != Some('(') {
            return Err(self.error(format!("expected '(' after {name}")));
        }
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                args.push(self.arg()?);
                self.skip_ws();
                match self.bump() {
                    Some(',') => {}
                    Some(')') => break,
                    Some(c) => {
                        return Err(self.error(format!("expected ',' or ')' in {name}, found '{c}'")));
                    }
                    None => return Err(self.error(format!("unclosed call to {name}"))),
                }
            }
        }
        if args.len() < min || args.len() > max {
            let expected = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(format!("{name} takes {expected} argument(s), not {}", args.len()));
        }
        // Only the template of States.Format keeps its placeholders apart from its text.
        let keep = usize::from(func == Func::Format);
        for arg in args.iter_mut().skip(keep) {
            if let Arg::Template(pieces) = arg {
                *arg = Arg::Literal(Value::String(template_text(pieces)));
            }
        }
        if let (Func::Format, Some(Arg::Template(pieces))) = (func, args.first())
            && holes(pieces) != args.len() - 1
        {
            return Err(format!(
                "States.Format has {} placeholder(s) but {} argument(s) to fill them",
                holes(pieces),
                args.len() - 1
            ));
        }
        check_literal_kinds(func, &args)?;
        let call = Intrinsic { func, args };
        call.check_if_literal()?;
        Ok(call)
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string().map(Arg::Template),
            Some('$') => self.path().map(Arg::Path),
            Some(_) if self.rest().starts_with("States.") => self.call().map(|c| Arg::Call(Box::new(c))),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number().map(Arg::Literal),
            Some(c) if c.is_ascii_alphabetic() => {
                let word_len =
                    self.rest().find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(self.rest().len());
                let value = match &self.rest()[..word_len] {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    word => return Err(self.error(format!("unexpected '{word}'"))),
                };
                self.pos += word_len;
                Ok(Arg::Literal(value))
            }
            Some(c) => Err(self.error(format!("unexpected '{c}'"))),
            None => Err(self.error("missing argument".into())),
        }
    }

    /// `'...'` where `\'`, `\{`, `\}` and `\\` stand for the character itself.
    fn string(&mut self) -> Result<Vec<Piece>, String> {
        let start = self.pos;
        self.pos += 1;
        let mut pieces = Vec::new();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => {
                    self.pos = start;
                    return Err(self.error("unclosed string".into()));
                }
                Some('\'') => break,
                Some('\\') => match self.bump() {
                    Some(c @ ('\'' | '{' | '}' | '\\')) => text.push(c),
                    Some(c) => {
                        text.push('\\');
                        text.push(c);
                    }
                    None => return Err(self.error("unclosed string".into())),
                },
                Some('{') if self.peek() == Some('}') => {
                    self.pos += 1;
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(Piece::Hole);
                }
                Some(c) => text.push(c),
            }
        }
        pieces.push(Piece::Text(text));
        Ok(pieces)
    }

    /// A path runs to the next `,` or `)` outside brackets, parentheses and quotes.
    fn path(&mut self) -> Result<JsonPath, String> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote = None;
        while let Some(c) = self.peek() {
            match (quote, c) {
                (Some(_), '\\') => {
                    self.bump();
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '(') => depth += 1,
                (None, ']' | ')') if depth > 0 => depth -= 1,
                (None, ',' | ')') => break,
                _ => {}
            }
            self.bump();
        }
        JsonPath::parse(self.src[start..self.pos].trim_end())
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(self.rest().len());
        let text = &self.src[start..start + len];
        match serde_json::from_str::<Value>(text) {
            Ok(n @ Value::Number(_)) => {
                self.pos += len;
                Ok(n)
            }
            _ => Err(self.error(format!("bad number '{text}'"))),
        }
    }
}

/// The hex digest of `data` by States.Hash's algorithm names (MD5, SHA-1, SHA-256, SHA-384,
/// SHA-512); None for any other name. JSONata's `$hash` shares it.
pub(crate) fn hash(algorithm: &str, data: &[u8]) -> Option<String> {
    Some(match algorithm {
        "MD5" => hex::encode(md5::Md5::digest(data)),
        "SHA-1" => hex::encode(sha1::Sha1::digest(data)),
        "SHA-256" => hex::encode(sha2::Sha256::digest(data)),
        "SHA-384" => hex::encode(sha2::Sha384::digest(data)),
        "SHA-512" => hex::encode(sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// A version-4 UUID drawn from the transition's seeded randomness (States.UUID, JSONata `$uuid`).
pub(crate) fn uuid(rng: &mut fastrand::Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval_on(call: &str, input: &Value) -> Result<Value, StatesError> {
        let ctx = json!({"Execution": {"Name": "run-1", "Input": input}, "StateMachine": {"Id": "arn:sm", "Name": "sm"}});
        Intrinsic::parse(call).unwrap().eval(input, &Env::with_context(ctx), &mut fastrand::Rng::with_seed(7))
    }

    fn eval(call: &str) -> Value {
        eval_on(call, &json!({})).unwrap()
    }

    /// The call's failure: at run time, or, for literal arguments, already when it is parsed
    /// (the same failure, earlier; `literal_arguments_are_checked_when_read` pins which).
    fn failure(call: &str, input: &Value) -> StatesError {
        match Intrinsic::parse(call) {
            Err(reason) => StatesError::new(crate::asl::errors::names::INTRINSIC_FAILURE, reason),
            Ok(_) => eval_on(call, input).unwrap_err(),
        }
    }

    #[test]
    fn literal_arguments_are_checked_when_read() {
        let refused = |s: &str| Intrinsic::parse(s).unwrap_err();
        assert_eq!(
            refused("States.ArrayRange(1, 'a', 1)"),
            "Invalid intrinsic function 'States.ArrayRange(1, 'a', 1)': argument 2 of States.ArrayRange must be an integer, not \"a\""
        );
        assert!(refused("States.ArrayRange(1, 5, 0)").contains("the step must not be 0"));
        assert!(refused("States.ArrayLength('abc')").contains("must be an array or object"));
        assert!(refused("States.MathAdd('1', 2)").contains("argument 1 of States.MathAdd must be a number"));
        assert!(refused("States.MathRandom(5, 1)").contains("must be less than the end"));
        assert!(
            refused("States.Hash('x', 'SHA-3')").contains("argument 2 of States.Hash must be one of MD5")
        );
        assert!(refused("States.Hash('x', 1)").contains("argument 2 of States.Hash must be one of MD5"));
        assert!(refused("States.Hash($.x, 'MD6')").contains("argument 2 of States.Hash must be one of MD5"));
        assert!(refused("States.JsonMerge($.a, $.b, true)").contains("must be false"));
        assert!(refused("States.StringToJson('{')").contains("not JSON"));
        assert!(refused("States.Base64Decode('***')").contains("not base64"));
        assert!(
            refused("States.Format('{}', States.ArrayRange(1, 'x', 1))")
                .contains("argument 2 of States.ArrayRange")
        );
        // The same mistakes through paths are found only at run time, with the same error.
        for (call, input) in [
            ("States.ArrayRange(1, $.a, 1)", json!({"a": "a"})),
            ("States.ArrayRange(1, 5, $.zero)", json!({"zero": 0})),
            ("States.Hash('x', $.alg)", json!({"alg": "SHA-3"})),
        ] {
            assert!(Intrinsic::parse(call).is_ok(), "{call}");
            assert_eq!(eval_on(call, &input).unwrap_err().error, "States.IntrinsicFailure", "{call}");
        }
        // Literals of the right kind, and calls whose answer changes per run, are fine.
        for ok in [
            "States.ArrayRange(1, 9, 2)",
            "States.MathRandom(1, 5)",
            "States.UUID()",
            "States.Hash('x', 'MD5')",
        ] {
            assert!(Intrinsic::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn looks_like_call() {
        assert!(Intrinsic::looks_like_call("States.Format('x')"));
        assert!(Intrinsic::looks_like_call("States.Nope()"));
        assert!(!Intrinsic::looks_like_call("States.Format"));
        assert!(!Intrinsic::looks_like_call("States.(x)"));
        assert!(!Intrinsic::looks_like_call("$.a"));
        assert!(!Intrinsic::looks_like_call("Format('x')"));
    }

    #[test]
    fn parse_errors() {
        let err = |s: &str| Intrinsic::parse(s).unwrap_err();
        assert!(err("States.Nope(1)").contains("unknown function 'States.Nope'"));
        assert!(err("States.ArrayLength()").contains("States.ArrayLength takes 1 argument(s), not 0"));
        assert!(err("States.MathAdd(1, 2, 3)").contains("takes 2 argument(s)"));
        assert!(err("States.MathRandom(1)").contains("2 to 3"));
        assert!(err("States.Format()").contains("at least 1"));
        assert!(err("States.UUID(1)").contains("takes 0"));
        assert!(err("States.Format('{} {}', 1)").contains("2 placeholder(s) but 1 argument(s)"));
        assert!(err("States.Format('x'").contains("unclosed call"));
        assert!(err("States.Format('x)").contains("unclosed string"));
        assert!(err("States.Format('x') y").contains("unexpected 'y' after the call"));
        assert!(err("States.Array(1 2)").contains("expected ',' or ')'"));
        assert!(err("States.Array(yes)").contains("unexpected 'yes'"));
        assert!(err("States.Array(1,)").contains("unexpected ')'"));
        assert!(err("States.Array(-)").contains("bad number"));
        assert!(err("States.Array($.a[)").contains("not a valid JSONPath"));
        assert!(err("States.Array(States.Nope())").contains("unknown function"));
    }

    #[test]
    fn literals_and_paths() {
        let input = json!({"a": {"b": [1, 2]}, "s": "x"});
        assert_eq!(
            eval_on("States.Array(1, -2, 1.5, -0.25, true, false, null, 'a b')", &input).unwrap(),
            json!([1, -2, 1.5, -0.25, true, false, null, "a b"])
        );
        assert_eq!(
            eval_on("States.Array( $.a.b[1] ,$.s, $$.Execution.Name )", &input).unwrap(),
            json!([2, "x", "run-1"])
        );
        assert_eq!(
            eval_on("States.Array($.a.b[?(@ > 1)], $['a'])", &input).unwrap(),
            json!([[2], {"b": [1, 2]}])
        );
        assert_eq!(eval("States.Array()"), json!([]));
        assert_eq!(
            eval("States.Array('it\\'s', '\\{\\}', 'a\\\\b', 'a\\nb')"),
            json!(["it's", "{}", "a\\b", "a\\nb"])
        );
    }

    #[test]
    fn paths_with_quotes_and_commas() {
        let input = json!({"a": {"x'é,)": 5, "k": [{"v": "a,b"}, {"v": "c"}]}});
        assert_eq!(eval_on("States.Array($.a['x\\'é,)'], 1)", &input).unwrap(), json!([5, 1]));
        assert_eq!(eval_on("States.Array($.a.k[?(@.v == 'a,b')].v)", &input).unwrap(), json!([["a,b"]]));
    }

    #[test]
    fn missing_path_is_a_runtime_error() {
        let e = failure("States.Array($.missing)", &json!({}));
        assert_eq!(e.error, "States.Runtime");
        assert!(e.cause.contains("$.missing"));
    }

    #[test]
    fn format() {
        let input = json!({"name": "Ann", "n": 1.1, "o": {"a": 1, "b": [1, "x"], "c": {"d": null}}, "t": "{} and {}"});
        assert_eq!(
            eval_on("States.Format('Hello {} from {}', $.name, $$.Execution.Name)", &input).unwrap(),
            json!("Hello Ann from run-1")
        );
        assert_eq!(
            eval_on("States.Format('{}|{}|{}|{}', $.n, true, null, 7)", &input).unwrap(),
            json!("1.1|true|null|7")
        );
        assert_eq!(
            eval_on("States.Format('o={}', $.o)", &input).unwrap(),
            json!("o={a=1, b=[1, x], c={d=null}}")
        );
        assert_eq!(eval_on("States.Format('\\{\\} {}', 'x')", &input).unwrap(), json!("{} x"));
        assert_eq!(eval_on("States.Format($.t, 1, 2)", &input).unwrap(), json!("1 and 2"));
        assert_eq!(eval_on("States.Format('{}', States.Array(1, 2))", &input).unwrap(), json!("[1, 2]"));
        assert_eq!(eval("States.Format('no placeholders')"), json!("no placeholders"));
        assert_eq!(failure("States.Format($.t, 1)", &input).error, "States.IntrinsicFailure");
        assert_eq!(failure("States.Format($.n)", &input).error, "States.IntrinsicFailure");
    }

    #[test]
    fn json_round_trips() {
        let input = json!({"s": "{\"b\": 1, \"a\": [1, 2.5]}", "o": {"z": 1, "a": [true, null]}});
        assert_eq!(eval_on("States.StringToJson($.s)", &input).unwrap(), json!({"b": 1, "a": [1, 2.5]}));
        assert_eq!(
            eval_on("States.JsonToString($.o)", &input).unwrap(),
            json!("{\"z\":1,\"a\":[true,null]}")
        );
        assert_eq!(eval_on("States.StringToJson(States.JsonToString($.o))", &input).unwrap(), input["o"]);
        assert_eq!(eval("States.StringToJson('')"), Value::Null);
        assert_eq!(eval("States.StringToJson('  ')"), Value::Null);
        assert_eq!(eval("States.StringToJson('true')"), json!(true));
        assert_eq!(failure("States.StringToJson('{')", &input).error, "States.IntrinsicFailure");
        assert_eq!(failure("States.StringToJson(1)", &input).error, "States.IntrinsicFailure");
    }

    #[test]
    fn arrays() {
        assert_eq!(
            eval("States.ArrayPartition(States.Array(1, 2, 3, 4, 5), 2)"),
            json!([[1, 2], [3, 4], [5]])
        );
        assert_eq!(eval("States.ArrayPartition(States.Array(), 2)"), json!([]));
        assert_eq!(eval("States.ArrayPartition(States.Array(1), 2.0)"), json!([[1]]));
        for bad in ["0", "-1", "1.5", "'2'"] {
            let e = failure(&format!("States.ArrayPartition(States.Array(1), {bad})"), &json!({}));
            assert_eq!(e.error, "States.IntrinsicFailure", "{bad}");
        }
        assert_eq!(
            eval("States.ArrayContains(States.Array(1, 'a', States.Array(2)), States.Array(2))"),
            json!(true)
        );
        assert_eq!(eval("States.ArrayContains(States.Array(1, 2), 3)"), json!(false));
        assert_eq!(eval("States.ArrayContains(States.Array(), null)"), json!(false));
        assert_eq!(eval("States.ArrayRange(1, 9, 2)"), json!([1, 3, 5, 7, 9]));
        assert_eq!(eval("States.ArrayRange(0, 10, 3)"), json!([0, 3, 6, 9]));
        assert_eq!(eval("States.ArrayRange(1, 9, 9)"), json!([1]));
        assert_eq!(eval("States.ArrayRange(5, 1, -2)"), json!([5, 3, 1]));
        assert_eq!(eval("States.ArrayRange(5, 1, 2)"), json!([]));
        assert_eq!(eval("States.ArrayRange(3, 3, 1)"), json!([3]));
        assert_eq!(eval("States.ArrayRange(0, 3, 1)"), json!([0, 1, 2, 3]));
        assert_eq!(eval("States.ArrayLength(States.ArrayRange(1, 1000, 1))"), json!(1000));
        for bad in [
            "1, 1001, 1",
            "-9223372036854775808, 9223372036854775807, 1",
            "1, 5, 0",
            "1.5, 5, 1",
            "1, 5, 'a'",
        ] {
            assert_eq!(
                failure(&format!("States.ArrayRange({bad})"), &json!({})).error,
                "States.IntrinsicFailure",
                "{bad}"
            );
        }
        assert_eq!(eval("States.ArrayGetItem(States.Array('a', 'b'), 1)"), json!("b"));
        for bad in ["2", "-1", "0.5"] {
            assert_eq!(
                failure(&format!("States.ArrayGetItem(States.Array(1), {bad})"), &json!({})).error,
                "States.IntrinsicFailure"
            );
        }
        assert_eq!(eval("States.ArrayLength(States.Array(1, 2, 3))"), json!(3));
        assert_eq!(failure("States.ArrayLength('abc')", &json!({})).error, "States.IntrinsicFailure");
        let input = json!([null, null, true, true, 1, 1, 1.1, 0, "x", "x", [], [], [null], [null], {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 1}]);
        assert_eq!(
            eval_on("States.ArrayUnique($)", &input).unwrap(),
            json!([null, true, 1, 1.1, 0, "x", [], [null], {"a": 1, "b": 2}, {"a": 1, "b": 1}])
        );
    }

    #[test]
    fn encoding_and_hashing() {
        assert_eq!(eval("States.Base64Encode('Data to encode')"), json!("RGF0YSB0byBlbmNvZGU="));
        assert_eq!(eval("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')"), json!("Data to encode"));
        assert_eq!(eval("States.Base64Encode('')"), json!(""));
        assert_eq!(failure("States.Base64Decode('***')", &json!({})).error, "States.IntrinsicFailure");
        assert_eq!(failure("States.Base64Decode('//8=')", &json!({})).error, "States.IntrinsicFailure");
        let long = json!({"s": "x".repeat(10_001)});
        assert_eq!(failure("States.Base64Encode($.s)", &long).error, "States.IntrinsicFailure");
        let hash = |alg: &str| eval(&format!("States.Hash('input data', '{alg}')"));
        assert_eq!(hash("MD5"), json!("812f45842bc6d66ee14572ce20db8e86"));
        assert_eq!(hash("SHA-1"), json!("aaff4a450a104cd177d28d18d74485e8cae074b7"));
        assert_eq!(
            hash("SHA-256"),
            json!("b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3")
        );
        assert_eq!(
            hash("SHA-384"),
            json!(
                "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562"
            )
        );
        assert_eq!(failure("States.Hash('x', 'SHA-3')", &json!({})).error, "States.IntrinsicFailure");
        assert_eq!(failure("States.Hash(1, 'MD5')", &json!({})).error, "States.IntrinsicFailure");
    }

    #[test]
    fn json_merge() {
        let input = json!({"a": {"x": {"p": 1}, "y": 1}, "b": {"x": {"q": 2}, "z": 3}});
        assert_eq!(
            eval_on("States.JsonMerge($.a, $.b, false)", &input).unwrap(),
            json!({"x": {"q": 2}, "y": 1, "z": 3})
        );
        assert_eq!(failure("States.JsonMerge($.a, $.b, true)", &input).error, "States.IntrinsicFailure");
        assert_eq!(failure("States.JsonMerge($.a, $.b, 'false')", &input).error, "States.IntrinsicFailure");
        assert_eq!(failure("States.JsonMerge($.a, 1, false)", &input).error, "States.IntrinsicFailure");
    }

    #[test]
    fn math() {
        let add = |a: &str, b: &str| eval(&format!("States.MathAdd({a}, {b})"));
        assert_eq!(add("-9", "3"), json!(-6));
        assert_eq!(add("1.49", "1.50"), json!(3));
        assert_eq!(add("-1.49", "-1.50"), json!(-2));
        assert_eq!(add("-1.50", "-1.51"), json!(-3));
        assert_eq!(add("0.5", "0"), json!(1));
        assert_eq!(add("2.5", "0"), json!(3));
        assert_eq!(add("-0.5", "0"), json!(0));
        assert_eq!(add("-2.5", "0"), json!(-2));
        assert_eq!(add("0.49999999999999994", "0"), json!(0));
        assert_eq!(failure("States.MathAdd('1', 2)", &json!({})).error, "States.IntrinsicFailure");
        assert_eq!(
            failure("States.MathAdd(9223372036854775807, 1)", &json!({})).error,
            "States.IntrinsicFailure"
        );

        for _ in 0..50 {
            let n = eval("States.MathRandom(1, 4)").as_i64().unwrap();
            assert!((1..4).contains(&n));
        }
        let seeded = eval("States.MathRandom(0, 1000, 42)");
        assert_eq!(eval("States.MathRandom(0, 1000, 42)"), seeded);
        assert!(eval("States.MathRandom(12.5, 44.51)").as_i64().is_some_and(|n| (13..45).contains(&n)));
        assert_eq!(failure("States.MathRandom(5, 5)", &json!({})).error, "States.IntrinsicFailure");
        // Unseeded draws come from the caller's generator, so a seed reproduces them.
        let draw = |seed| {
            Intrinsic::parse("States.MathRandom(0, 1000000)")
                .unwrap()
                .eval(&Value::Null, &Env::default(), &mut fastrand::Rng::with_seed(seed))
                .unwrap()
        };
        assert_eq!(draw(3), draw(3));
    }

    #[test]
    fn string_split() {
        let split =
            |s: &str, d: &str| eval_on("States.StringSplit($.s, $.d)", &json!({"s": s, "d": d})).unwrap();
        assert_eq!(split("1,2,3,4,5", ","), json!(["1", "2", "3", "4", "5"]));
        assert_eq!(split("This.is+a,test=string", ".+,="), json!(["This", "is", "a", "test", "string"]));
        assert_eq!(split(" , ", ","), json!([" ", " "]));
        assert_eq!(split(", , ,", ","), json!([" ", " "]));
        assert_eq!(split(",,,,", ","), json!([]));
        assert_eq!(split("split on T and \nnew line", "T\n"), json!(["split on ", " and ", "new line"]));
        assert_eq!(split("abc", ""), json!(["abc"]));
    }

    #[test]
    fn uuid_comes_from_rng() {
        let uuid = |seed| {
            Intrinsic::parse("States.UUID()")
                .unwrap()
                .eval(&Value::Null, &Env::default(), &mut fastrand::Rng::with_seed(seed))
                .unwrap()
        };
        let a = uuid(1);
        assert_eq!(a, uuid(1));
        assert_ne!(a, uuid(2));
        let parsed = uuid::Uuid::parse_str(a.as_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn nested_calls() {
        let input = json!({"csv": "3,1,3"});
        assert_eq!(
            eval_on("States.ArrayLength(States.ArrayUnique(States.StringSplit($.csv, ',')))", &input)
                .unwrap(),
            json!(2)
        );
        assert_eq!(
            eval_on(
                "States.JsonMerge(States.StringToJson('{\"k\": \"v\"}'), $$.Execution.Input, false)",
                &input
            )
            .unwrap(),
            json!({"k": "v", "csv": "3,1,3"})
        );
    }
}
