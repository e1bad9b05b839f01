//! The journal: one SQLite database for all of a user's jobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use crate::attempt::{AttemptEnd, AttemptRecord};
use crate::blobs;
use crate::schema::{self, MigrateError};
use crate::state::sql::Transition;
use crate::state::{FailureKind, JobState, Millis, OutputRef, TaskError, TaskState, TaskStateKind};
use crate::{ChunkPos, JobSpec, SnapshotRef, TaskRow};

/// A job's number, unique in a journal.
pub type JobId = i64;

/// Why the journal could not do something.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file is not a database, or is damaged.
    #[error("the journal {path} is corrupt ({detail}); move it away to start a new one")]
    Corrupt {
        /// The journal file.
        path: String,
        /// What SQLite found wrong.
        detail: String,
    },
    /// Written by a newer wrun.
    #[error("the journal {path} has schema version {found}; this wrun reads up to {supported}")]
    TooNew {
        /// The journal file.
        path: String,
        /// Its schema version.
        found: u32,
        /// The newest schema version this wrun reads.
        supported: u32,
    },
    /// Any other SQLite failure (a full disk, a permission, …).
    #[error("journal {path}: {source}")]
    Sqlite {
        /// The journal file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory for the journal cannot be made.
    #[error("cannot create the journal directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why it cannot be made.
        #[source]
        source: std::io::Error,
    },
    /// No job has this number.
    #[error("no job {0} in the journal")]
    NoJob(JobId),
    /// A row that this version cannot have written.
    #[error("journal {path}: job {job}: {detail}")]
    BadRecord {
        /// The journal file.
        path: String,
        /// The job the row belongs to.
        job: JobId,
        /// What is wrong with the row.
        detail: String,
    },
    /// A change of the tasks' states that the state machine does not
    /// allow (see [`TaskState::allows`]); nothing was changed.
    #[error("job {job}: {from} tasks cannot go to {to}")]
    IllegalTransition {
        /// The job whose tasks were to change.
        job: JobId,
        /// The first state asked for that may not go to `to`.
        from: TaskStateKind,
        /// The state they were to go to.
        to: TaskStateKind,
    },
}

/// A job as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its number.
    pub id: JobId,
    /// The name given at submit (`--name`), if any.
    pub name: Option<String>,
    /// What the job is.
    pub spec: JobSpec,
    /// Where it stands, as recorded.
    pub state: JobState,
    /// `wrun cancel` asked the running process to stop.
    pub cancel_requested: bool,
    /// Number of tasks, once the whole input has been split.
    pub tasks_total: Option<u64>,
    /// When it was submitted.
    pub created_at: Millis,
    /// When the latest run (submit or resume) started.
    pub started_at: Millis,
    /// When its latest run ended (`None` while it runs, or if its process
    /// died).
    pub finished_at: Option<Millis>,
    /// Runs so far: 1 + resumes and retries.
    pub runs: u32,
}

/// How a job's tasks stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Tasks per state (states with none are absent).
    pub by_state: BTreeMap<TaskStateKind, u64>,
    /// Input bytes of done or failed tasks.
    pub finished_bytes: u64,
    /// Records in done tasks.
    pub done_records: u64,
}

impl TaskCounts {
    /// Tasks in `state`.
    pub fn get(&self, state: TaskStateKind) -> u64 {
        self.by_state.get(&state).copied().unwrap_or(0)
    }

    /// Tasks known so far, in any state.
    pub fn total(&self) -> u64 {
        self.by_state.values().sum()
    }
}

/// Changes to commit together (see [`Journal::commit`]).
#[derive(Debug, Default)]
pub struct Batch {
    /// New states of tasks (each task at most once: its latest state).
    pub tasks: Vec<TaskRow>,
    /// Outputs to keep in the journal, by task index.
    pub outputs: Vec<(u64, Vec<u8>)>,
    /// Attempts worth keeping (see [`AttemptRecord`]).
    pub attempts: Vec<AttemptRecord>,
    /// The input has been split into this many tasks.
    pub tasks_total: Option<u64>,
    /// Tasks whose latest snapshot changed, by task index, with every blob
    /// that snapshot needs (the snapshot's own and its bases; none once
    /// the task needs no snapshot). They replace what the task needed
    /// before: blobs no task of any job needs any more are returned by the
    /// commit ([`Committed::superseded`]), and removing the job deletes the
    /// rest.
    pub snapshots: Vec<(u64, Vec<[u8; 32]>)>,
    /// Every snapshot request up to this one has been served.
    pub snapshots_taken: Option<u64>,
}

