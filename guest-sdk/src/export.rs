//! What the export macros expand to: the `wrun_*` exports over per-instance
//! state, and the metadata section.
//!
//! State lives in a `thread_local!` declared by the macro in the guest crate
//! (a wasm instance has one thread), so the glue is safe code. Every export
//! validates the host's offsets against the buffer it reserved, and hands
//! buffered output to the host before returning, so nothing is pending while
//! the wasm stack is empty.

use std::cell::RefCell;
use std::thread::LocalKey;

use wrun_abi::status;

use crate::{Args, Error, Output, Splitter, Step, Task, Weigh};

/// Per-instance state of a task.
#[derive(Debug)]
pub struct TaskState<T> {
    buffer: Vec<u8>,
    task: Option<T>,
    out: Output,
}

impl<T> TaskState<T> {
    /// The state before `wrun_init`.
    pub const fn new() -> Self {
        TaskState {
            buffer: Vec::new(),
            task: None,
            out: Output::new(),
        }
    }
}

impl<T> Default for TaskState<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-instance state of a splitter.
#[derive(Debug, Default)]
pub struct SplitterState<S> {
    buffer: Vec<u8>,
    starts: Vec<u32>,
    /// The last block's weights (a [`Weigh`] splitter's only).
    weights: Vec<u64>,
    splitter: S,
}

type Cell<S> = &'static LocalKey<RefCell<S>>;

/// Grow `buffer` to at least `len` bytes for the host to write into; its
/// address, or 0 when memory is exhausted.
///
/// The new bytes are not zeroed first: the host overwrites all `len` of
/// them before its next call (the ABI's `wrun_reserve` contract), and
/// zeroing a multi-MB chunk's buffer cost 5% of a no-op job's CPU.
fn reserve(buffer: &mut Vec<u8>, len: usize) -> usize {
    if len > buffer.len() {
        if buffer.try_reserve_exact(len - buffer.len()).is_err() {
            return 0;
        }
        // SAFETY: the capacity is at least `len` (reserved above). The
        // bytes past the old length are handed to the host, which writes
        // every one of them through the returned address before it calls
        // back into this instance; nothing reads them before that. Wasm
        // linear memory has no uninitialised state, so the host's write
        // is what initialises them.
        unsafe { buffer.set_len(len) };
    }
    buffer.as_mut_ptr() as usize
}

/// Turn a result into a status code, passing the message to the host.
fn report(result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => status::OK,
        Err(error) => {
            #[cfg(target_arch = "wasm32")]
            crate::host::error(error.message());
            error.status()
        }
    }
}

fn slice(buffer: &[u8], offset: usize, len: usize) -> Result<&[u8], Error> {
    offset
        .checked_add(len)
        .and_then(|end| buffer.get(offset..end))
        .ok_or_else(|| Error::failed("host passed a range outside the reserved buffer"))
}

/// Route panic messages to the host so a trap carries them.
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                // One line, for the one-line failure report.
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()));
                let payload = info.payload_as_str().unwrap_or("Box<dyn Any>");
                crate::host::error(&format!(
                    "panicked{}: {payload}",
                    location.unwrap_or_default()
                ));
            }));
        });
    }
}

/// `wrun_reserve` for tasks.
pub fn task_reserve<T>(cell: Cell<TaskState<T>>, len: usize) -> usize {
    cell.with_borrow_mut(|state| reserve(&mut state.buffer, len))
}

/// `wrun_init`.
pub fn task_init<T: Task>(cell: Cell<TaskState<T>>, args_len: usize) -> i32 {
    install_panic_hook();
    cell.with_borrow_mut(|state| {
        report(
            slice(&state.buffer, 0, args_len)
                .and_then(Args::decode)
                .and_then(|args| T::init(&args))
                .map(|task| state.task = Some(task)),
        )
    })
}

/// Run `f` on an initialised task, then hand its output over.
fn with_task<T: Task, R>(
    cell: Cell<TaskState<T>>,
    f: impl FnOnce(&mut T, &[u8], &mut Output) -> Result<R, Error>,
) -> Result<R, Error> {
    cell.with_borrow_mut(|state| {
        let TaskState { buffer, task, out } = state;
        let task = task
            .as_mut()
            .ok_or_else(|| Error::failed("task called before wrun_init succeeded"))?;
        let result = f(task, buffer, out);
        out.flush();
        result
    })
}

