//! Per-task resource limits and their enforcement inside a store.

use std::time::Duration;

/// What one task (one chunk) may use. The same limits apply to every task of
/// a job; splitters get the memory, table and timeout limits per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Instruction budget, in wasmtime fuel units (about one per wasm
    /// instruction); `None` turns metering off, which is faster.
    pub fuel: Option<u64>,
    /// Wall-clock budget (a `Duration`), enforced by epoch interruption in
    /// 10 ms ticks, so a task may overrun it by about one tick; `None` for
    /// none.
    pub timeout: Option<Duration>,
    /// Linear memory, in bytes (at most [`Limits::MAX_MEMORY`], the wasm32
    /// maximum).
    pub memory: u64,
    /// Size of any one table, in elements.
    pub table_elements: u32,
    /// Output a task may produce, in bytes; more fails the task.
    pub output: usize,
    /// Log kept per task, in bytes; the rest is dropped.
    pub log: usize,
    /// Native stack wasm may use, in bytes.
    pub stack: usize,
    /// Largest module accepted, in bytes.
    pub module_size: usize,
}

impl Limits {
    /// Largest linear memory a wasm32 module can have, in bytes (4 GiB).
    pub const MAX_MEMORY: u64 = 4 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: None,
            timeout: Some(Duration::from_secs(600)),
            memory: 1 << 30,
            table_elements: 100_000,
            output: 256 << 20,
            log: 64 << 10,
            stack: 512 << 10,
            module_size: 256 << 20,
        }
    }
}

/// A limit a task ran into, raised from inside wasmtime as the error of the
/// failing operation and recognised when classifying the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitHit {
    #[error("memory limit of {limit} bytes reached")]
    Memory { limit: u64 },
    #[error("table limit of {limit} elements reached")]
    Table { limit: u32 },
    #[error("output limit of {limit} bytes reached")]
    Output { limit: usize },
}

/// The store's resource limiter: turns a growth past a limit into a
/// [`LimitHit`] trap instead of a failed `memory.grow` that the guest might
/// misreport.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) memory: u64,
    pub(crate) table_elements: u32,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory {
            return Err(wasmtime::Error::new(LimitHit::Memory {
                limit: self.memory,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements as usize {
            return Err(wasmtime::Error::new(LimitHit::Table {
                limit: self.table_elements,
            }));
        }
        Ok(true)
    }
}
