//! Time for the driver. The transition function never reads a clock; the driver asks one of
//! these, so tests can run hours of Waits and retry backoff in paused tokio time.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// An execution's time: `now` and a sleep until an instant (UTC). The system clock, a scaled
/// clock (`--time-scale`) and tokio's pausable clock (tests) implement it; the transition
/// function never reads a clock, it gets the time inside each event.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    fn sleep_until(&self, until: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The wall clock. Long sleeps are taken in slices and re-checked against the wall clock, so
/// a suspended machine or a clock step does not make a Wait overshoot by much.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                let Ok(left) = (until - Utc::now()).to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(Duration::from_secs(30))).await;
            }
        })
    }
}

/// A clock that follows tokio's (pausable) time from a fixed starting instant.
pub struct TokioClock {
    base: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: DateTime<Utc>) -> TokioClock {
        TokioClock { base, origin: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.origin.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.base + elapsed
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let offset = (until - self.base).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep_until(self.origin + offset))
    }
}

/// The wall clock sped up `scale` times from the moment it is made: Waits and retry delays of
/// a workflow pass `scale` times faster (for demos and trying workflows out).
pub struct ScaledClock {
    base: DateTime<Utc>,
    origin: std::time::Instant,
    scale: f64,
}

impl ScaledClock {
    pub fn new(scale: f64) -> ScaledClock {
        ScaledClock::starting_at(scale, Utc::now())
    }

    /// A clock that reads `base` now: a resumed execution whose (sped-up) time ran ahead of the
    /// wall clock continues from its own latest instant instead of waiting for the wall to catch up.
    pub fn starting_at(scale: f64, base: DateTime<Utc>) -> ScaledClock {
        ScaledClock { base, origin: std::time::Instant::now(), scale }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let scaled = self.origin.elapsed().as_secs_f64() * self.scale;
        self.base + chrono::Duration::microseconds((scaled * 1e6) as i64)
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let left = (until - self.now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(left.div_f64(self.scale)))
    }
}
