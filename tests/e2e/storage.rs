//! What a job keeps on disk: a resume never shrinks the `-o` file it
//! appends to.

use std::path::{Path, PathBuf};

use crate::support::{TASK_PROBE, spawn_wrun, status_json, wait_until, wrun_in};

/// 600 records of about 800 bytes: 150 chunks of 4.
fn long_lines(dir: &Path) -> PathBuf {
    let text: String = (0..600)
        .map(|i| format!("record {i:04} {}\n", "acgt".repeat(190 + i % 20)))
        .collect();
    let path = dir.join("in.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `work` probe over `input` with `rounds` hash rounds per record
/// (7,500 rounds of an 800-byte record: about 2.5 ms).
fn work_args<'a>(input: &'a Path, out: &'a Path, rounds: &'a str) -> Vec<&'a str> {
    vec![
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--format",
        "lines",
        "--chunk-records",
        "4",
        "-j",
        "2",
        "-o",
        out.to_str().unwrap(),
        "--",
        "work",
        rounds,
    ]
}

fn job_state(home: &Path) -> String {
    status_json(home, None)[0]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn done_count(home: &Path) -> u64 {
    status_json(home, None)[0]["tasks"]["done"]
        .as_u64()
        .unwrap_or(0)
}

/// Start `wrun args…` and SIGKILL it once `done` chunks of job 1 are
/// committed; calls `watch` at every poll. Returns its standard error.
fn kill_after(home: &Path, args: &[&str], done: u64, mut watch: impl FnMut()) -> String {
    let mut child = spawn_wrun(home, args);
    wait_until("the job is recorded", || {
        watch();
        home.join("journal.db").exists() && status_json(home, None)[0]["id"] == 1
    });
    wait_until(&format!("{done} chunks are done"), || {
        watch();
        done_count(home) >= done
    });
    child.kill().expect("SIGKILL wrun");
    let output = child.wait_with_output().unwrap();
    watch();
    assert_eq!(job_state(home), "interrupted", "killed before the end");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The probe's output is every record followed by a line of its hash:
/// check that `output`'s records are the input's first ones, in order.
fn assert_records_in_order(output: &[u8], input: &[u8], what: &str) {
    let text = std::str::from_utf8(output).unwrap();
    let records: Vec<&str> = text.lines().step_by(2).collect();
    let expected: Vec<&str> = std::str::from_utf8(input).unwrap().lines().collect();
    assert!(records.len() <= expected.len(), "{what}");
    assert_eq!(records, expected[..records.len()], "{what}");
}

#[test]
fn a_killed_resume_never_shrinks_the_output_and_the_end_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = long_lines(dir.path());
    let out = dir.path().join("out.txt");
    // About 10 ms per record: 3 s of work on two workers.
    let args = work_args(&input, &out, "30000");
    kill_after(home.path(), &args, 30, || {});
    let committed = done_count(home.path());

    // What the file holds of whole chunks is what a resume must keep.
    let before = std::fs::read(&out).unwrap();
    let whole = {
        let text = String::from_utf8_lossy(&before);
        let lines = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        let per_chunk = 8; // 4 records, each with its hash line
        let kept: Vec<&str> = lines.collect();
        let chunks = kept.len() / per_chunk;
        kept[..chunks * per_chunk].concat().len() as u64
    };
    assert!(whole > 0, "the killed submit wrote whole chunks");
    let mut smallest = u64::MAX;
    let stderr = kill_after(home.path(), &["resume", "1"], committed + 30, || {
        let len = std::fs::metadata(&out).map_or(0, |m| m.len());
        smallest = smallest.min(len);
    });
    assert!(
        smallest >= whole,
        "the resume shrank the output from {whole} to {smallest} bytes"
    );
    assert!(
        stderr.contains("out.txt holds the output of the first "),
        "{stderr}"
    );
    let killed = std::fs::read(&out).unwrap();
    assert!(killed.len() as u64 >= whole);
    assert_eq!(killed[..whole as usize], before[..whole as usize]);

    let run = wrun_in(home.path(), &["resume", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let finished = std::fs::read(&out).unwrap();
    let assembled = wrun_in(home.path(), &["output", "1"], None);
    assert_eq!(assembled.code, 0, "{}", assembled.stderr);
    assert_eq!(finished, assembled.stdout, "the journal's output");
    let input = std::fs::read(&input).unwrap();
    assert_eq!(finished.iter().filter(|&&b| b == b'\n').count(), 1200);
    assert_records_in_order(&finished, &input, "the finished output");
}

#[test]
fn a_resume_rewrites_an_output_that_does_not_match_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = long_lines(dir.path());
    let out = dir.path().join("out.txt");
    let args = work_args(&input, &out, "7500");
    kill_after(home.path(), &args, 20, || {});

    // The prefix the journal holds (`wrun output` of an unfinished job
    // writes it and says the rest is missing), then a byte changed in the
    // output of chunk 5.
    let prefix = wrun_in(home.path(), &["output", "1"], None);
    assert_eq!(prefix.code, 8, "{}", prefix.stderr);
    let mut tampered = prefix.stdout.clone();
    let chunk_5 = tampered
        .split_inclusive(|&b| b == b'\n')
        .take(5 * 8)
        .map(<[u8]>::len)
        .sum::<usize>();
    tampered[chunk_5 + 3] ^= 1;
    std::fs::write(&out, &tampered).unwrap();

    let run = wrun_in(home.path(), &["resume", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = format!(
        "holds the output of the first 5 chunks ({}), checked against the journal: kept, and \
         appended to; from byte {chunk_5} on it does not match the journal's output of chunk 5: \
         the rest ({} bytes) is rewritten\n",
        bytesize::ByteSize(chunk_5 as u64),
        tampered.len() - chunk_5
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    let finished = std::fs::read(&out).unwrap();
    let assembled = wrun_in(home.path(), &["output", "1"], None);
    assert_eq!(finished, assembled.stdout, "the journal's output");
    let input = std::fs::read(&input).unwrap();
    assert_eq!(finished.iter().filter(|&&b| b == b'\n').count(), 1200);
    assert_records_in_order(&finished, &input, "the rewritten output");
}
