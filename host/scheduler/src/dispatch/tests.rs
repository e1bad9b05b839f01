//! The dispatcher fed hand-made events, with no wasm and no threads: each
//! case is the events in, and what is written after each of them, what the
//! job returns and, when it is recorded, what the journal holds, out. Every
//! case runs twice, unrecorded and recorded (a cancel comes only through
//! the journal), and must write the same bytes at the same steps in both.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wrun_journal::{
    AttemptEnd, ChunkPos, FailureKind, JobId, JobSpec, Journal, JournalError, LimitsSpec,
    ModuleRef, TaskStateKind,
};
use wrun_runtime::{Ended, Failure, Requests, TaskFailure, TaskOutput};
use wrun_store::BlobStore;

use super::Dispatcher;
use crate::error::JobError;
use crate::event::{Done, Event, RetriedAttempt, TaskMeta};
use crate::executor::LostDispatch;
use crate::record::{Prior, Recorder};
use crate::report::{Sink, Summary, Update};
use crate::window::Window;

/// One thing that happens to the dispatcher.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Task `index` finished with this output.
    Out(u64, &'static str),
    /// Task `index` finished with this output after one attempt that failed
    /// for a host error and was retried.
    Retried(u64, &'static str),
    /// Task `index` finished with this output, dispatched again after its
    /// first dispatch died with its node.
    Lost(u64, &'static str),
    /// Task `index` failed (a guest error).
    Fail(u64),
    /// The reader split the whole input into this many tasks.
    End(u64),
    /// The reader failed.
    InputError,
    /// `wrun cancel` (through the journal: recorded runs only).
    Cancel,
}

/// How a job ends.
#[derive(Debug)]
enum Expect {
    /// It succeeded: tasks run (all of the input's), and the failed ones.
    Done { tasks: u64, failed: &'static [u64] },
    /// It stopped on the failure of this task.
    Task(u64),
    /// It was cancelled.
    Cancelled,
    /// The input could not be read.
    Input,
}

struct Case {
    name: &'static str,
    keep_going: bool,
    /// Tasks the input makes (all queued when the job starts).
    tasks: u64,
    /// Each step, and everything written once it has been handled.
    steps: &'static [(Step, &'static str)],
    /// Tasks from this index on are not run once the job is over.
    skip_from: u64,
    result: Expect,
    /// A recorded run's rows at the end, by index: state and attempts.
    rows: &'static [(TaskStateKind, u32)],
}

use Step::{Cancel, End, Fail, InputError, Lost, Out, Retried};
use TaskStateKind::{Cancelled, Done as Finished, Failed, Queued};

const CASES: &[Case] = &[
    Case {
        name: "outputs are written in input order, whatever the completion order",
        keep_going: false,
        tasks: 3,
        steps: &[
            (Out(2, "c"), ""),
            (Out(0, "a"), "a"),
            (End(3), "a"),
            (Out(1, "b"), "abc"),
        ],
        skip_from: u64::MAX,
        result: Expect::Done {
            tasks: 3,
            failed: &[],
        },
        rows: &[(Finished, 1), (Finished, 1), (Finished, 1)],
    },
    Case {
        name: "an empty output completes the prefix like any other",
        keep_going: false,
        tasks: 2,
        steps: &[(Out(1, "b"), ""), (Out(0, ""), "b"), (End(2), "b")],
        skip_from: u64::MAX,
        result: Expect::Done {
            tasks: 2,
            failed: &[],
        },
        rows: &[(Finished, 1), (Finished, 1)],
    },
    Case {
        name: "fail-fast: a failure stops the job once every task before it is written",
        keep_going: false,
        tasks: 4,
        steps: &[
            (Out(0, "a"), "a"),
            (Fail(2), "a"),
            (Out(3, "d"), "a"),
            (Out(1, "b"), "ab"),
            (End(4), "ab"),
        ],
        skip_from: 3,
        result: Expect::Task(2),
        rows: &[(Finished, 1), (Finished, 1), (Failed, 1), (Finished, 1)],
    },
    Case {
        name: "fail-fast: of two failures, the first in input order is reported",
        keep_going: false,
        tasks: 4,
        steps: &[
            (Fail(2), ""),
            (Fail(1), ""),
            (Fail(3), ""),
            (Out(0, "a"), "a"),
        ],
        skip_from: 2,
        result: Expect::Task(1),
        rows: &[(Finished, 1), (Failed, 1), (Failed, 1), (Failed, 1)],
    },
    Case {
        name: "keep-going: every task runs and every failure is reported",
        keep_going: true,
        tasks: 4,
        steps: &[
            (Fail(2), ""),
            (Out(0, "a"), "a"),
            (Fail(1), "a"),
            (Out(3, "d"), "ad"),
            (End(4), "ad"),
        ],
        skip_from: u64::MAX,
        result: Expect::Done {
            tasks: 4,
            failed: &[1, 2],
        },
        rows: &[(Finished, 1), (Failed, 1), (Failed, 1), (Finished, 1)],
    },
    Case {
        name: "cancel: no task starts any more, and the unfinished are cancelled",
        keep_going: false,
        tasks: 3,
        steps: &[(Out(0, "a"), "a"), (Cancel, "a")],
        skip_from: 0,
        result: Expect::Cancelled,
        rows: &[(Finished, 1), (Cancelled, 0), (Cancelled, 0)],
    },
    Case {
        name: "retry: a retried task counts once, with both its attempts",
        keep_going: false,
        tasks: 2,
        steps: &[(Retried(1, "b"), ""), (Out(0, "a"), "ab"), (End(2), "ab")],
        skip_from: u64::MAX,
        result: Expect::Done {
            tasks: 2,
            failed: &[],
        },
        rows: &[(Finished, 1), (Finished, 2)],
    },
    Case {
        name: "lost: a dispatch that died with its node is an attempt, and counted lost",
        keep_going: false,
        tasks: 2,
        steps: &[(Lost(0, "a"), "a"), (Out(1, "b"), "ab"), (End(2), "ab")],
        skip_from: u64::MAX,
        result: Expect::Done {
            tasks: 2,
            failed: &[],
        },
        rows: &[(Finished, 2), (Finished, 1)],
    },
    Case {
        name: "an input error still completes the tasks read, which can be resumed",
        keep_going: false,
        tasks: 3,
        steps: &[(InputError, ""), (Out(1, "b"), ""), (Out(0, "a"), "ab")],
        skip_from: u64::MAX,
        result: Expect::Input,
        rows: &[(Finished, 1), (Finished, 1), (Queued, 0)],
    },
];

#[test]
fn unrecorded() {
    for case in CASES {
        if !case.steps.iter().any(|(step, _)| matches!(step, Cancel)) {
            run(case, None);
        }
    }
}

#[test]
fn recorded() {
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        run(case, Some(dir.path()));
    }
}

