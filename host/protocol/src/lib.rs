//! wrun's cluster wire format, apart from any transport so that it can be
//! fuzzed on its own (`fuzz/fuzz_targets/protocol.rs`):
//!
//! * [`key`]: the cluster key every peer shares;
//! * [`wire`]: sealed frames (keyed blake3 tags, session nonces, counters);
//! * [`protocol`]: the messages and their versioned, size-capped encoding.

pub mod key;
pub mod protocol;
pub mod wire;
