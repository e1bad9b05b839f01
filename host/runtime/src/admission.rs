//! Module admission: the only way bytes become a runnable [`Module`].
//!
//! Checks run cheapest first, so a bad module is rejected before paying for
//! compilation: size cap, magic number (and "this is a component"), the
//! structure and the `wrun` metadata section, the kind (from the section,
//! or `_start` for a WASI command), then imports against the allow-list
//! (`wrun` ABI functions and WASI preview 1). Compilation validates the
//! module; the exports are then checked against the kind's signatures and
//! the imports linked, once, into an `InstancePre` that every task reuses.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::wasmparser::{Chunk, Parser, Payload};
use wasmtime::{ExternType, FuncType, InstancePre, ValType};
use wrun_abi::{
    ABI_VERSION, IMPORT_MODULE, Kind, METADATA_SECTION, Metadata, MetadataError, Unit, export,
    import,
};

use wrun_store::Digest;

use crate::cache::Lookup;
use crate::engine::Runtime;
use crate::rewrite::{self, MutableGlobal};
use crate::sandbox::Sandbox;

/// The import module of WASI preview 1.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// A checked, compiled module, linked against the runtime's imports.
#[derive(Clone)]
pub struct Module {
    source: String,
    digest: Digest,
    origin: Origin,
    load_time: Duration,
    info: ModuleInfo,
    pre: InstancePre<Sandbox>,
    /// Every mutable global and the export it is read through.
    globals: Arc<[MutableGlobal]>,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("source", &self.source)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Module {
    /// Where the module came from, as given to [`Runtime::admit`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The blake3 digest of the module's bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Whether it was compiled or loaded from the artifact cache.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Time spent compiling or loading it.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// What the module is.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    pub(crate) fn instance_pre(&self) -> &InstancePre<Sandbox> {
        &self.pre
    }

    /// Every mutable global of the module, each with an export to reach it.
    pub(crate) fn mutable_globals(&self) -> &[MutableGlobal] {
        &self.globals
    }

    /// Whether the module exports a function called `name`.
    pub(crate) fn exports_function(&self, name: &str) -> bool {
        self.info
            .exports
            .iter()
            .any(|e| e.name == name && e.ty.starts_with("func"))
    }
}

/// Where a module's compiled code came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Loaded (memory-mapped) from the artifact cache: no compilation.
    CacheHit,
    /// Compiled.
    Compiled {
        /// Why a cached artifact was not used, or why the result could not
        /// be cached, when that happened.
        note: Option<String>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::CacheHit => f.write_str("cache hit"),
            Origin::Compiled { note: None } => f.write_str("compiled"),
            Origin::Compiled { note: Some(note) } => write!(f, "compiled ({note})"),
        }
    }
}

/// Everything `wrun inspect` shows about a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Task, splitter or command.
    pub kind: Kind,
    /// ABI version from the metadata (`None` for commands).
    pub abi: Option<u32>,
    /// Name from the metadata (empty if none).
    pub name: String,
    /// Version from the metadata (empty if none).
    pub version: String,
    /// Declared formats.
    pub formats: Vec<String>,
    /// How a task takes its input.
    pub unit: Unit,
    /// Size of the module in bytes.
    pub size: usize,
    /// Imports, in module order.
    pub imports: Vec<Import>,
    /// Exports, in module order.
    pub exports: Vec<Export>,
}

/// One import of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Import module name.
    pub module: String,
    /// Item name.
    pub name: String,
    /// Its type, as text (`func(i32, i32)`).
    pub ty: String,
}

/// One export of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Export name.
    pub name: String,
    /// Its type, as text.
    pub ty: String,
}

