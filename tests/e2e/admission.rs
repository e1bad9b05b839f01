//! Bad modules are rejected with a message naming them; guest misuse of
//! the ABI and resource bombs are contained.

use bytes::Bytes;
use wrun_runtime::{AdmissionError, Chunk, Failure, Limits, Runtime, SplitError};

use crate::support::{FASTA_PLUGIN, GC_CONTENT, TASK_PROBE};

fn runtime() -> Runtime {
    Runtime::new(Limits::default(), 2).unwrap()
}

fn reject(bytes: &[u8]) -> AdmissionError {
    runtime()
        .admit("m.wasm", bytes)
        .expect_err("the module must be rejected")
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid wat")
}

/// A minimal SDK task in WAT whose `wrun_record` body is `record`.
fn wat_task(record: &str) -> Vec<u8> {
    wat(&format!(
        r#"(module
            (import "wrun" "emit" (func $emit (param i32 i32)))
            (memory (export "memory") 1)
            (func (export "wrun_reserve") (param i32) (result i32) i32.const 16)
            (func (export "wrun_init") (param i32) (result i32) i32.const 0)
            (func (export "wrun_record") (param i32 i32) (result i32) {record})
            (func (export "wrun_finish") (result i32) i32.const 0)
            (@custom "wrun" "abi=1\nkind=task\n"))"#
    ))
}

fn run_wat(limits: Limits, bytes: &[u8]) -> Result<wrun_runtime::TaskOutput, Failure> {
    let runtime = Runtime::new(limits, 2).unwrap();
    let module = runtime.admit("bomb.wasm", bytes).unwrap();
    let runner = runtime.task_runner(&module, &[]).unwrap();
    runner
        .run(Chunk {
            data: &Bytes::from_static(b"x"),
            records: &[0],
        })
        .map_err(|f| f.reason)
}

#[test]
fn empty_garbage_truncated_and_component_inputs_are_not_modules() {
    assert_eq!(
        reject(b"").to_string(),
        "m.wasm: empty file, not a WebAssembly module"
    );
    assert_eq!(
        reject(b"#!/bin/sh\n").to_string(),
        "m.wasm: not a WebAssembly module (no \\0asm header)"
    );
    let gc = std::fs::read(GC_CONTENT).unwrap();
    assert!(matches!(
        reject(&gc[..gc.len() / 2]),
        AdmissionError::Invalid { .. }
    ));
    assert_eq!(
        reject(b"\0asm\x0d\x00\x01\x00").to_string(),
        "m.wasm: this is a WebAssembly component; wrun runs core modules (wasm32-wasip1)"
    );
}

#[test]
fn oversized_modules_are_refused_before_parsing() {
    let runtime = Runtime::new(
        Limits {
            module_size: 1000,
            ..Limits::default()
        },
        1,
    )
    .unwrap();
    let gc = std::fs::read(GC_CONTENT).unwrap();
    assert!(matches!(
        runtime.admit("gc.wasm", &gc),
        Err(AdmissionError::TooLarge { limit: 1000, .. })
    ));
}

