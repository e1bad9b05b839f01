//! Between the journal's and the runtime's types and the wire's: limits,
//! trap kinds, failures and outcomes. `wrun-protocol` depends on neither
//! the journal nor wasmtime, so every conversion lives here.

use std::time::Duration;

use wrun_journal::LimitsSpec;
use wrun_runtime::{
    Checkpoint, Cursor, Ended, Every, Failure, SpawnLimit, SuspendReason, Suspended, Taken,
    TaskFailure, TaskOutput, Trap,
};
use wrun_store::Digest;

use crate::protocol::{self, Checkpoints, Data, Limits, Outcome, Snapshot, TrapCode, WireFailure};

/// A job's snapshot policy as sent: periodic snapshots by `every`, and
/// suspension when fuel runs out (every recorded job has both).
pub fn checkpoints_to_wire(every: Option<Every>) -> Checkpoints {
    Checkpoints {
        every: every.map(|every| match every {
            Every::Calls(n) => protocol::Every::Calls(n),
            Every::Time(t) => protocol::Every::Millis(t.as_millis() as u64),
        }),
        suspend_on_fuel: true,
    }
}

/// A snapshot interval as received.
pub fn every_from_wire(every: protocol::Every) -> Every {
    match every {
        protocol::Every::Calls(n) => Every::Calls(n),
        protocol::Every::Millis(ms) => Every::Time(Duration::from_millis(ms)),
    }
}

/// A snapshot a node took, to report; `blob` is the snapshot blob's
/// bytes unless the broker shares the node's store.
pub fn snapshot_to_wire(checkpoint: &Checkpoint, blob: Option<Vec<u8>>) -> Snapshot {
    Snapshot {
        digest: *checkpoint.snapshot.digest.as_bytes(),
        blob: blob.map(serde_bytes::ByteBuf::from),
        stored: checkpoint.snapshot.stored,
        bases: checkpoint
            .snapshot
            .bases
            .iter()
            .map(|d| *d.as_bytes())
            .collect(),
        cursor: match checkpoint.cursor {
            Cursor::Records { next } => protocol::Cursor::Records(next),
            Cursor::Steps { done } => protocol::Cursor::Steps(done),
        },
        fuel_used: checkpoint.fuel_used,
    }
}

/// A node's snapshot as the job records it.
pub fn checkpoint_from_wire(snapshot: Snapshot) -> Checkpoint {
    Checkpoint {
        snapshot: Taken {
            digest: Digest::from_bytes(snapshot.digest),
            stored: snapshot.stored,
            bases: snapshot.bases.into_iter().map(Digest::from_bytes).collect(),
        },
        cursor: match snapshot.cursor {
            protocol::Cursor::Records(next) => Cursor::Records { next },
            protocol::Cursor::Steps(done) => Cursor::Steps { done },
        },
        fuel_used: snapshot.fuel_used,
    }
}

/// Why a task was suspended, as sent.
pub fn suspend_reason_to_wire(reason: SuspendReason) -> protocol::SuspendReason {
    match reason {
        SuspendReason::Fuel => protocol::SuspendReason::Fuel,
        SuspendReason::Drain => protocol::SuspendReason::Drain,
    }
}

/// A job spec's limits as sent.
pub fn limits_to_wire(spec: &LimitsSpec) -> Limits {
    let LimitsSpec {
        fuel,
        timeout_ms,
        memory,
        output,
        spawn: _,
    } = *spec;
    Limits {
        fuel,
        timeout_ms,
        memory,
        output,
    }
}

/// Limits as received, in the job spec's form.
pub fn limits_from_wire(limits: &Limits) -> LimitsSpec {
    let Limits {
        fuel,
        timeout_ms,
        memory,
        output,
    } = *limits;
    LimitsSpec {
        fuel,
        timeout_ms,
        memory,
        output,
        spawn: None,
    }
}

/// The runtime limits for a task of `limits`: the job's own, and `base`'s
/// for everything the job does not set (log size, stack, ...).
pub fn runtime_limits(limits: &Limits, base: &wrun_runtime::Limits) -> wrun_runtime::Limits {
    wrun_runtime::Limits {
        fuel: limits.fuel,
        timeout: limits.timeout_ms.map(Duration::from_millis),
        memory: limits.memory,
        output: usize::try_from(limits.output).unwrap_or(usize::MAX),
        ..base.clone()
    }
}

