//! The contract between the wrun host and its guests, ABI version 1.
//!
//! This crate holds only names, numbers and the metadata format: the things
//! both sides must agree on byte for byte. The host (`wrun-runtime`) and the
//! guest SDK (`wrun-sdk`) both depend on it; it depends on nothing. The
//! prose specification, with every call's parameters, returns and ownership
//! rules, is `docs/abi.md` at the root of the repository.
//!
//! # Module kinds
//!
//! * [`Kind::Task`]: an SDK task. The host drives it through the exports in
//!   [`export`]: `wrun_init`, then `wrun_record` once per record (or once per
//!   chunk), then `wrun_step` until it reports done (if exported), then
//!   `wrun_finish`. Output leaves through the [`import::EMIT`] import.
//! * [`Kind::Splitter`]: a data plugin. The host streams the input through
//!   `wrun_split` in blocks; the plugin reports where records start.
//! * [`Kind::Command`]: any WASI command (`_start`). The chunk is its stdin,
//!   its stdout is the output, its exit code the status. A command carries no
//!   `wrun` section.
//!
//! Between two host→guest calls the guest's wasm stack is empty: a call
//! returns before the next one starts, and guests never call back into the
//! host's exports. The whole state of a task is therefore its linear memory
//! plus its globals.

#![no_std]

mod metadata;
pub mod pairs;

pub use metadata::{Kind, Metadata, MetadataError, Unit};

/// The ABI version this crate describes. A module's `abi` metadata key must
/// equal it.
pub const ABI_VERSION: u32 = 1;

/// Name of the custom section that carries a module's [`Metadata`].
pub const METADATA_SECTION: &str = "wrun";

/// Module name of every host function the ABI provides.
pub const IMPORT_MODULE: &str = "wrun";

/// Names of the functions a guest exports. All integers are wasm `i32`;
/// pointers and lengths are unsigned byte offsets into the guest's exported
/// `memory`.
pub mod export {
    /// `wrun_reserve(len) -> ptr`: return a guest buffer of at least `len`
    /// bytes that the host may overwrite. The buffer stays valid, and its
    /// contents unchanged by the guest, until the next `wrun_reserve` call.
    /// Returns 0 if the guest cannot allocate it. Tasks and splitters.
    pub const RESERVE: &str = "wrun_reserve";
    /// `wrun_init(args_len) -> status`: the first `args_len` bytes of the
    /// reserved buffer hold the task's arguments, each one UTF-8 followed by
    /// a NUL byte. Called once per task instance, before any record.
    pub const INIT: &str = "wrun_init";
    /// `wrun_record(offset, len) -> status`: process the record at
    /// `offset..offset + len` of the reserved buffer (the whole chunk was
    /// copied there). With [`Unit::Chunk`](crate::Unit::Chunk) the host
    /// calls it once, with the whole chunk.
    pub const RECORD: &str = "wrun_record";
    /// `wrun_step() -> status`: optional. Do a bounded unit of work; return
    /// [`status::MORE`](crate::status::MORE) to be called again,
    /// [`status::WAIT`](crate::status::WAIT) to be called again once the
    /// children it spawned are done, or [`status::OK`](crate::status::OK)
    /// when done. Called after the last
    /// record and before `wrun_finish`.
    pub const STEP: &str = "wrun_step";
    /// `wrun_finish() -> status`: the chunk is complete; emit what remains.
    pub const FINISH: &str = "wrun_finish";
    /// `wrun_split(len, eof) -> count`: the reserved buffer holds the next
    /// `len` bytes of the input (`eof` is 1 when they are the last). Returns
    /// how many record starts were found in them (a status below zero on
    /// error); the starts are read with `wrun_boundaries`.
    pub const SPLIT: &str = "wrun_split";
    /// `wrun_boundaries() -> ptr`: pointer to the `count` little-endian u32
    /// offsets reported by the last `wrun_split`, relative to the start of
    /// its block, ascending. An offset equal to the block length means "a
    /// record starts with the next block". Valid until the next call.
    pub const BOUNDARIES: &str = "wrun_boundaries";
    /// `wrun_weights() -> ptr`: optional; a splitter that exports it weighs
    /// its records. Pointer to `count + 1` little-endian u64 weights for the
    /// last `wrun_split`: first the weight of the block's bytes before its
    /// first start (they belong to the record that began earlier), then, for
    /// each start, the weight of that record's bytes in this block. A
    /// record's weight is the sum of its parts. Valid until the next call.
    pub const WEIGHTS: &str = "wrun_weights";
    /// The entry point of a WASI command.
    pub const START: &str = "_start";
    /// The exported linear memory every task and splitter must have.
    pub const MEMORY: &str = "memory";
    /// Run by the host once after instantiation when exported (the WASI
    /// reactor convention, used by C and Rust `cdylib` guests).
    pub const INITIALIZE: &str = "_initialize";
}

