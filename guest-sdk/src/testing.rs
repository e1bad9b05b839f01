//! A native harness: run a guest's logic with plain `cargo test`.
//!
//! These functions drive a [`Task`] or [`Splitter`] the way the host drives
//! the compiled module (same call order, same block semantics), without
//! WebAssembly, so a guest's logic is unit-tested on the host target.

use std::rc::Rc;

use crate::spawn::native;
use crate::{Args, Error, Output, Result, Splitter, Step, Task, Weigh};

/// Run a task over `records` as one chunk: `init(args)`, `record` for each,
/// `step` until done, `finish`. Returns everything it wrote.
///
/// A task that [`spawn`](crate::spawn::spawn)s has each child run at once,
/// inline, by the same harness (as a chunk of one record, its input), and
/// its result handed over at the next [`Step::Wait`], as the host does; a
/// child's failure is its error's message (a panic in a child unwinds
/// through the test).
pub fn run_task<T: Task + 'static>(args: &[&str], records: &[&[u8]]) -> Result<Vec<u8>> {
    run_with_args::<T>(&Args::new(args.iter().copied()), records)
}

/// [`run_task`] with decoded arguments, its children run by the same.
fn run_with_args<T: Task + 'static>(args: &Args, records: &[&[u8]]) -> Result<Vec<u8>> {
    let children: native::Runner = Rc::new(|input: &[u8], args: &Args| {
        run_with_args::<T>(args, &[input]).map_err(|error| error.to_string())
    });
    native::with_level(children, || {
        let mut task = T::init(args)?;
        let mut out = Output::new();
        for record in records {
            task.record(record, &mut out)?;
        }
        loop {
            match task.step(&mut out)? {
                Step::More => native::step_returned(),
                Step::Wait if native::wait() => {}
                Step::Wait => {
                    return Err(Error::failed(
                        "step returned Wait without spawning a child since its last wait",
                    ));
                }
                Step::Done => break,
            }
        }
        if native::pending() {
            return Err(Error::failed(
                "step returned Done with children spawned and not waited for",
            ));
        }
        task.finish(&mut out)?;
        Ok(out.take())
    })
}

/// Stream `input` through a splitter in blocks of `block_size` bytes, as
/// the host does, and return the absolute offsets where records start.
///
/// Checks the plugin's side of the contract: offsets ascending and within
/// their block.
pub fn split<S: Splitter>(input: &[u8], block_size: usize) -> Result<Vec<usize>> {
    assert!(block_size > 0, "block size must be positive");
    let mut splitter = S::default();
    let mut starts = Vec::new();
    let mut found = Vec::new();
    let mut blocks = input.chunks(block_size).peekable();
    let mut base = 0;
    loop {
        let block = blocks.next().unwrap_or(&[]);
        let eof = blocks.peek().is_none();
        starts.clear();
        splitter.split(block, eof, &mut starts)?;
        let mut previous = None;
        for &start in &starts {
            let start = start as usize;
            if start > block.len() || previous.is_some_and(|p| p > start) {
                return Err(Error::failed(format!(
                    "splitter reported offset {start} out of order or beyond its {}-byte block",
                    block.len()
                )));
            }
            previous = Some(start);
            if base + start < input.len() && found.last() != Some(&(base + start)) {
                found.push(base + start);
            }
        }
        base += block.len();
        if eof {
            return Ok(found);
        }
    }
}

/// Split `input` into records with a splitter (see [`split`]).
pub fn records<S: Splitter>(input: &[u8], block_size: usize) -> Result<Vec<&[u8]>> {
    let starts = split::<S>(input, block_size)?;
    let ends = starts.iter().skip(1).copied().chain([input.len()]);
    Ok(starts
        .iter()
        .zip(ends)
        .map(|(&s, e)| &input[s..e])
        .collect())
}

