//! Running one chunk through a task module.

use bytes::Bytes;
use wasmtime::{AsContextMut, Extern, Instance, Memory, ModuleExport, Store, TypedFunc};
use wrun_abi::{Kind, Unit, export, status};

use crate::Runtime;
use crate::admission::{AdmissionError, Module};
use crate::outcome::{Failure, TaskFailure, TaskOutput};
use crate::sandbox::{CommandIo, Sandbox, new_store};

/// The input of one task: a chunk of whole records.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// The chunk's bytes.
    pub data: &'a Bytes,
    /// Offset in `data` where each record starts, ascending; the first is 0.
    pub records: &'a [u32],
}

/// Runs chunks through one module with one set of arguments.
///
/// Built once per job: it holds the module's `InstancePre` (imports resolved
/// once), the exports resolved to indices, and the encoded arguments.
/// [`TaskRunner::run`] takes `&self` and is called concurrently from every
/// worker; each call gets a fresh store.
#[derive(Debug, Clone)]
pub struct TaskRunner {
    runtime: Runtime,
    module: Module,
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    Sdk(Box<Sdk>),
    /// WASI command: argv, program name first.
    Command {
        argv: Vec<String>,
    },
}

/// An SDK task's arguments and exports.
#[derive(Clone)]
struct Sdk {
    /// Arguments in the ABI encoding (each followed by NUL).
    args: Vec<u8>,
    unit: Unit,
    memory: ModuleExport,
    initialize: Option<ModuleExport>,
    reserve: ModuleExport,
    init: ModuleExport,
    record: ModuleExport,
    step: Option<ModuleExport>,
    finish: ModuleExport,
}

impl std::fmt::Debug for Sdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sdk")
            .field("args", &self.args)
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

impl TaskRunner {
    pub(crate) fn new(
        runtime: &Runtime,
        module: &Module,
        args: &[String],
    ) -> Result<Self, AdmissionError> {
        let info = module.info();
        let wasm = module.instance_pre().module();
        // Admission checked that the required exports exist.
        let required = |name| {
            wasm.get_export_index(name)
                .expect("admission checked the export")
        };
        let mode = match info.kind {
            Kind::Task => Mode::Sdk(Box::new(Sdk {
                args: args.iter().flat_map(|a| a.bytes().chain([0])).collect(),
                unit: info.unit,
                memory: required(export::MEMORY),
                initialize: module
                    .exports_function(export::INITIALIZE)
                    .then(|| required(export::INITIALIZE)),
                reserve: required(export::RESERVE),
                init: required(export::INIT),
                record: required(export::RECORD),
                step: module
                    .exports_function(export::STEP)
                    .then(|| required(export::STEP)),
                finish: required(export::FINISH),
            })),
            Kind::Command => {
                let program = if info.name.is_empty() {
                    "task"
                } else {
                    &info.name
                };
                Mode::Command {
                    argv: std::iter::once(program.to_owned())
                        .chain(args.iter().cloned())
                        .collect(),
                }
            }
            Kind::Splitter => {
                return Err(AdmissionError::WrongKind {
                    module: module.source().to_owned(),
                    expected: "task or command",
                    found: Kind::Splitter,
                });
            }
        };
        Ok(TaskRunner {
            runtime: runtime.clone(),
            module: module.clone(),
            mode,
        })
    }

    /// Where the module came from (for messages).
    pub fn source(&self) -> &str {
        self.module.source()
    }

    /// Run one chunk in a fresh sandbox.
    pub fn run(&self, chunk: Chunk<'_>) -> Result<TaskOutput, TaskFailure> {
        let command = match &self.mode {
            Mode::Sdk(_) => None,
            Mode::Command { argv } => Some(CommandIo {
                stdin: chunk.data.clone(),
                args: argv,
            }),
        };
        let mut store = new_store(self.runtime.engine(), self.runtime.limits(), command);
        let result = self
            .instantiate(&mut store)
            .and_then(|instance| match &self.mode {
                Mode::Sdk(sdk) => run_sdk(&mut store, &instance, sdk, chunk),
                Mode::Command { .. } => run_command(&mut store, &instance),
            });
        let fuel_used = self
            .runtime
            .limits()
            .fuel
            .and_then(|limit| Some(limit - store.get_fuel().ok()?));
        let sandbox = store.data_mut();
        let log = sandbox.log.take();
        match result {
            Ok(()) => Ok(TaskOutput {
                output: sandbox.output.take(),
                log,
                fuel_used,
            }),
            Err(reason) => Err(TaskFailure { reason, log }),
        }
    }

    fn instantiate(&self, store: &mut Store<Sandbox>) -> Result<Instance, Failure> {
        self.module
            .instance_pre()
            .instantiate(&mut *store)
            .map_err(|e| classify(store, e))
    }
}

fn run_command(store: &mut Store<Sandbox>, instance: &Instance) -> Result<(), Failure> {
    let start: TypedFunc<(), ()> = instance
        .get_typed_func(&mut *store, export::START)
        .map_err(|e| abi(&format!("export `{}`: {e:#}", export::START)))?;
    match start.call(&mut *store, ()) {
        Ok(()) => Ok(()),
        Err(error) => match classify(store, error) {
            Failure::Exit { code: 0 } => Ok(()),
            failure => Err(failure),
        },
    }
}

