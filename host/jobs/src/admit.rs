//! A job's modules, from bytes to runnable: the one sequence "admit the
//! task, build its runner, choose and admit the splitter plugin, admit the
//! reducer", for a new job (bytes from files) and a recorded one (bytes
//! from the store) alike.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wrun_journal::{JobSpec, LimitsSpec, ModuleRef};
use wrun_runtime::admission::imports_spawn;
use wrun_runtime::{Limits, Module, ModuleInfo, Nesting, Runtime, Splitter, TaskRunner, plugins};
use wrun_store::{BlobStore, Digest};

use crate::error::{Error, ErrorKind, OrKind, Result};

/// A module's bytes, their blake3 digest, and where they came from (a
/// path, a crate directory, a builtin's name), for messages and for the
/// job's spec.
#[derive(Debug, Clone)]
pub struct ModuleBytes {
    /// Where the bytes came from, as messages name the module.
    pub source: String,
    /// The module's WebAssembly bytes.
    pub bytes: Vec<u8>,
    /// The blake3 digest of `bytes`.
    pub digest: Digest,
}

impl ModuleBytes {
    /// `bytes` from `source`, hashed.
    pub fn new(source: String, bytes: Vec<u8>) -> Self {
        let digest = Digest::of(&bytes);
        ModuleBytes {
            source,
            bytes,
            digest,
        }
    }

    /// The module file at `path`, named `source` in messages. With a
    /// `store`, its digest is the one remembered there for the file's
    /// stamp when the file has not changed since it was last read
    /// ([`BlobStore::read_digested`]), so a large module is not hashed at
    /// every job.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Module`] naming `path` when it cannot be read.
    pub fn read(path: &Path, source: String, store: Option<&BlobStore>) -> Result<Self> {
        let read = match store {
            Some(store) => store.read_digested(path),
            None => std::fs::read(path).map(|bytes| {
                let digest = Digest::of(&bytes);
                (bytes, digest)
            }),
        };
        let (bytes, digest) = read.map_err(|error| {
            Error::new(
                ErrorKind::Module,
                format!("cannot read module {source}: {error}"),
            )
        })?;
        Ok(ModuleBytes {
            source,
            bytes,
            digest,
        })
    }

    /// How a spec records it: the source (a file's absolute path, so that
    /// a resume from another directory can fall back to it) and the digest.
    pub fn reference(&self) -> ModuleRef {
        ModuleRef {
            source: absolute(&self.source),
            digest: self.digest.to_hex(),
        }
    }

    /// A module `spec` names: from the store by digest, else from its
    /// source file if that still has the same digest.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Journal`] for a malformed digest, [`ErrorKind::JobState`]
    /// when neither the store nor the file has the bytes.
    pub fn stored(store: &BlobStore, module: &ModuleRef) -> Result<Self> {
        let (source, digest) = (&module.source, &module.digest);
        let parsed = Digest::from_hex(digest).ok_or_else(|| {
            Error::new(
                ErrorKind::Journal,
                format!("module {source}: bad digest {digest:?} in the journal"),
            )
        })?;
        let bytes = match store.get(&parsed).or_kind(ErrorKind::Internal)? {
            Some(bytes) => bytes.to_vec(),
            None => match std::fs::read(source) {
                Ok(bytes) if Digest::of(&bytes) == parsed => bytes,
                _ => {
                    return Err(Error::new(
                        ErrorKind::JobState,
                        format!(
                            "module {source} (blake3 {digest}) is no longer in the store, and \
                             the file is gone or changed"
                        ),
                    ));
                }
            },
        };
        Ok(ModuleBytes {
            source: source.clone(),
            bytes,
            digest: parsed,
        })
    }

