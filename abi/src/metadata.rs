//! The `wrun` custom section: what a module is, readable without running it.
//!
//! The section is UTF-8 text, one `key=value` pair per line:
//!
//! ```text
//! abi=1
//! kind=task
//! name=gc-content
//! version=0.1.0
//! formats=fasta
//! unit=record
//! ```
//!
//! `abi` and `kind` are required. `formats` is a comma-separated list: for a
//! splitter, the formats (and file extensions) it splits; for a task, the
//! input formats it expects, which lets the host pick a splitter. `unit`
//! (tasks only) is `record` (default) or `chunk`. Unknown keys are ignored so
//! that later minor additions do not break older hosts.

use core::fmt;

/// What kind of module a guest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An SDK task, driven record by record through the `wrun_*` exports.
    Task,
    /// A data plugin that finds record boundaries.
    Splitter,
    /// A WASI command (`_start`); never declared in a section, detected by
    /// its exports.
    Command,
}

impl Kind {
    /// The name used in metadata and in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Task => "task",
            Kind::Splitter => "splitter",
            Kind::Command => "command",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a task receives its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// One `wrun_record` call per record.
    #[default]
    Record,
    /// One `wrun_record` call with the whole chunk.
    Chunk,
}

impl Unit {
    /// The name used in metadata and in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Record => "record",
            Unit::Chunk => "chunk",
        }
    }
}

/// The decoded contents of a `wrun` custom section, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata<'a> {
    /// ABI version the module was built against.
    pub abi: u32,
    /// Task or splitter.
    pub kind: Kind,
    /// Human-readable name (usually the crate name); may be empty.
    pub name: &'a str,
    /// Version of the module (usually the crate version); may be empty.
    pub version: &'a str,
    /// Comma-separated format names; may be empty.
    pub formats: &'a str,
    /// Tasks: how input is delivered.
    pub unit: Unit,
}

/// Why a `wrun` section could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// The section is not UTF-8.
    NotUtf8,
    /// A non-empty line has no `=`.
    MalformedLine { line: usize },
    /// A required key is absent.
    Missing { key: &'static str },
    /// A key appears twice.
    Duplicate { line: usize },
    /// A value is not one this ABI knows.
    InvalidValue { key: &'static str, line: usize },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::NotUtf8 => write!(f, "the `wrun` section is not UTF-8"),
            MetadataError::MalformedLine { line } => {
                write!(f, "line {line} of the `wrun` section is not `key=value`")
            }
            MetadataError::Missing { key } => {
                write!(f, "the `wrun` section has no `{key}` key")
            }
            MetadataError::Duplicate { line } => {
                write!(f, "line {line} of the `wrun` section repeats a key")
            }
            MetadataError::InvalidValue { key, line } => {
                write!(
                    f,
                    "line {line} of the `wrun` section: invalid `{key}` value"
                )
            }
        }
    }
}

impl core::error::Error for MetadataError {}

impl<'a> Metadata<'a> {
    /// Decode a section's bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MetadataError> {
        let text = core::str::from_utf8(bytes).map_err(|_| MetadataError::NotUtf8)?;
        let mut abi = None;
        let mut kind = None;
        let mut name = None;
        let mut version = None;
        let mut formats = None;
        let mut unit = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let (key, value) = raw
                .split_once('=')
                .ok_or(MetadataError::MalformedLine { line })?;
            let value = value.trim();
            let invalid = |key| MetadataError::InvalidValue { key, line };
            match key.trim() {
                "abi" => set(&mut abi, value.parse().map_err(|_| invalid("abi"))?, line)?,
                "kind" => {
                    let parsed = match value {
                        "task" => Kind::Task,
                        "splitter" => Kind::Splitter,
                        _ => return Err(invalid("kind")),
                    };
                    set(&mut kind, parsed, line)?
                }
                "unit" => {
                    let parsed = match value {
                        "record" => Unit::Record,
                        "chunk" => Unit::Chunk,
                        _ => return Err(invalid("unit")),
                    };
                    set(&mut unit, parsed, line)?
                }
                "name" => set(&mut name, value, line)?,
                "version" => set(&mut version, value, line)?,
                "formats" => set(&mut formats, value, line)?,
                _ => {}
            }
        }
        Ok(Metadata {
            abi: abi.ok_or(MetadataError::Missing { key: "abi" })?,
            kind: kind.ok_or(MetadataError::Missing { key: "kind" })?,
            name: name.unwrap_or(""),
            version: version.unwrap_or(""),
            formats: formats.unwrap_or(""),
            unit: unit.unwrap_or_default(),
        })
    }

    /// The declared formats, trimmed, without empty entries.
    pub fn formats(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.formats
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
    }
}

fn set<T>(slot: &mut Option<T>, value: T, line: usize) -> Result<(), MetadataError> {
    if slot.replace(value).is_some() {
        return Err(MetadataError::Duplicate { line });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_section() {
        let m = Metadata::parse(
            b"abi=1\nkind=task\nname=gc\nversion=0.1.0\nformats=fasta, fa\nunit=chunk\nfuture=x\n",
        )
        .unwrap();
        assert_eq!(m.abi, 1);
        assert_eq!(m.kind, Kind::Task);
        assert_eq!(m.name, "gc");
        assert_eq!(m.unit, Unit::Chunk);
        let mut formats = m.formats();
        assert_eq!(formats.next(), Some("fasta"));
        assert_eq!(formats.next(), Some("fa"));
        assert_eq!(formats.next(), None);
    }

    #[test]
    fn defaults_and_errors() {
        let m = Metadata::parse(b"abi=1\r\nkind=splitter").unwrap();
        assert_eq!((m.kind, m.unit, m.name), (Kind::Splitter, Unit::Record, ""));
        assert_eq!(
            Metadata::parse(b"kind=task"),
            Err(MetadataError::Missing { key: "abi" })
        );
        assert_eq!(
            Metadata::parse(b"abi=1\nkind=robot"),
            Err(MetadataError::InvalidValue {
                key: "kind",
                line: 2
            })
        );
        assert_eq!(
            Metadata::parse(b"abi=1\nabi=1"),
            Err(MetadataError::Duplicate { line: 2 })
        );
        assert_eq!(
            Metadata::parse(b"abi=1\njunk"),
            Err(MetadataError::MalformedLine { line: 2 })
        );
        assert_eq!(Metadata::parse(&[0xff]), Err(MetadataError::NotUtf8));
    }
}
