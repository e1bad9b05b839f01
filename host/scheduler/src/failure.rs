//! Classifying task failures for the journal and for exit codes.

use wrun_journal::{FailureKind, SuspendReason, TaskError};
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
        Failure::SpawnLimit { .. } => FailureKind::SpawnLimit,
    }
}

/// Why a task was suspended, as the journal keeps it.
pub(crate) fn suspend_reason(reason: wrun_runtime::SuspendReason) -> SuspendReason {
    match reason {
        wrun_runtime::SuspendReason::Fuel => SuspendReason::Fuel,
        wrun_runtime::SuspendReason::Drain => SuspendReason::Drain,
    }
}

/// A runtime failure as the journal keeps it.
pub fn task_error(failure: &Failure) -> TaskError {
    TaskError {
        kind: failure_kind(failure),
        message: failure.to_string(),
    }
}
