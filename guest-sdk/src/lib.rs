//! Write wrun guests in safe Rust.
//!
//! A wrun guest is a WebAssembly module built for `wasm32-wasip1`. This crate
//! hides the raw ABI (`docs/abi.md`): you implement [`Task`] or [`Splitter`]
//! on a type and name it in [`export_task!`] or [`export_splitter!`]; the
//! macro generates the `wrun_*` exports and the `wrun` metadata section.
//!
//! # The smallest complete task
//!
//! A task that upper-cases every line of its input
//! (`crate-type = ["cdylib"]` in its `Cargo.toml`):
//!
//! ```
//! use wrun_sdk::{Args, Output, Result, Task};
//!
//! struct Upper;
//!
//! impl Task for Upper {
//!     fn init(_args: &Args) -> Result<Self> {
//!         Ok(Upper)
//!     }
//!
//!     fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()> {
//!         out.write(&record.to_ascii_uppercase());
//!         Ok(())
//!     }
//! }
//!
//! wrun_sdk::export_task!(Upper, formats = "lines");
//!
//! // The same logic, tested natively with `cargo test`:
//! let out = wrun_sdk::testing::run_task::<Upper>(&[], &[b"a\n", b"b\n"]).unwrap();
//! assert_eq!(out, b"A\nB\n");
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip1` and run it
//! with `wrun submit target/wasm32-wasip1/release/upper.wasm --input in.txt`.
//!
//! # Life of a task instance
//!
//! The host makes one fresh instance per chunk of input and calls
//! [`Task::init`] with the job's arguments, [`Task::record`] once per record
//! of the chunk (or once with the whole chunk for `unit = chunk`),
//! [`Task::step`] until it returns [`Step::Done`], then [`Task::finish`].
//! Output written to [`Output`] is handed to the host when each call returns.
//! Returning an [`Error`] fails the chunk with its message; a panic traps it,
//! with the panic message attached.
//!
//! A task's [`Task::step`] may also [`spawn`](spawn::spawn) child tasks
//! and return [`Step::Wait`]: it is called again once they are done, with
//! their results in spawn order (see [`spawn`]).

pub mod bases;
pub mod data;
mod error;
mod export;
pub mod fasta;
pub mod fastq;
mod host;
pub mod pairs;
pub mod spawn;
mod splitter;
mod task;
pub mod testing;

pub use error::{Error, ErrorKind, Result};
pub use host::log;
pub use splitter::{ByteOrderMark, LoneCarriageReturn, Residues, Splitter, Weigh};
pub use task::{Args, Output, Step, Task};

#[doc(hidden)]
pub mod __private {
    //! Used by the export macros; not a public API.
    pub use crate::export::*;
    pub use wrun_abi as abi;
}

// The macros spell the ABI version as a literal (`concat!` needs one).
const _: () = assert!(wrun_abi::ABI_VERSION == 1);
