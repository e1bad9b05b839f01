//! The per-store state of a guest and how a store is set up.
//!
//! Every task gets a fresh store (and a splitter one for its lifetime); the
//! store's data is a [`Sandbox`]. Nothing ambient is granted: WASI has no
//! environment, no network, a virtual clock ([`VirtualClock`]) and a fixed
//! random stream, and no preopened directory but a job's reference data,
//! read-only at [`DATA_DIR`], so a task is a pure function of its chunk,
//! arguments and data and a retry gives the same bytes.

use bytes::Bytes;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::clock::VirtualClock;
use crate::epoch::deadline_ticks;
use crate::limits::{Limiter, Limits};
use crate::nest::NestState;
use crate::pipe::{CappedPipe, Overflow};
use crate::stdin::ChunkStdin;

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
    /// How far the guest has read its random streams.
    pub(crate) random: RandomStreams,
    /// The guest's time, which only its sleeps advance.
    pub(crate) clock: VirtualClock,
    /// The host directory shown read-only at [`DATA_DIR`], if the job has
    /// reference data.
    data: Option<Arc<Path>>,
    /// What the task spawned and is handed back (a root task's limits
    /// until the task runner sets its own).
    pub(crate) nest: NestState,
}

/// Where a task sees its job's reference data: one file per `--data`
/// name, read-only.
pub const DATA_DIR: &str = "/data";

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
        let (log, random, clock) = (&self.log, &self.random, &self.clock);
        let data = self.data.as_deref();
        self.wasi
            .get_or_insert_with(|| wasi_ctx(None, log, log, &[], random, clock, data))
    }
}

/// A store ready to instantiate into: limits applied, fuel and deadline
/// set, and for a command its WASI context; `data` is the host directory
/// shown at [`DATA_DIR`].
pub(crate) fn new_store(
    engine: &Engine,
    limits: &Limits,
    command: Option<CommandIo<'_>>,
    data: Option<&Arc<Path>>,
) -> Store<Sandbox> {
    let output = CappedPipe::new(limits.output, Overflow::Fail);
    let log = CappedPipe::new(limits.log, Overflow::Truncate { what: "log" });
    let random = RandomStreams::default();
    let clock = VirtualClock::default();
    let wasi = command.map(|io| {
        let data = data.map(|dir| &**dir);
        wasi_ctx(
            Some(io.stdin),
            &output,
            &log,
            io.args,
            &random,
            &clock,
            data,
        )
    });
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
        random,
        clock,
        data: data.cloned(),
        nest: NestState::default(),
    };
    let mut store = Store::new(engine, sandbox);
    store.limiter(|sandbox| &mut sandbox.limiter);
    store.set_hostcall_fuel(hostcall_fuel(limits.memory));
    if let Some(fuel) = limits.fuel {
        store
            .set_fuel(fuel)
            .expect("fuel is enabled on the engine whenever a fuel limit is set");
    }
    store.set_epoch_deadline(deadline_ticks(limits.timeout));
    store.epoch_deadline_trap();
    store
}

/// Most bytes of guest buffers one WASI call may name: the whole memory
/// limit, so that any buffer a guest can hold is one it may read into or
/// write from. wasmtime's default (128 MiB) would fail a larger one with
/// `ENOMEM` whatever `--memory` says. The host never copies a stream
/// buffer whole (stdin reads are bounded by [`ChunkStdin`], stdout and
/// stderr writes are copied in 4 KiB pieces into pipes capped by their
/// limits); what it does copy whole (a path, before `EBADF`: nothing is
/// preopened) is at most the guest's memory.
fn hostcall_fuel(memory: u64) -> usize {
    usize::try_from(memory).unwrap_or(usize::MAX)
}

/// A WASI context over these streams; `data`, when given, is preopened
/// read-only at [`DATA_DIR`] (a directory that cannot be opened is noted
/// in the log, and the task then finds no `/data`). File operations block
/// the calling worker thread (a read is bounded by the guest's buffer)
/// instead of bouncing through tokio's blocking pool.
fn wasi_ctx(
    stdin: Option<Bytes>,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
    args: &[String],
    random: &RandomStreams,
    clock: &VirtualClock,
    data: Option<&Path>,
) -> WasiP1Ctx {
    let mut builder = WasiCtxBuilder::new();
    if let Some(stdin) = stdin {
        builder.stdin(ChunkStdin::new(stdin));
    }
    if let Some(dir) = data {
        builder.allow_blocking_current_thread(true);
        if let Err(e) = builder.preopened_dir(dir, DATA_DIR, FsPerms::ReadOnly) {
            let note = format!(
                "wrun: the data directory {} cannot be opened: {e}\n",
                dir.display()
            );
            let _ = stderr.write(note.as_bytes());
        }
    }
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .args(args)
        .secure_random(random.secure.clone())
        .insecure_random(random.insecure.clone())
        .insecure_random_seed(0x5eed)
        .wall_clock(clock.clone())
        .monotonic_clock(clock.clone());
    builder.build_p1()
}

/// The bytes every guest's random source cycles through: fixed, so that
/// runs are reproducible, and not all zero, so that hash-map seeding and
/// similar uses behave.
const RANDOM_STREAM: [u8; 32] = *b"wrun deterministic random bytes!";

/// The guest's two random streams (WASI `random_get` and the insecure
/// one): each cycles through [`RANDOM_STREAM`] from where it was, and counts
/// the bytes drawn so a snapshot can put it back at the same place.
#[derive(Debug, Clone, Default)]
pub(crate) struct RandomStreams {
    secure: Stream,
    insecure: Stream,
}

impl RandomStreams {
    /// Bytes drawn from each stream.
    pub(crate) fn drawn(&self) -> [u64; 2] {
        [&self.secure, &self.insecure].map(|s| s.drawn.load(Ordering::Relaxed))
    }

    /// Continue each stream after `drawn` bytes.
    pub(crate) fn restore(&self, drawn: [u64; 2]) {
        for (stream, drawn) in [&self.secure, &self.insecure].into_iter().zip(drawn) {
            stream.drawn.store(drawn, Ordering::Relaxed);
        }
    }
}

/// One random stream; clones share the position.
#[derive(Debug, Clone, Default)]
struct Stream {
    drawn: Arc<AtomicU64>,
}

impl rand_core::TryRng for Stream {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_be_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_be_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, buf: &mut [u8]) -> Result<(), Infallible> {
        let start = self.drawn.fetch_add(buf.len() as u64, Ordering::Relaxed);
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = RANDOM_STREAM[((start + i as u64) % RANDOM_STREAM.len() as u64) as usize];
        }
        Ok(())
    }
}
