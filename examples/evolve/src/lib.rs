//! A seeded genetic algorithm in SCOOP's style: every generation spawns
//! the fitness evaluation of each individual of its population as a child
//! task, waits for them, and breeds the next generation from the results
//! read in spawn order, so the run is the same for any number of workers.
//!
//! Input: one seed per line (a run each). Arguments: population size
//! (default 24), generations (default 12), genome length in bytes (default
//! 16). Output, per run: a line per generation, `SEED<TAB>GENERATION<TAB>
//! BEST_FITNESS<TAB>BEST_GENOME` (the genome in hex). A child is run with
//! the single argument `eval` on a genome and writes its fitness.
//!
//! `wrun submit evolve.wasm --input seeds.txt -- 24 12 16`.

use std::fmt::Write as _;

use wrun_sdk::spawn::{Child, spawn};
use wrun_sdk::{Args, Error, Output, Result, Step, Task};

/// The argument that makes a task a fitness evaluation.
pub const EVAL: &str = "eval";

/// How good a genome is: the closeness of each byte to a target that
/// depends on its place, summed, after rounds of mixing that stand for a
/// costly evaluation. Higher is better; the best is `255 × len`.
pub fn fitness(genome: &[u8]) -> u64 {
    let mut total = 0u64;
    for (i, &gene) in genome.iter().enumerate() {
        let target = (i as u64 * 97 + 13) % 256;
        total += 255 - u64::from(gene).abs_diff(target);
    }
    // Deterministic busywork, so that an evaluation is worth a task.
    let mut mix = total;
    for _ in 0..10_000 {
        mix = mix.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
    }
    std::hint::black_box(mix);
    total
}

/// xorshift64*: the run's only source of randomness, seeded per run.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x2545_f491_4f6c_dd1d | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One run of the algorithm (one seed).
#[derive(Debug)]
pub struct Run {
    seed: u64,
    rng: Rng,
    population: Vec<Vec<u8>>,
    generation: u32,
    /// The evaluations of the current generation, in population order.
    children: Vec<Child>,
    /// One line per generation done.
    report: String,
}

/// The task: a fitness evaluation, or the runs of its chunk.
#[derive(Debug)]
pub enum Evolve {
    /// A child: the fitness of the genome it is given.
    Eval(Option<u64>),
    /// A root: its runs and their parameters.
    Runs {
        size: usize,
        generations: u32,
        length: usize,
        runs: Vec<Run>,
    },
}

fn number(args: &Args, index: usize, default: usize) -> Result<usize> {
    match args.get(index) {
        None => Ok(default),
        Some(text) => match text.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::bad_args(format!(
                "argument {} ({text:?}) is not a positive number",
                index + 1
            ))),
        },
    }
}

impl Task for Evolve {
    fn init(args: &Args) -> Result<Self> {
        if args.get(0) == Some(EVAL) {
            return Ok(Evolve::Eval(None));
        }
        Ok(Evolve::Runs {
            size: number(args, 0, 24)?.max(2),
            generations: number(args, 1, 12)? as u32,
            length: number(args, 2, 16)?,
            runs: Vec::new(),
        })
    }

    fn record(&mut self, record: &[u8], _out: &mut Output) -> Result<()> {
        match self {
            Evolve::Eval(value) => *value = Some(fitness(record)),
            Evolve::Runs {
                size, length, runs, ..
            } => {
                let text = std::str::from_utf8(record)
                    .map_err(|_| Error::bad_input("a seed line is not UTF-8"))?;
                let text = text.trim();
                if text.is_empty() {
                    return Ok(());
                }
                let seed: u64 = text
                    .parse()
                    .map_err(|_| Error::bad_input(format!("not a seed: {text:?}")))?;
                let mut rng = Rng::new(seed);
                let population = (0..*size)
                    .map(|_| (0..*length).map(|_| rng.next() as u8).collect())
                    .collect();
                runs.push(Run {
                    seed,
                    rng,
                    population,
                    generation: 0,
                    children: Vec::new(),
                    report: String::new(),
                });
            }
        }
        Ok(())
    }

