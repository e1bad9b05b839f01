//! Benchmark guest: the cost of spawn and wait per child. A chunk's task
//! spawns a child per record (each on that record, with the argument
//! `child`), waits for them all and does nothing with their results; a
//! child does nothing. The flat job it is measured against runs
//! `noop-task`, which cannot spawn.

use wrun_sdk::spawn::spawn;
use wrun_sdk::{Args, Output, Result, Step, Task};

/// The argument a child runs with.
const CHILD: &str = "child";

/// A parent holding its chunk's records until it spawns, or a child.
#[derive(Debug)]
pub struct NoopSpawn {
    /// Records to spawn a child for; `None` in a child.
    records: Option<Vec<Vec<u8>>>,
    waited: bool,
}

impl Task for NoopSpawn {
    fn init(args: &Args) -> Result<Self> {
        Ok(NoopSpawn {
            records: (args.get(0) != Some(CHILD)).then(Vec::new),
            waited: false,
        })
    }

    fn record(&mut self, record: &[u8], _out: &mut Output) -> Result<()> {
        if let Some(records) = &mut self.records {
            records.push(record.to_vec());
        }
        Ok(())
    }

    fn step(&mut self, _out: &mut Output) -> Result<Step> {
        match &self.records {
            Some(records) if !records.is_empty() && !self.waited => {
                for record in records {
                    spawn(record, &[CHILD])?;
                }
                self.waited = true;
                Ok(Step::Wait)
            }
            _ => Ok(Step::Done),
        }
    }
}

wrun_sdk::export_task!(NoopSpawn);