/// A wasmtime trap's code on the wire; `None` for a trap the protocol does
/// not carry (the component model's, which wrun's core modules cannot
/// raise, and any that a later wasmtime adds).
pub fn trap_to_wire(trap: Trap) -> Option<TrapCode> {
    Some(match trap {
        Trap::StackOverflow => TrapCode::StackOverflow,
        Trap::MemoryOutOfBounds => TrapCode::MemoryOutOfBounds,
        Trap::HeapMisaligned => TrapCode::HeapMisaligned,
        Trap::TableOutOfBounds => TrapCode::TableOutOfBounds,
        Trap::IndirectCallToNull => TrapCode::IndirectCallToNull,
        Trap::BadSignature => TrapCode::BadSignature,
        Trap::IntegerOverflow => TrapCode::IntegerOverflow,
        Trap::IntegerDivisionByZero => TrapCode::IntegerDivisionByZero,
        Trap::BadConversionToInteger => TrapCode::BadConversionToInteger,
        Trap::UnreachableCodeReached => TrapCode::UnreachableCodeReached,
        Trap::Interrupt => TrapCode::Interrupt,
        Trap::OutOfFuel => TrapCode::OutOfFuel,
        Trap::AtomicWaitNonSharedMemory => TrapCode::AtomicWaitNonSharedMemory,
        Trap::NullReference => TrapCode::NullReference,
        Trap::ArrayOutOfBounds => TrapCode::ArrayOutOfBounds,
        Trap::AllocationTooLarge => TrapCode::AllocationTooLarge,
        Trap::CastFailure => TrapCode::CastFailure,
        // `Trap` is non-exhaustive.
        _ => return None,
    })
}

/// The wasmtime trap a code stands for; `None` for a code this build does
/// not know.
pub fn trap_from_wire(code: TrapCode) -> Option<Trap> {
    Some(match code {
        TrapCode::StackOverflow => Trap::StackOverflow,
        TrapCode::MemoryOutOfBounds => Trap::MemoryOutOfBounds,
        TrapCode::HeapMisaligned => Trap::HeapMisaligned,
        TrapCode::TableOutOfBounds => Trap::TableOutOfBounds,
        TrapCode::IndirectCallToNull => Trap::IndirectCallToNull,
        TrapCode::BadSignature => Trap::BadSignature,
        TrapCode::IntegerOverflow => Trap::IntegerOverflow,
        TrapCode::IntegerDivisionByZero => Trap::IntegerDivisionByZero,
        TrapCode::BadConversionToInteger => Trap::BadConversionToInteger,
        TrapCode::UnreachableCodeReached => Trap::UnreachableCodeReached,
        TrapCode::Interrupt => Trap::Interrupt,
        TrapCode::OutOfFuel => Trap::OutOfFuel,
        TrapCode::AtomicWaitNonSharedMemory => Trap::AtomicWaitNonSharedMemory,
        TrapCode::NullReference => Trap::NullReference,
        TrapCode::ArrayOutOfBounds => Trap::ArrayOutOfBounds,
        TrapCode::AllocationTooLarge => Trap::AllocationTooLarge,
        TrapCode::CastFailure => Trap::CastFailure,
        TrapCode::Unknown(_) => return None,
    })
}

/// A runtime failure as sent. A trap the protocol does not carry travels as
/// a host failure with its text.
pub fn failure_to_wire(failure: &Failure) -> WireFailure {
    match failure.clone() {
        Failure::Trap { trap, message } => match trap_to_wire(trap) {
            Some(code) => WireFailure::Trap { code, message },
            None => WireFailure::Host {
                message: failure.to_string(),
            },
        },
        Failure::OutOfFuel { limit } => WireFailure::OutOfFuel { limit },
        Failure::Timeout { limit } => WireFailure::TimedOut {
            ms: limit.as_millis() as u64,
        },
        Failure::MemoryLimit { limit } => WireFailure::MemoryLimit { limit },
        Failure::TableLimit { limit } => WireFailure::TableLimit { limit },
        Failure::OutputLimit { limit } => WireFailure::OutputLimit {
            limit: limit as u64,
        },
        Failure::Exit { code } => WireFailure::Exit { code },
        Failure::Guest { status, message } => WireFailure::Guest { status, message },
        Failure::Abi { message } => WireFailure::Abi { message },
        Failure::Host { message } => WireFailure::Host { message },
        Failure::SpawnLimit { limit } => match limit {
            SpawnLimit::Depth { max } => WireFailure::SpawnLimit { which: 0, max },
            SpawnLimit::Children { max } => WireFailure::SpawnLimit { which: 1, max },
            SpawnLimit::InFlight { max } => WireFailure::SpawnLimit { which: 2, max },
        },
    }
}

