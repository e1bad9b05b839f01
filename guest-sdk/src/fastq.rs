//! Reading a FASTQ record handed to a task by the `fastq` splitter.
//!
//! A record is four lines: `@` header, sequence, `+` separator, quality.
//! The splitter has already checked the structure; line endings may be
//! `\n` or `\r\n`.

use crate::{Error, Result};

/// One FASTQ record, borrowed from the task's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    header: &'a [u8],
    sequence: &'a [u8],
    quality: &'a [u8],
}

impl<'a> Record<'a> {
    /// Split a record into its lines. Fails if it does not start with `@`,
    /// has fewer than four lines, or holds a carriage return that ends no
    /// line.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if crate::splitter::has_lone_carriage_return(bytes) {
            return Err(Error::bad_input(
                "FASTQ record has a carriage return (\\r) that does not end a line: \
                 classic-Mac or mixed line endings",
            ));
        }
        let rest = bytes
            .strip_prefix(b"@")
            .ok_or_else(|| Error::bad_input("FASTQ record does not start with '@'"))?;
        let mut lines = rest
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        let mut next = || {
            lines
                .next()
                .ok_or_else(|| Error::bad_input("FASTQ record has fewer than four lines"))
        };
        let (header, sequence, _, quality) = (next()?, next()?, next()?, next()?);
        Ok(Record {
            header,
            sequence,
            quality,
        })
    }

    /// The header line without `@` and line ending.
    pub fn header(&self) -> &'a [u8] {
        self.header
    }

    /// The identifier: the header up to the first whitespace.
    pub fn id(&self) -> &'a [u8] {
        crate::fasta::identifier(self.header)
    }

    /// The sequence.
    pub fn sequence(&self) -> &'a [u8] {
        self.sequence
    }

    /// The quality line, as long as the sequence.
    pub fn quality(&self) -> &'a [u8] {
        self.quality
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_lines() {
        let record = Record::parse(b"@r1 extra\r\nACGT\r\n+\r\nIIII\r\n").unwrap();
        assert_eq!(record.header(), b"r1 extra");
        assert_eq!(record.id(), b"r1");
        assert_eq!(record.sequence(), b"ACGT");
        assert_eq!(record.quality(), b"IIII");
        let record = Record::parse(b"@e\n\n+\n").unwrap();
        assert_eq!((record.sequence(), record.quality()), (&b""[..], &b""[..]));
    }

    #[test]
    fn rejects_what_is_not_fastq() {
        assert!(Record::parse(b">r\nAC\n").is_err());
        assert!(Record::parse(b"@r\nAC\n").is_err());
    }

    #[test]
    fn a_carriage_return_that_ends_no_line_is_refused() {
        let error = Record::parse(b"@a\rACGT\r").unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::BadInput);
        assert!(error.message().contains("carriage return"));
    }
}
