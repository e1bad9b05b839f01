//! Admission-time rewrite that makes every mutable global of a core module
//! reachable from the host.
//!
//! A snapshot of a wasm instance has to capture all of its mutable state:
//! memories, tables and every mutable global. Wasmtime only hands out
//! [`Global`](https://docs.rs/wasmtime/latest/wasmtime/struct.Global.html)
//! handles for exported globals, yet toolchains routinely keep state in
//! globals they never export (the Rust/LLVM `__stack_pointer` is the usual
//! example). A snapshot that missed such a global would restore memory with a
//! stale stack pointer and corrupt the guest.
//!
//! So before a module is compiled the host adds an export named
//! `wrun:global:{index}` for every mutable global that has no export yet, and
//! records under which name each mutable global can be read. The rewrite is
//! deliberately minimal: every section except the export section is copied
//! byte for byte, existing exports are copied verbatim, and a module that
//! needs no new export is returned untouched so that its digest is stable.
//!
//! Only the section framing, imports, globals and exports are parsed here;
//! full validation is left to wasmtime when the rewritten module is compiled.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use wasmtime::wasmparser::{self, Encoding, ExternalKind, Parser, Payload, TypeRef};
use wrun_store::Digest;

/// Section id of the export section.
const EXPORT_SECTION_ID: u8 = 7;
/// Export kind byte for globals.
const GLOBAL_EXPORT_KIND: u8 = 0x03;
/// Prefix of the export names added by [`export_mutable_globals`].
pub(crate) const EXPORT_PREFIX: &str = "wrun:global:";

/// Mixed into the digest of a module to name its rewritten form in the
/// artifact cache; a change to the rewrite, or to what the cache keeps
/// beside it, changes it (v2: the entry lists the globals, and every task
/// is keyed so, rewritten or not).
const CACHE_DOMAIN: &[u8] = b"wrun: mutable globals exported, v2";

/// The artifact-cache key of a task whose digest is `digest`: its
/// rewritten form's, whether or not the rewrite changed anything (so the
/// key is known before the module is parsed).
pub(crate) fn cache_key(digest: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(CACHE_DOMAIN);
    hasher.update(digest.as_bytes());
    Digest::from_bytes(*hasher.finalize().as_bytes())
}

/// One mutable global of the module, in global index order (imported globals
/// included if mutable).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MutableGlobal {
    /// Index in the module's global index space (imports first).
    pub(crate) index: u32,
    /// The export name to read it through.
    pub(crate) export: String,
}

/// Why a module could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RewriteError {
    /// The bytes are not a well-formed wasm binary.
    #[error("malformed wasm module: {0}")]
    Malformed(#[from] wasmparser::BinaryReaderError),
    /// The bytes are a component; only core modules carry globals directly.
    #[error("expected a core wasm module, found a component")]
    Component,
    /// The name we would add is already used by a different export, and
    /// export names must be unique.
    #[error(
        "cannot export mutable global {index} as `{name}`: the module already exports something else under that name"
    )]
    NameCollision {
        /// The global that needed an export.
        index: u32,
        /// The name that is already taken.
        name: String,
    },
    /// A count or size of the rewritten module does not fit the u32 fields of
    /// the binary format.
    #[error("module exceeds the limits of the wasm binary format")]
    TooLarge,
}

