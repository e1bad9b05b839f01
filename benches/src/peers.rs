//! The examples against the tools a user would pick instead, in one
//! invocation, wall and CPU time: `gc-content` against `seqkit fx2tab`,
//! `revcomp-c` against `seqkit seq -r`, `kmer-count` + `kmer-merge`
//! against `jellyfish count` + `dump`, and the pipeline floor (a task
//! that does nothing on every record) in CPU seconds per GB; and, as
//! section `pairs`, `pair-stats` over paired reads against `seqkit
//! fx2tab` on each file.

use std::path::Path;
use std::process::Command;

use crate::{NOOP_TASK, Table, Timing, median_timing, run_shell, synthetic_fasta, wrun_binary};

const GC_CONTENT: &str = env!("WRUN_BENCH_GC_CONTENT");
const KMER_COUNT: &str = env!("WRUN_BENCH_KMER_COUNT");
const KMER_MERGE: &str = env!("WRUN_BENCH_KMER_MERGE");
const PAIR_STATS: &str = env!("WRUN_BENCH_PAIR_STATS");

/// Real paired reads from Debian's `bowtie2-examples`.
const READS: &str = "/usr/share/doc/bowtie2/examples/reads/reads_1.fq.gz";
/// Their second mates.
const MATES: &str = "/usr/share/doc/bowtie2/examples/reads/reads_2.fq.gz";

/// All sections, over a FASTA of about `1 GB / scale`.
pub(crate) fn against_seqkit_and_jellyfish(
    table: &mut Table,
    home: &Path,
    dir: &Path,
    workers: usize,
    scale: usize,
) {
    let size = (1 << 30) / scale;
    let fasta = dir.join("peers.fa");
    std::fs::write(&fasta, synthetic_fasta(size)).unwrap();
    let mb = size as f64 / 1e6;
    let wrun = |task: &str, extra: &str| {
        format!(
            "WRUN_HOME={} {} submit {task} --input {} -j {workers} --progress never --no-journal \
             {extra}",
            home.display(),
            wrun_binary().display(),
            fasta.display()
        )
    };

    let gc = wrun(GC_CONTENT, "");
    let fx2tab = format!("seqkit fx2tab -n -i -l -g -j {workers} {}", fasta.display());
    same_output(dir, &gc, &fx2tab);
    let (ours, theirs) = (median_timing(&gc), median_timing(&fx2tab));
    table.row(
        &format!("gc-content over {mb:.0} MB FASTA, -j {workers}, no journal"),
        ours.to_string(),
        "",
    );
    compare(
        table,
        &format!("  seqkit fx2tab -n -i -l -g -j {workers}"),
        ours,
        theirs,
        "<= 1.0x wall, <= 1.5x CPU",
    );

    let noop = median_timing(&wrun(NOOP_TASK, "--format fasta"));
    table.row(
        "  the pipeline alone: a no-op task on every record",
        noop.to_string(),
        &format!(
            "{:.2} s CPU per GB (target <= 0.4 s)",
            noop.cpu.as_secs_f64() / (size as f64 / 1e9)
        ),
    );

    match revcomp_module(dir) {
        Ok(revcomp) => {
            let ours_cmd = wrun(&revcomp, "");
            // Without `-t dna`, which would switch on validation and slow
            // seqkit down; its advice to give `-t` goes to /dev/null.
            let seqkit = format!(
                "seqkit seq -r -p -w 0 -j {workers} {} 2>/dev/null",
                fasta.display()
            );
            same_output(dir, &ours_cmd, &seqkit);
            let (ours, theirs) = (median_timing(&ours_cmd), median_timing(&seqkit));
            table.row(
                &format!("revcomp-c over {mb:.0} MB FASTA"),
                ours.to_string(),
                "",
            );
            compare(
                table,
                "  seqkit seq -r -p -w 0",
                ours,
                theirs,
                "<= 1.0x wall",
            );
        }
        Err(reason) => table.row("revcomp-c against seqkit seq -r", "skipped", &reason),
    }

    kmers(table, home, dir, workers, scale);
}