#[test]
fn a_module_must_say_what_it_is() {
    let error = reject(&wat(r#"(module (func (export "main")))"#));
    assert_eq!(
        error.to_string(),
        "m.wasm: not a wrun module: it has no `wrun` metadata section (SDK task or splitter) \
         and no `_start` export (WASI command)"
    );
    let error = reject(&wat(r#"(module (@custom "wrun" "abi=2\nkind=task\n"))"#));
    assert_eq!(
        error.to_string(),
        "m.wasm: built for wrun ABI version 2, this wrun speaks version 1"
    );
    let error = reject(&wat(r#"(module (@custom "wrun" "abi=1\nkind=robot\n"))"#));
    assert_eq!(
        error.to_string(),
        "m.wasm: line 2 of the `wrun` section: invalid `kind` value"
    );
}

#[test]
fn imports_outside_the_allow_list_are_refused() {
    let error = reject(&wat(
        r#"(module (import "env" "open" (func)) (func (export "_start")))"#,
    ));
    assert_eq!(
        error.to_string(),
        "m.wasm: imports `env::open`, which wrun does not provide \
         (allowed: `wrun` ABI functions and WASI preview 1)"
    );
    let error = reject(&wat(
        r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))"#,
    ));
    assert!(matches!(error, AdmissionError::Link { .. }), "{error}");
    assert!(error.to_string().contains("no_such_call"), "{error}");
}

#[test]
fn exports_must_match_the_kind() {
    let error = reject(&wat(r#"(module (memory (export "memory") 1)
            (func (export "wrun_reserve") (param i32) (result i32) i32.const 0)
            (func (export "wrun_init") (param i32) (result i32) i32.const 0)
            (func (export "wrun_record") (param i32) (result i32) i32.const 0)
            (@custom "wrun" "abi=1\nkind=task\n"))"#));
    assert_eq!(
        error.to_string(),
        "m.wasm: a wrun task must export `wrun_record` as func(i32, i32) -> i32, found func(i32) -> i32"
    );
}

#[test]
fn a_module_of_the_wrong_kind_is_refused_where_it_is_used() {
    let runtime = runtime();
    let plugin = runtime
        .admit("fasta.wasm", &std::fs::read(FASTA_PLUGIN).unwrap())
        .unwrap();
    assert_eq!(
        runtime.task_runner(&plugin, &[]).unwrap_err().to_string(),
        "fasta.wasm: is a wrun splitter, but a task or command is needed here"
    );
    let task = runtime
        .admit("probe.wasm", &std::fs::read(TASK_PROBE).unwrap())
        .unwrap();
    assert_eq!(
        runtime.splitter(&task).unwrap_err(),
        SplitError::Admission(AdmissionError::WrongKind {
            module: "probe.wasm".into(),
            expected: "splitter",
            found: wrun_runtime::Kind::Task,
        })
    );
}

#[test]
fn out_of_range_pointers_from_the_guest_trap_as_abi_violations() {
    let bytes = wat_task("(call $emit (i32.const 65530) (i32.const 100)) i32.const 0");
    match run_wat(Limits::default(), &bytes) {
        Err(Failure::Abi { message }) => assert_eq!(
            message,
            "`emit` got buffer 0xfffa+100, outside the guest's 65536 bytes of memory"
        ),
        other => panic!("unexpected outcome: {other:?}"),
    }
    let bytes = wat_task("(call $emit (i32.const -1) (i32.const -1)) i32.const 0");
    assert!(matches!(
        run_wat(Limits::default(), &bytes),
        Err(Failure::Abi { .. })
    ));
    let bytes = wat_task("(call $emit (i32.const 16) (i32.const 1)) i32.const 0");
    assert_eq!(run_wat(Limits::default(), &bytes).unwrap().output, b"x");
    // A status `wrun_record` does not define is a violation too (it was
    // accepted before: chaos finding 5; see hostile.rs).
    let bytes = wat_task("(call $emit (i32.const 16) (i32.const 1)) i32.const 7");
    assert!(matches!(
        run_wat(Limits::default(), &bytes),
        Err(Failure::Abi { .. })
    ));
}

#[test]
fn memory_and_table_bombs_hit_their_limits() {
    let limits = Limits {
        memory: 16 << 20,
        table_elements: 1000,
        ..Limits::default()
    };
    let huge_initial = wat(r#"(module (memory (export "memory") 1000) (func (export "_start")))"#);
    assert_eq!(
        run_wat(limits.clone(), &huge_initial).unwrap_err(),
        Failure::MemoryLimit { limit: 16 << 20 }
    );
    let grow = wat(
        r#"(module (memory 1) (func (export "_start") (drop (memory.grow (i32.const 1000)))))"#,
    );
    assert_eq!(
        run_wat(limits.clone(), &grow).unwrap_err(),
        Failure::MemoryLimit { limit: 16 << 20 }
    );
    let table = wat(r#"(module (table 1 funcref)
            (func (export "_start") (drop (table.grow (ref.null func) (i32.const 100000)))))"#);
    assert_eq!(
        run_wat(limits, &table).unwrap_err(),
        Failure::TableLimit { limit: 1000 }
    );
}
