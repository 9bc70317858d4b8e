//! Choice: the first rule that matches names the next state (with the rule's Assign and, in
//! JSONata, Output), else Default (with the state's), else States.NoChoiceMatched.

use serde_json::Value;

use crate::asl::Env;
use crate::asl::choice::{ChoiceRule, Condition};
use crate::asl::definition::State;
use crate::asl::errors::{StatesError, names};
use crate::asl::jsonata::Template;
use crate::engine::dataflow::Ending;
use crate::engine::execution::Entered;
use crate::engine::transition::Tx;

impl Tx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn run_choice(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        choices: &[ChoiceRule],
        default: Option<&str>,
        entered: &Entered,
        env: &Env,
    ) -> Result<(), StatesError> {
        let effective = self.effective_input(state, &raw, env)?.into_owned();
        for rule in choices {
            let holds = match &rule.condition {
                Condition::Jsonata(template) => match template.as_ref() {
                    Template::Expr(e) => {
                        self.typed(e, env, &raw, "Condition", "boolean")? == Value::Bool(true)
                    }
                    other => matches!(other, Template::Literal(Value::Bool(true))),
                },
                condition => condition.eval(&effective, env)?,
            };
            if holds {
                return self.leave(frame, state, raw, Ending::Rule(rule, effective), env, Some(&rule.next));
            }
        }
        let Some(default) = default else {
            let cause = format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). Failed to transition out of the state. The state does not point to a next state.",
                state.name, entered.event_id
            );
            self.fail(frame, StatesError::new(names::NO_CHOICE_MATCHED, cause));
            return Ok(());
        };
        self.leave(frame, state, raw, Ending::Own(effective), env, Some(default))
    }
}
