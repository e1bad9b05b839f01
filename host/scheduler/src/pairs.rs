//! Paired inputs: two files split in lockstep (`--mate`), or one file
//! whose records alternate (`--paired interleaved`), checked mate by mate
//! and read as one interleaved stream, which the reader then splits and
//! chunks like any input (cutting only between pairs).
//!
//! Each file goes through a splitter plugin instance of its own, so the
//! records are the plugin's; two records are mates when
//! [`wrun_abi::pairs::are_mates`] accepts them. A pair whose names
//! differ, or a file that ends before its mate's, stops the stream with a
//! [`PairError`] naming the pair and both lines.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::ops::Range;

use wrun_abi::pairs::are_mates;
use wrun_runtime::{SplitError, Splitter};
use wrun_store::read_full;

/// Bytes read from a paired file at a time, and about the most the
/// interleaved stream holds ready.
const BLOCK: usize = 1 << 20;

/// The longest line an error message quotes, in characters.
const QUOTED: usize = 200;

/// One file of a pairing: what reads it, the splitter plugin instance
/// that finds its records, and its name in messages.
pub struct PairedInput {
    /// The file's name in messages (its path).
    pub name: String,
    /// Its bytes, decompressed.
    pub reader: Box<dyn Read + Send>,
    /// A splitter instance of its own.
    pub splitter: Splitter,
}

impl fmt::Debug for PairedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairedInput")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A record's first line, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The file's name.
    pub input: String,
    /// Its line number, from 1.
    pub number: u64,
    /// The line, without its ending, cut to 200 characters.
    pub text: String,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {} `{}`", self.input, self.number, self.text)
    }
}

/// Why paired files cannot be read as pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// Two records read as mates are not mates ([`are_mates`]).
    #[error(
        "pair {pair}: {first} and {second} are not mates (mates have the same name up to a \
         trailing /1 or /2 and a comment after a space, and the first mate's /1 comes first)"
    )]
    NamesDiffer {
        /// The pair's number, from 1.
        pair: u64,
        /// The first mate's header.
        first: Line,
        /// The second mate's header.
        second: Line,
    },
    /// A file ended while a record still waited for its mate.
    #[error(
        "pair {pair}: {ended} ended after {records} records, so {unpaired} has no mate \
         (paired files hold one record per pair each; an interleaved file an even number)"
    )]
    Unpaired {
        /// The pair's number, from 1.
        pair: u64,
        /// The file that ended.
        ended: String,
        /// Records it held.
        records: u64,
        /// The record left without a mate.
        unpaired: Line,
    },
}

/// Two paired files, or one interleaved file, read as one interleaved
/// stream of whole pairs: first mate, second mate, and so on. A record
/// that ends its file without a line break gets one. Reading fails with
/// an [`io::Error`] that carries a [`PairError`] or, when a plugin
/// rejects its file, a [`SplitError`] naming that file
/// ([`JobError::from_input`](crate::JobError::from_input) unwraps them).
pub struct Interleaver {
    sides: Sides,
    out: Vec<u8>,
    /// What of `out` was read already.
    taken: usize,
    /// Pairs written so far.
    pairs: u64,
    done: bool,
}

enum Sides {
    /// `--mate`: the first mates' file and the second mates'.
    Two(Box<[Records; 2]>),
    /// `--paired interleaved`: mates in turn.
    One(Box<Records>),
}

impl fmt::Debug for Interleaver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interleaver")
            .field("pairs", &self.pairs)
            .finish_non_exhaustive()
    }
}

impl Interleaver {
    /// The pairs of two files, record `i` of `first` the mate of record
    /// `i` of `second`.
    pub fn two(first: PairedInput, second: PairedInput) -> Self {
        Self::new(Sides::Two(Box::new([
            Records::new(first, false),
            Records::new(second, true),
        ])))
    }

    /// The pairs of one interleaved file: records `2k` and `2k + 1` are
    /// mates.
    pub fn interleaved(input: PairedInput) -> Self {
        Self::new(Sides::One(Box::new(Records::new(input, false))))
    }

    fn new(sides: Sides) -> Self {
        Interleaver {
            sides,
            out: Vec::new(),
            taken: 0,
            pairs: 0,
            done: false,
        }
    }

    /// Refill `out` with whole pairs, about a block's worth.
    fn fill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.taken = 0;
        while !self.done && self.out.len() < BLOCK {
            match &mut self.sides {
                Sides::Two(sides) => {
                    sides.iter_mut().for_each(Records::compact);
                    let [a, b] = &mut **sides;
                    let first = a.next()?;
                    let second = b.next()?;
                    let pair = self.pairs + 1;
                    match (first, second) {
                        (None, None) => self.done = true,
                        (Some(r1), Some(r2)) => {
                            check(pair, (a, &r1), (b, &r2))?;
                            push(&mut self.out, a.bytes(&r1));
                            push(&mut self.out, b.bytes(&r2));
                            self.pairs = pair;
                        }
                        (Some(r), None) => return Err(unpaired(pair, b, (a, &r))),
                        (None, Some(r)) => return Err(unpaired(pair, a, (b, &r))),
                    }
                }
                Sides::One(side) => {
                    side.compact();
                    let pair = self.pairs + 1;
                    let Some(r1) = side.next()? else {
                        self.done = true;
                        continue;
                    };
                    let Some(r2) = side.next()? else {
                        return Err(unpaired(pair, side, (side, &r1)));
                    };
                    check(pair, (side, &r1), (side, &r2))?;
                    push(&mut self.out, side.bytes(&r1));
                    push(&mut self.out, side.bytes(&r2));
                    self.pairs = pair;
                }
            }
        }
        Ok(())
    }
}

