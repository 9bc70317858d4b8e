//! What a state's paths, intrinsic functions and Choice rules read besides the state's data: the
//! context object (`$$`) and the workflow variables in scope (`$name`, set by `Assign`).

use serde_json::{Map, Value};

/// Built once per state visit by the engine; empty parts cost nothing (the context object is
/// built only for states that read `$$`, the variables only for states that may read them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Env {
    /// The context object: `Execution`, `State`, `StateMachine`, and `Map` inside an iteration.
    pub context: Value,
    /// The variables visible from the state: its own scope's and every enclosing scope's.
    pub variables: Map<String, Value>,
}

impl Env {
    /// An environment with only a context object (what states without variables see).
    pub fn with_context(context: Value) -> Env {
        Env { context, variables: Map::new() }
    }
}