impl Batch {
    /// Nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
            && self.outputs.is_empty()
            && self.attempts.is_empty()
            && self.tasks_total.is_none()
            && self.snapshots.is_empty()
            && self.snapshots_taken.is_none()
    }
}

/// What a commit learnt about the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// `wrun cancel` asked this job to stop.
    pub cancel_requested: bool,
    /// How many snapshots `wrun snapshot` has asked of the job so far.
    pub snapshots_requested: u64,
    /// Snapshot blobs that the commit's tasks no longer need and that no
    /// other task of any job needs: the caller deletes them from the store.
    pub superseded: Vec<[u8; 32]>,
}

/// The job journal.
///
/// SQLite in WAL mode with `synchronous=FULL`: a transaction that has
/// committed survives a crash of the process or of the machine. Writers
/// serialise on SQLite's lock (waiting up to [`Journal::BUSY_TIMEOUT`]);
/// every write transaction takes the lock when it begins (`IMMEDIATE`), so
/// none fails half-way for another process's write; readers never block
/// writers.
#[derive(Debug)]
pub struct Journal {
    pub(crate) conn: Connection,
    path: PathBuf,
}

/// Now, in journal time.
pub fn now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

impl Journal {
    /// How long a writer waits for another process's transaction.
    pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

    /// Open the journal at `path`, creating it (and its directory) if
    /// needed, and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // SQLite answers "busy" without waiting in a few cases its busy
        // handler cannot cover (another process creating the journal, or
        // switching it to WAL, at this very moment): try again, within the
        // same bound as any other wait for the lock.
        let deadline = std::time::Instant::now() + Self::BUSY_TIMEOUT;
        loop {
            match Self::try_open(path, &name) {
                Err(JournalError::Sqlite { source, .. })
                    if is_busy(&source) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    fn try_open(path: &Path, name: &str) -> Result<Journal, JournalError> {
        let sqlite = |source| sqlite_error(name, source);
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Self::BUSY_TIMEOUT).map_err(sqlite)?;
        // Reading the mode reads the file: a non-database fails here. Only
        // a new journal needs switching to WAL (which takes a lock).
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
                .map_err(sqlite)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(JournalError::Corrupt {
                    path: name.to_owned(),
                    detail: format!("cannot use write-ahead logging (mode {mode})"),
                });
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        // `task_counts` is kept by triggers (schema version 4), which must
        // see the row an `INSERT OR REPLACE` replaces.
        conn.pragma_update(None, "recursive_triggers", "ON")
            .map_err(sqlite)?;
        match schema::migrate(&mut conn) {
            Ok(()) => {}
            Err(MigrateError::TooNew(found)) => {
                return Err(JournalError::TooNew {
                    path: name.to_owned(),
                    found,
                    supported: schema::VERSION,
                });
            }
            Err(MigrateError::Sqlite(source)) => return Err(sqlite(source)),
        }
        Ok(Journal {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn error(&self) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
        |source| sqlite_error(&self.path.display().to_string(), source)
    }

    fn bad_record(&self, job: JobId, detail: impl Into<String>) -> JournalError {
        JournalError::BadRecord {
            path: self.path.display().to_string(),
            job,
            detail: detail.into(),
        }
    }

    /// Check the whole database (SQLite's `quick_check`): done after an
    /// unclean shutdown, before trusting what the journal says.
    pub fn check_integrity(&self) -> Result<(), JournalError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check")
            .map_err(self.error())?;
        let problems: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .map_err(self.error())?
            .collect::<Result<_, _>>()
            .map_err(self.error())?;
        match problems.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => Err(JournalError::Corrupt {
                path: self.path.display().to_string(),
                detail: problems.join("; "),
            }),
        }
    }

    /// Record a new job, running. `claim` is called with its number
    /// before the job becomes visible to other processes (to take its
    /// [`crate::JobLock`], so that nobody sees it running without an
    /// owner); if it fails, nothing is recorded.
    pub fn create_job<T, E: From<JournalError>>(
        &mut self,
        name: Option<&str>,
        fingerprint: &[u8; 32],
        spec: &JobSpec,
        claim: impl FnOnce(JobId) -> Result<T, E>,
    ) -> Result<(JobId, T), E> {
        let spec = serde_json::to_string(spec).expect("a job spec serialises");
        let path = self.path.display().to_string();
        let sqlite = |source| sqlite_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        // Numbers are never reused (AUTOINCREMENT): the next is one past
        // the largest ever given.
        let id: JobId = tx
            .query_row(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0) + 1",
                [],
                |row| row.get(0),
            )
            .map_err(sqlite)?;
        let claimed = claim(id)?;
        tx.execute(
            "INSERT INTO jobs (id, name, fingerprint, spec, state, created_at, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                id,
                name,
                &fingerprint[..],
                spec,
                JobState::Running.as_str(),
                now()
            ],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok((id, claimed))
    }

