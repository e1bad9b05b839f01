//! `--reduce`: after every chunk of a job has run, a reducer task gets the
//! chunks' outputs, each as one record, in input order, and its output is
//! the job's output (k-mer tables merged, counts summed, …).

use std::io::{self, Write};

use bytes::Bytes;
use wrun_runtime::{Chunk, TaskRunner};
use wrun_scheduler::Sink;

use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::streams::Destination;

/// The chunks' outputs, kept for the reducer: their bytes end to end and
/// where each starts.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    data: Vec<u8>,
    starts: Vec<u32>,
}

impl Sink for Collected {
    fn output(&mut self, bytes: &[u8]) -> io::Result<()> {
        let start = u32::try_from(self.data.len())
            .ok()
            .filter(|&start| u32::try_from(start as usize + bytes.len()).is_ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "the chunks' outputs exceed the 4 GiB a reducer can take",
                )
            })?;
        self.starts.push(start);
        self.data.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Run `reducer` over `collected` and write its output to `out`; its log
/// lines go to `note` as `[reduce] …`.
pub(crate) fn run(
    reducer: &TaskRunner,
    collected: Collected,
    out: &mut Destination,
    note: &mut dyn FnMut(&str),
) -> Result<()> {
    let result = reducer.run(Chunk {
        data: &Bytes::from(collected.data),
        records: &collected.starts,
    });
    let (output, log) = match &result {
        Ok(done) => (&done.output[..], &done.log),
        Err(failed) => (&[][..], &failed.log),
    };
    for line in String::from_utf8_lossy(log).lines() {
        note(&format!("[reduce] {line}"));
    }
    if let Err(failed) = &result {
        return Err(Error::new(
            ErrorKind::Task(wrun_scheduler::failure_kind(&failed.reason)),
            format!("reduce {}: {}", reducer.source(), failed.reason),
        ));
    }
    out.write_all(output)
        .and_then(|()| Write::flush(out))
        .or_kind_with(ErrorKind::Output, || format!("cannot write {}", out.name))
}