/// Why a module was rejected. Every message starts with the module's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Zero bytes.
    #[error("{module}: empty file, not a WebAssembly module")]
    Empty {
        /// The module's source.
        module: String,
    },
    /// Over the size cap (`Limits::module_size`).
    #[error("{module}: module is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The module's source.
        module: String,
        /// The module's size, in bytes.
        size: usize,
        /// The cap, in bytes.
        limit: usize,
    },
    /// No `\0asm` magic.
    #[error("{module}: not a WebAssembly module (no \\0asm header)")]
    NotWasm {
        /// The module's source.
        module: String,
    },
    /// A component, not a core module.
    #[error("{module}: this is a WebAssembly component; wrun runs core modules (wasm32-wasip1)")]
    Component {
        /// The module's source.
        module: String,
    },
    /// Malformed or invalid wasm.
    #[error("{module}: invalid WebAssembly: {message}")]
    Invalid {
        /// The module's source.
        module: String,
        /// What the parser, validator or compiler reported.
        message: String,
    },
    /// The `wrun` section could not be decoded.
    #[error("{module}: {error}")]
    Metadata {
        /// The module's source.
        module: String,
        /// What is wrong with the section.
        error: MetadataError,
    },
    /// Built for another ABI version.
    #[error("{module}: built for wrun ABI version {found}, this wrun speaks version {ABI_VERSION}")]
    AbiVersion {
        /// The module's source.
        module: String,
        /// The ABI version its metadata declares.
        found: u32,
    },
    /// Neither a `wrun` section nor `_start`.
    #[error(
        "{module}: not a wrun module: it has no `wrun` metadata section (SDK task or splitter) \
         and no `_start` export (WASI command)"
    )]
    NotRunnable {
        /// The module's source.
        module: String,
    },
    /// An import outside the allow-list.
    #[error(
        "{module}: imports `{import_module}::{name}`, which wrun does not provide (allowed: `wrun` ABI functions and WASI preview 1)"
    )]
    DisallowedImport {
        /// The module's source.
        module: String,
        /// The import's module name (`env`, say).
        import_module: String,
        /// The import's item name.
        name: String,
    },
    /// A required export is missing or has the wrong type.
    #[error("{module}: a wrun {kind} must export `{name}` as {expected}, {found}")]
    BadExport {
        /// The module's source.
        module: String,
        /// The module's kind, which decides the required exports.
        kind: Kind,
        /// The export (a required one, or an optional one of the wrong
        /// type).
        name: &'static str,
        /// Its required type, as text (`func(i32) -> i32`).
        expected: String,
        /// What the module has instead, as a phrase (`found memory`, `but
        /// it does not`).
        found: String,
    },
    /// Imports could not be linked (a WASI function that does not exist, a
    /// `wrun` import with the wrong signature).
    #[error("{module}: cannot link imports: {message}")]
    Link {
        /// The module's source.
        module: String,
        /// What the linker reported.
        message: String,
    },
    /// The module is of the wrong kind for how it is used.
    #[error("{module}: is a wrun {found}, but a {expected} is needed here")]
    WrongKind {
        /// The module's source.
        module: String,
        /// The kinds that would do here, as a phrase (`task or command`).
        expected: &'static str,
        /// The module's kind.
        found: Kind,
    },
}

impl Runtime {
    /// Admit a module: check it and compile it. `source` names it in errors
    /// (a path, or `builtin:fasta`).
    ///
    /// # Errors
    ///
    /// The [`AdmissionError`] of the first check the module fails; its
    /// message starts with `source`.
    pub fn admit(&self, source: &str, bytes: &[u8]) -> Result<Module, AdmissionError> {
        admit(self, source, bytes, None)
    }

    /// [`Runtime::admit`] for bytes whose blake3 digest the caller already
    /// knows (a file's digest remembered by its stamp, a blob read by
    /// digest): a cache hit then never hashes the module. A wrong `digest`
    /// would name another module's artifact, so it must be the digest of
    /// exactly `bytes`.
    ///
    /// # Errors
    ///
    /// As [`Runtime::admit`].
    pub fn admit_digested(
        &self,
        source: &str,
        bytes: &[u8],
        digest: Digest,
    ) -> Result<Module, AdmissionError> {
        admit(self, source, bytes, Some(digest))
    }
}

/// What the cheap, pre-compilation pass learns.
struct Scan {
    metadata: Option<(u32, Kind, String, String, Vec<String>, Unit)>,
    has_start: bool,
}