    fn step(&mut self, _out: &mut Output) -> Result<Step> {
        let Evolve::Runs {
            generations, runs, ..
        } = self
        else {
            return Ok(Step::Done);
        };
        let mut spawned = false;
        for run in runs.iter_mut() {
            if !run.children.is_empty() {
                let scores = run
                    .children
                    .iter()
                    .map(|child| parse_fitness(&child.result()?))
                    .collect::<Result<Vec<u64>>>()?;
                run.children.clear();
                run.breed(&scores)?;
            }
            if run.generation < *generations {
                for genome in &run.population {
                    run.children.push(spawn(genome, &[EVAL])?);
                }
                spawned = true;
            }
        }
        Ok(if spawned { Step::Wait } else { Step::Done })
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        match self {
            Evolve::Eval(value) => {
                let value = value.ok_or_else(|| Error::bad_input("no genome to evaluate"))?;
                out.write(value.to_string().as_bytes());
            }
            Evolve::Runs { runs, .. } => {
                for run in runs {
                    out.write(run.report.as_bytes());
                }
            }
        }
        Ok(())
    }
}

impl Run {
    /// Report the generation just evaluated and breed the next one:
    /// the best kept, the rest children of tournament winners, crossed
    /// over at one point and mutated.
    fn breed(&mut self, scores: &[u64]) -> Result<()> {
        let best = (0..scores.len())
            .max_by_key(|&i| (scores[i], std::cmp::Reverse(i)))
            .ok_or_else(|| Error::failed("an empty population"))?;
        let mut hex = String::new();
        for byte in &self.population[best] {
            let _ = write!(hex, "{byte:02x}");
        }
        let _ = writeln!(
            self.report,
            "{}\t{}\t{}\t{hex}",
            self.seed, self.generation, scores[best]
        );
        let size = self.population.len();
        let mut next = vec![self.population[best].clone()];
        while next.len() < size {
            let a = self.tournament(scores);
            let b = self.tournament(scores);
            let length = self.population[a].len();
            let cut = self.rng.below(length + 1);
            let mut child: Vec<u8> = self.population[a][..cut]
                .iter()
                .chain(&self.population[b][cut..])
                .copied()
                .collect();
            for gene in &mut child {
                if self.rng.below(10) == 0 {
                    *gene = gene.wrapping_add((self.rng.below(33) as u8).wrapping_sub(16));
                }
            }
            next.push(child);
        }
        self.population = next;
        self.generation += 1;
        Ok(())
    }

    /// The better of two individuals drawn at random.
    fn tournament(&mut self, scores: &[u64]) -> usize {
        let (a, b) = (self.rng.below(scores.len()), self.rng.below(scores.len()));
        if scores[b] > scores[a] { b } else { a }
    }
}

/// A child's fitness from its output.
fn parse_fitness(output: &[u8]) -> Result<u64> {
    std::str::from_utf8(output)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| Error::failed("an evaluation's output is not a number"))
}

wrun_sdk::export_task!(Evolve, formats = "lines");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::run_task;

    #[test]
    fn a_run_improves_and_is_the_same_every_time() {
        let out = run_task::<Evolve>(&["12", "8", "8"], &[b"7\n"]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let best: Vec<u64> = text
            .lines()
            .map(|l| l.split('\t').nth(2).unwrap().parse().unwrap())
            .collect();
        assert_eq!(best.len(), 8);
        assert!(
            best.windows(2).all(|w| w[0] <= w[1]),
            "the best is kept: {text}"
        );
        assert_eq!(
            run_task::<Evolve>(&["12", "8", "8"], &[b"7\n"]).unwrap(),
            text.as_bytes()
        );
    }

    #[test]
    fn fitness_is_highest_on_the_target() {
        let target: Vec<u8> = (0..4u64).map(|i| ((i * 97 + 13) % 256) as u8).collect();
        assert_eq!(fitness(&target), 4 * 255);
        assert!(fitness(&[0, 0, 0, 0]) < 4 * 255);
    }
}
