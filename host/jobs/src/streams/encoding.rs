//! How an output file is compressed, chosen by its name: `.gz` (also
//! `.bgz`, `.gzip`) is BGZF, `.zst` (also `.zstd`) is zstd, anything else
//! is plain. Every write is compressed on its own into whole units (BGZF
//! blocks, each a gzip member; one zstd frame), so a job's output, written
//! one chunk per write, holds each chunk in units of its own: a file cut
//! after any chunk decompresses to exactly the chunks before the cut, and
//! a resume can check the file chunk by chunk and append to it
//! ([`ReadBack`]). A finished BGZF file ends with the end-of-file block
//! that samtools and tabix look for; a run that stops early leaves none.

use std::io::{self, BufRead, Read, Write};
use std::path::Path;

use flate2::bufread::GzDecoder;

/// zstd's compression level for outputs: its default, fast and close to
/// gzip -9's ratio.
const ZSTD_LEVEL: i32 = zstd::DEFAULT_COMPRESSION_LEVEL;

/// How an output file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Not at all.
    Plain,
    /// BGZF: gzip in blocks of at most 64 KiB, each a gzip member, ending
    /// with an empty end-of-file block; `gzip -d` reads it, and samtools
    /// faidx and tabix index it.
    Bgzf,
    /// zstd, one frame per write.
    Zstd,
}

impl Encoding {
    /// The encoding `path`'s extension names.
    pub(crate) fn of(path: &Path) -> Self {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("gz" | "bgz" | "gzip") => Encoding::Bgzf,
            Some("zst" | "zstd") => Encoding::Zstd,
            _ => Encoding::Plain,
        }
    }
}

/// A stream that compresses each write on its own into whole units.
pub(crate) enum Encoder {
    /// Written as given.
    Plain,
    /// Each write becomes BGZF blocks.
    Bgzf,
    /// Each write becomes one zstd frame (with its size and checksum).
    Zstd(zstd::bulk::Compressor<'static>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::Plain => "Plain",
            Encoder::Bgzf => "Bgzf",
            Encoder::Zstd(_) => "Zstd",
        })
    }
}

impl Encoder {
    /// An encoder for `encoding`.
    ///
    /// # Errors
    ///
    /// zstd's, when its context cannot be created.
    pub(crate) fn new(encoding: Encoding) -> io::Result<Self> {
        Ok(match encoding {
            Encoding::Plain => Encoder::Plain,
            Encoding::Bgzf => Encoder::Bgzf,
            Encoding::Zstd => {
                let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
                compressor.include_checksum(true)?;
                compressor.include_contentsize(true)?;
                Encoder::Zstd(compressor)
            }
        })
    }

    /// Write `bytes` to `out` as whole units of their own (nothing for no
    /// bytes).
    pub(crate) fn write(&mut self, bytes: &[u8], out: &mut dyn Write) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self {
            Encoder::Plain => out.write_all(bytes),
            Encoder::Bgzf => {
                // A writer per write: flushing it closes the last block, and
                // taking its buffer back leaves out the end-of-file block.
                let mut blocks = noodles_bgzf::io::Writer::new(Vec::new());
                blocks.write_all(bytes)?;
                blocks.flush()?;
                out.write_all(&blocks.into_inner())
            }
            Encoder::Zstd(compressor) => out.write_all(&compressor.compress(bytes)?),
        }
    }

    /// What ends a finished file: BGZF's end-of-file block.
    pub(crate) fn trailer(&self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Plain | Encoder::Zstd(_) => Ok(Vec::new()),
            Encoder::Bgzf => noodles_bgzf::io::Writer::new(Vec::new()).finish(),
        }
    }
}

/// An output file read back from the start, chunk by chunk, for a resume:
/// decompressed a whole unit at a time, so that a chunk counts only if its
/// output ends where a unit does.
#[derive(Debug)]
pub(crate) struct ReadBack<R> {
    encoding: Encoding,
    file: Consumed<R>,
}

/// What [`ReadBack::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The chunk's bytes, whole, ending at this offset in the file.
    Whole(u64),
    /// The file ends (or a unit is cut short) before the chunk does.
    Short,
    /// The chunk ends inside a unit: not a file this encoding wrote.
    Straddles,
}

/// What follows the chunks taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Nothing.
    Nothing,
    /// Only units that hold no bytes: BGZF's end-of-file block.
    EndOfFile,
    /// Bytes.
    Bytes,
}

impl<R: BufRead> ReadBack<R> {
    /// Read `file`, written with `encoding`, from its start.
    pub(crate) fn new(encoding: Encoding, file: R) -> Self {
        ReadBack {
            encoding,
            file: Consumed { inner: file, at: 0 },
        }
    }

    /// Read the next `len` decompressed bytes into `bytes` (cleared first).
    ///
    /// # Errors
    ///
    /// A plain file's read errors; a compressed file's unit that cannot
    /// be read is [`Taken::Short`].
    pub(crate) fn take(&mut self, len: u64, bytes: &mut Vec<u8>) -> io::Result<Taken> {
        bytes.clear();
        if self.encoding == Encoding::Plain {
            (&mut self.file).take(len).read_to_end(bytes)?;
            return Ok(match bytes.len() as u64 == len {
                true => Taken::Whole(self.file.at),
                false => Taken::Short,
            });
        }
        while (bytes.len() as u64) < len {
            if !self.unit(bytes)? {
                return Ok(Taken::Short);
            }
        }
        if bytes.len() as u64 > len {
            return Ok(Taken::Straddles);
        }
        Ok(Taken::Whole(self.file.at))
    }

