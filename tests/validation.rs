//! `recflow validate` against definitions known to be accepted or rejected by AWS Step
//! Functions (tests/data/conformance/validation), and against the shipped workflows.

use std::path::{Path, PathBuf};
use std::process::Command;

use recflow::asl::StateMachine;
use recflow::asl::definition::UNSUPPORTED;

fn files(prefix: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/validation");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("validation folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    out.sort();
    out
}

fn check(path: &Path) -> Result<(), Vec<String>> {
    let text = std::fs::read_to_string(path).expect("readable");
    StateMachine::parse(&text).map(|_| ()).map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
}

#[test]
fn accepts_every_valid_definition_or_names_the_unsupported_feature() {
    let valid = files("valid-");
    assert!(valid.len() >= 25);
    let mut unsupported = 0;
    for path in &valid {
        let text = std::fs::read_to_string(path).expect("readable");
        if text.contains("JSONata") || text.contains("\"Assign\"") {
            // JSONata and variables run: such a file may be refused only for another feature
            // (a distributed Map), never for the language.
            if let Err(errors) = check(path) {
                assert!(
                    errors.iter().all(|e| !e.contains("JSONata") && !e.contains("Assign")),
                    "{} uses JSONata or Assign and was refused for it: {errors:?}",
                    path.display()
                );
            }
        }
        if let Err(errors) = check(path) {
            // Refusing valid ASL is allowed only for a named unsupported feature.
            assert!(
                errors.iter().all(|e| e.contains(UNSUPPORTED)),
                "{} is valid ASL but was refused: {errors:?}",
                path.display()
            );
            unsupported += 1;
        }
    }
    println!(
        "valid definitions: {} accepted, {unsupported} refused as unsupported",
        valid.len() - unsupported
    );
    // Only the CloudFormation-intrinsic one (valid-task-intrisic-function.json) is left.
    assert!(unsupported <= 1, "{unsupported} valid definitions refused as unsupported");
}

#[test]
fn refuses_every_invalid_definition_naming_state_and_field() {
    let invalid = files("invalid-");
    assert!(invalid.len() >= 15);
    for path in &invalid {
        let errors = check(path).expect_err(&format!("{} is invalid but was accepted", path.display()));
        assert!(
            errors.iter().any(|e| e.contains(": ") && (e.starts_with("States.") || e.starts_with("StartAt"))),
            "{}: errors should point at a state and field: {errors:?}",
            path.display()
        );
    }
}

#[test]
fn errors_point_at_the_field() {
    let text = r#"{"StartAt": "Train", "States": {"Train": {"Type": "Task", "Resource": "arn:x",
        "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 0.5}], "End": true}}}"#;
    let errors = StateMachine::parse(text).expect_err("BackoffRate below 1");
    assert_eq!(errors[0].to_string(), "States.Train.Retry[0].BackoffRate: must be >= 1.0, not 0.5");

    let text = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere", "Seconds": 3}}}"#;
    let errors: Vec<String> =
        StateMachine::parse(text).expect_err("two problems").iter().map(|e| e.to_string()).collect();
    assert!(
        errors.contains(&"States.A.Seconds: unknown field, not allowed in a Pass state".to_string()),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.starts_with("States.A.Next: names state 'Nowhere'")), "{errors:?}");

    let text = r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": true,
        "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}}}"#;
    let errors: Vec<String> =
        StateMachine::parse(text).expect_err("ALL not last").iter().map(|e| e.to_string()).collect();
    assert_eq!(errors, vec!["States.A.Retry[0].ErrorEquals: a retrier with States.ALL must be the last one"]);

    let errors = StateMachine::parse("{\"StartAt\": ").expect_err("bad JSON");
    assert!(errors[0].to_string().starts_with("not valid JSON"), "{errors:?}");
}

