//! Blobs a node fetches from its broker (modules, large chunks, snapshots,
//! data files): asked for in parts of [`FETCH_PART`] bytes with up to
//! [`WINDOW`] parts in flight, each part written to the node's store as
//! it comes ([`BlobWriter`]: staged, hashed as it goes, kept only if the
//! whole blob hashes to its digest, and recorded as checked so that it is
//! not hashed again at every job), so a blob of any size travels without
//! being held in memory and without one round trip per part. A part costs
//! the socket thread a copy into the page cache and its hash (no fsync: a
//! blob lost in a machine crash is fetched again), milliseconds each.

use std::collections::HashMap;
use std::sync::Arc;

use wrun_store::{BlobStore, BlobWriter, Digest, StoreError};

use crate::protocol::{Blake3, BlobPart, FETCH_PART, NoPart, ToBroker};

/// Parts of one blob asked for and not yet received, at most: enough to
/// keep the link busy while the node writes the part before.
pub(super) const WINDOW: u64 = 4;

/// One blob being fetched.
enum Fetch {
    /// Its first part, which tells the blob's size, is asked for.
    Started,
    /// Its parts are coming.
    Writing {
        /// Boxed: a blob hasher is a few kilobytes.
        writer: Box<BlobWriter>,
        /// The blob's size in bytes.
        size: u64,
        /// The offset of the next part to ask for.
        asked: u64,
    },
}

/// The blobs a node is fetching.
pub(super) struct Fetches {
    store: Arc<BlobStore>,
    active: HashMap<Blake3, Fetch>,
}

/// What a part did to its fetch.
pub(super) enum Progress {
    /// More parts to come; send these requests.
    Asking(Vec<ToBroker>),
    /// The blob is in the store, checked against its digest.
    Done,
    /// The fetch failed: why, and whether asking this broker again is
    /// useless (`lasting`: it lacks the blob, or sent bytes that are not
    /// it) or may work later (the broker could not read it, the node's
    /// store refused the bytes).
    Failed { why: String, lasting: bool },
}

impl Fetches {
    pub(super) fn new(store: Arc<BlobStore>) -> Self {
        Fetches {
            store,
            active: HashMap::new(),
        }
    }

    /// Start fetching `digest`: the request to send, `None` when it is
    /// being fetched already.
    pub(super) fn start(&mut self, digest: Blake3) -> Option<ToBroker> {
        if self.active.contains_key(&digest) {
            return None;
        }
        self.active.insert(digest, Fetch::Started);
        Some(ToBroker::Fetch { digest, offset: 0 })
    }

    /// Forget every fetch (the broker's session ended: the parts in flight
    /// will not come); what was staged is removed.
    pub(super) fn clear(&mut self) {
        self.active.clear();
    }

    /// Take a part the broker sent for `digest`, or its reason for sending
    /// none. Parts come in the order asked; a part that is not the next
    /// one, or of another length or size than its blob's, fails the fetch.
    /// A part for no fetch in progress (one from before a failure) is
    /// ignored: `None`.
    pub(super) fn receive(
        &mut self,
        digest: Blake3,
        part: Result<BlobPart, NoPart>,
    ) -> Option<Progress> {
        let fetch = self.active.remove(&digest)?;
        let (progress, next) = match part {
            Err(NoPart::Missing) => (failed("the broker does not have it", true), None),
            Err(NoPart::Unreadable(e)) => (
                failed(format!("the broker cannot read it: {e}"), false),
                None,
            ),
            Ok(part) => fetch.take(&self.store, digest, part),
        };
        if let Some(next) = next {
            self.active.insert(digest, next);
        }
        Some(progress)
    }
}

fn failed(why: impl Into<String>, lasting: bool) -> Progress {
    Progress::Failed {
        why: why.into(),
        lasting,
    }
}

