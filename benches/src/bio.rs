//! A real workload end to end: `examples/gc-content` over a FASTA file in
//! the page cache, against the same code natively on as many threads, and
//! against GNU parallel `--pipepart` driving the native program (what
//! people do today); the cost of a fuel budget on it; and wrun's scaling
//! from one worker to all.

use std::path::Path;

use crate::{Table, median, median_timing, run_shell, synthetic_fasta, wrun_binary};

const GC_CONTENT: &str = env!("WRUN_BENCH_GC_CONTENT");

pub(crate) fn gc_content(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    let size = (1 << 30) / scale;
    let fasta = dir.join("big.fa");
    std::fs::write(&fasta, synthetic_fasta(size)).unwrap();
    let fasta = fasta.display();
    let native = wrun_binary().with_file_name("native-gc");
    let native = native.display();
    let wrun = |jobs: usize| {
        format!(
            "WRUN_HOME={} {} submit {GC_CONTENT} --input {fasta} -j {jobs} --progress never >/dev/null",
            home.display(),
            wrun_binary().display()
        )
    };
    // Warm the page cache and the artifact cache, and check that wrun and
    // the native peer write the same bytes.
    let (ours, theirs) = (dir.join("wrun.tsv"), dir.join("native.tsv"));
    run_shell(&wrun(workers).replace(">/dev/null", &format!(">{}", ours.display())));
    run_shell(&format!(
        "{native} -j {workers} {fasta} >{}",
        theirs.display()
    ));
    assert!(
        std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
        "wrun and native-gc disagree"
    );

    let timed = median_timing(&wrun(workers));
    let on_all = timed.wall;
    let native_all = median_timing(&format!("{native} -j {workers} {fasta} >/dev/null"));
    let parallel = median(|| {
        run_shell(&format!(
            "parallel --pipepart -a {fasta} --recstart '>' --block 10M -j {workers} -k \
             {native} - >/dev/null"
        ))
    });
    let on_one = median(|| run_shell(&wrun(1)));
    // Deterministic CPU budgets: wasmtime fuel, far more than needed.
    let fueled = median(|| {
        run_shell(&wrun(workers).replace(" submit ", " submit --fuel 1000000000000000 "))
    });

    let mb = size as f64 / 1e6;
    let secs = |d: std::time::Duration| format!("{:.2} s", d.as_secs_f64());
    table.row(
        &format!("gc-content over {mb:.0} MB FASTA, -j {workers}"),
        timed.to_string(),
        &format!("{:.0} MB/s", mb / on_all.as_secs_f64()),
    );
    table.row(
        &format!("  native Rust, same code, {workers} threads"),
        native_all.to_string(),
        &format!(
            "wrun takes {:.2}x the native wall time (target <= 1.25x), {:.2}x its CPU time",
            on_all.as_secs_f64() / native_all.wall.as_secs_f64(),
            timed.cpu.as_secs_f64() / native_all.cpu.as_secs_f64()
        ),
    );
    table.row(
        "  GNU parallel --pipepart + the native program",
        secs(parallel),
        &format!(
            "wrun is {:.1}x faster (target >= 5x)",
            parallel.as_secs_f64() / on_all.as_secs_f64()
        ),
    );
    table.row(
        "  same, with a fuel budget (--fuel)",
        secs(fueled),
        &format!(
            "fuel metering costs {:.0}% (target <= 15%)",
            100.0 * (fueled.as_secs_f64() / on_all.as_secs_f64() - 1.0)
        ),
    );
    table.row(
        "  wrun -j 1",
        secs(on_one),
        &format!(
            "scaling 1 -> {workers} workers: {:.0}% efficient (target >= 90%)",
            100.0 * on_one.as_secs_f64() / (workers as f64 * on_all.as_secs_f64())
        ),
    );
}

