//! Hostile guests, written in WAT: whatever a guest returns, passes or
//! asks for, the sandbox checks it, bounds it in time and size, and blames
//! the guest for its own mistakes (never retried as a host failure).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wrun_runtime::{Chunk, Failure, Limits, Runtime};

use crate::support::{status_json, wrun_in};

/// Exit code of `wrun submit` for an ABI violation (`wrun --help`).
const EXIT_ABI: i32 = 17;

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid wat")
}

/// An SDK task whose exports return `init`, `record` and `finish`, each a
/// WAT body; `extra` adds imports or functions.
fn sdk_task(init: &str, record: &str, finish: &str, extra: &str) -> Vec<u8> {
    wat(&format!(
        r#"(module
            (import "wrun" "emit" (func $emit (param i32 i32)))
            (import "wrun" "error" (func $error (param i32 i32)))
            {extra}
            (memory (export "memory") 2)
            (func (export "wrun_reserve") (param i32) (result i32) i32.const 65536)
            (func (export "wrun_init") (param i32) (result i32) {init})
            (func (export "wrun_record") (param $off i32) (param $len i32) (result i32) {record})
            (func (export "wrun_finish") (result i32) {finish})
            (@custom "wrun" "abi=1\nkind=task\n"))"#
    ))
}

/// A WASI command whose `_start` body is `start`.
fn command(start: &str) -> Vec<u8> {
    wat(&format!(
        r#"(module
            (import "wasi_snapshot_preview1" "poll_oneoff"
                (func $poll (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_write"
                (func $write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "clock_time_get"
                (func $now (param i32 i64 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start") {start}))"#
    ))
}

/// WAT that sleeps `nanos` (chaos `cmd_sleep2s.wat`: one relative
/// subscription on the monotonic clock, at 0; the event goes to 256), then
/// stores the monotonic clock at 608.
fn sleep_then_read_clock(nanos: u64) -> String {
    format!(
        r#"
        (i64.store (i32.const 0) (i64.const 1))
        (i32.store8 (i32.const 8) (i32.const 0))
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const {nanos}))
        (i64.store (i32.const 32) (i64.const 0))
        (i32.store16 (i32.const 40) (i32.const 0))
        (if (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512))
            (then unreachable))
        (if (i32.ne (i32.load (i32.const 512)) (i32.const 1)) (then unreachable))
        (if (call $now (i32.const 1) (i64.const 1) (i32.const 608)) (then unreachable))"#
    )
}

/// A command that sleeps `nanos`, then writes the clock (8 bytes, little
/// endian) to stdout.
fn sleeping_command(nanos: u64) -> Vec<u8> {
    command(&format!(
        r#"{}
        (i32.store (i32.const 600) (i32.const 608))
        (i32.store (i32.const 604) (i32.const 8))
        (drop (call $write (i32.const 1) (i32.const 600) (i32.const 1) (i32.const 700)))"#,
        sleep_then_read_clock(nanos)
    ))
}

/// An SDK task whose `wrun_record` sleeps `nanos` through its lazy WASI
/// context, then emits the clock (8 bytes, little endian).
fn sleeping_task(nanos: u64) -> Vec<u8> {
    let imports = r#"
        (import "wasi_snapshot_preview1" "poll_oneoff"
            (func $poll (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "clock_time_get"
            (func $now (param i32 i64 i32) (result i32)))"#;
    let record = format!(
        "{} (call $emit (i32.const 608) (i32.const 8)) (i32.const 0)",
        sleep_then_read_clock(nanos)
    );
    sdk_task("(i32.const 0)", &record, "(i32.const 0)", imports)
}

const HOUR: u64 = 3600 * 1_000_000_000;

/// Submit `module` over a two-line input under `--timeout 1s`, with
/// `--chunk-records 1`; returns the run and how long it took.
fn submit_with_a_second(name: &str, module: &[u8]) -> (crate::support::Run, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (module, input) = files(dir.path(), name, module);
    let started = Instant::now();
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            path(&module),
            "--input",
            path(&input),
            "--timeout",
            "1s",
            "--chunk-records",
            "1",
        ],
        None,
    );
    (run, started.elapsed())
}

/// Run one chunk of one record, `x\n`, through `bytes` in the runtime.
fn run(limits: Limits, bytes: &[u8]) -> Result<wrun_runtime::TaskOutput, Failure> {
    let runtime = Runtime::new(limits, 2).unwrap();
    let module = runtime.admit("hostile.wasm", bytes).unwrap();
    let runner = runtime.task_runner(&module, &[]).unwrap();
    runner
        .run(Chunk {
            data: &Bytes::from_static(b"x\n"),
            records: &[0],
        })
        .map_err(|f| f.reason)
}

fn abi_message(result: Result<wrun_runtime::TaskOutput, Failure>) -> String {
    match result {
        Err(Failure::Abi { message }) => message,
        other => panic!("expected an ABI violation, got {other:?}"),
    }
}

/// `bytes` as `name` and a two-line input in `dir`.
fn files(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, PathBuf) {
    let module = dir.join(name);
    std::fs::write(&module, bytes).unwrap();
    let input = dir.join("input.txt");
    std::fs::File::create(&input)
        .unwrap()
        .write_all(b"a\nb\n")
        .unwrap();
    (module, input)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn an_unknown_status_from_any_export_is_an_abi_violation() {
    // chaos st_record7.wat: `wrun_record` returns 7.
    let emit_and_7 =
        "(call $emit (i32.add (i32.const 65536) (local.get $off)) (local.get $len)) (i32.const 7)";
    let message = abi_message(run(
        Limits::default(),
        &sdk_task("(i32.const 0)", emit_and_7, "(i32.const 0)", ""),
    ));
    assert_eq!(message, "`wrun_record` returned unknown status 7");
    assert_eq!(
        abi_message(run(
            Limits::default(),
            &sdk_task("(i32.const 1)", "(i32.const 0)", "(i32.const 0)", ""),
        )),
        "`wrun_init` returned unknown status 1"
    );
    assert_eq!(
        abi_message(run(
            Limits::default(),
            &sdk_task("(i32.const 0)", "(i32.const 0)", "(i32.const -9)", ""),
        )),
        "`wrun_finish` returned unknown status -9"
    );

    // Through the binary: exit 17, the output not kept, not retried.
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let task = sdk_task("(i32.const 0)", emit_and_7, "(i32.const 0)", "");
    let (module, input) = files(dir.path(), "st_record7.wasm", &task);
    let run = wrun_in(
        home.path(),
        &["submit", path(&module), "--input", path(&input)],
        None,
    );
    assert_eq!(run.code, EXIT_ABI, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no output is kept");
    assert!(
        run.stderr
            .contains("`wrun_record` returned unknown status 7"),
        "{}",
        run.stderr
    );
    let status = status_json(home.path(), Some("1"));
    assert_eq!(status["tasks"][0]["attempts"], 1, "{status}");
}

#[test]
fn a_bad_pointer_handed_to_wasi_is_the_guests_fault_and_not_retried() {
    // An iovec array at an odd address: wasmtime-wasi's own check.
    let misaligned_iovec =
        "(drop (call $write (i32.const 1) (i32.const 3) (i32.const 1) (i32.const 64)))";
    let message = abi_message(run(Limits::default(), &command(misaligned_iovec)));
    assert!(message.contains("not aligned"), "{message}");
    // `poll_oneoff`'s output pointer misaligned (chaos finding 6).
    let misaligned_events = r#"
        (i64.store (i32.const 0) (i64.const 1))
        (i32.store8 (i32.const 8) (i32.const 0))
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const 1000))
        (drop (call $poll (i32.const 0) (i32.const 257) (i32.const 1) (i32.const 512)))"#;
    let message = abi_message(run(Limits::default(), &command(misaligned_events)));
    assert_eq!(
        message,
        "`poll_oneoff`: events pointer 0x101 is not aligned to 8"
    );
    // An exit status WASI does not allow.
    let bad_exit = wat(r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (call $exit (i32.const 200))))"#);
    assert_eq!(
        abi_message(run(Limits::default(), &bad_exit)),
        "`proc_exit(200)`: WASI exit statuses are 0 to 125"
    );

    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (module, input) = files(dir.path(), "poll.wasm", &command(misaligned_events));
    let run = wrun_in(
        home.path(),
        &["submit", path(&module), "--input", path(&input)],
        None,
    );
    assert_eq!(run.code, EXIT_ABI, "{}", run.stderr);
    assert!(
        run.stderr.contains("guest broke the wrun ABI"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("host error"), "{}", run.stderr);
    let status = status_json(home.path(), Some("1"));
    assert_eq!(status["tasks"][0]["attempts"], 1, "{status}");
}

#[test]
fn a_sleep_returns_at_once_with_the_virtual_clock_advanced() {
    // In the runtime: the clock reads the sleep's end, for a command and
    // for an SDK task's lazily created WASI context alike.
    let limits = Limits {
        timeout: Some(Duration::from_secs(1)),
        ..Limits::default()
    };
    let two_seconds = 2_000_000_000u64;
    let out = run(limits.clone(), &sleeping_command(two_seconds)).unwrap();
    assert_eq!(out.output, two_seconds.to_le_bytes());
    let out = run(limits, &sleeping_task(HOUR)).unwrap();
    assert_eq!(out.output, HOUR.to_le_bytes());

    // Through the binary, an hour's sleep per chunk under `--timeout 1s`:
    // each chunk's clock starts at 0, and nothing waits.
    for (name, module) in [
        ("cmd_sleep1h.wasm", sleeping_command(HOUR)),
        ("sdk_sleep1h.wasm", sleeping_task(HOUR)),
    ] {
        let (run, took) = submit_with_a_second(name, &module);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.stdout, [HOUR.to_le_bytes(); 2].concat(), "{name}");
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
    }
}

#[test]
fn a_poll_on_descriptors_returns_at_once() {
    // stdin ready, descriptor 9 bad, and an hour's clock that is not due:
    // two events, the clock not moved.
    let poll = r#"
        (i32.store8 (i32.const 8) (i32.const 1))
        (i64.store (i32.const 48) (i64.const 2))
        (i32.store8 (i32.const 56) (i32.const 1))
        (i32.store (i32.const 64) (i32.const 9))
        (i64.store (i32.const 96) (i64.const 3))
        (i32.store (i32.const 112) (i32.const 1))
        (i64.store (i32.const 120) (i64.const 3600000000000))
        (if (call $poll (i32.const 0) (i32.const 256) (i32.const 3) (i32.const 512))
            (then unreachable))
        (if (call $now (i32.const 0) (i64.const 1) (i32.const 608)) (then unreachable))
        (i64.store (i32.const 616) (i64.load32_u (i32.const 512)))
        (i64.store (i32.const 624) (i64.load16_u (i32.const 296)))
        (i32.store (i32.const 600) (i32.const 608))
        (i32.store (i32.const 604) (i32.const 24))
        (drop (call $write (i32.const 1) (i32.const 600) (i32.const 1) (i32.const 700)))"#;
    let out = run(Limits::default(), &command(poll)).unwrap();
    let words: Vec<u64> = out
        .output
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
        .collect();
    // Clock 0, two events, the second's errno EBADF (8).
    assert_eq!(words, [0, 2, 8]);
}

#[test]
fn a_guest_that_keeps_calling_the_host_still_ends_at_its_deadline() {
    // Sleeps of an hour, for ever: the virtual clock runs on, and the real
    // deadline ends the task (exit 12) in about a second.
    let forever = format!("(loop $again {} (br $again))", sleep_then_read_clock(HOUR));
    let (run, took) = submit_with_a_second("sleep_forever.wasm", &command(&forever));
    assert_eq!(run.code, 12, "{}", run.stderr);
    assert!(run.stderr.contains("timed out after 1s"), "{}", run.stderr);
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_guest_error_message_is_capped_everywhere_it_is_kept_or_shown() {
    // chaos sdk_error_flood.wat: every record fills 64 MiB of memory and
    // hands all of it to `error`, and logs as much.
    let flood = wat(r#"(module
        (import "wrun" "log" (func $log (param i32 i32)))
        (import "wrun" "error" (func $error (param i32 i32)))
        (memory (export "memory") 1025)
        (func (export "wrun_reserve") (param i32) (result i32) (i32.const 67108864))
        (func (export "wrun_init") (param i32) (result i32) (i32.const 0))
        (func (export "wrun_record") (param i32 i32) (result i32)
            (memory.fill (i32.const 0) (i32.const 68) (i32.const 67108864))
            (call $log (i32.const 0) (i32.const 67108864))
            (call $error (i32.const 0) (i32.const 67108864))
            (i32.const -1))
        (func (export "wrun_finish") (result i32) (i32.const 0))
        (@custom "wrun" "abi=1\nkind=task\n"))"#);
    let limits = Limits::default();
    // The caps are stated in `wrun submit --help`.
    let help = wrun_in(Path::new("/nonexistent"), &["submit", "--help"], None);
    let stated = |what: &str, cap: usize| format!("{what} at {} KiB", cap >> 10);
    let help_text = help
        .stdout_text()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help_text.contains(&stated("stderr)", limits.log)),
        "{help_text}"
    );
    assert!(
        help_text.contains(&stated("message)", limits.error)),
        "{help_text}"
    );
    let cut = " … [truncated: 64.0 MiB error message cut to 64.0 KiB]";
    match run(limits.clone(), &flood) {
        Err(Failure::Guest { message, .. }) => {
            assert_eq!(message.len(), limits.error + cut.len());
            assert!(message.ends_with(cut), "{}", &message[limits.error..]);
        }
        other => panic!("expected a guest error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let module = dir.path().join("sdk_error_flood.wasm");
    std::fs::write(&module, &flood).unwrap();
    let input = dir.path().join("input.txt");
    std::fs::write(&input, b"a\nb\nc\n").unwrap();
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            path(&module),
            "--input",
            path(&input),
            "--chunk-records",
            "1",
            "--keep-going",
        ],
        None,
    );
    assert_eq!(
        run.code,
        16,
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    // Three chunks, each with a capped log and a capped message (the
    // uncapped run wrote 201 MB here).
    assert!(
        run.stderr.len() < 1 << 20,
        "{} bytes on stderr",
        run.stderr.len()
    );
    assert!(run.stderr.contains(cut), "the cut is said");
    let status = status_json(home.path(), Some("1"));
    for task in status["tasks"].as_array().unwrap() {
        let error = task["error"].as_str().unwrap();
        assert!(error.len() < limits.error + 200, "{} bytes", error.len());
        assert!(error.ends_with(cut));
    }
    let journal = std::fs::metadata(home.path().join("journal.db"))
        .unwrap()
        .len();
    let wal = std::fs::metadata(home.path().join("journal.db-wal")).map_or(0, |m| m.len());
    assert!(journal + wal < 8 << 20, "journal {journal} + {wal} bytes");
    let logs = wrun_in(home.path(), &["logs", "1", "--json"], None);
    assert!(
        logs.stdout.len() < 1 << 20,
        "{} bytes of logs",
        logs.stdout.len()
    );
    assert!(String::from_utf8_lossy(&logs.stdout).contains("[truncated: log cut at 64.0 KiB]"));
}
