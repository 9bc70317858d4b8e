//! The typed form of a state machine, read from its JSON with every problem reported at its
//! place (`States.Train.Retry[0].BackoffRate: must be >= 1.0, not 0.5`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::choice::{ChoiceRule, parse_choice_rule};
use super::errors::DefinitionError;
pub use super::fields::MAX_SECONDS;
use super::fields::{Fields, kind};
use super::intrinsics::Intrinsic;
use super::jsonata::{self, Expr};
use super::path::JsonPath;
use super::payload::Template;
pub use super::query::{Payload, QueryLanguage};
use super::retry::{Catcher, Retrier, parse_catch, parse_retry};

/// Prefix of messages about valid ASL that recflow does not run, so callers can tell
/// "not supported" from "invalid".
pub const UNSUPPORTED: &str = "not supported by recflow";

#[derive(Debug, Clone)]
pub struct StateMachine {
    pub comment: Option<String>,
    pub start_at: String,
    /// In document order.
    pub states: Vec<State>,
    index: HashMap<String, usize>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub comment: Option<String>,
    /// The state's QueryLanguage, or its machine's: which of the fields below it may have.
    pub language: QueryLanguage,
    pub kind: Kind,
    pub input_path: PathField,
    pub output_path: PathField,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: PathField,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// Assign: the workflow variables the state sets as it leaves (for a Choice state, when
    /// Default is taken; a matching rule's own Assign applies otherwise).
    pub assign: Option<Payload>,
    /// JSONata: Arguments, what a Task sends or each Parallel branch gets.
    pub arguments: Option<jsonata::Template>,
    /// JSONata: Output, the state's output (its result, or its input for Pass, Wait, Choice and
    /// Succeed, when absent).
    pub output: Option<jsonata::Template>,
    /// None means End (or a state that never continues: Choice, Succeed, Fail).
    pub next: Option<String>,
    /// Whether anything in the state reads the context object (`$$`): building it costs a
    /// copy of the execution input, so it is built only for states that use it.
    pub uses_context: bool,
    /// Whether anything in the state may read a workflow variable (`$name`).
    pub uses_variables: bool,
}

/// InputPath, OutputPath and ResultPath: absent means `$`, JSON null has its own meaning.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PathField {
    #[default]
    Default,
    Null,
    Path(JsonPath),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Pass { result: Option<Value> },
    Task(Task),
    Choice { choices: Vec<ChoiceRule>, default: Option<String> },
    Wait(WaitFor),
    Succeed,
    Fail { error: Option<Dynamic>, cause: Option<Dynamic> },
    Parallel { branches: Vec<StateMachine> },
    Map(Box<MapState>),
}

/// What a Map state (inline mode) does beyond the fields every state has. The older
/// `Parameters` field of a Map is its ItemSelector; `Iterator` is its ItemProcessor.
#[derive(Debug, Clone)]
pub struct MapState {
    /// The states run for each item (ItemProcessor or Iterator).
    pub processor: StateMachine,
    /// Where the items are in the effective input; None means `$`.
    pub items_path: Option<JsonPath>,
    /// JSONata: Items, the array to iterate over (the state input when absent).
    pub items: Option<jsonata::Template>,
    /// Builds each iteration's input from `$$.Map.Item.Index` / `$$.Map.Item.Value`
    /// (`$states.context.Map.Item` in JSONata).
    pub item_selector: Option<Payload>,
    /// MaxConcurrency (0 = no bound of its own) or MaxConcurrencyPath.
    pub max_concurrency: Option<Bound<u64>>,
    /// ToleratedFailureCount or ToleratedFailureCountPath.
    pub tolerated_failure_count: Option<Bound<u64>>,
    /// ToleratedFailurePercentage or ToleratedFailurePercentagePath, 0 to 100.
    pub tolerated_failure_percentage: Option<Bound<f64>>,
    /// ItemReader, ItemBatcher or ResultWriter: distributed-mode fields recflow does not run.
    pub distributed_fields: Vec<&'static str>,
}

/// A number given in the definition or read from the input at run time (`...Path`).
#[derive(Debug, Clone, PartialEq)]
pub enum Bound<T> {
    Fixed(T),
    Path(JsonPath),
    /// JSONata: an expression evaluated when the state runs.
    Expr(Box<Expr>),
}