/// A failure as received.
pub fn failure_from_wire(failure: WireFailure) -> Failure {
    match failure {
        WireFailure::Trap { code, message } => match trap_from_wire(code) {
            Some(trap) => Failure::Trap { trap, message },
            None => Failure::Host {
                message: format!("the node reported an unknown trap code {}", code.code()),
            },
        },
        WireFailure::OutOfFuel { limit } => Failure::OutOfFuel { limit },
        WireFailure::TimedOut { ms } => Failure::Timeout {
            limit: Duration::from_millis(ms),
        },
        WireFailure::MemoryLimit { limit } => Failure::MemoryLimit { limit },
        WireFailure::TableLimit { limit } => Failure::TableLimit { limit },
        WireFailure::OutputLimit { limit } => Failure::OutputLimit {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        },
        WireFailure::Exit { code } => Failure::Exit { code },
        WireFailure::Guest { status, message } => Failure::Guest { status, message },
        WireFailure::Abi { message } => Failure::Abi { message },
        WireFailure::Host { message } => Failure::Host { message },
        WireFailure::SpawnLimit { which, max } => match which {
            0 => Failure::SpawnLimit {
                limit: SpawnLimit::Depth { max },
            },
            1 => Failure::SpawnLimit {
                limit: SpawnLimit::Children { max },
            },
            2 => Failure::SpawnLimit {
                limit: SpawnLimit::InFlight { max },
            },
            _ => Failure::Host {
                message: format!("the node reported an unknown spawn limit {which}"),
            },
        },
    }
}

