//! wrun's benchmark suite (run it with `benches/run`).
//!
//! Every benchmark runs wrun and its peers in the same invocation, repeats
//! each measurement, and prints medians and ratios: absolute times on a
//! shared machine are noise, ratios measured side by side are not.
//!
//! * per-task overhead of an SDK no-op task (one tiny record per task,
//!   cached module, all workers), end to end through `wrun submit`, and the
//!   in-process cost of one task (`TaskRunner::run`);
//! * the same for a WASI-command no-op;
//! * peers on the same no-op job: GNU parallel (`parallel true`), `xargs -P`
//!   with `/bin/true`, Python `multiprocessing.Pool.map(chunksize=1)`;
//! * the journal's cost per task: the same no-op job with and without
//!   `--no-journal`, runs interleaved;
//! * cold compile versus cache hit for a module over 1 MB;
//! * a 1,000,000-task job: wall time and peak RSS;
//! * FASTA splitting in the wasm plugin, against the same plugin compiled
//!   natively, both fed the 1 MiB blocks the scheduler reads;
//! * `examples/gc-content` over 1 GB of FASTA against the same code native
//!   and GNU parallel `--pipepart`, and scaling over the cores (`bio`);
//! * the same against `seqkit fx2tab`, `revcomp-c` against `seqkit seq -r`,
//!   `kmer-count` + `kmer-merge` against `jellyfish count` + `dump`, wall
//!   and CPU time, and the pipeline's own CPU per GB (`bio`);
//! * incremental snapshots of a task with 256 MiB of memory (`snapshot`);
//! * remote dispatch through a broker and two nodes on loopback, against
//!   local mode (`cluster`);
//! * the broker at cluster scale: 1 to 256 simulated nodes on loopback,
//!   tasks/s, broker CPU, heartbeat traffic and dispatch turnaround
//!   (`scale`);
//! * sw-search against a 10 MB `--data` reference, local and through a
//!   broker and two nodes (own stores, shared `file://` store), against
//!   ssearch36; store put/get of 1 MiB and 64 MiB blobs (`data`).
//! * a job with a 100 MB `--data` file through a broker and two fresh
//!   nodes on their own stores (a ranged fetch from the broker), against
//!   the same on one shared `file://` store (`fetch`).
//! * one migration of a task with 256 MiB of memory from a draining node
//!   to the next, against rerunning its chunk from the start (`migration`).
//! * an allocation queue on the machine's Slurm: submit with no node to
//!   the first result, against `sbatch` submit-to-start (`alloc`).
//! * the no-op job with the dashboard open on it in a headless Chromium,
//!   against the same job alone (`dashboard`).

mod alloc;
mod bio;
mod cluster;
mod dashboard;
mod data;
mod fetch;
mod migration;
mod peers;
mod scale;
mod snapshot;
mod spawn;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wrun_runtime::{Chunk, Limits, Origin, Runtime};
use wrun_store::BlobStore;

const NOOP_TASK: &str = env!("WRUN_BENCH_NOOP_TASK");
const NOOP_SPAWN: &str = env!("WRUN_BENCH_NOOP_SPAWN");
const NOOP_COMMAND: &str = env!("WRUN_BENCH_NOOP_COMMAND");
const REGEX_GREP: &str = env!("WRUN_BENCH_REGEX_GREP");

