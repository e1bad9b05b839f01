//! What a job keeps on disk: a resume never shrinks the `-o` file it
//! appends to; a task keeps only the snapshot it would resume from; a
//! store that cannot take a snapshot does not fail the job.

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::journal::work_args_with;
use crate::support::{spawn_wrun, status_json, wait_until, wrun_binary, wrun_in};

/// 600 records of about 800 bytes: 150 chunks of 4.
fn long_lines(dir: &Path) -> PathBuf {
    let text: String = (0..600)
        .map(|i| format!("record {i:04} {}\n", "acgt".repeat(190 + i % 20)))
        .collect();
    let path = dir.join("in.txt");
    std::fs::write(&path, text).unwrap();
    path
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
    let args = work_args_with(&input, &out, "30000");
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
    let args = work_args_with(&input, &out, "7500");
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

/// The chaos guest `sdk_step_dirty.wat` (shared/chaos), scaled down: every
/// `wrun_step` rewrites the same 8 MiB (128 pages, not 1,024) with a new
/// value, so every snapshot stores them all again; it is done after
/// `steps` steps.
fn step_dirty(dir: &Path, steps: u32) -> PathBuf {
    step_dirty_with(dir, steps, "")
}

/// [`step_dirty`] whose record call first dirties the same 8 MiB (with
/// 0xff), so the very first snapshot, which is never held back, already
/// has them to store.
fn step_dirty_from_the_record(dir: &Path, steps: u32) -> PathBuf {
    step_dirty_with(
        dir,
        steps,
        "(memory.fill (i32.const 131072) (i32.const 255) (i32.const 8388608))",
    )
}

/// The module of [`step_dirty`], running `on_record` in its record call.
fn step_dirty_with(dir: &Path, steps: u32, on_record: &str) -> PathBuf {
    let wat = format!(
        r#"(module
  (import "wrun" "emit" (func $emit (param i32 i32)))
  (import "wrun" "log" (func $log (param i32 i32)))
  (import "wrun" "error" (func $error (param i32 i32)))
  (memory (export "memory") 130)
  (global $n (mut i32) (i32.const 0))
  (func (export "wrun_reserve") (param $len i32) (result i32) (local $need i32)
    (local.set $need (i32.add (i32.shr_u (i32.add (local.get $len) (i32.const 65535)) (i32.const 16)) (i32.const 2)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1)) (then (return (i32.const 0))))))
    (i32.const 65536))
  (func (export "wrun_init") (param i32) (result i32) (i32.const 0))
  (func (export "wrun_record") (param $off i32) (param $len i32) (result i32) {on_record} (i32.const 0))
  (func (export "wrun_step") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (memory.fill (i32.const 131072) (global.get $n) (i32.const 8388608))
    (i32.lt_u (global.get $n) (i32.const {steps})))
  (func (export "wrun_finish") (result i32) (i32.const 0))
  (@custom "wrun" "abi=1\nkind=task\n"))"#
    );
    let path = dir.join(format!("step-dirty-{steps}-{}.wasm", on_record.len()));
    std::fs::write(&path, wat::parse_str(wat).expect("valid wat")).unwrap();
    path
}

/// A one-record input: one chunk.
fn one_record(dir: &Path) -> PathBuf {
    let path = dir.join("one.txt");
    std::fs::write(&path, "go\n").unwrap();
    path
}

fn dirty_args<'a>(module: &'a Path, input: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "submit",
        module.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--format",
        "lines",
        "--checkpoint-every",
        "1",
        "-o",
        out.to_str().unwrap(),
    ]
}