/// Stream `input` through a weighing splitter in blocks of `block_size`
/// bytes, as the host does, and return each record's start (absolute
/// offset) and weight: the sum of its parts over the blocks it touches.
///
/// Checks that every `weigh` reports one weight more than its starts.
pub fn weighed<S: Weigh>(input: &[u8], block_size: usize) -> Result<Vec<(usize, u64)>> {
    assert!(block_size > 0, "block size must be positive");
    let mut splitter = S::default();
    let (mut starts, mut weights) = (Vec::new(), Vec::new());
    let mut records: Vec<(usize, u64)> = Vec::new();
    let mut blocks = input.chunks(block_size).peekable();
    let mut base = 0;
    loop {
        let block = blocks.next().unwrap_or(&[]);
        let eof = blocks.peek().is_none();
        starts.clear();
        weights.clear();
        splitter.split(block, eof, &mut starts)?;
        splitter.weigh(block, eof, &starts, &mut weights)?;
        if weights.len() != starts.len() + 1 {
            return Err(Error::failed(format!(
                "weigh reported {} weights for {} starts",
                weights.len(),
                starts.len()
            )));
        }
        let add = |records: &mut Vec<(usize, u64)>, weight| {
            if let Some((_, total)) = records.last_mut() {
                *total += weight;
            }
        };
        add(&mut records, weights[0]);
        for (&start, &weight) in starts.iter().zip(&weights[1..]) {
            let at = base + start as usize;
            // A start reported again (at the end of one block, at 0 of the
            // next) is the same record.
            if records.last().is_none_or(|&(last, _)| at > last) {
                records.push((at, 0));
            }
            add(&mut records, weight);
        }
        base += block.len();
        if eof {
            records.retain(|&(at, _)| at < input.len());
            return Ok(records);
        }
    }
}

/// A fixed-seed xorshift64* generator, for property tests that must be the
/// same run every time.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value but 0 gives a full-period stream).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// `text` (with `\n` line endings) with each line ending chosen at random:
/// `\n`, `\r\n`, or, when `lone` is set, sometimes a `\r` alone (never
/// before an empty line, where it would make a `\r\n` and drop a line).
/// Also whether the result has a carriage return that ends no line.
pub fn mix_line_endings(text: &[u8], rng: &mut Rng, lone: bool) -> (Vec<u8>, bool) {
    let mut mixed = Vec::with_capacity(text.len() + text.len() / 8);
    for (i, &b) in text.iter().enumerate() {
        if b != b'\n' {
            mixed.push(b);
            continue;
        }
        let before_empty_line = text.get(i + 1) == Some(&b'\n');
        match rng.below(if lone { 8 } else { 2 }) {
            0 => mixed.push(b'\n'),
            1 => mixed.extend_from_slice(b"\r\n"),
            2 if lone && !before_empty_line => mixed.push(b'\r'),
            _ => mixed.push(b'\n'),
        }
    }
    let ends_no_line = mixed
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && mixed.get(i + 1) != Some(&b'\n'));
    (mixed, ends_no_line)
}

/// `records` with every `\r\n` made `\n`: what an LF file's records are.
pub fn as_lf(records: &[&[u8]]) -> Vec<Vec<u8>> {
    records
        .iter()
        .map(|record| {
            let mut lf = Vec::with_capacity(record.len());
            for (i, &b) in record.iter().enumerate() {
                if !(b == b'\r' && record.get(i + 1) == Some(&b'\n')) {
                    lf.push(b);
                }
            }
            lf
        })
        .collect()
}

/// Property test of a splitter's line endings: for `cases` random inputs
/// from `generate` (text with `\n` endings) given random mixes of line
/// endings and cut into random block sizes, `S` reads the records of the LF
/// text (`\r\n` as `\n`), or, exactly when a carriage return ends no line,
/// refuses the input naming the carriage return. Panics on the first case
/// that does neither.
pub fn check_line_endings<S: Splitter>(
    seed: u64,
    cases: usize,
    mut generate: impl FnMut(&mut Rng) -> Vec<u8>,
) {
    let mut rng = Rng::new(seed);
    for case in 0..cases {
        let lf = generate(&mut rng);
        let expected = as_lf(&records::<S>(&lf, 4096).expect("the LF text splits"));
        let (mixed, lone) = mix_line_endings(&lf, &mut rng, case % 2 == 1);
        let block = rng.below(16) as usize + 1;
        match records::<S>(&mixed, block) {
            Ok(got) => {
                assert!(!lone, "case {case}: a lone \\r was read: {mixed:?}");
                assert_eq!(as_lf(&got), expected, "case {case}, block {block}");
            }
            Err(error) => {
                assert!(lone, "case {case}: {}: {mixed:?}", error.message());
                assert!(
                    error.message().contains("carriage return"),
                    "{}",
                    error.message()
                );
            }
        }
    }
}

/// `S` refuses each input of `cases` (cut into blocks of 1 to 100 bytes)
/// for a carriage return that ends no line, naming the line given.
pub fn check_lone_carriage_returns<S: Splitter>(cases: &[(&[u8], u64)]) {
    for block in [1, 2, 3, 5, 7, 100] {
        for &(input, line) in cases {
            let error = records::<S>(input, block).unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::BadInput);
            assert!(
                error
                    .message()
                    .starts_with(&format!("line {line}: a carriage return")),
                "block {block}: {}",
                error.message()
            );
        }
    }
}
