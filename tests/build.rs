//! Build the guests the end-to-end tests run, from source.

/// Guests and the environment variable that carries each one's path.
const GUESTS: &[(&str, &str)] = &[
    ("task-probe", "WRUN_TEST_TASK_PROBE"),
    ("command-probe", "WRUN_TEST_COMMAND_PROBE"),
    ("gc-content", "WRUN_TEST_GC_CONTENT"),
    ("wc", "WRUN_TEST_WC"),
    ("wrun-plugin-fasta", "WRUN_TEST_FASTA_PLUGIN"),
];

fn main() {
    wrun_build_guests::build_and_export(GUESTS);
}