#[derive(Debug, Clone)]
pub struct Task {
    pub resource: String,
    pub timeout: Option<Seconds>,
    pub heartbeat: Option<Seconds>,
    pub credentials: Option<Payload>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seconds {
    Fixed(u64),
    Path(JsonPath),
    /// JSONata: an expression evaluated when the state runs.
    Expr(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(JsonPath),
    Timestamp(DateTime<Utc>),
    TimestampPath(JsonPath),
    /// JSONata: `"Seconds": "{% ... %}"`.
    SecondsExpr(Box<Expr>),
    /// JSONata: `"Timestamp": "{% ... %}"`.
    TimestampExpr(Box<Expr>),
}

/// A Fail state's Error or Cause: a literal, or a path / intrinsic (ErrorPath, CausePath).
#[derive(Debug, Clone)]
pub enum Dynamic {
    Literal(String),
    Path(JsonPath),
    Call(Box<Intrinsic>),
    /// JSONata: `"Error": "{% ... %}"`.
    Expr(Box<Expr>),
}

impl Kind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Pass { .. } => "Pass",
            Kind::Task(_) => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map { .. } => "Map",
        }
    }
}

impl State {
    /// Where the state may pass control, each with the field that says so: `("Next", Some(..))`,
    /// `("Choices[0]", Some(..))`, `("Default", Some(..))`, `("Catch States.ALL", Some(..))`;
    /// `None` is the end of the state's scope (End, Succeed, Fail). Retry, which stays in the
    /// state, is not a transition.
    pub fn transitions(&self) -> Vec<(String, Option<&str>)> {
        let mut out = Vec::new();
        match &self.kind {
            Kind::Choice { choices, default } => {
                out.extend(
                    choices.iter().enumerate().map(|(i, c)| (format!("Choices[{i}]"), Some(c.next.as_str()))),
                );
                out.extend(default.iter().map(|d| ("Default".to_string(), Some(d.as_str()))));
            }
            Kind::Succeed | Kind::Fail { .. } => out.push((String::new(), None)),
            _ => out.push(("Next".to_string(), self.next.as_deref())),
        }
        out.extend(
            self.catch
                .iter()
                .map(|c| (format!("Catch {}", c.error_equals.join(" | ")), Some(c.next.as_str()))),
        );
        out
    }
}

impl StateMachine {
    /// Reads a definition from JSON text; `Err` holds every problem found.
    /// Parses and checks a definition's text: JSON, no key twice in one object (a parser would
    /// keep only one of them), then [`StateMachine::from_json`]'s checks.
    pub fn parse(text: &str) -> Result<StateMachine, Vec<DefinitionError>> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| vec![DefinitionError::new("", format!("not valid JSON: {e}"))])?;
        if let Some((at, key)) = super::duplicate_keys::first_duplicate(text) {
            return Err(vec![DefinitionError::new(
                at,
                format!(
                    "the key '{key}' appears twice; JSON keeps only one of them, so the other would be lost"
                ),
            )]);
        }
        Self::from_json(&value)
    }

    pub fn from_json(value: &Value) -> Result<StateMachine, Vec<DefinitionError>> {
        let mut errors = Vec::new();
        let machine = parse_machine(value, "", true, Inherited::default(), &mut errors);
        if let Some(machine) = &machine {
            let mut seen = HashSet::new();
            unique_names(machine, &mut seen, &mut errors);
        }
        match machine {
            Some(m) if errors.is_empty() => Ok(m),
            _ => Err(errors),
        }
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }

    /// Task resources of this machine and nested ones, with the state that names each.
    pub fn task_resources(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        for state in &self.states {
            match &state.kind {
                Kind::Task(task) => out.push((state.name.as_str(), task.resource.as_str())),
                Kind::Parallel { branches } => branches.iter().for_each(|b| out.extend(b.task_resources())),
                Kind::Map(map) => out.extend(map.processor.task_resources()),
                _ => {}
            }
        }
        out
    }
}

fn unique_names(m: &StateMachine, seen: &mut HashSet<String>, errors: &mut Vec<DefinitionError>) {
    for state in &m.states {
        if !seen.insert(state.name.clone()) {
            errors.push(DefinitionError::new(
                format!("States.{}", state.name),
                "state names must be unique across the whole state machine, including Parallel branches and Map processors",
            ));
        }
        match &state.kind {
            Kind::Parallel { branches } => branches.iter().for_each(|b| unique_names(b, seen, errors)),
            Kind::Map(map) => unique_names(&map.processor, seen, errors),
            _ => {}
        }
    }
}

/// What a machine's states take from around them: the QueryLanguage they use unless they (or
/// the machine) say otherwise (JSONPath at the top, the enclosing state's inside a Parallel or
/// Map), and whether JSONPath is refused because the top level chose JSONata ("You cannot revert
/// a top-level JSONata-based state machine to a mix of JSONata and JSONPath states": developer
/// guide, state machine structure). A distributed Map's ItemProcessor runs as child workflows
/// and chooses again.
#[derive(Debug, Clone, Copy, Default)]
struct Inherited {
    language: QueryLanguage,
    jsonata_only: bool,
}

