//! `-o` can never destroy what the job reads: the input (by name, through
//! a symlink or a hard link), a module or plugin file, wrun's own data
//! directory; and a directory is named as such. Each is refused (exit 2)
//! before anything is opened for writing.

use std::path::Path;

use crate::support::{GC_CONTENT, sample, wrun_in};

/// Submit gc-content over `input` with `-o output` from `home`: exit code
/// and stderr.
fn submit(home: &Path, input: &Path, output: &Path) -> (i32, String) {
    let run = wrun_in(
        home,
        &[
            "submit",
            GC_CONTENT,
            "--input",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
        None,
    );
    (run.code, run.stderr)
}

#[test]
fn an_output_that_is_an_input_a_module_or_wrun_home_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (fasta, _) = sample();
    let input = dir.path().join("reads.fa");
    std::fs::copy(&fasta, &input).unwrap();
    let original = std::fs::read(&input).unwrap();
    let symlink = dir.path().join("link.fa");
    std::os::unix::fs::symlink(&input, &symlink).unwrap();
    let hard = dir.path().join("hard.fa");
    std::fs::hard_link(&input, &hard).unwrap();
    let module = dir.path().join("task.wasm");
    std::fs::copy(GC_CONTENT, &module).unwrap();
    let module_bytes = std::fs::read(&module).unwrap();

    for (output, says) in [
        (input.clone(), "which this job reads"),
        (symlink.clone(), "through a link"),
        (hard.clone(), "through a link"),
        (home.join("journal.db"), "inside wrun's data directory"),
        (home.join("new.tsv"), "inside wrun's data directory"),
        (dir.path().to_path_buf(), "is a directory"),
    ] {
        let (code, stderr) = submit(&home, &input, &output);
        assert_eq!(code, 2, "-o {}: {stderr}", output.display());
        assert!(stderr.contains(says), "-o {}: {stderr}", output.display());
        assert_eq!(std::fs::read(&input).unwrap(), original);
    }
    // The module file itself.
    let run = wrun_in(
        &home,
        &[
            "submit",
            module.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "-o",
            module.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(std::fs::read(&module).unwrap(), module_bytes);
    // A trailing slash names a directory, even one that does not exist.
    let (code, stderr) = submit(&home, &input, &dir.path().join("out/"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    // Nothing was recorded, and a proper output works.
    let (code, stderr) = submit(&home, &input, &dir.path().join("gc.tsv"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.is_empty() || !stderr.contains("resuming"),
        "{stderr}"
    );
}
