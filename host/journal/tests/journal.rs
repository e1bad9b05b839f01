//! The journal against real SQLite files in temp dirs.

use std::path::Path;
use std::time::Duration;

use wrun_journal::ChunkPos;
use wrun_journal::{
    AllocationRow, AttemptEnd, AttemptRecord, Batch, FailureKind, JobLock, JobSpec, JobState,
    Journal, JournalError, LimitsSpec, ModuleRef, OutputRef, PROCESS_DIED, QUARANTINE_AFTER,
    QueueRow, Recovery, SnapshotRef, SuspendReason, TaskError, TaskRow, TaskState, TaskStateKind,
    recover,
};

fn spec() -> JobSpec {
    JobSpec {
        module: ModuleRef {
            source: "task.wasm".into(),
            digest: "ab".repeat(32),
        },
        format: Some(ModuleRef {
            source: "builtin:fasta".into(),
            digest: "cd".repeat(32),
        }),
        input: None,
        pairs: None,
        output: Some("/tmp/out.tsv".into()),
        chunk_records: Some(10),
        chunk_bytes: None,
        chunk_weight: None,
        adaptive_ms: None,
        args: vec!["--min".into(), "5".into()],
        limits: LimitsSpec {
            fuel: None,
            timeout_ms: Some(600_000),
            memory: 1 << 30,
            output: 256 << 20,
            spawn: None,
        },
        keep_going: false,
        retries: 2,
        inflate: Default::default(),
        reduce: None,
        checkpoint_every: Some(wrun_journal::CheckpointEvery::Calls(100)),
        data: Vec::new(),
        after: Vec::new(),
    }
}

fn task(index: u64, state: TaskState) -> TaskRow {
    TaskRow {
        index,
        pos: ChunkPos {
            offset: index * 100,
            len: 100,
            first_record: index * 10,
            records: 10,
        },
        attempts: 1,
        lost: 0,
        node: None,
        state,
        snapshot: None,
        resumed_from: None,
    }
}

fn done(output: &[u8]) -> TaskState {
    TaskState::Done {
        finished_at: 1_700_000_000_000,
        wall: Duration::from_micros(1234),
        fuel_used: Some(99),
        output: OutputRef {
            digest: *blake3::hash(output).as_bytes(),
            len: output.len() as u64,
            inline: true,
        },
    }
}

fn failed(kind: FailureKind) -> TaskState {
    TaskState::Failed {
        finished_at: 1_700_000_000_001,
        wall: Duration::from_micros(5),
        error: TaskError {
            kind,
            message: format!("it went {kind}"),
        },
    }
}

fn open(dir: &Path) -> Journal {
    Journal::open(&dir.join("journal.db")).expect("journal opens")
}