impl Inherited {
    /// The QueryLanguage field of a machine or state, refused as JSONPath where JSONata rules.
    fn read(self, f: &mut Fields<'_>) -> QueryLanguage {
        match query_language(f) {
            Some(QueryLanguage::JsonPath) if self.jsonata_only => {
                f.error(
                    "QueryLanguage",
                    "cannot be JSONPath in a machine whose top-level QueryLanguage is JSONata (Step Functions refuses the mix that way round): write the state in JSONata, or make the top level JSONPath and mark the JSONata states",
                );
                QueryLanguage::Jsonata
            }
            Some(language) => language,
            None => self.language,
        }
    }
}

fn parse_machine(
    value: &Value,
    at: &str,
    top: bool,
    inherited: Inherited,
    errors: &mut Vec<DefinitionError>,
) -> Option<StateMachine> {
    let mut f = Fields::of(value, at, errors)?;
    if top {
        f.only(
            &["Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"],
            "a state machine",
        );
    } else {
        f.only(
            &["Comment", "StartAt", "States", "ProcessorConfig", "QueryLanguage"],
            "a nested state machine",
        );
    }
    let language = inherited.read(&mut f);
    let inherited = Inherited {
        language,
        jsonata_only: inherited.jsonata_only || (top && language == QueryLanguage::Jsonata),
    };
    let comment = f.string("Comment").map(str::to_string);
    let start_at = f.required_string("StartAt").unwrap_or_default().to_string();
    let timeout_seconds = f.integer("TimeoutSeconds", 1, MAX_SECONDS);
    if let Some(v) = f.string("Version")
        && v != "1.0"
    {
        f.error("Version", format!("must be \"1.0\", not \"{v}\""));
    }
    let states_at = f.loc("States");
    let states_value = f.raw("States");
    let errors = f.errors;
    let Some(Value::Object(map)) = states_value else {
        let message = match states_value {
            None => "is required".to_string(),
            Some(other) => format!("must be an object, not {}", kind(other)),
        };
        errors.push(DefinitionError::new(states_at, message));
        return None;
    };
    if map.is_empty() {
        errors.push(DefinitionError::new(&states_at, "must hold at least one state"));
    }
    let mut states = Vec::with_capacity(map.len());
    for (name, body) in map {
        let state_at = format!("{states_at}.{name}");
        if name.is_empty() || name.chars().count() > 80 {
            errors.push(DefinitionError::new(&state_at, "a state name must be 1 to 80 characters"));
        }
        if let Some(state) = parse_state(name, body, &state_at, inherited, errors) {
            states.push(state);
        }
    }
    let index = states.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
    let machine = StateMachine { comment, start_at, states, index, timeout_seconds };
    let declared: HashSet<&str> = map.keys().map(String::as_str).collect();
    let links_before = errors.len();
    check_links(&machine, &declared, &states_at, at, errors);
    let links_hold = errors.len() == links_before;
    // A state that did not parse has unknown transitions: what only it leads to would look
    // unreachable. A broken link leaves the rest of the graph as it is, so unreachable states
    // are still named beside it; only whether the machine can end needs every link to hold.
    if machine.states.len() == map.len() {
        check_reachability(&machine, &states_at, links_hold, errors);
    }
    Some(machine)
}

/// The states a state may pass control to: Next, each Catch's Next, a Choice's rules and Default.
fn successors(state: &State) -> Vec<&str> {
    state.transitions().into_iter().filter_map(|(_, to)| to).collect()
}

