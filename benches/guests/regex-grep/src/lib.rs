//! Benchmark guest: keep the lines that match a regular expression.
//!
//! It links the whole `regex` crate (Unicode tables, every engine), which
//! makes a module of over a megabyte: the cold-compile versus cache-hit
//! benchmark needs one that size.

use wrun_sdk::{Args, Error, Output, Result, Task};

/// The compiled pattern.
#[derive(Debug)]
pub struct Grep {
    pattern: regex::bytes::Regex,
}

impl Task for Grep {
    fn init(args: &Args) -> Result<Self> {
        let pattern = args
            .get(0)
            .ok_or_else(|| Error::bad_args("usage: regex-grep PATTERN"))?;
        let pattern =
            regex::bytes::Regex::new(pattern).map_err(|e| Error::bad_args(e.to_string()))?;
        Ok(Grep { pattern })
    }

    fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()> {
        if self.pattern.is_match(record) {
            out.write(record);
        }
        Ok(())
    }
}

wrun_sdk::export_task!(Grep, formats = "lines");
