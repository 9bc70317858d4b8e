//! Fuzzing: definitions from workflows/ and tests/data (the shipped workflows, the validation
//! corpus and the AWS-recorded cases), mutated by proptest, each validated and, when valid, run
//! to its end with every task answered. Nothing may panic or hang: a definition is accepted or
//! refused, and an execution ends SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
//!
//! 10,000 cases in-process (`FUZZ_CASES` changes it; CI runs the default) and, for the exit
//! codes, a few hundred through the real binary: `recflow validate` and `recflow run --mock`
//! must exit 0, 1 or 2 within their time.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::t0;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use recflow::asl::StateMachine;
use recflow::checkpoint::MemoryStore;
use recflow::engine::execution::Limits;
use recflow::engine::task::TaskFuture;
use recflow::engine::{Answer, Clock, Driver, Registry, Status, TaskCall, TaskRunner, TokioClock};
use serde_json::{Value, json};

/// Every definition of the corpus.
fn corpus() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let json_files = |dir: PathBuf| {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("corpus folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
    };
    for dir in
        [root.join("workflows"), root.join("tests/data/conformance/validation"), root.join("tests/data/blog")]
    {
        for file in json_files(dir) {
            if let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&file).unwrap())
                && v.get("States").is_some()
            {
                out.push(v);
            }
        }
    }
    for cases in ["cases.jsonl", "jsonata-cases.jsonl"] {
        let text =
            std::fs::read_to_string(root.join("tests/data/conformance/aws-recorded").join(cases)).unwrap();
        out.extend(
            text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()?.get("definition").cloned()),
        );
    }
    assert!(out.len() > 250, "the corpus has {} definitions", out.len());
    out
}

/// Where a mutation applies: the n-th node of the document in depth-first order.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    /// Points a Next, Default or StartAt (or any string) at the k-th state name.
    Retarget(usize, usize),
    /// Copies a node over another.
    Copy(usize, usize),
}

/// Values that have broken interpreters before: paths of every kind, intrinsic calls (some
/// nested very deep), JSONata, huge and odd numbers, timestamps, state types and names.
fn interesting() -> Vec<Value> {
    let deep = |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
    let mut v = vec![
        json!("$"),
        json!("$$"),
        json!("$.a"),
        json!("$[1:]"),
        json!("$.a[-1]"),
        json!("$..x"),
        json!("$.a[*].b"),
        json!("$.a[?(@.b > 1)]"),
        json!("$[(@.length-1)]"),
        json!("$$.Execution.Input"),
        json!("$$.Map.Item.Value"),
        json!("$undefinedVar"),
        json!("States.Format('{}{}', $.s, $.s)"),
        json!("States.ArrayRange(1, 1000000, 1)"),
        json!("States.StringToJson($.s)"),
        json!("States.Hash($, 'SHA-256')"),
        json!("States.MathRandom(1, 0)"),
        json!("{% $states.input %}"),
        json!("{% $x.y.z %}"),
        json!("{%1+%}"),
        json!("{% [1..100000] %}"),
        json!(""),
        json!("arn:aws:states:::lambda:invoke"),
        json!("arn:aws:states:::personalize:createSolutionVersion.sync"),
        json!("arn:recflow:::picks:publish"),
        json!("2199-01-01T00:00:00Z"),
        json!("1970-01-01T00:00:00z"),
        json!(0),
        json!(-1),
        json!(1e300),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(0.5),
        json!(99999999),
        json!(true),
        json!(null),
        json!([]),
        json!({}),
        json!(["States.ALL"]),
        json!("States.ALL"),
        json!("Pass"),
        json!("Task"),
        json!("Choice"),
        json!("Wait"),
        json!("Map"),
        json!("Parallel"),
        json!("Succeed"),
        json!("Fail"),
        json!("JSONata"),
        json!("JSONPath"),
        json!({"Type": "Pass", "Next": "A"}),
        json!({"Type": "Pass", "End": true}),
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
        json!({"Variable": "$.a", "NumericEquals": 1, "Next": "A"}),
        json!({"ErrorEquals": ["States.ALL"], "Next": "A"}),
        json!({"x.$": "$.a"}),
        json!({"x.$": "States.Array($)"}),
    ];
    v.push(Value::String(deep("States.Array(", ")", 5000)));
    v.push(Value::String(format!("$[?({})]", deep("(", ")", 5000).replace('1', "@.a == 1"))));
    v.push(Value::String(format!("{{% {} %}}", deep("[", "]", 5000))));
    v.push(Value::String("x".repeat(300_000)));
    v
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let values = interesting();
    let leaf = prop_oneof![
        4 => proptest::sample::select(values),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => "\\PC{0,12}".prop_map(Value::String),
    ];
    prop_oneof![
        2 => any::<usize>().prop_map(Mutation::Remove),
        4 => (any::<usize>(), leaf).prop_map(|(at, v)| Mutation::Replace(at, v)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(at, k)| Mutation::Retarget(at, k)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(at, from)| Mutation::Copy(at, from)),
    ]
}

/// JSON-pointer paths of every node below the root, depth first.
fn nodes(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                nodes(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                nodes(child, p, out);
            }
        }
        _ => {}
    }
}

fn state_names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(states)) = map.get("States") {
                out.extend(states.keys().cloned());
            }
            map.values().for_each(|c| state_names(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| state_names(c, out)),
        _ => {}
    }
}

