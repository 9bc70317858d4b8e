//! Choice: the first rule that matches names the next state, else Default, else
//! States.NoChoiceMatched.

use serde_json::Value;

use crate::asl::choice::ChoiceRule;
use crate::asl::definition::State;
use crate::asl::errors::{StatesError, names};
use crate::engine::execution::Entered;
use crate::engine::transition::{Tx, apply_input_path, apply_output_path};

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
        ctx: &Value,
    ) -> Result<(), StatesError> {
        let effective = apply_input_path(&state.input_path, &raw, ctx)?;
        let mut next = None;
        for rule in choices {
            if rule.condition.eval(&effective, ctx)? {
                next = Some(rule.next.as_str());
                break;
            }
        }
        let Some(next) = next.or(default) else {
            let cause = format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). Failed to transition out of the state. The state does not point to a next state.",
                state.name, entered.event_id
            );
            self.fail(frame, StatesError::new(names::NO_CHOICE_MATCHED, cause));
            return Ok(());
        };
        let output = apply_output_path(&state.output_path, effective.into_owned(), ctx)?;
        self.exit(frame, state, output, Some(next));
        Ok(())
    }
}
