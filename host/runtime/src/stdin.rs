//! A command's standard input: its chunk, handed out in bounded reads.
//!
//! wasmtime-wasi's `MemoryInputPipe` answers a read with as many bytes as
//! the guest's buffer holds, and the p1 layer copies them into a host
//! buffer before copying that into guest memory: a guest reading into a
//! buffer of hundreds of MiB (Rust's `read_to_end` hands over all of its
//! `Vec`'s spare capacity) makes the host allocate as much for one read.
//! [`ChunkStdin`] answers each read with at most [`READ_SIZE`] bytes, a
//! zero-copy slice of the shared chunk: the guest still gets all of its
//! input (a short read is a normal read), and the host copies at most
//! [`READ_SIZE`] bytes at a time, whatever the chunk's size. (That a guest
//! may name such a buffer at all is the store's hostcall fuel, set in
//! `sandbox`.)

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError};

/// Most bytes one read hands out, in bytes (wasmtime-wasi's own bound for
/// reads from host streams).
pub(crate) const READ_SIZE: usize = 64 << 10;

/// The unread rest of a chunk; clones share the position, as every handle
/// to a process's stdin does.
#[derive(Debug, Clone)]
pub(crate) struct ChunkStdin {
    rest: Arc<Mutex<Bytes>>,
}

impl ChunkStdin {
    /// Stdin reading `chunk` from its start; `chunk` is shared, not copied.
    pub(crate) fn new(chunk: Bytes) -> Self {
        ChunkStdin {
            rest: Arc::new(Mutex::new(chunk)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Bytes> {
        // A poisoned position is still a valid one.
        self.rest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next at most `size` (and at most [`READ_SIZE`]) bytes, or `None`
    /// at the end of the chunk.
    fn next(&self, size: usize) -> Option<Bytes> {
        let mut rest = self.lock();
        if rest.is_empty() {
            return None;
        }
        let size = size.min(READ_SIZE).min(rest.len());
        Some(rest.split_to(size))
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for ChunkStdin {
    fn read(&mut self, size: usize) -> Result<Bytes, StreamError> {
        self.next(size).ok_or(StreamError::Closed)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ChunkStdin {
    async fn ready(&mut self) {}
}

impl AsyncRead for ChunkStdin {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Nothing put into `buf` is the end of the stream.
        if let Some(bytes) = self.next(buf.remaining()) {
            buf.put_slice(&bytes);
        }
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for ChunkStdin {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for ChunkStdin {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_slices_of_the_shared_chunk() {
        let chunk = Bytes::from(vec![7u8; 2 * READ_SIZE + 13]);
        let mut stdin = ChunkStdin::new(chunk.clone());
        let mut other = stdin.clone();
        let first = stdin.read(usize::MAX).unwrap();
        assert_eq!(first.len(), READ_SIZE);
        // Zero-copy: the read points into the chunk itself.
        assert_eq!(first.as_ptr(), chunk.as_ptr());
        // Clones share the position.
        assert_eq!(other.read(10).unwrap().len(), 10);
        assert_eq!(stdin.read(READ_SIZE + 1).unwrap().len(), READ_SIZE);
        assert_eq!(other.read(usize::MAX).unwrap().len(), 3);
        assert!(matches!(stdin.read(1), Err(StreamError::Closed)));
    }
}
