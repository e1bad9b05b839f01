//! How fast tasks go, as the workers measure it, and what that decides:
//! how many tasks a batch holds and, with adaptive chunking, how many input
//! bytes (or, for a plugin that weighs records, how much weight) a chunk
//! holds.

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
    /// Wall time per weight unit (the splitter plugin's), in picoseconds;
    /// 0 until a task of some weight has finished.
    weight_picos: AtomicU64,
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
            weight_picos: AtomicU64::new(0),
        }
    }

    /// A task of `bytes` input bytes weighing `weight` took `wall`.
    pub(crate) fn observe(&self, wall: Duration, bytes: u64, weight: u64) {
        let nanos = wall.as_nanos().min(u64::MAX as u128 / 1000) as u64;
        average(&self.task_nanos, nanos);
        if let Some(picos) = (nanos * 1000).checked_div(bytes) {
            average(&self.byte_picos, picos);
        }
        if let Some(picos) = (nanos * 1000).checked_div(weight) {
            average(&self.weight_picos, picos);
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
        measured(&self.byte_picos)
    }

    /// Wall time per weight unit, in picoseconds, once measured.
    fn weight_picos(&self) -> Option<u64> {
        measured(&self.weight_picos)
    }
}

/// The average in `slot`, once there is one.
fn measured(slot: &AtomicU64) -> Option<u64> {
    match slot.load(Ordering::Relaxed) {
        0 => None,
        picos => Some(picos),
    }
}

/// What the next chunks may hold, as [`Adaptive::chunk_bounds`] sizes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Input bytes at most.
    pub(crate) bytes: u64,
    /// Weight at most (the plugin's units), when sized by weight.
    pub(crate) weight: Option<u64>,
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
        let by_time = pace
            .byte_picos()
            .map_or(Self::PROBE, |picos| self.per_target(picos));
        by_time
            .min(self.share(consumed, slots))
            .min(max)
            .max(Self::MIN)
    }

    /// The bounds of the next chunks ([`Adaptive::chunk_bytes`]); when the
    /// splitter weighs records (`weighed`) and a weighed task has been
    /// timed, the time bound is a weight (records cost what they weigh,
    /// not what their bytes are) and bytes only keep the share of what is
    /// left of the input and `max`.
    pub(crate) fn chunk_bounds(
        &self,
        pace: &Pace,
        consumed: u64,
        slots: usize,
        max: u64,
        weighed: bool,
    ) -> Bounds {
        match pace.weight_picos().filter(|_| weighed) {
            Some(picos) => Bounds {
                bytes: self.share(consumed, slots).min(max).max(Self::MIN),
                weight: Some(self.per_target(picos).max(1)),
            },
            None => Bounds {
                bytes: self.chunk_bytes(pace, consumed, slots, max),
                weight: None,
            },
        }
    }

    /// Units (bytes, weight) a task does in `target` at `picos` each.
    fn per_target(&self, picos: u64) -> u64 {
        (self.target.as_nanos() * 1000 / u128::from(picos)).min(u128::from(u64::MAX)) as u64
    }

    /// A share of what is left of the input: chunks shrink towards its end.
    fn share(&self, consumed: u64, slots: usize) -> u64 {
        self.input_size.map_or(u64::MAX, |size| {
            size.saturating_sub(consumed) / (2 * slots.max(1) as u64)
        })
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
        pace.observe(Duration::from_micros(64), 64 << 10, 0);
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

    #[test]
    fn a_weighed_input_is_cut_by_the_time_per_weight_unit() {
        let pace = Pace::new();
        let adaptive = Adaptive {
            target: Duration::from_millis(100),
            input_size: Some(1 << 30),
        };
        // Before a weighed task is timed, or for a plugin without weights:
        // bytes only.
        let unweighed = adaptive.chunk_bounds(&pace, 0, 2, u64::MAX, true);
        assert_eq!(
            unweighed,
            Bounds {
                bytes: Adaptive::PROBE,
                weight: None
            }
        );
        // 64 KiB weighing 1000 units in 1 ms: 100 ms is 100,000 units.
        pace.observe(Duration::from_millis(1), 64 << 10, 1000);
        let weighed = adaptive.chunk_bounds(&pace, 0, 2, 1 << 20, true);
        assert_eq!(
            weighed,
            Bounds {
                bytes: 1 << 20,
                weight: Some(100_000)
            }
        );
        let plain = adaptive.chunk_bounds(&pace, 0, 2, u64::MAX, false);
        assert_eq!(plain.weight, None);
        assert_eq!(plain.bytes, adaptive.chunk_bytes(&pace, 0, 2, u64::MAX));
    }
}
