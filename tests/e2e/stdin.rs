//! A command's stdin is its whole chunk, whatever its size. A single line
//! of more than 128 MiB (wasmtime's default bound on the buffer one WASI
//! call may name, past which the guest saw `ENOMEM`) reaches the command,
//! which counts it as coreutils `wc` does; the command's stdout takes it
//! back in one write, up to `--output-limit` and no further.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::support::{COMMAND_PROBE, WC, output_within, wrun};

/// One mebibyte, the piece size the files here are written and read in.
const MIB: usize = 1 << 20;

/// A file `name` in `dir` holding one line: `mib` MiB of `A`, then `\n`.
/// Written a mebibyte at a time, so the test never holds it.
fn one_line(dir: &TempDir, name: &str, mib: usize) -> PathBuf {
    let path = dir.path().join(name);
    let mut file = File::create(&path).expect("create input");
    let piece = vec![b'A'; MIB];
    for _ in 0..mib {
        file.write_all(&piece).expect("write input");
    }
    file.write_all(b"\n").expect("write input");
    path
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The counts `text` holds, in order (a `wc` line without a file name).
fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .map(|n| {
            n.parse()
                .unwrap_or_else(|e| panic!("{n:?} in {text:?}: {e}"))
        })
        .collect()
}

/// What coreutils `wc` prints for `file`, read from its stdin.
fn coreutils_wc(file: &Path) -> Vec<u64> {
    let mut wc = Command::new("wc");
    wc.stdin(File::open(file).expect("open input"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = output_within(wc, "wc");
    assert!(output.status.success(), "wc failed: {output:?}");
    numbers(&String::from_utf8(output.stdout).expect("utf-8 wc output"))
}

/// What the `wc` example prints for `file`, one chunk per line, with a
/// linear memory of `memory` (a `--memory` size).
fn wrun_wc(file: &Path, memory: &str) -> Vec<u64> {
    let run = wrun(
        &[
            "submit",
            WC,
            "--input",
            path(file),
            "--format",
            "lines",
            "--no-journal",
            "--memory",
            memory,
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    numbers(&run.stdout_text())
}

/// Whether files `a` and `b` hold the same bytes, compared a mebibyte at a
/// time.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let len = |p: &Path| std::fs::metadata(p).expect("file size").len();
    if len(a) != len(b) {
        return false;
    }
    let (mut a, mut b) = (File::open(a).expect("open"), File::open(b).expect("open"));
    let (mut x, mut y) = (vec![0; MIB], vec![0; MIB]);
    loop {
        let n = a.read(&mut x).expect("read");
        if n == 0 {
            return true;
        }
        b.read_exact(&mut y[..n]).expect("read");
        if x[..n] != y[..n] {
            return false;
        }
    }
}

#[test]
fn a_130_mib_line_is_counted_as_coreutils_wc_counts_it_and_echoed_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = one_line(&dir, "l130.txt", 130);
    let expected = coreutils_wc(&input);
    assert_eq!(expected, [1, 1, 136_314_881]);
    assert_eq!(wrun_wc(&input, "1GiB"), expected);

    // Echoed back in one write of the whole chunk.
    let output = dir.path().join("out.txt");
    let run = wrun(
        &[
            "submit",
            COMMAND_PROBE,
            "--input",
            path(&input),
            "--format",
            "lines",
            "--no-journal",
            "--output-limit",
            "512MiB",
            "-o",
            path(&output),
            "--",
            "cat",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        same_bytes(&output, &input),
        "the echo differs from the input"
    );
}

#[test]
fn a_300_mib_line_is_counted_as_coreutils_wc_counts_it_and_its_echo_hits_the_output_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = one_line(&dir, "l300.txt", 300);
    let expected = coreutils_wc(&input);
    assert_eq!(expected, [1, 1, 300 * MIB as u64 + 1]);
    // wc streams its stdin: the default memory limit holds.
    assert_eq!(wrun_wc(&input, "1GiB"), expected);

    // 300 MiB written in one go: the output limit (256 MiB by default), not
    // a failed write.
    let run = wrun(
        &[
            "submit",
            COMMAND_PROBE,
            "--input",
            path(&input),
            "--format",
            "lines",
            "--no-journal",
            // The echo probe reads its whole stdin into a `Vec`, whose
            // doublings take a little over 1 GiB of linear memory for
            // 300 MiB: a guest's own need, so more memory.
            "--memory",
            "2GiB",
            "--",
            "cat",
        ],
        None,
    );
    assert_eq!(run.code, 14, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("output limit of 268435456 bytes exceeded"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}
