//! `--idle-timeout`: a node that had no work for that long leaves (exit 0),
//! so that an allocation started for a burst of work ends with it instead
//! of holding its cores until the walltime.

use std::time::{Duration, Instant};

/// A node's idle clock.
#[derive(Debug, Clone)]
pub(super) struct Idle {
    timeout: Option<Duration>,
    since: Instant,
}

impl Idle {
    /// A clock started at `start`; `timeout` none: never expires.
    pub(super) fn new(start: Instant, timeout: Option<Duration>) -> Self {
        Idle {
            timeout,
            since: start,
        }
    }

    /// At `now`, with the node `busy` (a task in hand or a result not yet
    /// sent) or not: the timeout, once the node has been idle that long
    /// since its last work.
    pub(super) fn expired(&mut self, now: Instant, busy: bool) -> Option<Duration> {
        if busy {
            self.since = now;
        }
        self.timeout
            .filter(|&timeout| !busy && now.duration_since(self.since) >= timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn expires_after_the_timeout_counted_from_the_last_work() {
        let start = Instant::now();
        let mut idle = Idle::new(start, Some(10 * S));
        assert_eq!(idle.expired(start + 5 * S, false), None);
        assert_eq!(idle.expired(start + 8 * S, true), None);
        assert_eq!(idle.expired(start + 17 * S, false), None);
        assert_eq!(idle.expired(start + 18 * S, false), Some(10 * S));
    }

    #[test]
    fn never_expires_without_a_timeout() {
        let start = Instant::now();
        let mut idle = Idle::new(start, None);
        assert_eq!(idle.expired(start + 1_000_000 * S, false), None);
    }
}
