//! Exit codes and how errors reach the user.
//!
//! Every failure leaves `wrun` with a code that says what went wrong, so
//! scripts can react without parsing messages. The table is printed by
//! `wrun --help` and repeated in the README.

use std::fmt::Display;
use std::process::ExitCode;

use wrun_jobs::ErrorKind;
use wrun_journal::FailureKind;

/// Why `wrun` exited unsuccessfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// An unexpected internal error.
    Internal = 1,
    /// The command line is invalid (clap uses this code too).
    Usage = 2,
    /// The input cannot be read or is malformed.
    Input = 3,
    /// A module or plugin was rejected (or could not be built).
    Module = 4,
    /// The output cannot be written.
    Output = 5,
    /// The journal cannot be read or written, or has no such job.
    Journal = 6,
    /// The job was cancelled.
    Cancelled = 7,
    /// The job cannot do that in its state (running elsewhere, unfinished,
    /// its input changed).
    JobState = 8,
    /// Tasks were suspended: out of fuel, or drained by SIGTERM/SIGINT (or
    /// a `--broker` client left its job on a signal).
    Suspended = 9,
    /// A task trapped.
    Trap = 10,
    /// A task ran out of fuel.
    Fuel = 11,
    /// A task timed out.
    Timeout = 12,
    /// A task hit the memory or table limit.
    Memory = 13,
    /// A task hit the output limit.
    OutputLimit = 14,
    /// A command exited with a non-zero status.
    Exit = 15,
    /// An SDK task returned an error.
    TaskError = 16,
    /// A task broke the ABI, or the host failed running it.
    Abi = 17,
    /// The broker cannot be reached, refused us, or was lost.
    Broker = 18,
    /// A job it waits for (`--after`, `--input job:JOB`) does not exist,
    /// failed, was cancelled or was removed.
    Dependency = 19,
    /// A task spawned past a limit on spawning.
    SpawnLimit = 20,
}

/// The exit-code table shown in `--help`.
pub(crate) const TABLE: &str = "\
Exit codes:
   0  success
   1  internal error
   2  invalid command line
   3  input cannot be read or is malformed (e.g. FASTA without '>')
   4  module or plugin rejected: invalid wasm, wrong kind or ABI, disallowed import
   5  output cannot be written
   6  the job journal cannot be read or written, or has no such job
   7  the job was cancelled (wrun cancel)
   8  the job cannot do that now: it runs elsewhere, is unfinished, or its input changed
   9  chunks were suspended: out of fuel (wrun resume JOB --add-fuel N), or
      stopped by SIGTERM/SIGINT (wrun resume JOB); their snapshots are kept;
      a --broker client left its job (wrun resume JOB --broker ...)
  10  a task trapped (panic, out-of-bounds access, stack overflow, ...)
  11  a task ran out of fuel (--fuel) in a job run with --no-journal (a
      journaled job suspends it instead: 9)
  12  a task timed out (--timeout)
  13  a task exceeded the memory or table limit (--memory)
  14  a task exceeded the output limit (--output-limit)
  15  a command task exited with a non-zero status
  16  an SDK task reported an error
  17  a task broke the guest ABI, or the host failed running it (after --retries)
  18  the broker (--broker) cannot be reached, refused this client or key, or
      was lost mid-job (the job is journaled there: `wrun resume JOB --broker`)
  19  a job it waits for (--after JOB, --input job:JOB) does not exist,
      failed, was cancelled or was removed
  20  a task spawned past a limit on spawning: deeper than --max-spawn-depth,
      more children than --max-children, or more children of the job in
      flight than --max-children-in-flight

A job whose tasks failed has them recorded: `wrun status JOB` lists them,
`wrun logs JOB` shows their logs, `wrun retry JOB` runs them again.";

impl Code {
    /// Every code, in order.
    #[cfg(test)]
    const ALL: [Code; 20] = [
        Code::Internal,
        Code::Usage,
        Code::Input,
        Code::Module,
        Code::Output,
        Code::Journal,
        Code::Cancelled,
        Code::JobState,
        Code::Suspended,
        Code::Trap,
        Code::Fuel,
        Code::Timeout,
        Code::Memory,
        Code::OutputLimit,
        Code::Exit,
        Code::TaskError,
        Code::Abi,
        Code::Broker,
        Code::Dependency,
        Code::SpawnLimit,
    ];

