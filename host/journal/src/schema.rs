//! The journal's tables and how older journals are brought up to date.
//!
//! The schema version is SQLite's `user_version`. `MIGRATIONS[n]` takes a
//! journal from version `n` to `n + 1`; every migration runs in the same
//! transaction as the version bump, so a crash mid-migration leaves the old
//! version intact. Journals written by each released version are kept in
//! `tests/fixtures/` and opened by the tests.

use rusqlite::{Connection, TransactionBehavior};

/// The version this build writes.
pub(crate) const VERSION: u32 = 7;

/// `MIGRATIONS[n]` upgrades version `n` to `n + 1`.
const MIGRATIONS: [&str; VERSION as usize] = [V1, V2, V3, V4, V5, V6, V7];

/// Version 1. Job numbers are never reused (`AUTOINCREMENT`), so a number
/// once shown always names the same job. Task rows hold only what every task has plus the columns of
/// its state (NULL in other states); small outputs live in `outputs`, large
/// ones in the content-addressed store under `output_digest`; `attempts`
/// holds attempts worth telling about (failed, retried or logging).
const V1: &str = "
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    fingerprint BLOB NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    tasks_total INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    runs INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX jobs_by_fingerprint ON jobs (fingerprint);
CREATE TABLE tasks (
    job INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    first_record INTEGER NOT NULL,
    records INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    lost INTEGER NOT NULL,
    node TEXT,
    state TEXT NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    wall_us INTEGER,
    fuel_used INTEGER,
    output_digest BLOB,
    output_len INTEGER,
    output_inline INTEGER,
    failure_kind TEXT,
    failure_message TEXT,
    PRIMARY KEY (job, idx)
) WITHOUT ROWID;
CREATE TABLE outputs (
    job INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job, idx)
) WITHOUT ROWID;
CREATE TABLE attempts (
    job INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT,
    log BLOB NOT NULL,
    PRIMARY KEY (job, idx, attempt)
) WITHOUT ROWID;
";

/// Version 2: snapshots. A task keeps its latest snapshot (digest, when,
/// where in the chunk, fuel used) and, when suspended, why; `snapshots`
/// lists every snapshot blob a task wrote, so removing the job can delete
/// them; a job counts the snapshots asked of it (`wrun snapshot`) and those
/// its process has taken.
const V2: &str = "
ALTER TABLE tasks ADD COLUMN suspend_reason TEXT;
ALTER TABLE tasks ADD COLUMN snapshot BLOB;
ALTER TABLE tasks ADD COLUMN snapshot_at INTEGER;
ALTER TABLE tasks ADD COLUMN snapshot_position TEXT;
ALTER TABLE tasks ADD COLUMN snapshot_fuel INTEGER;
ALTER TABLE jobs ADD COLUMN snapshots_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN snapshots_taken INTEGER NOT NULL DEFAULT 0;
CREATE TABLE snapshots (
    job INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (job, idx, digest)
) WITHOUT ROWID;
";

/// Version 3: an attempt names the cluster node it ran on (NULL: the
/// machine of the process that ran the job), and an attempt lost with its
/// process or node is recorded with the outcome `lost`.
const V3: &str = "
ALTER TABLE attempts ADD COLUMN node TEXT;
";

/// Version 4: `task_counts`, each job's tasks by state (count, input bytes,
/// records), kept by triggers in the same transaction as every change to
/// `tasks`, whatever statement makes it: `wrun status` reads a few rows per
/// job instead of scanning its tasks (0.42 s for one job of 2M tasks
/// before). The triggers need `recursive_triggers` on the connection, so
/// that an `INSERT OR REPLACE` counts the row it replaces as deleted.
const V4: &str = "
CREATE TABLE task_counts (
    job INTEGER NOT NULL,
    state TEXT NOT NULL,
    tasks INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (job, state)
) WITHOUT ROWID;
INSERT INTO task_counts (job, state, tasks, bytes, records)
    SELECT job, state, count(*), sum(len), sum(records) FROM tasks GROUP BY job, state;
CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (job, state, tasks, bytes, records)
        VALUES (NEW.job, NEW.state, 1, NEW.len, NEW.records)
        ON CONFLICT (job, state) DO UPDATE SET tasks = tasks + 1,
            bytes = bytes + excluded.bytes, records = records + excluded.records;
END;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET tasks = tasks - 1, bytes = bytes - OLD.len,
        records = records - OLD.records
        WHERE job = OLD.job AND state = OLD.state;
END;
CREATE TRIGGER task_counts_update AFTER UPDATE OF state, len, records ON tasks BEGIN
    UPDATE task_counts SET tasks = tasks - 1, bytes = bytes - OLD.len,
        records = records - OLD.records
        WHERE job = OLD.job AND state = OLD.state;
    INSERT INTO task_counts (job, state, tasks, bytes, records)
        VALUES (NEW.job, NEW.state, 1, NEW.len, NEW.records)
        ON CONFLICT (job, state) DO UPDATE SET tasks = tasks + 1,
            bytes = bytes + excluded.bytes, records = records + excluded.records;
END;
";

/// Version 5: a broker's allocation queues (`wrun alloc`): each queue's
/// spec (JSON, the `wrun-alloc` crate's form), whether it is paused and
/// why, its failures in a row; and every batch job it submitted, with its
/// state (`queued`, `running`, `finished`, `failed` with the batch system's
/// reason) and whether its node connected.
const V5: &str = "
CREATE TABLE alloc_queues (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    paused TEXT,
    failures INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE allocations (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    connected INTEGER NOT NULL,
    submitted_at INTEGER NOT NULL,
    started_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (queue, id)
) WITHOUT ROWID;
";

/// Version 6: a task that moved (its node drained, died or was killed)
/// names the snapshot its next attempt resumed from (digest, when taken,
/// where in the chunk, fuel used up to it), the columns of `snapshot`'s.
const V6: &str = "
ALTER TABLE tasks ADD COLUMN resumed_from BLOB;
ALTER TABLE tasks ADD COLUMN resumed_at INTEGER;
ALTER TABLE tasks ADD COLUMN resumed_position TEXT;
ALTER TABLE tasks ADD COLUMN resumed_fuel INTEGER;
";

/// Version 7. A job's input may be an S3 object (`s3://BUCKET/KEY`),
/// recorded in the spec's JSON with its size and ETag (`InputRef::etag`);
/// no table changes, but a wrun of version 6 would resume such a job
/// without the ETag check, so it must refuse this journal as too new.
const V7: &str = "-- job specs may name S3 inputs with their ETag";

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub(crate) enum MigrateError {
    /// Written by a newer wrun.
    TooNew(u32),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(error: rusqlite::Error) -> Self {
        MigrateError::Sqlite(error)
    }
}

/// Bring the journal to [`VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == VERSION {
        return Ok(());
    }
    // Take the write lock before reading the version again: two processes
    // opening a new journal at once must not both create it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: u32 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > VERSION {
        return Err(MigrateError::TooNew(version));
    }
    for migration in &MIGRATIONS[version as usize..] {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}
