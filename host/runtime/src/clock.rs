//! The guest's virtual clock.
//!
//! A guest sees no host time. Its wall clock and monotonic clock read the
//! same virtual time, in nanoseconds, which starts at 0 (the Unix epoch,
//! for the wall clock) and moves only when the guest sleeps: a sleep
//! (`poll_oneoff` on a clock) returns at once with the clock advanced to
//! the sleep's end. So a sleeping guest neither waits nor outlives its
//! deadline, and a retried or resumed task reads the same times (the clock
//! is part of a snapshot).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Virtual time in nanoseconds; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct VirtualClock {
    nanos: Arc<AtomicU64>,
}

impl VirtualClock {
    /// Virtual nanoseconds since the start (the Unix epoch).
    pub(crate) fn now(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }

    /// Move the clock forward to `nanos`; a time in the past leaves it
    /// where it is (the clock never goes back).
    pub(crate) fn advance_to(&self, nanos: u64) {
        self.nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Set the clock to `nanos` (restoring a snapshot).
    pub(crate) fn restore(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::Relaxed);
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(VirtualClock::now(self))
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        VirtualClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_only_moves_forward_and_clones_share_it() {
        let clock = VirtualClock::default();
        let clone = clock.clone();
        assert_eq!(HostMonotonicClock::now(&clock), 0);
        clone.advance_to(5);
        clone.advance_to(3);
        assert_eq!(clock.now(), 5);
        assert_eq!(HostWallClock::now(&clock), Duration::from_nanos(5));
        clock.restore(2);
        assert_eq!(clone.now(), 2);
    }
}
