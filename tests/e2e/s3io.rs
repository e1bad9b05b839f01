//! A job's input and output on S3 (`--input s3://BUCKET/KEY`, `-o
//! s3://BUCKET/KEY`), against the real S3 API server of `.ci/s3-up.sh`
//! (see [`crate::s3`]): the input read in ranged blocks, decompressed as a
//! file is, recorded by size and ETag, and refused by a retry once it
//! changed; the output one multipart upload, completed only when its job
//! succeeds.

use std::io::Write;
use std::path::Path;

use crate::cluster::Cluster;
use crate::data::{probe_line, write_reference};
use crate::journal::probe_job;
use crate::s3::{S3, assert_no_secret, large_job};
use crate::support::{
    GC_CONTENT, TASK_PROBE, assert_golden, sample, spawn_wrun, status_json, wait_until, wrun,
    wrun_in,
};

/// `path`, gzip-compressed into `to`.
fn gzip(path: &Path, to: &Path) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(&std::fs::read(path).unwrap()).unwrap();
    encoder.finish().unwrap();
}

/// An input of several ranged blocks (12 MB: two 8 MiB reads), plain and
/// gzip-compressed, and a small FASTA file whose format is found from its
/// key: each gives from its URL what it gives from the file, in local mode
/// and through a broker; the job records the URL, size and ETag, and no
/// credential.
#[test]
fn an_s3_input_gives_what_its_file_gives() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let big = dir.path().join("big.txt");
    let lines: String = (0..400_000).map(|i| format!("line {i:>24}\n")).collect();
    std::fs::write(&big, &lines).unwrap();
    let big_gz = dir.path().join("big.txt.gz");
    gzip(&big, &big_gz);
    s3.put(&bucket, "in/big.txt", &big);
    s3.put(&bucket, "in/big.txt.gz", &big_gz);

    let from_file = dir.path().join("from-file.txt");
    let mut args = large_job(&big, &from_file);
    args.insert(1, "--no-journal");
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = std::fs::read(&from_file).unwrap();
    for key in ["in/big.txt", "in/big.txt.gz"] {
        let url = format!("s3://{bucket}/{key}");
        let out = dir.path().join("from-s3.txt");
        let mut args = large_job(&big, &out);
        args[3] = &url;
        let run = wrun_in(&home, &args, None);
        assert_eq!(run.code, 0, "{url}: {}", run.stderr);
        assert!(std::fs::read(&out).unwrap() == expected, "{url}");
    }
    let status = wrun_in(&home, &["status", "1", "--json"], None);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_no_secret("wrun status --json", &status.stdout);
    let detail: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(detail["job"]["input"], format!("s3://{bucket}/in/big.txt"));
    assert_eq!(detail["job"]["input_bytes"], lines.len());
    let journal = std::fs::read(home.join("journal.db")).unwrap();
    assert_no_secret("the journal", &journal);

    let (fasta, gc) = sample();
    let fasta_gz = dir.path().join("reads.fa.gz");
    gzip(&fasta, &fasta_gz);
    s3.put(&bucket, "reads.fa.gz", &fasta_gz);
    let url = format!("s3://{bucket}/reads.fa.gz");
    let cluster = Cluster::start(2);
    let run = cluster.wrun(&["submit", GC_CONTENT, "--input", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), gc, "through a broker");
    assert_no_secret("the broker's log", cluster.broker.log().as_bytes());
}

