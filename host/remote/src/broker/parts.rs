//! The broker's side of a node's fetch: a thread that reads the parts of
//! blobs that nodes ask for ([`ToBroker::Fetch`](crate::protocol::ToBroker::Fetch))
//! from the store and hands each to the socket thread to send, so that
//! reading a large blob, and hashing it when its file was not checked
//! since it last changed, never holds up the socket thread and its
//! heartbeats.

use std::sync::Arc;

use crossbeam_channel::Sender;
use wrun_store::{BlobStore, Digest};

use super::Outgoing;
use crate::protocol::{Blake3, BlobPart, FETCH_PART, NoPart, ToPeer};
use crate::transport::Outbox;

/// A part asked for by the node of session `session`.
struct Ask {
    session: u64,
    digest: Blake3,
    offset: u64,
}

/// The part reader's queue; the thread ends when it is dropped.
pub(super) struct PartReader {
    asks: Sender<Ask>,
}

impl PartReader {
    /// Start the thread: it reads from `store` and sends through `outbox`.
    pub(super) fn start(store: Arc<BlobStore>, outbox: Outbox<Outgoing>) -> Self {
        let (asks, queue) = crossbeam_channel::unbounded::<Ask>();
        std::thread::Builder::new()
            .name("wrun-parts".to_owned())
            .spawn(move || {
                for ask in queue {
                    let read =
                        store.read_part(&Digest::from_bytes(ask.digest), ask.offset, FETCH_PART);
                    let part = match read {
                        Ok(Some((bytes, size))) => Ok(BlobPart {
                            offset: ask.offset,
                            size,
                            bytes,
                        }),
                        Ok(None) => Err(NoPart::Missing),
                        Err(e) => {
                            tracing::warn!(target: "wrun::broker", "a node's fetch failed: {e}");
                            Err(NoPart::Unreadable(e.to_string()))
                        }
                    };
                    let reply = ToPeer::Blob {
                        digest: ask.digest,
                        part,
                    };
                    if !outbox.send(Outgoing::Send(ask.session, reply)) {
                        return;
                    }
                }
            })
            .expect("a thread starts");
        PartReader { asks }
    }

    /// Read the part of `digest` from `offset` for the node of `session`
    /// (answered [`NoPart`] when the store lacks the blob intact or cannot
    /// read it).
    pub(super) fn ask(&self, session: u64, digest: Blake3, offset: u64) {
        let _ = self.asks.send(Ask {
            session,
            digest,
            offset,
        });
    }
}
