//! Paired reads (`--mate`, `--paired interleaved`) on the real pairs of
//! Debian's `bowtie2-examples` (`reads_1.fq.gz`, `reads_2.fq.gz`: 10,000
//! pairs of simulated reads).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::formats::bowtie2;
use crate::support::{
    COMMAND_PROBE, TASK_PROBE, assert_golden, spawn_wrun, status_json, wait_until, wrun, wrun_in,
};
use wrun_tests::PAIR_STATS;

/// The two files of pairs.
fn reads() -> (PathBuf, PathBuf) {
    (
        bowtie2("reads/reads_1.fq.gz"),
        bowtie2("reads/reads_2.fq.gz"),
    )
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A gzipped file's FASTQ records, each with its line breaks.
fn records(path: &Path) -> Vec<String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks(4).map(|r| r.join("\n") + "\n").collect()
}

/// `seqkit ARGS PATH`'s standard output.
fn seqkit(args: &[&str], path: &Path) -> String {
    let output = Command::new("seqkit")
        .args(args)
        .arg(path)
        .output()
        .expect("CI installs seqkit; it must be on PATH");
    assert!(output.status.success(), "seqkit {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

/// The length of the longest suffix of `first` equal to a prefix of the
/// reverse complement of `second`, at least `min`; 0 when none is.
fn overlap(first: &str, second: &str, min: usize) -> usize {
    let first = first.to_ascii_uppercase().into_bytes();
    let rc: Vec<u8> = second
        .to_ascii_uppercase()
        .bytes()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'T' => b'A',
            b'C' => b'G',
            b'G' => b'C',
            other => other,
        })
        .collect();
    let mut longest = 0;
    for k in min..=first.len().min(rc.len()) {
        if first[first.len() - k..] == rc[..k] {
            longest = k;
        }
    }
    longest
}

/// What pair-stats must print for the bowtie2 pairs: `seqkit fx2tab -n -i
/// -l -g` of each file, pasted, with the overlap (at least `min` bases)
/// computed here from `seqkit seq -s` of each.
fn oracle(min: usize) -> String {
    let (r1, r2) = reads();
    let table = |path: &Path| seqkit(&["fx2tab", "-n", "-i", "-l", "-g"], path);
    let sequences = |path: &Path| seqkit(&["seq", "-s", "-w", "0"], path);
    let (t1, t2, s1, s2) = (table(&r1), table(&r2), sequences(&r1), sequences(&r2));
    let rows = t1.lines().zip(t2.lines()).zip(s1.lines().zip(s2.lines()));
    let mut expected = String::new();
    for ((a, b), (seq1, seq2)) in rows {
        let a: Vec<&str> = a.split('\t').collect();
        let b: Vec<&str> = b.split('\t').collect();
        assert_eq!(a[0], b[0], "the files pair up");
        expected.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            a[0],
            a[1],
            b[1],
            a[2],
            b[2],
            overlap(seq1, seq2, min)
        ));
    }
    assert_eq!(expected.lines().count(), 10_000);
    expected
}

