//! The FASTA splitter: block-size independent, and every record starts with
//! a '>' that begins a line.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "split_common.rs"]
mod split_common;

fuzz_target!(|data: &[u8]| {
    let Some(starts) = split_common::consistent_starts::<wrun_plugin_fasta::Fasta>(data) else {
        return;
    };
    let input = &data[1..];
    for &start in &starts {
        assert_eq!(input[start], b'>', "a record starts with '>'");
        assert!(start == 0 || input[start - 1] == b'\n', "'>' begins a line");
    }
    // Every line-initial '>' after the first record starts one.
    if let Some(&first) = starts.first() {
        let expected = (first..input.len())
            .filter(|&i| input[i] == b'>' && (i == 0 || input[i - 1] == b'\n'))
            .count();
        assert_eq!(starts.len(), expected);
    }
});