/// Task `index`'s place in the input: 10 bytes and 2 records a task.
fn meta(index: u64) -> TaskMeta {
    TaskMeta {
        index,
        pos: ChunkPos {
            offset: index * 10,
            len: 10,
            first_record: index * 2,
            records: 2,
        },
    }
}

/// The event of a step that finishes a task, and the task's index.
fn task_done(step: Step) -> Option<(u64, Event)> {
    let (index, result, retried) = match step {
        Out(index, output) | Lost(index, output) => (index, finished(output), Vec::new()),
        Retried(index, output) => {
            let retried = RetriedAttempt {
                started_at: 900,
                ended_at: 950,
                failure: failure(Failure::Host {
                    message: "the node went away".into(),
                }),
                node: None,
            };
            (index, finished(output), vec![retried])
        }
        Fail(index) => {
            let reason = Failure::Guest {
                status: 1,
                message: "bad record".into(),
            };
            (index, Err(failure(reason)), Vec::new())
        }
        End(_) | InputError | Cancel => return None,
    };
    Some((index, done(index, result, retried)))
}

fn done(index: u64, result: Result<Ended, TaskFailure>, retried: Vec<RetriedAttempt>) -> Event {
    Event::Done(vec![Done {
        meta: meta(index),
        result,
        started_at: 1_000,
        wall: Duration::from_millis(index + 1),
        retried,
        node: None,
    }])
}

