//! The reference: FASTA text given as the argument, or a data file granted
//! to the job (`wrun submit --data NAME=PATH`), read from `/data/NAME`.
//! Either is streamed one record at a time, so a reference of any size
//! costs the memory of its longest sequence.

use std::io::{BufRead, BufReader};

use wrun_sdk::{Error, Result, fasta};

/// Where the subjects come from.
#[derive(Debug)]
pub enum Reference {
    /// The FASTA text itself (an argument starting with `>`).
    Text(Vec<u8>),
    /// The name of a data file.
    Data(String),
}

impl Reference {
    /// `--reference VALUE`: FASTA text when it starts with `>`, else the
    /// name of a data file.
    pub fn from_argument(value: &str) -> Reference {
        match value.starts_with('>') {
            true => Reference::Text(value.as_bytes().to_vec()),
            false => Reference::Data(value.to_owned()),
        }
    }

    /// Call `subject` with the id and residues of each record, in order
    /// (a data file is opened, read and closed within this call); the
    /// number of records.
    ///
    /// # Errors
    ///
    /// A bad-arguments error for a data file that cannot be opened or
    /// read, or is not FASTA (content before the first `>`, a record the
    /// SDK's parser refuses, no record at all); whatever `subject` returns.
    pub fn for_each(&self, mut subject: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<u64> {
        let (what, mut reader): (String, Box<dyn BufRead + '_>) = match self {
            Reference::Text(text) => ("--reference".to_owned(), Box::new(&text[..])),
            Reference::Data(name) => (
                format!("--reference {name}"),
                Box::new(BufReader::with_capacity(
                    1 << 16,
                    wrun_sdk::data::open(name)?,
                )),
            ),
        };
        let bad = |message: String| Error::bad_args(format!("{what}: {message}"));
        let (mut record, mut line, mut residues) = (Vec::new(), Vec::new(), Vec::new());
        let mut count = 0;
        let mut emit = |record: &mut Vec<u8>| -> Result<()> {
            let parsed = fasta::Record::parse(record).map_err(|e| bad(e.message().to_owned()))?;
            residues.clear();
            parsed
                .sequence_lines()
                .for_each(|l| residues.extend_from_slice(l));
            subject(parsed.id(), &residues)?;
            record.clear();
            count += 1;
            Ok(())
        };
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| bad(e.to_string()))?;
            if n == 0 {
                break;
            }
            if line.starts_with(b">") && !record.is_empty() {
                emit(&mut record)?;
            }
            if record.is_empty() && !line.starts_with(b">") {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Err(bad("content before the first '>' header".to_owned()));
            }
            record.extend_from_slice(&line);
        }
        if !record.is_empty() {
            emit(&mut record)?;
        }
        if count == 0 {
            return Err(bad("holds no FASTA record".to_owned()));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects(text: &str) -> Result<Vec<(String, String)>> {
        let mut seen = Vec::new();
        Reference::from_argument(text).for_each(|id, residues| {
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            seen.push((text(id), text(residues)));
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn records_stream_by_one_at_a_time() {
        let seen = subjects(">a first\nAC\nGT\n\n>b\r\nMK\r\n>c").unwrap();
        let expected = [("a", "ACGT"), ("b", "MK"), ("c", "")];
        let expected: Vec<_> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_reference_that_is_not_fasta_is_refused() {
        let error = Reference::Text(b"ACGT\n>a\nAC\n".to_vec())
            .for_each(|_, _| Ok(()))
            .unwrap_err();
        assert_eq!(
            error.message(),
            "--reference: content before the first '>' header"
        );
        let error = Reference::Text(b"\n\n".to_vec())
            .for_each(|_, _| Ok(()))
            .unwrap_err();
        assert_eq!(error.message(), "--reference: holds no FASTA record");
    }

    #[test]
    fn a_data_reference_that_was_not_granted_says_how_to_grant_it() {
        let error = Reference::from_argument("uniprot")
            .for_each(|_, _| Ok(()))
            .unwrap_err();
        assert!(
            error.message().contains("--data uniprot=PATH"),
            "{}",
            error.message()
        );
    }
}
