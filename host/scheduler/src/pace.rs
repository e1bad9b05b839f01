//! How fast tasks go, as the workers measure it, and what that decides:
//! how many tasks a batch holds and, with adaptive chunking, how many input
//! bytes a chunk holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Moving averages of task cost, updated by every worker (a racing update
/// loses a sample, which is fine for an average).
#[derive(Debug)]
pub(crate) struct Pace {
    /// Wall time of a task, in nanoseconds; 0 until a task has finished.
    task_nanos: AtomicU64,
    /// Wall time per input byte, in picoseconds; 0 until a task with input
    /// has finished.
    byte_picos: AtomicU64,
}

/// Fold `sample` into the moving average in `slot` (weight 1/8).
fn average(slot: &AtomicU64, sample: u64) {
    let old = slot.load(Ordering::Relaxed);
    let new = match old {
        0 => sample.max(1),
        _ => (old - old / 8 + sample / 8).max(1),
    };
    slot.store(new, Ordering::Relaxed);
}

impl Pace {
    /// Work a batch should hold.
    pub(crate) const BATCH_TIME: Duration = Duration::from_millis(1);

    pub(crate) fn new() -> Self {
        Pace {
            task_nanos: AtomicU64::new(0),
            byte_picos: AtomicU64::new(0),
        }
    }

    /// A task of `bytes` input bytes took `wall`.
    pub(crate) fn observe(&self, wall: Duration, bytes: u64) {
        let nanos = wall.as_nanos().min(u64::MAX as u128 / 1000) as u64;
        average(&self.task_nanos, nanos);
        if let Some(picos) = (nanos * 1000).checked_div(bytes) {
            average(&self.byte_picos, picos);
        }
    }

    /// Tasks in a batch, at most `max`: one until a task has been timed.
    pub(crate) fn batch_tasks(&self, max: usize) -> usize {
        match self.task_nanos.load(Ordering::Relaxed) {
            0 => 1,
            nanos => ((Self::BATCH_TIME.as_nanos() as u64 / nanos) as usize).clamp(1, max),
        }
    }

    /// Wall time per input byte, in picoseconds, once measured.
    fn byte_picos(&self) -> Option<u64> {
        match self.byte_picos.load(Ordering::Relaxed) {
            0 => None,
            picos => Some(picos),
        }
    }
}

/// Adaptive chunking: chunks sized from measured cost so that a task takes
/// about `target`, and never more than a share of what is left of the
/// input (guided self-scheduling), so that chunks shrink towards the end
/// and no worker idles while another finishes one long chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adaptive {
    /// Wall time a task should take.
    pub target: Duration,
    /// The input's size in bytes, when known (else chunks do not shrink at
    /// the end).
    pub input_size: Option<u64>,
}

impl Adaptive {
    /// Chunk size before any task has been timed: small, to measure soon.
    const PROBE: u64 = 64 << 10;
    const MIN: u64 = 4 << 10;

    /// Bytes the next chunks should hold, `consumed` bytes into the input,
    /// with `slots` workers, at most `max` (so that enough chunks fit in
    /// the reader's window to keep every worker busy).
    pub(crate) fn chunk_bytes(&self, pace: &Pace, consumed: u64, slots: usize, max: u64) -> u64 {
        let by_time = pace.byte_picos().map_or(Self::PROBE, |picos| {
            (self.target.as_nanos() * 1000 / u128::from(picos)).min(u128::from(u64::MAX)) as u64
        });
        let share = self.input_size.map_or(u64::MAX, |size| {
            size.saturating_sub(consumed) / (2 * slots.max(1) as u64)
        });
        by_time.min(share).min(max).max(Self::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_measured_cost_and_shrink_at_the_end() {
        let pace = Pace::new();
        let adaptive = Adaptive {
            target: Duration::from_millis(100),
            input_size: Some(1 << 30),
        };
        assert_eq!(adaptive.chunk_bytes(&pace, 0, 2, u64::MAX), Adaptive::PROBE);
        // 1 µs per KiB: 100 ms of work is 100,000 KiB.
        pace.observe(Duration::from_micros(64), 64 << 10);
        let picos = 1_000_000 / 1024;
        assert_eq!(pace.byte_picos(), Some(picos));
        assert_eq!(
            adaptive.chunk_bytes(&pace, 0, 2, u64::MAX),
            100_000_000_000 / picos
        );
        // Near the end: a quarter of what is left, for 2 workers.
        assert_eq!(
            adaptive.chunk_bytes(&pace, (1 << 30) - (8 << 20), 2, u64::MAX),
            2 << 20
        );
        assert_eq!(
            adaptive.chunk_bytes(&pace, 1 << 30, 2, u64::MAX),
            Adaptive::MIN
        );
        assert_eq!(adaptive.chunk_bytes(&pace, 0, 2, 1 << 20), 1 << 20);
        assert_eq!(pace.batch_tasks(256), 15);
    }
}
