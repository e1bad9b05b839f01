//! The lines splitter: block-size independent, and records start at 0 and
//! after every newline.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "split_common.rs"]
mod split_common;

fuzz_target!(|data: &[u8]| {
    let Some(starts) = split_common::consistent_starts::<wrun_plugin_lines::Lines>(data) else {
        return;
    };
    let input = &data[1..];
    let expected: Vec<usize> = std::iter::once(0)
        .chain(
            input
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|&s| s < input.len())
        .collect();
    assert_eq!(starts, expected);
});