    /// The job numbered `id`.
    pub fn job(&self, id: JobId) -> Result<JobRecord, JournalError> {
        self.conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                raw_job,
            )
            .optional()
            .map_err(self.error())?
            .ok_or(JournalError::NoJob(id))
            .and_then(|raw| self.job_record(raw))
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id"))
            .map_err(self.error())?;
        let raws: Vec<RawJob> = stmt
            .query_map([], raw_job)
            .map_err(self.error())?
            .collect::<Result<_, _>>()
            .map_err(self.error())?;
        raws.into_iter().map(|raw| self.job_record(raw)).collect()
    }

    /// The newest job with this fingerprint that has not finished (still
    /// `running` in the journal, or cancelled): what the same submit again
    /// resumes.
    pub fn unfinished_job(&self, fingerprint: &[u8; 32]) -> Result<Option<JobId>, JournalError> {
        self.conn
            .query_row(
                "SELECT id FROM jobs WHERE fingerprint = ?1
                 AND state IN (?2, ?3, ?4) ORDER BY id DESC LIMIT 1",
                params![
                    &fingerprint[..],
                    JobState::Running.as_str(),
                    JobState::Cancelled.as_str(),
                    JobState::Suspended.as_str()
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.error())
    }

    fn job_record(&self, raw: RawJob) -> Result<JobRecord, JournalError> {
        let spec = serde_json::from_str(&raw.spec)
            .map_err(|e| self.bad_record(raw.id, format!("unreadable job spec: {e}")))?;
        let state = raw
            .state
            .parse()
            .map_err(|e: String| self.bad_record(raw.id, e))?;
        Ok(JobRecord {
            id: raw.id,
            name: raw.name,
            spec,
            state,
            cancel_requested: raw.cancel_requested,
            tasks_total: raw.tasks_total,
            created_at: raw.created_at,
            started_at: raw.started_at,
            finished_at: raw.finished_at,
            runs: raw.runs,
        })
    }

    /// How the tasks of job `id` stand, from the `task_counts` summary
    /// (a few rows whatever the job's size; kept by triggers).
    pub fn counts(&self, id: JobId) -> Result<TaskCounts, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT state, tasks, bytes, records FROM task_counts
                 WHERE job = ?1 AND tasks > 0",
            )
            .map_err(self.error())?;
        let rows = stmt
            .query_map([id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, u64>(1)?,
                    row.get::<_, u64>(2)?,
                    row.get::<_, u64>(3)?,
                ))
            })
            .map_err(self.error())?;
        let mut counts = TaskCounts::default();
        for row in rows {
            let (state, tasks, bytes, records) = row.map_err(self.error())?;
            let state: TaskStateKind = state.parse().map_err(|e: String| self.bad_record(id, e))?;
            counts.by_state.insert(state, tasks);
            if matches!(state, TaskStateKind::Done | TaskStateKind::Failed) {
                counts.finished_bytes += bytes;
            }
            if state == TaskStateKind::Done {
                counts.done_records += records;
            }
        }
        Ok(counts)
    }

    /// Tasks of job `id` in index order, only those in `state` if given.
    pub fn tasks(
        &self,
        id: JobId,
        state: Option<TaskStateKind>,
    ) -> Result<Vec<TaskRow>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks
                 WHERE job = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY idx"
            ))
            .map_err(self.error())?;
        let rows = stmt
            .query_map(params![id, state.map(TaskStateKind::as_str)], raw_task)
            .map_err(self.error())?;
        rows.map(|raw| {
            let raw = raw.map_err(self.error())?;
            self.task_row(id, raw)
        })
        .collect()
    }

    /// Task `index` of job `id`, if recorded.
    pub fn task(&self, id: JobId, index: u64) -> Result<Option<TaskRow>, JournalError> {
        let raw = self
            .conn
            .query_row(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE job = ?1 AND idx = ?2"),
                params![id, index],
                raw_task,
            )
            .optional()
            .map_err(self.error())?;
        raw.map(|raw| self.task_row(id, raw)).transpose()
    }

    fn task_row(&self, job: JobId, raw: RawTask) -> Result<TaskRow, JournalError> {
        let missing = |column: &str| {
            self.bad_record(
                job,
                format!("task {}: {} without {column}", raw.index, raw.state),
            )
        };
        let wall = || Duration::from_micros(raw.wall_us.unwrap_or(0));
        let state = match raw
            .state
            .parse()
            .map_err(|e: String| self.bad_record(job, e))?
        {
            TaskStateKind::Queued => TaskState::Queued,
            TaskStateKind::Running => TaskState::Running {
                started_at: raw.started_at.ok_or_else(|| missing("started_at"))?,
            },
            TaskStateKind::Done => {
                let digest = raw
                    .output_digest
                    .as_deref()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .ok_or_else(|| missing("output_digest"))?;
                TaskState::Done {
                    finished_at: raw.finished_at.ok_or_else(|| missing("finished_at"))?,
                    wall: wall(),
                    fuel_used: raw.fuel_used,
                    output: OutputRef {
                        digest,
                        len: raw.output_len.ok_or_else(|| missing("output_len"))?,
                        inline: raw.output_inline.unwrap_or(false),
                    },
                }
            }
            TaskStateKind::Failed => {
                let kind: FailureKind = raw
                    .failure_kind
                    .as_deref()
                    .ok_or_else(|| missing("failure_kind"))?
                    .parse()
                    .map_err(|e: String| self.bad_record(job, e))?;
                TaskState::Failed {
                    finished_at: raw.finished_at.ok_or_else(|| missing("finished_at"))?,
                    wall: wall(),
                    error: TaskError {
                        kind,
                        message: raw.failure_message.unwrap_or_default(),
                    },
                }
            }
            TaskStateKind::Cancelled => TaskState::Cancelled {
                at: raw.finished_at.ok_or_else(|| missing("finished_at"))?,
            },
            TaskStateKind::Suspended => TaskState::Suspended {
                at: raw.finished_at.ok_or_else(|| missing("finished_at"))?,
                reason: raw
                    .suspend_reason
                    .as_deref()
                    .ok_or_else(|| missing("suspend_reason"))?
                    .parse()
                    .map_err(|e: String| self.bad_record(job, e))?,
            },
        };
        let snapshot_ref = |columns: [&str; 2],
                            digest: Option<Vec<u8>>,
                            at: Option<Millis>,
                            position: Option<String>,
                            fuel_used: Option<u64>| {
            let Some(digest) = digest else {
                return Ok(None);
            };
            Ok(Some(SnapshotRef {
                digest: <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
                    self.bad_record(
                        job,
                        format!("task {}: bad {} digest", raw.index, columns[0]),
                    )
                })?,
                taken_at: at.ok_or_else(|| missing(columns[1]))?,
                position: position.unwrap_or_default(),
                fuel_used,
            }))
        };
        let snapshot = snapshot_ref(
            ["snapshot", "snapshot_at"],
            raw.snapshot,
            raw.snapshot_at,
            raw.snapshot_position,
            raw.snapshot_fuel,
        )?;
        let resumed_from = snapshot_ref(
            ["resumed_from", "resumed_at"],
            raw.resumed_from,
            raw.resumed_at,
            raw.resumed_position,
            raw.resumed_fuel,
        )?;
        Ok(TaskRow {
            index: raw.index,
            pos: raw.pos,
            attempts: raw.attempts,
            lost: raw.lost,
            node: raw.node,
            state,
            snapshot,
            resumed_from,
        })
    }

    /// The recorded attempts of job `id`, of task `index` only if given.
    pub fn attempts(
        &self,
        id: JobId,
        index: Option<u64>,
    ) -> Result<Vec<AttemptRecord>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT idx, attempt, node, started_at, ended_at, outcome, message, log
                 FROM attempts WHERE job = ?1 AND (?2 IS NULL OR idx = ?2)
                 ORDER BY idx, attempt",
            )
            .map_err(self.error())?;
        let rows = stmt
            .query_map(params![id, index], |row| {
                Ok((
                    AttemptRecord {
                        index: row.get(0)?,
                        attempt: row.get(1)?,
                        node: row.get(2)?,
                        started_at: row.get(3)?,
                        ended_at: row.get(4)?,
                        end: AttemptEnd::Done,
                        log: row.get(7)?,
                    },
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(self.error())?;
        rows.map(|row| {
            let (mut attempt, outcome, message) = row.map_err(self.error())?;
            attempt.end =
                AttemptEnd::parse(&outcome, message).map_err(|e| self.bad_record(id, e))?;
            Ok(attempt)
        })
        .collect()
    }

    /// The output of task `index` of job `id`, when kept in the journal.
    pub fn output(&self, id: JobId, index: u64) -> Result<Option<Vec<u8>>, JournalError> {
        self.conn
            .prepare_cached("SELECT data FROM outputs WHERE job = ?1 AND idx = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![id, index], |row| row.get(0))
                    .optional()
            })
            .map_err(self.error())
    }

    /// Commit `batch` in one transaction. Once this returns, the changes
    /// survive a crash; only then may they be reported.
    pub fn commit(&mut self, id: JobId, batch: &Batch) -> Result<Committed, JournalError> {
        self.transaction(|tx| {
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO tasks (job, idx, offset, len, first_record, records,
                         attempts, lost, node, state, started_at, finished_at, wall_us, fuel_used,
                         output_digest, output_len, output_inline, failure_kind, failure_message,
                         suspend_reason, snapshot, snapshot_at, snapshot_position, snapshot_fuel,
                         resumed_from, resumed_at, resumed_position, resumed_fuel)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
                )?;
                for task in &batch.tasks {
                    let columns = StateColumns::of(&task.state);
                    insert.execute(params![
                        id,
                        task.index,
                        task.pos.offset,
                        task.pos.len,
                        task.pos.first_record,
                        task.pos.records,
                        task.attempts,
                        task.lost,
                        task.node,
                        task.state.kind().as_str(),
                        columns.started_at,
                        columns.finished_at,
                        columns.wall_us,
                        columns.fuel_used,
                        columns.output_digest,
                        columns.output_len,
                        columns.output_inline,
                        columns.failure_kind,
                        columns.failure_message,
                        columns.suspend_reason,
                        task.snapshot.as_ref().map(|s| &s.digest[..]),
                        task.snapshot.as_ref().map(|s| s.taken_at),
                        task.snapshot.as_ref().map(|s| &s.position),
                        task.snapshot.as_ref().and_then(|s| s.fuel_used),
                        task.resumed_from.as_ref().map(|s| &s.digest[..]),
                        task.resumed_from.as_ref().map(|s| s.taken_at),
                        task.resumed_from.as_ref().map(|s| &s.position),
                        task.resumed_from.as_ref().and_then(|s| s.fuel_used),
                    ])?;
                }
            }
            if !batch.outputs.is_empty() {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO outputs (job, idx, data) VALUES (?1, ?2, ?3)",
                )?;
                for (index, data) in &batch.outputs {
                    insert.execute(params![id, index, data])?;
                }
            }
            if !batch.attempts.is_empty() {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO attempts
                         (job, idx, attempt, node, started_at, ended_at, outcome, message, log)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for attempt in &batch.attempts {
                    insert.execute(params![
                        id,
                        attempt.index,
                        attempt.attempt,
                        attempt.node,
                        attempt.started_at,
                        attempt.ended_at,
                        attempt.end.outcome(),
                        attempt.end.message(),
                        attempt.log,
                    ])?;
                }
            }
            let superseded = blobs::replace(tx, id, &batch.snapshots)?;
            if let Some(taken) = batch.snapshots_taken {
                tx.execute(
                    "UPDATE jobs SET snapshots_taken = max(snapshots_taken, ?2) WHERE id = ?1",
                    params![id, taken],
                )?;
            }
            if let Some(total) = batch.tasks_total {
                tx.execute(
                    "UPDATE jobs SET tasks_total = ?2 WHERE id = ?1",
                    params![id, total],
                )?;
            }
            let (cancel_requested, snapshots_requested) = tx
                .prepare_cached(
                    "SELECT cancel_requested, snapshots_requested FROM jobs WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.query_row([id], |row| Ok((row.get(0)?, row.get(1)?))))?;
            Ok(Committed {
                cancel_requested,
                snapshots_requested,
                superseded,
            })
        })
    }

    /// A new run of job `id` starts (a resume or a retry): it is running
    /// again and no cancel is pending.
    pub fn start_run(&mut self, id: JobId) -> Result<(), JournalError> {
        self.update_job(
            id,
            "UPDATE jobs SET state = ?3, cancel_requested = 0, finished_at = NULL,
             started_at = ?2, runs = runs + 1 WHERE id = ?1",
            params![id, now(), JobState::Running.as_str()],
        )
    }

    /// Job `id` ended in `state`.
    pub fn finish_job(&mut self, id: JobId, state: JobState) -> Result<(), JournalError> {
        let changed = self
            .conn
            .execute(
                "UPDATE jobs SET state = ?2, finished_at = ?3 WHERE id = ?1",
                params![id, state.as_str(), now()],
            )
            .map_err(self.error())?;
        match changed {
            0 => Err(JournalError::NoJob(id)),
            _ => Ok(()),
        }
    }

    /// Ask the process running job `id` to stop (it checks at every
    /// commit).
    pub fn request_cancel(&mut self, id: JobId) -> Result<(), JournalError> {
        self.update_job(
            id,
            "UPDATE jobs SET cancel_requested = ?2 WHERE id = ?1",
            params![id, 1],
        )
    }

    /// Ask the process running job `id` to snapshot its running tasks (it
    /// checks at every commit, at least every 200 ms). Returns the request's
    /// number, which [`Journal::snapshots_taken`] reaches once served.
    pub fn request_snapshot(&mut self, id: JobId) -> Result<u64, JournalError> {
        self.transaction(|tx| {
            tx.query_row(
                "UPDATE jobs SET snapshots_requested = snapshots_requested + 1 WHERE id = ?1
                 RETURNING snapshots_requested",
                [id],
                |row| row.get(0),
            )
            .optional()
        })?
        .ok_or(JournalError::NoJob(id))
    }

    /// The number of the last snapshot request job `id`'s process served.
    pub fn snapshots_taken(&self, id: JobId) -> Result<u64, JournalError> {
        self.conn
            .query_row(
                "SELECT snapshots_taken FROM jobs WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.error())?
            .ok_or(JournalError::NoJob(id))
    }

    /// Replace job `id`'s spec (`wrun resume --add-fuel` raises its fuel
    /// budget). Its fingerprint stays: it is still the job that was
    /// submitted.
    pub fn set_spec(&mut self, id: JobId, spec: &JobSpec) -> Result<(), JournalError> {
        let text = serde_json::to_string(spec).expect("a job spec always serializes");
        self.update_job(
            id,
            "UPDATE jobs SET spec = ?2 WHERE id = ?1",
            params![id, text],
        )
    }

    /// Every task of job `id` that has not finished (that may still be
    /// cancelled: queued, running or suspended) becomes `cancelled` (in one
    /// transaction with the job's own state when `job_state` is given).
    /// Returns how many.
    pub fn cancel_unfinished(
        &mut self,
        id: JobId,
        job_state: Option<JobState>,
    ) -> Result<u64, JournalError> {
        let cancel = Transition::any_to(TaskStateKind::Cancelled);
        self.transaction(|tx| {
            let at = now();
            let cancelled = tx.execute(
                &format!(
                    "UPDATE tasks SET {}, started_at = NULL, finished_at = ?2
                     WHERE job = ?1 AND {}",
                    cancel.set(),
                    cancel.filter()
                ),
                params![id, at],
            )?;
            if let Some(state) = job_state {
                tx.execute(
                    "UPDATE jobs SET state = ?2, finished_at = ?3 WHERE id = ?1",
                    params![id, state.as_str(), at],
                )?;
            }
            Ok(cancelled as u64)
        })
    }

    /// Tasks of job `id` in any of `states` go back to `queued`, to be run
    /// again (their attempts stay counted), in one transaction. Returns how
    /// many.
    ///
    /// A state that may not go to `queued` (see [`TaskState::allows`]) is
    /// [`JournalError::IllegalTransition`], and nothing changes.
    pub fn requeue(&mut self, id: JobId, states: &[TaskStateKind]) -> Result<u64, JournalError> {
        let requeue = transition(id, states, TaskStateKind::Queued)?;
        if states.is_empty() {
            return Ok(0);
        }
        self.transaction(|tx| {
            tx.execute(
                &format!(
                    "UPDATE tasks SET {}, started_at = NULL, finished_at = NULL,
                     wall_us = NULL, failure_kind = NULL, failure_message = NULL
                     WHERE job = ?1 AND {}",
                    requeue.set(),
                    requeue.filter()
                ),
                [id],
            )
        })
        .map(|changed| changed as u64)
    }

    /// The snapshot blobs job `id`'s tasks need (each distinct blob once):
    /// what its snapshots hold in the store.
    pub fn snapshot_blobs(&self, id: JobId) -> Result<Vec<[u8; 32]>, JournalError> {
        let digests: Vec<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT DISTINCT digest FROM snapshots WHERE job = ?1")
            .and_then(|mut stmt| stmt.query_map([id], |row| row.get(0))?.collect())
            .map_err(self.error())?;
        Ok(digests
            .into_iter()
            .filter_map(|d| <[u8; 32]>::try_from(d).ok())
            .collect())
    }

    /// Delete job `id` and everything recorded about it. Returns the
    /// digests of its outputs and snapshots kept in the store that no other job uses,
    /// for the caller to delete.
    pub fn remove_job(&mut self, id: JobId) -> Result<Vec<[u8; 32]>, JournalError> {
        let path = self.path.display().to_string();
        let sqlite = |source| sqlite_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let orphans: Vec<Vec<u8>> = {
            let mut stmt = tx
                .prepare(
                    "SELECT DISTINCT t.output_digest FROM tasks t
                     WHERE t.job = ?1 AND t.state = ?2 AND t.output_inline = 0
                     AND NOT EXISTS (SELECT 1 FROM tasks u WHERE u.job != ?1
                         AND u.output_digest = t.output_digest AND u.output_inline = 0)
                     UNION
                     SELECT DISTINCT s.digest FROM snapshots s WHERE s.job = ?1
                     AND NOT EXISTS (SELECT 1 FROM snapshots o WHERE o.job != ?1
                         AND o.digest = s.digest)",
                )
                .map_err(sqlite)?;
            stmt.query_map(params![id, TaskStateKind::Done.as_str()], |row| row.get(0))
                .map_err(sqlite)?
                .collect::<Result<_, _>>()
                .map_err(sqlite)?
        };
        for table in ["tasks", "outputs", "attempts", "snapshots", "task_counts"] {
            tx.execute(&format!("DELETE FROM {table} WHERE job = ?1"), [id])
                .map_err(sqlite)?;
        }
        let removed = tx
            .execute("DELETE FROM jobs WHERE id = ?1", [id])
            .map_err(sqlite)?;
        if removed == 0 {
            return Err(JournalError::NoJob(id));
        }
        tx.commit().map_err(sqlite)?;
        Ok(orphans
            .into_iter()
            .filter_map(|d| <[u8; 32]>::try_from(d).ok())
            .collect())
    }

    /// Run `sql`, which changes job `id`'s row, with `params`.
    fn update_job(
        &mut self,
        id: JobId,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<(), JournalError> {
        match self.conn.execute(sql, params).map_err(self.error())? {
            0 => Err(JournalError::NoJob(id)),
            _ => Ok(()),
        }
    }

    /// Run `f` inside one write transaction, committed if it succeeds.
    pub(crate) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let path = self.path.display().to_string();
        let sqlite = |source| sqlite_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let value = f(&tx).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(value)
    }
}

