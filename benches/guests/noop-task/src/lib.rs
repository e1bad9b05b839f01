//! Benchmark guest: an SDK task that does nothing, to measure per-task
//! overhead.

use wrun_sdk::{Args, Output, Result, Task};

/// Does nothing.
#[derive(Debug)]
pub struct Noop;

impl Task for Noop {
    fn init(_args: &Args) -> Result<Self> {
        Ok(Noop)
    }

    fn record(&mut self, _record: &[u8], _out: &mut Output) -> Result<()> {
        Ok(())
    }
}

wrun_sdk::export_task!(Noop);
