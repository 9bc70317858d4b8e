//! Interim: replaced by the adaptive schedule being written beside this change.
use std::path::{Path, PathBuf};
pub fn next_poll_delay(elapsed: f64, _earlier: &[f64]) -> f64 {
    (elapsed * 0.05).max(60.0)
}
pub struct JobDurations {
    _path: PathBuf,
}
impl JobDurations {
    pub fn open(path: &Path) -> std::io::Result<JobDurations> {
        Ok(JobDurations { _path: path.to_path_buf() })
    }
    pub fn earlier(&self, _m: &str, _s: &str) -> Vec<f64> {
        Vec::new()
    }
    pub fn record(&mut self, _m: &str, _s: &str, _seconds: f64) -> std::io::Result<()> {
        Ok(())
    }
}
