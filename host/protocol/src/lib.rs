//! wrun's cluster wire format, apart from any transport, runtime or journal
//! so that it can be fuzzed on its own (`fuzz/fuzz_targets/protocol.rs`):
//! limits and trap kinds travel as this crate's own types
//! ([`protocol::Limits`], [`protocol::TrapCode`]), which `wrun-remote`
//! converts.
//!
//! * [`key`]: the cluster key every peer shares;
//! * [`wire`]: sealed frames (keyed blake3 tags, session nonces, counters);
//! * [`protocol`]: the messages and their versioned, size-capped encoding.

#![warn(missing_docs)]

pub mod key;
pub mod protocol;
pub mod wire;
