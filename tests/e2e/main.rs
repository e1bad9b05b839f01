//! End-to-end tests of wrun: real guests, built from source by this
//! package's build script, run through the runtime and the `wrun` binary.
//!
//! One test binary (as ripgrep does); modules by subject.

mod admission;
mod cache;
mod cli;
mod cluster;
mod formats;
mod journal;
mod outcomes;
mod retries;
mod snapshots;
mod support;
