//! Workflow variables and JSONata states beyond the AWS-recorded corpus: evaluation order,
//! scope, size limits, errors that Catch takes, and Task states written in JSONata.

mod common;

use common::{run, script, t0};
use recflow::asl::StateMachine;
use recflow::engine::Status;
use recflow::tasks::Scripted;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn assignments_see_the_values_from_before_the_state() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "One", "States": {
        "One": {"Type": "Pass", "Assign": {"b": 1}, "Next": "Two"},
        "Two": {"Type": "Pass", "Assign": {"a": "{% $b %}", "b": 2}, "Output": {"b_in_output": "{% $b %}"}, "Next": "Three"},
        "Three": {"Type": "Pass", "Output": {"a": "{% $a %}", "b": "{% $b %}", "before": "{% $states.input %}"}, "End": true}
    }});
    let out = run(definition, json!({}), script(&[])).await.execution;
    assert_eq!(out.output, Some(json!({"a": 1, "b": 2, "before": {"b_in_output": 1}})));
}

#[tokio::test(start_paused = true)]
async fn jsonpath_reads_variables_in_parameters_choice_and_intrinsics() {
    let definition = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Result": {"limit": 3, "who": "ada"}, "Assign": {"limit.$": "$.limit", "who.$": "$.who"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$limit", "NumericGreaterThan": 2, "Next": "Use"}], "Default": "Use"},
        "Use": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hi {}', $who)", "limit.$": "$limit"}, "End": true}
    }});
    let out = run(definition, json!({}), script(&[])).await.execution;
    assert_eq!(out.output, Some(json!({"greeting": "hi ada", "limit": 3})));
}

#[tokio::test(start_paused = true)]
async fn an_undefined_variable_in_a_jsonpath_state_is_a_runtime_error_naming_it() {
    let definition = json!({"StartAt": "Use", "States": {
        "Use": {"Type": "Pass", "Parameters": {"x.$": "$missing.field"}, "End": true}
    }});
    let out = run(definition, json!({}), script(&[])).await.execution;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("States.Runtime"));
    assert!(out.cause.as_deref().unwrap().contains("'$missing', which is not defined"), "{:?}", out.cause);
}

#[tokio::test(start_paused = true)]
async fn branches_and_iterations_have_their_own_scope() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"outer": 10}, "Next": "Both"},
        "Both": {"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"mine": "a"}, "Next": "A2"},
                                        "A2": {"Type": "Pass", "Output": "{% $mine & $string($outer) %}", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Assign": {"mine": "b"}, "Next": "B2"},
                                        "B2": {"Type": "Pass", "Output": "{% $mine & $string($outer) %}", "End": true}}}
        ], "Next": "After"},
        "After": {"Type": "Pass", "Output": {"results": "{% $states.input %}", "mine": "{% $exists($mine) %}"}, "End": true}
    }});
    let out = run(definition, json!({}), script(&[])).await.execution;
    assert_eq!(out.output, Some(json!({"results": ["a10", "b10"], "mine": false})));
}

#[tokio::test(start_paused = true)]
async fn an_iteration_cannot_assign_a_variable_of_an_enclosing_scope() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"total": 0}, "Next": "Each"},
        "Each": {"Type": "Map", "Items": [1, 2], "ItemProcessor": {"StartAt": "Add", "States": {
            "Add": {"Type": "Pass", "Assign": {"total": "{% $total + $states.input %}"}, "End": true}}}, "End": true}
    }});
    let out = run(definition, json!({}), script(&[])).await.execution;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("States.Runtime"));
    assert!(out.cause.as_deref().unwrap().contains("'total'"), "{:?}", out.cause);
}

#[tokio::test(start_paused = true)]
async fn an_assign_over_256_kib_exceeds_the_data_limit() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Big", "States": {
        "Big": {"Type": "Pass", "Assign": {"blob": "{% $pad('', 300000, 'x') %}"}, "End": true}
    }});
    let out = run(definition, json!({}), script(&[])).await.execution;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("States.DataLimitExceeded"));
    let cause = out.cause.unwrap();
    assert!(cause.contains("The state 'Big'") && cause.contains("blob 300002 bytes"), "{cause}");
}

#[tokio::test(start_paused = true)]
async fn a_query_evaluation_error_is_caught_with_its_error_output() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "arn:aws:states:::test:work", "Arguments": {"n": "{% $nope() %}"},
                 "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Handled",
                            "Assign": {"why": "{% $states.errorOutput.Error %}"},
                            "Output": {"input": "{% $states.input %}", "cause": "{% $states.errorOutput.Cause %}"}}],
                 "End": true},
        "Handled": {"Type": "Pass", "Output": {"why": "{% $why %}", "seen": "{% $states.input %}"}, "End": true}
    }});
    let runner = script(&[]);
    let out = run(definition, json!({"job": 7}), runner.clone()).await;
    let exec = out.execution;
    assert_eq!(exec.status, Status::Succeeded, "{:?}", exec.cause);
    let output = exec.output.unwrap();
    assert_eq!(output["why"], json!("States.QueryEvaluationError"));
    assert_eq!(output["seen"]["input"], json!({"job": 7}));
    let cause = output["seen"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("'$nope()' specified for the field 'Arguments/n'") && cause.contains("T1006"),
        "{cause}"
    );
    assert!(out.calls.is_empty(), "no call goes out when its Arguments fail");
}