/// How many times each measurement is repeated (the median is reported).
const REPEATS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Sections named on the command line (`tasks`, `journal`, `cache`,
    // `million`, `split`, `bio`, `sw`), or all.
    let sections: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |section: &str| sections.is_empty() || sections.contains(&section);
    let scale = if quick { 10 } else { 1 };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("wrun-home");
    println!("wrun benchmarks: {workers} cores, medians of {REPEATS} runs\n");

    let mut table = Table::default();
    if run("tasks") {
        per_task(&mut table, &home, dir.path(), workers, scale);
    }
    if run("journal") {
        journal(&mut table, &home, dir.path(), workers, scale);
    }
    if run("cache") {
        cache(&mut table, dir.path());
    }
    if run("million") {
        million(&mut table, &home, dir.path(), workers, scale);
    }
    if run("split") {
        split(&mut table, scale);
    }
    if run("bio") {
        bio::gc_content(&mut table, &home, dir.path(), workers, scale);
        bio::uneven(&mut table, &home, dir.path(), workers, scale);
        peers::against_seqkit_and_jellyfish(&mut table, &home, dir.path(), workers, scale);
    }
    if run("pairs") {
        peers::pairs(&mut table, &home, dir.path(), workers, scale);
    }
    if run("sw") {
        bio::sw_fuel(&mut table, &home, dir.path(), workers, scale);
    }
    if run("snapshot") {
        snapshot::snapshots(&mut table, dir.path());
    }
    if run("cluster") {
        cluster::remote(&mut table, dir.path(), workers, scale);
    }
    if run("scale") {
        scale::scale(&mut table, dir.path(), scale);
    }
    if run("data") {
        data::data(&mut table, dir.path(), workers, scale);
    }
    if run("fetch") {
        fetch::fetch(&mut table, dir.path(), workers);
    }
    if run("migration") {
        migration::migration(&mut table, dir.path());
    }
    if run("alloc") {
        alloc::first_result(&mut table, dir.path());
    }
    if run("spawn") {
        spawn::spawn_wait(&mut table, &home, dir.path(), workers, scale);
    }
    if run("dashboard") {
        dashboard::dashboard(&mut table, dir.path(), workers, scale);
    }
    table.print();
}

/// Per-task overhead of no-op tasks, and the peers on the same job.
fn per_task(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    // Per-task overhead, end to end.
    let sdk_tasks = 200_000 / scale;
    let lines = input_of_lines(dir, sdk_tasks);
    wrun_submit(home, NOOP_TASK, &lines, workers, &[]); // fill the artifact cache
    let sdk = median(|| wrun_submit(home, NOOP_TASK, &lines, workers, &[]).0) / sdk_tasks as u32;
    let cmd_tasks = 20_000 / scale;
    let cmd_lines = input_of_lines(dir, cmd_tasks);
    wrun_submit(home, NOOP_COMMAND, &cmd_lines, workers, &[]);
    let cmd =
        median(|| wrun_submit(home, NOOP_COMMAND, &cmd_lines, workers, &[]).0) / cmd_tasks as u32;

    // In-process cost of one task, one thread.
    let sdk_one = per_task_in_process(NOOP_TASK, 20_000 / scale);
    let cmd_one = per_task_in_process(NOOP_COMMAND, 5_000 / scale);

    // Peers on the same no-op job.
    let parallel = median(|| gnu_parallel(workers, 1_000 / scale)) / (1_000 / scale) as u32;
    let xargs = median(|| xargs(workers, 5_000 / scale)) / (5_000 / scale) as u32;
    let python = median(|| python_pool(workers, 100_000 / scale)) / (100_000 / scale) as u32;

    let per_core = |d: Duration| d * workers as u32;
    table.row(
        "SDK no-op, wall per task",
        fmt_us(sdk),
        &format!(
            "{:.0} tasks/s; {} per task per core",
            1.0 / sdk.as_secs_f64(),
            fmt_us(per_core(sdk))
        ),
    );
    table.row(
        "SDK no-op, one task in-process (1 thread)",
        fmt_us(sdk_one),
        "",
    );
    table.row(
        "WASI-command no-op, wall per task",
        fmt_us(cmd),
        &format!("{} per task per core", fmt_us(per_core(cmd))),
    );
    table.row(
        "WASI-command no-op, one task in-process",
        fmt_us(cmd_one),
        "",
    );
    table.peer("GNU parallel `parallel true`, per task", parallel, sdk);
    table.peer("xargs -P + /bin/true, per task", xargs, sdk);
    table.peer("Python Pool.map(chunksize=1), per task", python, sdk);
}