    /// The code for a task failure.
    pub(crate) fn of_task(kind: FailureKind) -> Code {
        match kind {
            FailureKind::Trap => Code::Trap,
            FailureKind::Fuel => Code::Fuel,
            FailureKind::Timeout => Code::Timeout,
            FailureKind::Memory => Code::Memory,
            FailureKind::OutputLimit => Code::OutputLimit,
            FailureKind::Exit => Code::Exit,
            FailureKind::Guest => Code::TaskError,
            FailureKind::Abi | FailureKind::Host | FailureKind::Quarantined => Code::Abi,
            FailureKind::SpawnLimit => Code::SpawnLimit,
        }
    }
}

/// An error on its way to the user, with its exit code.
#[derive(Debug)]
pub(crate) struct Fail {
    code: u8,
    error: anyhow::Error,
}

impl Fail {
    pub(crate) fn new(code: Code, error: impl Into<anyhow::Error>) -> Self {
        Fail {
            code: code as u8,
            error: error.into(),
        }
    }

    /// A failure a broker reported, with its exit code.
    pub(crate) fn remote(code: u8, message: String) -> Self {
        Fail {
            code,
            error: anyhow::anyhow!(message),
        }
    }

    /// Print `wrun: error: …` (with causes) and return the exit code.
    pub(crate) fn report(self) -> ExitCode {
        // A forwarded command's failure came with its own message (it was
        // printed with the command's standard error).
        let message = format!("{:#}", self.error);
        if !message.is_empty() {
            eprintln!("wrun: error: {message}");
        }
        ExitCode::from(self.code)
    }
}

impl From<wrun_journal::JournalError> for Fail {
    fn from(error: wrun_journal::JournalError) -> Self {
        Fail::new(Code::Journal, error)
    }
}

/// The exit code of a job library error.
pub(crate) fn code_of(error: &wrun_jobs::Error) -> u8 {
    kind_code(error.kind()) as u8
}

impl From<wrun_jobs::Error> for Fail {
    fn from(error: wrun_jobs::Error) -> Self {
        Fail::new(kind_code(error.kind()), error)
    }
}

/// The code for each kind of job library error.
fn kind_code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::Internal => Code::Internal,
        ErrorKind::Usage => Code::Usage,
        ErrorKind::Input => Code::Input,
        ErrorKind::Module => Code::Module,
        ErrorKind::Output => Code::Output,
        ErrorKind::Journal => Code::Journal,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::JobState => Code::JobState,
        ErrorKind::Suspended => Code::Suspended,
        ErrorKind::Dependency => Code::Dependency,
        ErrorKind::Task(kind) => Code::of_task(kind),
    }
}

/// Attach an exit code (and optionally context) to any error.
pub(crate) trait OrFail<T> {
    fn or_fail(self, code: Code) -> Result<T, Fail>;
    fn or_fail_with<C: Display + Send + Sync + 'static>(
        self,
        code: Code,
        context: impl FnOnce() -> C,
    ) -> Result<T, Fail>;
}

impl<T, E: Into<anyhow::Error>> OrFail<T> for Result<T, E> {
    fn or_fail(self, code: Code) -> Result<T, Fail> {
        self.map_err(|e| Fail::new(code, e))
    }

    fn or_fail_with<C: Display + Send + Sync + 'static>(
        self,
        code: Code,
        context: impl FnOnce() -> C,
    ) -> Result<T, Fail> {
        self.map_err(|e| Fail::new(code, e.into().context(context())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers `TABLE` (`--help`) and the README list, in order.
    fn listed(lines: impl Iterator<Item = String>) -> Vec<u8> {
        lines.filter_map(|line| line.parse().ok()).collect()
    }

    #[test]
    fn help_and_readme_list_exactly_the_codes_of_the_enum() {
        let codes: Vec<u8> = std::iter::once(0)
            .chain(Code::ALL.iter().map(|&code| code as u8))
            .collect();
        assert_eq!(
            codes,
            (0..=Code::ALL.len() as u8).collect::<Vec<_>>(),
            "codes are numbered 1, 2, … in the order of ALL"
        );
        let help = TABLE.lines().map(|line| {
            let first = line.split_whitespace().next().unwrap_or("");
            match line.starts_with("  ") && line.len() > 5 && &line[4..6] == "  " {
                true => first.to_owned(),
                false => String::new(),
            }
        });
        assert_eq!(listed(help), codes, "`wrun --help`'s exit-code table");
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("### Exit codes")
            .nth(1)
            .expect("the README has an exit-code section");
        let rows = table
            .lines()
            .skip_while(|line| !line.starts_with("| 0 |"))
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                line.trim_start_matches('|')
                    .split('|')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            });
        assert_eq!(listed(rows), codes, "the README's exit-code table");
    }
}
