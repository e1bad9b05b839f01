//! End-to-end tests of wrun: real guests, built from source by the
//! `wrun-tests` crate (`tests/`), run through the runtime and the `wrun`
//! binary, which cargo builds before this test (`CARGO_BIN_EXE_wrun`).
//!
//! One test binary (as ripgrep does); modules by subject.

mod admission;
mod advice;
mod after;
mod cache;
mod cli;
mod cluster;
mod compression;
mod dashboard;
mod data;
mod formats;
mod hostile;
mod journal;
mod line_endings;
mod migration;
mod outcomes;
mod output_guard;
mod outputs;
mod pairs;
mod recovery;
mod retries;
mod s3;
mod s3io;
mod snapshots;
mod spawn;
mod stdin;
mod storage;
mod support;
mod weights;
