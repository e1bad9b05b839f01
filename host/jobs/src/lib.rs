//! wrun's job lifecycle as a library: everything between "a user asked for
//! a job" and "the job is recorded as finished", for the command line and
//! the broker alike (both call this API in-process).
//!
//! * [`submit`]: a [`Request`] (module bytes, input, options) is checked
//!   and loaded into a [`Prepared`] job with its spec and fingerprint,
//!   then [started](Prepared::start) here (a new journaled job, or the
//!   unfinished one with the same fingerprint, resumed) or handed to a
//!   broker.
//! * [`admit`]: the one sequence that makes a job's modules runnable
//!   (task, runner, splitter plugin, reducer), from bytes or from the
//!   store.
//! * [`Run`]: one run of a job with its executor ([`Placement`]: this
//!   machine's cores or a broker's nodes), input [`Source`] and output
//!   [`Destination`]; [`Run::execute`] drives the scheduler and records
//!   the final state.
//! * [`after`]: jobs that wait for jobs (`--after JOB`, `--input
//!   job:JOB`).
//! * [`control`]: resume, retry, cancel, snapshot and remove recorded jobs.
//! * [`views`]: what `status` and `logs` report, as serializable data (the
//!   one definition of the `--json` shapes).
//! * [`output`]: a recorded job's output, re-assembled.
//! * [`pairs`]: a paired job's input, its pairs interleaved and checked.
//! * [`guard`]: an output path that would destroy an input is refused.
//! * [`Home`]: where the journal, store and locks live.
//!
//! Every fallible call returns an [`Error`] whose [`ErrorKind`] the
//! command line maps to an exit code. The crate knows nothing of the
//! command line, terminals or networks.

#![warn(missing_docs)]

pub mod admit;
pub mod after;
pub mod control;
pub mod data;
mod error;
pub mod guard;
mod home;
pub mod input;
mod journaled;
pub mod output;
pub mod pairs;
mod placement;
mod prefix;
mod reduce;
mod run;
mod streams;
pub mod submit;
pub mod views;

pub use admit::{Admitted, ModuleBytes, admit_one};
pub use error::{Error, ErrorKind, Result};
pub use home::Home;
pub use journaled::{Claim, Journaled, Requeue};
pub use pairs::Pairing;
pub use placement::{Local, Placement};
pub use run::{Observer, Run, check, chunking, describe_chunking};
pub use streams::{Destination, Notices, Source};
pub use submit::{Keeping, Once, Prepared, Request, Submitted};
pub use wrun_scheduler::{Summary, Update};
