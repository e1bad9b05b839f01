//! Hostile guests, written in WAT: whatever a guest returns, passes or
//! asks for, the sandbox checks it, bounds it in time and size, and blames
//! the guest for its own mistakes (never retried as a host failure).

use std::io::Write;
use std::path::{Path, PathBuf};

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
            (memory (export "memory") 1)
            (func (export "_start") {start}))"#
    ))
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
    assert!(message.contains("not aligned"), "{message}");

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
