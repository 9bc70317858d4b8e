//! The JSONPath dialect of Step Functions: `$` (the state input), `$$` (the context object) or
//! `$name` (a workflow variable) followed by names, indices, wildcards, slices, unions, filters and `..` descent.
//!
//! Paths are parsed once, when the definition is loaded. A definite path (names and indices
//! only) selects by borrowing, so the hot `$.field` case neither allocates nor re-parses.
//!
//! # The rules: Jayway's, not RFC 9535's
//!
//! Step Functions evaluates paths with the Jayway JsonPath library (developer guide, "Paths in
//! Amazon States Language": "Step Functions uses the Jayway implementation"), whose answers differ
//! from the 2024 JSONPath RFC's. recflow follows Jayway where the two differ; each rule below is
//! pinned by a test here or in tests/engine.rs and, where AWS recorded it, by tests/conformance.rs.
//!
//! - **Accepted when the definition is read**: `.name`, `['name']` and `["name"]` (any
//!   character, `\'` escapes), `[n]`, `[*]` and `.*`, slices `[a:b]` (either bound optional),
//!   unions `[0,2]` and `['a','b']`, `..step` (deep scan), and filters `[?(...)]` over `@` names
//!   and indices with `==`, `!=`, `<`, `<=`, `>`, `>=` against a number, a quoted string,
//!   `true`, `false` or `null`, combined with `&&`, `||` and parentheses (`&&` binds tighter);
//!   `[?(@.x)]` tests that the member exists. Everything else is a definition error naming the
//!   state and field: Jayway's script expressions (`[(@.length-1)]`), functions (`.length()`),
//!   regular expressions (`=~`) and the `in`/`nin`/`subsetof` operators, which Step Functions
//!   documents no use of. Reference paths (ResultPath, ItemsPath, SecondsPath, a Choice's
//!   Variable, ...) take names and non-negative indices only.
//! - **Definite paths** (names and indices) give one value or nothing; nothing is a
//!   `States.Runtime` failure where a value is required ("could not be found in the input").
//! - **Indefinite paths** always give an array of the matches, in document order, possibly
//!   empty: a missing member inside a selection contributes nothing (`$.items[*].x` over items
//!   without `x` is `[]`).
//! - **An index or a slice of a non-array is an error while the path still stands on one node**:
//!   `$[1:]` of an object, or `$.a[0:2]` where `a` is a string, fails with `States.Runtime`
//!   (Jayway: "Filter: [1:] can only be applied to arrays"). Once a step has fanned out (a
//!   wildcard, slice, union, filter or deep scan), nodes it does not apply to are skipped
//!   (Jayway's multi-node evaluation suppresses the miss), so `$[*][0]` over `[[1], {"a": 2}]`
//!   is `[1]`.
//! - **Negative indexes** count from the end: `[-1]` is the last item and an index before the
//!   first selects nothing. Slice bounds count from the end when negative and are then clamped to
//!   the array, so `[-100:2]` is `[0:2]`, and an empty range gives `[]`.
//! - **Filters** on an array test each item; on an object they test the object itself (Jayway),
//!   giving `[object]` or `[]`. Numbers compare by value, strings by code point, and values of
//!   different kinds never compare (`<`, `>` and `==` are false, `!=` true); an item lacking
//!   the member fails every comparison.
//! - **ResultPath** writes through names and indices, creating missing objects; meeting a value
//!   of another kind is `States.ReferencePathConflict` (see [`JsonPath::set`]).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::map::Entry;
use serde_json::{Map, Value};

use super::env::Env;

#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    source: String,
    root: Root,
    steps: Vec<Step>,
    /// No step can produce more than one value.
    definite: bool,
}

