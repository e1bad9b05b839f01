//! When a node leaves on its own: at the end of its `--lifetime` (the
//! walltime of the batch job it runs in) and after `--idle-timeout` without
//! work. [`Lifetime::step`] is the one entry point; the node loop calls it
//! on every turn and does what it answers.
//!
//! A drain margin before the lifetime ends, the node stops asking for
//! tasks and lets those in hand finish; it leaves when they are reported,
//! or at the latest a quarter of the margin before the end, so that it
//! exits by itself (code 0) before the batch system kills it. Tasks still
//! running then are queued again by the broker when the node says goodbye.

use std::time::{Duration, Instant};

/// The drain margin is a tenth of the lifetime, at most this.
pub const MAX_DRAIN_MARGIN: Duration = Duration::from_secs(120);

/// What the node should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Work as usual.
    Work,
    /// Ask for no more tasks; finish those in hand.
    Drain,
    /// Report what is done, say goodbye and exit 0: why.
    Leave(Leaving),
}

/// Why a node leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaving {
    /// Its lifetime is (nearly) over.
    Lifetime,
    /// It had no work for its idle timeout.
    Idle(Duration),
}

impl std::fmt::Display for Leaving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leaving::Lifetime => f.write_str("its lifetime ends"),
            Leaving::Idle(after) => write!(f, "it had no work for {}s", after.as_secs_f64()),
        }
    }
}

/// A node's lifetime and idle clock.
#[derive(Debug, Clone)]
pub struct Lifetime {
    /// From here on: [`Step::Drain`].
    drain_at: Option<Instant>,
    /// From here on: [`Step::Leave`], busy or not.
    leave_at: Option<Instant>,
    idle_timeout: Option<Duration>,
    idle_since: Instant,
}

impl Lifetime {
    /// A node started at `start`, living `lifetime` at most, leaving after
    /// `idle_timeout` without work (each: none, no limit).
    pub fn new(start: Instant, lifetime: Option<Duration>, idle_timeout: Option<Duration>) -> Self {
        let margin = lifetime.map(|l| (l / 10).min(MAX_DRAIN_MARGIN));
        Lifetime {
            drain_at: lifetime.zip(margin).map(|(l, m)| start + (l - m)),
            leave_at: lifetime.zip(margin).map(|(l, m)| start + (l - m / 4)),
            idle_timeout,
            idle_since: start,
        }
    }

    /// What to do at `now`; `busy`: the node has a task in hand or a
    /// result not yet sent.
    pub fn step(&mut self, now: Instant, busy: bool) -> Step {
        if busy {
            self.idle_since = now;
        }
        if self.leave_at.is_some_and(|at| now >= at) {
            return Step::Leave(Leaving::Lifetime);
        }
        if self.drain_at.is_some_and(|at| now >= at) {
            return match busy {
                true => Step::Drain,
                false => Step::Leave(Leaving::Lifetime),
            };
        }
        match self.idle_timeout {
            Some(idle) if !busy && now.duration_since(self.idle_since) >= idle => {
                Step::Leave(Leaving::Idle(idle))
            }
            _ => Step::Work,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn drains_a_tenth_before_the_end_and_leaves_when_done_or_at_the_latest() {
        let start = Instant::now();
        let mut life = Lifetime::new(start, Some(100 * S), None);
        assert_eq!(life.step(start + 89 * S, true), Step::Work);
        assert_eq!(life.step(start + 90 * S, true), Step::Drain);
        assert_eq!(life.step(start + 97 * S, true), Step::Drain);
        assert_eq!(
            life.step(start + 98 * S, true),
            Step::Leave(Leaving::Lifetime)
        );
        let mut life = Lifetime::new(start, Some(100 * S), None);
        assert_eq!(
            life.step(start + 91 * S, false),
            Step::Leave(Leaving::Lifetime)
        );
    }

    #[test]
    fn the_margin_is_capped() {
        let start = Instant::now();
        let mut life = Lifetime::new(start, Some(3600 * S), None);
        assert_eq!(life.step(start + 3479 * S, true), Step::Work);
        assert_eq!(life.step(start + 3480 * S, true), Step::Drain);
    }

    #[test]
    fn leaves_after_the_idle_timeout_counted_from_the_last_work() {
        let start = Instant::now();
        let mut life = Lifetime::new(start, None, Some(10 * S));
        assert_eq!(life.step(start + 5 * S, false), Step::Work);
        assert_eq!(life.step(start + 8 * S, true), Step::Work);
        assert_eq!(life.step(start + 17 * S, false), Step::Work);
        assert_eq!(
            life.step(start + 18 * S, false),
            Step::Leave(Leaving::Idle(10 * S))
        );
        assert_eq!(Leaving::Idle(10 * S).to_string(), "it had no work for 10s");
    }
}
