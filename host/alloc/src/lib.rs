//! Allocation queues: wrun asks a batch system (Slurm, Grid Engine, PBS)
//! for nodes while a broker has more queued work than its nodes can take.
//!
//! * [`system`]: what every batch system does for wrun, behind one trait
//!   ([`BatchSystem`]): render the batch script, the submit, poll and
//!   cancel command lines, and parse their output;
//!   [`slurm`](system::slurm), [`sge`](system::sge) and
//!   [`pbs`](system::pbs) each implement it;
//! * [`queue`]: one allocation queue's policy as a pure state machine
//!   (when to submit, what a poll means, when to pause itself);
//! * [`view`]: the queues as `wrun alloc ls` shows them.
//!
//! The crate runs no command itself: the broker does, and feeds the results
//! back to [`queue::Queue`].

#![warn(missing_docs)]

pub mod queue;
pub mod system;
pub mod view;

pub use queue::{AllocState, Allocation, Queue, QueueSpec, QueueState};
pub use system::{BatchState, BatchSystem, Observed, Script, System};
