//! Example SDK task: a seeded Monte Carlo estimate of pi, long enough to be
//! suspended and resumed, built on the SDK's `step()` model.
//!
//! Each input line is `SEED SAMPLES`. `record` only reads the line; the
//! sampling happens in `step`, a million points per call, so that between
//! two calls (where wrun can snapshot the task) the whole state is a few
//! integers in memory. `finish` writes one line per run:
//!
//! ```text
//! SEED<TAB>SAMPLES<TAB>INSIDE<TAB>PI
//! ```
//!
//! The generator is splitmix64 and the test is integer-only, so the digits
//! are the same on every machine, however many times the run was suspended
//! and resumed:
//!
//! ```text
//! wrun submit examples/pi --input examples/pi/runs.txt --chunk-records 1 --checkpoint-every 10s
//! ```

use std::io::Write;

use wrun_sdk::{Args, Error, Output, Result, Step, Task};

/// Points sampled per `step` call: a few milliseconds of work.
const STEP: u64 = 1 << 20;

/// The runs of a chunk and how far the current one is.
#[derive(Debug, Default)]
pub struct Pi {
    runs: Vec<Run>,
    /// Index of the run being sampled.
    current: usize,
}

/// One Monte Carlo run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub seed: u64,
    pub samples: u64,
    /// Points drawn so far, and how many fell inside the quarter circle.
    pub drawn: u64,
    pub inside: u64,
    /// The generator's state.
    state: u64,
}

impl Run {
    pub fn new(seed: u64, samples: u64) -> Self {
        Run {
            seed,
            samples,
            drawn: 0,
            inside: 0,
            state: seed,
        }
    }

    /// Draw up to `limit` more points.
    pub fn sample(&mut self, limit: u64) {
        let end = self.samples.min(self.drawn + limit);
        let mut inside = 0;
        for _ in self.drawn..end {
            let bits = splitmix64(&mut self.state);
            // Two 31-bit coordinates; x² + y² < 2^62 is inside the circle.
            let (x, y) = (bits >> 33, bits & 0x7fff_ffff);
            inside += u64::from(x * x + y * y < 1 << 62);
        }
        self.inside += inside;
        self.drawn = end;
    }

    /// The estimate: 4 × inside / drawn.
    pub fn pi(&self) -> f64 {
        4.0 * self.inside as f64 / self.drawn.max(1) as f64
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Task for Pi {
    fn init(args: &Args) -> Result<Self> {
        match args.get(0) {
            None => Ok(Pi::default()),
            Some(arg) => Err(Error::bad_args(format!(
                "pi takes no arguments (each input line is SEED SAMPLES), got {arg:?}"
            ))),
        }
    }

    fn record(&mut self, record: &[u8], _out: &mut Output) -> Result<()> {
        let line = std::str::from_utf8(record)
            .map_err(|_| Error::bad_input("a line is not UTF-8"))?
            .trim();
        if line.is_empty() {
            return Ok(());
        }
        let mut fields = line.split_whitespace().map(str::parse::<u64>);
        match (fields.next(), fields.next(), fields.next()) {
            (Some(Ok(seed)), Some(Ok(samples)), None) => {
                self.runs.push(Run::new(seed, samples));
                Ok(())
            }
            _ => Err(Error::bad_input(format!(
                "expected `SEED SAMPLES` (two integers), got {line:?}"
            ))),
        }
    }

    fn step(&mut self, _out: &mut Output) -> Result<Step> {
        let Some(run) = self.runs.get_mut(self.current) else {
            return Ok(Step::Done);
        };
        run.sample(STEP);
        if run.drawn == run.samples {
            self.current += 1;
        }
        Ok(match self.current == self.runs.len() {
            true => Step::Done,
            false => Step::More,
        })
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        for run in &self.runs {
            writeln!(
                out,
                "{}\t{}\t{}\t{:.12}",
                run.seed,
                run.samples,
                run.inside,
                run.pi()
            )?;
        }
        Ok(())
    }
}

wrun_sdk::export_task!(Pi, formats = "lines");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing;

    #[test]
    fn sampling_in_steps_gives_the_same_count_as_in_one_go() {
        let mut whole = Run::new(7, 100_000);
        whole.sample(u64::MAX);
        let mut stepped = Run::new(7, 100_000);
        while stepped.drawn < stepped.samples {
            stepped.sample(999);
        }
        assert_eq!(stepped, whole);
        assert!(
            (whole.pi() - std::f64::consts::PI).abs() < 0.02,
            "{}",
            whole.pi()
        );
    }

    #[test]
    fn the_task_writes_one_line_per_run() {
        let out = testing::run_task::<Pi>(&[], &[b"1 1000\n", b"2 3000\n"]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("1\t1000\t"), "{text}");
        assert!(lines[1].starts_with("2\t3000\t"), "{text}");
    }

    #[test]
    fn a_malformed_line_is_bad_input() {
        assert!(testing::run_task::<Pi>(&[], &[b"1 x\n"]).is_err());
        assert!(testing::run_task::<Pi>(&[], &[b"1 2 3\n"]).is_err());
    }
}