/// The journal's cost per task: the no-op job journaled (the default) and
/// with `--no-journal`, alternating so both see the same machine.
fn journal(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    let tasks = 200_000 / scale;
    let lines = input_of_lines(dir, tasks);
    wrun_submit(home, NOOP_TASK, &lines, workers, &[]); // fill the artifact cache
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS * 2 - 1 {
        on.push(wrun_submit(home, NOOP_TASK, &lines, workers, &[]).0);
        off.push(wrun_submit(home, NOOP_TASK, &lines, workers, &["--no-journal"]).0);
    }
    on.sort();
    off.sort();
    let (on, off) = (
        on[on.len() / 2] / tasks as u32,
        off[off.len() / 2] / tasks as u32,
    );
    table.row("SDK no-op, journal on, wall per task", fmt_us(on), "");
    table.row(
        "  same job, --no-journal",
        fmt_us(off),
        &format!(
            "the journal adds {:.2} µs per task (target <= 2 µs)",
            (on.as_secs_f64() - off.as_secs_f64()) * 1e6
        ),
    );
}

/// Cold compile versus cache hit.
fn cache(table: &mut Table, dir: &Path) {
    let size = std::fs::metadata(REGEX_GREP).map_or(0, |m| m.len());
    let times = compile_vs_hit(dir, REGEX_GREP);
    table.row(
        &format!("compile regex-grep ({:.1} MB), cold", size as f64 / 1e6),
        fmt_ms(times.cold),
        "",
    );
    table.row(
        "  same module, artifact cache hit",
        fmt_ms(times.hit),
        &format!(
            "{:.0}x faster than compiling; load time as the runtime reports it \
             (digest, cache lookup, artifact mapped), target <= 0.25 ms",
            times.cold.as_secs_f64() / times.hit.as_secs_f64()
        ),
    );
    table.row(
        "  same, from the file",
        fmt_ms(times.hit_from_file),
        "what a job start pays: the file read, its digest remembered by its stamp, \
         admission checks, the hit, linking",
    );
}

/// A million tasks: time and peak RSS.
fn million(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    let million = 1_000_000 / scale;
    let big = input_of_lines(dir, million);
    let (time, rss) = wrun_submit(home, NOOP_TASK, &big, workers, &[]);
    table.row(
        &format!("{million} SDK no-op tasks: wall time"),
        format!("{:.2} s", time.as_secs_f64()),
        &format!("{:.0} tasks/s", million as f64 / time.as_secs_f64()),
    );
    table.row("  peak RSS", format!("{:.1} MB", rss as f64 / 1e6), "");
}

#[derive(Default)]
struct Table {
    rows: Vec<[String; 3]>,
}

impl Table {
    fn row(&mut self, what: &str, value: impl Into<String>, note: &str) {
        self.rows
            .push([what.to_owned(), value.into(), note.to_owned()]);
    }

    /// A peer's per-task time and how much slower it is than wrun's.
    fn peer(&mut self, what: &str, peer: Duration, wrun: Duration) {
        let ratio = peer.as_secs_f64() / wrun.as_secs_f64();
        self.row(
            what,
            fmt_us(peer),
            &format!("wrun SDK no-op is {ratio:.1}x faster"),
        );
    }

    fn print(&self) {
        let width = |i: usize| self.rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
        let (a, b) = (width(0), width(1));
        println!("| {:<a$} | {:>b$} | ratio / note", "benchmark", "median");
        println!("|{}|{}|---", "-".repeat(a + 2), "-".repeat(b + 2));
        for [what, value, note] in &self.rows {
            println!("| {what:<a$} | {value:>b$} | {note}");
        }
    }
}

fn fmt_us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn median(mut measure: impl FnMut() -> Duration) -> Duration {
    let mut samples: Vec<Duration> = (0..REPEATS).map(|_| measure()).collect();
    samples.sort();
    samples[REPEATS / 2]
}

/// A file of `n` one-byte lines: `n` records, one task each.
fn input_of_lines(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("lines-{n}.txt"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for _ in 0..n {
        file.write_all(b"x\n").unwrap();
    }
    file.flush().unwrap();
    path
}

/// The `wrun` binary next to this one.
fn wrun_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let wrun = me.with_file_name("wrun");
    assert!(wrun.is_file(), "build wrun first: benches/run does");
    wrun
}

