//! Counts the solutions of the N-queens puzzle by divide and conquer: a
//! task spawns one child per safe square of the next row, recursively, down
//! to a split depth (argument 1, default 2 rows), and each child past it
//! counts its subtree sequentially.
//!
//! Input: one board per line, `N` (an empty board) or `N C1,C2,...` (a
//! queen already in column `Ci` of row `i`, counted from 0). Output: one
//! line per board, `N<TAB>COUNT`, which is also what a child hands its
//! parent. `wrun submit nqueens.wasm --input sizes.txt -- 3`.
//!
//! The known counts for N = 1..10 are 1, 0, 0, 2, 10, 4, 40, 92, 352, 724.

use wrun_sdk::spawn::{Child, spawn};
use wrun_sdk::{Args, Error, Output, Result, Step, Task};

/// Largest board: columns are bits of a `u32`.
pub const MAX_N: usize = 32;

/// A board with queens on its first rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// Rows and columns.
    pub n: usize,
    /// The column of the queen in each filled row, top down.
    pub queens: Vec<usize>,
}

impl Board {
    /// Parse `N` or `N C1,C2,...`.
    ///
    /// # Errors
    ///
    /// A bad-input error naming the line when it is not a board of at most
    /// [`MAX_N`] rows with queens that do not attack each other.
    pub fn parse(line: &str) -> Result<Board> {
        let bad = || Error::bad_input(format!("not an N-queens board: {line:?}"));
        let mut fields = line.split_whitespace();
        let n: usize = fields.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let queens = match fields.next() {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|c| c.parse().map_err(|_| bad()))
                .collect::<Result<Vec<usize>>>()?,
        };
        let board = Board { n, queens };
        let valid = (1..=MAX_N).contains(&n)
            && fields.next().is_none()
            && board.queens.len() <= n
            && board.queens.iter().all(|&c| c < n)
            && (0..board.queens.len()).all(|row| board.safe(row, board.queens[row]));
        valid.then_some(board).ok_or_else(bad)
    }

    /// The board as a line [`Board::parse`] reads.
    pub fn encode(&self) -> String {
        let queens: Vec<String> = self.queens.iter().map(usize::to_string).collect();
        match queens.is_empty() {
            true => self.n.to_string(),
            false => format!("{} {}", self.n, queens.join(",")),
        }
    }

    /// Whether a queen at (`row`, `column`) is attacked by none of the
    /// queens in the rows above it.
    fn safe(&self, row: usize, column: usize) -> bool {
        self.queens[..row]
            .iter()
            .enumerate()
            .all(|(r, &c)| c != column && row - r != column.abs_diff(c))
    }

    /// The boards with one more queen, on each safe square of the next row.
    pub fn children(&self) -> Vec<Board> {
        let row = self.queens.len();
        (0..self.n)
            .filter(|&column| self.safe(row, column))
            .map(|column| {
                let mut queens = self.queens.clone();
                queens.push(column);
                Board { n: self.n, queens }
            })
            .collect()
    }

    /// The number of ways to fill the remaining rows, counted here.
    pub fn count(&self) -> u64 {
        let (mut columns, mut left, mut right) = (0u64, 0u64, 0u64);
        for (row, &c) in self.queens.iter().enumerate() {
            let shift = self.queens.len() - row;
            columns |= 1 << c;
            left |= (1 << c) << shift;
            right |= (1 << c) >> shift;
        }
        let full = (1u64 << self.n) - 1;
        count_from(full, columns, left, right)
    }
}

/// Solutions below a row where `columns`, `left` and `right` are the
/// attacked squares (the classic bitmask backtracking).
fn count_from(full: u64, columns: u64, left: u64, right: u64) -> u64 {
    if columns == full {
        return 1;
    }
    let mut free = full & !(columns | left | right);
    let mut total = 0;
    while free != 0 {
        let bit = free & free.wrapping_neg();
        free ^= bit;
        total += count_from(full, columns | bit, (left | bit) << 1, (right | bit) >> 1);
    }
    total
}

/// Where a board's count comes from.
#[derive(Debug)]
enum Count {
    /// Counted here.
    Known(u64),
    /// The sum of these children's counts.
    Children(Vec<Child>),
}

