//! The guests wrun's end-to-end tests run, built from source by this
//! crate's build script (real guests: the probes of `tests/guests`, the
//! examples, the FASTA plugin and the C task), and the repository root.
//!
//! The tests themselves (`tests/e2e`) are an integration test of the
//! `wrun` package, so that cargo builds the binary they drive before it
//! runs them (`CARGO_BIN_EXE_wrun`): no test can run a stale `wrun`.

use std::path::Path;

/// An SDK task whose behaviour is its first argument.
pub const TASK_PROBE: &str = env!("WRUN_TEST_TASK_PROBE");
/// A WASI command whose behaviour is its first argument.
pub const COMMAND_PROBE: &str = env!("WRUN_TEST_COMMAND_PROBE");
/// `examples/gc-content`.
pub const GC_CONTENT: &str = env!("WRUN_TEST_GC_CONTENT");
/// `examples/wc`.
pub const WC: &str = env!("WRUN_TEST_WC");
/// `examples/kmer-count`.
pub const KMER_COUNT: &str = env!("WRUN_TEST_KMER_COUNT");
/// `examples/kmer-merge`, the reducer of `examples/kmer-count`.
pub const KMER_MERGE: &str = env!("WRUN_TEST_KMER_MERGE");
/// `examples/sw-search`.
pub const SW_SEARCH: &str = env!("WRUN_TEST_SW_SEARCH");
/// `examples/pi`: a long Monte Carlo run in `step()`, for snapshots.
pub const PI: &str = env!("WRUN_TEST_PI");
/// `examples/pair-stats`: lengths, GC and overlap of read pairs.
pub const PAIR_STATS: &str = env!("WRUN_TEST_PAIR_STATS");
/// `examples/nqueens`: N-queens counts by spawning a child per placement.
pub const NQUEENS: &str = env!("WRUN_TEST_NQUEENS");
/// `examples/evolve`: a seeded genetic algorithm spawning its evaluations.
pub const EVOLVE: &str = env!("WRUN_TEST_EVOLVE");
/// `plugins/fasta`.
pub const FASTA_PLUGIN: &str = env!("WRUN_TEST_FASTA_PLUGIN");
/// `tests/guests/weigh-lines`: a splitter plugin weighing each line by
/// the first number in it.
pub const WEIGH_LINES: &str = env!("WRUN_TEST_WEIGH_LINES");
/// `tests/guests/weigh-lines-c`: a splitter plugin in C weighing each
/// line by its length; like [`REVCOMP_C`], a text starting with `missing`
/// without clang or wasi-libc.
pub const WEIGH_LINES_C: &str = env!("WRUN_TEST_WEIGH_LINES_C");
/// `examples/revcomp-c`, built with clang; without clang or wasi-libc, a
/// text starting with `missing` that names what is missing.
pub const REVCOMP_C: &str = env!("WRUN_TEST_REVCOMP_C");

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
}