/// What a path starts from.
#[derive(Debug, Clone, PartialEq)]
enum Root {
    /// `$`: the state's data.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    /// A negative index counts from the end (`[-1]` is the last item).
    Index(i64),
    Wildcard,
    Slice(Option<i64>, Option<i64>),
    Union(Vec<Key>),
    Filter(Filter),
    /// `..` followed by a step: the step applied at every level below (and at) the node.
    Descend(Box<Step>),
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Name(String),
    Index(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// `@.a.b` alone: the item has that member.
    Exists(Vec<Step>),
    Compare(Vec<Step>, Op, Value),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl JsonPath {
    /// Parses `$`, `$.a.b`, `$['a b']`, `$.a[0]`, `$.a-b`, `$.a[*]`, `$..x`, `$.a[1:3]`,
    /// `$.a[0,2]`, `$.a[?(@.price < 10)]`, and the same on `$$`.
    /// Parses a reference path: names and indices only (no wildcards, filters or slices), the
    /// kind ASL requires for ItemsPath, SecondsPath, a Choice rule's Variable and the like.
    /// `Err` says why, naming the text: `must be a reference path (names and indices only), not
    /// '$.items[*]'`.
    pub fn parse_reference(text: &str) -> Result<JsonPath, String> {
        match JsonPath::parse(text) {
            Ok(path) if path.is_reference() => Ok(path),
            Ok(_) => Err(format!("must be a reference path (names and indices only), not '{text}'")),
            Err(why) => Err(format!("must be a reference path such as $.order.total, not '{text}' ({why})")),
        }
    }

    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let invalid = |reason: String| format!("'{s}' is not a valid JSONPath: {reason}");
        let (root, rest) = if let Some(rest) = s.strip_prefix("$$") {
            (Root::Context, rest)
        } else if let Some(rest) = s.strip_prefix('$') {
            let name_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            if name_len > 0 {
                (Root::Variable(rest[..name_len].to_string()), &rest[name_len..])
            } else {
                (Root::Input, rest)
            }
        } else {
            return Err(invalid("it must start with '$'".into()));
        };
        let mut p = Parser { src: rest, pos: 0, depth: 0 };
        let steps = p.steps().map_err(invalid)?;
        let definite = steps.iter().all(|s| matches!(s, Step::Name(_) | Step::Index(_)));
        Ok(JsonPath { source: s.to_string(), root, steps, definite })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Starts with `$$`: evaluated against the context object.
    pub fn is_context(&self) -> bool {
        self.root == Root::Context
    }

    /// Starts with `$name`: evaluated against a workflow variable, whose name it gives.
    pub fn variable(&self) -> Option<&str> {
        match &self.root {
            Root::Variable(name) => Some(name),
            _ => None,
        }
    }

    /// What the path reads from: the input, the context object or the variable, as a message
    /// shows it; None for a variable that is not in scope.
    pub fn root_value<'a>(&self, input: &'a Value, env: &'a Env) -> Option<&'a Value> {
        match &self.root {
            Root::Input => Some(input),
            Root::Context => Some(&env.context),
            Root::Variable(name) => env.variables.get(name),
        }
    }

    /// A Reference Path in the ASL sense: only names and non-negative indices.
    pub fn is_reference(&self) -> bool {
        self.steps.iter().all(|s| matches!(s, Step::Name(_)) || matches!(s, Step::Index(i) if *i >= 0))
    }

    /// The value at this path in `input` (or `ctx` for `$$` paths). A definite path gives the
    /// one value, or `None` when a step is missing; an indefinite path gives an array of all
    /// matches, possibly empty.
    pub fn select<'a>(&self, input: &'a Value, env: &'a Env) -> Option<Cow<'a, Value>> {
        let root = self.root_value(input, env)?;
        if self.definite {
            return definite(&self.steps, root).map(Cow::Borrowed);
        }
        let mut nodes = vec![root];
        // Jayway's rule, which Step Functions follows: until a step has selected several nodes,
        // an index or a slice of a non-array is an error (`$[1:]` of an object is States.Runtime);
        // inside a multi-node selection, nodes that do not fit are skipped.
        let mut single = true;
        for step in &self.steps {
            let mut next = Vec::new();
            for node in &nodes {
                if single && !fits(step, node) {
                    return None;
                }
                apply(step, node, &mut next);
            }
            nodes = next;
            single &= matches!(step, Step::Name(_) | Step::Index(_));
        }
        Some(Cow::Owned(Value::Array(nodes.into_iter().cloned().collect())))
    }

    /// Why the path selected nothing, ending a cause: "could not be found in the input '{...}'",
    /// or, for a variable not in scope, that it is not defined.
    pub fn not_found(&self, input: &Value, env: &Env) -> String {
        match (self.root_value(input, env), &self.root) {
            (None, Root::Variable(name)) => format!("refers to the variable '${name}', which is not defined"),
            (root, _) => format!("could not be found in the input '{}'", root.unwrap_or(&Value::Null)),
        }
    }

    /// ResultPath semantics: puts `value` at this path in `target`, creating missing
    /// intermediate objects. Fails when a step meets a value of the wrong kind or an index out
    /// of range, `target` then left unchanged, with AWS's cause for `States.ReferencePathConflict`:
    /// `Unable to apply ReferencePath $.x to input "<the input as a JSON string>"` (as AWS
    /// reported it in aws/aws-cdk#29473 and cdklabs/construct-hub#459).
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), String> {
        if self.root != Root::Input || !self.is_reference() {
            return Err(format!("ResultPath \"{}\" is not a reference path on '$'", self.source));
        }
        if set_in(&self.steps, target, value).is_err() {
            let input = Value::String(target.to_string());
            return Err(format!("Unable to apply ReferencePath {} to input {input}", self.source));
        }
        Ok(())
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Follows names and indices only (filter operands and definite paths).
fn definite<'a>(steps: &[Step], root: &'a Value) -> Option<&'a Value> {
    let mut cur = root;
    for step in steps {
        cur = match (step, cur) {
            (Step::Name(k), Value::Object(map)) => map.get(k)?,
            (Step::Index(i), Value::Array(items)) => items.get(resolve_index(*i, items.len())?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn resolve_index(i: i64, len: usize) -> Option<usize> {
    if i >= 0 { usize::try_from(i).ok() } else { len.checked_sub(usize::try_from(i.unsigned_abs()).ok()?) }
}

/// Whether `step` can apply to `node` at all: an index or a slice needs an array. (A missing key
/// still gives an empty selection, as the recorded cases and earlier tests have it.)
fn fits(step: &Step, node: &Value) -> bool {
    !matches!((step, node), (Step::Index(_) | Step::Slice(..), n) if !n.is_array())
}

/// Appends to `out` what `step` selects from `node`.
fn apply<'a>(step: &Step, node: &'a Value, out: &mut Vec<&'a Value>) {
    match (step, node) {
        (Step::Name(k), Value::Object(map)) => out.extend(map.get(k)),
        (Step::Index(i), Value::Array(items)) => {
            out.extend(resolve_index(*i, items.len()).and_then(|i| items.get(i)));
        }
        (Step::Wildcard, Value::Object(map)) => out.extend(map.values()),
        (Step::Wildcard, Value::Array(items)) => out.extend(items),
        (Step::Slice(from, to), Value::Array(items)) => {
            let len = items.len() as i64;
            // Python-like bounds: negative counts from the end, then clamp to the array.
            let bound = |b: i64| (if b < 0 { b + len } else { b }).clamp(0, len) as usize;
            let (from, to) = (bound(from.unwrap_or(0)), bound(to.unwrap_or(len)));
            if from < to {
                out.extend(&items[from..to]);
            }
        }
        (Step::Union(keys), _) => {
            for key in keys {
                let step = match key {
                    Key::Name(k) => Step::Name(k.clone()),
                    Key::Index(i) => Step::Index(*i),
                };
                apply(&step, node, out);
            }
        }
        (Step::Filter(f), Value::Array(items)) => out.extend(items.iter().filter(|v| f.matches(v))),
        // Jayway tests a filter on an object against the object itself.
        (Step::Filter(f), Value::Object(_)) if f.matches(node) => out.push(node),
        (Step::Descend(inner), _) => descend(inner, node, out),
        _ => {}
    }
}

/// Applies `step` at `node` and at every node below it, in document order.
fn descend<'a>(step: &Step, node: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        // A filter under `..` tests the children of every node (array items and object
        // members), so that no item is matched twice.
        Step::Filter(f) => match node {
            Value::Array(items) => out.extend(items.iter().filter(|v| f.matches(v))),
            Value::Object(map) => out.extend(map.values().filter(|v| f.matches(v))),
            _ => {}
        },
        _ => apply(step, node, out),
    }
    match node {
        Value::Array(items) => items.iter().for_each(|v| descend(step, v, out)),
        Value::Object(map) => map.values().for_each(|v| descend(step, v, out)),
        _ => {}
    }
}

/// The fallible half of [`JsonPath::set`]. It fails only before changing anything: a missing
/// member is created (as `{}`) only when the next step is a name, which then cannot fail.
fn set_in(steps: &[Step], target: &mut Value, value: Value) -> Result<(), ()> {
    let Some((last, init)) = steps.split_last() else {
        *target = value;
        return Ok(());
    };
    let mut cur = target;
    for (i, step) in init.iter().enumerate() {
        let next_is_name = matches!(steps.get(i + 1), Some(Step::Name(_)));
        cur = match (step, cur) {
            (Step::Name(k), Value::Object(map)) => match map.entry(k.as_str()) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) if next_is_name => v.insert(Value::Object(Map::new())),
                Entry::Vacant(_) => return Err(()),
            },
            (Step::Index(i), Value::Array(items)) => {
                let i = usize::try_from(*i).map_err(|_| ())?;
                items.get_mut(i).ok_or(())?
            }
            _ => return Err(()),
        };
    }
    match (last, cur) {
        (Step::Name(k), Value::Object(map)) => {
            map.insert(k.clone(), value);
            Ok(())
        }
        (Step::Index(i), Value::Array(items)) => {
            let i = usize::try_from(*i).map_err(|_| ())?;
            *items.get_mut(i).ok_or(())? = value;
            Ok(())
        }
        _ => Err(()),
    }
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        match self {
            Filter::Exists(path) => definite(path, item).is_some(),
            Filter::Compare(path, op, literal) => {
                definite(path, item).is_some_and(|v| compare(v, *op, literal))
            }
            Filter::And(a, b) => a.matches(item) && b.matches(item),
            Filter::Or(a, b) => a.matches(item) || b.matches(item),
        }
    }
}