/// The task: every board of its chunk, split or counted.
#[derive(Debug)]
pub struct NQueens {
    /// Rows filled by spawning before a task counts sequentially.
    split_depth: usize,
    boards: Vec<(Board, Option<Count>)>,
}

impl Task for NQueens {
    fn init(args: &Args) -> Result<Self> {
        let split_depth = match args.get(0) {
            None => 2,
            Some(depth) => depth
                .parse()
                .map_err(|_| Error::bad_args(format!("split depth {depth:?} is not a number")))?,
        };
        Ok(NQueens {
            split_depth,
            boards: Vec::new(),
        })
    }

    fn record(&mut self, record: &[u8], _out: &mut Output) -> Result<()> {
        let line = std::str::from_utf8(record)
            .map_err(|_| Error::bad_input("a board line is not UTF-8"))?
            .trim();
        if !line.is_empty() {
            self.boards.push((Board::parse(line)?, None));
        }
        Ok(())
    }

    fn step(&mut self, _out: &mut Output) -> Result<Step> {
        let waited = self.boards.iter().any(|(_, c)| c.is_some());
        if !waited {
            let depth = self.split_depth.to_string();
            for (board, count) in &mut self.boards {
                *count = Some(if board.queens.len() < self.split_depth.min(board.n) {
                    let children = board
                        .children()
                        .iter()
                        .map(|child| spawn(child.encode().as_bytes(), &[&depth]))
                        .collect::<Result<Vec<Child>>>()?;
                    Count::Children(children)
                } else {
                    Count::Known(board.count())
                });
            }
            let spawned = self
                .boards
                .iter()
                .any(|(_, c)| matches!(c, Some(Count::Children(children)) if !children.is_empty()));
            if spawned {
                return Ok(Step::Wait);
            }
        }
        // The children's results, read in the step after the wait.
        for (_, count) in &mut self.boards {
            if let Some(Count::Children(children)) = count {
                let mut total = 0;
                for child in children.iter() {
                    total += parse_count(&child.result()?)?;
                }
                *count = Some(Count::Known(total));
            }
        }
        Ok(Step::Done)
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        use std::fmt::Write;
        for (board, count) in &self.boards {
            let Some(Count::Known(count)) = count else {
                return Err(Error::failed("a board was not counted"));
            };
            writeln!(out, "{}\t{count}", board.n).map_err(|_| Error::failed("write"))?;
        }
        Ok(())
    }
}

/// A child's count from its output, `N<TAB>COUNT` lines (one board).
fn parse_count(output: &[u8]) -> Result<u64> {
    std::str::from_utf8(output)
        .ok()
        .and_then(|text| text.trim().split('\t').nth(1))
        .and_then(|count| count.parse().ok())
        .ok_or_else(|| Error::failed("a child's output is not a count"))
}

wrun_sdk::export_task!(NQueens, formats = "lines");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::run_task;

    const KNOWN: [u64; 10] = [1, 0, 0, 2, 10, 4, 40, 92, 352, 724];

    #[test]
    fn sequential_counts_are_the_known_ones() {
        for (n, &known) in (1..=10).zip(&KNOWN) {
            assert_eq!(Board { n, queens: vec![] }.count(), known, "N = {n}");
        }
    }

    #[test]
    fn spawned_counts_equal_the_known_ones_at_every_split_depth() {
        let lines: Vec<Vec<u8>> = (1..=10).map(|n| format!("{n}\n").into_bytes()).collect();
        let records: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let expected: String = (1..=10)
            .zip(&KNOWN)
            .map(|(n, k)| format!("{n}\t{k}\n"))
            .collect();
        for depth in ["0", "1", "3"] {
            let out = run_task::<NQueens>(&[depth], &records).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "split depth {depth}"
            );
        }
    }

    #[test]
    fn boards_round_trip_and_attacking_queens_are_refused() {
        let board = Board::parse("8 0,4,7").unwrap();
        assert_eq!(Board::parse(&board.encode()).unwrap(), board);
        assert!(Board::parse("8 0,1").is_err(), "diagonal");
        assert!(Board::parse("33").is_err());
        assert!(Board::parse("4 9").is_err());
    }
}
