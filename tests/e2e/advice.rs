//! Every hint wrun prints is one that can succeed in that situation:
//! following the advice works (or, where nothing can, none is given).

use std::path::Path;

use crate::support::{TASK_PROBE, wrun_in};

/// Submit the probe over `input` with `flags` and `-- task_args`: exit
/// code and stderr.
fn submit(home: &Path, input: &Path, flags: &[&str], task_args: &[&str]) -> (i32, String) {
    let mut args = vec![
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--format",
        "lines",
        "--chunk-records",
        "1",
    ];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend_from_slice(task_args);
    let run = wrun_in(home, &args, None);
    (run.code, run.stderr)
}

#[test]
fn a_limit_names_its_flag_and_a_new_submit_with_more_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "one line of input\nanother\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    // Work that emits a few bytes per record: over a 4-byte output limit.
    let (code, stderr) = submit(
        home.path(),
        &input,
        &["--output-limit", "4B"],
        &["work", "1"],
    );
    assert_eq!(code, 14, "{stderr}");
    assert!(
        stderr.contains("submit it again with a higher --output-limit")
            && !stderr.contains("wrun retry"),
        "{stderr}"
    );
    let (code, stderr) = submit(
        home.path(),
        &input,
        &["--output-limit", "1MiB"],
        &["work", "1"],
    );
    assert_eq!(code, 0, "following the advice: {stderr}");

    // Memory: a hog under --memory 2MiB; the advice names --memory.
    let (code, stderr) = submit(home.path(), &input, &["--memory", "2MiB"], &["hog"]);
    assert_eq!(code, 13, "{stderr}");
    assert!(
        stderr.contains("submit it again with a higher --memory") && !stderr.contains("wrun retry"),
        "{stderr}"
    );
}

#[test]
fn a_deterministic_failure_promises_no_retry() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    for (task_args, code) in [(&["panic"][..], 10), (&["fail"][..], 16)] {
        let (got, stderr) = submit(home.path(), &input, &[], task_args);
        assert_eq!(got, code, "{task_args:?}: {stderr}");
        assert!(
            stderr.contains("would fail the same way on every run")
                && !stderr.contains("wrun retry"),
            "{task_args:?}: {stderr}"
        );
    }
}