    /// A module `module` names, without a store: a builtin plugin's
    /// bytes, else its source file's, either only with the recorded
    /// digest.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::JobState`] when the builtin or the file no longer
    /// has that digest.
    pub fn recorded(module: &ModuleRef) -> Result<Self> {
        let (source, digest) = (&module.source, &module.digest);
        let bytes = match source.strip_prefix("builtin:").and_then(plugins::builtin) {
            Some(bytes) => bytes.to_vec(),
            None => std::fs::read(source).unwrap_or_default(),
        };
        let computed = Digest::of(&bytes);
        if computed.to_hex() != *digest {
            return Err(Error::new(
                ErrorKind::JobState,
                format!(
                    "module {source} (blake3 {digest}) is gone or changed since the job was \
                     submitted"
                ),
            ));
        }
        Ok(ModuleBytes {
            source: source.clone(),
            bytes,
            digest: computed,
        })
    }
}

/// A job's modules, admitted and ready to run.
#[derive(Debug)]
pub struct Admitted {
    /// Runs the task on one chunk.
    pub runner: TaskRunner,
    /// The task module and the splitter plugin, for `-v`.
    pub modules: [Module; 2],
    /// The splitter plugin instance.
    pub splitter: Splitter,
    /// The plugin's bytes, as chosen.
    pub format: ModuleBytes,
    /// Runs over the chunks' outputs at the end (`--reduce`).
    pub reducer: Option<TaskRunner>,
    /// The runtime they were admitted in.
    runtime: Runtime,
}

impl Admitted {
    /// Another instance of the splitter plugin (a paired job splits each
    /// file with its own).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Module`] when instantiating it fails.
    pub fn another_splitter(&self) -> Result<Splitter> {
        self.runtime
            .splitter(&self.modules[1])
            .or_kind(ErrorKind::Module)
    }
}

/// Admit `task` with `args`, then the splitter plugin `format` returns for
/// its metadata (`--format auto` needs the task's formats), then the
/// reducer; the task and the reducer see `data` (a directory) at `/data`.
///
/// # Errors
///
/// [`ErrorKind::Module`] for a module the runtime refuses, or whatever
/// `format` returns.
pub fn admit(
    runtime: &Runtime,
    task: &ModuleBytes,
    args: &[String],
    format: impl FnOnce(&ModuleInfo) -> Result<ModuleBytes>,
    reduce: Option<&ModuleBytes>,
    data: Option<&Path>,
) -> Result<Admitted> {
    let module = admit_one(runtime, task)?;
    let runner = runner(runtime, &module, args, data)?;
    let format = format(module.info())?;
    let plugin = admit_one(runtime, &format)?;
    let splitter = runtime.splitter(&plugin).or_kind(ErrorKind::Module)?;
    let reducer = match reduce {
        Some(reduce) => {
            let module = admit_one(runtime, reduce)?;
            Some(self::runner(runtime, &module, &[], data)?)
        }
        None => None,
    };
    Ok(Admitted {
        runner,
        modules: [module, plugin],
        splitter,
        format,
        reducer,
        runtime: runtime.clone(),
    })
}

/// Admit the modules `spec` names (from the store, else their files), in a
/// runtime for `workers` tasks at once.
///
/// # Errors
///
/// As [`admit`] and [`ModuleBytes::stored`]; [`ErrorKind::JobState`] for a
/// job that has no input (its splitter is not recorded).
pub fn admit_recorded(spec: &JobSpec, workers: usize, store: &Arc<BlobStore>) -> Result<Admitted> {
    let task = ModuleBytes::stored(store, &spec.module)?;
    let runtime = runtime(
        &spec.limits,
        workers,
        spec.pairs.is_some(),
        imports_spawn(&task.bytes),
        Some(store.clone()),
    )?;
    let reduce = match &spec.reduce {
        Some(reduce) => Some(ModuleBytes::stored(store, reduce)?),
        None => None,
    };
    let format = |_: &ModuleInfo| match &spec.format {
        Some(format) => ModuleBytes::stored(store, format),
        None => Err(Error::new(
            ErrorKind::JobState,
            "the job has no input to resume",
        )),
    };
    crate::data::check(store, &spec.data)?;
    let data = crate::data::view(store, &spec.data)?;
    admit(
        &runtime,
        &task,
        &spec.args,
        format,
        reduce.as_ref(),
        data.as_deref(),
    )
}