/// Tasks of job `job` in `from` go to `to`, if the state machine allows
/// each of those states to.
pub(crate) fn transition(
    job: JobId,
    from: &[TaskStateKind],
    to: TaskStateKind,
) -> Result<Transition, JournalError> {
    Transition::new(from, to).map_err(|from| JournalError::IllegalTransition { job, from, to })
}

/// Whether SQLite said another connection holds the lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A SQLite error, with corruption told apart.
pub(crate) fn sqlite_error(path: &str, source: rusqlite::Error) -> JournalError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => JournalError::Corrupt {
            path: path.to_owned(),
            detail: source.to_string(),
        },
        _ => JournalError::Sqlite {
            path: path.to_owned(),
            source,
        },
    }
}

const JOB_COLUMNS: &str = "id, name, spec, state, cancel_requested, tasks_total, created_at, \
                           started_at, finished_at, runs";

struct RawJob {
    id: JobId,
    name: Option<String>,
    spec: String,
    state: String,
    cancel_requested: bool,
    tasks_total: Option<u64>,
    created_at: Millis,
    started_at: Millis,
    finished_at: Option<Millis>,
    runs: u32,
}

fn raw_job(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        id: row.get(0)?,
        name: row.get(1)?,
        spec: row.get(2)?,
        state: row.get(3)?,
        cancel_requested: row.get(4)?,
        tasks_total: row.get(5)?,
        created_at: row.get(6)?,
        started_at: row.get(7)?,
        finished_at: row.get(8)?,
        runs: row.get(9)?,
    })
}

