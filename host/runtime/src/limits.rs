//! Per-task resource limits and their enforcement inside a store.

use std::time::Duration;

use bytesize::ByteSize;

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
    /// Log kept per task (the SDK's `log`, a command's stderr), in bytes;
    /// the rest is dropped and the kept log ends with a note saying so.
    pub log: usize,
    /// The guest's error message (`error`, which a trap's message comes
    /// from too) kept per call, in bytes; a longer one is cut at a
    /// character boundary and ends with a note saying how long it was.
    pub error: usize,
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
            error: 64 << 10,
            stack: 512 << 10,
            module_size: 256 << 20,
        }
    }
}

/// The note that ends a guest's text cut at `cap` bytes: `what` was
/// `total` bytes long, when known.
pub(crate) fn truncation_note(what: &str, cap: usize, total: Option<usize>) -> String {
    let cap = ByteSize(cap as u64);
    match total {
        Some(total) => format!(
            " … [truncated: {} {what} cut to {cap}]",
            ByteSize(total as u64)
        ),
        None => format!(" … [truncated: {what} cut at {cap}]"),
    }
}

/// `bytes` as text, cut to at most `cap` bytes at a character boundary and
/// then ending with a [`truncation_note`] if it was longer. Reads only the
/// first `cap` bytes, so a guest's huge buffer costs nothing.
pub(crate) fn capped_text(what: &str, bytes: &[u8], cap: usize) -> String {
    if bytes.len() <= cap {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let head = &bytes[..cap];
    // Do not cut a character in two: drop an incomplete one at the end.
    let head = match std::str::from_utf8(head) {
        Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
        _ => head,
    };
    let mut text = String::from_utf8_lossy(head).into_owned();
    text.push_str(&truncation_note(what, cap, Some(bytes.len())));
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_past_its_cap_is_cut_and_says_so() {
        assert_eq!(capped_text("error message", b"short", 5), "short");
        assert_eq!(
            capped_text("error message", &[b'x'; 64 << 20], 4),
            "xxxx … [truncated: 64.0 MiB error message cut to 4 B]"
        );
        // "é" is two bytes: a cut in its middle drops it.
        assert_eq!(
            capped_text("error message", "aéb".as_bytes(), 2),
            "a … [truncated: 4 B error message cut to 2 B]"
        );
    }
}
