//! The artifact cache: a second run compiles nothing, damage is repaired by
//! recompiling, concurrent writers do not corrupt it.

use std::path::{Path, PathBuf};

use crate::support::{GC_CONTENT, sample, wrun_in};

fn submit_verbose(home: &Path) -> String {
    let (fasta, expected) = sample();
    let run = wrun_in(
        home,
        &[
            "submit",
            GC_CONTENT,
            "--input",
            fasta.to_str().unwrap(),
            "-v",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout_text(),
        expected,
        "the output is right whatever the cache held"
    );
    run.stderr
}

/// The `-v` line that says how the gc-content module was obtained.
fn origin_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with(&format!("wrun: {GC_CONTENT}: ")))
        .expect("-v reports the module's origin")
}

/// Every blob file in the store.
fn blobs(home: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    // The store removes directories it empties.
    let Ok(dirs) = std::fs::read_dir(home.join("blobs")) else {
        return files;
    };
    for dir in dirs {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files
}

/// Flip one byte in the middle of `file`.
fn corrupt(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}

fn artifact_of_gc_content(home: &Path) -> PathBuf {
    let ls = wrun_in(home, &["cache", "ls", "--json"], None);
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == GC_CONTENT)
        .expect("gc-content is cached");
    let artifact = row["artifact_size"].as_u64().unwrap();
    // The artifact is the blob of that size that is not a module.
    blobs(home)
        .into_iter()
        .find(|b| std::fs::metadata(b).unwrap().len() == artifact)
        .expect("artifact blob on disk")
}

#[test]
fn the_second_submit_compiles_nothing_and_ls_shows_the_entry() {
    let home = tempfile::tempdir().unwrap();
    assert!(origin_line(&submit_verbose(home.path())).contains(": compiled in "));
    let second = submit_verbose(home.path());
    assert!(origin_line(&second).contains(": cache hit in "), "{second}");
    assert!(
        second.contains("wrun: builtin:fasta: cache hit in "),
        "{second}"
    );

    let ls = wrun_in(home.path(), &["cache", "ls"], None);
    assert_eq!(ls.code, 0);
    let text = ls.stdout_text();
    assert!(
        text.contains(GC_CONTENT) && text.contains("builtin:fasta"),
        "{text}"
    );
    assert!(text.contains("\n2 artifacts, "), "{text}");
    let rows: serde_json::Value =
        serde_json::from_slice(&wrun_in(home.path(), &["cache", "ls", "--json"], None).stdout)
            .unwrap();
    let gc = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == GC_CONTENT)
        .unwrap();
    assert_eq!(gc["hits"], 1);
}

#[test]
fn a_corrupt_artifact_is_recompiled_and_the_result_stays_right() {
    let home = tempfile::tempdir().unwrap();
    submit_verbose(home.path());
    corrupt(&artifact_of_gc_content(home.path()));
    let after = submit_verbose(home.path());
    assert!(
        origin_line(&after)
            .contains("compiled (cached artifact discarded: the artifact is missing or corrupt)"),
        "{after}"
    );
    assert!(
        origin_line(&submit_verbose(home.path())).contains("cache hit"),
        "repaired"
    );

    let truncated = artifact_of_gc_content(home.path());
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert!(
        origin_line(&submit_verbose(home.path())).contains("compiled (cached artifact discarded")
    );
}

#[test]
fn damaged_module_blobs_and_index_entries_are_repaired() {
    let home = tempfile::tempdir().unwrap();
    submit_verbose(home.path());
    let artifact = artifact_of_gc_content(home.path());
    for blob in blobs(home.path()).into_iter().filter(|b| *b != artifact) {
        corrupt(&blob);
    }
    for entry in std::fs::read_dir(home.path().join("entries/artifacts")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"{ not json").unwrap();
    }
    let after = submit_verbose(home.path());
    assert!(
        origin_line(&after).contains("its index entry is unreadable"),
        "{after}"
    );
    assert!(origin_line(&submit_verbose(home.path())).contains("cache hit"));
}

#[test]
fn concurrent_writers_leave_a_valid_cache() {
    let home = tempfile::tempdir().unwrap();
    // Four processes compile the same module into the same cache at once;
    // each wait is bounded by `wrun_in`.
    std::thread::scope(|scope| {
        let compiles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| wrun_in(home.path(), &["compile", GC_CONTENT], None)))
            .collect();
        for compile in compiles {
            let run = compile.join().unwrap();
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
    });
    assert!(origin_line(&submit_verbose(home.path())).contains("cache hit"));
    let ls = wrun_in(home.path(), &["cache", "ls", "--json"], None);
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["source"] == GC_CONTENT)
            .count(),
        1
    );
}

#[test]
fn gc_and_clear_empty_the_cache() {
    let home = tempfile::tempdir().unwrap();
    submit_verbose(home.path());
    let gc = wrun_in(home.path(), &["cache", "gc", "--max-age", "1h"], None);
    assert_eq!(
        gc.stdout_text().lines().next(),
        Some("removed 0 artifacts, 0 B")
    );
    let gc = wrun_in(home.path(), &["cache", "gc", "--max-size", "0"], None);
    assert!(
        gc.stdout_text().starts_with("removed 2 artifacts, "),
        "{}",
        gc.stdout_text()
    );
    assert!(
        blobs(home.path()).is_empty(),
        "artifacts and modules are gone"
    );
    submit_verbose(home.path());
    let clear = wrun_in(home.path(), &["cache", "clear"], None);
    assert_eq!(clear.code, 0);
    assert!(origin_line(&submit_verbose(home.path())).contains(": compiled in "));
}