impl Fetch {
    /// Write `part`: the progress, and the fetch while parts remain.
    fn take(
        self,
        store: &Arc<BlobStore>,
        digest: Blake3,
        part: BlobPart,
    ) -> (Progress, Option<Fetch>) {
        let cannot_store = |e: StoreError| (failed(format!("cannot store it: {e}"), false), None);
        let (mut writer, size, mut asked) = match self {
            Fetch::Started => match store.writer_unsynced() {
                Ok(writer) => (Box::new(writer), part.size, FETCH_PART as u64),
                Err(e) => return cannot_store(e),
            },
            Fetch::Writing {
                writer,
                size,
                asked,
            } => (writer, size, asked),
        };
        let offset = writer.written();
        let expected = (size - offset).min(FETCH_PART as u64);
        if part.offset != offset || part.size != size || part.bytes.len() as u64 != expected {
            let why = format!(
                "the broker sent bytes {}..{} of {}, where bytes {offset}..{} of {} were due",
                part.offset,
                part.offset + part.bytes.len() as u64,
                part.size,
                offset + expected,
                size
            );
            return (failed(why, true), None);
        }
        if let Err(e) = writer.write(part.bytes) {
            return cannot_store(e);
        }
        if writer.written() == size {
            return match writer.finish(Some(&Digest::from_bytes(digest))) {
                Ok(_) => (Progress::Done, None),
                Err(e @ StoreError::Mismatch { .. }) => (
                    failed(format!("the broker sent other bytes: {e}"), true),
                    None,
                ),
                Err(e) => cannot_store(e),
            };
        }
        // Keep WINDOW parts in flight beyond the one just written.
        let mut asking = Vec::new();
        let received = writer.written();
        while asked < size && asked - received < WINDOW * FETCH_PART as u64 {
            asking.push(ToBroker::Fetch {
                digest,
                offset: asked,
            });
            asked += FETCH_PART as u64;
        }
        let next = Fetch::Writing {
            writer,
            size,
            asked,
        };
        (Progress::Asking(asking), Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The part of `blob` at `offset`, as the broker sends it.
    fn part(blob: &[u8], offset: u64) -> BlobPart {
        let start = offset as usize;
        let end = (start + FETCH_PART).min(blob.len());
        BlobPart {
            offset,
            size: blob.len() as u64,
            bytes: blob[start..end].to_vec(),
        }
    }

    fn offsets(requests: &[ToBroker]) -> Vec<u64> {
        requests
            .iter()
            .map(|r| match r {
                ToBroker::Fetch { offset, .. } => *offset / FETCH_PART as u64,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_blob_of_many_parts_is_asked_for_a_window_ahead_and_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlobStore::open_local(dir.path()).unwrap());
        let mut fetches = Fetches::new(store.clone());
        // Five whole parts and a short one.
        let blob: Vec<u8> = (0..5 * FETCH_PART + 100).map(|i| (i % 241) as u8).collect();
        let digest = *Digest::of(&blob).as_bytes();
        assert!(fetches.start(digest).is_some());
        assert!(fetches.start(digest).is_none(), "one fetch per blob");
        let mut asked = Vec::new();
        for index in 0..6 {
            match fetches.receive(digest, Ok(part(&blob, index * FETCH_PART as u64))) {
                Some(Progress::Asking(requests)) => asked.push(offsets(&requests)),
                Some(Progress::Done) => assert_eq!(index, 5),
                Some(Progress::Failed { why, .. }) => panic!("{why}"),
                None => panic!("part {index} ignored"),
            }
        }
        // The first part tells the size: the next four are asked at once,
        // then one per part received, until the last.
        assert_eq!(asked, [vec![1, 2, 3, 4], vec![5], vec![], vec![], vec![]]);
        let (path, _) = store
            .verified_file(&Digest::from_bytes(digest), None)
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), blob);
        assert!(fetches.receive(digest, Ok(part(&blob, 0))).is_none());
    }

    #[test]
    fn a_missing_wrong_or_misplaced_blob_fails_its_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlobStore::open_local(dir.path()).unwrap());
        let mut fetches = Fetches::new(store.clone());
        let failed = |progress: Option<Progress>| match progress {
            Some(Progress::Failed { why, lasting }) => (why, lasting),
            _ => panic!("the fetch goes on"),
        };
        let absent = [1; 32];
        fetches.start(absent);
        assert_eq!(
            failed(fetches.receive(absent, Err(NoPart::Missing))),
            ("the broker does not have it".to_owned(), true)
        );
        // One the broker cannot read now may be asked for again.
        fetches.start(absent);
        let unreadable = NoPart::Unreadable("Input/output error".to_owned());
        assert_eq!(
            failed(fetches.receive(absent, Err(unreadable))),
            (
                "the broker cannot read it: Input/output error".to_owned(),
                false
            )
        );
        // Bytes that are not the blob's.
        let digest = *Digest::of(b"the blob").as_bytes();
        fetches.start(digest);
        let (why, lasting) = failed(fetches.receive(digest, Ok(part(b"another", 0))));
        assert!(why.contains("hash to") && lasting, "{why}");
        assert!(store.get(&Digest::of(b"another")).unwrap().is_none());
        // A part out of order.
        let blob = vec![7; FETCH_PART + 10];
        let digest = *Digest::of(&blob).as_bytes();
        fetches.start(digest);
        let (why, lasting) = failed(fetches.receive(digest, Ok(part(&blob, FETCH_PART as u64))));
        assert!(why.contains("where bytes 0..16777216") && lasting, "{why}");
        // Started again after a failure, it is fetched whole.
        fetches.start(digest);
        assert!(matches!(
            fetches.receive(digest, Ok(part(&blob, 0))),
            Some(Progress::Asking(_))
        ));
        assert!(matches!(
            fetches.receive(digest, Ok(part(&blob, FETCH_PART as u64))),
            Some(Progress::Done)
        ));
    }
}
