//! Build the benchmark guests from source.

const GUESTS: &[(&str, &str)] = &[
    ("noop-task", "WRUN_BENCH_NOOP_TASK"),
    ("noop-command", "WRUN_BENCH_NOOP_COMMAND"),
    ("regex-grep", "WRUN_BENCH_REGEX_GREP"),
];

fn main() {
    let packages: Vec<&str> = GUESTS.iter().map(|(package, _)| *package).collect();
    let artifacts = wrun_build_guests::build(&packages);
    for (package, var) in GUESTS {
        println!("cargo:rustc-env={var}={}", artifacts[*package].display());
    }
}
