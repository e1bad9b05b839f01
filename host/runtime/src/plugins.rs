//! The splitter plugins built into the binary, and choosing one.
//!
//! `plugins/lines`, `plugins/fasta` and `plugins/fastq` are compiled to wasm
//! by this crate's build script and embedded; they run in the sandbox like any user plugin
//! (`--format plugin.wasm`).

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Names of the builtin formats.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

/// The wasm bytes of a builtin format's plugin.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// The source name a builtin plugin is admitted under (`builtin:fasta`).
pub fn source_name(name: &str) -> String {
    format!("builtin:{name}")
}

/// The format used when nothing else decides.
pub const DEFAULT_FORMAT: &str = "lines";

/// Pick a builtin format for `--format auto`: the builtin that splits the
/// input's file extension if the task accepts its format (or declares
/// none), else the first format the task declares that a builtin splits,
/// else the builtin for the extension, else [`DEFAULT_FORMAT`].
pub fn detect(task_formats: &[String], extension: Option<&str>) -> &'static str {
    let splits = |name: &str, format: &str| {
        name == format
            || builtin(name).is_some_and(|bytes| {
                crate::admission::declared_formats(bytes)
                    .iter()
                    .any(|f| f == format)
            })
    };
    let builtin_for = |format: &str| {
        let format = format.to_ascii_lowercase();
        names().find(|name| splits(name, &format))
    };
    let by_extension = extension.and_then(builtin_for);
    if let Some(name) = by_extension
        .filter(|name| task_formats.is_empty() || task_formats.iter().any(|f| f == name))
    {
        return name;
    }
    task_formats
        .iter()
        .find_map(|format| builtin_for(format))
        .or(by_extension)
        .unwrap_or(DEFAULT_FORMAT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_embedded() {
        assert_eq!(names().collect::<Vec<_>>(), ["lines", "fasta", "fastq"]);
        assert!(builtin("fasta").unwrap().starts_with(b"\0asm"));
        assert!(builtin("fastq").unwrap().starts_with(b"\0asm"));
        assert!(builtin("bam").is_none());
    }

    #[test]
    fn detection_prefers_the_task_then_the_extension() {
        assert_eq!(detect(&["fasta".into()], Some("txt")), "fasta");
        assert_eq!(detect(&[], Some("FA")), "fasta");
        assert_eq!(detect(&[], Some("fna")), "fasta");
        assert_eq!(detect(&[], Some("tsv")), "lines");
        assert_eq!(detect(&["unknown".into()], None), "lines");
        // A task of several formats gets the one the extension names.
        let both = ["fasta".to_owned(), "fastq".to_owned()];
        assert_eq!(detect(&both, Some("fq")), "fastq");
        assert_eq!(detect(&both, Some("fa")), "fasta");
        assert_eq!(detect(&both, None), "fasta");
        assert_eq!(detect(&["fasta".into()], Some("fq")), "fasta");
        assert_eq!(detect(&[], Some("fastq")), "fastq");
    }
}