/// A retry re-reads the recorded input: an unchanged object passes (the
/// chunk fails again, as it did), a changed one is refused with exit 8 as
/// a changed file is, in the same words (golden).
#[test]
fn a_changed_object_refuses_retry_as_a_changed_file_does() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let mut seen = String::new();

    let home = dir.path().join("file");
    let (input, run) = probe_job(&home, dir.path(), "file", &[], &["fail-if", "X"]);
    assert_eq!(run.code, 16, "{}", run.stderr);
    std::fs::write(&input, "a\nb\nX\nc\nd\ne\n").unwrap();
    let run = wrun_in(&home, &["retry", "1"], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    seen.push_str(&run.stderr);

    let home = dir.path().join("object");
    s3.put(&bucket, "in.txt", &input);
    let url = format!("s3://{bucket}/in.txt");
    let run = wrun_in(
        &home,
        &[
            "submit",
            TASK_PROBE,
            "--input",
            &url,
            "--chunk-records",
            "2",
            "-j",
            "1",
            "--",
            "fail-if",
            "X",
        ],
        None,
    );
    assert_eq!(run.code, 16, "{}", run.stderr);
    let run = wrun_in(&home, &["retry", "1"], None);
    assert_eq!(run.code, 16, "the same object is accepted: {}", run.stderr);
    let changed = dir.path().join("changed.txt");
    std::fs::write(&changed, "a\nb\nX\nc\n").unwrap();
    s3.put(&bucket, "in.txt", &changed);
    let run = wrun_in(&home, &["retry", "1"], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    seen.push_str(&run.stderr);
    let seen = seen
        .replace(&dir.path().display().to_string(), "<tmp>")
        .replace(&bucket, "<bucket>");
    assert_golden("input-changed.stderr", &seen);
}

/// A missing object or bucket is an unreadable input (exit 3, as a
/// missing file is), named by its URL, before anything is recorded.
#[test]
fn a_missing_object_or_bucket_is_exit_3_naming_the_url() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let home = tempfile::tempdir().unwrap();
    let mut seen = String::new();
    for url in [
        format!("s3://{bucket}/absent.fa"),
        format!("s3://{}/reads.fa", s3.fresh_name()),
        format!("s3://{bucket}"),
    ] {
        let run = wrun_in(home.path(), &["submit", GC_CONTENT, "--input", &url], None);
        assert_eq!(run.code, 3, "{url}: {}", run.stderr);
        assert!(run.stderr.contains(&url), "{url}: {}", run.stderr);
        assert_no_secret("the error", run.stderr.as_bytes());
        seen.push_str(&run.stderr);
    }
    let seen = regex::Regex::new(r"wrun-test-\d+-\d+")
        .unwrap()
        .replace_all(&seen, "<bucket>");
    assert_golden("input-s3-missing.stderr", &seen);
}

