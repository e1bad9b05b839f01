//! Tasks that spawn tasks: `examples/nqueens` counts N = 1..10 as known
//! with one worker, two, and through a broker with two nodes;
//! `examples/evolve` writes the same generations for one worker, two and
//! a broker with two nodes; a child's
//! trap reaches its parent as an error value; the spawn limits fail the
//! job with exit code 20 naming their flag; a `WAIT` without a spawn is an
//! ABI violation.

use std::path::{Path, PathBuf};

use crate::cluster::Cluster;
use crate::support::{EVOLVE, NQUEENS, TASK_PROBE, wrun};

/// Solutions of N-queens for N = 1..10.
const KNOWN: [u64; 10] = [1, 0, 0, 2, 10, 4, 40, 92, 352, 724];

/// A file of board sizes 1..=10, one per line.
fn sizes(dir: &Path) -> PathBuf {
    let path = dir.join("sizes.txt");
    let text: String = (1..=10).map(|n| format!("{n}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// What nqueens writes for [`sizes`].
fn expected() -> String {
    (1..=10)
        .zip(KNOWN)
        .map(|(n, k)| format!("{n}\t{k}\n"))
        .collect()
}

/// `submit nqueens` over `input`, one board per chunk, split down to 3
/// rows by spawning, then `extra`.
fn nqueens<'a>(input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["submit", NQUEENS, "--input", input, "--chunk-records", "1"];
    args.extend(extra);
    args.extend(["--", "3"]);
    args
}

#[test]
fn nqueens_counts_the_known_solutions_with_one_worker_and_with_two() {
    let dir = tempfile::tempdir().unwrap();
    let input = sizes(dir.path());
    for workers in ["1", "2"] {
        let run = wrun(&nqueens(input.to_str().unwrap(), &["-j", workers]), None);
        assert_eq!(run.code, 0, "-j {workers}: {}", run.stderr);
        assert_eq!(run.stdout_text(), expected(), "-j {workers}");
    }
}

#[test]
fn nqueens_counts_the_known_solutions_through_a_broker_with_two_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let input = sizes(dir.path());
    let cluster = Cluster::start(2);
    let run = cluster.wrun(&nqueens(input.to_str().unwrap(), &[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), expected());
}

#[test]
fn a_child_trap_reaches_its_parent_as_an_error_value() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.txt");
    // The probe echoes a record marked `ok:` whatever its mode.
    std::fs::write(&input, "ok:first\nboom\n").unwrap();
    let args = [
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--",
        "spawn",
        "panic",
    ];
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "the parent decides: {}", run.stderr);
    let text = run.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "child 0: ok:first");
    assert!(
        lines[1].starts_with("child 1 failed: trap: ")
            && lines[1].contains("probe panicked on purpose"),
        "{text}"
    );
    assert_eq!(lines.len(), 2, "{text}");
}

#[test]
fn spawn_limits_fail_the_job_with_exit_code_20_naming_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = sizes(dir.path());
    let input = input.to_str().unwrap();
    for (flag, value) in [
        ("--max-spawn-depth", "2"),
        ("--max-children", "3"),
        ("--max-children-in-flight", "20"),
    ] {
        let run = wrun(&nqueens(input, &[flag, value]), None);
        assert_eq!(run.code, 20, "{flag}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("limit of {value}"))
                || run.stderr.contains(&format!("more than {value}")),
            "{flag}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(flag), "{}", run.stderr);
    }
    // Within the limits, the same job succeeds.
    let run = wrun(&nqueens(input, &["--max-spawn-depth", "3"]), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), expected());
}

#[test]
fn a_wait_without_a_spawn_is_an_abi_violation() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("one.txt");
    std::fs::write(&input, "x\n").unwrap();
    let args = [
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--",
        "wait-alone",
    ];
    let run = wrun(&args, None);
    assert_eq!(run.code, 17, "{}", run.stderr);
    assert!(
        run.stderr.contains("WAIT without spawning"),
        "{}",
        run.stderr
    );
}

#[test]
fn evolve_writes_the_same_generations_for_any_number_of_workers_and_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("seeds.txt");
    std::fs::write(&input, "1\n2\n3\n").unwrap();
    let input = input.to_str().unwrap();
    let job = |workers: &'static str| {
        vec![
            "submit",
            EVOLVE,
            "--input",
            input,
            "--chunk-records",
            "1",
            "-j",
            workers,
            "--",
            "16",
            "6",
            "8",
        ]
    };
    let one = wrun(&job("1"), None);
    assert_eq!(one.code, 0, "{}", one.stderr);
    let text = one.stdout_text();
    assert_eq!(text.lines().count(), 3 * 6, "{text}");
    let two = wrun(&job("2"), None);
    assert_eq!(two.code, 0, "{}", two.stderr);
    assert_eq!(two.stdout_text(), text);
    let cluster = Cluster::start(2);
    let mut remote = job("1");
    remote.drain(6..8);
    let nodes = cluster.wrun(&remote);
    assert_eq!(nodes.code, 0, "{}", nodes.stderr);
    assert_eq!(nodes.stdout_text(), text);
}
