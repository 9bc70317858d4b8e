//! The transition function alone, without a driver or tokio, on canned histories
//! (tests/histories/*.jsonl): the first line holds a definition and an input; each further line
//! an event in (`{"proceed": frame}` or `{"returned": [frame, visit, attempt], "ok": value}` /
//! `"error": {"Error", "Cause"}`), the history event types it must write, and what must then be
//! pending (`{"proceed": frame}`, `{"call": [frame, visit, attempt]}`, `"done"`).

use chrono::{TimeZone, Utc};
use recflow::asl::StateMachine;
use recflow::asl::errors::StatesError;
use recflow::engine::{Answer, CallId, Effect, Event, pending, start, transition};
use serde_json::{Value, json};

fn effect_as_json(effect: &Effect) -> Value {
    match effect {
        Effect::Proceed { frame } => json!({"proceed": frame}),
        Effect::SleepUntil { frame, until } => json!({"sleep": [frame, until.to_rfc3339()]}),
        Effect::Call(call) => json!({"call": [call.frame, call.visit, call.attempt]}),
        Effect::Done => json!("done"),
    }
}

fn replay(file: &str, text: &str) {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Value = serde_json::from_str(lines.next().expect("a head line")).unwrap();
    let machine = StateMachine::from_json(&head["definition"]).unwrap_or_else(|e| panic!("{file}: {e:?}"));
    let mut exec = start(&machine, "canned", "canned", head["input"].clone(), now, 1).execution;
    for (n, line) in lines.enumerate() {
        let step: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", n + 2));
        let input = &step["in"];
        let event = if let Some(frame) = input.get("proceed") {
            Event::Proceed { now, frame: frame.as_u64().unwrap() }
        } else {
            let id = &input["returned"];
            let call = CallId {
                frame: id[0].as_u64().unwrap(),
                visit: id[1].as_u64().unwrap(),
                attempt: id[2].as_u64().unwrap() as u32,
                polls: 0,
            };
            let result = match input.get("error") {
                Some(e) => Err(StatesError::new(e["Error"].as_str().unwrap(), e["Cause"].as_str().unwrap())),
                None => Ok(Answer::done(input["ok"].clone())),
            };
            Event::TaskReturned { now, call, result }
        };
        let t = transition(&machine, exec, event);
        exec = t.execution;
        let written: Vec<&str> = t.events.iter().map(|e| e.detail.type_name()).collect();
        let expected: Vec<&str> =
            step["out"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(written, expected, "{file}:{}: events written", n + 2);
        let due: Vec<Value> = pending(&exec).iter().map(effect_as_json).collect();
        assert_eq!(Value::Array(due), step["pending"], "{file}:{}: pending effects", n + 2);
        if let Some(output) = step.get("output") {
            assert_eq!(exec.output.as_ref(), Some(output), "{file}:{}: output", n + 2);
        }
    }
}

#[test]
fn a_failed_branch_stops_its_sibling_and_a_late_answer_changes_nothing() {
    replay("parallel-branch-fails.jsonl", include_str!("histories/parallel-branch-fails.jsonl"));
}

#[test]
fn a_tolerated_failure_starts_the_next_item_and_keeps_the_error_in_place() {
    replay("map-tolerates-one-failure.jsonl", include_str!("histories/map-tolerates-one-failure.jsonl"));
}
