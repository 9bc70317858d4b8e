//! The engine state by state, on paused tokio time with scripted tasks.

mod common;

use chrono::Duration;
use common::{kinds, retry_delays, run, script, t0};
use recflow::engine::{Detail, Status};
use recflow::tasks::Scripted;
use serde_json::json;

fn task(extra: serde_json::Value) -> serde_json::Value {
    let mut state = json!({"Type": "Task", "Resource": "arn:aws:states:::test:work", "End": true});
    state.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"StartAt": "Work", "States": {"Work": state}})
}

#[tokio::test(start_paused = true)]
async fn retry_counts_attempts_and_backs_off() {
    let runner = script(&[(
        "Work",
        vec![Scripted::err("Busy", "1"), Scripted::err("Busy", "2"), Scripted::ok(json!("done"))],
    )]);
    let def = task(
        json!({"Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 2.0}]}),
    );
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    assert_eq!(out.execution.output, Some(json!("done")));
    assert_eq!(retry_delays(&out.history), vec![3.0, 6.0]);
    assert_eq!(out.calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), vec![0, 1, 2]);
    // Each attempt has its own idempotency key.
    assert_ne!(out.calls[0].idempotency_key, out.calls[1].idempotency_key);
    // The whole run took the backoff, no more: 3 s + 6 s of (paused) time.
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(9)));
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_attempts() {
    let runner = script(&[("Work", vec![Scripted::err("Busy", "still busy")])]);
    let def = task(json!({"Retry": [{"ErrorEquals": ["Busy"], "MaxAttempts": 2}]}));
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.execution.status, Status::Failed);
    assert_eq!(out.execution.error.as_deref(), Some("Busy"));
    assert_eq!(out.calls.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_zero_never_retries() {
    let runner = script(&[("Work", vec![Scripted::err("Busy", "x")])]);
    let def = task(
        json!({"Retry": [{"ErrorEquals": ["Busy"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]}),
    );
    let out = run(def, json!({}), runner).await;
    // The first matching retrier decides; later ones are not consulted.
    assert_eq!(out.calls.len(), 1);
    assert_eq!(out.execution.status, Status::Failed);
}

#[tokio::test(start_paused = true)]
async fn backoff_rate_is_capped_by_max_delay() {
    let runner = script(&[("Work", vec![Scripted::err("Limit", "queue full")])]);
    let def = task(
        json!({"Retry": [{"ErrorEquals": ["Limit"], "IntervalSeconds": 60, "BackoffRate": 3.0, "MaxAttempts": 5, "MaxDelaySeconds": 600}]}),
    );
    let out = run(def, json!({}), runner).await;
    assert_eq!(retry_delays(&out.history), vec![60.0, 180.0, 540.0, 600.0, 600.0]);
}

#[tokio::test(start_paused = true)]
async fn full_jitter_stays_within_the_backoff() {
    let runner = script(&[("Work", vec![Scripted::err("Limit", "x")])]);
    let def = task(
        json!({"Retry": [{"ErrorEquals": ["Limit"], "IntervalSeconds": 100, "MaxAttempts": 4, "JitterStrategy": "FULL"}]}),
    );
    let out = run(def, json!({}), runner).await;
    let delays = retry_delays(&out.history);
    assert_eq!(delays.len(), 4);
    for (i, d) in delays.iter().enumerate() {
        let cap = 100.0 * 2f64.powi(i as i32);
        assert!((0.0..=cap).contains(d), "delay {d} outside [0, {cap}]");
    }
}

#[tokio::test(start_paused = true)]
async fn catch_merges_the_error_into_the_input() {
    let runner = script(&[(
        "Work",
        vec![Scripted::err("Personalize.ResourceInUseException", "The specified resource is in use.")],
    )]);
    let def = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "r", "ResultSelector": {"never.$": "$.x"}, "OutputPath": "$.nothing",
                 "Catch": [{"ErrorEquals": ["Personalize.ResourceInUseException"], "ResultPath": "$.error", "Next": "Handled"}],
                 "End": true},
        "Handled": {"Type": "Pass", "End": true}}});
    let out = run(def, json!({"job": "a"}), runner).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    // ResultSelector and OutputPath are skipped for a caught error.
    assert_eq!(
        out.execution.output,
        Some(
            json!({"job": "a", "error": {"Error": "Personalize.ResourceInUseException", "Cause": "The specified resource is in use."}})
        )
    );
}

#[tokio::test(start_paused = true)]
async fn catch_without_result_path_replaces_the_input() {
    let runner = script(&[("Work", vec![Scripted::err("Boom", "why")])]);
    let def = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "r", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}], "End": true},
        "Handled": {"Type": "Pass", "End": true}}});
    let out = run(def, json!({"job": "a"}), runner).await;
    assert_eq!(out.execution.output, Some(json!({"Error": "Boom", "Cause": "why"})));
}

