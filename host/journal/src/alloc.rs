//! A broker's allocation queues and their batch jobs (`wrun alloc`), as
//! rows: the journal stores them and knows nothing of batch systems (the
//! spec is the `wrun-alloc` crate's JSON).

use rusqlite::params;

use crate::journal::{Journal, JournalError, now};

/// An allocation queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    /// Its name (unique).
    pub name: String,
    /// Its spec, as JSON.
    pub spec: String,
    /// Paused: why; `None`: active.
    pub paused: Option<String>,
    /// Allocations that failed in a row.
    pub failures: u32,
}

/// One batch job of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRow {
    /// The batch system's job id.
    pub id: String,
    /// `queued`, `running`, `finished` or `failed`.
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Whether its node connected.
    pub connected: bool,
    /// When it was submitted, ms since the Unix epoch.
    pub submitted_at: u64,
    /// When it started, ms since the Unix epoch.
    pub started_at: Option<u64>,
}

impl Journal {
    /// Create or replace queue `row.name` (its allocations stay).
    pub fn put_queue(&mut self, row: &QueueRow) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO alloc_queues (name, spec, paused, failures, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec,
                     paused = excluded.paused, failures = excluded.failures",
                params![row.name, row.spec, row.paused, row.failures, now()],
            )
            .map_err(self.error())?;
        Ok(())
    }

    /// Remove queue `name` and its allocations' records; false if there
    /// was none.
    pub fn remove_queue(&mut self, name: &str) -> Result<bool, JournalError> {
        let path = self.path().display().to_string();
        let error = |source| crate::journal::sqlite_error(&path, source);
        let tx = self.conn.transaction().map_err(error)?;
        tx.execute("DELETE FROM allocations WHERE queue = ?1", [name])
            .map_err(error)?;
        let removed = tx
            .execute("DELETE FROM alloc_queues WHERE name = ?1", [name])
            .map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(removed > 0)
    }

    /// Every queue, oldest first.
    pub fn queues(&self) -> Result<Vec<QueueRow>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, spec, paused, failures FROM alloc_queues
                 ORDER BY created_at, name",
            )
            .map_err(self.error())?;
        stmt.query_map([], |row| {
            Ok(QueueRow {
                name: row.get(0)?,
                spec: row.get(1)?,
                paused: row.get(2)?,
                failures: row.get(3)?,
            })
        })
        .map_err(self.error())?
        .collect::<Result<_, _>>()
        .map_err(self.error())
    }

    /// Record allocation `row.id` of queue `queue` as it is now.
    pub fn put_allocation(&mut self, queue: &str, row: &AllocationRow) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO allocations
                 (queue, id, state, reason, connected, submitted_at, started_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    queue,
                    row.id,
                    row.state,
                    row.reason,
                    row.connected,
                    row.submitted_at,
                    row.started_at,
                    now()
                ],
            )
            .map_err(self.error())?;
        Ok(())
    }

    /// Queue `queue`'s allocations, oldest first.
    pub fn allocations(&self, queue: &str) -> Result<Vec<AllocationRow>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, state, reason, connected, submitted_at, started_at
                 FROM allocations WHERE queue = ?1 ORDER BY submitted_at, id",
            )
            .map_err(self.error())?;
        stmt.query_map([queue], |row| {
            Ok(AllocationRow {
                id: row.get(0)?,
                state: row.get(1)?,
                reason: row.get(2)?,
                connected: row.get(3)?,
                submitted_at: row.get(4)?,
                started_at: row.get(5)?,
            })
        })
        .map_err(self.error())?
        .collect::<Result<_, _>>()
        .map_err(self.error())
    }
}
