//! A recorded run's `-o` file: opened before the journal is touched (so an
//! unwritable `-o` records nothing), then cut to the prefix the journal
//! vouches for and appended to. A resume never shrinks a prefix that
//! earlier runs wrote: the file's bytes are checked chunk by chunk against
//! the length and digest the journal holds of every finished chunk's
//! output, in input order, up to the first chunk that is unfinished or
//! does not match; what follows is rewritten by this run. A compressed
//! `-o` (`out.gz`, `out.zst`) holds each chunk in units of its own, so it
//! is checked the same way, a unit at a time, and cut where a chunk's
//! units end (a finished BGZF file's end-of-file block is cut too, and
//! written again when the job completes).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom};
use std::path::Path;

use wrun_journal::{JobId, JobSpec, OutputRef};
use wrun_scheduler::Prior;
use wrun_store::Digest;
use wrun_store::object;

use crate::error::{ErrorKind, OrKind, Result};
use crate::streams::Destination;
use crate::streams::encoding::{After, Encoding, ReadBack, Taken};

/// A recorded run's output, opened but not yet cut.
#[derive(Debug)]
pub(crate) enum Unchecked {
    /// A regular file (created if missing, not truncated): its prefix is
    /// checked.
    File {
        /// Opened for reading and writing.
        file: File,
        /// How it is compressed.
        encoding: Encoding,
        /// `-o`'s path.
        name: String,
    },
    /// Standard output, a file that is not a regular one (a device, a
    /// pipe), or an S3 object (an upload, completed only when the job
    /// succeeds): written from the start.
    Stream(Destination),
}

/// How much of an output file the journal vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verified {
    /// Leading chunks whose outputs the file holds.
    chunks: u64,
    /// Their bytes in the file (compressed, if it is): it is cut here.
    bytes: u64,
    /// What comes after them.
    rest: Rest,
}

/// What an output file holds after its verified prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// Nothing, or the first part of the next chunk's output (a write cut
    /// short when the last run stopped).
    Unfinished,
    /// Bytes that are not chunk `.0`'s output, as the journal records it.
    Mismatch(u64),
    /// Bytes past the output of every finished chunk.
    Unrecorded,
    /// A compressed file's end-of-file block, after every finished chunk.
    EndOfFile,
}

impl Unchecked {
    /// Open `path` (`None`: standard output) for a recorded run, without
    /// changing it yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Output`] naming the file.
    pub(crate) fn open(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Destination::open(None).map(Unchecked::Stream);
        };
        if path.to_str().is_some_and(object::is_url) {
            return Destination::open(Some(path)).map(Unchecked::Stream);
        }
        let regular = match std::fs::metadata(path) {
            Ok(meta) => meta.is_file(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => true,
            Err(_) => false,
        };
        if !regular {
            return Destination::open(Some(path)).map(Unchecked::Stream);
        }
        let name = path.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .or_kind_with(ErrorKind::Output, || format!("cannot create {name}"))?;
        Ok(Unchecked::File {
            file,
            encoding: Encoding::of(path),
            name,
        })
    }

    /// Cut the file to the leading outputs of `prior` that it holds
    /// (none for a `--reduce` job, whose file holds only the reducer's
    /// output, or when no chunk is finished: the file is emptied quietly)
    /// and open it for appending; `note` says what was kept and what is
    /// rewritten. Returns the output and how many leading chunks'
    /// outputs it already holds.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Output`] when the file cannot be read or cut.
    pub(crate) fn keep(
        self,
        job: JobId,
        spec: &JobSpec,
        prior: &Prior,
        note: &mut dyn FnMut(String),
    ) -> Result<(Destination, u64)> {
        let (mut file, encoding, name) = match self {
            Unchecked::Stream(destination) => return Ok((destination, 0)),
            Unchecked::File {
                file,
                encoding,
                name,
            } => (file, encoding, name),
        };
        let cannot = |what: &str| format!("cannot {what} {name}");
        let verified = match (&spec.reduce, prior.finished()) {
            // Nothing to keep: a new job, or one whose chunks all run again.
            (Some(_), _) | (None, 0) => Verified {
                chunks: 0,
                bytes: 0,
                rest: Rest::Unfinished,
            },
            (None, _) => verify(
                ReadBack::new(encoding, BufReader::new(&file)),
                prior.leading_outputs(),
                spec.keep_going,
            )
            .or_kind_with(ErrorKind::Output, || cannot("read"))?,
        };
        let len = file
            .metadata()
            .or_kind_with(ErrorKind::Output, || cannot("read"))?
            .len();
        if let Some(line) = describe(job, &name, verified, len).filter(|_| prior.finished() > 0) {
            note(line);
        }
        file.set_len(verified.bytes)
            .and_then(|()| file.seek(SeekFrom::Start(verified.bytes)))
            .or_kind_with(ErrorKind::Output, || cannot("cut"))?;
        let destination = Destination::encoded(Box::new(BufWriter::new(file)), encoding, name)?;
        Ok((destination, verified.chunks))
    }
}

