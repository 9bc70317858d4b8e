//! Every execution recorded against AWS Step Functions (tests/data/conformance), both corpora, run through
//! the engine and compared with AWS's outcome; Parallel and Map cases are counted apart too, so
//! the printed line shows how that part of the corpus fares.

use chrono::{TimeZone, Utc};
use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::engine::{Driver, Registry, Status, TokioClock};
use serde_json::Value;

const CASES: &str = include_str!("data/conformance/aws-recorded/cases.jsonl");
const JSONATA_CASES: &str = include_str!("data/conformance/aws-recorded/jsonata-cases.jsonl");

/// AWS's recording masks some values; these match anything (the data's README).
fn placeholder(expected: &str) -> bool {
    (expected.starts_with('<') && expected.ends_with('>'))
        || ["date", "timestamp", "start-time", "entered-time", "snf_role_arn"].contains(&expected)
        || expected.contains("arn:")
}

fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), _) if placeholder(e) => true,
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len() && e.iter().all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| matches(x, y))
        }
        (e, a) => e == a,
    }
}

fn uses_parallel_or_map(definition: &Value) -> bool {
    let text = definition.to_string();
    text.contains("\"Type\":\"Parallel\"") || text.contains("\"Type\":\"Map\"")
}

async fn run_case(definition: &Value, input: Value) -> Result<recflow::engine::Execution, String> {
    let machine = StateMachine::from_json(definition).map_err(|e| {
        format!("definition refused: {}", e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let registry = Registry::new();
    let clock = TokioClock::starting_at(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let store = MemoryStore::default();
    let driver =
        Driver::start(&machine, definition, &registry, &clock, &store, "case", "conformance", input, 7)
            .await
            .map_err(|e| e.to_string())?;
    driver.run().await.map_err(|e| e.to_string())
}

/// Runs every case of a corpus: the ids that differ from AWS with why, and the count that match.
async fn run_corpus(cases: &str) -> (usize, Vec<String>, usize) {
    let (mut passed, mut fork_cases) = (0, 0);
    let mut failures = Vec::new();
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("a case is JSON");
        let id = case["id"].as_str().unwrap_or("?");
        let definition = &case["definition"];
        if uses_parallel_or_map(definition) {
            fork_cases += 1;
        }
        let expected = &case["expected"];
        let outcome = match run_case(definition, case["input"].clone()).await {
            Err(e) => Err(e),
            Ok(exec) => {
                // AWS records no error name for a Fail state without Error; recflow's is empty.
                let error = exec.error.as_deref().filter(|e| !e.is_empty());
                match (expected["status"].as_str(), exec.status) {
                    (Some("SUCCEEDED"), Status::Succeeded) => {
                        let output = exec.output.unwrap_or(Value::Null);
                        if matches(&expected["output"], &output) {
                            Ok(())
                        } else {
                            Err(format!("output {output}\n   expected {}", expected["output"]))
                        }
                    }
                    (Some("FAILED"), Status::Failed) if expected["error"].as_str() == error => {
                        let cause = exec.cause.as_deref().unwrap_or("");
                        // recflow may add a hint after AWS's wording; AWS's words come first.
                        if let Some(want) = expected["cause"].as_str().filter(|w| !cause.starts_with(w)) {
                            // Causes are AWS's wording: shown, not asserted (the data's README).
                            println!("  cause differs in {id}:\n    recflow: {cause}\n    AWS:     {want}");
                        }
                        Ok(())
                    }
                    (want, _) => Err(format!(
                        "{} {:?} {:?} (expected {want:?} {})",
                        exec.status.as_str(),
                        exec.error,
                        exec.cause,
                        expected.get("error").unwrap_or(&Value::Null)
                    )),
                }
            }
        };
        match outcome {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("{id}: {why}")),
        }
    }
    (passed, failures, fork_cases)
}

#[tokio::test(start_paused = true)]
async fn aws_recorded_executions() {
    let (passed, failures, fork_cases) = run_corpus(CASES).await;
    println!(
        "conformance: {passed}/{} cases match AWS ({fork_cases} of them use Parallel or Map)",
        passed + failures.len()
    );
    assert!(failures.is_empty(), "{} cases differ from AWS:\n{}", failures.len(), failures.join("\n"));
    assert!(passed >= 199, "expected the whole corpus to run, ran {passed}");
    assert!(fork_cases >= 19, "expected the Parallel and Map cases, found {fork_cases}");
}

/// The JSONata and variables corpus: 47 JSONata machines and 9 JSONPath ones with Assign.
#[tokio::test(start_paused = true)]
async fn aws_recorded_jsonata_and_variables_executions() {
    let (passed, failures, fork_cases) = run_corpus(JSONATA_CASES).await;
    println!(
        "conformance (JSONata and variables): {passed}/{} cases match AWS ({fork_cases} of them use Parallel or Map)",
        passed + failures.len()
    );
    assert!(failures.is_empty(), "{} cases differ from AWS:\n{}", failures.len(), failures.join("\n"));
    assert!(passed >= 56, "expected the whole corpus to run, ran {passed}");
}
