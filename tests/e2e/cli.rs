//! The `wrun` binary as a user runs it: outputs, messages and exit codes.

use std::io::Write;
use std::path::Path;

use crate::support::{
    COMMAND_PROBE, FASTA_PLUGIN, GC_CONTENT, TASK_PROBE, WC, assert_golden, repo, sample,
    status_json, wrun, wrun_in,
};

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn temp_file(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> std::path::PathBuf {
    let file = dir.path().join(name);
    std::fs::File::create(&file)
        .unwrap()
        .write_all(contents)
        .unwrap();
    file
}

#[test]
fn gc_content_output_is_the_same_for_any_workers_and_chunking() {
    let (fasta, expected) = sample();
    for extra in [
        &["-j", "1"][..],
        &["-j", "2"],
        &["-j", "2", "--chunk-records", "1"],
        &["-j", "2", "--chunk-records", "7"],
        &["-j", "2", "--chunk-bytes", "1KiB"],
        &["-j", "2", "--chunk-residues", "5000"],
        &["-j", "2", "--chunk-residues", "1", "--chunk-records", "3"],
        &[
            "-j",
            "3",
            "--chunk-bytes",
            "64KiB",
            "--fuel",
            "100000000000",
        ],
    ] {
        let mut args = vec!["submit", GC_CONTENT, "--input", path(&fasta)];
        args.extend_from_slice(extra);
        let run = wrun(&args, None);
        assert_eq!(run.code, 0, "{extra:?}: {}", run.stderr);
        assert_eq!(run.stdout_text(), expected, "{extra:?}");
    }
}

#[test]
fn gc_content_matches_seqkit_on_awkward_fasta() {
    // CRLF, blank lines, lowercase, empty records, no final newline: the
    // expected text is seqkit 2.3.0's `fx2tab -n -i -l -g` output.
    let dir = tempfile::tempdir().unwrap();
    let fasta = temp_file(
        &dir,
        "awkward.fasta",
        b">a desc\r\nACGTNN\r\nac\r\n\r\n>b\n>c x\nGGCC\n>s\nSSNNsGC\n>sp\nAC GT",
    );
    let run = wrun(
        &[
            "submit",
            GC_CONTENT,
            "--input",
            path(&fasta),
            "--chunk-records",
            "2",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout_text(),
        "a\t8\t37.50\nb\t0\t0.00\nc\t4\t100.00\ns\t7\t28.57\nsp\t5\t40.00\n"
    );
    if let Ok(seqkit) = std::process::Command::new("seqkit")
        .args(["fx2tab", "-n", "-i", "-l", "-g", path(&fasta)])
        .output()
    {
        assert_eq!(
            String::from_utf8_lossy(&seqkit.stdout),
            run.stdout_text(),
            "live seqkit"
        );
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs seqkit; it must be on PATH"
        );
    }
}

#[test]
fn gc_content_matches_live_seqkit_on_the_sample() {
    let (fasta, expected) = sample();
    match std::process::Command::new("seqkit")
        .args(["fx2tab", "-n", "-i", "-l", "-g", path(&fasta)])
        .output()
    {
        Ok(seqkit) => assert_eq!(String::from_utf8_lossy(&seqkit.stdout), expected),
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "CI installs seqkit; it must be on PATH"
        ),
    }
}

#[test]
fn a_crate_directory_is_built_then_run() {
    let (fasta, expected) = sample();
    // A target directory of its own, so the nested cargo never waits on the
    // one running these tests.
    let target = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(crate::support::wrun_binary());
    let output = command
        .args(["submit", "examples/gc-content", "--input", path(&fasta)])
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", target.path())
        .env("WRUN_HOME", home.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);

    // From another directory, under a `.cargo/config.toml` with other
    // flags for wasm: the same bytes, so the same job and one cache entry.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(elsewhere.path().join(".cargo")).unwrap();
    std::fs::write(
        elsewhere.path().join(".cargo/config.toml"),
        "[target.wasm32-wasip1]\nrustflags = [\"-C\", \"opt-level=1\"]\n",
    )
    .unwrap();
    let output = std::process::Command::new(crate::support::wrun_binary())
        .args([
            "submit",
            repo().join("examples/gc-content").to_str().unwrap(),
        ])
        .args(["--input", path(&fasta)])
        .current_dir(elsewhere.path())
        .env("CARGO_TARGET_DIR", target.path())
        .env("WRUN_HOME", home.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest =
        |job: &str| status_json(home.path(), Some(job))["spec"]["module"]["digest"].clone();
    assert_eq!(digest("1"), digest("2"));
    let cache = wrun_in(home.path(), &["cache", "ls", "--json"], None);
    let entries: serde_json::Value = serde_json::from_slice(&cache.stdout).unwrap();
    let gc_entries = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains("gc_content"))
        .count();
    assert_eq!(gc_entries, 1, "{entries}");
}