#[tokio::test(start_paused = true)]
async fn a_jsonata_task_sends_its_arguments_and_shapes_its_output() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Train", "States": {
        "Train": {"Type": "Task", "Resource": "arn:aws:states:::test:train",
                  "Arguments": {"name": "{% 'v-' & $states.input.day %}", "at": "{% $now() %}"},
                  "TimeoutSeconds": "{% 60 * 60 %}",
                  "Output": {"arn": "{% $states.result.arn %}", "day": "{% $states.input.day %}"},
                  "Assign": {"trained": "{% $states.result.arn %}"}, "End": true}
    }});
    let runner = script(&[("Train", vec![Scripted::ok(json!({"arn": "arn:sv/1"}))])]);
    let out = run(definition, json!({"day": "2026-11-25"}), runner).await;
    assert_eq!(out.execution.output, Some(json!({"arn": "arn:sv/1", "day": "2026-11-25"})));
    assert_eq!(out.execution.variables["trained"], json!("arn:sv/1"));
    let call = &out.calls[0];
    assert_eq!(call.parameters["name"], json!("v-2026-11-25"));
    // `$now()` is the transition's time: the same after a crash and a replay.
    assert_eq!(call.parameters["at"], json!(t0().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()));
    assert_eq!(call.timeout_seconds, Some(3600));
}

#[test]
fn the_fields_of_the_other_language_are_refused_by_name() {
    let refused = |definition: serde_json::Value| {
        StateMachine::from_json(&definition).unwrap_err().iter().map(|e| e.to_string()).collect::<Vec<_>>()
    };
    let errors = refused(json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "InputPath": "$.x", "End": true}}}));
    assert!(errors[0].starts_with("States.P.InputPath: is a JSONPath field"), "{errors:?}");
    let errors = refused(json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": {"a": 1}, "End": true}}}));
    assert!(errors[0].starts_with("States.P.Output: is a JSONata field"), "{errors:?}");
    let errors = refused(json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "QueryLanguage": "JSONata", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "E"}]},
        "E": {"Type": "Succeed"}}}));
    assert!(
        errors.iter().any(|e| e.starts_with("States.C.Choices[0].Variable: unknown field")),
        "{errors:?}"
    );
    let errors = refused(json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Assign": {"states": 1}, "End": true}}}));
    assert!(errors[0].contains("'states' is reserved"), "{errors:?}");
    let errors = refused(json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": "{% $sum( %}", "End": true}}}));
    assert!(
        errors[0].starts_with("States.P.Output: '$sum(' is not a valid JSONata expression"),
        "{errors:?}"
    );
}

#[test]
fn a_jsonata_tasks_arguments_are_checked_against_the_service_model() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Import", "States": {
        "Import": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:createDatasetImportJob.sync",
                   "Arguments": {"DatasetArnn": "{% $states.input.arn %}", "DataSource": {"DataLocation": "{% $states.input.path %}"},
                                 "RoleArn": "{% $states.input.role %}", "ImportMode": "SOMETIMES"},
                   "End": true}
    }});
    let problems: Vec<String> =
        recflow::tasks::check_definition(&definition).iter().map(ToString::to_string).collect();
    assert!(problems.iter().any(|p| p.starts_with("States.Import.Arguments.DatasetArnn: ")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.starts_with("States.Import.Arguments.ImportMode: 'SOMETIMES'")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("States.Import.Arguments.DatasetArn: required")),
        "{problems:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_undefined_variable_is_named_with_the_nearest_one_in_scope() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"count": 1}, "Next": "B"},
        "B": {"Type": "Pass", "Output": {"x": "{% $cuont + 1 %}", "r": "{% $states.result %}"}, "End": true}
    }});
    let out = run(definition, json!({}), script(&[])).await;
    let cause = out.execution.cause.unwrap();
    // AWS's words first, then recflow's hint.
    assert!(cause.contains("'$cuont + 1' specified for the field 'Output/x' returned nothing (undefined). $cuont is not a variable in scope here (did you mean $count?)."), "{cause}");
    // The assignment is in the history, as Step Functions' assignedVariables.
    let assigned = out.history.iter().find_map(|e| match &e.detail {
        recflow::engine::Detail::StateExited { assigned_variables: Some(a), .. } => Some(a.clone()),
        _ => None,
    });
    assert_eq!(assigned.unwrap()["count"], json!(1));
}

#[test]
fn jsonpath_cannot_come_back_under_a_jsonata_top_level_nor_write_a_variable() {
    let refused = |definition: serde_json::Value| {
        StateMachine::from_json(&definition).unwrap_err().iter().map(|e| e.to_string()).collect::<Vec<_>>()
    };
    let errors = refused(json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}));
    assert!(
        errors[0].starts_with(
            "States.P.QueryLanguage: cannot be JSONPath in a machine whose top-level QueryLanguage is JSONata"
        ),
        "{errors:?}"
    );
    // The other way round is how a JSONPath machine adopts JSONata state by state.
    assert!(
        StateMachine::from_json(&json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "QueryLanguage": "JSONata", "End": true}}}))
        .is_ok()
    );
    let errors = refused(json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": 1, "ResultPath": "$total", "End": true}}}));
    assert!(
        errors[0].contains(
            "names a variable: ResultPath writes into the state's data; set a variable with Assign"
        ),
        "{errors:?}"
    );
}

#[test]
fn validate_reports_every_problem_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wf.asl.json");
    std::fs::write(
        &file,
        json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:personalize:createSolutionVersion",
                  "Arguments": {"SolutionArm": "{% $states.input.arn %}"}, "End": true},
            "Orphan": {"Type": "Succeed"}
        }})
        .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recflow"))
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("States.Orphan: cannot be reached from StartAt 'T'"), "{text}");
    assert!(text.contains("States.T.Arguments.SolutionArm: "), "the Task check too: {text}");
}