/// `-o s3://BUCKET/KEY`: the output is one multipart upload, completed
/// when the job succeeds (the bytes of `-o FILE`, compressed too, and of
/// `wrun output JOB -o s3://...`), aborted when it fails: no object at the
/// key, and no upload left.
#[test]
fn an_s3_output_appears_only_when_its_job_succeeds() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let big = dir.path().join("big.txt");
    let lines: String = (0..400_000).map(|i| format!("line {i:>24}\n")).collect();
    std::fs::write(&big, &lines).unwrap();
    for name in ["out.txt", "out.txt.gz"] {
        let file = dir.path().join(name);
        let url = format!("s3://{bucket}/{name}");
        let mut args = large_job(&big, &file);
        args.insert(1, "--no-journal");
        let run = wrun(&args, None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mut args = large_job(&big, &file);
        args[9] = &url;
        let run = wrun_in(&home, &args, None);
        assert_eq!(run.code, 0, "{url}: {}", run.stderr);
        assert!(
            s3.get(&bucket, name) == std::fs::read(&file).unwrap(),
            "{url}"
        );
    }
    let again = format!("s3://{bucket}/again.txt");
    let run = wrun_in(&home, &["output", "1", "-o", &again], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(s3.get(&bucket, "again.txt") == s3.get(&bucket, "out.txt"));

    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\nX\nc\nd\n").unwrap();
    let failed = format!("s3://{bucket}/failed.txt");
    let run = wrun_in(
        &home,
        &[
            "submit",
            TASK_PROBE,
            "--input",
            input.to_str().unwrap(),
            "--chunk-records",
            "2",
            "-o",
            &failed,
            "--",
            "fail-if",
            "X",
        ],
        None,
    );
    assert_eq!(run.code, 16, "{}", run.stderr);
    assert_eq!(s3.keys(&bucket, "failed"), Vec::<String>::new());
    assert_eq!(s3.uploads(&bucket), Vec::<String>::new(), "aborted");
}

/// A job SIGKILLed while its output is uploading (parts sent, chunks left)
/// leaves no object at the key, only an uncompleted upload; `wrun resume`
/// uploads the whole output again, to the bytes of an uninterrupted run.
#[test]
fn a_job_killed_mid_upload_leaves_no_object_and_resumes_to_the_same_bytes() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let big = dir.path().join("big.txt");
    // 12 chunks of 1.5 MB, each 2.3 MB of output and a few hundred ms of
    // work on one core: the first 8 MiB part is sent after 4 chunks.
    let lines: String = (0..600_000).map(|i| format!("line {i:>24}\n")).collect();
    std::fs::write(&big, &lines).unwrap();
    let job = |out: &str| -> Vec<String> {
        let mut args: Vec<String> = large_job(&big, Path::new(out))
            .into_iter()
            .map(str::to_owned)
            .collect();
        let rounds = args.len() - 1;
        args[rounds] = "300".to_owned();
        args.splice(1..1, ["-j".to_owned(), "1".to_owned()]);
        args
    };
    let reference = dir.path().join("reference.txt");
    let mut args = job(reference.to_str().unwrap());
    args.insert(1, "--no-journal".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let url = format!("s3://{bucket}/out.txt");
    let args = job(&url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn_wrun(&home, &args);
    wait_until("5 chunks are done, 1 part uploaded", || {
        home.join("journal.db").exists()
            && status_json(&home, None)
                .get(0)
                .and_then(|job| job["tasks"]["done"].as_u64())
                .is_some_and(|done| done >= 5)
    });
    child.kill().expect("SIGKILL wrun");
    child.wait().unwrap();
    let done = status_json(&home, None)[0]["tasks"]["done"].as_u64();
    assert!(done < Some(12), "killed before the end: {done:?} done");
    assert_eq!(s3.keys(&bucket, "out"), Vec::<String>::new(), "no object");
    assert_eq!(s3.uploads(&bucket), ["out.txt"], "an uncompleted upload");

    let run = wrun_in(&home, &["resume", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(s3.get(&bucket, "out.txt") == std::fs::read(&reference).unwrap());
}

/// `--keep-going -o s3://...`: a job with a failed chunk completes its
/// upload with the chunks that succeeded, the bytes its `-o FILE` holds,
/// and is still reported failed (exit 16). `wrun output` of a job that
/// stopped at a failed chunk writes nothing to an S3 key and says so.
#[test]
fn an_s3_output_under_keep_going_holds_the_chunks_that_succeeded() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.txt");
    let url = format!("s3://{bucket}/out.txt");
    for (name, out) in [("file", file.to_str().unwrap()), ("object", url.as_str())] {
        let home = dir.path().join(name);
        let (_, run) = probe_job(
            &home,
            dir.path(),
            name,
            &["--keep-going", "-o", out],
            &["fail-if", "X"],
        );
        assert_eq!(run.code, 16, "{name}: {}", run.stderr);
    }
    // Chunks of two records; the second (b'X', c) failed.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nb\nd\n");
    assert!(s3.get(&bucket, "out.txt") == std::fs::read(&file).unwrap());
    assert_eq!(s3.uploads(&bucket), Vec::<String>::new());

    let home = dir.path().join("stopped");
    let (_, run) = probe_job(&home, dir.path(), "stopped", &[], &["fail-if", "X"]);
    assert_eq!(run.code, 16, "{}", run.stderr);
    let partial = format!("s3://{bucket}/partial.txt");
    let run = wrun_in(&home, &["output", "1", "-o", &partial], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert_eq!(
        run.stderr.replace(&bucket, "<bucket>"),
        "wrun: error: job 1: chunk 1 is failed; nothing was written to \
         s3://<bucket>/partial.txt, which gets the whole output or none\n"
    );
    assert_eq!(s3.keys(&bucket, "partial"), Vec::<String>::new());
    assert_eq!(s3.uploads(&bucket), Vec::<String>::new(), "aborted");
}

/// `--data NAME=s3://BUCKET/KEY`: a task reads the object (12 MiB: two
/// ranged reads) exactly as it reads the same file, in local mode and
/// through a broker (which checks the object again); the job records the
/// URL with its size and ETag, and no credential.
#[test]
fn an_s3_data_file_reads_as_its_file_does() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_reference(dir.path(), 12 << 20);
    s3.put(&bucket, "ref.bin", &path);
    let url = format!("s3://{bucket}/ref.bin");
    let expected = probe_line("ref", &bytes).repeat(5);
    for (name, grant) in [
        ("file", format!("ref={}", path.display())),
        ("object", format!("ref={url}")),
    ] {
        let home = dir.path().join(name);
        let (_, run) = probe_job(
            &home,
            dir.path(),
            name,
            &["--data", &grant],
            &["data", "ref"],
        );
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.stdout_text(), expected, "{name}");
    }
    let journal = dir.path().join("object/journal.db");
    assert_no_secret("the journal", &std::fs::read(&journal).unwrap());
    let spec = wrun_journal::Journal::open(&journal)
        .unwrap()
        .job(1)
        .unwrap()
        .spec;
    let data = &spec.data[0];
    assert_eq!((data.path.as_str(), data.size), (url.as_str(), 12 << 20));
    assert!(data.etag.is_some(), "the ETag is recorded");

    let cluster = Cluster::start(1);
    let input = dir.path().join("in.txt");
    let run = cluster.wrun(&[
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--data",
        &format!("ref={url}"),
        "--",
        "data",
        "ref",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), expected, "through a broker");
}

/// A retry checks an S3 data file's size and ETag: the same object is
/// accepted, a changed one refused with exit 8 as a changed file is; a
/// missing object or bucket is exit 3 naming the URL (golden).
#[test]
fn a_changed_s3_data_file_refuses_retry_and_a_missing_one_is_exit_3() {
    let Some(s3) = S3::from_env() else { return };
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (path, bytes) = write_reference(dir.path(), 4096);
    s3.put(&bucket, "ref.bin", &path);
    let grant = format!("ref=s3://{bucket}/ref.bin");
    let flags = ["--data", grant.as_str()];
    let (_, run) = probe_job(&home, dir.path(), "data", &flags, &["fail-if", "X"]);
    assert_eq!(run.code, 16, "{}", run.stderr);
    let run = wrun_in(&home, &["retry", "1"], None);
    assert_eq!(run.code, 16, "the same object is accepted: {}", run.stderr);

    let mut changed = bytes;
    changed[100] ^= 1;
    let changed_path = dir.path().join("changed.bin");
    std::fs::write(&changed_path, &changed).unwrap();
    s3.put(&bucket, "ref.bin", &changed_path);
    let run = wrun_in(&home, &["retry", "1"], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    let mut seen = run.stderr;
    let detail = status_json(&home, Some("1"));
    assert_eq!(detail["job"]["runs"], 2, "a refused retry does not run");

    for url in [
        format!("s3://{bucket}/absent.bin"),
        format!("s3://{}/ref.bin", s3.fresh_name()),
    ] {
        let run = wrun_in(
            &home,
            &["submit", TASK_PROBE, "--data", &format!("ref={url}")],
            None,
        );
        assert_eq!(run.code, 3, "{url}: {}", run.stderr);
        assert!(run.stderr.contains(&url), "{url}: {}", run.stderr);
        assert_no_secret("the error", run.stderr.as_bytes());
        seen.push_str(&run.stderr);
    }
    let seen = regex::Regex::new(r"wrun-test-\d+-\d+")
        .unwrap()
        .replace_all(&seen, "<bucket>");
    assert_golden("data-s3.stderr", &seen);
}