fn finished(output: &str) -> Result<Ended, TaskFailure> {
    Ok(Ended::Finished(TaskOutput {
        output: output.as_bytes().to_vec(),
        log: Vec::new(),
        fuel_used: None,
    }))
}

fn failure(reason: Failure) -> TaskFailure {
    TaskFailure {
        reason,
        log: b"it went wrong\n".to_vec(),
    }
}

/// A sink whose bytes the test reads while the dispatcher holds it.
#[derive(Default, Clone)]
struct Written(Rc<RefCell<(Vec<u8>, u32)>>);

impl Written {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().0.clone()).unwrap()
    }

    fn flushes(&self) -> u32 {
        self.0.borrow().1
    }
}

impl Sink for Written {
    fn output(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.borrow_mut().0.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().1 += 1;
        Ok(())
    }
}

/// A journal with one job in it, and a store beside it.
struct Recorded {
    journal: Journal,
    /// A second connection, like `wrun cancel`'s process.
    other: Journal,
    job: JobId,
    store: BlobStore,
}

impl Recorded {
    fn new(dir: &Path) -> Self {
        let mut journal = Journal::open(&dir.join("journal.db")).unwrap();
        let job = journal
            .create_job(None, &[0; 32], &spec(), |_| Ok::<_, JournalError>(()))
            .unwrap()
            .0;
        Recorded {
            other: Journal::open(&dir.join("journal.db")).unwrap(),
            journal,
            job,
            store: BlobStore::open_local(&dir.join("store")).unwrap(),
        }
    }
}

fn spec() -> JobSpec {
    JobSpec {
        module: ModuleRef {
            source: "task.wasm".into(),
            digest: "ab".repeat(32),
        },
        format: None,
        input: None,
        pairs: None,
        output: None,
        chunk_records: Some(2),
        chunk_bytes: None,
        chunk_weight: None,
        adaptive_ms: None,
        args: Vec::new(),
        limits: LimitsSpec {
            fuel: None,
            timeout_ms: None,
            memory: 1 << 30,
            output: 1 << 20,
            spawn: None,
        },
        keep_going: false,
        retries: 1,
        inflate: Default::default(),
        reduce: None,
        checkpoint_every: None,
        data: Vec::new(),
        after: Vec::new(),
    }
}

