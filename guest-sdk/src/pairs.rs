//! Paired records (`wrun submit --mate R2.fq`, `--paired interleaved`).
//!
//! A paired job's chunk holds whole pairs, interleaved: first mate,
//! second mate, first mate, ... each a record of its own, so
//! [`Task::record`] is called with the mates in turn (the host has
//! checked that every pair's names agree, by [`mate_name`]). A task that
//! thinks in pairs implements [`PairTask`] and exports [`Paired`]:
//!
//! ```
//! use wrun_sdk::pairs::{Pair, PairTask, Paired};
//! use wrun_sdk::{Args, Output, Result};
//!
//! struct Lengths;
//!
//! impl PairTask for Lengths {
//!     fn init(_args: &Args) -> Result<Self> {
//!         Ok(Lengths)
//!     }
//!
//!     fn pair(&mut self, pair: Pair<'_>, out: &mut Output) -> Result<()> {
//!         out.write(format!("{} {}\n", pair.r1.len(), pair.r2.len()).as_bytes());
//!         Ok(())
//!     }
//! }
//!
//! wrun_sdk::export_task!(Paired<Lengths>, formats = "fastq");
//!
//! let out = wrun_sdk::testing::run_task::<Paired<Lengths>>(&[], &[b"@a/1\n", b"@a/2 x\n"]);
//! assert_eq!(out.unwrap(), b"5 7\n");
//! ```

use crate::{Args, Error, Output, Result, Task};

pub use wrun_abi::pairs::mate_name;

/// Two mates, each a whole record, exactly as in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The first mate (from `--input`).
    pub r1: &'a [u8],
    /// The second mate (from `--mate`).
    pub r2: &'a [u8],
}

impl<'a> Pair<'a> {
    /// The name the mates share ([`mate_name`] of the first).
    pub fn name(&self) -> &'a [u8] {
        mate_name(self.r1)
    }
}

/// Pairs a chunk's records up as they arrive one call at a time: the
/// first mate is kept (copied, in a buffer reused from pair to pair)
/// until its partner comes.
#[derive(Debug, Default)]
pub struct Mates {
    first: Vec<u8>,
    waiting: bool,
}

impl Mates {
    /// Take the next record: the pair, when it is a second mate.
    pub fn push<'a>(&'a mut self, record: &'a [u8]) -> Option<Pair<'a>> {
        if self.waiting {
            self.waiting = false;
            return Some(Pair {
                r1: &self.first,
                r2: record,
            });
        }
        self.first.clear();
        self.first.extend_from_slice(record);
        self.waiting = true;
        None
    }

    /// The chunk ended: an error (bad input) if a first mate still waits,
    /// which means the job's records are not paired.
    pub fn finish(&self) -> Result<()> {
        match self.waiting {
            false => Ok(()),
            true => Err(Error::bad_input(
                "a record has no mate: this task reads paired records; submit it with \
                 --mate FILE (the second mates) or --paired interleaved",
            )),
        }
    }
}

/// A computation over pairs of records: [`Paired`] runs it as a
/// [`Task`] of `unit=record`.
pub trait PairTask: Sized {
    /// Build the task from the job's arguments.
    fn init(args: &Args) -> Result<Self>;

    /// Process one pair.
    fn pair(&mut self, pair: Pair<'_>, out: &mut Output) -> Result<()>;

    /// The chunk is complete: write what remains. The default does
    /// nothing.
    fn finish(&mut self, _out: &mut Output) -> Result<()> {
        Ok(())
    }
}

/// A [`PairTask`] as a [`Task`]: `export_task!(Paired<MyTask>)`. A chunk
/// that ends with a mate missing (an unpaired job) fails as bad input.
#[derive(Debug)]
pub struct Paired<T> {
    task: T,
    mates: Mates,
}

impl<T: PairTask> Task for Paired<T> {
    fn init(args: &Args) -> Result<Self> {
        Ok(Paired {
            task: T::init(args)?,
            mates: Mates::default(),
        })
    }

    fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()> {
        match self.mates.push(record) {
            Some(pair) => self.task.pair(pair, out),
            None => Ok(()),
        }
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        self.mates.finish()?;
        self.task.finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_pair_up_in_turn() {
        let mut mates = Mates::default();
        assert_eq!(mates.push(b"@a/1\n"), None);
        let pair = mates.push(b"@a/2\n").unwrap();
        assert_eq!(
            (pair.r1, pair.r2, pair.name()),
            (&b"@a/1\n"[..], &b"@a/2\n"[..], &b"a"[..])
        );
        assert!(mates.finish().is_ok());
        assert_eq!(mates.push(b"@b\n"), None);
        let error = mates.finish().unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::BadInput);
    }
}
