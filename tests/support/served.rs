//! `recflow local serve` as a separate process, as a user runs it beside `recflow run`: started on
//! free ports, its exported environment read from stdout, faults armed over its admin endpoint,
//! stopped with SIGTERM. Shared by the process-level tests (`#[path]`-included).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_recflow");

pub struct Served {
    pub child: Child,
    pub env: Vec<(String, String)>,
}

/// Starts the emulator over `<data_dir>/local` on free ports with extra arguments.
pub fn serve(data_dir: &Path, extra: &[&str]) -> Served {
    let mut child = Command::new(BIN)
        .args(["--log-level", "warn", "local", "serve", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut env = Vec::new();
    // The emulator prints a fixed number of lines before it waits; the bound stops a hang.
    for _ in 0..20 {
        let line = lines.next().expect("the emulator printed its environment").unwrap();
        if let Some(kv) = line.strip_prefix("export ") {
            let (k, v) = kv.split_once('=').unwrap();
            env.push((k.to_string(), v.to_string()));
            if k == "AWS_REGION" {
                break;
            }
        }
    }
    Served { child, env }
}

impl Served {
    pub fn get(&self, key: &str) -> &str {
        &self
            .env
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("{key} not exported: {:?}", self.env))
            .1
    }

    /// A `recflow` command with the emulator's environment (and nothing that could reach AWS).
    pub fn recflow(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env("AWS_EC2_METADATA_DISABLED", "true").env_remove("AWS_PROFILE");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Arms a fault on the Personalize port (`POST /__recflow/faults`).
    pub fn fault(&self, json: &str) {
        self.fault_on("AWS_ENDPOINT_URL_PERSONALIZE", json);
    }

    /// Arms a fault on the port the exported variable `endpoint_env` names (the EventBridge
    /// port takes `PutEvents` faults).
    pub fn fault_on(&self, endpoint_env: &str, json: &str) {
        let endpoint = self.get(endpoint_env).trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&endpoint).unwrap();
        write!(
            stream,
            "POST /__recflow/faults HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 2"), "arming {json}: {answer}");
    }

    pub async fn personalize(&self) -> aws_sdk_personalize::Client {
        aws_sdk_personalize::Client::from_conf(
            aws_sdk_personalize::Config::builder()
                .behavior_version(aws_sdk_personalize::config::BehaviorVersion::latest())
                .region(aws_sdk_personalize::config::Region::new(self.get("AWS_REGION").to_string()))
                .credentials_provider(aws_sdk_personalize::config::Credentials::new(
                    self.get("AWS_ACCESS_KEY_ID"),
                    self.get("AWS_SECRET_ACCESS_KEY"),
                    None,
                    None,
                    "exported",
                ))
                .endpoint_url(self.get("AWS_ENDPOINT_URL_PERSONALIZE"))
                .build(),
        )
    }

    /// SIGTERM, and the emulator must exit cleanly.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success(), "SIGTERM ends the emulator cleanly");
    }
}

/// A test that panics before `stop` must not leave the emulator running.
impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