/// Bytes under `$WRUN_HOME/store/blobs` (snapshots, modules, cached
/// compilations).
fn blob_bytes(home: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|entry| match entry.metadata() {
                Ok(meta) if meta.is_dir() => walk(&entry.path()),
                Ok(meta) => meta.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(&home.join("store/blobs"))
}

/// What one snapshot of the dirty guest stores: its 128 pages and a
/// manifest.
const SNAPSHOT: u64 = 8 << 20;

#[test]
fn superseded_snapshots_are_deleted_and_the_store_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // Steps enough to outlast the test's patience many times over.
    let module = step_dirty(dir.path(), u32::MAX);
    let input = one_record(dir.path());
    let out = dir.path().join("out.txt");
    let args = dirty_args(&module, &input, &out);
    let mut child = spawn_wrun(home.path(), &args);
    // Modules and cached compilations, before any snapshot.
    let mut seen = HashSet::new();
    let mut largest = 0;
    wait_until("8 snapshots were committed", || {
        if home.path().join("journal.db").exists()
            && status_json(home.path(), None)
                .as_array()
                .is_some_and(|jobs| !jobs.is_empty())
            && let Some(digest) =
                status_json(home.path(), Some("1"))["tasks"][0]["snapshot"]["blake3"].as_str()
        {
            seen.insert(digest.to_owned());
        }
        largest = largest.max(blob_bytes(home.path()));
        seen.len() >= 8
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Without collection the store would hold all 8 (64 MiB and more);
    // at any moment it holds the committed snapshot, at most one written
    // since, one being written, and the modules.
    assert!(
        largest < 3 * SNAPSHOT + (4 << 20),
        "the store grew to {largest} bytes"
    );
    let detail = status_json(home.path(), Some("1"));
    let kept = detail["snapshot_bytes"].as_u64().unwrap();
    assert!(
        (SNAPSHOT..SNAPSHOT + (1 << 20)).contains(&kept),
        "one snapshot's bytes: {kept}"
    );
    let run = wrun_in(home.path(), &["status", "1"], None);
    assert!(
        run.stdout_text().contains("\n  snapshots 8."),
        "{}",
        run.stdout_text()
    );
    assert!(blob_bytes(home.path()) < 2 * SNAPSHOT + (4 << 20));
}

#[test]
fn a_finished_chunk_keeps_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let module = step_dirty(dir.path(), 40);
    let input = one_record(dir.path());
    let out = dir.path().join("out.txt");
    let run = wrun_in(home.path(), &dirty_args(&module, &input, &out), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let detail = status_json(home.path(), Some("1"));
    assert_eq!(detail["snapshot_bytes"], 0, "{detail}");
    assert!(
        blob_bytes(home.path()) < SNAPSHOT,
        "no snapshot is left in the store"
    );
}

/// A store that cannot take a snapshot: every file `wrun` writes is
/// limited to 4 MiB (`RLIMIT_FSIZE`, the kernel's per-process file size
/// limit, with `SIGXFSZ` ignored so that a write past it fails with
/// `EFBIG`), which a snapshot of 8 MiB exceeds while the journal, the
/// output and the modules stay under it. It fails the same write a full
/// disk (`ENOSPC`) fails, deterministically and without root or a mount.
#[test]
fn a_snapshot_the_store_cannot_hold_is_skipped_and_the_chunk_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // Dirty from the first call on: the first snapshot is due at once and
    // fails. (Were it small and stored, the next periodic one would wait
    // 9 times its cost, which on a loaded machine could outlast the task.)
    let module = step_dirty_from_the_record(dir.path(), 40);
    let input = one_record(dir.path());
    let out = dir.path().join("out.txt");
    let mut command = Command::new(wrun_binary());
    command
        .env("WRUN_HOME", home.path())
        .args(dirty_args(&module, &input, &out))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4 << 20,
                rlim_max: 4 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0
                || libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    let mut exited = None;
    let child = std::sync::Mutex::new(child);
    wait_until("wrun exits", || {
        exited = child.lock().unwrap().try_wait().unwrap();
        exited.is_some()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(
        &mut child.lock().unwrap().stderr.take().unwrap(),
        &mut stderr,
    )
    .unwrap();
    assert_eq!(exited.unwrap().code(), Some(0), "{stderr}");
    let job = &status_json(home.path(), None)[0];
    assert_eq!(job["state"], "done", "{job}");
    let detail = status_json(home.path(), Some("1"));
    assert_eq!(detail["tasks"][0]["attempts"], 1, "not retried: {detail}");
    let logs = wrun_in(home.path(), &["logs", "1"], None).stdout_text();
    assert!(
        logs.contains("wrun: a snapshot could not be stored (")
            && logs.contains("the task goes on without it"),
        "{logs}"
    );
    // Nothing half-written is left behind.
    assert!(blob_bytes(home.path()) < 4 << 20);
}
