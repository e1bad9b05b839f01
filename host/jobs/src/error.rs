//! The library's error: what went wrong, as a kind the caller can act on
//! (the command line maps each kind to one exit code), and a message that
//! names the job, input, module or output concerned.
//!
//! The shape is `std::io::Error`'s: a small closed [`ErrorKind`] and a
//! message. A job fails for many reasons that share one handling (every
//! journal error is handled alike, whatever SQLite said), so the kind is
//! the typed part and the message carries the detail, causes included.

use std::fmt;

use wrun_journal::FailureKind;

/// What kind of thing went wrong; each kind has one exit code in `wrun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An unexpected internal error.
    Internal,
    /// The request itself is invalid (bad options, missing input).
    Usage,
    /// The input cannot be read or is malformed.
    Input,
    /// A module or plugin was rejected, or cannot be read.
    Module,
    /// The output cannot be written.
    Output,
    /// The journal cannot be read or written, or has no such job.
    Journal,
    /// The job was cancelled.
    Cancelled,
    /// The job cannot do that in its state (running elsewhere, unfinished,
    /// its input changed).
    JobState,
    /// Tasks were suspended: out of fuel, or drained.
    Suspended,
    /// A job it waits for does not exist, failed, was cancelled or was
    /// removed.
    Dependency,
    /// A task failed this way (the first failure, in input order).
    Task(FailureKind),
}

/// An error of the job library: a kind and a message (with its causes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Its message, causes included (`context: cause: cause's cause`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An error of `kind` from `error` and its chain of causes.
    pub(crate) fn from_std(kind: ErrorKind, error: &(dyn std::error::Error + 'static)) -> Self {
        Error::new(kind, chain(error))
    }
}

/// `error: its source: its source's source`, as `anyhow`'s `{:#}` prints.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Give any error a kind (and optionally a context before its message).
pub(crate) trait OrKind<T> {
    /// The error, as `kind`.
    fn or_kind(self, kind: ErrorKind) -> Result<T>;
    /// The error, as `kind`, after `context`: `context: error`.
    fn or_kind_with<C: fmt::Display>(
        self,
        kind: ErrorKind,
        context: impl FnOnce() -> C,
    ) -> Result<T>;
}

impl<T, E: std::error::Error + 'static> OrKind<T> for std::result::Result<T, E> {
    fn or_kind(self, kind: ErrorKind) -> Result<T> {
        self.map_err(|e| Error::from_std(kind, &e))
    }

    fn or_kind_with<C: fmt::Display>(
        self,
        kind: ErrorKind,
        context: impl FnOnce() -> C,
    ) -> Result<T> {
        self.map_err(|e| Error::new(kind, format!("{}: {}", context(), chain(&e))))
    }
}

impl From<wrun_journal::JournalError> for Error {
    fn from(error: wrun_journal::JournalError) -> Self {
        Error::from_std(ErrorKind::Journal, &error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn messages_carry_every_cause() {
        let failed: std::result::Result<(), _> = Err(Outer(std::io::Error::other("inner")));
        let error = failed
            .or_kind_with(ErrorKind::Input, || "cannot read x")
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Input);
        assert_eq!(error.message(), "cannot read x: outer: inner");
    }
}
