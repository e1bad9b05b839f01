//! Line endings: a file is read as its LF version (CRLF is fine) or, when
//! a carriage return ends no line (classic-Mac `\r`-only files, a stray
//! `\r`), refused with exit 3 naming the line: never silently wrong.

use std::path::Path;

use wrun_sdk::testing::{Rng, mix_line_endings};

use crate::support::{GC_CONTENT, wrun};

/// `records` FASTA records of random sequence with `\n` line endings.
fn fasta(rng: &mut Rng, records: usize) -> Vec<u8> {
    let mut text = Vec::new();
    for r in 0..records {
        text.extend_from_slice(format!(">m{r} desc\n").as_bytes());
        for _ in 0..rng.below(3) + 1 {
            let len = rng.below(70) + 1;
            text.extend((0..len).map(|_| b"ACGTacgtN"[rng.below(9) as usize]));
            text.push(b'\n');
        }
    }
    text
}

/// gc-content over `input`: exit code, output, stderr.
fn gc(input: &Path) -> (i32, Vec<u8>, String) {
    let run = wrun(
        &[
            "submit",
            "--no-journal",
            GC_CONTENT,
            "--input",
            input.to_str().unwrap(),
            "--chunk-records",
            "7",
        ],
        None,
    );
    (run.code, run.stdout, run.stderr)
}

#[test]
fn a_classic_mac_file_is_refused_naming_its_first_line() {
    // The field case: 1000 records, `\r` only; before, one output row and
    // exit 0 (every record lost without a word).
    let dir = tempfile::tempdir().unwrap();
    let lf = fasta(&mut Rng::new(1000), 1000);
    let cr: Vec<u8> = lf
        .iter()
        .map(|&b| if b == b'\n' { b'\r' } else { b })
        .collect();
    let input = dir.path().join("c04b_cr_only_1000.fa");
    std::fs::write(&input, cr).unwrap();
    let (code, output, stderr) = gc(&input);
    assert_eq!(code, 3, "{stderr}");
    assert!(output.is_empty());
    assert!(
        stderr.contains("line 1: a carriage return (\\r) that does not end a line")
            && stderr.contains("tr '\\r' '\\n'"),
        "{stderr}"
    );
    // Converted as the message says, the same file runs.
    std::fs::write(&input, &lf).unwrap();
    let (code, output, stderr) = gc(&input);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(output.iter().filter(|&&b| b == b'\n').count(), 1000);
}

#[test]
fn any_mix_of_line_endings_gives_the_lf_output_or_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x00e0_11fe);
    let (mut refused, mut read) = (0, 0);
    for case in 0..16 {
        let lf = fasta(&mut rng, 40);
        let plain = dir.path().join(format!("lf{case}.fa"));
        std::fs::write(&plain, &lf).unwrap();
        let (code, expected, stderr) = gc(&plain);
        assert_eq!(code, 0, "{stderr}");
        let (mixed, lone) = mix_line_endings(&lf, &mut rng, case % 2 == 1);
        let input = dir.path().join(format!("mixed{case}.fa"));
        std::fs::write(&input, &mixed).unwrap();
        let (code, output, stderr) = gc(&input);
        if lone {
            assert_eq!(code, 3, "case {case}: {stderr}");
            assert!(stderr.contains("a carriage return"), "{stderr}");
            refused += 1;
        } else {
            assert_eq!(code, 0, "case {case}: {stderr}");
            assert_eq!(output, expected, "case {case}");
            read += 1;
        }
    }
    assert!(refused > 0 && read > 0, "{refused} refused, {read} read");
}