/// The pairs interleaved into one file in `dir`.
fn interleaved(dir: &Path) -> PathBuf {
    let (r1, r2) = reads();
    let path = dir.join("interleaved.fq");
    let text: String = records(&r1)
        .iter()
        .zip(records(&r2))
        .map(|(a, b)| format!("{a}{b}"))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// pair-stats over the bowtie2 pairs prints what seqkit says of each
/// mate, with the overlap computed independently, however the pairs are
/// chunked and run: `-j 1`, `-j 2`, a pair per chunk, by weight (both
/// mates' residues), and from the same pairs interleaved in one file.
#[test]
fn pair_stats_equals_the_seqkit_oracle() {
    let expected = oracle(10);
    let overlapping = expected.lines().filter(|l| !l.ends_with("\t0")).count();
    assert!(overlapping > 100, "{overlapping} pairs overlap");
    let (r1, r2) = reads();
    let paired = [
        "submit",
        PAIR_STATS,
        "--input",
        text(&r1),
        "--mate",
        text(&r2),
    ];
    for options in [
        &["-j", "1"][..],
        &["-j", "2"],
        &["--chunk-records", "1"],
        &["--chunk-weight", "20000"],
    ] {
        let run = wrun(&[&paired[..], options].concat(), None);
        assert_eq!(run.code, 0, "{options:?}: {}", run.stderr);
        assert!(run.stdout_text() == expected, "{options:?}: differs");
    }
    let dir = tempfile::tempdir().unwrap();
    let one = interleaved(dir.path());
    let run = wrun(
        &[
            "submit",
            PAIR_STATS,
            "--input",
            text(&one),
            "--paired",
            "interleaved",
            "--chunk-records",
            "7",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout_text() == expected, "interleaved: differs");
}

/// A WASI command reads its chunk as interleaved FASTQ on stdin: the
/// chunks, concatenated, are the pairs interleaved.
#[test]
fn a_command_reads_interleaved_pairs_on_stdin() {
    let (r1, r2) = reads();
    let dir = tempfile::tempdir().unwrap();
    let expected = std::fs::read_to_string(interleaved(dir.path())).unwrap();
    let run = wrun(
        &[
            "submit",
            COMMAND_PROBE,
            "--input",
            text(&r1),
            "--mate",
            text(&r2),
            "--format",
            "fastq",
            "--chunk-records",
            "333",
            "--",
            "cat",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout_text() == expected, "stdin is not the pairs");
}

/// Every call gets two mates with matching names (the probe fails
/// otherwise) and every chunk whole pairs, whatever bounds the chunks: a
/// record count (of pairs), bytes or weight (both mates'), passed in the
/// middle of a pair.
#[test]
fn every_chunk_holds_whole_pairs_with_matching_names() {
    let (r1, r2) = reads();
    let names: Vec<String> = (1..=10_000).map(|i| format!("r{i}")).collect();
    for (options, most) in [
        (["--chunk-records", "3"], Some(3)),
        (["--chunk-bytes", "1000"], None),
        (["--chunk-weight", "777"], None),
    ] {
        let home = tempfile::tempdir().unwrap();
        let args = [
            &[
                "submit",
                TASK_PROBE,
                "--input",
                text(&r1),
                "--mate",
                text(&r2),
            ][..],
            &options,
            &["--", "mates"],
        ]
        .concat();
        let run = wrun_in(home.path(), &args, None);
        assert_eq!(run.code, 0, "{options:?}: {}", run.stderr);
        let out = run.stdout_text();
        let seen: Vec<&str> = out.lines().filter(|l| !l.starts_with("pairs=")).collect();
        assert_eq!(seen, names, "{options:?}");
        let per_chunk: Vec<u64> = out
            .lines()
            .filter_map(|l| l.strip_prefix("pairs="))
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(per_chunk.len() > 10, "{options:?}: {per_chunk:?}");
        assert!(
            per_chunk
                .iter()
                .all(|&n| n > 0 && most.is_none_or(|m| n <= m))
        );
        let status = status_json(home.path(), Some("1"));
        let tasks = status["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), per_chunk.len(), "{options:?}");
        for (task, pairs) in tasks.iter().zip(&per_chunk) {
            assert_eq!(task["records"].as_u64(), Some(2 * pairs), "{task}");
        }
    }
}

/// A mate file one record short, or with a mate misnamed, and an
/// interleaved file with an odd record count fail with exit 3 naming the
/// pair and both lines (or the record left without a mate).
#[test]
fn files_that_are_not_pairs_fail_with_exit_3_naming_the_records() {
    let (r1, r2) = reads();
    let dir = tempfile::tempdir().unwrap();
    let mut mates = records(&r2);
    let short = dir.path().join("short_2.fq");
    std::fs::write(&short, mates[..mates.len() - 1].concat()).unwrap();
    mates[4] = mates[4].replacen("@r5", "@r5x extra", 1);
    let renamed = dir.path().join("renamed_2.fq");
    std::fs::write(&renamed, mates.concat()).unwrap();
    let odd = interleaved(dir.path());
    let text_of_odd = std::fs::read_to_string(&odd).unwrap();
    let cut = text_of_odd.trim_end().rsplitn(5, '\n').last().unwrap();
    std::fs::write(&odd, format!("{cut}\n")).unwrap();

    let mut report = String::new();
    for (what, pairing) in [
        ("mate one record short", ["--mate", text(&short)]),
        ("mate misnamed", ["--mate", text(&renamed)]),
        ("interleaved, odd", ["--paired", "interleaved"]),
    ] {
        let input = match pairing[0] {
            "--mate" => text(&r1),
            _ => text(&odd),
        };
        let args = [
            &["submit", PAIR_STATS, "--input", input][..],
            &pairing,
            &["--chunk-records", "100"],
        ]
        .concat();
        let run = wrun(&args, None);
        assert_eq!(run.code, 3, "{what}: {}", run.stderr);
        let stderr = run
            .stderr
            .replace(text(dir.path()), "<tmp>")
            .replace(text(r1.parent().unwrap()), "<reads>");
        report.push_str(&format!("# {what}\n{stderr}"));
    }
    assert_golden("pairs-not-pairs.stderr", &report);
}

/// A paired job killed (SIGKILL) mid-way resumes to the output of an
/// uninterrupted run; the job records both files, `wrun status` shows
/// both, and a changed mate is refused like a changed input (exit 8).
#[test]
fn a_killed_paired_job_resumes_to_the_same_output() {
    let (r1, r2) = reads();
    let dir = tempfile::tempdir().unwrap();
    // 400 pairs, about 1 ms of work per record.
    let first = dir.path().join("first_1.fq");
    let second = dir.path().join("first_2.fq");
    std::fs::write(&first, records(&r1)[..400].concat()).unwrap();
    std::fs::write(&second, records(&r2)[..400].concat()).unwrap();
    let args = |out: &Path| {
        [
            "submit",
            TASK_PROBE,
            "--input",
            text(&first),
            "--mate",
            text(&second),
            "--format",
            "fastq",
            "--chunk-records",
            "4",
            "-j",
            "1",
            "-o",
            text(out),
            "--",
            "work",
            "3000",
        ]
        .map(str::to_owned)
    };
    let expected = dir.path().join("expected.txt");
    let run = wrun(&args(&expected).each_ref().map(String::as_str), None);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let out = dir.path().join("out.txt");
    let mut child = spawn_wrun(home, &args(&out).each_ref().map(String::as_str));
    let done = |jobs: &Value| jobs[0]["tasks"]["done"].as_u64().unwrap_or(0);
    wait_until("a chunk is done", || {
        if !home.join("journal.db").exists() {
            return false;
        }
        let jobs = status_json(home, None);
        jobs.as_array().is_some_and(|jobs| !jobs.is_empty()) && done(&jobs) > 0
    });
    child.kill().expect("SIGKILL wrun");
    child.wait().unwrap();
    let jobs = status_json(home, None);
    assert_eq!(jobs[0]["state"], "interrupted", "{jobs}");

    // Both files recorded, both shown.
    let job = status_json(home, Some("1"));
    assert_eq!(job["spec"]["pairs"]["mate"]["path"], text(&second), "{job}");
    let shown = wrun_in(home, &["status", "1"], None);
    assert!(
        shown
            .stdout_text()
            .contains(&format!("  mate      {} (", text(&second))),
        "{}",
        shown.stdout_text()
    );

    // A changed mate is refused; restored, the job goes on.
    let modified = std::fs::metadata(&second).unwrap().modified().unwrap();
    let later = modified + std::time::Duration::from_secs(5);
    let set = |time| {
        std::fs::File::options()
            .write(true)
            .open(&second)
            .unwrap()
            .set_modified(time)
            .unwrap()
    };
    set(later);
    let refused = wrun_in(home, &["resume", "1"], None);
    assert_eq!(refused.code, 8, "{}", refused.stderr);
    assert!(refused.stderr.contains(text(&second)), "{}", refused.stderr);
    set(modified);

    let resumed = wrun_in(home, &["resume", "1"], None);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&expected).unwrap(),
        "the resumed output differs"
    );
}

/// Through a broker and two nodes (the client interleaves and checks the
/// pairs, the broker checks them again), the output is the local one, and
/// the broker's job records both files.
#[test]
fn a_broker_runs_pairs_as_a_local_run_does() {
    let (r1, r2) = reads();
    let cluster = Cluster::start(2);
    let run = cluster.wrun(&[
        "submit",
        PAIR_STATS,
        "--input",
        text(&r1),
        "--mate",
        text(&r2),
        "--chunk-records",
        "500",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout_text() == oracle(10), "differs from the oracle");
    let status = cluster.wrun(&["status", "1", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["spec"]["pairs"]["mate"]["path"], text(&r2));
    let tasks = status["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 20);
    assert!(tasks.iter().all(|t| t["records"] == 1000), "{status}");
}