#[test]
fn a_committed_batch_reads_back_state_by_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let job = journal
        .create_job(Some("gc"), &[7; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    let rows = vec![
        task(0, done(b"out0")),
        task(1, TaskState::Running { started_at: 5 }),
        task(2, failed(FailureKind::Fuel)),
        task(3, TaskState::Queued),
        task(4, TaskState::Cancelled { at: 9 }),
        TaskRow {
            snapshot: Some(SnapshotRef {
                digest: [7; 32],
                taken_at: 11,
                position: "before record 3".into(),
                fuel_used: Some(1234),
            }),
            resumed_from: Some(SnapshotRef {
                digest: [6; 32],
                taken_at: 10,
                position: "before record 2".into(),
                fuel_used: Some(1000),
            }),
            ..task(
                5,
                TaskState::Suspended {
                    at: 12,
                    reason: SuspendReason::Fuel,
                },
            )
        },
    ];
    let batch = Batch {
        tasks: rows.clone(),
        outputs: vec![(0, b"out0".to_vec())],
        attempts: vec![AttemptRecord {
            index: 2,
            attempt: 1,
            node: Some("n1".into()),
            started_at: 3,
            ended_at: 4,
            end: AttemptEnd::Failed(TaskError {
                kind: FailureKind::Fuel,
                message: "it went fuel".into(),
            }),
            log: b"line 1\nline 2\n".to_vec(),
        }],
        tasks_total: Some(6),
        snapshots: vec![(5, vec![[7; 32]])],
        snapshots_taken: None,
    };
    let committed = journal.commit(job, &batch).unwrap();
    assert!(!committed.cancel_requested);
    assert_eq!(committed.snapshots_requested, 0);

    // Another connection (another process) sees it all.
    let reader = open(dir.path());
    assert_eq!(reader.tasks(job, None).unwrap(), rows);
    assert_eq!(
        reader.tasks(job, Some(TaskStateKind::Failed)).unwrap(),
        vec![rows[2].clone()]
    );
    assert_eq!(
        reader.output(job, 0).unwrap().as_deref(),
        Some(&b"out0"[..])
    );
    assert_eq!(reader.output(job, 1).unwrap(), None);
    assert_eq!(reader.attempts(job, Some(2)).unwrap(), batch.attempts);
    assert!(reader.attempts(job, Some(0)).unwrap().is_empty());
    let counts = reader.counts(job).unwrap();
    assert_eq!(counts.total(), 6);
    assert_eq!(counts.get(TaskStateKind::Suspended), 1);
    assert_eq!(counts.get(TaskStateKind::Done), 1);
    assert_eq!(counts.finished_bytes, 200);
    assert_eq!(counts.done_records, 10);
    // The done (1234 µs) and the failed (5 µs) task in sum.
    assert_eq!(
        reader.totals(job, &[1, 10, 2000]).unwrap(),
        wrun_journal::TaskTotals {
            finished: 2,
            wall_buckets: vec![0, 1, 1, 0],
            wall_us: 1239,
            output_bytes: 4,
        }
    );
    let record = reader.job(job).unwrap();
    assert_eq!(record.name.as_deref(), Some("gc"));
    assert_eq!(record.spec, spec());
    assert_eq!(record.state, JobState::Running);
    assert_eq!(record.tasks_total, Some(6));
    assert_eq!(record.runs, 1);

    // `wrun snapshot` asks through the journal; the running process sees
    // the request at its next commit and records it served.
    assert_eq!(journal.request_snapshot(job).unwrap(), 1);
    assert_eq!(journal.request_snapshot(job).unwrap(), 2);
    let committed = journal.commit(job, &Batch::default()).unwrap();
    assert_eq!(committed.snapshots_requested, 2);
    assert_eq!(reader.snapshots_taken(job).unwrap(), 0);
    let served = Batch {
        snapshots_taken: Some(2),
        ..Batch::default()
    };
    journal.commit(job, &served).unwrap();
    assert_eq!(reader.snapshots_taken(job).unwrap(), 2);
    assert!(matches!(
        journal.request_snapshot(99),
        Err(JournalError::NoJob(99))
    ));

    // Removing the job hands back its snapshot blobs to delete.
    let orphans = journal.remove_job(job).unwrap();
    assert!(orphans.contains(&[7; 32]), "{orphans:?}");
}

#[test]
fn the_state_machine_refuses_illegal_transitions() {
    let mut row = task(3, TaskState::Queued);
    row.transition(TaskState::Running { started_at: 1 })
        .unwrap();
    row.transition(done(b"")).unwrap();
    let error = row.transition(TaskState::Queued).unwrap_err();
    assert_eq!(error.to_string(), "task 3: cannot go from done to queued");
    assert_eq!(row.state.kind(), TaskStateKind::Done);
    let mut row = task(4, TaskState::Queued);
    assert!(
        row.transition(done(b"")).is_err(),
        "queued cannot be done unrun"
    );
}

/// Attempt `attempt` of task `index`, lost with its process.
fn lost(index: u64, attempt: u32, started_at: i64) -> AttemptRecord {
    AttemptRecord {
        index,
        attempt,
        node: None,
        started_at,
        ended_at: started_at + 1,
        end: AttemptEnd::Lost(PROCESS_DIED.into()),
        log: Vec::new(),
    }
}

/// A snapshot taken at `taken_at`.
fn snapshot(taken_at: i64) -> Option<SnapshotRef> {
    Some(SnapshotRef {
        digest: [taken_at as u8; 32],
        taken_at,
        position: format!("after {taken_at} calls"),
        fuel_used: None,
    })
}

#[test]
fn recovery_requeues_running_tasks_and_quarantines_repeat_offenders() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let job = journal
        .create_job(None, &[1; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    // Task 2 died twice before, and runs its third attempt.
    let repeat = TaskRow {
        attempts: QUARANTINE_AFTER,
        lost: QUARANTINE_AFTER - 1,
        ..task(2, TaskState::Running { started_at: 30 })
    };
    let batch = Batch {
        tasks: vec![
            task(0, done(b"a")),
            task(1, TaskState::Running { started_at: 1 }),
            repeat,
            task(3, TaskState::Queued),
            task(4, failed(FailureKind::Trap)),
        ],
        attempts: (1..QUARANTINE_AFTER)
            .map(|n| lost(2, n, 10 * i64::from(n)))
            .collect(),
        ..Batch::default()
    };
    journal.commit(job, &batch).unwrap();
    let recovery = recover(&mut journal, job).unwrap();
    assert_eq!(
        recovery,
        Recovery {
            requeued: 1,
            quarantined: 1
        }
    );
    let tasks = journal.tasks(job, None).unwrap();
    let states: Vec<_> = tasks.iter().map(|t| t.state.kind()).collect();
    use TaskStateKind::*;
    assert_eq!(states, [Done, Queued, Failed, Queued, Failed]);
    assert_eq!(tasks[1].lost, 1);
    assert_eq!(tasks[2].lost, QUARANTINE_AFTER);
    match &tasks[2].state {
        TaskState::Failed { error, .. } => {
            assert_eq!(error.kind, FailureKind::Quarantined);
            assert!(
                error.message.contains("died 3 times with no new snapshot"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tasks[0], batch.tasks[0], "done tasks are untouched");
    // Every death is an attempt, lost: as many as the task row counts.
    let attempts = journal.attempts(job, Some(2)).unwrap();
    assert_eq!(attempts.len(), QUARANTINE_AFTER as usize);
    assert_eq!(attempts[2].attempt, QUARANTINE_AFTER);
    assert_eq!(attempts[2].started_at, 30);
    assert_eq!(attempts[2].end, AttemptEnd::Lost(PROCESS_DIED.into()));
    assert_eq!(
        journal.attempts(job, Some(1)).unwrap(),
        [AttemptRecord {
            ended_at: journal.attempts(job, Some(1)).unwrap()[0].ended_at,
            ..lost(1, 1, 1)
        }]
    );
    // Recovering again finds nothing running.
    assert_eq!(recover(&mut journal, job).unwrap(), Recovery::default());
}

#[test]
fn only_deaths_with_no_new_snapshot_count_towards_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let job = journal
        .create_job(None, &[2; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    let mut run = |started_at: i64, snapshot_at: Option<i64>| {
        let attempts = journal.task(job, 0).unwrap().map_or(1, |t| t.attempts + 1);
        let lost = journal.task(job, 0).unwrap().map_or(0, |t| t.lost);
        let row = TaskRow {
            attempts,
            lost,
            snapshot: snapshot_at.and_then(snapshot),
            ..task(0, TaskState::Running { started_at })
        };
        journal
            .commit(
                job,
                &Batch {
                    tasks: vec![row],
                    ..Batch::default()
                },
            )
            .unwrap();
        recover(&mut journal, job).unwrap()
    };
    let requeued = Recovery {
        requeued: 1,
        quarantined: 0,
    };
    // Every run snapshots before its process dies: resumed every time.
    for n in 1..=2 * i64::from(QUARANTINE_AFTER) {
        assert_eq!(run(100 * n, Some(100 * n + 50)), requeued, "death {n}");
    }
    // Then runs that die before their first snapshot: the third is the
    // last.
    assert_eq!(run(1000, Some(650)), requeued);
    assert_eq!(run(1100, Some(650)), requeued);
    assert_eq!(
        run(1200, Some(650)),
        Recovery {
            requeued: 0,
            quarantined: 1
        }
    );
    let task = journal.task(job, 0).unwrap().unwrap();
    assert_eq!(task.lost, 2 * QUARANTINE_AFTER + 3);
    assert_eq!(task.attempts, task.lost);
    assert_eq!(
        journal.attempts(job, Some(0)).unwrap().len(),
        task.lost as usize
    );
}

#[test]
fn requeueing_a_state_that_may_not_be_queued_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let job = journal
        .create_job(None, &[4; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    let batch = Batch {
        tasks: vec![
            task(0, done(b"a")),
            task(1, failed(FailureKind::Trap)),
            task(2, TaskState::Queued),
        ],
        ..Batch::default()
    };
    journal.commit(job, &batch).unwrap();
    use TaskStateKind::*;
    for illegal in [Done, Queued] {
        let error = journal.requeue(job, &[Failed, illegal]).unwrap_err();
        assert!(
            matches!(
                error,
                JournalError::IllegalTransition { job: j, from, to: Queued }
                    if j == job && from == illegal
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!("job {job}: {illegal} tasks cannot go to queued")
        );
        assert_eq!(journal.tasks(job, None).unwrap(), batch.tasks);
    }
    assert_eq!(journal.requeue(job, &[]).unwrap(), 0);
    assert_eq!(journal.requeue(job, &[Failed, Cancelled]).unwrap(), 1);
    let states: Vec<_> = journal
        .tasks(job, None)
        .unwrap()
        .iter()
        .map(|t| t.state.kind())
        .collect();
    assert_eq!(states, [Done, Queued, Queued]);
}

#[test]
fn cancel_retry_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let job = journal
        .create_job(None, &[2; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    let mut stored = done(b"big");
    if let TaskState::Done { output, .. } = &mut stored {
        output.inline = false;
    }
    journal
        .commit(
            job,
            &Batch {
                tasks: vec![
                    task(0, stored.clone()),
                    task(1, TaskState::Running { started_at: 1 }),
                    task(2, failed(FailureKind::Host)),
                    task(3, TaskState::Queued),
                ],
                ..Batch::default()
            },
        )
        .unwrap();
    journal.request_cancel(job).unwrap();
    let committed = journal.commit(job, &Batch::default()).unwrap();
    assert!(committed.cancel_requested);
    assert_eq!(
        journal
            .cancel_unfinished(job, Some(JobState::Cancelled))
            .unwrap(),
        2
    );
    assert_eq!(journal.job(job).unwrap().state, JobState::Cancelled);
    assert_eq!(journal.unfinished_job(&[2; 32]).unwrap(), Some(job));

    journal
        .requeue(job, &[TaskStateKind::Failed, TaskStateKind::Cancelled])
        .unwrap();
    journal.start_run(job).unwrap();
    let record = journal.job(job).unwrap();
    assert_eq!(
        (record.state, record.runs, record.cancel_requested),
        (JobState::Running, 2, false)
    );
    assert_eq!(journal.counts(job).unwrap().get(TaskStateKind::Queued), 3);

    // A second job shares the stored output: removing the first keeps it.
    let other = journal
        .create_job(None, &[3; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    journal
        .commit(
            other,
            &Batch {
                tasks: vec![task(0, stored.clone())],
                ..Batch::default()
            },
        )
        .unwrap();
    assert!(journal.remove_job(job).unwrap().is_empty());
    assert!(matches!(journal.job(job), Err(JournalError::NoJob(_))));
    assert!(journal.tasks(job, None).unwrap().is_empty());
    let orphans = journal.remove_job(other).unwrap();
    assert_eq!(orphans, vec![*blake3::hash(b"big").as_bytes()]);
    assert!(matches!(
        journal.remove_job(other),
        Err(JournalError::NoJob(_))
    ));
}

#[test]
fn a_corrupt_journal_is_named_and_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let garbage = b"this is not a database, not even close; ".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let error = Journal::open(&path).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("corrupt"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn a_journal_from_a_newer_wrun_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    drop(open(dir.path()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let error = Journal::open(&path).unwrap_err();
    assert!(
        matches!(error, JournalError::TooNew { found: 99, .. }),
        "{error:?}"
    );
}

/// The journal written by schema version 1, checked in: every later
/// version must still open it and read the same jobs. Regenerate (only
/// when adding a fixture for a new version) with `WRUN_BLESS=1`.
#[test]
fn a_version_1_journal_still_opens_and_reads_the_same() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal-v1.db");
    if std::env::var_os("WRUN_BLESS").is_some() && !fixture.exists() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = open(dir.path());
        let job = journal
            .create_job(Some("v1"), &[9; 32], &spec(), |_| Ok::<_, JournalError>(()))
            .unwrap()
            .0;
        journal
            .commit(
                job,
                &Batch {
                    tasks: vec![task(0, done(b"x\n")), task(1, failed(FailureKind::Trap))],
                    outputs: vec![(0, b"x\n".to_vec())],
                    attempts: Vec::new(),
                    tasks_total: Some(2),
                    ..Batch::default()
                },
            )
            .unwrap();
        journal.finish_job(job, JobState::Failed).unwrap();
        // Fold the WAL into the main file so one file is the whole journal.
        drop(journal);
        let conn = rusqlite::Connection::open(dir.path().join("journal.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "delete").unwrap();
        drop(conn);
        std::fs::copy(dir.path().join("journal.db"), &fixture).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("journal.db");
    std::fs::copy(&fixture, &copy).expect("the v1 fixture is checked in");
    let journal = Journal::open(&copy).unwrap();
    journal.check_integrity().unwrap();
    let jobs = journal.jobs().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].name.as_deref(), Some("v1"));
    // Version 1 had no snapshots: the spec reads with none.
    assert_eq!(
        jobs[0].spec,
        JobSpec {
            checkpoint_every: None,
            data: Vec::new(),
            after: Vec::new(),
            ..spec()
        }
    );
    assert_eq!(jobs[0].state, JobState::Failed);
    let tasks = journal.tasks(jobs[0].id, None).unwrap();
    assert_eq!(
        tasks,
        vec![task(0, done(b"x\n")), task(1, failed(FailureKind::Trap))]
    );
    assert_eq!(
        journal.output(jobs[0].id, 0).unwrap().as_deref(),
        Some(&b"x\n"[..])
    );
    // Version 5 added allocation queues: none yet.
    assert_eq!(journal.queues().unwrap(), Vec::new());
}

#[test]
fn allocation_queues_and_their_allocations_are_kept_until_the_queue_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let mut queue = QueueRow {
        name: "q".into(),
        spec: "{}".into(),
        paused: None,
        failures: 0,
    };
    journal.put_queue(&queue).unwrap();
    queue.paused = Some("3 allocations failed in a row".into());
    queue.failures = 3;
    journal.put_queue(&queue).unwrap();
    let mut allocation = AllocationRow {
        id: "17".into(),
        state: "queued".into(),
        reason: None,
        connected: false,
        submitted_at: 5,
        started_at: None,
    };
    journal.put_allocation("q", &allocation).unwrap();
    allocation.state = "failed".into();
    allocation.reason = Some("FAILED (NonZeroExitCode)".into());
    journal.put_allocation("q", &allocation).unwrap();
    drop(journal);
    let mut journal = open(dir.path());
    assert_eq!(journal.queues().unwrap(), vec![queue]);
    assert_eq!(journal.allocations("q").unwrap(), vec![allocation]);
    assert!(journal.remove_queue("q").unwrap());
    assert!(!journal.remove_queue("q").unwrap());
    assert_eq!(journal.allocations("q").unwrap(), Vec::new());
}

#[test]
fn a_job_lock_is_exclusive_and_dies_with_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!JobLock::is_held(dir.path(), 1).unwrap());
    let lock = JobLock::acquire(dir.path(), 1).unwrap().expect("free");
    assert!(JobLock::is_held(dir.path(), 1).unwrap());
    assert!(JobLock::acquire(dir.path(), 1).unwrap().is_none());
    assert!(
        JobLock::acquire(dir.path(), 2).unwrap().is_some(),
        "per job"
    );
    drop(lock);
    assert!(!JobLock::is_held(dir.path(), 1).unwrap());
    assert!(JobLock::acquire(dir.path(), 1).unwrap().is_some());
    JobLock::remove(dir.path(), 1).unwrap();
}

/// The counts a scan of job `job`'s task rows gives.
fn scanned(journal: &Journal, job: i64) -> wrun_journal::TaskCounts {
    let mut counts = wrun_journal::TaskCounts::default();
    for row in journal.tasks(job, None).unwrap() {
        let kind = row.state.kind();
        *counts.by_state.entry(kind).or_default() += 1;
        if matches!(kind, TaskStateKind::Done | TaskStateKind::Failed) {
            counts.finished_bytes += row.pos.len;
        }
        if kind == TaskStateKind::Done {
            counts.done_records += row.pos.records;
        }
    }
    counts
}

#[test]
fn the_task_summary_agrees_with_the_tasks_after_every_kind_of_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let job = journal
        .create_job(None, &[4; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    let check = |journal: &Journal, step: &str| {
        assert_eq!(
            journal.counts(job).unwrap(),
            scanned(journal, job),
            "{step}"
        );
    };
    let commit = |journal: &mut Journal, tasks: Vec<TaskRow>| {
        journal
            .commit(
                job,
                &Batch {
                    tasks,
                    ..Batch::default()
                },
            )
            .unwrap();
    };
    check(&journal, "new job");
    // New rows, then the same rows again in other states (INSERT OR
    // REPLACE), with a chunk whose length changes.
    commit(
        &mut journal,
        (0..6).map(|i| task(i, TaskState::Queued)).collect(),
    );
    check(&journal, "queued");
    commit(
        &mut journal,
        vec![
            task(0, done(b"a")),
            task(1, TaskState::Running { started_at: 1 }),
            task(2, failed(FailureKind::Trap)),
            TaskRow {
                pos: ChunkPos {
                    len: 7,
                    ..task(3, TaskState::Queued).pos
                },
                ..task(3, TaskState::Running { started_at: 2 })
            },
        ],
    );
    check(&journal, "replaced");
    // Recovery's bulk updates, a cancel, a requeue.
    recover(&mut journal, job).unwrap();
    check(&journal, "recovered");
    journal
        .cancel_unfinished(job, Some(JobState::Cancelled))
        .unwrap();
    check(&journal, "cancelled");
    journal
        .requeue(job, &[TaskStateKind::Failed, TaskStateKind::Cancelled])
        .unwrap();
    check(&journal, "requeued");
    // Another job's tasks are counted apart; removing this job forgets it.
    let other = journal
        .create_job(None, &[5; 32], &spec(), |_| Ok::<_, JournalError>(()))
        .unwrap()
        .0;
    journal
        .commit(
            other,
            &Batch {
                tasks: vec![task(0, done(b"b"))],
                ..Batch::default()
            },
        )
        .unwrap();
    check(&journal, "other job");
    journal.remove_job(job).unwrap();
    assert_eq!(
        journal.counts(job).unwrap(),
        wrun_journal::TaskCounts::default()
    );
    assert_eq!(journal.counts(other).unwrap().get(TaskStateKind::Done), 1);
}

#[test]
fn a_snapshot_supersedes_the_blobs_only_its_predecessors_needed() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path());
    let mut create = |fingerprint| {
        journal
            .create_job(None, &[fingerprint; 32], &spec(), |_| {
                Ok::<_, JournalError>(())
            })
            .unwrap()
            .0
    };
    let (job, other) = (create(3), create(4));
    let (a, b, c, d) = ([1; 32], [2; 32], [3; 32], [4; 32]);
    let mut commit = |job, snapshots: Vec<(u64, Vec<[u8; 32]>)>| {
        let batch = Batch {
            snapshots,
            ..Batch::default()
        };
        let mut superseded = journal.commit(job, &batch).unwrap().superseded;
        superseded.sort_unstable();
        superseded
    };
    // Task 0's snapshots: a; then b on base a; then c on base b.
    assert_eq!(commit(job, vec![(0, vec![a])]), Vec::<[u8; 32]>::new());
    assert_eq!(commit(job, vec![(0, vec![b, a])]), Vec::<[u8; 32]>::new());
    // Another job's task shares blob c (the same chunk, arguments and
    // module write the same blobs); task 1 needs d.
    assert_eq!(commit(other, vec![(0, vec![c])]), Vec::<[u8; 32]>::new());
    assert_eq!(
        commit(job, vec![(1, vec![d]), (0, vec![c, b])]),
        vec![a],
        "a is needed by nothing now"
    );
    assert_eq!(commit(job, vec![(0, Vec::new())]), vec![b], "c is shared");
    let mut blobs = open(dir.path()).snapshot_blobs(job).unwrap();
    blobs.sort_unstable();
    assert_eq!(blobs, vec![d]);
    // Two snapshots of a task in one commit: the first is superseded at
    // once.
    assert_eq!(commit(job, vec![(1, vec![a]), (1, vec![b])]), vec![a, d]);
}
