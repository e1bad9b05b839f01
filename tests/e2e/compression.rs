//! Compressed inputs as seqkit reads them: gzip (several members, zero
//! padding, trailing bytes ignored with a warning as `gzip -d` does),
//! bzip2, xz and zstd, by their magic bytes; a compression wrun does not
//! read is named; a damaged input says so instead of promising a resume.

use std::io::Write;
use std::path::Path;

use wrun_sdk::testing::Rng;

use crate::support::{GC_CONTENT, wrun};

/// Random FASTA of `records` records.
pub(crate) fn fasta(rng: &mut Rng, records: usize) -> Vec<u8> {
    let mut text = Vec::new();
    for r in 0..records {
        text.extend_from_slice(format!(">s{r}\n").as_bytes());
        let len = rng.below(300) + 1;
        text.extend((0..len).map(|_| b"ACGTN"[rng.below(5) as usize]));
        text.push(b'\n');
    }
    text
}

/// A compressor: plain bytes in, one compressed stream out.
type Compress = fn(&[u8]) -> Vec<u8>;

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// gc-content over `input`: exit code, output, stderr.
fn gc(input: &Path) -> (i32, Vec<u8>, String) {
    let run = wrun(
        &[
            "submit",
            GC_CONTENT,
            "--input",
            input.to_str().unwrap(),
            "--chunk-records",
            "50",
        ],
        None,
    );
    (run.code, run.stdout, run.stderr)
}

#[test]
fn every_codec_in_frames_cut_anywhere_gives_the_plain_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0xc0de);
    let plain = fasta(&mut rng, 2000);
    let plain_path = dir.path().join("plain.fa");
    std::fs::write(&plain_path, &plain).unwrap();
    let (code, expected, stderr) = gc(&plain_path);
    assert_eq!(code, 0, "{stderr}");
    let codecs: [(&str, Compress); 4] = [("gz", gzip), ("bz2", bzip2), ("xz", xz), ("zst", zstd)];
    for (extension, compress) in codecs {
        for case in 0..3 {
            // Cut the input at random points (mid-record too) and compress
            // each piece on its own: members, streams or frames end to end.
            let mut cuts: Vec<usize> = (0..case * 3)
                .map(|_| rng.below(plain.len() as u64) as usize)
                .collect();
            cuts.extend([0, plain.len()]);
            cuts.sort_unstable();
            let stream: Vec<u8> = cuts
                .windows(2)
                .flat_map(|w| compress(&plain[w[0]..w[1]]))
                .collect();
            let input = dir.path().join(format!("in{case}.fa.{extension}"));
            std::fs::write(&input, stream).unwrap();
            let (code, output, stderr) = gc(&input);
            assert_eq!(code, 0, "{extension} case {case}: {stderr}");
            assert_eq!(output, expected, "{extension} case {case}");
            assert!(stderr.is_empty(), "{extension}: {stderr}");
        }
    }
}

#[test]
fn gzip_trailing_bytes_are_ignored_with_a_warning_and_zero_padding_silently() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fasta(&mut Rng::new(4000), 4000);
    let (_, expected, _) = {
        let path = dir.path().join("plain.fa");
        std::fs::write(&path, &plain).unwrap();
        gc(&path)
    };
    // The field case: a complete member followed by a few stray bytes.
    let mut garbage = gzip(&plain);
    garbage.extend(b"\x0a\x1a junk");
    let input = dir.path().join("c21d_trailing_garbage.fa.gz");
    std::fs::write(&input, garbage).unwrap();
    let (code, output, stderr) = gc(&input);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(output, expected);
    assert_eq!(output.iter().filter(|&&b| b == b'\n').count(), 4000);
    assert!(
        stderr.contains("warning") && stderr.contains("bytes after the last gzip member"),
        "{stderr}"
    );
    let mut padded = gzip(&plain);
    padded.extend([0; 1000]);
    std::fs::write(&input, padded).unwrap();
    let (code, output, stderr) = gc(&input);
    assert_eq!((code, output == expected), (0, true), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_truncated_input_says_it_is_damaged_and_promises_no_resume() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fasta(&mut Rng::new(21), 4000);
    let whole = gzip(&plain);
    let input = dir.path().join("c21_truncated.fa.gz");
    std::fs::write(&input, &whole[..whole.len() / 2]).unwrap();
    let (code, _, stderr) = gc(&input);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("the input itself is damaged"), "{stderr}");
    assert!(!stderr.contains("wrun resume"), "{stderr}");
}

#[test]
fn a_compression_wrun_does_not_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("reads.fa.lz4");
    std::fs::write(&input, [0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]).unwrap();
    let (code, _, stderr) = gc(&input);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("is lz4-compressed, which wrun does not read"),
        "{stderr}"
    );
}
