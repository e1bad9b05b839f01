//! Reference data: the files a job grants its tasks with `wrun submit
//! --data NAME=PATH`, read-only at `/data/NAME` (a WASI preopened
//! directory; nothing else of the host is visible, and nothing there can
//! be written).
//!
//! ```no_run
//! use std::io::{BufRead, BufReader};
//!
//! # fn main() -> wrun_sdk::Result<()> {
//! // In `Task::init` (or a first `record`): stream the reference, line
//! // by line, without holding it whole.
//! let reference = BufReader::new(wrun_sdk::data::open("ref")?);
//! for line in reference.lines() {
//!     let _line = line.map_err(|e| wrun_sdk::Error::failed(e.to_string()))?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A file stays open only within one call into the task: a snapshot
//! (`--checkpoint-every`) holds the task's memory, not its open files, so
//! open, read and close it in the same call.
//!
//! Native tests (`crate::testing`) read the directory named by the
//! environment variable `WRUN_DATA` instead of `/data`.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where the data files are: `/data` in wrun; in a native test,
/// `$WRUN_DATA` when set.
pub fn dir() -> PathBuf {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(dir) = std::env::var_os("WRUN_DATA") {
        return PathBuf::from(dir);
    }
    PathBuf::from("/data")
}

/// Open the data file `name` for reading.
///
/// # Errors
///
/// A [`crate::ErrorKind::BadArgs`] error naming the file when the job was
/// granted no such file (`--data NAME=PATH` missing), or it cannot be
/// opened.
pub fn open(name: &str) -> Result<std::fs::File> {
    let path = dir().join(name);
    std::fs::File::open(&path).map_err(|e| {
        Error::bad_args(format!(
            "cannot open the data file {name} ({}): {e}; grant it with `wrun submit --data \
             {name}=PATH`",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn a_missing_file_is_named_with_how_to_grant_it() {
        let error = super::open("no-such-reference").unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::BadArgs);
        assert!(
            error.message().contains("--data no-such-reference=PATH"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn native_tests_read_wrun_data() {
        let dir = std::env::temp_dir().join(format!("wrun-sdk-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ref"), b"ACGT").unwrap();
        // SAFETY: no other test of this crate reads the environment.
        unsafe { std::env::set_var("WRUN_DATA", &dir) };
        let mut text = String::new();
        super::open("ref")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        // SAFETY: as above.
        unsafe { std::env::remove_var("WRUN_DATA") };
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(text, "ACGT");
    }
}
