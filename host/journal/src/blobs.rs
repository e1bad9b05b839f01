//! Which snapshot blobs each task needs (table `snapshots`: one row per
//! task and blob), and what a commit leaves unneeded.
//!
//! A snapshot stores only the pages that changed since the task's previous
//! one and names the earlier blobs holding the others (its bases), so a
//! task needs its latest snapshot's blob and that snapshot's bases, and
//! nothing older. Blobs are content-addressed and may be shared (two tasks
//! with the same chunk, arguments and module write the same blobs), so a
//! blob is unneeded only once no task of any job has a row for it.

use std::collections::BTreeSet;

use rusqlite::{Transaction, params};

/// Task `index` of job `job` (a [`crate::JobId`]) now needs exactly the
/// blobs in `needs`, for each entry in order. Returns the blobs that these
/// tasks needed before, no longer need, and no task needs.
pub(crate) fn replace(
    tx: &Transaction<'_>,
    job: i64,
    needs: &[(u64, Vec<[u8; 32]>)],
) -> rusqlite::Result<Vec<[u8; 32]>> {
    if needs.is_empty() {
        return Ok(Vec::new());
    }
    let mut select =
        tx.prepare_cached("SELECT digest FROM snapshots WHERE job = ?1 AND idx = ?2")?;
    let mut delete = tx.prepare_cached("DELETE FROM snapshots WHERE job = ?1 AND idx = ?2")?;
    let mut insert = tx
        .prepare_cached("INSERT OR IGNORE INTO snapshots (job, idx, digest) VALUES (?1, ?2, ?3)")?;
    let mut dropped = BTreeSet::new();
    for (index, blobs) in needs {
        let before: Vec<Vec<u8>> = select
            .query_map(params![job, index], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        delete.execute(params![job, index])?;
        for digest in blobs {
            insert.execute(params![job, index, &digest[..]])?;
        }
        dropped.extend(
            before
                .into_iter()
                .filter_map(|d| <[u8; 32]>::try_from(d).ok())
                .filter(|d| !blobs.contains(d)),
        );
    }
    let mut needed = tx.prepare_cached("SELECT 1 FROM snapshots WHERE digest = ?1 LIMIT 1")?;
    let mut unneeded = Vec::new();
    for digest in dropped {
        if !needed.exists([&digest[..]])? {
            unneeded.push(digest);
        }
    }
    Ok(unneeded)
}