/// What CreateStateMachine refuses beyond broken links: a state that cannot be reached from
/// StartAt, and (when `links_hold`) a machine (or branch) whose StartAt can reach no terminal
/// state (End, Succeed or Fail), which could only loop for ever.
fn check_reachability(
    m: &StateMachine,
    states_at: &str,
    links_hold: bool,
    errors: &mut Vec<DefinitionError>,
) {
    let Some(start) = m.index.get(&m.start_at).copied() else { return };
    let mut reached = vec![false; m.states.len()];
    let mut todo = vec![start];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        todo.extend(successors(&m.states[i]).into_iter().filter_map(|n| m.index.get(n).copied()));
    }
    for (state, _) in m.states.iter().zip(&reached).filter(|(_, r)| !**r) {
        errors.push(DefinitionError::new(
            format!("{states_at}.{}", state.name),
            format!("cannot be reached from StartAt '{}'", m.start_at),
        ));
    }
    if !links_hold {
        return;
    }
    // Terminal states, then every state that can reach one, until nothing changes.
    let mut ends: Vec<bool> = m
        .states
        .iter()
        .map(|s| {
            matches!(s.kind, Kind::Succeed | Kind::Fail { .. })
                || (s.next.is_none() && !matches!(s.kind, Kind::Choice { .. }))
        })
        .collect();
    loop {
        let mut changed = false;
        for (i, s) in m.states.iter().enumerate() {
            if !ends[i] && successors(s).iter().any(|n| m.index.get(*n).is_some_and(|&j| ends[j])) {
                ends[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    if !ends[start] {
        errors.push(DefinitionError::new(
            format!("{states_at}.{}", m.start_at),
            "no terminal state (End, Succeed or Fail) can be reached from StartAt: the machine could never end",
        ));
    }
}

/// Every transition must name a state of the same scope (a branch cannot jump out).
fn check_links(
    m: &StateMachine,
    declared: &HashSet<&str>,
    states_at: &str,
    at: &str,
    errors: &mut Vec<DefinitionError>,
) {
    let prefix = if at.is_empty() { String::new() } else { format!("{at}.") };
    if !m.start_at.is_empty() && !declared.contains(m.start_at.as_str()) && !declared.is_empty() {
        errors.push(DefinitionError::new(
            format!("{prefix}StartAt"),
            format!("names state '{}', which is not in this States object", m.start_at),
        ));
    }
    let mut check = |from: String, target: &str| {
        if !declared.contains(target) && !target.is_empty() {
            errors.push(DefinitionError::new(
                from,
                format!("names state '{target}', which is not in the same States object"),
            ));
        }
    };
    for state in &m.states {
        let here = format!("{states_at}.{}", state.name);
        if let Some(next) = &state.next {
            check(format!("{here}.Next"), next);
        }
        for (i, c) in state.catch.iter().enumerate() {
            check(format!("{here}.Catch[{i}].Next"), &c.next);
        }
        if let Kind::Choice { choices, default } = &state.kind {
            for (i, c) in choices.iter().enumerate() {
                check(format!("{here}.Choices[{i}].Next"), &c.next);
            }
            if let Some(d) = default {
                check(format!("{here}.Default"), d);
            }
        }
    }
}

/// The QueryLanguage field, if given and valid.
fn query_language(f: &mut Fields<'_>) -> Option<QueryLanguage> {
    match f.string("QueryLanguage")? {
        "JSONPath" => Some(QueryLanguage::JsonPath),
        "JSONata" => Some(QueryLanguage::Jsonata),
        other => {
            f.error("QueryLanguage", format!("must be JSONPath or JSONata, not '{other}'"));
            None
        }
    }
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];

/// The fields a state of this type may have in JSONPath (the language's own fields: InputPath,
/// Parameters, ResultSelector, ResultPath, OutputPath and the `...Path` variants).
fn allowed_jsonpath(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "Pass" => &["InputPath", "OutputPath", "Parameters", "ResultPath", "Result", "Next", "End", "Assign"],
        "Task" => &[
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Next",
            "End",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
            "Assign",
        ],
        "Choice" => &["InputPath", "OutputPath", "Choices", "Default", "Assign"],
        "Wait" => &[
            "InputPath",
            "OutputPath",
            "Next",
            "End",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
            "Assign",
        ],
        "Succeed" => &["InputPath", "OutputPath"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Next",
            "End",
            "Branches",
            "Assign",
        ],
        "Map" => &[
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Next",
            "End",
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "ItemSelector",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "Label",
            "Assign",
        ],
        _ => &[],
    }
}

/// The fields a state of this type may have in JSONata (developer guide, "Transforming data
/// with JSONata": Arguments and Output replace the JSONPath fields).
fn allowed_jsonata(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "Pass" => &["Output", "Next", "End", "Assign"],
        "Task" => &[
            "Arguments",
            "Output",
            "Retry",
            "Catch",
            "Next",
            "End",
            "Resource",
            "TimeoutSeconds",
            "HeartbeatSeconds",
            "Credentials",
            "Assign",
        ],
        "Choice" => &["Choices", "Default", "Output", "Assign"],
        "Wait" => &["Next", "End", "Seconds", "Timestamp", "Output", "Assign"],
        "Succeed" => &["Output"],
        "Fail" => &["Error", "Cause"],
        "Parallel" => &["Arguments", "Output", "Retry", "Catch", "Next", "End", "Branches", "Assign"],
        "Map" => &[
            "Items",
            "ItemSelector",
            "ItemProcessor",
            "Iterator",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "ToleratedFailurePercentage",
            "ToleratedFailureCount",
            "Label",
            "Output",
            "Retry",
            "Catch",
            "Next",
            "End",
            "Assign",
        ],
        _ => &[],
    }
}

/// Refuses the fields of the other query language by name, saying what to use instead; any
/// other unknown field is refused as unknown.
fn check_fields(f: &mut Fields<'_>, type_name: &str, language: QueryLanguage) {
    let (own, other) = match language {
        QueryLanguage::JsonPath => (allowed_jsonpath(type_name), allowed_jsonata(type_name)),
        QueryLanguage::Jsonata => (allowed_jsonata(type_name), allowed_jsonpath(type_name)),
    };
    let misplaced: Vec<&str> = other.iter().copied().filter(|k| !own.contains(k) && f.has(k)).collect();
    for key in &misplaced {
        let message = match language {
            QueryLanguage::Jsonata => format!(
                "is a JSONPath field, not allowed in a JSONata state: {}",
                match *key {
                    "SecondsPath" => "write \"Seconds\": \"{% ... %}\"",
                    "TimestampPath" => "write \"Timestamp\": \"{% ... %}\"",
                    "TimeoutSecondsPath" => "write \"TimeoutSeconds\": \"{% ... %}\"",
                    "HeartbeatSecondsPath" => "write \"HeartbeatSeconds\": \"{% ... %}\"",
                    "ErrorPath" => "write \"Error\": \"{% ... %}\"",
                    "CausePath" => "write \"Cause\": \"{% ... %}\"",
                    "ItemsPath" => "write \"Items\": \"{% ... %}\"",
                    k if k.ends_with("Path") && k.starts_with(['M', 'T']) => {
                        "give the field itself a {% ... %} expression"
                    }
                    "Result" => "write \"Output\"",
                    _ =>
                        "use Arguments (what goes in) and Output (what comes out) with {% ... %} expressions",
                }
            ),
            QueryLanguage::JsonPath => format!(
                "is a JSONata field, not allowed in a JSONPath state: add \"QueryLanguage\": \"JSONata\" to the state or the machine (or use {})",
                match *key {
                    "Arguments" => "Parameters",
                    "Output" => "ResultSelector, ResultPath and OutputPath",
                    _ => "ItemsPath",
                }
            ),
        };
        f.error(key, message);
    }
    let allowed: Vec<&str> = COMMON.iter().chain(own).chain(&misplaced).copied().collect();
    f.only(&allowed, &format!("a {type_name} state"));
}

fn parse_state(
    name: &str,
    body: &Value,
    at: &str,
    inherited: Inherited,
    errors: &mut Vec<DefinitionError>,
) -> Option<State> {
    let mut f = Fields::of(body, at, errors)?;
    let type_name = f.required_string("Type")?;
    if allowed_jsonpath(type_name).is_empty() {
        f.error(
            "Type",
            format!(
                "'{type_name}' is not a state type (Task, Pass, Wait, Choice, Succeed, Fail, Parallel, Map)"
            ),
        );
        return None;
    }
    let language = inherited.read(&mut f);
    let inner = Inherited { language, ..inherited };
    check_fields(&mut f, type_name, language);
    let comment = f.string("Comment").map(str::to_string);

    let input_path = parse_path_field(&mut f, "InputPath", false);
    let output_path = parse_path_field(&mut f, "OutputPath", false);
    let result_path = parse_result_path(&mut f);
    let parameters = template(&mut f, "Parameters");
    let result_selector = template(&mut f, "ResultSelector");
    let assign = f.raw("Assign").and_then(|v| {
        let at = f.loc("Assign");
        Payload::parse_assign(v, &at, language, f.errors)
    });
    let arguments = jsonata_template(&mut f, "Arguments");
    let output = jsonata_template(&mut f, "Output");
    let retry_at = f.loc("Retry");
    let catch_at = f.loc("Catch");
    let retry = f.array("Retry").map(|l| parse_retry(l, &retry_at, f.errors)).unwrap_or_default();
    let catch = f.array("Catch").map(|l| parse_catch(l, &catch_at, language, f.errors)).unwrap_or_default();

    let terminal = matches!(type_name, "Choice" | "Succeed" | "Fail");
    let next = f.string("Next").map(str::to_string);
    let end = f.bool("End");
    if !terminal {
        match (&next, end) {
            (Some(_), Some(true)) => f.error("End", "a state cannot have both Next and End"),
            (None, None | Some(false)) => f.error("Next", "a non-terminal state needs Next or \"End\": true"),
            _ => {}
        }
    }

    let kind = match type_name {
        "Pass" => Kind::Pass { result: f.raw("Result").cloned() },
        "Task" => Kind::Task(parse_task(&mut f, language)),
        "Choice" => parse_choice(&mut f, language),
        "Wait" => Kind::Wait(parse_wait(&mut f, language)?),
        "Succeed" => Kind::Succeed,
        "Fail" => Kind::Fail {
            error: dynamic(&mut f, "Error", "ErrorPath", language),
            cause: dynamic(&mut f, "Cause", "CausePath", language),
        },
        "Parallel" => parse_parallel(&mut f, inner)?,
        "Map" => parse_map(&mut f, inner)?,
        _ => unreachable!("type checked above"),
    };
    let text = body.to_string();
    Some(State {
        name: name.to_string(),
        comment,
        language,
        kind,
        input_path,
        output_path,
        parameters,
        result_selector,
        result_path,
        retry,
        catch,
        assign,
        arguments,
        output,
        next,
        uses_context: text.contains("$$")
            || (language == QueryLanguage::Jsonata && jsonata::reads_context(&text)),
        uses_variables: reads_variables(&text),
    })
}

/// Whether a state's JSON text may read a workflow variable: a `$` followed by a letter or `_`
/// anywhere (`$name` in a path, an intrinsic argument or a JSONata expression). It errs on the
/// side of yes: building the variables costs a copy, reading a wrong one would be a defect.
fn reads_variables(text: &str) -> bool {
    text.split('$').skip(1).any(|rest| rest.starts_with(|c: char| c.is_alphabetic() || c == '_'))
}

fn jsonata_template(f: &mut Fields<'_>, field: &str) -> Option<jsonata::Template> {
    let value = f.raw(field)?;
    let at = f.loc(field);
    Some(jsonata::Template::parse(value, &at, f.errors))
}

/// A JSONata expression field (`"{% ... %}"`) of a JSONata state, or None when the field holds
/// something else (or the state is JSONPath, where such a string is a literal).
fn jsonata_expr(f: &mut Fields<'_>, field: &str, language: QueryLanguage) -> Option<Expr> {
    let Some(Value::String(text)) = f.raw(field).filter(|_| language == QueryLanguage::Jsonata) else {
        return None;
    };
    jsonata::expression_of(text)?;
    Expr::parse(text).map_err(|why| f.error(field, why)).ok()
}

fn template(f: &mut Fields<'_>, field: &str) -> Option<Template> {
    let value = f.raw(field)?;
    let at = f.loc(field);
    Some(Template::parse(value, &at, f.errors))
}

fn parse_path_field(f: &mut Fields<'_>, field: &str, reference: bool) -> PathField {
    match f.raw(field) {
        None => PathField::Default,
        Some(Value::Null) => PathField::Null,
        Some(Value::String(s)) => match JsonPath::parse(s) {
            Ok(p) if reference && p.variable().is_some() => {
                f.error(field, format!("'{s}' names a variable: {field} writes into the state's data; set a variable with Assign"));
                PathField::Default
            }
            Ok(p) if reference && (!p.is_reference() || p.is_context()) => {
                f.error(
                    field,
                    format!("'{s}' must be a reference path on '$' (no wildcards, filters or $$)"),
                );
                PathField::Default
            }
            Ok(p) => PathField::Path(p),
            Err(e) => {
                f.error(field, e);
                PathField::Default
            }
        },
        Some(other) => {
            let message = format!("must be a JSONPath string or null, not {}", kind(other));
            f.error(field, message);
            PathField::Default
        }
    }
}

pub(crate) fn parse_result_path(f: &mut Fields<'_>) -> PathField {
    parse_path_field(f, "ResultPath", true)
}

fn reference_path(f: &mut Fields<'_>, field: &str) -> Option<JsonPath> {
    let text = f.string(field)?;
    JsonPath::parse_reference(text).map_err(|why| f.error(field, why)).ok()
}

fn seconds(f: &mut Fields<'_>, fixed: &str, path: &str, language: QueryLanguage) -> Option<Seconds> {
    if let Some(expr) = jsonata_expr(f, fixed, language) {
        return Some(Seconds::Expr(Box::new(expr)));
    }
    f.exclusive(fixed, path);
    if let Some(n) = f.integer(fixed, 1, MAX_SECONDS) {
        return Some(Seconds::Fixed(n));
    }
    reference_path(f, path).map(Seconds::Path)
}

fn parse_task(f: &mut Fields<'_>, language: QueryLanguage) -> Task {
    let resource = match f.raw("Resource") {
        Some(Value::String(s)) => {
            if s.is_empty() {
                f.error("Resource", "must not be empty");
            } else if s.matches("${").count() != s.matches('}').count() {
                f.error("Resource", format!("'{s}' has an unbalanced ${{...}} substitution"));
            }
            s.clone()
        }
        Some(Value::Object(o)) => {
            let what = o.keys().next().cloned().unwrap_or_default();
            f.error(
                "Resource",
                format!(
                    "a CloudFormation intrinsic ({what}) is {UNSUPPORTED}: substitute the ARN before running"
                ),
            );
            String::new()
        }
        Some(other) => {
            let message = format!("must be a string, not {}", kind(other));
            f.error("Resource", message);
            String::new()
        }
        None => {
            f.error("Resource", "is required");
            String::new()
        }
    };
    let timeout = seconds(f, "TimeoutSeconds", "TimeoutSecondsPath", language);
    let heartbeat = seconds(f, "HeartbeatSeconds", "HeartbeatSecondsPath", language);
    if let (Some(Seconds::Fixed(t)), Some(Seconds::Fixed(h))) = (&timeout, &heartbeat)
        && h >= t
    {
        f.error("HeartbeatSeconds", "must be smaller than TimeoutSeconds");
    }
    let credentials = match f.raw("Credentials") {
        Some(value @ Value::Object(_)) => {
            let at = f.loc("Credentials");
            Some(Payload::parse(value, &at, language, f.errors))
        }
        Some(other) => {
            let message = format!("must be an object, not {}", kind(other));
            f.error("Credentials", message);
            None
        }
        None => None,
    };
    Task { resource, timeout, heartbeat, credentials }
}

fn parse_choice(f: &mut Fields<'_>, language: QueryLanguage) -> Kind {
    let mut choices = Vec::new();
    match f.array("Choices") {
        Some(list) if !list.is_empty() => {
            for (i, rule) in list.iter().enumerate() {
                match parse_choice_rule(rule, &format!("{}[{i}]", f.loc("Choices")), language) {
                    Ok(r) => choices.push(r),
                    Err(mut errs) => f.errors.append(&mut errs),
                }
            }
        }
        Some(_) => f.error("Choices", "must hold at least one rule"),
        None if !f.has("Choices") => f.error("Choices", "is required"),
        None => {}
    }
    let default = f.string("Default").map(str::to_string);
    Kind::Choice { choices, default }
}

fn parse_wait(f: &mut Fields<'_>, language: QueryLanguage) -> Option<WaitFor> {
    let given: Vec<&str> =
        ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"].into_iter().filter(|k| f.has(k)).collect();
    if given.len() != 1 {
        f.error(
            "Seconds",
            format!(
                "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath (found {})",
                given.len()
            ),
        );
        return None;
    }
    if let Some(expr) = jsonata_expr(f, given[0], language) {
        return Some(match given[0] {
            "Seconds" => WaitFor::SecondsExpr(Box::new(expr)),
            _ => WaitFor::TimestampExpr(Box::new(expr)),
        });
    }
    match given[0] {
        "Seconds" => f.integer("Seconds", 0, MAX_SECONDS).map(WaitFor::Seconds),
        "SecondsPath" => reference_path(f, "SecondsPath").map(WaitFor::SecondsPath),
        "TimestampPath" => reference_path(f, "TimestampPath").map(WaitFor::TimestampPath),
        _ => {
            let text = f.string("Timestamp")?;
            match parse_timestamp(text) {
                Some(t) => Some(WaitFor::Timestamp(t)),
                None => {
                    f.error(
                        "Timestamp",
                        format!("'{text}' is not an RFC 3339 timestamp such as 2026-01-31T23:59:00Z"),
                    );
                    None
                }
            }
        }
    }
}

/// Step Functions takes RFC 3339 with an upper-case T and a zone (Z or an offset).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    super::timestamp::parse_utc(text)
}

