//! Opening a job's input: a file or standard input, plain or compressed
//! (gzip, bzip2, xz or zstd, recognised by their magic bytes and
//! decompressed as they stream, with caps so that a decompression bomb
//! fails cleanly; another compression is named, not read as data).

mod codec;
mod inflate;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use wrun_journal::{InflateLimits, InputRef, JobId, JobSpec};

use self::codec::Compression;
use self::inflate::{CountingReader, Inflater};
use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::streams::{Notices, Source};

/// Decompressed bytes of a compressed input read to estimate its
/// inflated size.
const PROBE_BYTES: u64 = 4 << 20;

/// Open the input (`-` is standard input), decompressing it within
/// `limits`.
///
/// # Errors
///
/// [`ErrorKind::Input`] naming the input.
pub fn open(path: &Path, limits: InflateLimits) -> Result<Source> {
    open_counted(path, limits).map(|(source, _)| source)
}

/// The size a compressed input file decompresses to, estimated for
/// automatic chunk sizing (its [`Source::size`] is unknown): exact when it
/// inflates to less than 4 MiB, else the file's size times the ratio of
/// its first 4 MiB, decompressed, to the compressed bytes they took.
/// `None` for standard input, a plain input, or one that cannot be read
/// (its run says why).
pub fn estimate_inflated(path: &Path, limits: InflateLimits) -> Option<u64> {
    if path.as_os_str() == "-" {
        return None;
    }
    let size = std::fs::metadata(path).ok().filter(|m| m.is_file())?.len();
    let (source, compressed) = open_counted(path, limits).ok()?;
    let compressed = compressed?;
    let inflated = io::copy(&mut source.reader.take(PROBE_BYTES), &mut io::sink()).ok()?;
    if inflated < PROBE_BYTES {
        return Some(inflated);
    }
    let read = compressed.load(Ordering::Relaxed).clamp(1, size.max(1));
    u64::try_from(u128::from(size) * u128::from(inflated) / u128::from(read)).ok()
}

/// [`open`], and the count of compressed bytes read when the input is
/// compressed.
fn open_counted(path: &Path, limits: InflateLimits) -> Result<(Source, Option<Arc<AtomicU64>>)> {
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
    let compression = Compression::sniff(head);
    if let Compression::Unread(what) = compression {
        return Err(Error::new(
            ErrorKind::Input,
            format!(
                "{name} is {what}, which wrun does not read: decompress it first (wrun reads \
                 plain, gzip, bzip2, xz and zstd inputs)"
            ),
        ));
    }
    let notices = Notices::default();
    if compression == Compression::None {
        let source = Source {
            reader: Box::new(buffered),
            size,
            compressed: false,
            notices,
        };
        return Ok((source, None));
    }
    let compressed = buffered.get_ref().count.clone();
    let decoder = compression
        .decoder(buffered, notices.clone())
        .or_kind_with(ErrorKind::Input, || {
            format!("cannot read input {name} ({})", compression.name())
        })?
        .expect("a compression wrun reads has a decoder");
    let source = Source {
        reader: Box::new(Inflater {
            decoder,
            codec: compression.name(),
            compressed: compressed.clone(),
            inflated: 0,
            limits,
        }),
        size: None,
        compressed: true,
        notices,
    };
    Ok((source, Some(compressed)))
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

/// The extension that names an input's format: `reads.fq.gz` (or `.bz2`,
/// `.xz`, `.zst`) is `fq`.
pub fn format_extension(path: &Path) -> Option<&str> {
    let extension = path.extension().and_then(|e| e.to_str())?;
    match extension.to_ascii_lowercase().as_str() {
        "gz" | "gzip" | "bgz" | "bz2" | "xz" | "zst" | "zstd" => Path::new(path.file_stem()?)
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