const TASK_COLUMNS: &str = "idx, offset, len, first_record, records, attempts, lost, node, \
     state, started_at, finished_at, wall_us, fuel_used, output_digest, output_len, \
     output_inline, failure_kind, failure_message, suspend_reason, snapshot, snapshot_at, \
     snapshot_position, snapshot_fuel, resumed_from, resumed_at, resumed_position, resumed_fuel";

struct RawTask {
    index: u64,
    pos: ChunkPos,
    attempts: u32,
    lost: u32,
    node: Option<String>,
    state: String,
    started_at: Option<Millis>,
    finished_at: Option<Millis>,
    wall_us: Option<u64>,
    fuel_used: Option<u64>,
    output_digest: Option<Vec<u8>>,
    output_len: Option<u64>,
    output_inline: Option<bool>,
    failure_kind: Option<String>,
    failure_message: Option<String>,
    suspend_reason: Option<String>,
    snapshot: Option<Vec<u8>>,
    snapshot_at: Option<Millis>,
    snapshot_position: Option<String>,
    snapshot_fuel: Option<u64>,
    resumed_from: Option<Vec<u8>>,
    resumed_at: Option<Millis>,
    resumed_position: Option<String>,
    resumed_fuel: Option<u64>,
}

fn raw_task(row: &Row<'_>) -> rusqlite::Result<RawTask> {
    Ok(RawTask {
        index: row.get(0)?,
        pos: ChunkPos {
            offset: row.get(1)?,
            len: row.get(2)?,
            first_record: row.get(3)?,
            records: row.get(4)?,
        },
        attempts: row.get(5)?,
        lost: row.get(6)?,
        node: row.get(7)?,
        state: row.get(8)?,
        started_at: row.get(9)?,
        finished_at: row.get(10)?,
        wall_us: row.get(11)?,
        fuel_used: row.get(12)?,
        output_digest: row.get(13)?,
        output_len: row.get(14)?,
        output_inline: row.get(15)?,
        failure_kind: row.get(16)?,
        failure_message: row.get(17)?,
        suspend_reason: row.get(18)?,
        snapshot: row.get(19)?,
        snapshot_at: row.get(20)?,
        snapshot_position: row.get(21)?,
        snapshot_fuel: row.get(22)?,
        resumed_from: row.get(23)?,
        resumed_at: row.get(24)?,
        resumed_position: row.get(25)?,
        resumed_fuel: row.get(26)?,
    })
}