fn mutate(mut doc: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let mut all = Vec::new();
        nodes(&doc, String::new(), &mut all);
        if all.is_empty() {
            break;
        }
        let pick = |i: usize| all[i % all.len()].clone();
        match m {
            Mutation::Remove(at) => {
                let path = pick(*at);
                let (parent, key) = path.rsplit_once('/').unwrap();
                match doc.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.shift_remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(items)) => {
                        let i: usize = key.parse().unwrap();
                        if i < items.len() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            Mutation::Replace(at, value) => {
                if let Some(node) = doc.pointer_mut(&pick(*at)) {
                    *node = value.clone();
                }
            }
            Mutation::Retarget(at, k) => {
                let mut names = Vec::new();
                state_names(&doc, &mut names);
                if let (Some(name), Some(node)) =
                    (names.get(k % names.len().max(1)).cloned(), doc.pointer_mut(&pick(*at)))
                    && node.is_string()
                {
                    *node = Value::String(name);
                }
            }
            Mutation::Copy(at, from) => {
                let source = doc.pointer(&pick(*from)).cloned();
                if let (Some(source), Some(node)) = (source, doc.pointer_mut(&pick(*at))) {
                    *node = source;
                }
            }
        }
    }
    doc
}

/// Answers every task: a result, an error, or a poll, by the call's attempt.
struct AnyAnswer;

impl TaskRunner for AnyAnswer {
    fn call<'a>(&'a self, call: &'a TaskCall, _clock: &'a dyn Clock) -> TaskFuture<'a> {
        Box::pin(async move {
            match (call.attempt + call.state.len() as u32) % 4 {
                0 => Err(recflow::asl::errors::StatesError::new("Fuzz.Error", "an answer that fails")),
                1 if call.poll.is_none() => Ok(Answer::Poll {
                    token: json!(1),
                    after_seconds: 30.0,
                    status: "CREATE IN_PROGRESS".into(),
                }),
                _ => Ok(Answer::Done {
                    output: json!({"Status": "ACTIVE", "a": [1, 2], "s": "x"}),
                    report: None,
                }),
            }
        })
    }
}

/// Validates `doc`; if valid, runs it to its end in paused time with a small history cap.
/// Gives whether it was valid (and so ran).
fn validate_and_run(doc: &Value, input: &Value) -> Result<bool, TestCaseError> {
    let text = serde_json::to_string(doc).unwrap();
    let _ = recflow::tasks::check_definition(doc);
    let Ok(machine) = StateMachine::parse(&text) else { return Ok(false) };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    runtime.block_on(async {
        let mut registry = Registry::new();
        registry.register("", Arc::new(AnyAnswer));
        let clock = TokioClock::starting_at(t0());
        let store = MemoryStore::default();
        let limits = Limits { max_history_events: 2_000, ..Limits::default() };
        let driver =
            Driver::start(&machine, doc, &registry, &clock, &store, "fuzz", "fuzz", input.clone(), 7)
                .await
                .map_err(|e| TestCaseError::fail(format!("start: {e}")))?;
        let execution =
            driver.with_limits(limits).run().await.map_err(|e| TestCaseError::fail(format!("run: {e}")))?;
        prop_assert!(execution.status != Status::Running, "ended {:?}", execution.status);
        Ok(true)
    })
}

fn inputs() -> Vec<Value> {
    vec![
        json!({}),
        json!({"a": [1, 2, 3], "s": "ab", "n": 5}),
        json!("input1"),
        json!([1, {"b": 2}]),
        json!(null),
    ]
}

#[test]
fn mutated_definitions_validate_and_run_without_panic_or_hang() {
    let corpus = corpus();
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy =
        (0..corpus.len(), proptest::collection::vec(mutation(), 1..4), proptest::sample::select(inputs()));
    let ran = std::sync::atomic::AtomicU32::new(0);
    let valid = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&strategy, |(i, mutations, input)| {
        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if validate_and_run(&mutate(corpus[i].clone(), &mutations), &input)? {
            valid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (ran, valid) = (ran.into_inner(), valid.into_inner());
    println!("{ran} mutated definitions: {valid} valid and run to their end, {} refused", ran - valid);
    assert_eq!(ran, cases, "every case ran");
    // Mutations keep a good share valid, so the engine is exercised and not only the parser.
    assert!(valid * 10 >= ran, "only {valid} of {ran} mutated definitions were valid");
}

/// Through the binary: exit codes 0, 1 or 2 only, each command within its time.
#[test]
fn the_binary_exits_0_1_or_2_on_mutated_definitions() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config { cases: 150, failure_persistence: None, ..Config::default() });
    let strategy = (0..corpus.len(), proptest::collection::vec(mutation(), 1..3));
    let count = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&strategy, |(i, mutations)| {
        let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let doc = mutate(corpus[i].clone(), &mutations);
        let file = dir.path().join(format!("case-{n}.asl.json"));
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let mut names = Vec::new();
        state_names(&doc, &mut names);
        let mock: serde_json::Map<String, Value> =
            names.into_iter().map(|n| (n, json!({"Return": {"Status": "ACTIVE"}}))).collect();
        let mock_file = dir.path().join(format!("case-{n}.mock.json"));
        std::fs::write(&mock_file, serde_json::to_vec(&mock).unwrap()).unwrap();
        for args in [
            vec!["validate".into(), file.display().to_string()],
            vec![
                "run".into(),
                file.display().to_string(),
                "--mock".into(),
                mock_file.display().to_string(),
                "--no-checkpoint".into(),
                "--max-history-events".into(),
                "2000".into(),
                "--time-scale".into(),
                "1000000".into(),
            ],
        ] {
            let code = run_bounded(&args, Duration::from_secs(60));
            prop_assert!(matches!(code, Some(0..=2)), "recflow {} exited {code:?}", args.join(" "));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The exit code, or `None` if the process was killed by a signal or had to be killed.
fn run_bounded(args: &[String], limit: Duration) -> Option<i32> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_recflow"))
        .args(args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RECFLOW_LOG", "error")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