/// Returns the module bytes with an export `wrun:global:{index}` added for
/// each mutable global that has no export yet, and the list of all mutable
/// globals with the name each is reachable by.
///
/// Existing exports of mutable globals are reused (the first one wins). If
/// nothing has to be added the input is returned as [`Cow::Borrowed`].
/// Otherwise only the export section is re-encoded (existing entries copied
/// byte for byte, new entries appended), or inserted after the last section
/// that must precede it when the module has none.
pub(crate) fn export_mutable_globals(
    bytes: &[u8],
) -> Result<(Cow<'_, [u8]>, Vec<MutableGlobal>), RewriteError> {
    let layout = Layout::parse(bytes)?;

    let mut exported: HashMap<u32, &str> = HashMap::new();
    let mut taken: HashSet<&str> = HashSet::new();
    for export in &layout.exports {
        taken.insert(export.name);
        if export.kind == ExternalKind::Global {
            exported.entry(export.index).or_insert(export.name);
        }
    }

    let mut globals = Vec::with_capacity(layout.mutable_globals.len());
    // Positions in `globals` of the entries that need a new export.
    let mut added = Vec::new();
    for &index in &layout.mutable_globals {
        let export = match exported.get(&index) {
            Some(name) => (*name).to_owned(),
            None => {
                let name = format!("{EXPORT_PREFIX}{index}");
                if taken.contains(name.as_str()) {
                    return Err(RewriteError::NameCollision { index, name });
                }
                added.push(globals.len());
                name
            }
        };
        globals.push(MutableGlobal { index, export });
    }

    if added.is_empty() {
        return Ok((Cow::Borrowed(bytes), globals));
    }
    let section = layout.export_section(bytes, added.iter().map(|&i| &globals[i]))?;

    let mut out = Vec::with_capacity(bytes.len() + section.len());
    out.extend_from_slice(&bytes[..layout.header_end]);
    let insert_at = match layout.export_index {
        Some(index) => index,
        None => layout
            .sections
            .iter()
            .rposition(|s| precedes_export(s.id))
            .map_or(0, |i| i + 1),
    };
    for (i, raw) in layout.sections.iter().enumerate() {
        if i == insert_at {
            out.extend_from_slice(&section);
        }
        if Some(i) != layout.export_index {
            out.extend_from_slice(&bytes[raw.range.clone()]);
        }
    }
    if insert_at == layout.sections.len() {
        out.extend_from_slice(&section);
    }
    Ok((Cow::Owned(out), globals))
}

/// Whether a known section with this id must come before the export section
/// (type, import, function, table, memory, tag, global).
fn precedes_export(id: u8) -> bool {
    matches!(id, 1..=6 | 13)
}

/// A top-level section, including its id byte and size prefix.
struct RawSection {
    id: u8,
    range: Range<usize>,
}

/// The parts of a module the rewrite needs.
struct Layout<'a> {
    /// Length of the magic number and version.
    header_end: usize,
    /// Every top-level section in file order.
    sections: Vec<RawSection>,
    /// Indices of the mutable globals, ascending.
    mutable_globals: Vec<u32>,
    /// The existing exports.
    exports: Vec<wasmparser::Export<'a>>,
    /// Position of the export section in `sections`, if any.
    export_index: Option<usize>,
    /// Byte range of the existing export entries (after the count).
    export_entries: Range<usize>,
}

impl<'a> Layout<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, RewriteError> {
        let mut layout = Layout {
            header_end: 0,
            sections: Vec::new(),
            mutable_globals: Vec::new(),
            exports: Vec::new(),
            export_index: None,
            export_entries: 0..0,
        };
        let mut next_global = GlobalCounter::default();
        // Each section's header (id and size) starts where the previous
        // section's contents end; payload ranges only cover the contents.
        let mut section_start = 0;
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload?;
            match &payload {
                Payload::Version {
                    encoding, range, ..
                } => {
                    if *encoding != Encoding::Module {
                        return Err(RewriteError::Component);
                    }
                    layout.header_end = range.end;
                    section_start = range.end;
                }
                Payload::ImportSection(reader) => {
                    for import in reader.clone().into_imports() {
                        if let TypeRef::Global(ty) = import?.ty {
                            let index = next_global.take()?;
                            if ty.mutable {
                                layout.mutable_globals.push(index);
                            }
                        }
                    }
                }
                Payload::GlobalSection(reader) => {
                    for global in reader.clone() {
                        let index = next_global.take()?;
                        if global?.ty.mutable {
                            layout.mutable_globals.push(index);
                        }
                    }
                }
                Payload::ExportSection(reader) => {
                    layout.export_index = Some(layout.sections.len());
                    layout.export_entries = reader.original_position()..reader.range().end;
                    for export in reader.clone() {
                        layout.exports.push(export?);
                    }
                }
                _ => {}
            }
            // `as_section` is `None` for the header, for the individual
            // function bodies inside the code section (that section is
            // covered once by `CodeSectionStart`) and for the end marker.
            if let Some((id, contents)) = payload.as_section() {
                layout.sections.push(RawSection {
                    id,
                    range: section_start..contents.end,
                });
                section_start = contents.end;
            }
        }
        Ok(layout)
    }

    /// Encodes the export section: the existing entries verbatim followed by
    /// a global export for each of `added`.
    fn export_section<'g>(
        &self,
        bytes: &[u8],
        added: impl ExactSizeIterator<Item = &'g MutableGlobal>,
    ) -> Result<Vec<u8>, RewriteError> {
        let count =
            u32::try_from(self.exports.len() + added.len()).map_err(|_| RewriteError::TooLarge)?;
        let mut body = Vec::new();
        push_u32(&mut body, count);
        body.extend_from_slice(&bytes[self.export_entries.clone()]);
        for global in added {
            push_len(&mut body, global.export.len())?;
            body.extend_from_slice(global.export.as_bytes());
            body.push(GLOBAL_EXPORT_KIND);
            push_u32(&mut body, global.index);
        }
        let mut section = Vec::with_capacity(body.len() + 6);
        section.push(EXPORT_SECTION_ID);
        push_len(&mut section, body.len())?;
        section.extend_from_slice(&body);
        Ok(section)
    }
}