#[test]
fn wc_over_line_chunks_sums_to_wc_of_the_whole_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&"word ".repeat(i % 13));
        text.push_str(&format!("line\t{i}\n"));
    }
    text.push_str("no final newline");
    let input = temp_file(&dir, "big.txt", text.as_bytes());
    let run = wrun(
        &[
            "submit",
            WC,
            "--input",
            path(&input),
            "--format",
            "lines",
            "--chunk-bytes",
            "16KiB",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut sums = [0u64; 3];
    let mut chunks = 0;
    for line in run.stdout_text().lines() {
        chunks += 1;
        for (sum, field) in sums.iter_mut().zip(line.split(' ')) {
            *sum += field.parse::<u64>().unwrap();
        }
    }
    assert!(chunks > 10, "the input was split ({chunks} chunks)");
    let wc = std::process::Command::new("wc")
        .args(["-l", "-w", "-c"])
        .arg(&input)
        .output()
        .unwrap();
    let wc = String::from_utf8(wc.stdout).unwrap();
    let expected: Vec<u64> = wc
        .split_whitespace()
        .take(3)
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(sums.to_vec(), expected);
}

#[test]
fn standard_input_works_with_an_explicit_format() {
    let (fasta, expected) = sample();
    let run = wrun(
        &["submit", GC_CONTENT, "--input", "-", "--format", "fasta"],
        Some(&fasta),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), expected);
}

#[test]
fn fasta_without_a_header_is_an_input_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let fasta = temp_file(&dir, "bad.fa", b"\n\nACGT\n>a\nAC\n");
    let run = wrun(&["submit", GC_CONTENT, "--input", path(&fasta)], None);
    assert_eq!(run.code, 3);
    assert_eq!(
        run.stderr,
        format!(
            "wrun: error: job 1: {}: line 3: expected a FASTA header starting with '>', found 'A' (format builtin:fasta)\n",
            fasta.display()
        )
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn an_empty_input_writes_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let empty = temp_file(&dir, "empty.fa", b"");
    let run = wrun(&["submit", GC_CONTENT, "--input", path(&empty)], None);
    assert_eq!(run.code, 0);
    assert!(run.stdout.is_empty());
    assert_eq!(
        run.stderr,
        format!("wrun: warning: {}: no records\n", empty.display())
    );
}

