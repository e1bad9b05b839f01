//! Opening a job's input: a file, standard input, or either gzip-compressed
//! (recognised by its magic bytes, decompressed as it streams, with caps so
//! that a decompression bomb fails cleanly).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use flate2::bufread::MultiGzDecoder;
use wrun_journal::{InflateLimits, InputRef, JobId, JobSpec};

use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::streams::Source;

/// The first bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The ratio cap applies once this much has been decompressed: small
/// inputs of one repeated byte compress far better than real data.
const RATIO_GRACE: u64 = 16 << 20;

/// Open the input (`-` is standard input), decompressing gzip within
/// `limits`.
///
/// # Errors
///
/// [`ErrorKind::Input`] naming the input.
pub fn open(path: &Path, limits: InflateLimits) -> Result<Source> {
    let name = path.display().to_string();
    let (raw, size): (Box<dyn Read + Send>, _) = if path.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(path)
            .or_kind_with(ErrorKind::Input, || format!("cannot open input {name}"))?;
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(file), size)
    };
    let mut buffered = BufReader::with_capacity(1 << 16, CountingReader::new(raw));
    let head = buffered
        .fill_buf()
        .or_kind_with(ErrorKind::Input, || format!("cannot read input {name}"))?;
    if !head.starts_with(&GZIP_MAGIC) {
        return Ok(Source {
            reader: Box::new(buffered),
            size,
            compressed: false,
        });
    }
    let compressed = buffered.get_ref().count.clone();
    Ok(Source {
        reader: Box::new(Inflater {
            decoder: MultiGzDecoder::new(buffered),
            compressed,
            inflated: 0,
            limits,
        }),
        size: None,
        compressed: true,
    })
}

/// Open the input job `id` recorded, refusing one that changed since.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a job without an input, one that read
/// standard input, or whose input changed (size or modification time);
/// [`ErrorKind::Input`] for one that cannot be read.
pub fn open_recorded(id: JobId, spec: &JobSpec) -> Result<Source> {
    let Some(recorded) = &spec.input else {
        return Err(Error::new(
            ErrorKind::JobState,
            format!("job {id} has no input to resume"),
        ));
    };
    if recorded.path == "-" {
        return Err(Error::new(
            ErrorKind::JobState,
            format!("job {id} read standard input, which cannot be read again; submit it again"),
        ));
    }
    let path = Path::new(&recorded.path);
    let opened = open(path, spec.inflate)?;
    let now = stamp(path);
    if (now.size, now.modified_ns) != (recorded.size, recorded.modified_ns) {
        return Err(Error::new(
            ErrorKind::JobState,
            format!(
                "{}: the input changed since job {id} started (size or modification time); \
                 its finished chunks no longer match it: submit it again",
                recorded.path
            ),
        ));
    }
    Ok(opened)
}

/// The extension that names an input's format: `reads.fq.gz` is `fq`.
pub fn format_extension(path: &Path) -> Option<&str> {
    let extension = path.extension().and_then(|e| e.to_str())?;
    match extension.to_ascii_lowercase().as_str() {
        "gz" | "gzip" | "bgz" => Path::new(path.file_stem()?)
            .extension()
            .and_then(|e| e.to_str()),
        _ => Some(extension),
    }
}

/// What identifies the input's content for a resume: its path, size and
/// modification time.
pub fn stamp(path: &Path) -> InputRef {
    if path.as_os_str() == "-" {
        return InputRef {
            path: "-".to_owned(),
            size: None,
            modified_ns: None,
            compressed: false,
        };
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let metadata = std::fs::metadata(path).ok();
    InputRef {
        path: absolute.display().to_string(),
        size: metadata.as_ref().map(|m| m.len()),
        modified_ns: metadata
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128),
        compressed: false,
    }
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
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
struct Inflater<R: BufRead> {
    decoder: MultiGzDecoder<R>,
    /// Compressed bytes read so far.
    compressed: Arc<AtomicU64>,
    inflated: u64,
    limits: InflateLimits,
}

impl<R: BufRead> Read for Inflater<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .decoder
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("gzip: {e}")))?;
        self.inflated += n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        let refuse = |why: String| Err(io::Error::new(io::ErrorKind::InvalidData, why));
        if self.inflated > self.limits.max_bytes {
            return refuse(format!(
                "gzip: decompresses to more than {} (--max-inflated)",
                bytesize::ByteSize(self.limits.max_bytes)
            ));
        }
        if self.inflated > RATIO_GRACE && self.inflated / compressed > self.limits.max_ratio {
            return refuse(format!(
                "gzip: {} decompressed from {}, more than {} times as much (--max-ratio): a \
                 decompression bomb?",
                bytesize::ByteSize(self.inflated),
                bytesize::ByteSize(compressed),
                self.limits.max_ratio
            ));
        }
        Ok(n)
    }
}
