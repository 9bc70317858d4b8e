//! deploy/: every file parses; the Kubernetes manifests name the image, port, probe and metrics
//! paths the binary really serves (a real `recflow daemon` is asked), its shutdown grace and its
//! flags; the CloudFormation templates reference only the parameters and resources they define
//! (and pass cfn-lint when it is installed: required with RECFLOW_CFN_LINT_TESTS=1, as `.ci/run`
//! sets) and carry what `recflow iam-policy` and `recflow export` print today.
//!
//! No Kubernetes schema check runs here: kubeconform is a Go binary that downloads its schemas
//! from GitHub, and neither is reachable from this project's registries. No Docker engine either:
//! the image test builds and runs it only when `docker info` answers.

#[path = "support/process.rs"]
mod process;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_recflow");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn text(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_norway::from_str(&text(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn recflow_json(args: &[&str]) -> Value {
    let out = Command::new(BIN).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files_under(&path, out) } else { out.push(path) }
    }
}

/// Dockerfile instructions (Dockerfile reference).
const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// The Dockerfile's instructions with their arguments, continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let joined = text("deploy/Dockerfile").replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (word, rest) = l.split_once(' ').unwrap_or((l, ""));
            (word.to_string(), rest.trim().to_string())
        })
        .collect()
}

#[test]
fn every_file_in_deploy_parses() {
    let mut files = Vec::new();
    files_under(&repo("deploy"), &mut files);
    assert!(files.len() >= 10, "{files:?}");
    for path in files {
        let shown = path.display().to_string();
        let body = std::fs::read_to_string(&path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") => {
                let value: Value = serde_norway::from_str(&body).unwrap_or_else(|e| panic!("{shown}: {e}"));
                assert!(value.is_object(), "{shown}");
            }
            Some("json") => {
                serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("{shown}: {e}"));
            }
            Some("toml") => {
                toml::from_str::<toml::Value>(&body).unwrap_or_else(|e| panic!("{shown}: {e}"));
            }
            None if path.file_name().unwrap() == "Dockerfile" => {
                for (word, _) in dockerfile() {
                    assert!(INSTRUCTIONS.contains(&word.as_str()), "{shown}: unknown instruction {word}");
                }
            }
            _ => panic!("{shown}: no check for this kind of file: add one"),
        }
    }
}