/// Hands out global indices in order, imports first.
#[derive(Default)]
struct GlobalCounter(u32);

impl GlobalCounter {
    fn take(&mut self) -> Result<u32, RewriteError> {
        let index = self.0;
        self.0 = index.checked_add(1).ok_or(RewriteError::TooLarge)?;
        Ok(index)
    }
}

/// Appends `value` as unsigned LEB128.
fn push_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a byte length as unsigned LEB128, if it fits the format's u32.
fn push_len(out: &mut Vec<u8>, len: usize) -> Result<(), RewriteError> {
    push_u32(out, u32::try_from(len).map_err(|_| RewriteError::TooLarge)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::wasmparser::{Validator, WasmFeatures};

    /// `(id, contents)` of every top-level section.
    fn sections(bytes: &[u8]) -> Vec<(u8, &[u8])> {
        Parser::new(0)
            .parse_all(bytes)
            .filter_map(|p| p.expect("parses").as_section())
            .map(|(id, range)| (id, &bytes[range]))
            .collect()
    }

    fn exports(bytes: &[u8]) -> Vec<(String, ExternalKind, u32)> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            if let Payload::ExportSection(reader) = payload.expect("parses") {
                for export in reader {
                    let export = export.expect("export parses");
                    out.push((export.name.to_owned(), export.kind, export.index));
                }
            }
        }
        out
    }

    fn function_bodies(bytes: &[u8]) -> Vec<&[u8]> {
        Parser::new(0)
            .parse_all(bytes)
            .filter_map(|p| match p.expect("parses") {
                Payload::CodeSectionEntry(body) => Some(&bytes[body.range()]),
                _ => None,
            })
            .collect()
    }

    fn validate(bytes: &[u8]) {
        Validator::new_with_features(WasmFeatures::default())
            .validate_all(bytes)
            .expect("rewritten module validates");
    }

    fn global(index: u32, export: &str) -> MutableGlobal {
        MutableGlobal {
            index,
            export: export.to_owned(),
        }
    }

    const MIXED: &str = r#"
        (module
          (import "env" "counter" (global $imported (mut i32)))
          (import "env" "limit" (global $limit i64))
          (memory 1)
          (global $sp (mut i32) (i32.const 1024))
          (global $k i32 (i32.const 7))
          (global $pub (mut i64) (i64.const 0))
          (func $f (result i32)
            global.get $sp
            global.get $imported
            i32.add)
          (export "f" (func $f))
          (export "pub_counter" (global $pub))
          (@custom "note" (after export) "kept")
        )
    "#;

    #[test]
    fn adds_exports_for_hidden_mutable_globals() {
        let input = wat::parse_str(MIXED).expect("wat");
        let (output, globals) = export_mutable_globals(&input).expect("rewrite");
        assert!(matches!(output, Cow::Owned(_)));
        validate(&output);

        assert_eq!(
            globals,
            vec![
                global(0, "wrun:global:0"),
                global(2, "wrun:global:2"),
                global(4, "pub_counter"),
            ]
        );
        assert_eq!(
            exports(&output),
            vec![
                ("f".to_owned(), ExternalKind::Func, 0),
                ("pub_counter".to_owned(), ExternalKind::Global, 4),
                ("wrun:global:0".to_owned(), ExternalKind::Global, 0),
                ("wrun:global:2".to_owned(), ExternalKind::Global, 2),
            ]
        );

        // Every other section is identical and in the same place.
        let before = sections(&input);
        let after = sections(&output);
        let ids = |s: &[(u8, &[u8])]| s.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        assert_eq!(ids(&before), ids(&after));
        for ((id, old), (_, new)) in before.iter().zip(&after) {
            if *id == EXPORT_SECTION_ID {
                // Existing entries survive verbatim after the (new) count.
                assert_eq!((old[0], new[0]), (2, 4));
                assert_eq!(&new[1..old.len()], &old[1..]);
            } else {
                assert_eq!(old, new, "section {id} changed");
            }
        }
        assert_eq!(function_bodies(&input), function_bodies(&output));
    }

    #[test]
    fn inserts_export_section_in_order() {
        let input = wat::parse_str(
            r#"
            (module
              (memory 1)
              (global $sp (mut i32) (i32.const 16))
              (@custom "between" (after global) "x")
              (func $start
                i32.const 0
                i32.const 0
                i32.const 1
                memory.init $d
                data.drop $d)
              (start $start)
              (data $d "a")
              (data (i32.const 8) "b")
            )
            "#,
        )
        .expect("wat");
        let input_ids: Vec<u8> = sections(&input).iter().map(|(id, _)| *id).collect();
        assert_eq!(input_ids, [1, 3, 5, 6, 0, 8, 12, 10, 11, 0]);

        let (output, globals) = export_mutable_globals(&input).expect("rewrite");
        validate(&output);
        assert_eq!(globals, vec![global(0, "wrun:global:0")]);
        let output_ids: Vec<u8> = sections(&output).iter().map(|(id, _)| *id).collect();
        assert_eq!(output_ids, [1, 3, 5, 6, 7, 0, 8, 12, 10, 11, 0]);
        assert_eq!(
            exports(&output),
            vec![("wrun:global:0".to_owned(), ExternalKind::Global, 0)]
        );
        assert_eq!(function_bodies(&input), function_bodies(&output));

        // With nothing after the global section the export section goes last.
        let input = wat::parse_str("(module (global (mut i64) (i64.const 0)))").expect("wat");
        let (output, _) = export_mutable_globals(&input).expect("rewrite");
        validate(&output);
        let output_ids: Vec<u8> = sections(&output).iter().map(|(id, _)| *id).collect();
        assert_eq!(output_ids, [6, 7]);
    }

    #[test]
    fn nothing_to_add_borrows_input() {
        for text in [
            "(module)",
            "(module (global i32 (i32.const 1)) (func))",
            r#"(module (global $g (mut f32) (f32.const 0)) (export "g" (global $g)))"#,
        ] {
            let input = wat::parse_str(text).expect("wat");
            let (output, globals) = export_mutable_globals(&input).expect("rewrite");
            assert!(matches!(output, Cow::Borrowed(_)), "{text}");
            assert_eq!(*output, *input);
            assert_eq!(globals.len(), usize::from(text.contains("mut")));
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &b""[..],
            b"not wasm at all",
            b"\0asm\x01\0\0\0\x06\x7f",
            // A component header.
            b"\0asm\x0d\0\x01\0",
        ] {
            assert!(export_mutable_globals(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            export_mutable_globals(b"\0asm\x0d\0\x01\0"),
            Err(RewriteError::Component)
        ));

        // Every truncation either fails or, when it ends on a section
        // boundary, is rewritten; none panics.
        let input = wat::parse_str(MIXED).expect("wat");
        let mut failures = 0;
        for len in 0..input.len() {
            if export_mutable_globals(&input[..len]).is_err() {
                failures += 1;
            }
        }
        assert!(failures > input.len() / 2);
        let mid_global = input.len() / 2;
        assert!(matches!(
            export_mutable_globals(&input[..mid_global]),
            Err(RewriteError::Malformed(_))
        ));
    }

    #[test]
    fn colliding_name_is_an_error() {
        let input = wat::parse_str(
            r#"
            (module
              (global $a (mut i32) (i32.const 0))
              (func $f)
              (export "wrun:global:0" (func $f)))
            "#,
        )
        .expect("wat");
        let err = export_mutable_globals(&input).expect_err("collision");
        assert!(
            matches!(&err, RewriteError::NameCollision { index: 0, name } if name == "wrun:global:0")
        );
        assert!(err.to_string().contains("wrun:global:0"));

        // The name exported for global 0 itself is simply reused.
        let input = wat::parse_str(
            r#"(module (global $a (mut i32) (i32.const 0)) (export "wrun:global:0" (global $a)))"#,
        )
        .expect("wat");
        let (output, globals) = export_mutable_globals(&input).expect("rewrite");
        assert!(matches!(output, Cow::Borrowed(_)));
        assert_eq!(globals, vec![global(0, "wrun:global:0")]);
    }

    #[test]
    fn leb128_encoding() {
        for (value, encoded) in [
            (0, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (624_485, &[0xe5, 0x8e, 0x26]),
            (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = Vec::new();
            push_u32(&mut out, value);
            assert_eq!(out, encoded);
        }
    }
}
