//! What running a task produced: output, or a classified failure.

use std::fmt;
use std::time::Duration;

use wasmtime::Trap;

use crate::limits::{LimitHit, Limits};
use crate::nest::{SpawnLimit, SpawnLimitHit};

/// A task that ran to completion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOutput {
    /// Everything the task emitted (SDK) or wrote to stdout (command).
    pub output: Vec<u8>,
    /// The task's log (SDK `log`, or stderr), truncated at the log limit.
    pub log: Vec<u8>,
    /// Fuel consumed, in fuel units, when fuel is metered (`--fuel`).
    pub fuel_used: Option<u64>,
}

/// A task that did not complete, and its log up to that point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// Why it stopped.
    pub reason: Failure,
    /// The task's log up to the failure.
    pub log: Vec<u8>,
}

/// Why a task stopped. Each variant is a distinct outcome for the user (and
/// a distinct exit code of `wrun submit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The guest trapped (panic, out-of-bounds access, stack overflow, …).
    Trap {
        /// The trap's kind.
        trap: Trap,
        /// What the guest said before trapping (an SDK panic message).
        message: Option<String>,
    },
    /// The fuel budget ran out.
    OutOfFuel {
        /// The budget, in fuel units.
        limit: u64,
    },
    /// The wall-clock budget ran out.
    Timeout {
        /// The budget.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the limit, or could not take
    /// its input (`wrun_reserve` returned 0, or the input is 4 GiB or more).
    MemoryLimit {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The guest tried to grow a table past the limit.
    TableLimit {
        /// The limit, in elements.
        limit: u32,
    },
    /// The guest produced more output than allowed.
    OutputLimit {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A command exited with a non-zero status.
    Exit {
        /// The exit status (`proc_exit`'s argument).
        code: i32,
    },
    /// An SDK guest returned an error status.
    Guest {
        /// The ABI status code (`wrun_abi::status`).
        status: i32,
        /// The guest's message.
        message: String,
    },
    /// The guest broke the ABI (a buffer outside its memory, a misaligned
    /// or out-of-range pointer handed to a WASI call, an unknown status, a
    /// failed `wrun_reserve`).
    Abi {
        /// What the guest did wrong.
        message: String,
    },
    /// The task spawned past a limit on spawning (depth, children per
    /// task, children in flight per job).
    SpawnLimit {
        /// Which limit.
        limit: SpawnLimit,
    },
    /// Anything else wasmtime reported (instantiation failure, host error).
    Host {
        /// The error, with its causes.
        message: String,
    },
}

impl Failure {
    /// Classify an error returned by a wasmtime call. `message` is what the
    /// guest set through `error` (or its panic hook) before failing.
    pub(crate) fn from_wasmtime(
        error: wasmtime::Error,
        message: Option<String>,
        limits: &Limits,
    ) -> Failure {
        for cause in error.chain() {
            if let Some(hit) = cause.downcast_ref::<LimitHit>() {
                return match *hit {
                    LimitHit::Memory { limit } => Failure::MemoryLimit { limit },
                    LimitHit::Table { limit } => Failure::TableLimit { limit },
                    LimitHit::Output { limit } => Failure::OutputLimit { limit },
                };
            }
            if let Some(hit) = cause.downcast_ref::<SpawnLimitHit>() {
                return Failure::SpawnLimit { limit: hit.0 };
            }
            if let Some(exit) = cause.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Failure::Exit { code: exit.0 };
            }
            if let Some(abi) = cause.downcast_ref::<crate::host_abi::AbiViolation>() {
                return Failure::Abi {
                    message: abi.to_string(),
                };
            }
            // wasmtime-wasi traps when a WASI call is handed a pointer that
            // is misaligned or outside the guest's memory: the guest's
            // fault, never retried.
            if let Some(bad) = cause.downcast_ref::<wiggle::GuestError>() {
                return Failure::Abi {
                    message: format!("a WASI call was handed a bad pointer: {bad}"),
                };
            }
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Failure::OutOfFuel {
                limit: limits.fuel.unwrap_or(0),
            },
            Some(Trap::Interrupt) => Failure::Timeout {
                limit: limits.timeout.unwrap_or_default(),
            },
            Some(&trap) => Failure::Trap { trap, message },
            None => Failure::Host {
                message: format!("{error:#}"),
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Trap { trap, message } => {
                // wasmtime words every trap "wasm trap: …".
                let text = trap.to_string();
                write!(
                    f,
                    "trap: {}",
                    text.strip_prefix("wasm trap: ").unwrap_or(&text)
                )?;
                match message {
                    Some(message) => write!(f, ": {message}"),
                    None => Ok(()),
                }
            }
            Failure::OutOfFuel { limit } => write!(f, "out of fuel (limit {limit})"),
            Failure::Timeout { limit } => write!(f, "timed out after {limit:?}"),
            Failure::MemoryLimit { limit } => write!(f, "memory limit of {limit} bytes exceeded"),
            Failure::TableLimit { limit } => write!(f, "table limit of {limit} elements exceeded"),
            Failure::OutputLimit { limit } => write!(f, "output limit of {limit} bytes exceeded"),
            Failure::Exit { code } => write!(f, "exited with status {code}"),
            Failure::Guest { status, message } => {
                let kind = match *status {
                    wrun_abi::status::BAD_ARGS => "rejected its arguments",
                    wrun_abi::status::BAD_INPUT => "rejected its input",
                    _ => "failed",
                };
                write!(f, "task {kind}: {message}")
            }
            Failure::Abi { message } => write!(f, "guest broke the wrun ABI: {message}"),
            Failure::SpawnLimit { limit } => limit.fmt(f),
            Failure::Host { message } => write!(f, "host error: {message}"),
        }
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

impl std::error::Error for TaskFailure {}
