//! Counting bases: the per-residue loop of sequence tasks (GC content,
//! composition), written so that the compiler vectorises it (wasm SIMD in
//! guests, SSE/AVX natively) rather than branching on every byte.

/// Bytes per block whose counts fit one byte per vector lane: 255 full
/// 16-byte vectors, so no lane counter can overflow before it is flushed.
const BLOCK: usize = 255 * LANES;

/// Bytes counted side by side, one counter each.
const LANES: usize = 16;

/// The G and C content of one sequence.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcCount {
    /// Residues: every byte that is not a line ending (`\n` or `\r`),
    /// whatever letter it is (`N`, `-`, IUPAC codes and spaces included,
    /// as `seqkit fx2tab -l` counts them).
    pub residues: u64,
    /// `G` and `g`.
    pub g: u64,
    /// `C` and `c`.
    pub c: u64,
}

impl GcCount {
    /// G+C as a percentage of the residues, computed as seqkit does,
    /// `(g/len + c/len) * 100` (seqkit's `fx2tab -g`), so that rounding to
    /// two decimals agrees with it on every tie; 0 for no residues.
    pub fn percent(&self) -> f64 {
        if self.residues == 0 {
            return 0.0;
        }
        let residues = self.residues as f64;
        (self.g as f64 / residues + self.c as f64 / residues) * 100.0
    }
}

/// Count G, C and residues in `sequence`: one sequence line or several
/// with their line endings (a FASTA record's
/// [`wrapped_sequence`](crate::fasta::Record::wrapped_sequence)). Runs at
/// about a byte per cycle or better; no allocation.
pub fn count_gc(sequence: &[u8]) -> GcCount {
    let mut count = GcCount::default();
    let mut line_endings = 0u64;
    for block in sequence.chunks(BLOCK) {
        let (vectors, tail) = block.as_chunks::<LANES>();
        let (mut g, mut c, mut ends) = ([0u8; LANES], [0u8; LANES], [0u8; LANES]);
        for vector in vectors {
            for lane in 0..LANES {
                let byte = vector[lane];
                let lower = byte | 0x20;
                g[lane] += u8::from(lower == b'g');
                c[lane] += u8::from(lower == b'c');
                ends[lane] += u8::from(byte == b'\n') + u8::from(byte == b'\r');
            }
        }
        for &byte in tail {
            let lower = byte | 0x20;
            count.g += u64::from(lower == b'g');
            count.c += u64::from(lower == b'c');
            line_endings += u64::from(byte == b'\n' || byte == b'\r');
        }
        count.g += g.iter().map(|&n| u64::from(n)).sum::<u64>();
        count.c += c.iter().map(|&n| u64::from(n)).sum::<u64>();
        line_endings += ends.iter().map(|&n| u64::from(n)).sum::<u64>();
    }
    count.residues = sequence.len() as u64 - line_endings;
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious per-byte loop, to check the vectorised one against.
    fn reference(sequence: &[u8]) -> GcCount {
        let mut count = GcCount::default();
        for &byte in sequence {
            match byte {
                b'\n' | b'\r' => continue,
                b'G' | b'g' => count.g += 1,
                b'C' | b'c' => count.c += 1,
                _ => {}
            }
            count.residues += 1;
        }
        count
    }

    #[test]
    fn agrees_with_the_per_byte_loop_at_every_length_and_across_blocks() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"ACGTacgtNn\n\r- GGGGCCCC";
        let bytes: Vec<u8> = (0..3 * BLOCK + 37)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect();
        for len in (0..64).chain([BLOCK - 1, BLOCK, BLOCK + 1, bytes.len()]) {
            assert_eq!(count_gc(&bytes[..len]), reference(&bytes[..len]), "{len}");
        }
    }

    #[test]
    fn a_block_of_nothing_but_g_does_not_overflow_a_lane() {
        let count = count_gc(&vec![b'G'; 2 * BLOCK + 5]);
        assert_eq!(
            (count.g, count.c, count.residues),
            (2 * BLOCK as u64 + 5, 0, 2 * BLOCK as u64 + 5)
        );
    }

    #[test]
    fn percent_rounds_like_seqkit_and_is_zero_when_empty() {
        let count = count_gc(format!("C{}", "A".repeat(799)).as_bytes());
        assert_eq!(format!("{:.2}", count.percent()), "0.12");
        assert_eq!(GcCount::default().percent(), 0.0);
    }
}