/// A received outcome; `fetch` resolves an output sent by digest.
pub fn outcome_from_wire(
    outcome: Outcome,
    fetch: impl FnOnce(&[u8; 32]) -> Option<Vec<u8>>,
) -> Result<Ended, TaskFailure> {
    match outcome {
        Outcome::Finished {
            output,
            log,
            fuel_used,
        } => {
            let output = match output {
                Data::Inline(bytes) => bytes,
                Data::Stored(digest) => fetch(&digest).ok_or_else(|| TaskFailure {
                    reason: Failure::Host {
                        message: format!(
                            "the node stored the output as blob {}, which the broker's store \
                             does not have (is --store shared by both?)",
                            blake3::Hash::from_bytes(digest).to_hex()
                        ),
                    },
                    log: log.clone(),
                })?,
            };
            Ok(Ended::Finished(TaskOutput {
                output,
                log,
                fuel_used,
            }))
        }
        Outcome::Failed { failure, log } => Err(TaskFailure {
            reason: failure_from_wire(failure),
            log,
        }),
        Outcome::Suspended {
            reason,
            resume_from,
            log,
        } => Ok(Ended::Suspended(Suspended {
            reason: match reason {
                protocol::SuspendReason::Fuel => SuspendReason::Fuel,
                protocol::SuspendReason::Drain => SuspendReason::Drain,
            },
            resume_from: resume_from.map(checkpoint_from_wire),
            log,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode, encode};

    #[test]
    fn failures_round_trip() {
        let failures = [
            Failure::Trap {
                trap: Trap::UnreachableCodeReached,
                message: Some("panicked".into()),
            },
            Failure::Trap {
                trap: Trap::StackOverflow,
                message: None,
            },
            Failure::OutOfFuel { limit: 5 },
            Failure::Timeout {
                limit: Duration::from_millis(250),
            },
            Failure::MemoryLimit { limit: 1 << 20 },
            Failure::OutputLimit { limit: 9 },
            Failure::Exit { code: 3 },
            Failure::Guest {
                status: 2,
                message: "bad".into(),
            },
            Failure::Host {
                message: "x".into(),
            },
        ];
        for failure in failures {
            assert_eq!(failure_from_wire(failure_to_wire(&failure)), failure);
        }
    }

    /// Every trap of core wasm that wasmtime can raise for a wrun task.
    const CARRIED: [Trap; 17] = [
        Trap::StackOverflow,
        Trap::MemoryOutOfBounds,
        Trap::HeapMisaligned,
        Trap::TableOutOfBounds,
        Trap::IndirectCallToNull,
        Trap::BadSignature,
        Trap::IntegerOverflow,
        Trap::IntegerDivisionByZero,
        Trap::BadConversionToInteger,
        Trap::UnreachableCodeReached,
        Trap::Interrupt,
        Trap::OutOfFuel,
        Trap::AtomicWaitNonSharedMemory,
        Trap::NullReference,
        Trap::ArrayOutOfBounds,
        Trap::AllocationTooLarge,
        Trap::CastFailure,
    ];

    #[test]
    fn every_carried_trap_round_trips_through_its_code() {
        let mut codes = std::collections::HashSet::new();
        for trap in CARRIED {
            let code = trap_to_wire(trap).unwrap_or_else(|| panic!("{trap:?} has no code"));
            assert!(!matches!(code, TrapCode::Unknown(_)), "{trap:?}");
            assert!(
                codes.insert(code.code()),
                "{trap:?} shares code {}",
                code.code()
            );
            assert_eq!(TrapCode::from_code(code.code()), code);
            assert_eq!(trap_from_wire(code), Some(trap));
            let failure = Failure::Trap {
                trap,
                message: Some("m".into()),
            };
            assert_eq!(failure_from_wire(failure_to_wire(&failure)), failure);
        }
    }

    #[test]
    fn every_known_code_names_a_carried_trap() {
        for code in 0..=u8::MAX {
            let code = TrapCode::from_code(code);
            match trap_from_wire(code) {
                Some(trap) => {
                    assert!(CARRIED.contains(&trap));
                    assert_eq!(trap_to_wire(trap), Some(code));
                }
                None => assert!(matches!(code, TrapCode::Unknown(_))),
            }
        }
    }

    #[test]
    fn other_traps_travel_as_host_failures() {
        // wasmtime's own numbering is used here only to list every variant
        // it has; the wire never sees it.
        let others: Vec<Trap> = (0..=u8::MAX)
            .filter_map(Trap::from_u8)
            .filter(|trap| !CARRIED.contains(trap))
            .collect();
        assert!(others.contains(&Trap::CannotEnterComponent));
        for trap in others {
            assert_eq!(trap_to_wire(trap), None, "{trap:?}");
            let failure = Failure::Trap {
                trap,
                message: None,
            };
            assert_eq!(
                failure_to_wire(&failure),
                WireFailure::Host {
                    message: failure.to_string()
                }
            );
        }
        let unknown = decode::<TrapCode>(&[200]).unwrap();
        assert_eq!(
            failure_from_wire(WireFailure::Trap {
                code: unknown,
                message: None
            }),
            Failure::Host {
                message: "the node reported an unknown trap code 200".into()
            }
        );
    }

    #[test]
    fn limits_round_trip() {
        for spec in [
            LimitsSpec {
                fuel: None,
                timeout_ms: None,
                memory: 0,
                output: 0,
                spawn: None,
            },
            LimitsSpec {
                fuel: Some(u64::MAX),
                timeout_ms: Some(1500),
                memory: 4 << 30,
                output: 1 << 20,
                spawn: None,
            },
        ] {
            let wire = limits_to_wire(&spec);
            assert_eq!(limits_from_wire(&wire), spec);
            assert_eq!(limits_to_wire(&limits_from_wire(&wire)), wire);
            // Same fields, same encoding: the wire form of version 1.
            assert_eq!(encode(&wire), encode(&spec));
            let runtime = runtime_limits(&wire, &wrun_runtime::Limits::default());
            assert_eq!(runtime.fuel, spec.fuel);
            assert_eq!(runtime.timeout, spec.timeout_ms.map(Duration::from_millis));
            assert_eq!(runtime.memory, spec.memory);
            assert_eq!(runtime.output as u64, spec.output);
        }
    }
}
