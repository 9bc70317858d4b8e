//! The demo (`recflow::local::demo::prepare`) on a fresh emulator 600 times faster than real time,
//! with the AWS clients of the product: what the workflow and export tests run on.
#![allow(dead_code)]

use std::time::Duration;

use recflow::local::demo::{self, Demo};
use recflow::local::emulator::{Emulator, LocalConfig};
use recflow::local::seed::SeedOptions;
use recflow::tasks::aws::Clients;

/// Emulated seconds per real second, for the emulator's jobs and the engine's clock alike.
pub const SCALE: f64 = 600.0;

pub struct Local {
    _dir: tempfile::TempDir,
    pub emulator: Emulator,
    pub clients: Clients,
    pub demo: Demo,
}

/// The demo seeded with `seed`, each of its resources waited for at most `max_wait` (real time).
pub async fn local(seed: SeedOptions, max_wait: Duration) -> Local {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(dir.path().join("local"));
    config.time_scale = SCALE;
    config.pending_seconds = 60.0;
    config.in_progress_seconds = 240.0;
    let emulator = Emulator::start(&config).await.unwrap();
    let clients = Clients::local(&emulator.endpoints());
    let demo = demo::prepare(&emulator, &clients.personalize, &seed, max_wait).await.unwrap();
    Local { _dir: dir, emulator, clients, demo }
}