pub(crate) fn admit(
    runtime: &Runtime,
    source: &str,
    bytes: &[u8],
    digest: Option<Digest>,
) -> Result<Module, AdmissionError> {
    let source_owned = || source.to_owned();
    let limit = runtime.limits().module_size;
    if bytes.is_empty() {
        return Err(AdmissionError::Empty {
            module: source_owned(),
        });
    }
    if bytes.len() > limit {
        return Err(AdmissionError::TooLarge {
            module: source_owned(),
            size: bytes.len(),
            limit,
        });
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(AdmissionError::NotWasm {
            module: source_owned(),
        });
    }
    if Parser::is_component(bytes) {
        return Err(AdmissionError::Component {
            module: source_owned(),
        });
    }
    let scan = scan(source, bytes)?;
    let kind = match &scan.metadata {
        Some((abi, ..)) if *abi != ABI_VERSION => {
            return Err(AdmissionError::AbiVersion {
                module: source_owned(),
                found: *abi,
            });
        }
        Some((_, kind, ..)) => *kind,
        None if scan.has_start => Kind::Command,
        None => {
            return Err(AdmissionError::NotRunnable {
                module: source_owned(),
            });
        }
    };

    let started = Instant::now();
    let digest = digest.unwrap_or_else(|| Digest::of(bytes));
    // Snapshots of a task need every mutable global: the admission rewrite
    // exports the hidden ones. A task's compiled form is cached under a key
    // derived from the original's digest (hashing the rewritten bytes again
    // would cost a large module's start time), with the rewrite's list of
    // globals beside it, so a hit neither rewrites nor parses the module.
    let key = match kind {
        Kind::Task => rewrite::cache_key(&digest),
        Kind::Command | Kind::Splitter => digest,
    };
    let rewritten = || match kind {
        Kind::Task => rewrite::export_mutable_globals(bytes).map_err(|e| AdmissionError::Invalid {
            module: source_owned(),
            message: e.to_string(),
        }),
        Kind::Command | Kind::Splitter => Ok((Cow::Borrowed(bytes), Vec::new())),
    };
    let (module, origin, globals) =
        compile_or_load(runtime, source, rewritten, &key, (bytes, &digest))?;
    let load_time = started.elapsed();
    let optional = optional_exports(kind).iter().map(|e| (e, false));
    for (&(name, expected), required) in required_exports(kind)
        .iter()
        .map(|e| (e, true))
        .chain(optional)
    {
        let found = module.get_export(name);
        if found.is_none() && !required {
            continue;
        }
        let ok = match (&found, expected) {
            (Some(ExternType::Func(f)), Expected::Func(..)) => {
                describe_func_type(f) == expected.to_string()
            }
            (Some(ExternType::Memory(_)), Expected::Memory) => true,
            _ => false,
        };
        if !ok {
            return Err(AdmissionError::BadExport {
                module: source_owned(),
                kind,
                name,
                expected: expected.to_string(),
                found: match &found {
                    Some(ty) => format!("found {}", describe(ty)),
                    None => "but it does not".to_owned(),
                },
            });
        }
    }
    let pre = runtime
        .linker()
        .instantiate_pre(&module)
        .map_err(|e| AdmissionError::Link {
            module: source_owned(),
            message: format!("{e:#}"),
        })?;

    let (abi, name, version, formats, unit) = match scan.metadata {
        Some((abi, _, name, version, formats, unit)) => (Some(abi), name, version, formats, unit),
        None => (None, String::new(), String::new(), Vec::new(), Unit::Record),
    };
    let info = ModuleInfo {
        kind,
        abi,
        name,
        version,
        formats,
        unit,
        size: bytes.len(),
        imports: module
            .imports()
            .map(|i| Import {
                module: i.module().to_owned(),
                name: i.name().to_owned(),
                ty: describe(&i.ty()),
            })
            .collect(),
        exports: module
            .exports()
            .filter(|e| !e.name().starts_with(rewrite::EXPORT_PREFIX))
            .map(|e| Export {
                name: e.name().to_owned(),
                ty: describe(&e.ty()),
            })
            .collect(),
    };
    Ok(Module {
        source: source_owned(),
        digest,
        origin,
        load_time,
        info,
        pre,
        globals: globals.into(),
    })
}

