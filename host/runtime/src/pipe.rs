//! A bounded in-memory byte sink, usable as WASI stdout/stderr and by the
//! ABI's `emit`/`log` imports.
//!
//! wasmtime-wasi's `MemoryOutputPipe` fails with an untyped message when
//! full; this one either fails with [`LimitHit::Output`] (task output, so the
//! outcome is "output limit") or keeps the first bytes and ends them with a
//! note saying the rest was cut (task log).

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::limits::{LimitHit, truncation_note};

/// What happens to bytes beyond the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// The write fails with [`LimitHit::Output`].
    Fail,
    /// The excess is dropped; the kept bytes end with a note naming
    /// `what` was cut.
    Truncate {
        /// What the pipe holds, for the note ("log").
        what: &'static str,
    },
}

/// A shared, capped byte buffer; clones write to the same buffer.
#[derive(Debug, Clone)]
pub(crate) struct CappedPipe {
    buffer: Arc<Mutex<Vec<u8>>>,
    cap: usize,
    overflow: Overflow,
}

impl CappedPipe {
    pub(crate) fn new(cap: usize, overflow: Overflow) -> Self {
        CappedPipe {
            buffer: Arc::default(),
            cap,
            overflow,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A poisoned buffer still holds valid bytes.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append `bytes`, or fail (with nothing appended) if that passes a
    /// [`Overflow::Fail`] cap. Past a [`Overflow::Truncate`] cap, keep what
    /// fits before the note, then the note, once.
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), LimitHit> {
        let mut buffer = self.lock();
        let room = self.cap.saturating_sub(buffer.len());
        if bytes.len() <= room {
            buffer.extend_from_slice(bytes);
            return Ok(());
        }
        let Overflow::Truncate { what } = self.overflow else {
            return Err(LimitHit::Output { limit: self.cap });
        };
        // Made only when the cap is reached, so a task that stays under it
        // never pays for it.
        let note = format!("\n{}\n", truncation_note(what, self.cap, None));
        // Cut already (the note may come from a restored snapshot).
        if buffer.ends_with(note.as_bytes()) {
            return Ok(());
        }
        let keep = self.cap.saturating_sub(note.len());
        buffer.truncate(keep);
        let room = keep - buffer.len();
        buffer.extend_from_slice(&bytes[..room.min(bytes.len())]);
        buffer.extend_from_slice(note.as_bytes());
        Ok(())
    }

    /// Look at the bytes written so far.
    pub(crate) fn with_bytes<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(&self.lock())
    }

    /// Replace the contents with `bytes` (restoring a snapshot); fails like
    /// [`CappedPipe::write`] if they pass a [`Overflow::Fail`] cap.
    pub(crate) fn restore(&self, bytes: &[u8]) -> Result<(), LimitHit> {
        self.lock().clear();
        self.write(bytes)
    }

    /// Take the bytes written so far, leaving the pipe empty.
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lock())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        CappedPipe::write(self, &bytes).map_err(|hit| StreamError::Trap(wasmtime::Error::new(hit)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Accept any size: a write past the cap fails (or truncates) in
        // `write`, which is where the limit must be reported.
        Ok(usize::MAX / 2)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            CappedPipe::write(&self, buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_mode_rejects_whole_writes_past_the_cap() {
        let pipe = CappedPipe::new(4, Overflow::Fail);
        pipe.write(b"abc").unwrap();
        assert_eq!(pipe.write(b"de"), Err(LimitHit::Output { limit: 4 }));
        pipe.write(b"d").unwrap();
        assert_eq!(pipe.take(), b"abcd");
    }

    #[test]
    fn truncate_mode_keeps_the_first_bytes_and_says_so() {
        let note = b"\n \xe2\x80\xa6 [truncated: log cut at 40 B]\n";
        let pipe = CappedPipe::new(40, Overflow::Truncate { what: "log" });
        pipe.write(b"abc").unwrap();
        pipe.write(&[b'd'; 40]).unwrap();
        pipe.write(b"ghi").unwrap();
        let kept = 40 - note.len();
        assert_eq!(kept, 5);
        assert_eq!(pipe.clone().take(), [&b"abcdd"[..], note].concat());
        assert!(pipe.take().is_empty());

        // Full to the byte, then one more: the note replaces the tail, once.
        pipe.write(&[b'x'; 40]).unwrap();
        pipe.write(b"y").unwrap();
        pipe.write(b"z").unwrap();
        assert_eq!(pipe.take(), [&[b'x'; 40][..kept], note].concat());
    }
}
