//! The status page in a real browser: headless Chromium (Debian's package) renders a running
//! execution's page from a `recflow daemon` and saves a screenshot to
//! `target/screenshots/status-page.png`.
//!
//! Needs /usr/bin/chromium (or RECFLOW_CHROMIUM). Without it the test says so and passes,
//! unless RECFLOW_BROWSER_TESTS=1 (as `.ci/run` sets after installing Chromium): then a missing
//! browser fails it.

#[path = "support/process.rs"]
mod process;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use process::{http, spawn_daemon, terminate};

fn chromium() -> Option<PathBuf> {
    let path =
        PathBuf::from(std::env::var("RECFLOW_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    path.is_file().then_some(path)
}

/// A daemon running the portable nightly workflow with its mock answers.
fn daemon(dir: &Path) -> (Child, String) {
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    std::fs::write(
        dir.join("recflow.toml"),
        format!(
            "[workflows.nightly]\ndefinition = \"{}\"\nschedules = [\"cron(0 2 * * ? *)\"]\ntz = \"Europe/Berlin\"\n",
            workflows.join("nightly-refresh-portable.asl.json").display()
        ),
    )
    .unwrap();
    let config = dir.join("recflow.toml");
    let data = dir.join("data");
    let mock = workflows.join("nightly-refresh-portable.mock.json");
    spawn_daemon(&[
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--mock"),
        mock.as_os_str(),
    ])
}

/// Chromium as the workplace runs it headless: no sandbox (root), no GPU, and none of the
/// background connections a closed network refuses.
fn headless(browser: &Path, profile: &Path) -> Command {
    let mut command = Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

#[test]
fn headless_chromium_shows_a_running_executions_graph() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("RECFLOW_BROWSER_TESTS").is_none(),
            "RECFLOW_BROWSER_TESTS is set but there is no Chromium at /usr/bin/chromium (RECFLOW_CHROMIUM)"
        );
        eprintln!("skipped: no Chromium (apt-get install chromium, or set RECFLOW_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = daemon(dir.path());
    let started = http(&address, "POST", "/workflows/nightly/executions", r#"{"name": "nightly-shown"}"#).1;
    assert_eq!(started["name"], "nightly-shown", "{started}");
    // The mock's first import answers LimitExceeded: the execution sits in a 2-minute retry delay.
    std::thread::sleep(Duration::from_millis(300));
    let described = http(&address, "GET", "/executions/nightly-shown", "").1;
    assert_eq!(described["status"], "RUNNING", "{described}");
    let at = described["currentState"].as_str().unwrap().to_string();
    let url = format!("http://{address}/ui/executions/nightly-shown");
    let dom =
        headless(&browser, &dir.path().join("profile-dom")).arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<svg"), "the rendered page has the graph: {dom}");
    assert!(dom.contains(&format!("at <b>{at}</b>")), "{dom}");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let shot = headless(&browser, &dir.path().join("profile-shot"))
        .arg("--window-size=1280,1400")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert!(bytes.len() > 20_000, "a page with content, not a blank one: {} bytes", bytes.len());
    assert_eq!(terminate(&mut child).0, 0);
    eprintln!("screenshot: {}", png.display());
}