/// The compiled module and its mutable globals: from the artifact cache
/// when the runtime has one and it holds a usable artifact under `key`,
/// else the module `rewritten` gives (the code to compile and its globals)
/// compiled, and then cached beside `original` (the module as given and its
/// digest).
fn compile_or_load<'a>(
    runtime: &Runtime,
    source: &str,
    rewritten: impl FnOnce() -> Result<(Cow<'a, [u8]>, Vec<MutableGlobal>), AdmissionError>,
    key: &Digest,
    original: (&[u8], &Digest),
) -> Result<(wasmtime::Module, Origin, Vec<MutableGlobal>), AdmissionError> {
    let compile = |code: &[u8]| {
        wasmtime::Module::from_binary(runtime.engine(), code).map_err(|e| AdmissionError::Invalid {
            module: source.to_owned(),
            message: format!("{e:#}"),
        })
    };
    let Some(cache) = runtime.cache() else {
        let (code, globals) = rewritten()?;
        return Ok((compile(&code)?, Origin::Compiled { note: None }, globals));
    };
    let discarded = match cache.load(runtime.engine(), key) {
        Ok(Lookup::Hit(module, globals)) => return Ok((module, Origin::CacheHit, globals)),
        Ok(Lookup::Miss) => None,
        Ok(Lookup::Discarded(reason)) => Some(format!("cached artifact discarded: {reason}")),
        Err(error) => Some(format!("cache unreadable: {error}")),
    };
    let (code, globals) = rewritten()?;
    let started = Instant::now();
    let module = compile(&code)?;
    let (bytes, digest) = original;
    let saved = cache.save(
        key,
        (bytes, digest),
        &globals,
        &module,
        source,
        started.elapsed(),
    );
    let note = match (discarded, saved) {
        (discarded, Ok(())) => discarded,
        (None, Err(error)) => Some(format!("not cached: {error}")),
        (Some(discarded), Err(error)) => Some(format!("{discarded}; not cached: {error}")),
    };
    Ok((module, Origin::Compiled { note }, globals))
}

/// Walk the module's sections without validating code: the metadata
/// section, whether `_start` is exported, and the import allow-list.
fn scan(source: &str, bytes: &[u8]) -> Result<Scan, AdmissionError> {
    let invalid = |e: wasmtime::wasmparser::BinaryReaderError| AdmissionError::Invalid {
        module: source.to_owned(),
        message: e.to_string(),
    };
    let mut scan = Scan {
        metadata: None,
        has_start: false,
    };
    // Sections one by one, the code section skipped whole: walking its
    // function bodies would cost a large module's cache hit more than the
    // hit itself.
    let mut parser = Parser::new(0);
    let mut rest = bytes;
    loop {
        let payload = match parser.parse(rest, true).map_err(invalid)? {
            Chunk::Parsed { consumed, payload } => {
                rest = &rest[consumed..];
                payload
            }
            Chunk::NeedMoreData(_) => unreachable!("all of the module is given (eof)"),
        };
        match payload {
            Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                rest = rest
                    .get(size as usize..)
                    .ok_or_else(|| AdmissionError::Invalid {
                        module: source.to_owned(),
                        message: "the code section runs past the end of the module".to_owned(),
                    })?;
            }
            Payload::End(_) => break,
            Payload::CustomSection(section) if section.name() == METADATA_SECTION => {
                if scan.metadata.is_some() {
                    return Err(AdmissionError::Invalid {
                        module: source.to_owned(),
                        message: "more than one `wrun` metadata section".to_owned(),
                    });
                }
                let meta =
                    Metadata::parse(section.data()).map_err(|error| AdmissionError::Metadata {
                        module: source.to_owned(),
                        error,
                    })?;
                scan.metadata = Some((
                    meta.abi,
                    meta.kind,
                    meta.name.to_owned(),
                    meta.version.to_owned(),
                    meta.formats().map(str::to_owned).collect(),
                    meta.unit,
                ));
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(invalid)?;
                    let allowed = match import.module {
                        WASI_MODULE => true,
                        IMPORT_MODULE => import::ALL.contains(&import.name),
                        _ => false,
                    };
                    if !allowed {
                        return Err(AdmissionError::DisallowedImport {
                            module: source.to_owned(),
                            import_module: import.module.to_owned(),
                            name: import.name.to_owned(),
                        });
                    }
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    scan.has_start |= export.map_err(invalid)?.name == export::START;
                }
            }
            _ => {}
        }
    }
    Ok(scan)
}

/// The type an export must have.
#[derive(Debug, Clone, Copy)]
enum Expected {
    Func(&'static [ValType], &'static [ValType]),
    Memory,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Func(params, results) => {
                f.write_str(&describe_func(params.iter(), results.iter()))
            }
            Expected::Memory => f.write_str("a memory"),
        }
    }
}