#[tokio::test(start_paused = true)]
async fn result_path_null_keeps_the_input_and_nested_paths_are_created() {
    let runner =
        script(&[("A", vec![Scripted::ok(json!({"Arn": "x"}))]), ("B", vec![Scripted::ok(json!(7))])]);
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "r", "ResultPath": null, "Next": "B"},
        "B": {"Type": "Task", "Resource": "r", "ResultPath": "$.deep.new.place", "End": true}}});
    let out = run(def, json!({"keep": true}), runner).await;
    assert_eq!(out.execution.output, Some(json!({"keep": true, "deep": {"new": {"place": 7}}})));
}

#[tokio::test(start_paused = true)]
async fn input_output_processing_order() {
    let runner = script(&[("Work", vec![Scripted::ok(json!({"Status": "ACTIVE", "Noise": 1}))])]);
    let def = task(json!({
        "InputPath": "$.job",
        "Parameters": {"Arn.$": "$.arn", "Fixed": 1, "Who.$": "$$.Execution.Name"},
        "ResultSelector": {"status.$": "$.Status"},
        "ResultPath": "$.result",
        "OutputPath": "$.result"
    }));
    let out = run(def, json!({"job": {"arn": "a1"}, "other": 2}), runner).await;
    assert_eq!(out.calls[0].parameters, json!({"Arn": "a1", "Fixed": 1, "Who": "test"}));
    assert_eq!(out.execution.output, Some(json!({"status": "ACTIVE"})));
}

#[tokio::test(start_paused = true)]
async fn a_missing_parameters_path_is_a_runtime_error_no_catch_can_catch() {
    let runner = script(&[("Work", vec![Scripted::ok(json!(1))])]);
    let def = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "r", "Parameters": {"x.$": "$.missing"},
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}], "End": true},
        "Handled": {"Type": "Pass", "End": true}}});
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.execution.status, Status::Failed);
    assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"));
    assert!(out.calls.is_empty());
}

#[tokio::test(start_paused = true)]
async fn task_timeout_raises_states_timeout() {
    let runner = script(&[("Work", vec![Scripted::ok(json!(1)).after(30.0)])]);
    let def = task(
        json!({"TimeoutSeconds": 10, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}], "End": true}),
    );
    let mut def = def;
    def["States"]["TimedOut"] = json!({"Type": "Pass", "End": true});
    let out = run(def, json!({}), runner).await;
    assert_eq!(
        out.execution.output,
        Some(
            json!({"Error": "States.Timeout", "Cause": "the task did not finish within TimeoutSeconds (10 s)"})
        )
    );
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(10)));
}

#[tokio::test(start_paused = true)]
async fn task_failed_matches_everything_but_timeout() {
    let runner = script(&[("Work", vec![Scripted::ok(json!(1)).after(30.0)])]);
    let def = task(
        json!({"TimeoutSeconds": 5, "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 3}]}),
    );
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.execution.error.as_deref(), Some("States.Timeout"));
    assert_eq!(out.calls.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_counters_reset_when_the_state_is_entered_again() {
    // Work fails once on each visit; a MaxAttempts of 1 is enough only if the counter resets.
    let runner = script(&[
        (
            "Work",
            vec![
                Scripted::err("Busy", "1"),
                Scripted::ok(json!({})),
                Scripted::err("Busy", "2"),
                Scripted::ok(json!({})),
            ],
        ),
        ("Again", vec![Scripted::ok(json!({"again": true})), Scripted::ok(json!({"again": false}))]),
    ]);
    let def = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "r", "ResultPath": null, "Retry": [{"ErrorEquals": ["Busy"], "MaxAttempts": 1, "IntervalSeconds": 1}], "Next": "Again"},
        "Again": {"Type": "Task", "Resource": "r", "Next": "Loop?"},
        "Loop?": {"Type": "Choice", "Choices": [{"Variable": "$.again", "BooleanEquals": true, "Next": "Work"}], "Default": "Done"},
        "Done": {"Type": "Succeed"}}});
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.execution.status, Status::Succeeded, "{:?}", out.execution.cause);
    assert_eq!(out.calls.iter().filter(|c| c.state == "Work").count(), 4);
}

#[tokio::test(start_paused = true)]
async fn wait_seconds_and_past_timestamps() {
    let runner = script(&[]);
    let def = json!({"StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 90, "Next": "Past"},
        "Past": {"Type": "Wait", "Timestamp": "2001-01-01T00:00:00Z", "Next": "FromInput"},
        "FromInput": {"Type": "Wait", "SecondsPath": "$.pause", "End": true}}});
    let out = run(def, json!({"pause": 30}), runner).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(120)));
    let waits = out.history.iter().filter(|e| matches!(e.detail, Detail::WaitStarted { .. })).count();
    assert_eq!(waits, 2, "a past timestamp does not wait: {:?}", kinds(&out.history));
}