/// `pair-stats` over the bowtie2 pairs concatenated to about `1 GB /
/// scale` per mate, against `seqkit fx2tab -n -i -l -g` on each file and
/// `paste` (the lengths and GC% columns checked equal first; seqkit has
/// no overlap column).
pub(crate) fn pairs(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    if !Path::new(MATES).exists() {
        table.row(
            "pair-stats against seqkit fx2tab",
            "skipped",
            "bowtie2-examples is not installed",
        );
        return;
    }
    let (r1, r2) = (dir.join("pairs_1.fq"), dir.join("pairs_2.fq"));
    // One copy of a file decompresses to about 2.3 MB.
    let copies = (440 / scale).max(1);
    for (from, to) in [(READS, &r1), (MATES, &r2)] {
        run_shell(&format!(
            "for i in $(seq {copies}); do gzip -dc {from}; done >{}",
            to.display()
        ));
    }
    let mb = std::fs::metadata(&r1).unwrap().len() as f64 / 1e6;
    let ours = format!(
        "WRUN_HOME={} {} submit {PAIR_STATS} --input {} --mate {} -j {workers} --progress never \
         --no-journal",
        home.display(),
        wrun_binary().display(),
        r1.display(),
        r2.display()
    );
    let (t1, t2) = (dir.join("fx2tab_1.tsv"), dir.join("fx2tab_2.tsv"));
    let fx2tab = |input: &Path, out: &Path| {
        format!(
            "seqkit fx2tab -n -i -l -g -j {workers} {} >{}",
            input.display(),
            out.display()
        )
    };
    let theirs = format!(
        "{} && {} && paste {} {}",
        fx2tab(&r1, &t1),
        fx2tab(&r2, &t2),
        t1.display(),
        t2.display()
    );
    same_output(
        dir,
        &format!("{ours} | cut -f 1-5"),
        &format!("{theirs} | awk -F '\\t' -v OFS='\\t' '{{print $1, $2, $5, $3, $6}}'"),
    );
    let (ours, theirs) = (median_timing(&ours), median_timing(&theirs));
    table.row(
        &format!("pair-stats over 2 x {mb:.0} MB paired FASTQ (--mate), -j {workers}, no journal"),
        ours.to_string(),
        "",
    );
    compare(
        table,
        &format!("  seqkit fx2tab -n -i -l -g -j {workers} on each file + paste"),
        ours,
        theirs,
        "<= 1.5x wall",
    );
}

/// k-mer counting (k = 21) over about `36 MB / scale` of real FASTQ.
fn kmers(table: &mut Table, home: &Path, dir: &Path, workers: usize, scale: usize) {
    if !Path::new(READS).exists() {
        table.row(
            "kmer-count against jellyfish",
            "skipped",
            "bowtie2-examples is not installed",
        );
        return;
    }
    let fastq = dir.join("reads.fq");
    let copies = (36 / scale).max(1);
    run_shell(&format!(
        "for i in $(seq {copies}); do gzip -dc {READS}; done >{}",
        fastq.display()
    ));
    let mb = std::fs::metadata(&fastq).unwrap().len() as f64 / 1e6;
    let ours = format!(
        "WRUN_HOME={} {} submit {KMER_COUNT} --input {} -j {workers} --progress never \
         --no-journal --reduce {KMER_MERGE} -- 21 >/dev/null",
        home.display(),
        wrun_binary().display(),
        fastq.display()
    );
    let counts = dir.join("mer_counts.jf");
    let jellyfish = format!(
        "jellyfish count -m 21 -s 100M -t {workers} -o {0} {1} && jellyfish dump -c {0} >/dev/null",
        counts.display(),
        fastq.display()
    );
    let (ours, theirs) = (median_timing(&ours), median_timing(&jellyfish));
    table.row(
        &format!("kmer-count + kmer-merge, k=21, {mb:.0} MB FASTQ"),
        ours.to_string(),
        "",
    );
    compare(
        table,
        "  jellyfish count -m 21 + dump",
        ours,
        theirs,
        "<= 1.5x wall",
    );
}

/// A row for `peer` with wrun's time as ratios of its.
fn compare(table: &mut Table, peer: &str, ours: Timing, theirs: Timing, target: &str) {
    table.row(
        peer,
        theirs.to_string(),
        &format!(
            "wrun takes {:.2}x the wall time, {:.2}x the CPU time (target {target})",
            ours.wall.as_secs_f64() / theirs.wall.as_secs_f64(),
            ours.cpu.as_secs_f64() / theirs.cpu.as_secs_f64()
        ),
    );
}

/// Check that two commands write the same bytes (a benchmark that races an
/// incorrect peer proves nothing).
fn same_output(dir: &Path, ours: &str, theirs: &str) {
    let (a, b) = (dir.join("ours.out"), dir.join("theirs.out"));
    run_shell(&format!("{ours} >{}", a.display()));
    run_shell(&format!("{theirs} >{}", b.display()));
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "`{ours}` and `{theirs}` disagree"
    );
}

/// `examples/revcomp-c` built with clang as the README shows, or why not.
fn revcomp_module(dir: &Path) -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let module = dir.join("revcomp.wasm");
    let status = Command::new("clang")
        .args([
            "--target=wasm32-wasi",
            "-O2",
            "-msimd128",
            "-mexec-model=reactor",
            "-I",
        ])
        .arg(root.join("guest-sdk/include"))
        .arg("-o")
        .arg(&module)
        .arg(root.join("examples/revcomp-c/revcomp.c"))
        .status()
        .map_err(|e| {
            format!("clang: {e} (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)")
        })?;
    if !status.success() {
        return Err(format!("clang failed: {status}"));
    }
    Ok(module.display().to_string())
}