fn dynamic(f: &mut Fields<'_>, literal: &str, path: &str, language: QueryLanguage) -> Option<Dynamic> {
    if let Some(expr) = jsonata_expr(f, literal, language) {
        return Some(Dynamic::Expr(Box::new(expr)));
    }
    f.exclusive(literal, path);
    if let Some(s) = f.string(literal) {
        return Some(Dynamic::Literal(s.to_string()));
    }
    let text = f.string(path)?;
    let parsed = if text.starts_with('$') {
        JsonPath::parse(text).map(Dynamic::Path)
    } else if Intrinsic::looks_like_call(text) {
        Intrinsic::parse(text).map(|c| Dynamic::Call(Box::new(c)))
    } else {
        Err(format!("'{text}' is neither a JSONPath nor an intrinsic function"))
    };
    parsed.map_err(|e| f.error(path, e)).ok()
}

fn parse_parallel(f: &mut Fields<'_>, inherited: Inherited) -> Option<Kind> {
    let Some(list) = f.array("Branches") else {
        if !f.has("Branches") {
            f.error("Branches", "is required");
        }
        return None;
    };
    if list.is_empty() {
        f.error("Branches", "must hold at least one branch");
    }
    let at = f.loc("Branches");
    let branches = list
        .iter()
        .enumerate()
        .filter_map(|(i, b)| parse_machine(b, &format!("{at}[{i}]"), false, inherited, f.errors))
        .collect();
    Some(Kind::Parallel { branches })
}