/// Numbers compare by value and strings lexicographically; values of different kinds are
/// only ever unequal.
fn compare(left: &Value, op: Op, right: &Value) -> bool {
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ if left == right => Some(Ordering::Equal),
        _ => None,
    };
    match op {
        Op::Eq => ordering == Some(Ordering::Equal),
        Op::Ne => ordering != Some(Ordering::Equal),
        Op::Lt => ordering == Some(Ordering::Less),
        Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ordering == Some(Ordering::Greater),
        Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// Characters that end or cannot appear in a dot-notation name.
fn is_name_char(c: char) -> bool {
    !c.is_whitespace() && !".[]()'\",@?*=!<>&|".contains(c)
}

/// A cursor over the text after `$` / `$$`; errors are reasons, completed by the caller.
/// How deep parentheses may nest in a filter expression; deeper input is refused rather than
/// overflowing the stack.
pub const MAX_NESTING: usize = 64;

struct Parser<'s> {
    src: &'s str,
    pos: usize,
    /// Parentheses open around the current position in a filter (bounded, see [`MAX_NESTING`]).
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, s: &str) -> bool {
        let found = self.src[self.pos..].starts_with(s);
        if found {
            self.pos += s.len();
        }
        found
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn expect(&mut self, s: &str, what: &str) -> Result<(), String> {
        self.skip_ws();
        if self.eat(s) {
            Ok(())
        } else if self.peek().is_none() {
            Err(format!("unclosed {what}"))
        } else {
            Err(format!("expected '{s}' at position {}", self.pos + 1))
        }
    }

    fn steps(&mut self) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        while let Some(c) = self.peek() {
            let step = match c {
                '.' if self.eat("..") => {
                    let inner = match self.peek() {
                        Some('[') => {
                            self.pos += 1;
                            self.bracket()?
                        }
                        _ => self.dot_step()?,
                    };
                    Step::Descend(Box::new(inner))
                }
                '.' => {
                    self.pos += 1;
                    self.dot_step()?
                }
                '[' => {
                    self.pos += 1;
                    self.bracket()?
                }
                _ => return Err(format!("unexpected '{c}' at position {}", self.pos + 1)),
            };
            steps.push(step);
        }
        Ok(steps)
    }

    /// After `.` or `..`: `*` or a name.
    fn dot_step(&mut self) -> Result<Step, String> {
        if self.eat("*") {
            return Ok(Step::Wildcard);
        }
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.bump();
        }
        if start == self.pos {
            return match self.peek() {
                None => Err("it ends with '.'".into()),
                Some(c) => Err(format!("unexpected '{c}' at position {}", self.pos + 1)),
            };
        }
        Ok(Step::Name(self.src[start..self.pos].to_string()))
    }

    /// After `[`: `*`, quoted names, indices, a slice, or a filter, then `]`.
    fn bracket(&mut self) -> Result<Step, String> {
        self.skip_ws();
        let step = match self.peek() {
            None => return Err("unclosed bracket".into()),
            Some('*') => {
                self.pos += 1;
                Step::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.expect("(", "filter")?;
                let filter = self.or_filter()?;
                self.expect(")", "filter")?;
                Step::Filter(filter)
            }
            Some('\'' | '"') => {
                let mut keys = vec![Key::Name(self.quoted()?)];
                while self.list_continues() {
                    self.skip_ws();
                    keys.push(Key::Name(self.quoted()?));
                }
                union_or_single(keys)
            }
            Some(_) => self.numeric_bracket()?,
        };
        self.expect("]", "bracket")?;
        Ok(step)
    }

    /// `,` before the next list item.
    fn list_continues(&mut self) -> bool {
        self.skip_ws();
        self.eat(",")
    }

    /// Indices, unions of indices and slices.
    fn numeric_bracket(&mut self) -> Result<Step, String> {
        let first = self.opt_int()?;
        self.skip_ws();
        if self.eat(":") {
            self.skip_ws();
            let to = self.opt_int()?;
            return Ok(Step::Slice(first, to));
        }
        let Some(first) = first else {
            return Err(format!("expected an index at position {}", self.pos + 1));
        };
        let mut keys = vec![Key::Index(first)];
        while self.list_continues() {
            self.skip_ws();
            match self.opt_int()? {
                Some(i) => keys.push(Key::Index(i)),
                None => return Err(format!("expected an index at position {}", self.pos + 1)),
            }
        }
        Ok(union_or_single(keys))
    }

    fn opt_int(&mut self) -> Result<Option<i64>, String> {
        let start = self.pos;
        self.eat("-");
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| format!("bad index '{text}' at position {}", start + 1))
    }

    /// A '...' or "..." string; `\` escapes the next character.
    fn quoted(&mut self) -> Result<String, String> {
        let Some(quote @ ('\'' | '"')) = self.bump() else {
            return Err(format!("expected a quoted name at position {}", self.pos));
        };
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unclosed quote".into()),
                Some('\\') => out.push(self.bump().ok_or("unclosed quote")?),
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn or_filter(&mut self) -> Result<Filter, String> {
        let mut left = self.and_filter()?;
        loop {
            self.skip_ws();
            if !self.eat("||") {
                return Ok(left);
            }
            left = Filter::Or(Box::new(left), Box::new(self.and_filter()?));
        }
    }

    fn and_filter(&mut self) -> Result<Filter, String> {
        let mut left = self.filter_term()?;
        loop {
            self.skip_ws();
            if !self.eat("&&") {
                return Ok(left);
            }
            left = Filter::And(Box::new(left), Box::new(self.filter_term()?));
        }
    }

    /// `( expr )`, or `@path` optionally followed by an operator and a literal.
    fn filter_term(&mut self) -> Result<Filter, String> {
        self.skip_ws();
        if self.eat("(") {
            if self.depth >= MAX_NESTING {
                return Err(format!("filter parentheses nested more than {MAX_NESTING} deep"));
            }
            self.depth += 1;
            let inner = self.or_filter();
            self.depth -= 1;
            let inner = inner?;
            self.expect(")", "parenthesis")?;
            return Ok(inner);
        }
        if !self.eat("@") {
            return Err(format!("expected '@' at position {}", self.pos + 1));
        }
        let mut path = Vec::new();
        loop {
            if self.eat(".") {
                match self.dot_step()? {
                    Step::Name(n) => path.push(Step::Name(n)),
                    _ => return Err("only names and indices may follow '@'".into()),
                }
            } else if self.src[self.pos..].starts_with('[') {
                self.pos += 1;
                match self.bracket()? {
                    step @ (Step::Name(_) | Step::Index(_)) => path.push(step),
                    _ => return Err("only names and indices may follow '@'".into()),
                }
            } else {
                break;
            }
        }
        self.skip_ws();
        let op =
            [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
                .into_iter()
                .find(|(text, _)| self.eat(text))
                .map(|(_, op)| op);
        match op {
            None => Ok(Filter::Exists(path)),
            Some(op) => Ok(Filter::Compare(path, op, self.literal()?)),
        }
    }

    /// A number, a quoted string, `true`, `false` or `null`.
    fn literal(&mut self) -> Result<Value, String> {
        self.skip_ws();
        if matches!(self.peek(), Some('\'' | '"')) {
            return self.quoted().map(Value::String);
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "null" => Ok(Value::Null),
            _ => match serde_json::from_str::<Value>(text) {
                Ok(n @ Value::Number(_)) => Ok(n),
                _ => Err(format!("expected a literal at position {}", start + 1)),
            },
        }
    }
}

fn union_or_single(mut keys: Vec<Key>) -> Step {
    match (keys.len(), keys.pop()) {
        (1, Some(Key::Name(n))) => Step::Name(n),
        (1, Some(Key::Index(i))) => Step::Index(i),
        (_, Some(last)) => {
            keys.push(last);
            Step::Union(keys)
        }
        (_, None) => Step::Union(keys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(path: &str, input: &Value) -> Option<Value> {
        JsonPath::parse(path).unwrap().select(input, &Env::default()).map(Cow::into_owned)
    }

    /// The rules written in the module doc, one assertion each.
    #[test]
    fn jayway_rules_in_the_module_doc() {
        for refused in [
            "$[(@.length-1)]",
            "$.a.length()",
            "$.a[?(@.x =~ /a/)]",
            "$.a[?(@.x in [1])]",
            "$.a[?(@.x > $.y)]",
        ] {
            assert!(JsonPath::parse(refused).is_err(), "{refused} is accepted");
        }
        assert_eq!(sel("$.items[*].x", &json!({"items": [{}, {"y": 1}]})), Some(json!([])));
        assert_eq!(sel("$[1:]", &json!({"mode": "fast"})), None);
        assert_eq!(sel("$.a[0:2]", &json!({"a": "text"})), None);
        assert_eq!(sel("$[*][0]", &json!([[1], {"a": 2}])), Some(json!([1])));
        assert_eq!(sel("$[-1]", &json!([1, 2, 3])), Some(json!(3)));
        assert_eq!(sel("$[-4]", &json!([1, 2, 3])), None);
        assert_eq!(sel("$[-100:2]", &json!([1, 2, 3])), Some(json!([1, 2])));
        assert_eq!(sel("$[2:1]", &json!([1, 2, 3])), Some(json!([])));
        assert_eq!(sel("$[?(@.a == 1)]", &json!({"a": 1})), Some(json!([{"a": 1}])));
        assert_eq!(sel("$[?(@.a == 2)]", &json!({"a": 1})), Some(json!([])));
        let mixed = json!([{"v": 1}, {"v": "1"}, {"v": "b"}, {}]);
        assert_eq!(sel("$[?(@.v != 1)]", &mixed), Some(json!([{"v": "1"}, {"v": "b"}])));
        assert_eq!(sel("$[?(@.v < 'c')]", &mixed), Some(json!([{"v": "1"}, {"v": "b"}])));
        assert_eq!(
            sel("$[?(@.v == 1 || @.v == 'b' && @.v != 1)]", &mixed),
            Some(json!([{"v": 1}, {"v": "b"}]))
        );
    }

    fn store() -> Value {
        json!({
            "store": {
                "book": [
                    {"title": "A", "price": 8.95, "isbn": "1"},
                    {"title": "B", "price": 12.99},
                    {"title": "C", "price": 8, "isbn": "3"},
                    {"title": "D", "price": 22.99, "tag": null}
                ],
                "bicycle": {"color": "red", "price": 19.95}
            },
            "a-b": 1,
            "a b": 2
        })
    }

    #[test]
    fn root_and_names() {
        let v = store();
        assert_eq!(sel("$", &v), Some(v.clone()));
        assert_eq!(sel("$.store.bicycle.color", &v), Some(json!("red")));
        assert_eq!(sel("$['store']['bicycle'][\"color\"]", &v), Some(json!("red")));
        assert_eq!(sel("$.a-b", &v), Some(json!(1)));
        assert_eq!(sel("$['a b']", &v), Some(json!(2)));
        assert_eq!(sel("$.store.book[1].title", &v), Some(json!("B")));
        assert_eq!(sel("$.store.book[-1].title", &v), Some(json!("D")));
    }

    #[test]
    fn definite_misses_are_none() {
        let v = store();
        assert_eq!(sel("$.nope", &v), None);
        assert_eq!(sel("$.store.book[9]", &v), None);
        assert_eq!(sel("$.store.book[-9]", &v), None);
        assert_eq!(sel("$.store.bicycle.color.x", &v), None);
        assert_eq!(sel("$.store[0]", &v), None);
        assert_eq!(sel("$.store.book.title", &v), None);
        assert_eq!(sel("$.store.book[3].tag", &v), Some(Value::Null));
    }

    #[test]
    fn definite_select_borrows() {
        let v = json!({"i": 1});
        let p = JsonPath::parse("$.i").unwrap();
        assert!(matches!(p.select(&v, &Env::default()), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn context_paths() {
        let ctx = json!({"Execution": {"Name": "run-1"}});
        let env = Env::with_context(ctx.clone());
        let p = JsonPath::parse("$$.Execution.Name").unwrap();
        assert!(p.is_context());
        assert_eq!(p.select(&json!({}), &env).unwrap().into_owned(), json!("run-1"));
        assert_eq!(JsonPath::parse("$$").unwrap().select(&json!(1), &env).unwrap().into_owned(), ctx);
    }

    #[test]
    fn variable_paths() {
        let mut env = Env::default();
        env.variables.insert("order".into(), json!({"items": [{"sku": "a"}, {"sku": "b"}]}));
        let p = JsonPath::parse("$order.items[1].sku").unwrap();
        assert_eq!(p.variable(), Some("order"));
        assert_eq!(p.select(&json!({}), &env).unwrap().into_owned(), json!("b"));
        assert_eq!(
            JsonPath::parse("$order.items[*].sku").unwrap().select(&json!({}), &env).unwrap().into_owned(),
            json!(["a", "b"])
        );
        let missing = JsonPath::parse("$nope.x").unwrap();
        assert_eq!(missing.select(&json!({}), &env), None);
        assert!(missing.not_found(&json!({}), &env).contains("'$nope', which is not defined"));
        assert!(!JsonPath::parse("$.x").unwrap().is_context());
    }

    #[test]
    fn wildcards_and_descent() {
        let v = store();
        assert_eq!(sel("$.store.book[*].title", &v), Some(json!(["A", "B", "C", "D"])));
        assert_eq!(sel("$.store.book.*.isbn", &v), Some(json!(["1", "3"])));
        assert_eq!(sel("$.store.bicycle.*", &v), Some(json!(["red", 19.95])));
        assert_eq!(sel("$..price", &v), Some(json!([8.95, 12.99, 8, 22.99, 19.95])));
        assert_eq!(sel("$..book[0].title", &v), Some(json!(["A"])));
        assert_eq!(sel("$..nothing", &v), Some(json!([])));
        assert_eq!(sel("$.nothing[*]", &v), Some(json!([])));
        assert_eq!(sel("$..[1]", &json!([[1, 2], [3]])), Some(json!([[3], 2])));
    }

    #[test]
    fn slices_and_unions() {
        let v = json!({"a": [0, 1, 2, 3, 4]});
        assert_eq!(sel("$.a[1:3]", &v), Some(json!([1, 2])));
        assert_eq!(sel("$.a[3:]", &v), Some(json!([3, 4])));
        assert_eq!(sel("$.a[:2]", &v), Some(json!([0, 1])));
        assert_eq!(sel("$.a[-1:]", &v), Some(json!([4])));
        assert_eq!(sel("$.a[:-3]", &v), Some(json!([0, 1])));
        assert_eq!(sel("$.a[3:1]", &v), Some(json!([])));
        assert_eq!(sel("$.a[2:99]", &v), Some(json!([2, 3, 4])));
        assert_eq!(sel("$.a[0,2]", &v), Some(json!([0, 2])));
        assert_eq!(sel("$.a[ 0 , 9 , 4 ]", &v), Some(json!([0, 4])));
        assert_eq!(sel("$['a','b']", &json!({"a": 1, "b": 2})), Some(json!([1, 2])));
    }

    #[test]
    fn filters() {
        let v = store();
        let titles = |f: &str| sel(&format!("$.store.book[?({f})].title"), &v);
        assert_eq!(titles("@.price < 10"), Some(json!(["A", "C"])));
        assert_eq!(titles("@.price<=8"), Some(json!(["C"])));
        assert_eq!(titles("@.price > 20"), Some(json!(["D"])));
        assert_eq!(titles("@.price >= 12.99"), Some(json!(["B", "D"])));
        assert_eq!(titles("@.title == 'B'"), Some(json!(["B"])));
        assert_eq!(titles("@.title == \"B\""), Some(json!(["B"])));
        assert_eq!(titles("@.title != 'B'"), Some(json!(["A", "C", "D"])));
        assert_eq!(titles("@.title > 'B'"), Some(json!(["C", "D"])));
        assert_eq!(titles("@.isbn"), Some(json!(["A", "C"])));
        assert_eq!(titles("@.tag == null"), Some(json!(["D"])));
        assert_eq!(titles("@.price == '8'"), Some(json!([])));
        assert_eq!(titles("@.price < 10 && @.isbn == '3'"), Some(json!(["C"])));
        assert_eq!(titles("@.price < 9 || @.price > 20"), Some(json!(["A", "C", "D"])));
        assert_eq!(sel("$[?(@ > 1)]", &json!([1, 2, 3])), Some(json!([2, 3])));
        assert_eq!(
            sel("$[?(@.ok == true)].n", &json!([{"ok": true, "n": 1}, {"ok": false, "n": 2}])),
            Some(json!([1]))
        );
        assert_eq!(sel("$..[?(@.price > 20)].title", &v), Some(json!(["D"])));
        assert_eq!(
            sel("$.x[?(@.a[0] == 1)]", &json!({"x": [{"a": [1]}, {"a": [2]}]})),
            Some(json!([{"a": [1]}]))
        );
    }

    #[test]
    fn reference_paths() {
        for p in ["$", "$.a", "$.a[0].b", "$['a b'][2]", "$$.Execution.Id"] {
            assert!(JsonPath::parse(p).unwrap().is_reference(), "{p}");
        }
        for p in ["$.a[*]", "$..a", "$.a[1:2]", "$.a[0,1]", "$.a[?(@.x)]", "$.a[-1]", "$.*"] {
            assert!(!JsonPath::parse(p).unwrap().is_reference(), "{p}");
        }
    }

    #[test]
    fn parse_errors() {
        let err = |p: &str| JsonPath::parse(p).unwrap_err();
        assert_eq!(err("$.a["), "'$.a[' is not a valid JSONPath: unclosed bracket");
        assert!(err("a.b").contains("must start with '$'"));
        assert!(err("$.").contains("ends with '.'"));
        assert!(err("$.a[0").contains("unclosed bracket"));
        assert!(err("$.a['x").contains("unclosed quote"));
        assert!(err("$.a[?(@.x <)]").contains("expected a literal"));
        assert!(err("$.a[?(@.x == 1]").contains("expected ')'"));
        assert!(err("$.a[x]").contains("expected an index"));
        assert!(err("$.a b").contains("unexpected ' '"));
        assert!(err("$.a..").contains("ends with '.'"));
        assert_eq!(JsonPath::parse("$.a").unwrap().as_str(), "$.a");
    }

    #[test]
    fn set_result_path() {
        let set = |path: &str, mut target: Value, value: Value| {
            JsonPath::parse(path).unwrap().set(&mut target, value).map(|()| target)
        };
        assert_eq!(set("$", json!({"a": 1}), json!(2)), Ok(json!(2)));
        assert_eq!(set("$.b", json!({"a": 1}), json!(2)), Ok(json!({"a": 1, "b": 2})));
        assert_eq!(set("$.a", json!({"a": 1}), json!(2)), Ok(json!({"a": 2})));
        assert_eq!(set("$.x.y.z", json!({}), json!(1)), Ok(json!({"x": {"y": {"z": 1}}})));
        assert_eq!(set("$.a.b", json!({"a": {"c": 0}}), json!(1)), Ok(json!({"a": {"c": 0, "b": 1}})));
        assert_eq!(set("$.a[1]", json!({"a": [0, 0]}), json!(1)), Ok(json!({"a": [0, 1]})));
        assert_eq!(set("$.a[0].b", json!({"a": [{}]}), json!(1)), Ok(json!({"a": [{"b": 1}]})));
        assert_eq!(set("$['a b']", json!({}), json!(1)), Ok(json!({"a b": 1})));
    }

    #[test]
    fn set_failures_leave_target_alone() {
        let fail = |path: &str, target: Value| {
            let mut t = target.clone();
            let err = JsonPath::parse(path).unwrap().set(&mut t, json!(1)).unwrap_err();
            assert_eq!(t, target, "{path} changed the target");
            err
        };
        assert_eq!(
            fail("$.a.b", json!({"a": "s"})),
            r#"Unable to apply ReferencePath $.a.b to input "{\"a\":\"s\"}""#
        );
        assert_eq!(fail("$.x", json!("text")), r#"Unable to apply ReferencePath $.x to input "\"text\"""#);
        assert!(fail("$.a.b", json!({"a": 3})).starts_with("Unable to apply"));
        assert!(fail("$.a.b", json!({"a": null})).starts_with("Unable to apply"));
        assert!(fail("$.a[2]", json!({"a": [0]})).starts_with("Unable to apply"));
        assert!(fail("$.a[0]", json!({})).starts_with("Unable to apply"));
        assert!(fail("$.a[0].b", json!({"a": {}})).starts_with("Unable to apply"));
        assert!(fail("$.a[*]", json!({"a": [0]})).contains("not a reference path"));
        assert!(fail("$$.a", json!({})).contains("not a reference path"));
    }
}