#[test]
fn the_command_line_validates_files_and_sets_the_exit_code() {
    let bin = env!("CARGO_BIN_EXE_recflow");
    let out = Command::new(bin).arg("validate").args(files("invalid-")).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("invalid-next-with-end.json: error: States.Send SNS Message.End: a state cannot have both Next and End"), "{stdout}");

    let workflows: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"))
        .expect("workflows folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
        .collect();
    assert!(!workflows.is_empty());
    let out = Command::new(bin).arg("validate").args(&workflows).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn unreachable_states_and_machines_that_cannot_end_are_refused() {
    let orphan = serde_json::json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "End": true},
        "Orphan": {"Type": "Pass", "End": true}}});
    let errors = recflow::asl::StateMachine::from_json(&orphan).unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(text, vec!["States.Orphan: cannot be reached from StartAt 'A'".to_string()]);

    let endless = serde_json::json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}});
    let errors = recflow::asl::StateMachine::from_json(&endless).unwrap_err();
    assert!(
        errors[0].to_string().contains("no terminal state (End, Succeed or Fail) can be reached"),
        "{errors:?}"
    );

    // A broken Next does not hide an unreachable state: both are named, and nothing is said
    // about ending, which needs every link to hold.
    let broken = serde_json::json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "Missing"},
        "Orphan": {"Type": "Pass", "End": true}}});
    let errors = recflow::asl::StateMachine::from_json(&broken).unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text.iter().any(|t| t.starts_with("States.A.Next") && t.contains("Missing")), "{text:?}");
    assert!(text.contains(&"States.Orphan: cannot be reached from StartAt 'A'".to_string()), "{text:?}");

    // A loop with a way out is fine, and so is a state reached only through a Catch or a Choice.
    let fine = serde_json::json!({"StartAt": "Try", "States": {
        "Try": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}], "Next": "Again?"},
        "Again?": {"Type": "Choice", "Choices": [{"Variable": "$.more", "BooleanEquals": true, "Next": "Try"}], "Default": "Done"},
        "Handle": {"Type": "Fail", "Error": "E"},
        "Done": {"Type": "Succeed"}}});
    assert!(recflow::asl::StateMachine::from_json(&fine).is_ok());
    // Inside a Parallel branch the same rules hold, located in the branch.
    let branch = serde_json::json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}, "Lost": {"Type": "Pass", "End": true}}}]}}});
    let errors = recflow::asl::StateMachine::from_json(&branch).unwrap_err();
    assert!(
        errors[0].to_string().starts_with("States.P.Branches[0].States.Lost: cannot be reached"),
        "{errors:?}"
    );
}

/// CreateStateMachine refuses a Task whose Resource is not an ARN; `recflow validate` does too,
/// in nested branches as well, and names a CloudFormation placeholder for what it is.
#[test]
fn a_resource_that_is_not_an_arn_is_refused() {
    let check = |resource: &str| {
        let definition = serde_json::json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource, "End": true}}}]}}});
        // Only the Resource's problems: the picks task also wants its Parameters.
        let errors = recflow::tasks::check_definition(&definition);
        errors.iter().map(|e| e.to_string()).filter(|e| e.contains(".Resource:")).collect::<Vec<_>>()
    };
    for bad in [
        "notanarn",
        "arn:aws",
        "arn:aws:lambda",
        "arn:aws::::x",
        "arn:aws:Lambda:::x",
        "arn:foo:lambda:::x",
        "arn:aws:lambda:us-east-1:1234567890123:function:f",
    ] {
        let errors = check(bad);
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            errors[0].starts_with("States.T.Resource: '")
                && errors[0].contains("is not a valid resource ARN"),
            "{errors:?}"
        );
    }
    assert!(check("${lambdaArn}")[0].contains("CloudFormation placeholder"));
    for good in [
        "arn:aws:states:::lambda:invoke",
        "arn:aws:lambda:us-east-1:123456789012:function:foo:$LATEST",
        "arn:aws:states:us-east-1:12345:activity:hello-world",
        "arn:aws-cn:states:::sns:publish",
        "arn:recflow:::picks:publish",
    ] {
        assert_eq!(check(good), Vec::<String>::new(), "{good}");
    }
}

/// A state named twice (or any key given twice in one object) is refused: a JSON parser keeps
/// only one of them, and validate used to report the survivor as valid.
#[test]
fn a_key_given_twice_is_refused_where_it_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("twice.asl.json");
    std::fs::write(
        &file,
        r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true},"A":{"Type":"Succeed"}}}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recflow")).arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("error: States: the key 'A' appears twice"), "{stdout}");
    let out = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .args(["run", "--no-checkpoint"])
        .arg(&file)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the key 'A' appears twice"));
}
