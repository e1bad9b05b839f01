//! Benchmark guest: an SDK task that does nothing, to measure per-task
//! overhead. With the argument `spawn`, it spawns a no-op child per record
//! of its chunk, waits for them all and does nothing with their results:
//! the overhead of spawn and wait per child.

use wrun_sdk::spawn::spawn;
use wrun_sdk::{Args, Output, Result, Step, Task};

/// Does nothing, or has children do nothing.
#[derive(Debug)]
pub struct Noop {
    /// Records to spawn a child for (`spawn` mode).
    spawning: Option<Vec<Vec<u8>>>,
    waited: bool,
}

impl Task for Noop {
    fn init(args: &Args) -> Result<Self> {
        Ok(Noop {
            spawning: (args.get(0) == Some("spawn")).then(Vec::new),
            waited: false,
        })
    }

    fn record(&mut self, record: &[u8], _out: &mut Output) -> Result<()> {
        if let Some(records) = &mut self.spawning {
            records.push(record.to_vec());
        }
        Ok(())
    }

    fn step(&mut self, _out: &mut Output) -> Result<Step> {
        match &self.spawning {
            Some(records) if !records.is_empty() && !self.waited => {
                for record in records {
                    spawn(record, &[])?;
                }
                self.waited = true;
                Ok(Step::Wait)
            }
            _ => Ok(Step::Done),
        }
    }
}

wrun_sdk::export_task!(Noop);
