//! Decompression within limits: a compressed input may inflate to at most
//! `--max-inflated` bytes and, past a grace amount, at most `--max-ratio`
//! times its compressed size, so that a decompression bomb fails cleanly.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wrun_journal::InflateLimits;

/// The ratio cap applies once this much has been decompressed, in bytes:
/// small inputs of one repeated byte compress far better than real data.
const RATIO_GRACE: u64 = 16 << 20;

/// Counts the bytes read through it.
pub(super) struct CountingReader<R> {
    inner: R,
    pub(super) count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    pub(super) fn new(inner: R) -> Self {
        CountingReader {
            inner,
            count: Arc::default(),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Decompresses, refusing to go past the limits.
pub(super) struct Inflater {
    /// The decoder, over the counted compressed stream.
    pub(super) decoder: Box<dyn Read + Send>,
    /// The compression's name, for messages (`gzip`).
    pub(super) codec: &'static str,
    /// Compressed bytes read so far.
    pub(super) compressed: Arc<AtomicU64>,
    /// Decompressed bytes so far.
    pub(super) inflated: u64,
    pub(super) limits: InflateLimits,
}

impl Read for Inflater {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let codec = self.codec;
        let n = self
            .decoder
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("{codec}: {e}")))?;
        self.inflated += n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        // Its own kind: the advice for a bomb differs from a damaged input's.
        let refuse = |why: String| Err(io::Error::new(io::ErrorKind::FileTooLarge, why));
        if self.inflated > self.limits.max_bytes {
            return refuse(format!(
                "{codec}: decompresses to more than {} (--max-inflated)",
                bytesize::ByteSize(self.limits.max_bytes)
            ));
        }
        if self.inflated > RATIO_GRACE && self.inflated / compressed > self.limits.max_ratio {
            return refuse(format!(
                "{codec}: {} decompressed from {}, more than {} times as much (--max-ratio): \
                 a decompression bomb?",
                bytesize::ByteSize(self.inflated),
                bytesize::ByteSize(compressed),
                self.limits.max_ratio
            ));
        }
        Ok(n)
    }
}
