//! Real FASTA and FASTQ files (Debian's bowtie2-examples, installed by
//! `.ci/run`), plain and gzip-compressed, against seqkit; malformed FASTQ;
//! decompression bombs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{GC_CONTENT, TASK_PROBE, wrun};

/// Where `bowtie2-examples` puts its data.
const BOWTIE2: &str = "/usr/share/doc/bowtie2/examples";

/// `file` of bowtie2-examples, which must be installed.
pub(crate) fn bowtie2(file: &str) -> PathBuf {
    let path = Path::new(BOWTIE2).join(file);
    assert!(
        path.is_file(),
        "{} is missing: `apt-get install bowtie2-examples` (.ci/run does)",
        path.display()
    );
    path
}

fn seqkit_gc(path: &Path) -> String {
    let output = Command::new("seqkit")
        .args(["fx2tab", "-n", "-i", "-l", "-g"])
        .arg(path)
        .output()
        .expect("CI installs seqkit; it must be on PATH");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn gc_content_matches_seqkit_on_real_fasta_and_fastq_plain_and_gzipped() {
    for file in [
        "reads/reads_1.fq.gz",
        "reads/reads_2.fq.gz",
        "reads/longreads.fq.gz",
        "reference/lambda_virus.fa.gz",
        "scripts/test/big_data/reads/human_reads.fa",
        "scripts/test/big_data/reads/mouse_reads.fa",
    ] {
        let path = bowtie2(file);
        let expected = seqkit_gc(&path);
        for chunking in [
            &["--chunk-records", "7"][..],
            &["--chunk-bytes", "64KiB"],
            &[],
        ] {
            let mut args = vec!["submit", "--no-journal", GC_CONTENT, "--input"];
            args.push(path.to_str().unwrap());
            args.extend(chunking);
            let run = wrun(&args, None);
            assert_eq!(run.code, 0, "{file}: {}", run.stderr);
            assert!(
                run.stdout_text() == expected,
                "{file} {chunking:?} differs from seqkit"
            );
        }
    }
}

fn temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn malformed_fastq_is_an_input_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "bad-plus.fq",
            b"@r1\nACGT\n+\nIIII\n@r2\nAC\n-\nII\n",
            "line 7: expected the '+' line of the record at line 5, found '-'",
        ),
        (
            "bad-quality.fq",
            b"@r1\nACGT\n+\nIII\n",
            "line 4: the quality has 3 characters but the sequence of the record at line 1 has 4",
        ),
        (
            "truncated.fq.gz",
            &gzip(b"@r1\nACGT\n+\nIIII\n@r2\nAC\n"),
            "line 7: the input ends inside the record at line 5",
        ),
    ];
    for (name, bytes, message) in cases {
        let input = temp(dir.path(), name, bytes);
        let run = wrun(
            &[
                "submit",
                "--no-journal",
                GC_CONTENT,
                "--input",
                input.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(run.code, 3, "{name}: {}", run.stderr);
        assert_eq!(
            run.stderr,
            format!(
                "wrun: error: {}: {message} (format builtin:fastq)\n",
                input.display()
            )
        );
    }
}

#[test]
fn a_decompression_bomb_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of one byte: about 64 KiB compressed.
    let bomb = temp(dir.path(), "bomb.txt.gz", &gzip(&vec![b'A'; 64 << 20]));
    let input = bomb.to_str().unwrap();
    let base = [
        "submit",
        "--no-journal",
        TASK_PROBE,
        "--input",
        input,
        "--format",
        "lines",
    ];
    let run = wrun(
        &[&base[..], &["--max-ratio", "100", "--", "count"]].concat(),
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "wrun: error: {input}: cannot read the input: gzip: "
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("more than 100 times as much (--max-ratio)"),
        "{}",
        run.stderr
    );

    let run = wrun(
        &[&base[..], &["--max-inflated", "1MiB", "--", "count"]].concat(),
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("gzip: decompresses to more than 1.0 MiB (--max-inflated)"),
        "{}",
        run.stderr
    );

    // Under the caps it is just a big line. (Deflate expands at most about
    // 1032 times, which this input nearly reaches: past the default ratio.)
    let run = wrun(
        &[&base[..], &["--max-ratio", "2000", "--", "count"]].concat(),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), format!("records=1 bytes={}\n", 64 << 20));

    // Corrupt gzip data is an input error too.
    let mut corrupt = gzip(b"@r\nAC\n+\nII\n");
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let corrupt = temp(dir.path(), "corrupt.fq.gz", &corrupt);
    let run = wrun(
        &[
            "submit",
            "--no-journal",
            GC_CONTENT,
            "--input",
            corrupt.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot read the input: gzip: "),
        "{}",
        run.stderr
    );
}

