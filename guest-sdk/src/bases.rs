//! Counting bases: the per-residue loops of sequence tasks (GC content,
//! composition) and of sequence splitters (line endings), 16 bytes at a
//! time in byte-wide lane counters: explicit wasm SIMD (`simd128`) in
//! guests, plain arrays natively, which the compiler vectorises (SSE/AVX).

/// 16-byte vectors counted before the lane counters are summed: 255, so
/// that no byte-wide lane can overflow.
const VECTORS_PER_BLOCK: usize = 255;

/// Bytes per vector.
const LANES: usize = 16;

/// Bytes per block whose counts fit one byte per lane.
const BLOCK: usize = VECTORS_PER_BLOCK * LANES;

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
/// [`wrapped_sequence`](crate::fasta::Record::wrapped_sequence)). About
/// 8 instructions per 16 bytes; no allocation.
pub fn count_gc(sequence: &[u8]) -> GcCount {
    let [g, c, ends] = count_lanes(sequence, |vector, [g, c, ends]| {
        let lower = vector.or(0x20);
        *g = g.add_eq(lower, b'g');
        *c = c.add_eq(lower, b'c');
        *ends = ends.add_eq(vector, b'\n').add_eq(vector, b'\r');
    });
    GcCount {
        residues: sequence.len() as u64 - ends,
        g,
        c,
    }
}

/// Line endings (`\n` and `\r` bytes) in `bytes`: what a sequence's
/// residues leave out. About 4 instructions per 16 bytes.
pub fn line_endings(bytes: &[u8]) -> u64 {
    let [ends] = count_lanes(bytes, |vector, [ends]| {
        *ends = ends.add_eq(vector, b'\n').add_eq(vector, b'\r');
    });
    ends
}

/// Run `count` over every 16 bytes of `bytes` with `N` lane counters, and
/// return their totals. The last vector is padded with zero bytes, which
/// no count may match. A lane counter may grow by at most one per vector.
fn count_lanes<const N: usize>(bytes: &[u8], count: impl Fn(Lanes, &mut [Lanes; N])) -> [u64; N] {
    let mut totals = [0; N];
    for block in bytes.chunks(BLOCK) {
        let (vectors, tail) = block.as_chunks::<LANES>();
        let mut counters = [Lanes::ZERO; N];
        for vector in vectors {
            count(Lanes::load(vector), &mut counters);
        }
        if !tail.is_empty() {
            let mut padded = [0; LANES];
            padded[..tail.len()].copy_from_slice(tail);
            count(Lanes::load(&padded), &mut counters);
        }
        for (total, counter) in totals.iter_mut().zip(counters) {
            *total += counter.sum();
        }
    }
    totals
}

/// 16 bytes, or 16 byte-wide counters: a wasm `v128`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Clone, Copy)]
struct Lanes(core::arch::wasm32::v128);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes {
    const ZERO: Lanes = Lanes(core::arch::wasm32::u64x2(0, 0));

    fn load(bytes: &[u8; LANES]) -> Lanes {
        // SAFETY: `bytes` is 16 readable bytes, and `v128_load` makes an
        // unaligned (1-aligned) load.
        Lanes(unsafe { core::arch::wasm32::v128_load(bytes.as_ptr().cast()) })
    }

    /// Each byte with `bits` set.
    fn or(self, bits: u8) -> Lanes {
        use core::arch::wasm32::{u8x16_splat, v128_or};
        Lanes(v128_or(self.0, u8x16_splat(bits)))
    }

    /// These counters plus 1 in each lane where `bytes` holds `byte`.
    fn add_eq(self, bytes: Lanes, byte: u8) -> Lanes {
        use core::arch::wasm32::{i8x16_eq, i8x16_sub, u8x16_splat};
        // A match is all ones: -1.
        Lanes(i8x16_sub(self.0, i8x16_eq(bytes.0, u8x16_splat(byte))))
    }

    /// The sum of the 16 counters.
    fn sum(self) -> u64 {
        use core::arch::wasm32::{
            u16x8_extadd_pairwise_u8x16, u32x4_extadd_pairwise_u16x8, u32x4_extract_lane,
        };
        let quads = u32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(self.0));
        u64::from(u32x4_extract_lane::<0>(quads))
            + u64::from(u32x4_extract_lane::<1>(quads))
            + u64::from(u32x4_extract_lane::<2>(quads))
            + u64::from(u32x4_extract_lane::<3>(quads))
    }
}

/// 16 bytes, or 16 byte-wide counters, as an array natively.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[derive(Clone, Copy)]
struct Lanes([u8; LANES]);

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Lanes {
    const ZERO: Lanes = Lanes([0; LANES]);

    fn load(bytes: &[u8; LANES]) -> Lanes {
        Lanes(*bytes)
    }

    /// Each byte with `bits` set.
    fn or(self, bits: u8) -> Lanes {
        Lanes(self.0.map(|b| b | bits))
    }

    /// These counters plus 1 in each lane where `bytes` holds `byte`.
    fn add_eq(mut self, bytes: Lanes, byte: u8) -> Lanes {
        for (counter, &b) in self.0.iter_mut().zip(&bytes.0) {
            *counter += u8::from(b == byte);
        }
        self
    }

    /// The sum of the 16 counters.
    fn sum(self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }
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

    /// `len` bytes drawn from `alphabet` by xorshift64 (Marsaglia 2003)
    /// from `seed`: the same every run.
    fn random_bytes(seed: u64, alphabet: &[u8], len: usize) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn agrees_with_the_per_byte_loop_at_every_length_and_across_blocks() {
        let bytes = random_bytes(
            0x9e37_79b9_7f4a_7c15,
            b"ACGTacgtNn\n\r- GGGGCCCC",
            3 * BLOCK + 37,
        );
        for len in (0..64).chain([BLOCK - 1, BLOCK, BLOCK + 1, bytes.len()]) {
            assert_eq!(count_gc(&bytes[..len]), reference(&bytes[..len]), "{len}");
        }
    }

    #[test]
    fn line_endings_are_what_residues_leave_out() {
        let bytes = random_bytes(0x2545_f491_4f6c_dd1d, b"ACGT\n\r>\0", 2 * BLOCK + 21);
        for len in (0..40).chain([BLOCK, BLOCK + 1, bytes.len()]) {
            let bytes = &bytes[..len];
            let expected = bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
            assert_eq!(line_endings(bytes), expected as u64, "{len}");
        }
        assert_eq!(line_endings(&vec![b'\n'; BLOCK + 3]), BLOCK as u64 + 3);
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
