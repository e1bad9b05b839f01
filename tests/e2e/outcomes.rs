//! Every outcome a task can have is reported as itself.

use std::time::Duration;

use wrun_abi::status;
use wrun_runtime::Trap;
use wrun_runtime::{Failure, Limits};

use crate::support::{COMMAND_PROBE, TASK_PROBE, run_task};

fn failure(limits: Limits, module: &str, args: &[&str]) -> Failure {
    run_task(limits, module, args, &[b"record\n"])
        .expect_err("the task must fail")
        .reason
}

#[test]
fn records_are_processed_in_order_with_output_and_log() {
    let out = run_task(
        Limits::default(),
        TASK_PROBE,
        &["log"],
        &[b"a\n", b"bb\n", b"c"],
    )
    .unwrap();
    assert_eq!(out.output, b"a\nbb\nc");
    assert_eq!(
        String::from_utf8(out.log).unwrap(),
        "probe saw a record\n".repeat(3)
    );
}

#[test]
fn step_runs_until_done_before_finish() {
    let out = run_task(Limits::default(), TASK_PROBE, &["steps", "3"], &[b"x"]).unwrap();
    assert_eq!(out.output, b"step 3\nstep 2\nstep 1\n");
    let out = run_task(Limits::default(), TASK_PROBE, &["count"], &[b"ab", b"cde"]).unwrap();
    assert_eq!(out.output, b"records=2 bytes=5\n");
}

#[test]
fn a_panic_traps_with_its_message() {
    match failure(Limits::default(), TASK_PROBE, &["panic"]) {
        Failure::Trap {
            trap: Trap::UnreachableCodeReached,
            message: Some(message),
        } => assert!(message.contains("probe panicked on purpose"), "{message}"),
        other => panic!("unexpected outcome: {other:?}"),
    }
}

#[test]
fn out_of_bounds_access_and_stack_overflow_are_traps() {
    assert!(matches!(
        failure(Limits::default(), TASK_PROBE, &["oob"]),
        Failure::Trap {
            trap: Trap::MemoryOutOfBounds,
            ..
        }
    ));
    assert!(matches!(
        failure(Limits::default(), TASK_PROBE, &["recurse"]),
        Failure::Trap {
            trap: Trap::StackOverflow,
            ..
        }
    ));
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let limits = Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    };
    assert_eq!(
        failure(limits, TASK_PROBE, &["spin"]),
        Failure::OutOfFuel { limit: 5_000_000 }
    );
}

#[test]
fn an_infinite_loop_times_out() {
    let timeout = Duration::from_millis(100);
    let limits = Limits {
        timeout: Some(timeout),
        ..Limits::default()
    };
    assert_eq!(
        failure(limits.clone(), TASK_PROBE, &["spin"]),
        Failure::Timeout { limit: timeout }
    );
    assert_eq!(
        failure(limits, COMMAND_PROBE, &["spin"]),
        Failure::Timeout { limit: timeout }
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        memory: 32 << 20,
        ..Limits::default()
    };
    assert_eq!(
        failure(limits, TASK_PROBE, &["hog"]),
        Failure::MemoryLimit { limit: 32 << 20 }
    );
}

#[test]
fn a_flood_hits_the_output_limit() {
    let limits = Limits {
        output: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(
        failure(limits.clone(), TASK_PROBE, &["flood"]),
        Failure::OutputLimit { limit: 1 << 20 }
    );
    assert_eq!(
        failure(limits, COMMAND_PROBE, &["flood"]),
        Failure::OutputLimit { limit: 1 << 20 }
    );
}

#[test]
fn guest_errors_carry_status_and_message() {
    assert_eq!(
        failure(Limits::default(), TASK_PROBE, &["fail"]),
        Failure::Guest {
            status: status::FAILED,
            message: "probe failed on purpose".into()
        }
    );
    assert_eq!(
        failure(Limits::default(), TASK_PROBE, &["bogus"]),
        Failure::Guest {
            status: status::BAD_ARGS,
            message: "unknown probe mode \"bogus\"".into()
        }
    );
}

#[test]
fn a_command_gets_its_chunk_on_stdin_and_its_exit_status_counts() {
    let out = run_task(
        Limits::default(),
        COMMAND_PROBE,
        &["cat"],
        &[b"one\n", b"two\n"],
    )
    .unwrap();
    assert_eq!(out.output, b"one\ntwo\n");
    let failed = run_task(Limits::default(), COMMAND_PROBE, &["exit", "3"], &[b"x"]).unwrap_err();
    assert_eq!(failed.reason, Failure::Exit { code: 3 });
    assert_eq!(failed.log, b"probe exiting on purpose\n");
    assert!(matches!(
        failure(Limits::default(), COMMAND_PROBE, &["panic"]),
        Failure::Trap {
            trap: Trap::UnreachableCodeReached,
            ..
        }
    ));
}

#[test]
fn a_command_has_no_file_system_environment_or_extra_arguments() {
    let out = run_task(Limits::default(), COMMAND_PROBE, &["sandbox"], &[b""]).unwrap();
    assert_eq!(out.output, b"file=false dir=false env=0 args=2\n");
}

#[test]
fn failures_name_themselves_for_the_user() {
    let shown = |f: Failure| f.to_string();
    assert_eq!(
        shown(Failure::OutOfFuel { limit: 7 }),
        "out of fuel (limit 7)"
    );
    assert_eq!(shown(Failure::Exit { code: 3 }), "exited with status 3");
    assert_eq!(
        shown(Failure::Guest {
            status: status::BAD_INPUT,
            message: "bad".into()
        }),
        "task rejected its input: bad"
    );
    assert_eq!(
        shown(Failure::Trap {
            trap: Trap::StackOverflow,
            message: None
        }),
        "trap: call stack exhausted"
    );
}