/// `examples/revcomp-c`, built by the build script with clang.
fn revcomp_c() -> &'static str {
    c_guest(wrun_tests::REVCOMP_C)
}

/// A C guest the build script built with clang (`module`: its path, or
/// what was missing).
pub(crate) fn c_guest(module: &'static str) -> &'static str {
    assert!(
        !module.starts_with("missing"),
        "{module}: .ci/run installs clang, lld, wasi-libc and libclang-rt-14-dev-wasm32"
    );
    module
}

#[test]
fn a_task_written_in_c_matches_seqkit() {
    let module = revcomp_c();
    let run = wrun(&["inspect", module, "--json"], None);
    let info: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(info["kind"], "task");
    assert_eq!(info["name"], "revcomp-c");
    for path in [
        crate::support::sample().0,
        bowtie2("reference/lambda_virus.fa.gz"),
        bowtie2("scripts/test/big_data/reads/mouse_reads.fa"),
    ] {
        let output = Command::new("seqkit")
            .args(["seq", "-r", "-p", "-w", "0", "-t", "dna"])
            .arg(&path)
            .output()
            .expect("CI installs seqkit");
        let run = wrun(
            &[
                "submit",
                "--no-journal",
                module,
                "--input",
                path.to_str().unwrap(),
                "-j",
                "2",
            ],
            None,
        );
        assert_eq!(run.code, 0, "{}: {}", path.display(), run.stderr);
        assert!(
            run.stdout == output.stdout,
            "{} differs from seqkit",
            path.display()
        );
    }
    let run = wrun(&["submit", "--no-journal", module, "--", "extra"], None);
    assert_eq!(run.code, 16);
    assert!(
        run.stderr
            .ends_with("task rejected its arguments: revcomp-c takes no arguments\n"),
        "{}",
        run.stderr
    );
}

/// k-mer counts of a gzipped FASTQ file, single-threaded, natively: the
/// oracle for the map/reduce job.
fn native_kmer_counts(path: &Path, k: usize) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut text,
    )
    .unwrap();
    let mut counts = std::collections::BTreeMap::<&str, u64>::new();
    for sequence in text.lines().skip(1).step_by(4) {
        let bytes = sequence.as_bytes();
        let mut run = 0;
        for (i, base) in bytes.iter().enumerate() {
            run = if b"ACGT".contains(base) { run + 1 } else { 0 };
            if run >= k {
                *counts.entry(&sequence[i + 1 - k..=i]).or_default() += 1;
            }
        }
    }
    counts
        .iter()
        .map(|(kmer, n)| format!("{kmer}\t{n}\n"))
        .collect()
}

#[test]
fn kmer_count_reduced_by_kmer_merge_equals_a_native_count() {
    use crate::support::{KMER_COUNT, KMER_MERGE};
    let reads = bowtie2("reads/reads_2.fq.gz");
    let expected = native_kmer_counts(&reads, 9);
    for chunking in [&["-j", "1"][..], &["-j", "2", "--chunk-records", "300"]] {
        let mut args = vec!["submit", KMER_COUNT, "--input", reads.to_str().unwrap()];
        args.extend(chunking);
        args.extend(["--reduce", KMER_MERGE, "--", "9"]);
        let run = wrun(&args, None);
        assert_eq!(run.code, 0, "{chunking:?}: {}", run.stderr);
        assert!(
            run.stdout_text() == expected,
            "{chunking:?}: differs from the native count"
        );
    }
    // A reducer that fails fails the job with its exit code and message.
    let run = wrun(
        &[
            "submit",
            GC_CONTENT,
            "--input",
            reads.to_str().unwrap(),
            "--reduce",
            KMER_MERGE,
        ],
        None,
    );
    assert_eq!(run.code, 16, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "wrun: error: reduce {KMER_MERGE}: task rejected its input: not a `KMER\\tCOUNT` line"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn adaptive_chunking_follows_cost_over_records_of_1000x_lengths() {
    let dir = tempfile::tempdir().unwrap();
    // Reads of 100 bases and contigs of 100,000, mixed.
    let mut fasta = Vec::new();
    let mut state = 7u32;
    for i in 0..600 {
        let len = if i % 50 == 7 { 100_000 } else { 100 };
        fasta.extend_from_slice(format!(">seq{i}\n").as_bytes());
        for j in 0..len {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            fasta.push(b"ACGT"[(state >> 16) as usize % 4]);
            if j % 70 == 69 {
                fasta.push(b'\n');
            }
        }
        fasta.push(b'\n');
    }
    let input = temp(dir.path(), "mixed.fa", &fasta);
    let expected = seqkit_gc(&input);
    let home = tempfile::tempdir().unwrap();
    let args = [
        "submit",
        GC_CONTENT,
        "--input",
        input.to_str().unwrap(),
        "--chunking",
        "adaptive",
        "--target-task-time",
        "2ms",
    ];
    let run = crate::support::wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout_text() == expected, "differs from seqkit");
    // Chunks are not all one size: they follow the measured cost.
    let detail = crate::support::status_json(home.path(), Some("1"));
    let mut lens: Vec<u64> = detail["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["len"].as_u64().unwrap())
        .collect();
    lens.sort_unstable();
    assert!(lens.len() > 2 && lens[0] < lens[lens.len() - 1], "{lens:?}");
    assert_eq!(detail["spec"]["adaptive_ms"], 2);

    // Only tasks whose output does not depend on the cuts may use it.
    let run = wrun(
        &[
            "submit",
            crate::support::WC,
            "--input",
            input.to_str().unwrap(),
            "--chunking",
            "adaptive",
        ],
        None,
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.ends_with(
            "--chunking adaptive needs an SDK task of unit=record, whose output does not depend \
             on where chunks are cut; this is a WASI command, which sees whole chunks\n"
        ),
        "{}",
        run.stderr
    );
}

/// fasta3's example sequences (Debian package `fasta3`), their stop
/// markers (`*`) removed: scoring them is not standardised.
fn fasta3_sequences(names: &[&str]) -> String {
    let dir = Path::new("/usr/share/doc/fasta3/examples/seq");
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (.ci/run installs fasta3)", path.display()))
                .replace('*', "")
        })
        .collect()
}

