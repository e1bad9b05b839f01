//! A real workload end to end: `examples/gc-content` over a FASTA file in
//! the page cache, against the same code natively on as many threads, and
//! against GNU parallel `--pipepart` driving the native program (what
//! people do today); the cost of a fuel budget on it; and wrun's scaling
//! from one worker to all.

use std::path::Path;

use crate::{Table, median, run_shell, synthetic_fasta, wrun_binary};

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

    let on_all = median(|| run_shell(&wrun(workers)));
    let native_all = median(|| run_shell(&format!("{native} -j {workers} {fasta} >/dev/null")));
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
        secs(on_all),
        &format!("{:.0} MB/s", mb / on_all.as_secs_f64()),
    );
    table.row(
        &format!("  native Rust, same code, {workers} threads"),
        secs(native_all),
        &format!(
            "wrun takes {:.2}x the native time (target <= 1.25x)",
            on_all.as_secs_f64() / native_all.as_secs_f64()
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
