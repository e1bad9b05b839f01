//! Paired records (`wrun submit --mate`, `--paired interleaved`): how a
//! chunk holds them and when two records are mates.
//!
//! A paired job's chunk is its pairs interleaved: first mate, second mate,
//! first mate, ... (interleaved FASTQ, for a FASTQ input), each a record
//! of its own, and a chunk always holds whole pairs. An SDK task sees
//! records `2k` and `2k + 1` of its chunk as one pair; a WASI command
//! reads the interleaved chunk on stdin. No import or export is added.

/// The name two mates share, which the host checks for every pair: the
/// record's first line without its first byte (the format's marker, `@`
/// in FASTQ, `>` in FASTA) and its line ending, up to the first space or
/// tab (Illumina's comment field follows it), without a trailing `/1` or
/// `/2`. `@r7/1 x` and `@r7/2 y` are mates, named `r7`.
pub fn mate_name(record: &[u8]) -> &[u8] {
    let word = read_name(record);
    word.strip_suffix(b"/1")
        .or_else(|| word.strip_suffix(b"/2"))
        .unwrap_or(word)
}

/// Whether `first` and `second` are a pair, first mate first: the same
/// [`mate_name`], and not numbered otherwise when both carry a number
/// (`@r7/1` then `@r7/2`; `@r7/1` twice, as when one file is given as
/// both mates, or `@r7/2` then `@r7/1`, as when they are swapped, is not
/// a pair).
pub fn are_mates(first: &[u8], second: &[u8]) -> bool {
    let number = |record| match read_name(record) {
        word if word.ends_with(b"/1") => Some(1),
        word if word.ends_with(b"/2") => Some(2),
        _ => None,
    };
    mate_name(first) == mate_name(second)
        && matches!(
            (number(first), number(second)),
            (Some(1), Some(2)) | (None, _) | (_, None)
        )
}

/// The record's read name: its first line without its first byte and its
/// line ending, up to the first space or tab.
fn read_name(record: &[u8]) -> &[u8] {
    let line = match record.iter().position(|&b| b == b'\n') {
        Some(end) => &record[..end],
        None => record,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.get(1..).unwrap_or_default();
    match line.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(end) => &line[..end],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::{are_mates, mate_name};

    #[test]
    fn mates_come_numbered_in_order_when_numbered() {
        assert!(are_mates(b"@r7/1\nA\n", b"@r7/2\nA\n"));
        assert!(are_mates(b"@r7 1:N\nA\n", b"@r7 2:N\nA\n"));
        assert!(are_mates(b"@r7/1\nA\n", b"@r7\nA\n"));
        assert!(!are_mates(b"@r7/1\nA\n", b"@r7/1\nA\n"), "one file twice");
        assert!(!are_mates(b"@r7/2\nA\n", b"@r7/1\nA\n"), "swapped files");
        assert!(!are_mates(b"@r7/1\nA\n", b"@r8/2\nA\n"));
    }

    #[test]
    fn mates_share_a_name_up_to_their_number_and_comment() {
        assert_eq!(mate_name(b"@r7/1 x\nAC\n+\nII\n"), b"r7");
        assert_eq!(mate_name(b"@r7/2\ty\r\nAC\r\n"), b"r7");
        assert_eq!(
            mate_name(b"@M1:8:FC:1:1:2:3 1:N:0:ATCACG\nA\n"),
            b"M1:8:FC:1:1:2:3"
        );
        assert_eq!(mate_name(b">c/3\nAC\n"), b"c/3");
        assert_eq!(mate_name(b"@r1"), b"r1");
        assert_eq!(mate_name(b""), b"");
    }
}
