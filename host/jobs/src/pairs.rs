//! Paired inputs (`--mate`, `--paired interleaved`): the input a paired
//! job reads is its pairs interleaved, checked mate by mate, each file
//! split by a splitter plugin instance of its own
//! ([`wrun_scheduler::Interleaver`]).

use std::path::Path;

use wrun_journal::{InputRef, JobId, JobSpec, Pairs};
use wrun_runtime::Splitter;
use wrun_scheduler::{Interleaver, PairedInput};
use wrun_store::object;

use crate::admit::ModuleBytes;
use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::streams::Source;

/// How a request pairs its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    /// The second mates' file (`--mate`).
    Mate(std::path::PathBuf),
    /// Mates in turn in the input (`--paired interleaved`).
    Interleaved,
}

/// Open `--mate PATH`: a local file or standard input, plain or
/// compressed, with the stamp a resume checks.
///
/// # Errors
///
/// [`ErrorKind::Usage`] for an S3 object (not supported as a mate);
/// [`ErrorKind::Input`] when it cannot be read.
pub(crate) fn open_mate(
    path: &Path,
    limits: wrun_journal::InflateLimits,
) -> Result<(Source, InputRef)> {
    if path.to_str().is_some_and(object::is_url) {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "--mate {}: a mate file on S3 is not supported; copy it to a local file (the \
                 first mates' --input may be on S3)",
                path.display()
            ),
        ));
    }
    crate::input::open(path, limits)
}

/// `input` (called `name` in messages) read as pairs: with `mate`'s
/// records as the second mates, else as an interleaved file, each file
/// split by an instance `splitter` makes; the size is both files' when
/// both are known.
///
/// # Errors
///
/// As `splitter`.
pub fn interleave(
    input: Source,
    name: &str,
    mate: Option<(Source, &str)>,
    splitter: &dyn Fn() -> Result<Splitter>,
) -> Result<Source> {
    let side = |source: Source, name: &str| -> Result<PairedInput> {
        Ok(PairedInput {
            name: name.to_owned(),
            reader: source.reader,
            splitter: splitter()?,
        })
    };
    let notices = input.notices.clone();
    let (size, compressed) = (input.size, input.compressed);
    let (reader, size, compressed) = match mate {
        Some((mate, mate_name)) => {
            let size = size.zip(mate.size).map(|(a, b)| a + b);
            let compressed = compressed || mate.compressed;
            let pairs = Interleaver::two(side(input, name)?, side(mate, mate_name)?);
            (pairs, size, compressed)
        }
        None => (
            Interleaver::interleaved(side(input, name)?),
            size,
            compressed,
        ),
    };
    Ok(Source {
        reader: Box::new(reader),
        mapped: None,
        size,
        compressed,
        notices,
    })
}

/// The input job `id` recorded, read as it reads it: its pairs
/// interleaved when it is paired (each file split by an instance
/// `splitter` makes), each file refused if it changed.
///
/// # Errors
///
/// As [`crate::input::open_recorded`], and `splitter`.
pub fn open_recorded(
    id: JobId,
    spec: &JobSpec,
    splitter: &dyn Fn() -> Result<Splitter>,
) -> Result<Source> {
    let input = crate::input::open_recorded(id, spec)?;
    let name = spec.input.as_ref().map_or("", |i| i.path.as_str());
    match &spec.pairs {
        None => Ok(input),
        Some(Pairs::Interleaved) => interleave(input, name, None, splitter),
        Some(Pairs::Mate(recorded)) => {
            let mate = crate::input::open_unchanged(id, recorded, spec.inflate)?;
            interleave(input, name, Some((mate, &recorded.path)), splitter)
        }
    }
}

/// [`open_recorded`] for a client that streams job `id`'s input to a
/// broker (`wrun resume --broker`): a paired job's files are split by the
/// plugin its spec names, a builtin or its file (unchanged), in a runtime
/// of this process.
///
/// # Errors
///
/// As [`open_recorded`]; [`ErrorKind::JobState`] when the plugin's file
/// is gone or changed; [`ErrorKind::Module`].
pub fn open_recorded_here(id: JobId, spec: &JobSpec) -> Result<Source> {
    let Some(format) = spec.format.as_ref().filter(|_| spec.pairs.is_some()) else {
        return crate::input::open_recorded(id, spec);
    };
    let runtime = crate::admit::runtime(&spec.limits, 0, true, false, None)?;
    let plugin = ModuleBytes::recorded(format)?;
    let module = crate::admit::admit_one(&runtime, &plugin)?;
    open_recorded(id, spec, &|| {
        runtime.splitter(&module).or_kind(ErrorKind::Module)
    })
}