#[tokio::test(start_paused = true)]
async fn wait_timestamp_path_and_bad_seconds_path() {
    let def = json!({"StartAt": "Until", "States": {"Until": {"Type": "Wait", "TimestampPath": "$.at", "End": true}}});
    let at = (t0() + Duration::seconds(45)).to_rfc3339();
    let out = run(def, json!({"at": at}), script(&[])).await;
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(45)));

    for bad in [json!(-1), json!(1.5), json!("10")] {
        let def =
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": true}}});
        let out = run(def, json!({"s": bad}), script(&[])).await;
        assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"), "SecondsPath {bad}");
    }
}

#[tokio::test(start_paused = true)]
async fn choice_without_match_or_default_fails() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "One"}]},
        "One": {"Type": "Succeed"}}});
    let out = run(def, json!({"n": 2}), script(&[])).await;
    assert_eq!(out.execution.error.as_deref(), Some("States.NoChoiceMatched"));
}

#[tokio::test(start_paused = true)]
async fn fail_state_with_paths() {
    let def =
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}});
    let out = run(def, json!({"e": "Custom.Error", "c": "because"}), script(&[])).await;
    assert_eq!(out.execution.status, Status::Failed);
    assert_eq!(
        (out.execution.error.as_deref(), out.execution.cause.as_deref()),
        (Some("Custom.Error"), Some("because"))
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_runs_its_branches() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}]}}});
    let out = run(def, json!({"a": 1}), script(&[])).await;
    assert_eq!(out.execution.status, Status::Succeeded);
    assert_eq!(out.execution.output, Some(json!([{"a": 1}])));
}

#[tokio::test(start_paused = true)]
async fn history_follows_step_functions_order() {
    let runner = script(&[("Work", vec![Scripted::err("Busy", "x"), Scripted::ok(json!(1))])]);
    let def = task(json!({"Retry": [{"ErrorEquals": ["Busy"]}]}));
    let out = run(def, json!({}), runner).await;
    assert_eq!(
        kinds(&out.history),
        vec![
            "ExecutionStarted",
            "StateEntered",
            "TaskScheduled",
            "TaskFailed",
            "RetryScheduled",
            "TaskScheduled",
            "TaskSucceeded",
            "StateExited",
            "ExecutionSucceeded"
        ]
    );
    let ids: Vec<u64> = out.history.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=9).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn parameters_are_evaluated_again_for_each_attempt() {
    let runner = script(&[("Work", vec![Scripted::err("Busy", "1"), Scripted::ok(json!("done"))])]);
    let def = task(json!({
        "Parameters": {"retry.$": "$$.State.RetryCount", "id.$": "States.UUID()"},
        "Retry": [{"ErrorEquals": ["Busy"]}]
    }));
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.calls[0].parameters["retry"], json!(0));
    assert_eq!(out.calls[1].parameters["retry"], json!(1));
    assert_ne!(out.calls[0].parameters["id"], out.calls[1].parameters["id"]);
}

#[tokio::test(start_paused = true)]
async fn huge_waits_and_timeouts_are_runtime_errors_not_panics() {
    for (field, value) in [
        ("SecondsPath", json!(9_223_372_036_854_775_807_i64)),
        ("SecondsPath", json!(10_000_000_000_000_i64)),
    ] {
        let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", field: "$.s", "End": true}}});
        let out = run(def, json!({"s": value}), script(&[])).await;
        assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"), "{value}");
    }
    let def = task(json!({"TimeoutSecondsPath": "$.t"}));
    let out = run(def, json!({"t": u64::MAX}), script(&[("Work", vec![Scripted::ok(json!(1))])])).await;
    assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"));
    // A backoff that would pass the calendar's end is capped instead.
    let runner = script(&[("Work", vec![Scripted::err("Busy", "x"), Scripted::ok(json!(1))])]);
    let def = task(
        json!({"Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 99_999_999, "BackoffRate": 1000.0, "MaxAttempts": 3}]}),
    );
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.execution.status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn the_state_machine_timeout_ends_the_execution_timed_out() {
    // A Wait longer than the deadline is cut short by it.
    let def = json!({"TimeoutSeconds": 60, "StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 120, "End": true}}});
    let out = run(def, json!({}), script(&[])).await;
    assert_eq!(out.execution.status, Status::TimedOut);
    assert_eq!(out.execution.error.as_deref(), Some("States.Timeout"));
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(60)));
    assert_eq!(kinds(&out.history).last(), Some(&"ExecutionTimedOut"));

    // A slow task is abandoned at the deadline, and no Catch can turn that into success.
    let runner = script(&[("Work", vec![Scripted::ok(json!(1)).after(100.0)])]);
    let mut def = task(json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}]}));
    def["TimeoutSeconds"] = json!(30);
    def["States"]["Handled"] = json!({"Type": "Pass", "End": true});
    let out = run(def, json!({}), runner).await;
    assert_eq!(out.execution.status, Status::TimedOut);
    assert_eq!(out.execution.stop_time, Some(t0() + Duration::seconds(30)));
}

