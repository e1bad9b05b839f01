//! Compressed outputs and inputs sized by what they inflate to: `-o
//! FILE.gz` is BGZF and `-o FILE.zst` zstd, each decompressing to exactly
//! the plain output, after `wrun output` and after a kill and a resume
//! too; a gzipped input is cut into about as many chunks as the plain one.

use std::io::Read;
use std::path::Path;

use wrun_sdk::testing::Rng;

use crate::compression::{fasta, gzip};
use crate::journal::{kill_after, reference, work_args, work_input};
use crate::support::{GC_CONTENT, sample, status_json, wrun_in};

/// BGZF's end-of-file block (the SAM/BAM specification, §4.1.2).
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, b'B', b'C', 0x02, 0, 0x1b, 0, 0x03, 0, 0,
    0, 0, 0, 0, 0, 0, 0,
];

/// The whole decompressed content of `file`, named `name`.
fn decompress(name: &str, file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(file)
            .read_to_end(&mut out)
            .unwrap();
    } else if name.ends_with(".zst") {
        out = zstd::decode_all(file).unwrap();
    } else {
        out = file.to_vec();
    }
    out
}

/// What the whole units (gzip members, zstd frames) at the start of
/// `file` decompress to, up to the first that is cut short.
fn whole_units(name: &str, mut file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !file.is_empty() {
        let mut unit = Vec::new();
        let read = match name.ends_with(".gz") {
            true => flate2::bufread::GzDecoder::new(&mut file).read_to_end(&mut unit),
            false => zstd::stream::read::Decoder::with_buffer(&mut file)
                .unwrap()
                .single_frame()
                .read_to_end(&mut unit),
        };
        if read.is_err() {
            break;
        }
        out.extend(unit);
    }
    out
}

/// A BGZF file: its first block names itself (`BC`, RFC 1952's extra
/// field), and it ends with the end-of-file block.
fn assert_bgzf(file: &[u8]) {
    assert_eq!(&file[..4], &[0x1f, 0x8b, 0x08, 0x04], "gzip with FEXTRA");
    assert_eq!(&file[12..14], b"BC", "a BGZF block");
    assert!(file.ends_with(&BGZF_EOF), "ends with the BGZF EOF block");
}

#[test]
fn every_output_codec_decompresses_to_the_plain_output() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (fasta, expected) = sample();
    for (job, name) in ["out.tsv", "out.gz", "out.zst"].into_iter().enumerate() {
        let out = dir.path().join(name);
        let run = wrun_in(
            home.path(),
            &[
                "submit",
                GC_CONTENT,
                "--input",
                fasta.to_str().unwrap(),
                "--chunk-records",
                "7",
                "-o",
                out.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let file = std::fs::read(&out).unwrap();
        assert_eq!(decompress(name, &file), expected.as_bytes(), "{name}");
        if name.ends_with(".gz") {
            assert_bgzf(&file);
        }
        // `wrun output` writes the same, compressed as its -o says.
        for again in ["again.gz", "again.zst", "again.tsv"] {
            let path = dir.path().join(again);
            let job = (job + 1).to_string();
            let run = wrun_in(
                home.path(),
                &["output", &job, "-o", path.to_str().unwrap()],
                None,
            );
            assert_eq!(run.code, 0, "output {job} -o {again}: {}", run.stderr);
            let file = std::fs::read(&path).unwrap();
            assert_eq!(decompress(again, &file), expected.as_bytes(), "{again}");
            if again.ends_with(".gz") {
                assert_bgzf(&file);
            }
        }
    }
}

#[test]
fn a_killed_job_with_a_compressed_output_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    let expected = reference(&input, dir.path());
    let lines_per_chunk = expected.iter().filter(|&&b| b == b'\n').count() / 150;
    for name in ["out.gz", "out.zst"] {
        let home = tempfile::tempdir().unwrap();
        let out = dir.path().join(name);
        kill_after(home.path(), &work_args(&input, &out), 100);
        // What the killed run left: whole chunks, then perhaps a unit cut
        // short.
        let left = whole_units(name, &std::fs::read(&out).unwrap());
        assert!(expected.starts_with(&left), "{name}: not a prefix");
        let lines = left.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(lines % lines_per_chunk, 0, "{name}: not whole chunks");

        let run = wrun_in(home.path(), &["resume", "1"], None);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let file = std::fs::read(&out).unwrap();
        assert_eq!(decompress(name, &file), expected, "{name}");
        if name.ends_with(".gz") {
            assert_bgzf(&file);
        }
        if !left.is_empty() {
            assert!(
                run.stderr.contains("kept, and appended to"),
                "{name}: {}",
                run.stderr
            );
        }
    }
}

/// Chunks of a job over `input`, automatically sized for 2 workers:
/// `tasks_total` in `wrun status --json`.
fn auto_chunks(input: &Path) -> u64 {
    let home = tempfile::tempdir().unwrap();
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            GC_CONTENT,
            "--input",
            input.to_str().unwrap(),
            "-j",
            "2",
            "-o",
            "/dev/null",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let jobs = status_json(home.path(), None);
    jobs[0]["tasks_total"].as_u64().expect("tasks_total")
}

#[test]
fn a_gzipped_input_gets_about_as_many_chunks_as_the_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x5e1f);
    // Below and above the 4 MiB that are decompressed to estimate the
    // inflated size: exact, then estimated from the ratio.
    for records in [15_000, 45_000] {
        let plain = fasta(&mut rng, records);
        let plain_path = dir.path().join(format!("{records}.fa"));
        let gz_path = dir.path().join(format!("{records}.fa.gz"));
        std::fs::write(&plain_path, &plain).unwrap();
        std::fs::write(&gz_path, gzip(&plain)).unwrap();
        let plain_chunks = auto_chunks(&plain_path);
        let gz_chunks = auto_chunks(&gz_path);
        assert!(plain_chunks >= 16, "{records}: {plain_chunks} plain chunks");
        assert!(
            gz_chunks * 2 >= plain_chunks && gz_chunks <= plain_chunks * 2,
            "{records} records ({} bytes): {gz_chunks} chunks gzipped, {plain_chunks} plain",
            plain.len()
        );
    }
}
