//! Tasks that spawn tasks: the cost of spawn and wait per no-op child
//! (`noop-spawn`) against a flat job of as many no-op chunks (`noop-task`,
//! which cannot spawn, so it takes the plain worker path), in the same
//! run.

use std::path::Path;
use std::time::Duration;

use crate::{
    NOOP_SPAWN, NOOP_TASK, REPEATS, Table, children_cpu, fmt_us, input_of_lines, wrun_submit,
};

/// One chunk of `n` records whose task spawns a no-op child per record,
/// against `n` chunks of one no-op record each: wall and CPU (user +
/// system of `wrun`) per child and per task, medians of alternating runs.
pub(crate) fn spawn_wait(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    let n = 100_000 / scale;
    let lines = input_of_lines(dir, n);
    let all = n.to_string();
    let spawning = [
        "--chunk-records",
        all.as_str(),
        "--chunk-bytes",
        "64MiB",
        "--max-children",
        all.as_str(),
        "--max-children-in-flight",
        all.as_str(),
    ];
    // Fill the artifact cache.
    wrun_submit(home, NOOP_TASK, &lines, workers, &[]);
    wrun_submit(home, NOOP_SPAWN, &lines, workers, &spawning);
    let measure = |module: &str, flags: &[&str]| {
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            let before = children_cpu();
            wall.push(wrun_submit(home, module, &lines, workers, flags).0);
            cpu.push(children_cpu() - before);
        }
        let pick = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2] / n as u32
        };
        (pick(wall), pick(cpu))
    };
    let (flat_wall, flat_cpu) = measure(NOOP_TASK, &[]);
    let (spawn_wall, spawn_cpu) = measure(NOOP_SPAWN, &spawning);
    table.row(
        "spawn+wait, no-op child, wall per child",
        fmt_us(spawn_wall),
        &format!(
            "flat no-op chunk {} ({:.2}x); CPU {} per child vs {} per chunk ({:.2}x; target <= 2x)",
            fmt_us(flat_wall),
            spawn_wall.as_secs_f64() / flat_wall.as_secs_f64(),
            fmt_us(spawn_cpu),
            fmt_us(flat_cpu),
            spawn_cpu.as_secs_f64() / flat_cpu.as_secs_f64()
        ),
    );
}