/// Names of the functions the host provides in module [`IMPORT_MODULE`].
///
/// Every pointer/length pair must lie inside the guest's memory; one that
/// does not is guest misuse and traps the task. The host copies the bytes
/// before returning, so the guest keeps ownership of its buffers.
pub mod import {
    /// `emit(ptr, len)`: append `len` bytes to the task's output. Exceeding
    /// the task's output limit stops the task with the `output limit`
    /// outcome.
    pub const EMIT: &str = "emit";
    /// `log(ptr, len)`: append UTF-8 text to the task's log (what stderr is
    /// to a command). Text beyond the log limit is dropped.
    pub const LOG: &str = "log";
    /// `error(ptr, len)`: set the message describing why the current call is
    /// about to return a negative status (or trap). The last one wins.
    pub const ERROR: &str = "error";
    /// `spawn(module, input_ptr, input_len, args_ptr, args_len) -> handle`:
    /// during `wrun_step` only, ask for a child task of the same job: module
    /// [`SELF_MODULE`](crate::SELF_MODULE) (the task's own; no other index is
    /// defined yet) run on the `input_len` bytes at `input_ptr` (one record)
    /// with the arguments at `args_ptr` (the `wrun_init` encoding: each
    /// argument UTF-8 followed by a NUL). Returns the child's handle (0, 1,
    /// … in spawn order, counted from the task's last wait), or
    /// [`status::BAD_ARGS`](crate::status::BAD_ARGS) for an unknown module
    /// or malformed arguments. The children run once `wrun_step` returns
    /// [`status::WAIT`](crate::status::WAIT).
    pub const SPAWN: &str = "spawn";
    /// `child_status(handle) -> status`: after a wait, how the child ended:
    /// [`status::OK`](crate::status::OK) (its output is readable) or
    /// [`status::FAILED`](crate::status::FAILED) (its error message is);
    /// [`status::BAD_ARGS`](crate::status::BAD_ARGS) for a handle with no
    /// result (unknown, or its wait not over).
    pub const CHILD_STATUS: &str = "child_status";
    /// `child_output_len(handle) -> len`: the byte length of the child's
    /// output (or error message), or `BAD_ARGS` as for `child_status`.
    pub const CHILD_OUTPUT_LEN: &str = "child_output_len";
    /// `child_output_read(handle, ptr, len) -> count`: copy up to `len`
    /// bytes of the child's output (or error message) to `ptr`; returns how
    /// many were copied, or `BAD_ARGS` as for `child_status`.
    pub const CHILD_OUTPUT_READ: &str = "child_output_read";
    /// Every import of [`IMPORT_MODULE`](crate::IMPORT_MODULE) a module may
    /// have.
    pub const ALL: [&str; 7] = [
        EMIT,
        LOG,
        ERROR,
        SPAWN,
        CHILD_STATUS,
        CHILD_OUTPUT_LEN,
        CHILD_OUTPUT_READ,
    ];
}

/// The module index [`import::SPAWN`] takes for "the spawning task's own
/// module".
pub const SELF_MODULE: i32 = 0;

/// Status codes returned by task and splitter exports.
pub mod status {
    /// The call succeeded; for `wrun_step`, the work is done.
    pub const OK: i32 = 0;
    /// `wrun_step` only: more work remains, call it again.
    pub const MORE: i32 = 1;
    /// `wrun_step` only, after at least one `spawn` since the last wait:
    /// call `wrun_step` again once every child spawned since then is done,
    /// with their results readable during that call.
    pub const WAIT: i32 = 2;
    /// The guest failed; the message set through `error` says why.
    pub const FAILED: i32 = -1;
    /// The task's arguments were rejected.
    pub const BAD_ARGS: i32 = -2;
    /// The input (a record, a block) was rejected as malformed.
    pub const BAD_INPUT: i32 = -3;
    /// Every error status a guest may return. Any other negative value,
    /// like any positive value an export does not define, is an ABI
    /// violation.
    pub const ERRORS: [i32; 3] = [FAILED, BAD_ARGS, BAD_INPUT];
}
