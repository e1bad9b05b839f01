//! Build the guests the end-to-end tests run, from source.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Guests and the environment variable that carries each one's path.
const GUESTS: &[(&str, &str)] = &[
    ("task-probe", "WRUN_TEST_TASK_PROBE"),
    ("command-probe", "WRUN_TEST_COMMAND_PROBE"),
    ("gc-content", "WRUN_TEST_GC_CONTENT"),
    ("wc", "WRUN_TEST_WC"),
    ("kmer-count", "WRUN_TEST_KMER_COUNT"),
    ("kmer-merge", "WRUN_TEST_KMER_MERGE"),
    ("sw-search", "WRUN_TEST_SW_SEARCH"),
    ("pi", "WRUN_TEST_PI"),
    ("pair-stats", "WRUN_TEST_PAIR_STATS"),
    ("nqueens", "WRUN_TEST_NQUEENS"),
    ("evolve", "WRUN_TEST_EVOLVE"),
    ("wrun-plugin-fasta", "WRUN_TEST_FASTA_PLUGIN"),
    ("weigh-lines", "WRUN_TEST_WEIGH_LINES"),
];

fn main() {
    wrun_build_guests::build_and_export(GUESTS);
    build_c_guest("examples/revcomp-c/revcomp.c", "WRUN_TEST_REVCOMP_C");
    build_c_guest(
        "tests/guests/weigh-lines-c/weigh.c",
        "WRUN_TEST_WEIGH_LINES_C",
    );
}

/// A C guest (`source`, from the repository root), with clang and
/// wasi-libc, its path in the variable `var`. Without them the variable
/// names what is missing, and the test that runs it says so (`.ci/run`
/// installs them).
fn build_c_guest(source: &str, var: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let source = repo.join(source);
    let header = repo.join("guest-sdk/include/wrun.h");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", header.display());
    let name = source.file_stem().unwrap().to_str().unwrap();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join(format!("{name}_c.wasm"));
    let built = Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2", "-mexec-model=reactor"])
        .args(["-Wall", "-Wextra", "-Werror", "-Wl,--strip-debug"])
        .arg("-I")
        .arg(header.parent().unwrap())
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .output();
    let value = match built {
        Ok(output) if output.status.success() => out.display().to_string(),
        Ok(output) => format!(
            "missing: clang failed to build {}: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(e) => format!("missing: cannot run clang ({e})"),
    };
    println!("cargo:rustc-env={var}={value}");
}
