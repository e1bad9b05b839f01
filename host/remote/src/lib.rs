//! wrun's cluster mode: a broker that queues the tasks of many jobs and
//! nodes that run them, over ZeroMQ, every message authenticated.
//!
//! * [`key`], [`wire`], [`protocol`]: the wire format, from the
//!   `wrun-protocol` crate;
//! * [`transport`]: the ZeroMQ sockets, in one place;
//! * [`queue`]: the broker's priority queue, credit and re-queueing;
//! * [`broker`]: the broker's socket thread and its sessions;
//! * [`allocator`]: the broker's allocation queues (`wrun alloc`), which
//!   submit batch jobs that start nodes;
//! * [`node`]: a node's loop: credit, module and chunk fetches, slots;
//! * [`client`]: the command line's side of a session;
//! * [`executor`]: the scheduler's [`wrun_scheduler::Executor`] that sends
//!   a job's tasks through the broker;
//! * [`service`]: the broker's [`broker::Service`] over the job library
//!   (`wrun-jobs`): clients' jobs and job commands, in-process;
//! * [`dashboard`]: what the broker's web dashboard (`--http`) reads: its
//!   journal, its nodes, its allocation queues.
//!
//! The threat model is in `docs/cluster.md`.

#![warn(missing_docs)]

pub mod allocator;
pub mod broker;
pub mod client;
pub mod convert;
pub mod dashboard;
pub mod executor;
pub mod node;
pub mod queue;
pub mod service;
pub mod transport;

pub use wrun_protocol::{key, protocol, wire};