/// Run `case`, recorded in a journal under `dir` if given.
fn run(case: &Case, dir: Option<&Path>) {
    let mode = match dir {
        Some(_) => "recorded",
        None => "unrecorded",
    };
    let what = format!("{} ({mode})", case.name);
    let mut recorded = dir.map(Recorded::new);
    let prior = Prior::default();
    let window = Window::new();
    for index in 0..case.tasks {
        assert!(window.try_admit(index, meta(index).pos.len), "{what}");
    }
    let skip_from = AtomicU64::new(u64::MAX);
    let requests = Requests::default();
    let written = Written::default();
    let mut sink = written.clone();
    let mut reported = Vec::new();
    let mut on_update = |update: Update<'_>| match update {
        Update::Finished { index, error, .. } => reported.push((index, error.is_some())),
    };
    let (recorder, mut other) = match &mut recorded {
        Some(r) => (
            Some(Recorder::new(
                &mut r.journal,
                r.job,
                &r.store,
                &prior,
                0,
                false,
            )),
            Some((&mut r.other, r.job)),
        ),
        None => (None, None),
    };
    let mut dispatcher = Dispatcher::new(
        &mut sink,
        &window,
        &skip_from,
        case.keep_going,
        recorder,
        &requests,
    );
    let recording = other.is_some();
    if recording {
        let queued = (0..case.tasks).map(meta).collect();
        dispatcher.handle(Event::Queued(queued), &mut on_update);
    }
    let mut ran = Vec::new();
    for &(step, expected) in case.steps {
        match step {
            End(tasks) => {
                dispatcher.handle(Event::InputEnd(Ok(Some(tasks))), &mut on_update);
            }
            InputError => {
                let error = std::io::Error::other("the disk went away");
                dispatcher.handle(Event::InputEnd(Err(JobError::Input(error))), &mut on_update);
            }
            Cancel => {
                let (other, job) = other.as_mut().expect("a cancel needs a journal");
                other.request_cancel(*job).unwrap();
            }
            Out(..) | Retried(..) | Lost(..) | Fail(..) => {}
        }
        if let Some((index, event)) = task_done(step) {
            if recording {
                let started = Event::Started(vec![index], 1_000);
                dispatcher.handle(started, &mut on_update);
                if let Lost(..) = step {
                    let lost = LostDispatch {
                        node: "n1".into(),
                        reason: "node n1 presumed dead".into(),
                        started_at: 1_000,
                        ended_at: 1_500,
                        requeued: true,
                    };
                    dispatcher.handle(Event::Lost(index, lost), &mut on_update);
                }
            }
            dispatcher.handle(event, &mut on_update);
            ran.push((index, matches!(step, Fail(_))));
        }
        // The event queue is empty: the dispatcher commits.
        dispatcher.commit(false, &mut on_update);
        assert_eq!(written.text(), expected, "{what}: after {step:?}");
    }
    let result = dispatcher.finish(Instant::now(), &mut on_update);

    assert_eq!(written.flushes(), 1, "{what}: flushed once");
    assert_eq!(
        reported, ran,
        "{what}: every outcome reported once, in turn"
    );
    assert_eq!(skip_from.load(Ordering::Acquire), case.skip_from, "{what}");
    check_result(&what, &case.result, result, &written.text());
    if let Some(r) = &recorded {
        let rows: Vec<_> = r
            .journal
            .tasks(r.job, None)
            .unwrap()
            .into_iter()
            .map(|row| {
                assert_eq!(row.pos, meta(row.index).pos, "{what}");
                (row.state.kind(), row.attempts)
            })
            .collect();
        assert_eq!(rows, case.rows, "{what}: the journal's rows");
        // `wrun logs` agrees with `wrun status`: every lost dispatch is an
        // attempt, and a chunk of several attempts shows them all.
        for row in r.journal.tasks(r.job, None).unwrap() {
            let attempts = r.journal.attempts(r.job, Some(row.index)).unwrap();
            let lost = attempts
                .iter()
                .filter(|a| matches!(a.end, AttemptEnd::Lost(_)))
                .count();
            assert_eq!(lost, row.lost as usize, "{what}: task {}", row.index);
            if row.attempts > 1 {
                let numbers: Vec<u32> = attempts.iter().map(|a| a.attempt).collect();
                let all: Vec<u32> = (1..=row.attempts).collect();
                assert_eq!(numbers, all, "{what}: task {}", row.index);
            }
        }
    }
}

fn check_result(what: &str, expect: &Expect, result: Result<Summary, JobError>, written: &str) {
    match (expect, result) {
        (Expect::Done { tasks, failed }, Ok(summary)) => {
            assert_eq!(summary.tasks, *tasks, "{what}");
            assert_eq!(summary.records, tasks * 2, "{what}");
            assert_eq!(summary.input_bytes, tasks * 10, "{what}");
            assert_eq!(summary.output_bytes, written.len() as u64, "{what}");
            let failed_got: Vec<_> = summary.failed.iter().map(|f| f.index).collect();
            assert_eq!(failed_got, *failed, "{what}: failed tasks, in input order");
            for f in &summary.failed {
                assert_eq!(f.pos, meta(f.index).pos, "{what}");
                assert_eq!(f.error.kind, FailureKind::Guest, "{what}");
            }
        }
        (Expect::Task(index), Err(JobError::Task(failed))) => {
            assert_eq!(failed.index, *index, "{what}");
            assert_eq!(failed.pos, meta(*index).pos, "{what}");
            assert_eq!(failed.error.kind, FailureKind::Guest, "{what}");
        }
        (Expect::Cancelled, Err(JobError::Cancelled))
        | (Expect::Input, Err(JobError::Input(_))) => {}
        (expect, result) => panic!("{what}: expected {expect:?}, got {result:?}"),
    }
}
