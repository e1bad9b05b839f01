//! Substitution scores.

/// A substitution matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// BLOSUM62, for proteins (residues it does not name score as `X`).
    Blosum62,
    /// Nucleotides: +5 for a match, -4 for a mismatch (ssearch36's DNA
    /// default); `N` and other letters mismatch everything.
    Dna,
}

/// BLOSUM62 as published (the NCBI/FASTA `blosum62.mat` table).
const BLOSUM62: &str = "
   A  R  N  D  C  Q  E  G  H  I  L  K  M  F  P  S  T  W  Y  V  B  Z  X
A  4 -1 -2 -2  0 -1 -1  0 -2 -1 -1 -1 -1 -2 -1  1  0 -3 -2  0 -2 -1  0
R -1  5  0 -2 -3  1  0 -2  0 -3 -2  2 -1 -3 -2 -1 -1 -3 -2 -3 -1  0 -1
N -2  0  6  1 -3  0  0  0  1 -3 -3  0 -2 -3 -2  1  0 -4 -2 -3  3  0 -1
D -2 -2  1  6 -3  0  2 -1 -1 -3 -4 -1 -3 -3 -1  0 -1 -4 -3 -3  4  1 -1
C  0 -3 -3 -3  9 -3 -4 -3 -3 -1 -1 -3 -1 -2 -3 -1 -1 -2 -2 -1 -3 -3 -2
Q -1  1  0  0 -3  5  2 -2  0 -3 -2  1  0 -3 -1  0 -1 -2 -1 -2  0  3 -1
E -1  0  0  2 -4  2  5 -2  0 -3 -3  1 -2 -3 -1  0 -1 -3 -2 -2  1  4 -1
G  0 -2  0 -1 -3 -2 -2  6 -2 -4 -4 -2 -3 -3 -2  0 -2 -2 -3 -3 -1 -2 -1
H -2  0  1 -1 -3  0  0 -2  8 -3 -3 -1 -2 -1 -2 -1 -2 -2  2 -3  0  0 -1
I -1 -3 -3 -3 -1 -3 -3 -4 -3  4  2 -3  1  0 -3 -2 -1 -3 -1  3 -3 -3 -1
L -1 -2 -3 -4 -1 -2 -3 -4 -3  2  4 -2  2  0 -3 -2 -1 -2 -1  1 -4 -3 -1
K -1  2  0 -1 -3  1  1 -2 -1 -3 -2  5 -1 -3 -1  0 -1 -3 -2 -2  0  1 -1
M -1 -1 -2 -3 -1  0 -2 -3 -2  1  2 -1  5  0 -2 -1 -1 -1 -1  1 -3 -1 -1
F -2 -3 -3 -3 -2 -3 -3 -3 -1  0  0 -3  0  6 -4 -2 -2  1  3 -1 -3 -3 -1
P -1 -2 -2 -1 -3 -1 -1 -2 -2 -3 -3 -1 -2 -4  7 -1 -1 -4 -3 -2 -2 -1 -2
S  1 -1  1  0 -1  0  0  0 -1 -2 -2  0 -1 -2 -1  4  1 -3 -2 -2  0  0  0
T  0 -1  0 -1 -1 -1 -1 -2 -2 -1 -1 -1 -1 -2 -1  1  5 -2 -2  0 -1 -1  0
W -3 -3 -4 -4 -2 -2 -3 -2 -2 -3 -2 -3 -1  1 -4 -3 -2 11  2 -3 -4 -3 -2
Y -2 -2 -2 -3 -2 -1 -2 -3  2 -1 -1 -2 -1  3 -3 -2 -2  2  7 -1 -3 -2 -1
V  0 -3 -3 -3 -1 -2 -2 -3 -3  3  1 -2  1 -1 -2 -2  0 -3 -1  4 -3 -2 -1
B -2 -1  3  4 -3  0  1 -1  0 -3 -4  0 -3 -3 -2  0 -1 -4 -3 -3  4  1 -1
Z -1  0  0  1 -3  3  4 -2  0 -3 -3  1 -1 -3 -1  0 -1 -3 -2 -2  1  4 -1
X  0 -1 -1 -1 -2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2  0  0 -2 -1 -1 -1 -1 -1
";

