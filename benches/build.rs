//! Build the benchmark guests from source.

const GUESTS: &[(&str, &str)] = &[
    ("noop-task", "WRUN_BENCH_NOOP_TASK"),
    ("noop-spawn", "WRUN_BENCH_NOOP_SPAWN"),
    ("noop-command", "WRUN_BENCH_NOOP_COMMAND"),
    ("regex-grep", "WRUN_BENCH_REGEX_GREP"),
    ("gc-content", "WRUN_BENCH_GC_CONTENT"),
    ("sw-search", "WRUN_BENCH_SW_SEARCH"),
    ("kmer-count", "WRUN_BENCH_KMER_COUNT"),
    ("kmer-merge", "WRUN_BENCH_KMER_MERGE"),
    ("pair-stats", "WRUN_BENCH_PAIR_STATS"),
];

fn main() {
    wrun_build_guests::build_and_export(GUESTS);
}