/// The best local-alignment score of every (query, subject) pair, as
/// ssearch36 (exact Smith–Waterman) reports it with `-m 10`.
fn ssearch36_scores(flags: &[&str], queries: &Path, reference: &Path) -> Vec<String> {
    let output = Command::new("ssearch36")
        .args([
            "-q", "-m", "10", "-E", "1000000", "-b", "1000", "-d", "1000",
        ])
        .args(flags)
        .arg(queries)
        .arg(reference)
        .output()
        .expect("CI installs fasta3 (ssearch36)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (mut query, mut subject, mut first) = (String::new(), String::new(), false);
    let mut scores = Vec::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        if let Some(rest) = line.strip_prefix(">>>") {
            query = rest.split([',', ' ']).next().unwrap().to_owned();
        } else if let Some(rest) = line.strip_prefix(">>") {
            subject = rest.split(' ').next().unwrap().to_owned();
            first = true;
        } else if let Some(score) = line.strip_prefix("; sw_score: ")
            && std::mem::take(&mut first)
        {
            scores.push(format!("{query} {subject} {score}"));
        }
    }
    scores.sort();
    scores
}

#[test]
fn sw_search_scores_equal_ssearch36() {
    let dir = tempfile::tempdir().unwrap();
    let protein_queries = fasta3_sequences(&[
        "gtm1_human.aa",
        "mgstm1.aa",
        "dyr_human.aa",
        "hahu.aa",
        "lcbo.aa",
    ]);
    let protein_reference = fasta3_sequences(&[
        "gtt1_drome.aa",
        "h10_human.aa",
        "lcbo.aa",
        "mchu.aa",
        "egmsmg.aa",
        "gstt1_drome.aa",
    ]);
    let dna_queries = fasta3_sequences(&["mgstm1.nt", "gstm1b_human_fs.nt"]);
    let dna_reference = fasta3_sequences(&["gstm1b_human.nt", "mgstm1.nt"]);
    // BLOSUM62 with BLAST's gaps (a gap of k costs 11 + k), then DNA +5/-4
    // with gaps costing 12 + 4k: ssearch36 says the same with -f -11 -g -1
    // and -f -12 -g -4 (-3: the forward strand only, as sw-search).
    // The third case gives no --matrix: sw-search sees a DNA reference and
    // scores it as DNA, as ssearch36 does.
    let cases: [(&str, &str, &[&str], &[&str]); 3] = [
        (
            &protein_queries,
            &protein_reference,
            &[],
            &["-s", "BL62", "-f", "-11", "-g", "-1"],
        ),
        (
            &dna_queries,
            &dna_reference,
            &["--matrix", "dna", "--gap-open", "12", "--gap-extend", "4"],
            &["-n", "-3", "-f", "-12", "-g", "-4"],
        ),
        (
            &dna_queries,
            &dna_reference,
            &["--gap-open", "12", "--gap-extend", "4"],
            &["-n", "-3", "-f", "-12", "-g", "-4"],
        ),
    ];
    for (n, (queries, reference, options, ssearch_flags)) in cases.into_iter().enumerate() {
        // The last case gives the reference as text, the others as a
        // data file.
        let granted = n < 2;
        let case = Case {
            name: &format!("case {n}"),
            options,
            granted,
        };
        assert_sw_search_equals_ssearch36(dir.path(), &case, queries, reference, ssearch_flags);
    }
}