/// The letters of a reference, counted as it streams by, to pick its
/// matrix.
#[derive(Debug, Clone, Copy, Default)]
pub struct Composition {
    letters: u64,
    nucleotides: u64,
}

impl Composition {
    /// Count the letters of `sequence`.
    pub fn add(&mut self, sequence: &[u8]) {
        for residue in sequence {
            if residue.is_ascii_alphabetic() {
                self.letters += 1;
                self.nucleotides += u64::from(b"ACGTUN".contains(&residue.to_ascii_uppercase()));
            }
        }
    }

    /// The matrix for the sequences counted: [`Matrix::Dna`] when at least
    /// 90% of their letters are nucleotides (`ACGTUN`, any case), as a tool
    /// that picks its scoring from the data does (ssearch36's `-n` default
    /// guesses the same way), else [`Matrix::Blosum62`]. With no letters,
    /// BLOSUM62.
    pub fn matrix(&self) -> Matrix {
        match self.letters > 0 && self.nucleotides * 10 >= self.letters * 9 {
            true => Matrix::Dna,
            false => Matrix::Blosum62,
        }
    }
}

impl Matrix {
    /// The matrix called `name` (`blosum62`, `dna`).
    pub fn named(name: &str) -> Option<Matrix> {
        match name.to_ascii_lowercase().as_str() {
            "blosum62" | "bl62" => Some(Matrix::Blosum62),
            "dna" => Some(Matrix::Dna),
            _ => None,
        }
    }

    /// The full 256 × 256 table of scores, case-blind.
    pub fn table(self) -> Box<[[i8; 256]; 256]> {
        let mut table = Box::new([[0i8; 256]; 256]);
        match self {
            Matrix::Dna => {
                for (a, row) in table.iter_mut().enumerate() {
                    for (b, score) in row.iter_mut().enumerate() {
                        let (a, b) = (
                            (a as u8).to_ascii_uppercase(),
                            (b as u8).to_ascii_uppercase(),
                        );
                        let base = |c: u8| matches!(c, b'A' | b'C' | b'G' | b'T' | b'U');
                        let same = a == b || matches!((a, b), (b'T', b'U') | (b'U', b'T'));
                        *score = if same && base(a) { 5 } else { -4 };
                    }
                }
            }
            Matrix::Blosum62 => {
                let mut lines = BLOSUM62.lines().filter(|l| !l.trim().is_empty());
                let header: Vec<u8> = lines
                    .next()
                    .expect("a header")
                    .split_whitespace()
                    .map(|s| s.as_bytes()[0])
                    .collect();
                let x = header.iter().position(|&c| c == b'X').expect("an X column");
                let mut scores = vec![vec![0i8; header.len()]; header.len()];
                for (row, line) in lines.enumerate() {
                    for (col, value) in line.split_whitespace().skip(1).enumerate() {
                        scores[row][col] = value.parse().expect("a score");
                    }
                }
                let index = |c: u8| {
                    header
                        .iter()
                        .position(|&h| h == c.to_ascii_uppercase())
                        .unwrap_or(x)
                };
                for (a, row) in table.iter_mut().enumerate() {
                    for (b, score) in row.iter_mut().enumerate() {
                        *score = scores[index(a as u8)][index(b as u8)];
                    }
                }
            }
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scoring_follows_the_sequences() {
        let matrix = |sequences: &[&[u8]]| {
            let mut composition = Composition::default();
            sequences.iter().for_each(|s| composition.add(s));
            composition.matrix()
        };
        assert_eq!(matrix(&[b"ACGTTGCA", b"nnACGU"]), Matrix::Dna);
        assert_eq!(matrix(&[b"MKVLAAGICW"]), Matrix::Blosum62);
        // A protein made mostly of A, C, G and T letters is still a protein
        // when under 90% of its letters are.
        assert_eq!(matrix(&[b"ACGTACGTKW"]), Matrix::Blosum62);
        assert_eq!(matrix(&[b""]), Matrix::Blosum62);
    }
}