const I32: ValType = ValType::I32;

/// The exports each kind must have.
fn required_exports(kind: Kind) -> &'static [(&'static str, Expected)] {
    match kind {
        Kind::Task => &[
            (export::MEMORY, Expected::Memory),
            (export::RESERVE, Expected::Func(&[I32], &[I32])),
            (export::INIT, Expected::Func(&[I32], &[I32])),
            (export::RECORD, Expected::Func(&[I32, I32], &[I32])),
            (export::FINISH, Expected::Func(&[], &[I32])),
        ],
        Kind::Splitter => &[
            (export::MEMORY, Expected::Memory),
            (export::RESERVE, Expected::Func(&[I32], &[I32])),
            (export::SPLIT, Expected::Func(&[I32, I32], &[I32])),
            (export::BOUNDARIES, Expected::Func(&[], &[I32])),
        ],
        Kind::Command => &[(export::START, Expected::Func(&[], &[]))],
    }
}

/// The exports each kind may have, checked when present: a splitter that
/// weighs its records exports `wrun_weights`.
fn optional_exports(kind: Kind) -> &'static [(&'static str, Expected)] {
    match kind {
        Kind::Splitter => &[(export::WEIGHTS, Expected::Func(&[], &[I32]))],
        Kind::Task | Kind::Command => &[],
    }
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => describe_func_type(f),
        ExternType::Memory(m) => format!("memory({} pages min)", m.minimum()),
        ExternType::Table(t) => format!("table({} elements min)", t.minimum()),
        ExternType::Global(g) => format!("global({})", g.content()),
        ExternType::Tag(_) => "tag".to_owned(),
    }
}

fn describe_func_type(f: &FuncType) -> String {
    describe_func(f.params(), f.results())
}

fn describe_func<T: fmt::Display>(
    params: impl Iterator<Item = T>,
    results: impl Iterator<Item = T>,
) -> String {
    let params: Vec<String> = params.map(|p| p.to_string()).collect();
    let results: Vec<String> = results.map(|r| r.to_string()).collect();
    match results.as_slice() {
        [] => format!("func({})", params.join(", ")),
        [one] => format!("func({}) -> {one}", params.join(", ")),
        many => format!("func({}) -> ({})", params.join(", "), many.join(", ")),
    }
}

/// Whether a module imports [`import::SPAWN`] (so its tasks may wait for
/// children), read without compiling it; false if it cannot be parsed.
pub fn imports_spawn(bytes: &[u8]) -> bool {
    Parser::new(0)
        .parse_all(bytes)
        .map_while(Result::ok)
        .find_map(|payload| match payload {
            Payload::ImportSection(imports) => Some(
                imports
                    .into_imports()
                    .map_while(Result::ok)
                    .any(|i| i.module == IMPORT_MODULE && i.name == import::SPAWN),
            ),
            _ => None,
        })
        .unwrap_or(false)
}

/// The formats a module's `wrun` section declares, read without compiling
/// it; empty if it has none or it cannot be parsed.
pub fn declared_formats(bytes: &[u8]) -> Vec<String> {
    Parser::new(0)
        .parse_all(bytes)
        .filter_map(Result::ok)
        .find_map(|payload| match payload {
            Payload::CustomSection(section) if section.name() == METADATA_SECTION => {
                Metadata::parse(section.data())
                    .ok()
                    .map(|m| m.formats().map(str::to_owned).collect())
            }
            _ => None,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::imports_spawn;

    #[test]
    fn only_a_module_importing_spawn_is_one_that_spawns() {
        let spawning = wat::parse_str(
            r#"(module
                 (import "wrun" "emit" (func (param i32 i32)))
                 (import "wrun" "spawn" (func (param i32 i32 i32 i32 i32) (result i32))))"#,
        )
        .unwrap();
        assert!(imports_spawn(&spawning));
        // The same name from another module, or no imports at all, is not.
        let other = wat::parse_str(r#"(module (import "env" "spawn" (func)))"#).unwrap();
        assert!(!imports_spawn(&other));
        assert!(!imports_spawn(&wat::parse_str("(module)").unwrap()));
        assert!(!imports_spawn(b"not wasm"));
    }
}