#[test]
fn sw_search_streams_a_reference_over_1_mib_as_ssearch36_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let query = fasta3_sequences(&["gtm1_human.aa"]);
    let proteins = fasta3_sequences(&["gtt1_drome.aa", "h10_human.aa", "lcbo.aa", "mchu.aa"]);
    let letters: Vec<u8> = proteins
        .lines()
        .filter(|line| !line.starts_with('>'))
        .flat_map(|line| line.trim().bytes())
        .collect();
    // 40 subjects of 30,000 residues, each a different rotation of the
    // proteins' letters: 1.2 MB of reference.
    let mut reference = String::new();
    for n in 0..40 {
        reference.push_str(&format!(">big{n} rotated by {}\n", n * 977));
        let residues: Vec<u8> = (0..30_000)
            .map(|i| letters[(i + n * 977) % letters.len()])
            .collect();
        for line in residues.chunks(60) {
            reference.push_str(std::str::from_utf8(line).unwrap());
            reference.push('\n');
        }
    }
    assert!(reference.len() > 1 << 20);
    let case = Case {
        name: "1.2 MB reference",
        options: &[],
        granted: true,
    };
    let flags = ["-s", "BL62", "-f", "-11", "-g", "-1"];
    assert_sw_search_equals_ssearch36(dir.path(), &case, &query, &reference, &flags);
}

/// One comparison of sw-search with ssearch36.
struct Case<'a> {
    name: &'a str,
    /// sw-search's options besides `--reference`.
    options: &'a [&'a str],
    /// The reference as a data file (`--data ref=... -- --reference ref`),
    /// else as the argument's text.
    granted: bool,
}

/// Run sw-search over `queries` against `reference` (one chunk per query)
/// and compare every (query, subject) score with ssearch36's under
/// `ssearch_flags`.
fn assert_sw_search_equals_ssearch36(
    dir: &Path,
    case: &Case<'_>,
    queries: &str,
    reference: &str,
    ssearch_flags: &[&str],
) {
    use crate::support::SW_SEARCH;
    let file = |name: &str| format!("{}-{name}", case.name.replace(' ', "-"));
    let queries = temp(dir, &file("queries.fa"), queries.as_bytes());
    let reference_path = temp(dir, &file("reference.fa"), reference.as_bytes());
    let grant = format!("ref={}", reference_path.display());
    let mut args = vec!["submit", "--no-journal", SW_SEARCH, "--input"];
    args.push(queries.to_str().unwrap());
    args.extend(["--chunk-records", "1"]);
    match case.granted {
        true => args.extend(["--data", &grant, "--", "--reference", "ref"]),
        false => args.extend(["--", "--reference", reference]),
    }
    args.extend(case.options);
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut ours: Vec<String> = run
        .stdout_text()
        .lines()
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            assert_eq!(columns.len(), 13, "{line}");
            // ssearch36 shows library (subject) NCBI `gi|N|`
            // identifiers without that prefix.
            let id = |id: &str| match id.strip_prefix("gi|") {
                Some(rest) => rest.split_once('|').map_or(rest, |(_, id)| id).to_owned(),
                None => id.to_owned(),
            };
            format!("{} {} {}", columns[0], id(columns[1]), columns[12])
        })
        .collect();
    ours.sort();
    let theirs = ssearch36_scores(ssearch_flags, &queries, &reference_path);
    assert!(ours.len() >= 4, "{ours:?}");
    assert_eq!(ours, theirs, "{}: scores differ from ssearch36", case.name);
}

#[test]
fn a_gzipped_job_shows_no_bogus_progress_and_keeps_its_output() {
    let home = tempfile::tempdir().unwrap();
    let reads = bowtie2("reads/reads_1.fq.gz");
    let args = ["submit", GC_CONTENT, "--input", reads.to_str().unwrap()];
    let run = crate::support::wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let job = &crate::support::status_json(home.path(), None)[0];
    assert_eq!(job["state"], "done");
    // The compressed size says nothing of the decompressed bytes' progress.
    assert_eq!(job["input_bytes"], serde_json::Value::Null, "{job}");
    assert_eq!(job["progress"], 1.0);
    let detail = crate::support::status_json(home.path(), Some("1"));
    assert_eq!(detail["spec"]["input"]["compressed"], true);
    let run = crate::support::wrun_in(home.path(), &["output", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout_text() == seqkit_gc(&reads));
}
