//! Time, for the operations that wait: the monotonic clock and sleep that
//! power waits use, and the wall clock the charm's wait for watcher.conf
//! counts in. A parameter, so that their waiting is tested in process
//! without sleeping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What an operation asks of time.
pub trait Clock: Sync {
    /// Monotonic now, for deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock seconds since the Unix epoch, for times kept across hooks.
    fn unix_secs(&self) -> u64;
    /// Waits `duration`.
    fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_secs(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock that moves only when slept on (or [`FakeClock::advance`]d), and
/// records each sleep.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FakeClock {
    start: Instant,
    unix_start: u64,
    elapsed: std::sync::Mutex<Duration>,
    pub(crate) sleeps: std::sync::Mutex<Vec<Duration>>,
}

#[cfg(test)]
impl FakeClock {
    /// A clock whose wall time starts at `unix_start`.
    pub(crate) fn new(unix_start: u64) -> FakeClock {
        FakeClock {
            start: Instant::now(),
            unix_start,
            elapsed: std::sync::Mutex::new(Duration::ZERO),
            sleeps: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Moves time on by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap() += by;
    }

    /// The sleeps asked for, in order.
    pub(crate) fn slept(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

#[cfg(test)]
impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock().unwrap()
    }

    fn unix_secs(&self) -> u64 {
        self.unix_start + self.elapsed.lock().unwrap().as_secs()
    }

    fn sleep(&self, duration: Duration) {
        self.sleeps.lock().unwrap().push(duration);
        self.advance(duration);
    }
}