/// How much of `file` is the concatenation of `outputs` from the start
/// (a `None` output is a failed chunk's: nothing, and under `keep_going`
/// the outputs after it follow).
fn verify<'a>(
    mut file: ReadBack<impl io::BufRead>,
    outputs: impl Iterator<Item = Option<&'a OutputRef>>,
    keep_going: bool,
) -> io::Result<Verified> {
    let mut verified = Verified {
        chunks: 0,
        bytes: 0,
        rest: Rest::Unfinished,
    };
    let mut bytes = Vec::new();
    for output in outputs {
        let Some(output) = output else {
            match keep_going {
                true => {
                    verified.chunks += 1;
                    continue;
                }
                // The output stops at a failed chunk.
                false => return Ok(verified),
            }
        };
        let end = match file.take(output.len, &mut bytes)? {
            Taken::Short => return Ok(verified),
            Taken::Whole(end) if *Digest::of(&bytes).as_bytes() == output.digest => end,
            Taken::Whole(_) | Taken::Straddles => {
                verified.rest = Rest::Mismatch(verified.chunks);
                return Ok(verified);
            }
        };
        verified.chunks += 1;
        verified.bytes = end;
    }
    verified.rest = match file.after()? {
        After::Nothing => Rest::Unfinished,
        After::EndOfFile => Rest::EndOfFile,
        After::Bytes => Rest::Unrecorded,
    };
    Ok(verified)
}