/// A state's own columns (NULL for the others).
#[derive(Default)]
struct StateColumns<'a> {
    started_at: Option<Millis>,
    finished_at: Option<Millis>,
    wall_us: Option<u64>,
    fuel_used: Option<u64>,
    output_digest: Option<&'a [u8]>,
    output_len: Option<u64>,
    output_inline: Option<bool>,
    failure_kind: Option<&'static str>,
    failure_message: Option<&'a str>,
    suspend_reason: Option<&'static str>,
}

impl<'a> StateColumns<'a> {
    fn of(state: &'a TaskState) -> Self {
        match state {
            TaskState::Queued => StateColumns::default(),
            TaskState::Running { started_at } => StateColumns {
                started_at: Some(*started_at),
                ..StateColumns::default()
            },
            TaskState::Done {
                finished_at,
                wall,
                fuel_used,
                output,
            } => StateColumns {
                finished_at: Some(*finished_at),
                wall_us: Some(wall.as_micros() as u64),
                fuel_used: *fuel_used,
                output_digest: Some(&output.digest),
                output_len: Some(output.len),
                output_inline: Some(output.inline),
                ..StateColumns::default()
            },
            TaskState::Failed {
                finished_at,
                wall,
                error,
            } => StateColumns {
                finished_at: Some(*finished_at),
                wall_us: Some(wall.as_micros() as u64),
                failure_kind: Some(error.kind.as_str()),
                failure_message: Some(&error.message),
                ..StateColumns::default()
            },
            TaskState::Cancelled { at } => StateColumns {
                finished_at: Some(*at),
                ..StateColumns::default()
            },
            TaskState::Suspended { at, reason } => StateColumns {
                finished_at: Some(*at),
                suspend_reason: Some(reason.as_str()),
                ..StateColumns::default()
            },
        }
    }
}