/// The daemon's default address, as `recflow daemon --help` prints it.
fn default_port() -> u16 {
    let out = Command::new(BIN).args(["daemon", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let default = help.split("[default: ").find_map(|rest| {
        let value = rest.split(']').next()?;
        value.parse::<std::net::SocketAddr>().ok()
    });
    default.expect("daemon --help names a default address").port()
}

#[test]
fn the_image_runs_the_binary_as_a_non_root_user_with_the_workflows() {
    let instructions = dockerfile();
    let get = |word: &str| -> Vec<&str> {
        instructions.iter().filter(|(w, _)| w == word).map(|(_, a)| a.as_str()).collect()
    };
    assert_eq!(get("ENTRYPOINT"), [r#"["recflow"]"#]);
    let user = get("USER").last().unwrap().split(':').next().unwrap().to_string();
    assert!(user != "0" && user != "root", "USER {user}");
    assert_eq!(get("EXPOSE"), [default_port().to_string().as_str()]);
    assert!(get("RUN").iter().any(|r| r.contains("ca-certificates")));
    assert_eq!(get("FROM").len(), 2, "multi-stage: build and run");
    // The builder's Rust is the crate's rust-version.
    let manifest: toml::Value = toml::from_str(&text("Cargo.toml")).unwrap();
    let rust = manifest["package"]["rust-version"].as_str().unwrap();
    assert!(get("FROM")[0].starts_with(&format!("rust:{rust}")), "{:?}", get("FROM"));
    // Every COPY from the build context exists and is not left out by .dockerignore.
    let ignored: Vec<String> = text(".dockerignore")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    for copy in get("COPY").iter().filter(|c| !c.starts_with("--from")) {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(repo(source).exists(), "COPY {source}: no such file");
            assert!(!ignored.contains(&source.to_string()), "COPY {source} is in .dockerignore");
        }
    }
    assert!(get("COPY").iter().any(|c| c.starts_with("workflows ")));
}

#[test]
fn the_image_builds_and_validates_the_workflows_when_docker_is_there() {
    let docker = Command::new("docker").arg("info").output();
    if !docker.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no Docker engine (docker info fails)");
        return;
    }
    let build = Command::new("docker")
        .args(["build", "-f", "deploy/Dockerfile", "-t", "recflow:test", "."])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(build.success());
    let run = Command::new("docker")
        .args(["run", "--rm", "recflow:test", "validate", "workflows/nightly-refresh.asl.json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

fn container(manifest: &Value, pod: &[&str]) -> Value {
    let mut spec = manifest;
    for key in pod {
        spec = &spec[key];
    }
    assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
    spec["containers"][0].clone()
}

fn args(container: &Value) -> Vec<String> {
    container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).map(|i| args[i + 1].as_str())
}

#[test]
fn the_kubernetes_manifests_match_what_the_binary_serves() {
    let kustomization = yaml("deploy/kubernetes/kustomization.yaml");
    let resources: Vec<&str> =
        kustomization["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    for r in &resources {
        assert!(repo(&format!("deploy/kubernetes/{r}")).exists(), "{r}");
    }
    let image = kustomization["images"][0]["name"].as_str().unwrap();
    let config_file = kustomization["configMapGenerator"][0]["files"][0].as_str().unwrap();
    let config_map = kustomization["configMapGenerator"][0]["name"].as_str().unwrap();
    let account = yaml("deploy/kubernetes/serviceaccount.yaml");
    assert!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:iam::")
    );
    let port = default_port();

    // The daemon.
    let deployment = yaml("deploy/kubernetes/deployment.yaml");
    let pod = &deployment["spec"]["template"];
    let daemon = container(pod, &["spec"]);
    assert_eq!(daemon["image"], image);
    assert_eq!(pod["spec"]["serviceAccountName"], account["metadata"]["name"]);
    let daemon_args = args(&daemon);
    assert_eq!(daemon_args[0], "daemon");
    let listen: std::net::SocketAddr = flag(&daemon_args, "--listen").unwrap().parse().unwrap();
    assert!(listen.ip().is_unspecified(), "the pod's port must be reachable: {listen}");
    assert!(flag(&daemon_args, "--token-file").is_some(), "off loopback the API needs a token");
    let container_port = &daemon["ports"][0];
    assert_eq!(container_port["containerPort"], listen.port());
    assert_eq!(listen.port(), port, "the binary's default port");
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    let grace = pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > recflow::engine::SHUTDOWN_GRACE.as_secs(),
        "the pod must outlive recflow's {:?} shutdown grace",
        recflow::engine::SHUTDOWN_GRACE
    );
    let service = yaml("deploy/kubernetes/service.yaml");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], container_port["name"]);
    assert_eq!(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);

    // A real daemon answers the probe and scrape paths.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("recflow.toml");
    std::fs::write(
        dir.path().join("pass.asl.json"),
        r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#,
    )
    .unwrap();
    std::fs::write(&toml, "[workflows.pass]\ndefinition = \"pass.asl.json\"\n").unwrap();
    let data = dir.path().join("data");
    let daemon_flags: Vec<std::ffi::OsString> =
        vec!["--config".into(), toml.into(), "--data-dir".into(), data.into()];
    let (mut child, address) = process::spawn_daemon(&daemon_flags);
    let mut paths = vec![annotations["prometheus.io/path"].as_str().unwrap().to_string()];
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(daemon[probe]["httpGet"]["port"], container_port["name"], "{probe}");
        paths.push(daemon[probe]["httpGet"]["path"].as_str().unwrap().to_string());
    }
    for path in &paths {
        assert_eq!(process::http(&address, "GET", path, "").0, 200, "GET {path}");
    }
    process::terminate(&mut child);

    // The CronJob.
    let cronjob = yaml("deploy/kubernetes/cronjob.yaml");
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    let run = container(&job["template"], &["spec"]);
    assert_eq!(run["image"], image);
    let run_args = args(&run);
    assert_eq!(run_args[0], "run");
    assert!(run_args.contains(&"--resume-or-start".to_string()));
    assert!(flag(&run_args, "--checkpoint-dir").unwrap().starts_with("s3://"));
    let max_runtime = humantime::parse_duration(flag(&run_args, "--max-runtime").unwrap()).unwrap();
    let deadline = job["activeDeadlineSeconds"].as_u64().unwrap();
    assert!(
        max_runtime.as_secs() < deadline,
        "--max-runtime {max_runtime:?} must end before the job's deadline {deadline} s"
    );

    // Both read recflow.toml from the ConfigMap, mounted beside the image's workflows.
    for (pod_spec, args) in [(&pod["spec"], &daemon_args), (&job["template"]["spec"], &run_args)] {
        let config = flag(args, "--config").unwrap();
        let c = &pod_spec["containers"][0];
        let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["mountPath"] == config).unwrap();
        assert_eq!(mount["subPath"], config_file);
        let volume =
            pod_spec["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
        assert_eq!(volume["configMap"]["name"], config_map);
        assert_eq!(
            config, "/app/workflows/recflow.toml",
            "the Dockerfile puts the workflows in /app/workflows"
        );
    }
    // The file loads with recflow's own reader, beside the workflows as in the image.
    let image_dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo("workflows")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, image_dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let placed = image_dir.path().join("recflow.toml");
    std::fs::copy(repo(&format!("deploy/kubernetes/{config_file}")), &placed).unwrap();
    let loaded = recflow::cli::config::Config::load(&placed).unwrap();
    assert!(loaded.workflows.contains_key(&run_args[1]), "the CronJob runs '{}'", run_args[1]);
}