/// `wrun_record`.
pub fn task_record<T: Task>(cell: Cell<TaskState<T>>, offset: usize, len: usize) -> i32 {
    report(with_task(cell, |task, buffer, out| {
        task.record(slice(buffer, offset, len)?, out)
    }))
}

/// `wrun_step`.
pub fn task_step<T: Task>(cell: Cell<TaskState<T>>) -> i32 {
    match with_task(cell, |task, _, out| task.step(out)) {
        Ok(Step::More) => status::MORE,
        Ok(Step::Wait) => status::WAIT,
        Ok(Step::Done) => status::OK,
        Err(error) => report(Err(error)),
    }
}

/// `wrun_finish`.
pub fn task_finish<T: Task>(cell: Cell<TaskState<T>>) -> i32 {
    report(with_task(cell, |task, _, out| task.finish(out)))
}

/// `wrun_reserve` for splitters.
pub fn splitter_reserve<S>(cell: Cell<SplitterState<S>>, len: usize) -> usize {
    cell.with_borrow_mut(|state| reserve(&mut state.buffer, len))
}

/// `wrun_split`.
pub fn splitter_split<S: Splitter>(cell: Cell<SplitterState<S>>, len: usize, eof: u32) -> i32 {
    split_with(cell, len, eof, |splitter, block, eof, starts, _| {
        splitter.split(block, eof, starts)
    })
}

/// `wrun_split` of a splitter that weighs its records: the starts, then
/// their weights for `wrun_weights`.
pub fn splitter_split_weighted<S: Weigh>(
    cell: Cell<SplitterState<S>>,
    len: usize,
    eof: u32,
) -> i32 {
    split_with(cell, len, eof, |splitter, block, eof, starts, weights| {
        splitter.split(block, eof, starts)?;
        splitter.weigh(block, eof, starts, weights)?;
        match weights.len() == starts.len() + 1 {
            true => Ok(()),
            false => Err(Error::failed(format!(
                "weigh reported {} weights for {} record starts (it must report one more)",
                weights.len(),
                starts.len()
            ))),
        }
    })
}

/// Run `split` (starts, weights) over the block of `len` bytes in the
/// reserved buffer; the count of starts, or an error status.
fn split_with<S>(
    cell: Cell<SplitterState<S>>,
    len: usize,
    eof: u32,
    split: impl FnOnce(&mut S, &[u8], bool, &mut Vec<u32>, &mut Vec<u64>) -> Result<(), Error>,
) -> i32 {
    install_panic_hook();
    cell.with_borrow_mut(|state| {
        let SplitterState {
            buffer,
            starts,
            weights,
            splitter,
        } = state;
        starts.clear();
        weights.clear();
        let result = slice(buffer, 0, len)
            .and_then(|block| split(splitter, block, eof != 0, starts, weights));
        match result {
            Ok(()) => i32::try_from(starts.len()).unwrap_or_else(|_| {
                report(Err(Error::failed("too many record starts in one block")))
            }),
            Err(error) => report(Err(error)),
        }
    })
}

/// `wrun_boundaries`.
pub fn splitter_boundaries<S>(cell: Cell<SplitterState<S>>) -> usize {
    cell.with_borrow(|state| state.starts.as_ptr() as usize)
}

/// `wrun_weights`.
pub fn splitter_weights<S>(cell: Cell<SplitterState<S>>) -> usize {
    cell.with_borrow(|state| state.weights.as_ptr() as usize)
}

/// The metadata section's bytes, as an array a `#[link_section]` static can
/// hold.
pub const fn section_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == N);
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

// The exports carry `#[no_mangle]` only on wasm32: natively (the test
// harness) they still type-check, but two guests linked into one test
// binary (a task and its splitter) must not clash.

