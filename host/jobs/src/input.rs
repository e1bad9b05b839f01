//! Opening a job's input: standard input, a file or an S3 object
//! ([`origin`]), plain or compressed (gzip, bzip2, xz or zstd, recognised
//! by their magic bytes and decompressed as they stream, with caps so that
//! a decompression bomb fails cleanly; another compression is named, not
//! read as data).

mod codec;
mod inflate;
mod origin;

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wrun_journal::{InflateLimits, InputRef, JobId, JobSpec};

use self::codec::Compression;
use self::inflate::{CountingReader, Inflater};
use self::origin::{Origin, Raw};
use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::streams::{Notices, Source};

/// Decompressed bytes of a compressed input read to estimate its
/// inflated size.
const PROBE_BYTES: u64 = 4 << 20;

/// Open the input `path` names (`-` is standard input, `s3://BUCKET/KEY`
/// an S3 object, read in ranged blocks), decompressing it within
/// `limits`; with what identifies its content for a resume (a file's
/// size and modification time, an object's size and ETag; `compressed`
/// set).
///
/// # Errors
///
/// [`ErrorKind::Input`] naming the input.
pub fn open(path: &Path, limits: InflateLimits) -> Result<(Source, InputRef)> {
    let raw = Origin::of(path).open()?;
    decode(raw, &path.display().to_string(), limits).map(|(source, stamp, _)| (source, stamp))
}

/// The size a compressed input decompresses to, estimated for automatic
/// chunk sizing (its [`Source::size`] is unknown): exact when it inflates
/// to less than 4 MiB, else its size times the ratio of its first 4 MiB,
/// decompressed, to the compressed bytes they took. `None` for standard
/// input, a plain input, or one that cannot be read (its run says why).
pub fn estimate_inflated(path: &Path, limits: InflateLimits) -> Option<u64> {
    let origin = Origin::of(path);
    if matches!(origin, Origin::Stdin) {
        return None;
    }
    let raw = origin.open().ok()?;
    let size = raw.size?;
    let (source, _, compressed) = decode(raw, "", limits).ok()?;
    let compressed = compressed?;
    let inflated = io::copy(&mut source.reader.take(PROBE_BYTES), &mut io::sink()).ok()?;
    if inflated < PROBE_BYTES {
        return Some(inflated);
    }
    let read = compressed.load(Ordering::Relaxed).clamp(1, size.max(1));
    u64::try_from(u128::from(size) * u128::from(inflated) / u128::from(read)).ok()
}

/// `raw`, decompressed if it is compressed, called `name` in messages;
/// with its identity and the count of compressed bytes read when it is
/// compressed.
fn decode(
    raw: Raw,
    name: &str,
    limits: InflateLimits,
) -> Result<(Source, InputRef, Option<Arc<AtomicU64>>)> {
    let Raw {
        reader: raw,
        mapped,
        size,
        mut stamp,
    } = raw;
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
            mapped,
            size,
            compressed: false,
            notices,
        };
        return Ok((source, stamp, None));
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
        mapped: None,
        size: None,
        compressed: true,
        notices,
    };
    stamp.compressed = true;
    Ok((source, stamp, Some(compressed)))
}

/// Open the input job `id` recorded, refusing one that changed since.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a job without an input, one that read
/// standard input, or whose input changed (a file's size or modification
/// time, an object's size or ETag);
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
    open_unchanged(id, recorded, spec.inflate)
}

/// Open the file `recorded` names (job `id`'s input, or its mate),
/// refusing one that changed since.
///
/// # Errors
///
/// As [`open_recorded`].
pub(crate) fn open_unchanged(
    id: JobId,
    recorded: &InputRef,
    limits: InflateLimits,
) -> Result<Source> {
    let changed = format!("since job {id} started");
    let raw = Origin::of(Path::new(&recorded.path)).open_unchanged(recorded, &changed)?;
    decode(raw, &recorded.path, limits).map(|(source, _, _)| source)
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
