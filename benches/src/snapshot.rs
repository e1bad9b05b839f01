//! Incremental snapshots of a task with 256 MiB of memory (DESIGN §3:
//! ≤ 10 ms per snapshot with ≤ 1% of pages dirty, ≤ 20 ms to restore), next
//! to the first, full snapshot of the same memory: what a snapshot costs
//! without dirty-page tracking.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wrun_runtime::{Checkpointing, Chunk, Ended, Every, Limits, Requests, Runtime};
use wrun_store::BlobStore;

use crate::{Table, fmt_ms};

/// Pages of 64 KiB: 256 MiB.
const PAGES: u32 = 4096;
/// Pages each step writes: 1%.
const DIRTY: u32 = 41;
/// Steps, each followed by a snapshot.
const STEPS: u32 = 30;

/// An SDK task in WAT: `wrun_init` grows memory to 256 MiB and gives every
/// page distinct contents; each of `steps` `wrun_step` calls spins `spin`
/// times (CPU work), then writes one word in 1% of the pages, counting in a
/// mutable global that is not exported (admission exports it for
/// snapshots).
pub(crate) fn module(steps: u32, spin: u32) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (@custom "wrun" "abi=1\nkind=task\nname=snapshot-bench\n")
  (memory (export "memory") 2)
  (global $step (mut i32) (i32.const 0))
  (func (export "wrun_reserve") (param i32) (result i32) (i32.const 1024))
  (func (export "wrun_init") (param i32) (result i32)
    (local $page i32)
    (drop (memory.grow (i32.const {grow})))
    (memory.fill (i32.const 0) (i32.const 0x5a) (i32.const {bytes}))
    (loop $fill
      (i64.store (i32.shl (local.get $page) (i32.const 16)) (i64.extend_i32_u (local.get $page)))
      (local.set $page (i32.add (local.get $page) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $page) (i32.const {PAGES}))))
    (i32.const 0))
  (func (export "wrun_record") (param i32 i32) (result i32) (i32.const 0))
  (func (export "wrun_step") (result i32)
    (local $k i32)
    (local $spin i32)
    (if (i32.ge_u (global.get $step) (i32.const {steps})) (then (return (i32.const 0))))
    (global.set $step (i32.add (global.get $step) (i32.const 1)))
    (block $done
      (loop $spin
        (br_if $done (i32.ge_u (local.get $spin) (i32.const {spin})))
        (local.set $spin (i32.add (local.get $spin) (i32.const 1)))
        (br $spin)))
    (loop $dirty
      (i64.store
        (i32.add
          (i32.shl
            (i32.rem_u
              (i32.add (i32.mul (global.get $step) (i32.const {DIRTY})) (local.get $k))
              (i32.const {PAGES}))
            (i32.const 16))
          (i32.const 8))
        (i64.extend_i32_u (global.get $step)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $dirty (i32.lt_u (local.get $k) (i32.const {DIRTY}))))
    (i32.const 1))
  (func (export "wrun_finish") (result i32) (i32.const 0)))"#,
        grow = PAGES - 2,
        bytes = u64::from(PAGES) << 16,
    );
    wat::parse_str(wat).expect("the benchmark module is valid WAT")
}

/// One run with a snapshot after every step: the time between snapshots
/// (the steps' own work is a few stores) and the bytes each stored; then
/// the time to restore the last one in a fresh instance and finish.
pub(crate) fn snapshots(table: &mut Table, dir: &std::path::Path) {
    let store = BlobStore::open_local(&dir.join("snapshot-store")).expect("store");
    let runtime = Runtime::new(Limits::default(), 1).expect("runtime");
    let module = runtime
        .admit("snapshot-bench", &module(STEPS, 0))
        .expect("admit");
    let runner = runtime.task_runner(&module, &[]).expect("runner");
    let data = Bytes::from_static(b"x\n");
    let records = [0u32];
    let chunk = Chunk {
        data: &data,
        records: &records,
    };
    let requests = Requests::default();
    let taken = Mutex::new(Vec::new());
    let on_checkpoint = |checkpoint: wrun_runtime::Checkpoint| {
        taken
            .lock()
            .unwrap()
            .push((Instant::now(), checkpoint.snapshot));
    };
    let started = Instant::now();
    let checkpointing = Checkpointing {
        store: &store,
        resume: None,
        every: Some(Every::Calls(1)),
        requests: &requests,
        suspend_on_fuel: false,
        on_checkpoint: &on_checkpoint,
    };
    match runner.run_checkpointed(chunk, &checkpointing) {
        Ok(Ended::Finished(_)) => {}
        other => panic!("the snapshot benchmark task finishes: {other:?}"),
    }
    let taken = taken.lock().unwrap().clone();
    // Snapshot 0 is after `wrun_init` (nothing to compare with: it stores
    // every page); each later one follows a step that dirtied 1%.
    let full = taken[0].0 - started;
    let mut gaps: Vec<Duration> = taken.windows(2).map(|w| w[1].0 - w[0].0).skip(1).collect();
    gaps.sort();
    let incremental = gaps[gaps.len() / 2];
    let mut stored: Vec<u64> = taken.iter().skip(2).map(|(_, t)| t.stored).collect();
    stored.sort_unstable();
    let stored = stored[stored.len() / 2];

    let last = taken.last().expect("snapshots were taken").1.digest;
    let mut restores: Vec<Duration> = (0..5)
        .map(|_| {
            let checkpointing = Checkpointing {
                resume: Some(last),
                every: None,
                ..checkpointing
            };
            let started = Instant::now();
            match runner.run_checkpointed(chunk, &checkpointing) {
                Ok(Ended::Finished(output)) => {
                    assert!(output.log.is_empty(), "restored: {:?}", output.log);
                }
                other => panic!("the restored task finishes: {other:?}"),
            }
            started.elapsed()
        })
        .collect();
    restores.sort();
    let restore = restores[restores.len() / 2];

    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    table.row(
        "snapshot, 256 MiB memory, first (full: init + every page)",
        fmt_ms(full),
        &format!("{:.0} MiB stored", mib(taken[0].1.stored)),
    );
    table.row(
        "  incremental, 1% of pages dirty (target <= 10 ms)",
        fmt_ms(incremental),
        &format!(
            "{:.2} MiB stored ({:.2} MiB of dirty pages); {:.0}x faster than full",
            mib(stored),
            mib(u64::from(DIRTY) << 16),
            full.as_secs_f64() / incremental.as_secs_f64()
        ),
    );
    table.row(
        "  restore into a fresh instance and finish (target <= 20 ms)",
        fmt_ms(restore),
        &format!("{} snapshots in the chain", taken.len()),
    );
}
