//! SIGINT and SIGTERM for the long commands (`run`, `resume`, `daemon`), caught from the start
//! of the command and counted, so that none is lost between its phases (the emulator's demo
//! preparation, the launch, the run): once a handler exists the OS no longer ends the process on
//! them, and a listener made later would not see a signal that came before it.

use std::sync::OnceLock;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// How many of the two signals have arrived, and the number of the last one.
#[derive(Debug, Clone, Copy, Default)]
struct Received {
    count: u32,
    last: i32,
}

static RECEIVED: OnceLock<watch::Sender<Received>> = OnceLock::new();

/// Starts counting SIGINT and SIGTERM for the rest of the process (the first call does; later
/// calls do nothing). Must run inside the tokio runtime.
///
/// # Errors
/// The OS refused a handler.
pub(crate) fn install() -> std::io::Result<()> {
    if RECEIVED.get().is_some() {
        return Ok(());
    }
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    let sender = RECEIVED.get_or_init(|| watch::channel(Received::default()).0);
    let sender = sender.clone();
    tokio::spawn(async move {
        loop {
            let number = tokio::select! {
                Some(()) = interrupt.recv() => libc::SIGINT,
                Some(()) = terminate.recv() => libc::SIGTERM,
                else => return,
            };
            sender.send_modify(|r| *r = Received { count: r.count + 1, last: number });
        }
    });
    Ok(())
}

/// Completes once `n` signals have arrived since [`install`] (at once if they already have);
/// gives the number of the last one. Never completes without `install`.
pub(crate) async fn received(n: u32) -> i32 {
    let Some(sender) = RECEIVED.get() else { return std::future::pending().await };
    let mut receiver = sender.subscribe();
    let last = receiver.wait_for(|r| r.count >= n).await.map(|r| r.last);
    match last {
        Ok(last) => last,
        Err(_) => std::future::pending().await,
    }
}