#[tokio::test(start_paused = true)]
async fn a_wait_beyond_the_longest_wait_fails_at_once_in_every_form() {
    for wait in [
        json!({"Type": "Wait", "TimestampPath": "$.t", "End": true}),
        json!({"Type": "Wait", "Timestamp": "2199-01-01T00:00:00Z", "End": true}),
    ] {
        let def = json!({"StartAt": "W", "States": {"W": wait}});
        let out = run(def, json!({"t": "2199-01-01T00:00:00Z"}), script(&[])).await;
        assert_eq!(out.execution.status, Status::Failed);
        assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"));
        assert!(
            out.execution.cause.as_deref().unwrap().contains("beyond the longest wait"),
            "{:?}",
            out.execution.cause
        );
    }
    // Within the bound it waits.
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.t", "End": true}}});
    let out = run(def, json!({"t": "2027-06-01T00:00:00Z"}), script(&[])).await;
    assert_eq!(out.execution.status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_lowercase_z_is_no_timestamp_in_a_wait_or_a_choice() {
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.t", "End": true}}});
    let out = run(def, json!({"t": "2026-11-25T03:00:00z"}), script(&[])).await;
    assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"));
    let choice = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.t", "IsTimestamp": true, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Succeed"}, "No": {"Type": "Fail", "Error": "NotATimestamp"}}});
    let out = run(choice, json!({"t": "2026-11-25T03:00:00z"}), script(&[])).await;
    assert_eq!(out.execution.error.as_deref(), Some("NotATimestamp"));
    let literal = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": "1970-01-01T00:00:00z", "End": true}}});
    assert!(recflow::asl::StateMachine::from_json(&literal).is_err(), "validate refuses it as a Choice does");
}

/// Jayway's rule, as Step Functions applies it: a slice or index of a non-array before any step
/// has selected several nodes is an error; inside a multi-node selection a node that does not fit
/// is skipped.
#[tokio::test(start_paused = true)]
async fn paths_fail_on_a_slice_of_an_object_and_skip_misses_inside_array_selections() {
    let pass = |expr: &str| json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": expr}, "End": true}}});
    let input = json!({"mode": "fast", "level": 3, "items": [{"a": 1}, {"b": 2}, {"a": 3}]});
    for failing in ["$[1:]", "$.mode[0]", "$.level[1:]", "$[0][*]"] {
        let out = run(pass(failing), input.clone(), script(&[])).await;
        assert_eq!(out.execution.error.as_deref(), Some("States.Runtime"), "{failing}");
    }
    for (ok, expected) in [
        ("$.items[*].a", json!([1, 3])),
        ("$.items[1:].a", json!([3])),
        ("$.items[*].missing", json!([])),
        ("$.items[?(@.a > 1)]", json!([{"a": 3}])),
    ] {
        let out = run(pass(ok), input.clone(), script(&[])).await;
        assert_eq!(out.execution.output, Some(json!({"v": expected})), "{ok}");
    }
}

/// A ResultPath that cannot be applied to the input is `States.ReferencePathConflict` with
/// AWS's cause (aws/aws-cdk#29473): for a Task's result, a Pass's and a Catcher's error output.
#[tokio::test(start_paused = true)]
async fn a_result_path_that_cannot_apply_is_a_reference_path_conflict() {
    let runner = script(&[("T", vec![Scripted::ok(json!({"n": 1}))])]);
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "ResultPath": "$.result", "End": true}}});
    let out = run(def, json!("input1"), runner).await;
    assert_eq!(out.execution.status, Status::Failed);
    assert_eq!(out.execution.error.as_deref(), Some("States.ReferencePathConflict"));
    assert_eq!(
        out.execution.cause.as_deref(),
        Some(r#"Unable to apply ReferencePath $.result to input "\"input1\"""#)
    );

    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": 1, "ResultPath": "$.a.b", "End": true}}});
    let out = run(def, json!({"a": [1]}), script(&[])).await;
    assert_eq!(out.execution.error.as_deref(), Some("States.ReferencePathConflict"));
    assert_eq!(
        out.execution.cause.as_deref(),
        Some(r#"Unable to apply ReferencePath $.a.b to input "{\"a\":[1]}""#)
    );

    let runner = script(&[("T", vec![Scripted::err("Boom", "it broke")])]);
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "End": true,
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}]},
        "Done": {"Type": "Succeed"}}});
    let out = run(def, json!([1, 2]), runner).await;
    assert_eq!(out.execution.error.as_deref(), Some("States.ReferencePathConflict"));
}
