//! The `wrun` metadata section parser never panics, and what it accepts is
//! consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wrun_abi::Metadata;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = Metadata::parse(data) {
        let text = std::str::from_utf8(data).expect("accepted sections are UTF-8");
        // Keys may carry surrounding whitespace; both required ones appear.
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .map(|(k, _)| k.trim())
            .collect();
        assert!(
            keys.contains(&"abi") && keys.contains(&"kind"),
            "abi and kind are required"
        );
        for format in meta.formats() {
            assert!(!format.is_empty() && format.trim() == format);
        }
        assert_eq!(Metadata::parse(data), Ok(meta), "parsing is deterministic");
    }
});