/// `wrun submit module --input lines --chunk-records 1` (plus `flags`,
/// which may set `--chunk-records` instead): wall time and the child's
/// peak RSS in bytes.
fn wrun_submit(
    home: &Path,
    module: &str,
    lines: &Path,
    workers: usize,
    flags: &[&str],
) -> (Duration, u64) {
    let started = Instant::now();
    let status = Command::new(wrun_binary())
        .env("WRUN_HOME", home)
        .arg("submit")
        .args(flags)
        .args([module, "--format", "lines", "--progress", "never"])
        // One record a chunk unless `flags` say otherwise.
        .args(
            (!flags.contains(&"--chunk-records"))
                .then_some(["--chunk-records", "1"])
                .into_iter()
                .flatten(),
        )
        .arg("-j")
        .arg(workers.to_string())
        .arg("--input")
        .arg(lines)
        .stdout(Stdio::null())
        .status()
        .expect("run wrun");
    let elapsed = started.elapsed();
    assert!(status.success(), "wrun failed");
    (elapsed, peak_rss_of_children())
}

/// The largest peak RSS of any waited-for child so far, in bytes.
fn peak_rss_of_children() -> u64 {
    children_usage().ru_maxrss as u64 * 1024
}

/// `getrusage(RUSAGE_CHILDREN)`: the totals of every waited-for child.
fn children_usage() -> libc::rusage {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads
    // nothing else.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    }
}

/// One task at a time on one thread through `TaskRunner::run`.
fn per_task_in_process(module: &str, n: usize) -> Duration {
    let runtime = Runtime::new(Limits::default(), 2).unwrap();
    let module = runtime
        .admit(module, &std::fs::read(module).unwrap())
        .unwrap();
    let runner = runtime.task_runner(&module, &[]).unwrap();
    let data = Bytes::from_static(b"x\n");
    let chunk = Chunk {
        data: &data,
        records: &[0],
    };
    for _ in 0..n / 10 {
        runner.run(chunk).unwrap();
    }
    median(|| {
        let started = Instant::now();
        for _ in 0..n {
            runner.run(chunk).unwrap();
        }
        started.elapsed() / n as u32
    })
}

fn gnu_parallel(workers: usize, n: usize) -> Duration {
    run_shell(&format!("seq {n} | parallel -j{workers} true"))
}

fn xargs(workers: usize, n: usize) -> Duration {
    run_shell(&format!("seq {n} | xargs -P{workers} -n1 /bin/true"))
}

fn python_pool(workers: usize, n: usize) -> Duration {
    let script = format!(
        "import multiprocessing, time\n\
         def noop(x):\n    return x\n\
         if __name__ == '__main__':\n\
         \x20   with multiprocessing.Pool({workers}) as pool:\n\
         \x20       pool.map(noop, range(100), chunksize=1)\n\
         \x20       t = time.perf_counter()\n\
         \x20       pool.map(noop, range({n}), chunksize=1)\n\
         \x20       print(time.perf_counter() - t)\n"
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secs: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("seconds");
    Duration::from_secs_f64(secs)
}

/// Wall-clock and CPU time (user + system, of every process it waited
/// for) of one run of a shell script.
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} s ({:.2} s CPU)",
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64()
        )
    }
}

/// The medians of wall-clock and of CPU time over `REPEATS` runs of
/// `script` (each its own median, so they may come from different runs).
fn median_timing(script: &str) -> Timing {
    let mut runs: Vec<Timing> = (0..REPEATS)
        .map(|_| {
            let cpu = children_cpu();
            let wall = run_shell(script);
            Timing {
                wall,
                cpu: children_cpu() - cpu,
            }
        })
        .collect();
    runs.sort_by_key(|run| run.wall);
    let wall = runs[REPEATS / 2].wall;
    runs.sort_by_key(|run| run.cpu);
    Timing {
        wall,
        cpu: runs[REPEATS / 2].cpu,
    }
}

