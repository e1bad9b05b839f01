//! Reading a FASTA record handed to a task by the `fasta` splitter.
//!
//! A record is the header line (starting with `>`) and the sequence lines
//! up to the next header. Line endings may be `\n` or `\r\n`; blank lines
//! and a missing final newline are accepted.

use crate::{Error, Result};

/// One FASTA record, borrowed from the task's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    header: &'a [u8],
    sequence: &'a [u8],
}

impl<'a> Record<'a> {
    /// Split a record into header and sequence. Fails if it does not start
    /// with `>`, or holds a carriage return that ends no line.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if crate::splitter::has_lone_carriage_return(bytes) {
            return Err(Error::bad_input(
                "FASTA record has a carriage return (\\r) that does not end a line: \
                 classic-Mac or mixed line endings",
            ));
        }
        let rest = bytes
            .strip_prefix(b">")
            .ok_or_else(|| Error::bad_input("FASTA record does not start with '>'"))?;
        let (header, sequence) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        Ok(Record {
            header: header.strip_suffix(b"\r").unwrap_or(header),
            sequence,
        })
    }

    /// The header line without `>` and line ending.
    pub fn header(&self) -> &'a [u8] {
        self.header
    }

    /// The identifier: the header up to the first whitespace.
    pub fn id(&self) -> &'a [u8] {
        identifier(self.header)
    }

    /// The sequence as written: its lines with their line endings, for
    /// loops that skip line endings themselves faster than
    /// [`sequence_lines`](Self::sequence_lines) splits them (for example
    /// [`crate::bases::count_gc`]).
    pub fn wrapped_sequence(&self) -> &'a [u8] {
        self.sequence
    }

    /// The sequence lines, without line endings; blank lines are skipped.
    pub fn sequence_lines(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.sequence
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.is_empty())
    }
}

/// A header's identifier: up to the first whitespace.
pub(crate) fn identifier(header: &[u8]) -> &[u8] {
    let end = header
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(header.len());
    &header[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crlf_blank_lines_and_missing_final_newline() {
        let r = Record::parse(b">seq1 some description\r\nACGT\r\n\r\nacg").unwrap();
        assert_eq!(r.header(), b"seq1 some description");
        assert_eq!(r.id(), b"seq1");
        let lines: Vec<_> = r.sequence_lines().collect();
        assert_eq!(lines, [&b"ACGT"[..], b"acg"]);
    }

    #[test]
    fn header_only_and_rejects() {
        let r = Record::parse(b">empty").unwrap();
        assert_eq!(r.id(), b"empty");
        assert_eq!(r.sequence_lines().count(), 0);
        assert_eq!(
            Record::parse(b"ACGT\n").unwrap_err().kind(),
            crate::ErrorKind::BadInput
        );
    }

    #[test]
    fn a_carriage_return_that_ends_no_line_is_refused() {
        let error = Record::parse(b">a\rACGT\r").unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::BadInput);
        assert!(error.message().contains("carriage return"));
    }
}
