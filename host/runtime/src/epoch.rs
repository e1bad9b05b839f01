//! The epoch clock: wall-clock timeouts counted in engine epochs.
//!
//! A ticker thread advances the engine's epoch every [`EPOCH_TICK`]; a store
//! is given a deadline in ticks ([`deadline_ticks`]) and traps with
//! `Trap::Interrupt` when the epoch passes it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances; timeouts are measured in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Ticks from now until a store with `timeout` must stop.
pub(crate) fn deadline_ticks(timeout: Option<Duration>) -> u64 {
    match timeout {
        // One extra tick: the current one may be about to end.
        Some(timeout) => (timeout.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1,
        None => u64::MAX / 2,
    }
}

/// Start the thread that advances `engine`'s epoch every [`EPOCH_TICK`].
/// It stops when the returned sender is dropped or the engine is.
pub(crate) fn start_ticker(engine: &Engine) -> std::io::Result<mpsc::Sender<()>> {
    let (ticker, stop) = mpsc::channel::<()>();
    let weak = engine.weak();
    thread::Builder::new()
        .name("wrun-epoch".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(EPOCH_TICK) {
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
    Ok(ticker)
}