/// `Ref`, `Fn::GetAtt` and `Fn::Sub` names in a template, with where they appear.
fn references(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("Ref", Value::String(name)) => out.push(("Ref".into(), name.clone())),
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        out.push(("Fn::GetAtt".into(), parts[0].as_str().unwrap().to_string()))
                    }
                    ("Fn::Sub", sub) => {
                        let (template, locals) = match sub {
                            Value::Array(parts) => (parts[0].as_str().unwrap(), parts[1].clone()),
                            other => (other.as_str().unwrap(), Value::Null),
                        };
                        for var in
                            template.split("${").skip(1).filter_map(|s| s.split_once('}')).map(|(v, _)| v)
                        {
                            if !var.starts_with('!') && locals.get(var).is_none() {
                                out.push(("Fn::Sub".into(), var.split('.').next().unwrap().to_string()));
                            }
                        }
                    }
                    _ => {}
                }
                references(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

const PSEUDO: &[&str] = &[
    "AWS::AccountId",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

fn templates() -> Vec<(String, Value)> {
    let mut files = Vec::new();
    files_under(&repo("deploy/aws"), &mut files);
    files
        .into_iter()
        .map(|p| {
            let body = std::fs::read_to_string(&p).unwrap();
            let value: Value = serde_norway::from_str(&body).unwrap();
            (p.display().to_string(), value)
        })
        .collect()
}

#[test]
fn the_cloudformation_templates_reference_only_what_they_define() {
    let templates = templates();
    assert_eq!(templates.len(), 2, "the ECS template and the Step Functions template");
    for (file, template) in &templates {
        let names = |key: &str| -> BTreeSet<String> {
            template[key].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
        };
        let (parameters, resources) = (names("Parameters"), names("Resources"));
        let mut refs = Vec::new();
        references(template, &mut refs);
        let mut used = BTreeSet::new();
        for (kind, name) in refs {
            let known = resources.contains(&name)
                || (kind != "Fn::GetAtt" && (parameters.contains(&name) || PSEUDO.contains(&name.as_str())));
            assert!(known, "{file}: {kind} {name}: neither a parameter nor a resource of the template");
            used.insert(name);
        }
        for p in &parameters {
            assert!(used.contains(p), "{file}: parameter {p} is never used");
        }
        for (name, resource) in template["Resources"].as_object().unwrap() {
            assert!(resource["Type"].as_str().unwrap().starts_with("AWS::"), "{file}: {name}");
        }
    }
    match Command::new("cfn-lint").args(templates.iter().map(|(f, _)| f)).output() {
        Ok(out) => assert!(
            out.status.success(),
            "cfn-lint:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            assert!(
                std::env::var_os("RECFLOW_CFN_LINT_TESTS").is_none(),
                "RECFLOW_CFN_LINT_TESTS is set but cfn-lint is not installed (pip install cfn-lint)"
            );
            eprintln!("cfn-lint not installed: only this test's own reference check ran");
        }
    }
}

#[test]
fn the_templates_carry_what_iam_policy_and_export_print() {
    let ecs = yaml("deploy/aws/ecs-scheduled-task.yaml");
    let policies = ecs["Resources"]["TaskRole"]["Properties"]["Policies"].as_array().unwrap();
    let workflow = policies.iter().find(|p| p["PolicyName"] == "workflow-tasks").unwrap();
    assert_eq!(
        workflow["PolicyDocument"],
        recflow_json(&[
            "iam-policy",
            "workflows/nightly-refresh.asl.json",
            "workflows/event-import.asl.json"
        ])
    );
    let stepfunctions: Value =
        serde_json::from_str(&text("deploy/aws/event-import-stepfunctions.json")).unwrap();
    assert_eq!(
        stepfunctions,
        recflow_json(&[
            "export",
            "workflows/event-import.asl.json",
            "--target",
            "stepfunctions",
            "--format",
            "cloudformation"
        ])
    );
    // The containers run workflows the image holds; the schedule and the rule start them.
    let task = &ecs["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    assert!(repo(task["Command"][1].as_str().unwrap()).exists(), "{}", task["Command"]);
    let schedule = &ecs["Resources"]["NightlySchedule"]["Properties"];
    assert_eq!(schedule["ScheduleExpression"], "cron(0 3 * * ? *)");
    let rule = &ecs["Resources"]["ObjectCreatedRule"]["Properties"];
    assert_eq!(rule["EventPattern"]["detail-type"][0], "Object Created");
    // The input transformer's output, placeholders filled, is ECS overrides whose RECFLOW_INPUT
    // is the event as event-import reads it.
    let transformer = &rule["Targets"][0]["InputTransformer"];
    let template = transformer["InputTemplate"]["Fn::Sub"][0].as_str().unwrap();
    let filled = template
        .replace("<id>", "e-1")
        .replace("<bucket>", "shop")
        .replace("<key>", "in/today.csv")
        .replace("${DatasetArn}", "arn:d")
        .replace("${SolutionArn}", "arn:s")
        .replace("${PersonalizeRoleArn}", "arn:r");
    let overrides: Value = serde_json::from_str(&filled).unwrap_or_else(|e| panic!("{e}: {filled}"));
    let command = &overrides["containerOverrides"][0]["command"];
    assert!(repo(command[1].as_str().unwrap()).exists(), "{command}");
    let input = overrides["containerOverrides"][0]["environment"][0]["value"].as_str().unwrap();
    let event: Value = serde_json::from_str(input).unwrap();
    assert_eq!(event["detail"]["bucket"]["name"], "shop");
    assert_eq!(event["detail"]["object"]["key"], "in/today.csv");
    assert_eq!(event["datasetArn"], "arn:d");
}