/// What a resume does with an output file of `len` bytes, for the user;
/// `None` when the file is empty.
fn describe(job: JobId, name: &str, verified: Verified, len: u64) -> Option<String> {
    if len == 0 {
        return None;
    }
    let Verified {
        chunks,
        bytes,
        rest,
    } = verified;
    let kept = format!(
        "wrun: job {job}: {name} holds the output of the first {chunks} chunks ({}), checked \
         against the journal: kept, and appended to",
        bytesize::ByteSize(bytes)
    );
    let dropped = len - bytes;
    let why = match rest {
        Rest::Unfinished if dropped == 0 => return Some(kept),
        Rest::Unfinished => {
            format!("the {dropped} bytes after them are an unfinished write and are rewritten")
        }
        Rest::Mismatch(chunk) => format!(
            "from byte {bytes} on it does not match the journal's output of chunk {chunk}: the \
             rest ({dropped} bytes) is rewritten"
        ),
        Rest::Unrecorded => format!(
            "the {dropped} bytes after them are not the output of any finished chunk and are \
             rewritten"
        ),
        Rest::EndOfFile => {
            "its end-of-file block is cut, and written again when the job completes".to_owned()
        }
    };
    Some(format!("{kept}; {why}"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn output(bytes: &[u8]) -> OutputRef {
        OutputRef {
            digest: *Digest::of(bytes).as_bytes(),
            len: bytes.len() as u64,
            inline: true,
        }
    }

    fn check_encoded(
        encoding: Encoding,
        content: &[u8],
        outputs: &[Option<&[u8]>],
        keep_going: bool,
    ) -> Verified {
        let refs: Vec<Option<OutputRef>> = outputs.iter().map(|o| o.map(output)).collect();
        let file = ReadBack::new(encoding, content);
        verify(file, refs.iter().map(Option::as_ref), keep_going).unwrap()
    }

    fn check(content: &[u8], outputs: &[Option<&[u8]>], keep_going: bool) -> Verified {
        check_encoded(Encoding::Plain, content, outputs, keep_going)
    }

    const fn verified(chunks: u64, bytes: u64, rest: Rest) -> Verified {
        Verified {
            chunks,
            bytes,
            rest,
        }
    }

    /// What a case names: the file's bytes, the finished chunks' outputs
    /// (`None`: failed), whether the job keeps going, and what is kept.
    type Case<'a> = (&'a str, &'a [u8], &'a [Option<&'a [u8]>], bool, Verified);

    #[test]
    fn keeps_the_prefix_the_journal_vouches_for() {
        let two: &[Option<&[u8]>] = &[Some(b"ab"), Some(b"cde")];
        let cases: &[Case<'_>] = &[
            ("empty", b"", two, false, verified(0, 0, Rest::Unfinished)),
            (
                "all",
                b"abcde",
                two,
                false,
                verified(2, 5, Rest::Unfinished),
            ),
            (
                "torn",
                b"abcd",
                two,
                false,
                verified(1, 2, Rest::Unfinished),
            ),
            (
                "tampered",
                b"abXde",
                two,
                false,
                verified(1, 2, Rest::Mismatch(1)),
            ),
            (
                "longer",
                b"abcdefg",
                two,
                false,
                verified(2, 5, Rest::Unrecorded),
            ),
            (
                "none finished",
                b"x",
                &[],
                false,
                verified(0, 0, Rest::Unrecorded),
            ),
            (
                "failed, keep going",
                b"abcde",
                &[Some(b"ab"), None, Some(b"cde")],
                true,
                verified(3, 5, Rest::Unfinished),
            ),
            (
                "failed, stopped",
                b"ab",
                &[Some(b"ab"), None, Some(b"cde")],
                false,
                verified(1, 2, Rest::Unfinished),
            ),
            (
                "empty outputs",
                b"ab",
                &[Some(b""), Some(b"ab"), Some(b"")],
                false,
                verified(3, 2, Rest::Unfinished),
            ),
        ];
        for (what, content, outputs, keep_going, expected) in cases {
            assert_eq!(check(content, outputs, *keep_going), *expected, "{what}");
        }
    }

    #[test]
    fn a_compressed_file_is_checked_a_unit_at_a_time() {
        let two: &[Option<&[u8]>] = &[Some(b"ab"), Some(b"cde")];
        for encoding in [Encoding::Bgzf, Encoding::Zstd] {
            let file = tempfile::NamedTempFile::new().unwrap();
            let stream = Box::new(file.reopen().unwrap());
            let mut destination = Destination::encoded(stream, encoding, "o".into()).unwrap();
            let mut ends = Vec::new();
            for chunk in [&b"ab"[..], b"cde"] {
                destination.write_all(chunk).unwrap();
                ends.push(file.as_file().metadata().unwrap().len());
            }
            destination.finish().unwrap();
            let finished = std::fs::read(file.path()).unwrap();
            let rest = match encoding {
                Encoding::Bgzf => Rest::EndOfFile,
                _ => Rest::Unfinished,
            };
            assert_eq!(
                check_encoded(encoding, &finished, two, false),
                verified(2, ends[1], rest),
                "{encoding:?}"
            );
            // Torn inside the second chunk: the first is kept.
            let torn = &finished[..ends[1] as usize - 2];
            assert_eq!(
                check_encoded(encoding, torn, two, false),
                verified(1, ends[0], Rest::Unfinished),
                "{encoding:?}"
            );
            // Written plain: nothing matches.
            assert_eq!(
                check_encoded(encoding, b"abcde", two, false).chunks,
                0,
                "{encoding:?}"
            );
        }
    }

    #[test]
    fn says_what_is_kept_and_rewritten() {
        let job: JobId = 3;
        assert_eq!(
            describe(job, "o", verified(0, 0, Rest::Unfinished), 0),
            None
        );
        assert_eq!(
            describe(job, "o", verified(2, 5, Rest::Unfinished), 5).unwrap(),
            "wrun: job 3: o holds the output of the first 2 chunks (5 B), checked against the \
             journal: kept, and appended to"
        );
        assert_eq!(
            describe(job, "o", verified(1, 2, Rest::Mismatch(1)), 5).unwrap(),
            "wrun: job 3: o holds the output of the first 1 chunks (2 B), checked against the \
             journal: kept, and appended to; from byte 2 on it does not match the journal's \
             output of chunk 1: the rest (3 bytes) is rewritten"
        );
        assert_eq!(
            describe(job, "o", verified(1, 2, Rest::Unfinished), 4).unwrap(),
            "wrun: job 3: o holds the output of the first 1 chunks (2 B), checked against the \
             journal: kept, and appended to; the 2 bytes after them are an unfinished write and \
             are rewritten"
        );
    }
}
