//! An output path is checked before anything is opened for writing: it may
//! not be a file the job reads (its input, task module, splitter plugin or
//! reducer, compared by device and inode, so a symlink or a hard link to
//! one is caught), a path inside wrun's own data directory, or a
//! directory; an S3 object (`s3://BUCKET/KEY`) may not be the job's input
//! object.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use wrun_store::object;

use crate::error::{Error, ErrorKind, Result};
use crate::home::Home;

/// Refuse `output` if writing it could destroy one of `reads` (the files
/// the job reads, by the names the user gave them) or wrun's data in
/// `home`.
///
/// # Errors
///
/// [`ErrorKind::Usage`] naming the output and what it would destroy.
pub fn check_output(output: &Path, reads: &[&Path], home: &Home) -> Result<()> {
    let name = output.display();
    let refuse = |why: String| Err(Error::new(ErrorKind::Usage, format!("-o {name}: {why}")));
    if output.to_str().is_some_and(object::is_url) {
        if reads.contains(&output) {
            return refuse(
                "is the input object, which this job reads: choose another output key".into(),
            );
        }
        return Ok(());
    }
    if output.as_os_str().as_encoded_bytes().ends_with(b"/") || output.is_dir() {
        return refuse(
            "is a directory; -o takes the path of the file to write (e.g. DIR/out.tsv)".into(),
        );
    }
    if let Ok(written) = std::fs::metadata(output) {
        for read in reads {
            let same = std::fs::metadata(read)
                .is_ok_and(|r| (r.dev(), r.ino()) == (written.dev(), written.ino()));
            if same {
                return refuse(format!(
                    "is {} (the same file{}), which this job reads: writing it would destroy \
                     it; choose another output file",
                    read.display(),
                    if *read == output {
                        ""
                    } else {
                        ", through a link"
                    }
                ));
            }
        }
    }
    if let (Some(inside), Some(root)) = (resolved(output), resolved(home.root()))
        && inside.starts_with(&root)
    {
        return refuse(format!(
            "is inside wrun's data directory {} (journal, store, locks); choose a file \
             elsewhere",
            home.root().display()
        ));
    }
    Ok(())
}

/// `path` with its directory's symlinks resolved (the file itself may not
/// exist yet).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(real) = path.canonicalize() {
        return Some(real);
    }
    let absolute = std::path::absolute(path).ok()?;
    let parent = absolute.parent()?.canonicalize().ok()?;
    Some(parent.join(absolute.file_name()?))
}
