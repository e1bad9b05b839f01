//! The [`Task`] trait and what the host hands to it.

use std::fmt;

use crate::Result;

/// A computation the host runs over every chunk of a job's input.
///
/// See the [crate docs](crate) for the life of an instance. A fresh value is
/// created by `init` for every chunk, so a task never sees two chunks.
pub trait Task: Sized {
    /// Build the task from the job's arguments (`wrun submit … -- ARGS`).
    fn init(args: &Args) -> Result<Self>;

    /// Process one record (or, for `unit = chunk`, the whole chunk). The
    /// bytes are exactly the record's bytes in the input, line endings
    /// included.
    fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()>;

    /// Do a bounded unit of work after the last record; return
    /// [`Step::More`] to be called again, or, after spawning children with
    /// [`spawn`](crate::spawn::spawn), [`Step::Wait`] to be called again
    /// once they are done (their results are readable in that call). The
    /// default does nothing.
    fn step(&mut self, _out: &mut Output) -> Result<Step> {
        Ok(Step::Done)
    }

    /// The chunk is complete: write what remains. The default does nothing.
    fn finish(&mut self, _out: &mut Output) -> Result<()> {
        Ok(())
    }
}

/// What [`Task::step`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Call `step` again.
    More,
    /// Call `step` again once every child spawned since the last wait is
    /// done; in that call, [`Child::result`](crate::spawn::Child::result)
    /// gives each one's output. Returned without a child spawned, it is an
    /// ABI violation.
    Wait,
    /// Stepping is finished.
    Done,
}

/// The job's arguments, as given after `--` on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    list: Vec<String>,
}

impl Args {
    /// Arguments from a list (used by the test harness).
    pub fn new<S: Into<String>>(list: impl IntoIterator<Item = S>) -> Self {
        Args {
            list: list.into_iter().map(Into::into).collect(),
        }
    }

    /// Decode the ABI encoding: each argument UTF-8, followed by a NUL.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut list = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let end = memchr::memchr(0, rest)
                .ok_or_else(|| crate::Error::bad_args("argument list is not NUL-terminated"))?;
            let arg = std::str::from_utf8(&rest[..end])
                .map_err(|_| crate::Error::bad_args("an argument is not UTF-8"))?;
            list.push(arg.to_owned());
            rest = &rest[end + 1..];
        }
        Ok(Args { list })
    }

    /// The `index`th argument.
    pub fn get(&self, index: usize) -> Option<&str> {
        self.list.get(index).map(String::as_str)
    }

    /// All arguments.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(String::as_str)
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Where a task writes its output.
///
/// Bytes are buffered in the guest and handed to the host in one call when
/// the current `record`/`step`/`finish` returns, or sooner when the buffer
/// passes [`Output::FLUSH_AT`]. Use `write!`/`writeln!` (it implements both
/// `fmt::Write` and `io::Write`) or [`Output::write`].
#[derive(Debug, Default)]
pub struct Output {
    buffer: Vec<u8>,
}

impl Output {
    /// Buffered bytes beyond which the output is handed over mid-call.
    pub const FLUSH_AT: usize = 64 * 1024;

    /// An empty output.
    pub const fn new() -> Self {
        Output { buffer: Vec::new() }
    }

    /// Append bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= Self::FLUSH_AT {
            self.flush();
        }
    }

    /// Hand buffered bytes to the host now.
    #[cfg(target_arch = "wasm32")]
    pub fn flush(&mut self) {
        if !self.buffer.is_empty() {
            crate::host::emit(&self.buffer);
            self.buffer.clear();
        }
    }

    /// Natively the harness keeps everything; see [`Output::take`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn flush(&mut self) {}

    /// Remove and return what is buffered (used by the test harness).
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }
}

impl fmt::Write for Output {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Output::write(self, s.as_bytes());
        Ok(())
    }
}

impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Output::write(self, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Output::flush(self);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_the_abi_encoding() {
        let args = Args::decode(b"-k\x0021\x00\x00").unwrap();
        assert_eq!(args, Args::new(["-k", "21", ""]));
        assert_eq!(args.get(1), Some("21"));
        assert!(Args::decode(b"").unwrap().is_empty());
        assert_eq!(
            Args::decode(b"no-nul").unwrap_err().kind(),
            crate::ErrorKind::BadArgs
        );
        assert!(Args::decode(b"\xff\x00").is_err());
    }
}
