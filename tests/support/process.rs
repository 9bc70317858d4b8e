//! A `recflow daemon` process for tests and benchmarks: started with its arguments, its address
//! read from what it prints, spoken to over HTTP/1.1, stopped with SIGTERM.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Starts `recflow daemon ARGS` (listening on a free loopback port, logging warnings only);
/// gives the process and the address it serves on. The caller stops it ([`terminate`]).
#[allow(clippy::zombie_processes)]
pub fn spawn_daemon<S: AsRef<OsStr>>(args: &[S]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .arg("daemon")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RECFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut line, mut said) = (String::new(), String::new());
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("the daemon ended ({status}) before serving: {said}");
        }
        said.push_str(&line);
        if let Some(rest) = line.split("API on http://").nth(1) {
            let address = rest.trim().trim_end_matches('/').to_string();
            // Keep draining stderr so the daemon never blocks on it.
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            return (child, address);
        }
    }
}

/// One HTTP/1.1 request: the status and the body as JSON (null when it is not JSON).
pub fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), serde_json::from_str(body).unwrap_or(Value::Null))
}

/// SIGTERM, then the exit code and how long the process took to exit.
pub fn terminate(child: &mut Child) -> (i32, Duration) {
    let began = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), began.elapsed())
}
