//! The per-store state of a guest and how a store is set up.
//!
//! Every task gets a fresh store (and a splitter one for its lifetime); the
//! store's data is a [`Sandbox`]. Nothing ambient is granted: WASI has no
//! preopened directories, no environment, no network, a frozen clock and a
//! fixed random stream, so a task is a pure function of its chunk and
//! arguments and a retry gives the same bytes.

use std::time::Duration;

use bytes::Bytes;
use wasmtime::{Engine, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::limits::{Limiter, Limits};
use crate::pipe::{CappedPipe, Overflow};

/// Store data of every guest.
pub(crate) struct Sandbox {
    /// The WASI context: a command's is built with the store; an SDK
    /// guest's only on its first WASI call, so tasks that never make one
    /// never pay for it.
    wasi: Option<WasiP1Ctx>,
    limiter: Limiter,
    /// Task output: `emit`, or a command's stdout.
    pub(crate) output: CappedPipe,
    /// Task log: `log`, stderr (and an SDK guest's stdout).
    pub(crate) log: CappedPipe,
    /// Message set by the guest through the `error` import.
    pub(crate) error: Option<String>,
    /// The limits the store was built with, to name them in failures.
    pub(crate) limits: Limits,
}

/// A command's standard input and argv.
#[derive(Debug)]
pub(crate) struct CommandIo<'a> {
    pub(crate) stdin: Bytes,
    pub(crate) args: &'a [String],
}

impl Sandbox {
    /// The WASI context, called by the WASI imports. An SDK guest's is
    /// created here, on first use, with stdout and stderr going to the log.
    pub(crate) fn wasi(&mut self) -> &mut WasiP1Ctx {
        let log = &self.log;
        self.wasi
            .get_or_insert_with(|| wasi_ctx(None, log, log, &[]))
    }
}

/// A store ready to instantiate into: limits applied, fuel and deadline
/// set, and for a command its WASI context.
pub(crate) fn new_store(
    engine: &Engine,
    limits: &Limits,
    command: Option<CommandIo<'_>>,
) -> Store<Sandbox> {
    let output = CappedPipe::new(limits.output, Overflow::Fail);
    let log = CappedPipe::new(limits.log, Overflow::Truncate);
    let wasi = command.map(|io| wasi_ctx(Some(io.stdin), &output, &log, io.args));
    let sandbox = Sandbox {
        wasi,
        limiter: Limiter {
            memory: limits.memory,
            table_elements: limits.table_elements,
        },
        output,
        log,
        error: None,
        limits: limits.clone(),
    };
    let mut store = Store::new(engine, sandbox);
    store.limiter(|sandbox| &mut sandbox.limiter);
    if let Some(fuel) = limits.fuel {
        store
            .set_fuel(fuel)
            .expect("fuel is enabled on the engine whenever a fuel limit is set");
    }
    store.set_epoch_deadline(crate::engine::deadline_ticks(limits.timeout));
    store.epoch_deadline_trap();
    store
}

fn wasi_ctx(
    stdin: Option<Bytes>,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
    args: &[String],
) -> WasiP1Ctx {
    let mut builder = WasiCtxBuilder::new();
    if let Some(stdin) = stdin {
        builder.stdin(MemoryInputPipe::new(stdin));
    }
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .args(args)
        .secure_random(Deterministic::new(RANDOM_STREAM.to_vec()))
        .insecure_random(Deterministic::new(RANDOM_STREAM.to_vec()))
        .insecure_random_seed(0x5eed)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock);
    builder.build_p1()
}

/// The bytes every guest's random source cycles through: fixed, so that
/// runs are reproducible, and not all zero, so that hash-map seeding and
/// similar uses behave.
const RANDOM_STREAM: [u8; 32] = *b"wrun deterministic random bytes!";

/// A clock stopped at the Unix epoch: guests get no time source unless a
/// job grants one.
#[derive(Debug, Clone, Copy)]
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