/// A runner of `module` with `args`, shown the data directory `data` if
/// the job has one.
///
/// # Errors
///
/// [`ErrorKind::Module`] for a module that is not a task or command.
pub fn runner(
    runtime: &Runtime,
    module: &Module,
    args: &[String],
    data: Option<&Path>,
) -> Result<TaskRunner> {
    let runner = runtime
        .task_runner(module, args)
        .or_kind(ErrorKind::Module)?;
    Ok(match data {
        Some(dir) => runner.with_data(dir),
        None => runner,
    })
}

/// Admit `module`, whose digest is known.
///
/// # Errors
///
/// [`ErrorKind::Module`] for a module the runtime refuses.
pub fn admit_one(runtime: &Runtime, module: &ModuleBytes) -> Result<Module> {
    runtime
        .admit_digested(&module.source, &module.bytes, module.digest)
        .or_kind(ErrorKind::Module)
}

/// A runtime for `workers` tasks at once, each with room, when the task
/// `spawns` (imports `spawn`), for a chain of parked ancestors as deep as
/// the job's spawn depth (a task waiting for its children keeps its
/// instance), plus the splitter instances (one, and one per file of a
/// `paired` job), with the artifact cache in `cache` if given.
///
/// # Errors
///
/// [`ErrorKind::Internal`] when the engine cannot be created.
pub fn runtime(
    limits: &LimitsSpec,
    workers: usize,
    paired: bool,
    spawns: bool,
    cache: Option<Arc<BlobStore>>,
) -> Result<Runtime> {
    let splitters = if paired { 3 } else { 1 };
    let per_worker = match spawns {
        true => Nesting::instances_per_thread(
            limits
                .spawn
                .map_or(Nesting::DEFAULT_MAX_DEPTH, |s| s.max_depth),
        ),
        false => 1,
    };
    let slots = (workers as u32).saturating_mul(per_worker) + splitters;
    let limits = runtime_limits(limits);
    match cache {
        Some(store) => Runtime::with_store(limits, slots, store),
        None => Runtime::new(limits, slots),
    }
    .or_kind(ErrorKind::Internal)
}

/// Runtime limits from a spec's.
pub fn runtime_limits(spec: &LimitsSpec) -> Limits {
    Limits {
        fuel: spec.fuel,
        timeout: spec.timeout_ms.map(Duration::from_millis),
        memory: spec.memory,
        output: usize::try_from(spec.output).unwrap_or(usize::MAX),
        ..Limits::default()
    }
}

/// `--format`: `auto` (the input's extension if the task accepts it, else
/// the task's first format, else lines), a builtin name, or a plugin file.
///
/// # Errors
///
/// [`ErrorKind::Usage`] for an unknown name, [`ErrorKind::Module`] for an
/// unreadable file.
pub fn resolve_format(
    format: &str,
    task: &ModuleInfo,
    input: &Path,
    store: Option<&BlobStore>,
) -> Result<ModuleBytes> {
    let builtin = |name: &str| {
        plugins::builtin(name)
            .map(|bytes| ModuleBytes::new(plugins::source_name(name), bytes.to_vec()))
    };
    if format == "auto" {
        let extension = crate::input::format_extension(input);
        let name = plugins::detect(&task.formats, extension);
        return builtin(name)
            .ok_or_else(|| Error::new(ErrorKind::Internal, format!("no builtin plugin {name}")));
    }
    if let Some(found) = builtin(format) {
        return Ok(found);
    }
    let path = Path::new(format);
    if path.is_file() {
        return ModuleBytes::read(path, format.to_owned(), store);
    }
    let known: Vec<&str> = plugins::names().collect();
    // A name wrun does not know is a mistake on the command line (exit 2),
    // not a rejected module.
    Err(Error::new(
        ErrorKind::Usage,
        format!(
            "unknown format {format:?}: use auto, {}, or the path of a splitter plugin .wasm",
            known.join(", ")
        ),
    ))
}

/// A module's source as recorded: a file as an absolute path, a builtin
/// as its name.
fn absolute(source: &str) -> String {
    let path = Path::new(source);
    match path.is_file() {
        true => std::path::absolute(path)
            .map_or_else(|_| source.to_owned(), |p| p.display().to_string()),
        false => source.to_owned(),
    }
}