#[test]
fn missing_input_and_bad_modules_have_their_own_codes() {
    let (fasta, _) = sample();
    let run = wrun(&["submit", GC_CONTENT, "--input", "no/such.fa"], None);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .starts_with("wrun: error: cannot open input no/such.fa: "),
        "{}",
        run.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let not_wasm = temp_file(&dir, "task.wasm", b"\x7fELF");
    let run = wrun(&["submit", path(&not_wasm), "--input", path(&fasta)], None);
    assert_eq!(run.code, 4);
    assert_eq!(
        run.stderr,
        format!(
            "wrun: error: {}: not a WebAssembly module (no \\0asm header)\n",
            not_wasm.display()
        )
    );

    let run = wrun(&["submit", FASTA_PLUGIN, "--input", path(&fasta)], None);
    assert_eq!(run.code, 4);
    assert!(
        run.stderr
            .ends_with("is a wrun splitter, but a task or command is needed here\n"),
        "{}",
        run.stderr
    );

    let run = wrun(
        &[
            "submit",
            GC_CONTENT,
            "--input",
            path(&fasta),
            "--format",
            "bam",
        ],
        None,
    );
    // A name wrun does not know is a bad command line.
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "wrun: error: unknown format \"bam\": use auto, lines, fasta, fastq, or the path of a splitter plugin .wasm\n"
    );

    let run = wrun(
        &[
            "submit",
            GC_CONTENT,
            "--input",
            path(&fasta),
            "--memory",
            "lots",
        ],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn each_task_outcome_has_its_exit_code_and_done_chunks_stay_done() {
    let dir = tempfile::tempdir().unwrap();
    // Chunk 0 is marked `ok:` (the probes echo it), chunk 1 fails.
    let input = temp_file(&dir, "in.txt", b"ok:one\nok:two\nthree\n");
    // (module, task arguments, wrun flags, exit code, message)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], i32, &'a str);
    let cases: &[Case] = &[
        (
            TASK_PROBE,
            &["panic"],
            &[],
            10,
            "trap: wasm `unreachable` instruction executed: panicked at",
        ),
        (
            TASK_PROBE,
            &["oob"],
            &[],
            10,
            "trap: out of bounds memory access",
        ),
        (
            TASK_PROBE,
            &["recurse"],
            &[],
            10,
            "trap: call stack exhausted",
        ),
        (
            TASK_PROBE,
            &["spin"],
            &["--timeout", "100ms"],
            12,
            "timed out after 100ms",
        ),
        (
            TASK_PROBE,
            &["hog"],
            &["--memory", "16MiB"],
            13,
            "memory limit of 16777216 bytes exceeded",
        ),
        (
            TASK_PROBE,
            &["flood"],
            &["--output-limit", "1MiB"],
            14,
            "output limit of 1048576 bytes exceeded",
        ),
        (
            COMMAND_PROBE,
            &["exit", "7"],
            &[],
            15,
            "exited with status 7",
        ),
        (
            TASK_PROBE,
            &["fail"],
            &[],
            16,
            "task failed: probe failed on purpose",
        ),
        (
            TASK_PROBE,
            &["bogus"],
            &[],
            16,
            "task rejected its arguments: unknown probe mode",
        ),
    ];
    for (module, task_args, flags, code, message) in cases {
        let home = tempfile::tempdir().unwrap();
        let mut args = vec![
            "submit",
            module,
            "--input",
            path(&input),
            "--format",
            "lines",
            "--chunk-records",
            "2",
        ];
        args.extend_from_slice(flags);
        args.push("--");
        args.extend_from_slice(task_args);
        let run = wrun_in(home.path(), &args, None);
        assert_eq!(run.code, *code, "{task_args:?}: {}", run.stderr);
        // Bad arguments are refused once, before any chunk runs.
        let expected = match task_args {
            ["bogus"] => format!("the task refuses its arguments [\"bogus\"]: {message}"),
            _ => format!(
                "wrun: error: job 1: {}: chunk 1 (records 3..3, bytes 14..20): {message}",
                input.display()
            ),
        };
        assert!(
            run.stderr.contains(&expected),
            "{task_args:?}: {}",
            run.stderr
        );
        if task_args == &["bogus"] {
            continue;
        }
        // What was done before the failure stays done, and is kept.
        let detail = status_json(home.path(), Some("1"));
        let tasks = detail["tasks"].as_array().unwrap();
        assert_eq!(tasks[0]["state"], "done", "{task_args:?}");
        assert_eq!(tasks[1]["state"], "failed", "{task_args:?}");
        let run = wrun_in(home.path(), &["output", "1"], None);
        assert_eq!(run.code, 8, "{task_args:?}: {}", run.stderr);
        assert_eq!(run.stdout_text(), "ok:one\nok:two\n", "{task_args:?}");
    }
}

/// Task arguments are checked once, before any chunk runs: a bad one is
/// the task's error (exit 16) with its message, and no job is recorded.
#[test]
fn bad_task_arguments_fail_once_before_any_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let input = temp_file(&dir, "in.txt", b"a\nb\nc\n");
    let home = tempfile::tempdir().unwrap();
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            TASK_PROBE,
            "--input",
            path(&input),
            "--format",
            "lines",
            "--chunk-records",
            "1",
            "--",
            "bogus",
        ],
        None,
    );
    assert_eq!(run.code, 16, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the task refuses its arguments [\"bogus\"]")
            && run.stderr.contains("unknown probe mode \"bogus\""),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrun retry"), "{}", run.stderr);
    assert_eq!(status_json(home.path(), None), serde_json::json!([]));
}