fn run_sdk(
    store: &mut Store<Sandbox>,
    instance: &Instance,
    sdk: &Sdk,
    chunk: Chunk<'_>,
) -> Result<(), Failure> {
    let memory = instance
        .get_module_export(&mut *store, &sdk.memory)
        .and_then(Extern::into_memory)
        .ok_or_else(|| abi("the module exports no memory"))?;
    if let Some(initialize) = &sdk.initialize {
        let initialize: TypedFunc<(), ()> = typed(instance, store, initialize, export::INITIALIZE)?;
        initialize
            .call(&mut *store, ())
            .map_err(|e| classify(store, e))?;
    }
    let reserve: TypedFunc<u32, u32> = typed(instance, store, &sdk.reserve, export::RESERVE)?;
    let init: TypedFunc<u32, i32> = typed(instance, store, &sdk.init, export::INIT)?;
    let record: TypedFunc<(u32, u32), i32> = typed(instance, store, &sdk.record, export::RECORD)?;
    let finish: TypedFunc<(), i32> = typed(instance, store, &sdk.finish, export::FINISH)?;

    if !sdk.args.is_empty() {
        copy_in(store, memory, &reserve, &sdk.args)?;
    }
    call(store, &init, len32(sdk.args.len())?, export::INIT)?;

    copy_in(store, memory, &reserve, chunk.data)?;
    let total = len32(chunk.data.len())?;
    match sdk.unit {
        Unit::Chunk => {
            call(store, &record, (0, total), export::RECORD)?;
        }
        Unit::Record => {
            let ends = chunk.records.iter().skip(1).copied().chain([total]);
            for (&start, end) in chunk.records.iter().zip(ends) {
                call(store, &record, (start, end - start), export::RECORD)?;
            }
        }
    }
    if let Some(step) = &sdk.step {
        let step: TypedFunc<(), i32> = typed(instance, store, step, export::STEP)?;
        loop {
            match call(store, &step, (), export::STEP)? {
                status::MORE => continue,
                status::OK => break,
                other => return Err(abi(&format!("`wrun_step` returned unknown status {other}"))),
            }
        }
    }
    call(store, &finish, (), export::FINISH)?;
    Ok(())
}

/// A typed function from a resolved export.
fn typed<P, R>(
    instance: &Instance,
    store: &mut Store<Sandbox>,
    export: &ModuleExport,
    name: &str,
) -> Result<TypedFunc<P, R>, Failure>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
        .ok_or_else(|| abi(&format!("export `{name}` is not a function")))?
        .typed(&*store)
        .map_err(|e| abi(&format!("export `{name}`: {e:#}")))
}

/// Ask the guest for a buffer and copy `bytes` into it.
pub(crate) fn copy_in(
    store: &mut Store<Sandbox>,
    memory: Memory,
    reserve: &TypedFunc<u32, u32>,
    bytes: &[u8],
) -> Result<u32, Failure> {
    let len = len32(bytes.len())?;
    let ptr = reserve
        .call(&mut *store, len)
        .map_err(|e| classify(store, e))?;
    if ptr == 0 {
        return Err(Failure::MemoryLimit {
            limit: store.data().limits.memory,
        });
    }
    let start = ptr as usize;
    let target = memory
        .data_mut(store.as_context_mut())
        .get_mut(start..start + bytes.len())
        .ok_or_else(|| {
            abi(&format!(
                "`wrun_reserve({len})` returned {ptr:#x}, outside the guest's memory"
            ))
        })?;
    target.copy_from_slice(bytes);
    Ok(ptr)
}

/// Call an export that returns a status, and interpret it with [`check`].
pub(crate) fn call<P: wasmtime::WasmParams>(
    store: &mut Store<Sandbox>,
    function: &TypedFunc<P, i32>,
    params: P,
    name: &str,
) -> Result<i32, Failure> {
    let result = function.call(&mut *store, params);
    check(store, result, name)
}

/// Interpret an export's result: a negative status fails with the guest's
/// message, a trap is classified, any other value is returned.
pub(crate) fn check(
    store: &mut Store<Sandbox>,
    result: wasmtime::Result<i32>,
    function: &str,
) -> Result<i32, Failure> {
    match result {
        Ok(code) if code < 0 => Err(Failure::Guest {
            status: code,
            message: store.data_mut().error.take().unwrap_or_else(|| {
                format!("`{function}` returned status {code} without a message")
            }),
        }),
        Ok(code) => Ok(code),
        Err(error) => Err(classify(store, error)),
    }
}

pub(crate) fn classify(store: &mut Store<Sandbox>, error: wasmtime::Error) -> Failure {
    let sandbox = store.data_mut();
    let message = sandbox.error.take();
    Failure::from_wasmtime(error, message, &sandbox.limits)
}

fn abi(message: &str) -> Failure {
    Failure::Abi {
        message: message.to_owned(),
    }
}

pub(crate) fn len32(len: usize) -> Result<u32, Failure> {
    u32::try_from(len).map_err(|_| Failure::MemoryLimit {
        limit: u32::MAX as u64,
    })
}
