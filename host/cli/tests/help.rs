//! What `wrun --help` teaches is part of the interface: golden tests.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wrun"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_lists_the_commands_and_the_exit_codes() {
    let text = help(&["--help"]);
    for needle in [
        "submit",
        "status",
        "logs",
        "resume",
        "retry",
        "cancel",
        "output",
        "inspect",
        "Exit codes:",
        "  3  input cannot be read",
        "  6  the job journal cannot be read",
        "  7  the job was cancelled",
        "  13  a task exceeded the memory",
    ] {
        assert!(
            text.contains(needle),
            "`wrun --help` lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn submit_help_teaches_usage_and_shows_safe_defaults() {
    let text = help(&["submit", "--help"]);
    for needle in [
        "wrun submit examples/gc-content --input reads.fa -o gc.tsv",
        "[default: 10m]",
        "[default: 1GiB]",
        "[default: 256MiB]",
        "[default: all cores]",
        "--keep-going",
        "--retries <N>",
        "[default: 2]",
        "--fresh",
        "--no-journal",
        "wrun resume JOB",
        "Exit codes:",
    ] {
        assert!(
            text.contains(needle),
            "`wrun submit --help` lacks {needle:?}:\n{text}"
        );
    }
}