    /// What the file holds after the chunks taken.
    ///
    /// # Errors
    ///
    /// The file's read errors.
    pub(crate) fn after(&mut self) -> io::Result<After> {
        if self.file.fill_buf()?.is_empty() {
            return Ok(After::Nothing);
        }
        if self.encoding == Encoding::Plain {
            return Ok(After::Bytes);
        }
        let mut bytes = Vec::new();
        while self.unit(&mut bytes)? {
            if !bytes.is_empty() {
                return Ok(After::Bytes);
            }
        }
        Ok(match self.file.fill_buf()?.is_empty() {
            true => After::EndOfFile,
            false => After::Bytes,
        })
    }

    /// Decompress the next whole unit onto `bytes`: `false`, with nothing
    /// added, at the end of the file or at a unit that is cut short or
    /// damaged (any decoder error: the decoders fold read errors into
    /// theirs, and either way the file is rewritten from there).
    fn unit(&mut self, bytes: &mut Vec<u8>) -> io::Result<bool> {
        if self.file.fill_buf()?.is_empty() {
            return Ok(false);
        }
        let before = bytes.len();
        let read = match self.encoding {
            Encoding::Plain => unreachable!("a plain file has no units"),
            Encoding::Bgzf => GzDecoder::new(&mut self.file).read_to_end(bytes),
            Encoding::Zstd => zstd::stream::read::Decoder::with_buffer(&mut self.file)
                .and_then(|decoder| decoder.single_frame().read_to_end(bytes)),
        };
        if read.is_err() {
            bytes.truncate(before);
        }
        Ok(read.is_ok())
    }
}

/// A buffered reader that counts the bytes consumed from it: a decoder
/// that reads one unit consumes exactly that unit.
#[derive(Debug)]
struct Consumed<R> {
    inner: R,
    at: u64,
}

impl<R: BufRead> Read for Consumed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Consumed<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.at += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(encoding: Encoding, chunks: &[&[u8]], finished: bool) -> Vec<u8> {
        let mut encoder = Encoder::new(encoding).unwrap();
        let mut out = Vec::new();
        for chunk in chunks {
            encoder.write(chunk, &mut out).unwrap();
        }
        if finished {
            out.extend(encoder.trailer().unwrap());
        }
        out
    }

    fn decode_all(encoding: Encoding, file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            Encoding::Plain => out.extend_from_slice(file),
            Encoding::Bgzf => {
                flate2::read::MultiGzDecoder::new(file)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Encoding::Zstd => out = zstd::decode_all(file).unwrap(),
        }
        out
    }

    #[test]
    fn names_pick_the_encoding() {
        for (name, encoding) in [
            ("out.gz", Encoding::Bgzf),
            ("OUT.BGZ", Encoding::Bgzf),
            ("out.tsv.zst", Encoding::Zstd),
            ("out.zstd", Encoding::Zstd),
            ("out.tsv", Encoding::Plain),
            ("out", Encoding::Plain),
            ("out.bz2", Encoding::Plain),
        ] {
            assert_eq!(Encoding::of(Path::new(name)), encoding, "{name}");
        }
    }

    #[test]
    fn every_chunk_is_whole_units_and_reads_back() {
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let chunks: [&[u8]; 4] = [b">a\nACGT\n", b"", &big, b">z\nT\n"];
        for encoding in [Encoding::Plain, Encoding::Bgzf, Encoding::Zstd] {
            let file = encode(encoding, &chunks, true);
            assert_eq!(decode_all(encoding, &file), chunks.concat(), "{encoding:?}");
            let mut back = ReadBack::new(encoding, &file[..]);
            let mut bytes = Vec::new();
            let mut ends = Vec::new();
            for chunk in chunks {
                let Taken::Whole(end) = back.take(chunk.len() as u64, &mut bytes).unwrap() else {
                    panic!("{encoding:?}: chunk not whole");
                };
                assert_eq!(bytes, chunk);
                ends.push(end);
            }
            let expected = match encoding {
                Encoding::Bgzf => After::EndOfFile,
                _ => After::Nothing,
            };
            assert_eq!(back.after().unwrap(), expected, "{encoding:?}");
            // Cut after the third chunk: it decompresses to the first three.
            let cut = &file[..ends[2] as usize];
            assert_eq!(decode_all(encoding, cut), chunks[..3].concat());
        }
    }

    #[test]
    fn a_bgzf_file_ends_with_the_end_of_file_block() {
        let file = encode(Encoding::Bgzf, &[b"ACGT\n"], true);
        assert!(file.ends_with(&[0x1b, 0x00, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(&file[12..14], b"BC");
        let unfinished = encode(Encoding::Bgzf, &[b"ACGT\n"], false);
        assert_eq!(unfinished.len() + 28, file.len());
    }

    #[test]
    fn torn_and_foreign_files_stop_the_read_back() {
        for encoding in [Encoding::Bgzf, Encoding::Zstd] {
            let file = encode(encoding, &[b"abc", b"defgh"], false);
            let mut bytes = Vec::new();
            // Torn inside the second chunk's unit.
            let mut back = ReadBack::new(encoding, &file[..file.len() - 3]);
            assert!(matches!(back.take(3, &mut bytes).unwrap(), Taken::Whole(_)));
            assert_eq!(back.take(5, &mut bytes).unwrap(), Taken::Short);
            // Chunks that end inside a unit.
            let mut back = ReadBack::new(encoding, &file[..]);
            assert_eq!(back.take(2, &mut bytes).unwrap(), Taken::Straddles);
            // Not compressed at all.
            let mut back = ReadBack::new(encoding, &b"abcdefgh"[..]);
            assert_eq!(back.take(3, &mut bytes).unwrap(), Taken::Short);
        }
    }
}
