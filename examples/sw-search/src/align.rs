//! Smith–Waterman local alignment with affine gaps (Gotoh), and its
//! traceback.

use crate::Matrix;

/// How alignments are scored. A gap of k residues costs
/// `gap_open + k * gap_extend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoring {
    pub matrix: Matrix,
    /// `matrix` as a full table, case-blind (built once).
    table: Box<[[i8; 256]; 256]>,
    pub gap_open: i32,
    pub gap_extend: i32,
}

impl Scoring {
    pub fn new(matrix: Matrix, gap_open: i32, gap_extend: i32) -> Self {
        Scoring {
            matrix,
            table: matrix.table(),
            gap_open,
            gap_extend,
        }
    }
}

/// The best local alignment of two sequences (positions 1-based,
/// inclusive; all zero when nothing scores above 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alignment {
    pub score: i32,
    /// Columns, gaps included.
    pub length: u32,
    pub identities: u32,
    pub mismatches: u32,
    pub gap_opens: u32,
    pub query_start: u32,
    pub query_end: u32,
    pub subject_start: u32,
    pub subject_end: u32,
}

// Traceback bits of a cell.
const H_DIAGONAL: u8 = 1;
const H_FROM_E: u8 = 2;
const H_FROM_F: u8 = 3;
const H_SOURCE: u8 = 3;
/// E (a gap in the query: along the subject) extends the E on its left.
const E_EXTENDS: u8 = 4;
/// F (a gap in the subject: along the query) extends the F above it.
const F_EXTENDS: u8 = 8;

/// Align `query` against `subject` (case-blind; line breaks removed).
pub fn align(query: &[u8], subject: &[u8], scoring: &Scoring) -> Alignment {
    let table = &scoring.table;
    let (m, n) = (query.len(), subject.len());
    let open = scoring.gap_open + scoring.gap_extend;
    let extend = scoring.gap_extend;
    // Rows of H and F for the previous query position; E runs along a row.
    let mut h_prev = vec![0i32; n + 1];
    let mut h_row = vec![0i32; n + 1];
    let mut f = vec![i32::MIN / 2; n + 1];
    let mut trace = vec![0u8; (m + 1) * (n + 1)];
    let (mut best, mut best_at) = (0, (0, 0));
    for i in 1..=m {
        let scores = &table[query[i - 1] as usize];
        let mut e = i32::MIN / 2;
        h_row[0] = 0;
        for j in 1..=n {
            let mut bits = 0;
            // E: a gap in the query, coming from the left.
            let e_open = h_row[j - 1] - open;
            let e_extend = e - extend;
            if e_extend > e_open {
                e = e_extend;
                bits |= E_EXTENDS;
            } else {
                e = e_open;
            }
            // F: a gap in the subject, coming from above.
            let f_open = h_prev[j] - open;
            let f_extend = f[j] - extend;
            if f_extend > f_open {
                f[j] = f_extend;
                bits |= F_EXTENDS;
            } else {
                f[j] = f_open;
            }
            let diagonal = h_prev[j - 1] + i32::from(scores[subject[j - 1] as usize]);
            let mut h = 0;
            if diagonal > h {
                h = diagonal;
                bits |= H_DIAGONAL;
            }
            if e > h {
                h = e;
                bits = (bits & !H_SOURCE) | H_FROM_E;
            }
            if f[j] > h {
                h = f[j];
                bits = (bits & !H_SOURCE) | H_FROM_F;
            }
            h_row[j] = h;
            trace[i * (n + 1) + j] = bits;
            if h > best {
                best = h;
                best_at = (i, j);
            }
        }
        std::mem::swap(&mut h_prev, &mut h_row);
    }
    if best == 0 {
        return Alignment::default();
    }
    traceback(query, subject, &trace, n, best, best_at)
}

/// Walk back from the best cell to where the alignment starts.
fn traceback(
    query: &[u8],
    subject: &[u8],
    trace: &[u8],
    n: usize,
    score: i32,
    (end_i, end_j): (usize, usize),
) -> Alignment {
    #[derive(PartialEq, Eq, Clone, Copy)]
    enum State {
        H,
        E,
        F,
    }
    let mut alignment = Alignment {
        score,
        query_end: end_i as u32,
        subject_end: end_j as u32,
        ..Alignment::default()
    };
    let (mut i, mut j, mut state) = (end_i, end_j, State::H);
    let mut in_gap = false;
    loop {
        let bits = trace[i * (n + 1) + j];
        match state {
            State::H => match bits & H_SOURCE {
                H_DIAGONAL => {
                    alignment.length += 1;
                    if query[i - 1].eq_ignore_ascii_case(&subject[j - 1]) {
                        alignment.identities += 1;
                    } else {
                        alignment.mismatches += 1;
                    }
                    in_gap = false;
                    i -= 1;
                    j -= 1;
                }
                H_FROM_E => state = State::E,
                H_FROM_F => state = State::F,
                _ => break,
            },
            State::E => {
                alignment.length += 1;
                if !in_gap {
                    alignment.gap_opens += 1;
                }
                in_gap = bits & E_EXTENDS != 0;
                if !in_gap {
                    state = State::H;
                }
                j -= 1;
            }
            State::F => {
                alignment.length += 1;
                if !in_gap {
                    alignment.gap_opens += 1;
                }
                in_gap = bits & F_EXTENDS != 0;
                if !in_gap {
                    state = State::H;
                }
                i -= 1;
            }
        }
    }
    alignment.query_start = i as u32 + 1;
    alignment.subject_start = j as u32 + 1;
    alignment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blosum(gap_open: i32, gap_extend: i32) -> Scoring {
        Scoring::new(Matrix::Blosum62, gap_open, gap_extend)
    }

    #[test]
    fn identical_sequences_score_their_diagonal() {
        let hit = align(b"HEAGAWGHEE", b"HEAGAWGHEE", &blosum(11, 1));
        assert_eq!(hit.score, 8 + 5 + 4 + 6 + 4 + 11 + 6 + 8 + 5 + 5);
        assert_eq!((hit.length, hit.identities, hit.gap_opens), (10, 10, 0));
        assert_eq!((hit.query_start, hit.query_end), (1, 10));
    }

    #[test]
    fn a_gap_costs_open_plus_length_times_extend() {
        // WWWWW CC WWWWW against WWWWW WWWWW: a 2-residue gap in the
        // subject, costing 11 + 2 = 13, between two runs of 5 x 11.
        let hit = align(b"WWWWWCCWWWWW", b"WWWWWWWWWW", &blosum(11, 1));
        assert_eq!(hit.score, 110 - 13);
        assert_eq!((hit.length, hit.gap_opens, hit.identities), (12, 1, 10));
        assert_eq!(
            (hit.query_start, hit.query_end, hit.subject_end),
            (1, 12, 10)
        );
    }

    #[test]
    fn nothing_in_common_is_no_alignment() {
        let hit = align(b"", b"ACDE", &blosum(11, 1));
        assert_eq!(hit, Alignment::default());
    }
}
