//! The error a guest returns to fail a call.

use std::fmt;

use wrun_abi::status;

/// What kind of failure an [`Error`] reports; it selects the status code the
/// host sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something went wrong in the guest.
    Failed,
    /// The task's arguments were rejected.
    BadArgs,
    /// The input was rejected as malformed.
    BadInput,
}

/// A guest failure: a kind and a message for the user.
///
/// Any `std::error::Error` converts into it with `?`, as `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// A general failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Failed, message)
    }

    /// Rejected arguments.
    pub fn bad_args(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadArgs, message)
    }

    /// Malformed input.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadInput, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The ABI status code for this error.
    pub fn status(&self) -> i32 {
        match self.kind {
            ErrorKind::Failed => status::FAILED,
            ErrorKind::BadArgs => status::BAD_ARGS,
            ErrorKind::BadInput => status::BAD_INPUT,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Error::failed(error.to_string())
    }
}
