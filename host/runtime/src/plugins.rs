//! The splitter plugins built into the binary, and choosing one.
//!
//! `plugins/lines` and `plugins/fasta` are compiled to wasm by this crate's
//! build script and embedded; they run in the sandbox like any user plugin
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

/// Pick a builtin format for `--format auto`: the first format the task
/// declares that a builtin plugin splits, else the builtin whose declared
/// formats include the input's file extension, else [`DEFAULT_FORMAT`].
pub fn detect(task_formats: &[String], extension: Option<&str>) -> &'static str {
    let splits = |name: &str, format: &str| {
        name == format
            || builtin(name).is_some_and(|bytes| {
                crate::admission::declared_formats(bytes)
                    .iter()
                    .any(|f| f == format)
            })
    };
    let wanted = task_formats.iter().map(String::as_str).chain(extension);
    for format in wanted {
        let format = format.to_ascii_lowercase();
        if let Some(name) = names().find(|name| splits(name, &format)) {
            return name;
        }
    }
    DEFAULT_FORMAT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_embedded() {
        assert_eq!(names().collect::<Vec<_>>(), ["lines", "fasta"]);
        assert!(builtin("fasta").unwrap().starts_with(b"\0asm"));
        assert!(builtin("fastq").is_none());
    }

    #[test]
    fn detection_prefers_the_task_then_the_extension() {
        assert_eq!(detect(&["fasta".into()], Some("txt")), "fasta");
        assert_eq!(detect(&[], Some("FA")), "fasta");
        assert_eq!(detect(&[], Some("fna")), "fasta");
        assert_eq!(detect(&[], Some("tsv")), "lines");
        assert_eq!(detect(&["unknown".into()], None), "lines");
    }
}