/// A job over standard input cannot be resumed: its messages do not
/// promise one, and say what works instead.
#[test]
fn a_job_over_standard_input_promises_no_resume() {
    let dir = tempfile::tempdir().unwrap();
    let input = temp_file(&dir, "in.txt", b"ok:one\nok:two\nspin\n");
    let home = tempfile::tempdir().unwrap();
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            TASK_PROBE,
            "--input",
            "-",
            "--format",
            "lines",
            "--chunk-records",
            "2",
            "--fuel",
            "1000000",
            "--",
            "spin",
        ],
        Some(&input),
    );
    assert_eq!(run.code, 9, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("standard input cannot be read again, so the job cannot be resumed")
            && !run.stderr.contains("wrun resume"),
        "{}",
        run.stderr
    );
}

/// Out of fuel, a journaled chunk is suspended (exit 9, resumable with
/// more fuel); without a journal there is nothing to resume, and it fails
/// (exit 11).
#[test]
fn out_of_fuel_suspends_a_journaled_chunk_and_fails_an_unjournaled_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = temp_file(&dir, "in.txt", b"ok:one\nok:two\nspin\n");
    let args = |journal: bool| {
        let mut args = vec![
            "submit",
            TASK_PROBE,
            "--input",
            path(&input),
            "--format",
            "lines",
            "--chunk-records",
            "2",
            "--fuel",
            "1000000",
        ];
        if !journal {
            args.push("--no-journal");
        }
        args.extend(["--", "spin"]);
        args
    };
    let home = tempfile::tempdir().unwrap();
    let run = wrun_in(home.path(), &args(false), None);
    assert_eq!(run.code, 11, "{}", run.stderr);
    assert!(
        run.stderr.contains("out of fuel (limit 1000000)"),
        "{}",
        run.stderr
    );
    let run = wrun_in(home.path(), &args(true), None);
    assert_eq!(run.code, 9, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 running chunk suspended (out of fuel)")
            && run.stderr.contains("`wrun resume 1 --add-fuel N`"),
        "{}",
        run.stderr
    );
    let detail = status_json(home.path(), Some("1"));
    let tasks = detail["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["state"], "done");
    assert_eq!(tasks[1]["state"], "suspended");
    assert_eq!(tasks[1]["suspended"], "fuel");
    let job = &status_json(home.path(), None)[0];
    assert_eq!(job["state"], "suspended");
    // Not finished: `wrun resume` goes on.
    assert!(job["finished_at"].is_null(), "{job}");
    let listed = wrun_in(
        home.path(),
        &["status", "--state", "suspended", "--json"],
        None,
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn a_failure_keeps_the_ordered_prefix_and_keep_going_skips_only_failed_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let input = temp_file(&dir, "in.txt", b"a\nb\nX\nc\nd\n");
    let out = dir.path().join("out.txt");
    let base = [
        "submit",
        TASK_PROBE,
        "--input",
        path(&input),
        "--chunk-records",
        "1",
        "-j",
        "2",
    ];

    let mut args = base.to_vec();
    args.extend(["-o", path(&out), "--", "fail-if", "X"]);
    let run = wrun(&args, None);
    assert_eq!(run.code, 16, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a\nb\n");
    assert_eq!(
        run.stderr,
        format!(
            "wrun: error: job 1: {}: chunk 2 (records 3..3, bytes 4..6): task failed: record contains \"X\"; \
             {} holds the output of every chunk before it (`wrun logs 1` shows its log; it \
             would fail the same way on every run: the task or the input must change)\n",
            input.display(),
            out.display()
        )
    );

    let mut args = base.to_vec();
    args.extend(["--keep-going", "--", "fail-if", "X"]);
    let run = wrun(&args, None);
    assert_eq!(run.code, 16, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "a\nb\nc\nd\n");
    // After the summary (see the journal's golden files): the failures.
    assert!(
        run.stderr.ends_with(&format!(
            "wrun: {}: chunk 2 (records 3..3, bytes 4..6): task failed: record contains \"X\"\n\
             wrun: error: 1 of 5 chunks failed (`wrun logs 1` shows their logs; they \
             would fail the same way on every run: the task or the input must change)\n",
            input.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn task_logs_reach_standard_error_tagged_with_their_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let input = temp_file(&dir, "in.txt", b"a\nb\n");
    let run = wrun(
        &[
            "submit",
            TASK_PROBE,
            "--input",
            path(&input),
            "--chunk-records",
            "2",
            "--",
            "log",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "a\nb\n");
    assert_eq!(
        run.stderr,
        "[chunk 0] probe saw a record\n[chunk 0] probe saw a record\n"
    );
}

/// A small task module whose inspection output never changes.
const INSPECT_WAT: &str = r#"(module
    (import "wrun" "emit" (func (param i32 i32)))
    (memory (export "memory") 1)
    (func (export "wrun_reserve") (param i32) (result i32) i32.const 16)
    (func (export "wrun_init") (param i32) (result i32) i32.const 0)
    (func (export "wrun_record") (param i32 i32) (result i32) i32.const 0)
    (func (export "wrun_finish") (result i32) i32.const 0)
    (@custom "wrun" "abi=1\nkind=task\nname=demo\nversion=1.2.3\nformats=fasta\n"))"#;

#[test]
fn inspect_shows_kind_metadata_imports_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let module = temp_file(&dir, "demo.wasm", &wat::parse_str(INSPECT_WAT).unwrap());
    let run = wrun(&["inspect", path(&module)], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_golden(
        "inspect.txt",
        &run.stdout_text().replace(path(&module), "MODULE"),
    );

    let run = wrun(&["inspect", "--json", path(&module)], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_golden(
        "inspect.json",
        &run.stdout_text().replace(path(&module), "MODULE"),
    );
    let parsed: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(parsed["kind"], "task");
}

#[test]
fn without_input_the_module_runs_once_with_no_records() {
    let run = wrun(&["submit", TASK_PROBE, "--", "steps", "3"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "step 3\nstep 2\nstep 1\n");

    let run = wrun(&["submit", COMMAND_PROBE, "--", "sandbox"], None);
    assert_eq!(run.stdout_text(), "file=false dir=false env=0 args=2\n");

    let run = wrun(&["submit", COMMAND_PROBE, "--", "exit", "7"], None);
    assert_eq!(run.code, 15);
    assert_eq!(
        run.stderr,
        format!(
            "[task] probe exiting on purpose\nwrun: error: {COMMAND_PROBE}: exited with status 7\n"
        )
    );
}

#[test]
fn progress_always_without_a_terminal_prints_plain_lines() {
    // Two chunks that each spin until their 1.5 s timeout, one at a time:
    // the job lasts at least 3 s whatever the machine, so the once-a-second
    // line is printed at least once.
    let dir = tempfile::tempdir().unwrap();
    let input = temp_file(&dir, "in.txt", b"a\nb\n");
    let run = wrun(
        &[
            "submit",
            TASK_PROBE,
            "--input",
            path(&input),
            "--format",
            "lines",
            "--chunk-records",
            "1",
            "-j",
            "1",
            "--timeout",
            "1500ms",
            "--keep-going",
            "--progress",
            "always",
            "--",
            "spin",
        ],
        None,
    );
    assert_eq!(run.code, 12, "{}", run.stderr);
    assert!(!run.stderr.contains('\x1b'), "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("wrun: progress "))
        .collect();
    assert!(!lines.is_empty(), "{}", run.stderr);
    assert_progress_lines(&lines);
    // The last line, printed at the end, has the final counts.
    let last = lines.last().unwrap();
    assert!(last.contains(" 4 B/4 B (100.0%), "), "{last}");
    assert!(last.ends_with(", 2 chunks done, 2 failed"), "{last}");
}

/// Each line has the shape `wrun: progress 2 B/4 B (50.0%), 1 B/s, ETA 2s,
/// 1 chunks done, 1 failed` (for an input of 4 bytes).
pub(crate) fn assert_progress_lines(lines: &[&str]) {
    for line in lines {
        let rest = line.strip_prefix("wrun: progress ").unwrap();
        let parts: Vec<&str> = rest.split(", ").collect();
        assert_eq!(parts.len(), 5, "{line}");
        assert!(
            parts[0].contains("/4 B (") && parts[0].ends_with("%)"),
            "{line}"
        );
        assert!(parts[1].ends_with("/s"), "{line}");
        assert!(parts[2].starts_with("ETA "), "{line}");
        assert!(parts[3].ends_with(" chunks done"), "{line}");
        assert!(parts[4].ends_with(" failed"), "{line}");
    }
}