fn parse_map(f: &mut Fields<'_>, inherited: Inherited) -> Option<Kind> {
    let language = inherited.language;
    f.exclusive("Iterator", "ItemProcessor");
    f.exclusive("Parameters", "ItemSelector");
    let max_concurrency =
        bound(f, "MaxConcurrency", "MaxConcurrencyPath", language, |f, k| f.integer(k, 0, MAX_SECONDS));
    let tolerated_failure_percentage =
        bound(f, "ToleratedFailurePercentage", "ToleratedFailurePercentagePath", language, |f, k| {
            let p = f.number(k)?;
            if !(0.0..=100.0).contains(&p) {
                f.error(k, format!("must be from 0 to 100, not {p}"));
            }
            Some(p)
        });
    let tolerated_failure_count =
        bound(f, "ToleratedFailureCount", "ToleratedFailureCountPath", language, |f, k| {
            f.integer(k, 0, MAX_SECONDS)
        });
    let items_path = reference_path(f, "ItemsPath");
    let items = jsonata_template(f, "Items");
    if let Some(jsonata::Template::Literal(v)) = &items
        && !v.is_array()
    {
        f.error("Items", format!("must be an array or a {{% ... %}} expression, not {}", kind(v)));
    }
    let item_selector = f.raw("ItemSelector").map(|v| {
        let at = f.loc("ItemSelector");
        Payload::parse(v, &at, language, f.errors)
    });
    for (outer, a, b) in [
        ("ItemBatcher", "MaxItemsPerBatch", "MaxItemsPerBatchPath"),
        ("ItemBatcher", "MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath"),
    ] {
        if let Some(v) = f.raw(outer) {
            let at = f.loc(outer);
            if let Some(mut inner) = Fields::of(v, at, f.errors) {
                inner.exclusive(a, b);
            }
        }
    }
    if let Some(Value::Object(reader)) = f.raw("ItemReader")
        && let Some(config) = reader.get("ReaderConfig")
    {
        let at = format!("{}.ReaderConfig", f.loc("ItemReader"));
        if let Some(mut inner) = Fields::of(config, at, f.errors) {
            inner.exclusive("MaxItems", "MaxItemsPath");
        }
    }
    let distributed_fields =
        ["ItemReader", "ItemBatcher", "ResultWriter"].into_iter().filter(|k| f.has(k)).collect();
    let field = if f.has("ItemProcessor") { "ItemProcessor" } else { "Iterator" };
    let Some(body) = f.raw(field) else {
        f.error("ItemProcessor", "is required");
        return None;
    };
    let at = f.loc(field);
    let distributed = body.pointer("/ProcessorConfig/Mode").and_then(Value::as_str) == Some("DISTRIBUTED");
    let inherited = Inherited { jsonata_only: inherited.jsonata_only && !distributed, ..inherited };
    let processor = parse_machine(body, &at, false, inherited, f.errors)?;
    Some(Kind::Map(Box::new(MapState {
        processor,
        items_path,
        items,
        item_selector,
        max_concurrency,
        tolerated_failure_count,
        tolerated_failure_percentage,
        distributed_fields,
    })))
}

/// A field given either as a literal (`fixed`) or as a reference path (`path`), not both.
fn bound<T>(
    f: &mut Fields<'_>,
    fixed: &str,
    path: &str,
    language: QueryLanguage,
    literal: impl FnOnce(&mut Fields<'_>, &str) -> Option<T>,
) -> Option<Bound<T>> {
    if let Some(expr) = jsonata_expr(f, fixed, language) {
        return Some(Bound::Expr(Box::new(expr)));
    }
    f.exclusive(fixed, path);
    if f.has(fixed) {
        return literal(f, fixed).map(Bound::Fixed);
    }
    reference_path(f, path).map(Bound::Path)
}
