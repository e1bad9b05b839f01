//! Classifying task failures for the journal and for exit codes.

use wrun_journal::{FailureKind, TaskError};
use wrun_runtime::Failure;

/// The class of a runtime failure.
pub fn failure_kind(failure: &Failure) -> FailureKind {
    match failure {
        Failure::Trap { .. } => FailureKind::Trap,
        Failure::OutOfFuel { .. } => FailureKind::Fuel,
        Failure::Timeout { .. } => FailureKind::Timeout,
        Failure::MemoryLimit { .. } | Failure::TableLimit { .. } => FailureKind::Memory,
        Failure::OutputLimit { .. } => FailureKind::OutputLimit,
        Failure::Exit { .. } => FailureKind::Exit,
        Failure::Guest { .. } => FailureKind::Guest,
        Failure::Abi { .. } => FailureKind::Abi,
        Failure::Host { .. } => FailureKind::Host,
    }
}

/// A runtime failure as the journal keeps it.
pub fn task_error(failure: &Failure) -> TaskError {
    TaskError {
        kind: failure_kind(failure),
        message: failure.to_string(),
    }
}