/// User + system time of every waited-for child so far.
fn children_cpu() -> Duration {
    let usage = children_usage();
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn run_shell(script: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .status()
        .expect("sh");
    assert!(status.success(), "{script} failed");
    started.elapsed()
}

/// A module's compile and cache-hit times (medians).
struct CompileTimes {
    /// Compiling with an empty cache (the runtime's load time).
    cold: Duration,
    /// A hit in a fresh runtime (the runtime's load time).
    hit: Duration,
    /// A hit in a fresh runtime, timed from reading the file to the linked
    /// module.
    hit_from_file: Duration,
}

/// Median cold compile (empty cache) and median cache hit (a fresh engine
/// loading the artifact), both through `Runtime::admit_digested` of the
/// file read as a job reads it (`BlobStore::read_digested`).
fn compile_vs_hit(dir: &Path, module: &str) -> CompileTimes {
    let home = dir.join("compile-home");
    let admit = |expect_hit: bool| {
        let store = Arc::new(BlobStore::open_local(&home).unwrap());
        let runtime = Runtime::with_store(Limits::default(), 1, store.clone()).unwrap();
        let started = Instant::now();
        let (bytes, digest) = store.read_digested(Path::new(module)).unwrap();
        let module = runtime.admit_digested(module, &bytes, digest).unwrap();
        let whole = started.elapsed();
        assert_eq!(*module.origin() == Origin::CacheHit, expect_hit);
        (module.load_time(), whole)
    };
    let cold = median(|| {
        let _ = std::fs::remove_dir_all(&home);
        admit(false).0
    });
    // The last cold run left the artifact in the cache.
    CompileTimes {
        cold,
        hit: median(|| admit(true).0),
        hit_from_file: median(|| admit(true).1),
    }
}

/// FASTA splitting throughput, one core: the builtin wasm plugin through
/// `wrun_runtime::Splitter`, and the same code natively, each finding the
/// records and weighing them by residues.
fn split(table: &mut Table, scale: usize) {
    use wrun_sdk::{Splitter as _, Weigh as _};

    let fasta = synthetic_fasta((512 << 20) / scale);
    const BLOCK: usize = 1 << 20;
    let runtime = Runtime::new(Limits::default(), 1).unwrap();
    let plugin = wrun_runtime::plugins::builtin("fasta").unwrap();
    let module = runtime.admit("builtin:fasta", plugin).unwrap();
    let mut records = 0;
    let wasm = median(|| {
        let mut splitter = runtime.splitter(&module).unwrap();
        let (mut starts, mut weights) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for block in fasta.chunks(BLOCK) {
            starts.clear();
            splitter
                .split(block, false, &mut starts, &mut weights)
                .unwrap();
            records += starts.len();
        }
        started.elapsed()
    });
    let native = median(|| {
        let mut splitter = wrun_plugin_fasta::Fasta::default();
        let (mut starts, mut weights) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for block in fasta.chunks(BLOCK) {
            starts.clear();
            weights.clear();
            splitter.split(block, false, &mut starts).unwrap();
            splitter.weigh(block, false, &starts, &mut weights).unwrap();
        }
        started.elapsed()
    });
    assert!(records > 0);
    let rate = |d: Duration| fasta.len() as f64 / d.as_secs_f64() / 1e9;
    table.row(
        &format!(
            "FASTA split, wasm plugin, 1 core ({} MB)",
            fasta.len() >> 20
        ),
        format!("{:.2} GB/s", rate(wasm)),
        &format!(
            "native build of the same plugin {:.2} GB/s; wasm at {:.0}%",
            rate(native),
            100.0 * rate(wasm) / rate(native)
        ),
    );
}

/// About `size` bytes of FASTA: records of 200 to 2,000 bases in 60-column
/// lines, bases from a fixed pseudo-random sequence.
fn synthetic_fasta(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 4096);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut id = 0;
    while out.len() < size {
        id += 1;
        out.extend_from_slice(format!(">read{id} synthetic\n").as_bytes());
        let len = 200 + (next() % 1800) as usize;
        for i in 0..len {
            out.push(b"ACGT"[(next() & 3) as usize]);
            if i % 60 == 59 {
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
    out
}
