//! A native harness: run a guest's logic with plain `cargo test`.
//!
//! These functions drive a [`Task`] or [`Splitter`] the way the host drives
//! the compiled module (same call order, same block semantics), without
//! WebAssembly, so a guest's logic is unit-tested on the host target.

use crate::{Args, Error, Output, Result, Splitter, Step, Task};

/// Run a task over `records` as one chunk: `init(args)`, `record` for each,
/// `step` until done, `finish`. Returns everything it wrote.
pub fn run_task<T: Task>(args: &[&str], records: &[&[u8]]) -> Result<Vec<u8>> {
    let mut task = T::init(&Args::new(args.iter().copied()))?;
    let mut out = Output::new();
    for record in records {
        task.record(record, &mut out)?;
    }
    while task.step(&mut out)? == Step::More {}
    task.finish(&mut out)?;
    Ok(out.take())
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