/// Export a [`Task`] implementation as this module's task.
///
/// ```ignore
/// wrun_sdk::export_task!(MyTask);
/// wrun_sdk::export_task!(MyTask, formats = "fasta");            // expects FASTA input
/// wrun_sdk::export_task!(MyTask, formats = "lines", unit = chunk); // one call per chunk
/// ```
///
/// `formats` names the input formats the task expects, so that
/// `wrun submit --format auto` can pick the splitter; `unit` is `record`
/// (default) or `chunk`. Use it once per crate, in a `cdylib`.
#[macro_export]
macro_rules! export_task {
    ($task:ty $(, formats = $formats:literal)? $(, unit = $unit:ident)? $(,)?) => {
        const _: () = {
            ::std::thread_local! {
                static STATE: ::core::cell::RefCell<$crate::__private::TaskState<$task>> =
                    const { ::core::cell::RefCell::new($crate::__private::TaskState::new()) };
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_reserve(len: usize) -> usize {
                $crate::__private::task_reserve(&STATE, len)
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_init(args_len: usize) -> i32 {
                $crate::__private::task_init(&STATE, args_len)
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_record(offset: usize, len: usize) -> i32 {
                $crate::__private::task_record(&STATE, offset, len)
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_step() -> i32 {
                $crate::__private::task_step(&STATE)
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_finish() -> i32 {
                $crate::__private::task_finish(&STATE)
            }
            $crate::__wrun_metadata!("task" $(, formats = $formats)? $(, unit = $unit)?);
        };
    };
}

/// Export a [`Splitter`] implementation as this module's data plugin.
///
/// ```ignore
/// wrun_sdk::export_splitter!(Fasta, formats = "fasta,fa,fna,faa");
/// wrun_sdk::export_splitter!(Fasta, formats = "fasta", weighted); // Fasta: Weigh
/// ```
///
/// `formats` lists the format names and file extensions the plugin splits;
/// `--format auto` matches them against the input's extension. `weighted`
/// also exports `wrun_weights`: the splitter implements [`Weigh`](crate::Weigh)
/// and reports every record's weight.
#[macro_export]
macro_rules! export_splitter {
    ($splitter:ty, formats = $formats:literal, weighted $(,)?) => {
        $crate::export_splitter!(@weighted $splitter, ("splitter", formats = $formats));
    };
    ($splitter:ty, weighted $(,)?) => {
        $crate::export_splitter!(@weighted $splitter, ("splitter"));
    };
    ($splitter:ty $(, formats = $formats:literal)? $(,)?) => {
        $crate::export_splitter!(@exports $splitter, splitter_split, ("splitter" $(, formats = $formats)?), {});
    };
    (@weighted $splitter:ty, $metadata:tt) => {
        $crate::export_splitter!(@exports $splitter, splitter_split_weighted, $metadata, {
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_weights() -> usize {
                $crate::__private::splitter_weights(&STATE)
            }
        });
    };
    (@exports $splitter:ty, $split:ident, ($($metadata:tt)*), { $($extra:item)* }) => {
        const _: () = {
            ::std::thread_local! {
                static STATE: ::core::cell::RefCell<$crate::__private::SplitterState<$splitter>> =
                    ::core::cell::RefCell::new(::core::default::Default::default());
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_reserve(len: usize) -> usize {
                $crate::__private::splitter_reserve(&STATE, len)
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_split(len: usize, eof: u32) -> i32 {
                $crate::__private::$split(&STATE, len, eof)
            }
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            #[allow(dead_code)]
            extern "C" fn wrun_boundaries() -> usize {
                $crate::__private::splitter_boundaries(&STATE)
            }
            $($extra)*
            $crate::__wrun_metadata!($($metadata)*);
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wrun_metadata {
    (@unit record) => { "record" };
    (@unit chunk) => { "chunk" };
    ($kind:literal $(, formats = $formats:literal)? $(, unit = $unit:ident)?) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const TEXT: &str = ::core::concat!(
                "abi=1\nkind=", $kind,
                "\nname=", ::core::env!("CARGO_PKG_NAME"),
                "\nversion=", ::core::env!("CARGO_PKG_VERSION"),
                $("\nformats=", $formats,)?
                $("\nunit=", $crate::__wrun_metadata!(@unit $unit),)?
                "\n"
            );
            #[used]
            #[unsafe(link_section = "wrun")]
            static METADATA: [u8; TEXT.len()] = $crate::__private::section_bytes(TEXT);
        };
    };
}