/// Record lengths that vary 1000x (reads of 100 bases, then contigs of
/// 100,000): chunks of a fixed record count (what `seqkit split -s` makes)
/// against adaptive chunking, which sizes chunks by measured cost.
pub(crate) fn uneven(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    let fasta = dir.join("uneven.fa");
    std::fs::write(&fasta, uneven_fasta((256 << 20) / scale)).unwrap();
    let run = |chunking: &str| {
        format!(
            "WRUN_HOME={} {} submit {GC_CONTENT} --input {} -j {workers} --progress never \
             {chunking} >/dev/null",
            home.display(),
            wrun_binary().display(),
            fasta.display()
        )
    };
    let (by_count, adaptive) = ("--chunk-records 2000", "--chunking adaptive");
    run_shell(&run(adaptive));
    let counted = median(|| run_shell(&run(by_count)));
    let adapted = median(|| run_shell(&run(adaptive)));
    let secs = |d: std::time::Duration| format!("{:.2} s", d.as_secs_f64());
    table.row(
        "gc-content, record lengths 100 to 100,000, --chunk-records 2000",
        secs(counted),
        "",
    );
    table.row(
        "  same input, --chunking adaptive",
        secs(adapted),
        &format!(
            "{:.2}x the time of fixed record counts",
            adapted.as_secs_f64() / counted.as_secs_f64()
        ),
    );
}

/// About `size` bytes of FASTA: 100-base reads, then contigs of 100,000
/// bases taking the last third of the file, as in an assembly sorted by
/// length; a fixed record count puts all the contigs in one or two chunks.
fn uneven_fasta(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + (200 << 10));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut id = 0;
    while out.len() < size {
        id += 1;
        let len = if out.len() > size / 3 * 2 {
            100_000
        } else {
            100
        };
        out.extend_from_slice(format!(">seq{id}\n").as_bytes());
        for i in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push(b"ACGT"[(state & 3) as usize]);
            if i % 60 == 59 {
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
    out
}

pub(crate) const SW_SEARCH: &str = env!("WRUN_BENCH_SW_SEARCH");

/// `count` random proteins of `len` residues (xorshift from `seed`), as
/// FASTA named `p0`, `p1`, ...
pub(crate) fn proteins(count: usize, len: usize, seed: u64) -> String {
    let mut state = seed;
    let mut text = String::new();
    for n in 0..count {
        text.push_str(&format!(">p{n}\n"));
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push(b"ACDEFGHIKLMNPQRSTVWY"[(state % 20) as usize] as char);
        }
        text.push('\n');
    }
    text
}

/// A compute-bound task: Smith–Waterman of protein queries against a
/// reference, with and without a fuel budget (the deterministic CPU
/// budget's cost on a real inner loop).
pub(crate) fn sw_fuel(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    let queries = dir.join("queries.fa");
    std::fs::write(&queries, proteins(60 / scale, 300, 0x9e37_79b9)).unwrap();
    let reference = dir.join("reference.fa");
    std::fs::write(&reference, proteins(20, 400, 0x85eb_ca6b)).unwrap();
    let run = |fuel: &str| {
        format!(
            "WRUN_HOME={} {} submit {fuel} {SW_SEARCH} --input {} -j {workers} \
             --chunk-records 4 --progress never --data ref={} -- --reference ref >/dev/null",
            home.display(),
            wrun_binary().display(),
            queries.display(),
            reference.display()
        )
    };
    run_shell(&run(""));
    let bare = median(|| run_shell(&run("")));
    let fueled = median(|| run_shell(&run("--fuel 1000000000000000")));
    let secs = |d: std::time::Duration| format!("{:.2} s", d.as_secs_f64());
    table.row(
        &format!(
            "sw-search, {} queries x 20 proteins, -j {workers}",
            60 / scale
        ),
        secs(bare),
        "",
    );
    table.row(
        "  same, with a fuel budget (--fuel)",
        secs(fueled),
        &format!(
            "fuel metering costs {:.0}% (target <= 15%)",
            100.0 * (fueled.as_secs_f64() / bare.as_secs_f64() - 1.0)
        ),
    );
}
