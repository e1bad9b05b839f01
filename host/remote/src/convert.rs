//! Task outcomes between the runtime's types and the wire's.

use std::time::Duration;

use wrun_runtime::{Failure, TaskFailure, TaskOutput, Trap};

use crate::protocol::{Data, Outcome, WireFailure};

/// A runtime failure as sent.
pub fn failure_to_wire(failure: &Failure) -> WireFailure {
    match failure.clone() {
        Failure::Trap { trap, message } => WireFailure::Trap {
            code: trap as u8,
            message,
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
    }
}

/// A failure as received.
pub fn failure_from_wire(failure: WireFailure) -> Failure {
    match failure {
        WireFailure::Trap { code, message } => match Trap::from_u8(code) {
            Some(trap) => Failure::Trap { trap, message },
            None => Failure::Host {
                message: format!("the node reported an unknown trap code {code}"),
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
    }
}

/// A received outcome; `fetch` resolves an output sent by digest.
pub fn outcome_from_wire(
    outcome: Outcome,
    fetch: impl FnOnce(&[u8; 32]) -> Option<Vec<u8>>,
) -> Result<TaskOutput, TaskFailure> {
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
            Ok(TaskOutput {
                output,
                log,
                fuel_used,
            })
        }
        Outcome::Failed { failure, log } => Err(TaskFailure {
            reason: failure_from_wire(failure),
            log,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