impl Read for Interleaver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.taken == self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = buf.len().min(self.out.len() - self.taken);
        buf[..n].copy_from_slice(&self.out[self.taken..n + self.taken]);
        self.taken += n;
        Ok(n)
    }
}

/// `record`, ending with a line break.
fn push(out: &mut Vec<u8>, record: &[u8]) {
    out.extend_from_slice(record);
    if !record.ends_with(b"\n") {
        out.push(b'\n');
    }
}

/// Pair `pair`'s mates have the same name, or an error naming both.
fn check(pair: u64, first: (&Records, &Record), second: (&Records, &Record)) -> io::Result<()> {
    if are_mates(first.0.bytes(first.1), second.0.bytes(second.1)) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        PairError::NamesDiffer {
            pair,
            first: first.0.line(first.1),
            second: second.0.line(second.1),
        },
    ))
}

/// `ended` ended before `left`'s record found its mate.
fn unpaired(pair: u64, ended: &Records, left: (&Records, &Record)) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        PairError::Unpaired {
            pair,
            ended: ended.input.name.clone(),
            records: ended.records,
            unpaired: left.0.line(left.1),
        },
    )
}

/// A record of one file: where it lies in its side's buffer and the
/// number of its first line.
struct Record {
    range: Range<usize>,
    line: u64,
}

/// One file's records, whole, in order, as its plugin finds them.
struct Records {
    input: PairedInput,
    /// Messages about this file's contents name it (the mate's file).
    named: bool,
    /// Bytes read and not yet dropped; `buf[0]` is at `base` in the file.
    buf: Vec<u8>,
    base: u64,
    /// Record starts in `buf` not yet returned, ascending.
    starts: VecDeque<usize>,
    /// The last start reported, in the file (a start at the end of one
    /// block is reported again at 0 of the next).
    last: Option<u64>,
    /// Lines before `buf[counted]`, and that position.
    lines: u64,
    counted: usize,
    /// Everything before `buf[kept]` has been returned and may go.
    kept: usize,
    /// Records returned so far.
    records: u64,
    eof: bool,
    found: Vec<u32>,
    weights: Vec<u64>,
}

impl Records {
    fn new(input: PairedInput, named: bool) -> Self {
        Records {
            input,
            named,
            buf: Vec::new(),
            base: 0,
            starts: VecDeque::new(),
            last: None,
            lines: 0,
            counted: 0,
            kept: 0,
            records: 0,
            eof: false,
            found: Vec::new(),
            weights: Vec::new(),
        }
    }

    fn bytes(&self, record: &Record) -> &[u8] {
        &self.buf[record.range.clone()]
    }

    /// The record's first line, for a message.
    fn line(&self, record: &Record) -> Line {
        let bytes = self.bytes(record);
        let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Line {
            input: self.input.name.clone(),
            number: record.line,
            text: String::from_utf8_lossy(line).chars().take(QUOTED).collect(),
        }
    }

    /// Drop what was returned (records handed out before are invalid).
    fn compact(&mut self) {
        let kept = self.kept.min(self.counted);
        if kept < BLOCK {
            return;
        }
        self.buf.drain(..kept);
        self.base += kept as u64;
        self.starts.iter_mut().for_each(|s| *s -= kept);
        self.counted -= kept;
        self.kept -= kept;
    }

    /// The next whole record, `None` at the end of the file.
    fn next(&mut self) -> io::Result<Option<Record>> {
        loop {
            if self.starts.len() >= 2 || (self.eof && !self.starts.is_empty()) {
                let start = self.starts.pop_front().expect("checked above");
                let end = self.starts.front().copied().unwrap_or(self.buf.len());
                let before = &self.buf[self.counted..start];
                self.lines += before.iter().filter(|&&b| b == b'\n').count() as u64;
                self.counted = start;
                self.kept = end;
                self.records += 1;
                return Ok(Some(Record {
                    range: start..end,
                    line: self.lines + 1,
                }));
            }
            if self.eof {
                return Ok(None);
            }
            self.read_block()?;
        }
    }

    /// Read and split the next block.
    fn read_block(&mut self) -> io::Result<()> {
        let at = self.buf.len();
        self.buf.resize(at + BLOCK, 0);
        let filled = read_full(&mut self.input.reader, &mut self.buf[at..])?;
        self.buf.truncate(at + filled);
        self.eof = filled < BLOCK;
        self.input
            .splitter
            .split(
                &self.buf[at..],
                self.eof,
                &mut self.found,
                &mut self.weights,
            )
            .map_err(|error| self.split_error(error))?;
        for &start in &self.found {
            let offset = at + start as usize;
            let in_file = self.base + offset as u64;
            if self.last.is_some_and(|last| in_file <= last) {
                continue;
            }
            // A start at the very end of the input begins no record.
            if offset == self.buf.len() && self.eof {
                continue;
            }
            self.last = Some(in_file);
            self.starts.push_back(offset);
        }
        self.found.clear();
        Ok(())
    }

    /// A plugin's error about this file, naming it when it is the mate.
    fn split_error(&self, error: SplitError) -> io::Error {
        let error = match error {
            SplitError::Rejected { plugin, message } if self.named => SplitError::Rejected {
                plugin,
                message: format!("{}: {message}", self.input.name),
            },
            error => error,
        };
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}
