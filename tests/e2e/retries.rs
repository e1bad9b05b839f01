//! Retries, at the scheduler's level: an executor that fails the way a
//! host does, recorded in a real journal.

use std::collections::HashMap;
use std::sync::Mutex;

use wrun_journal::{
    AttemptEnd, FailureKind, JobSpec, Journal, JournalError, LimitsSpec, ModuleRef, TaskState,
};
use wrun_runtime::{
    Checkpointing, Ended, Failure, Limits, Runtime, TaskFailure, TaskOutput, plugins,
};
use wrun_scheduler::{
    Checkpoints, Chunking, Executor, Input, Job, JobError, Prior, Recording, Task,
};
use wrun_store::BlobStore;

/// Echoes each chunk, after failing its first `failures` attempts with
/// `failure`.
struct Flaky {
    failures: u32,
    failure: Failure,
    attempts: Mutex<HashMap<u64, u32>>,
}

impl Executor for Flaky {
    fn slots(&self) -> usize {
        2
    }

    fn execute(&self, task: &Task, _: Option<&Checkpointing<'_>>) -> Result<Ended, TaskFailure> {
        let mut attempts = self.attempts.lock().unwrap();
        let n = attempts.entry(task.index).or_default();
        *n += 1;
        if *n <= self.failures {
            return Err(TaskFailure {
                reason: self.failure.clone(),
                log: format!("attempt {n} failed\n").into_bytes(),
            });
        }
        Ok(Ended::Finished(TaskOutput {
            output: task.data.to_vec(),
            ..TaskOutput::default()
        }))
    }
}

fn spec() -> JobSpec {
    let module = ModuleRef {
        source: "flaky".into(),
        digest: "00".repeat(32),
    };
    JobSpec {
        module: module.clone(),
        format: Some(module),
        input: None,
        pairs: None,
        output: None,
        chunk_records: Some(1),
        chunk_bytes: None,
        chunk_weight: None,
        adaptive_ms: None,
        checkpoint_every: None,
        data: Vec::new(),
        after: Vec::new(),
        args: Vec::new(),
        limits: LimitsSpec {
            fuel: None,
            timeout_ms: None,
            memory: 1 << 20,
            output: 1 << 20,
            spawn: None,
        },
        keep_going: false,
        retries: 2,
        inflate: Default::default(),
        reduce: None,
    }
}

/// Run "a\nb\nc\n" (three chunks) through `executor`, recorded.
fn run(executor: &Flaky, retries: u32) -> (Result<Vec<u8>, JobError>, Journal, i64) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Limits::default(), 1).unwrap();
    let lines = plugins::builtin("lines").unwrap();
    let plugin = runtime.admit("builtin:lines", lines).unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.db")).unwrap();
    let store = BlobStore::open_local(dir.path()).unwrap();
    let job = journal
        .create_job(None, &[0; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    let mut out = Vec::new();
    let result = Job {
        executor,
        splitter: runtime.splitter(&plugin).unwrap(),
        input: Input::Stream(Box::new(&b"a\nb\nc\n"[..])),
        chunking: Chunking {
            max_records: Some(1),
            ..Chunking::default()
        },
        paired: false,
        block_size: 1 << 20,
        keep_going: false,
        retries,
        spawn: Default::default(),
        recording: Some(Recording {
            journal: &mut journal,
            job,
            store: &store,
            prior: Prior::default(),
            kept: 0,
            checkpoints: Checkpoints::default(),
        }),
        adaptive: None,
    }
    .run(&mut out, |_| {});
    (result.map(|_| out), journal, job)
}

#[test]
fn host_failures_are_retried_and_every_attempt_is_recorded() {
    let flaky = Flaky {
        failures: 2,
        failure: Failure::Host {
            message: "instance pool exhausted".into(),
        },
        attempts: Mutex::default(),
    };
    let (result, journal, job) = run(&flaky, 2);
    assert_eq!(result.unwrap(), b"a\nb\nc\n");
    for task in journal.tasks(job, None).unwrap() {
        assert!(matches!(task.state, TaskState::Done { .. }), "{task:?}");
        assert_eq!(task.attempts, 3);
    }
    let attempts = journal.attempts(job, Some(1)).unwrap();
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| match &a.end {
            AttemptEnd::Failed(error) => (a.attempt, Some(error.kind)),
            _ => (a.attempt, None),
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, Some(FailureKind::Host)),
            (2, Some(FailureKind::Host)),
            (3, None)
        ]
    );
    assert_eq!(attempts[0].log, b"attempt 1 failed\n");
}

#[test]
fn retries_run_out_and_deterministic_failures_are_never_retried() {
    let host = Flaky {
        failures: 5,
        failure: Failure::Host {
            message: "instance pool exhausted".into(),
        },
        attempts: Mutex::default(),
    };
    let (result, journal, job) = run(&host, 1);
    match result {
        Err(JobError::Task(failed)) => assert_eq!(failed.error.kind, FailureKind::Host),
        other => panic!("{other:?}"),
    }
    assert_eq!(journal.task(job, 0).unwrap().unwrap().attempts, 2);

    let guest = Flaky {
        failures: 1,
        failure: Failure::Guest {
            status: -1,
            message: "bad record".into(),
        },
        attempts: Mutex::default(),
    };
    let (result, journal, job) = run(&guest, 5);
    match result {
        Err(JobError::Task(failed)) => {
            assert_eq!(failed.index, 0);
            assert_eq!(failed.error.kind, FailureKind::Guest);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(journal.task(job, 0).unwrap().unwrap().attempts, 1);
    assert_eq!(*guest.attempts.lock().unwrap().get(&0).unwrap(), 1);
}
