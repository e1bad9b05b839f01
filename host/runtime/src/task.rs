//! Running one chunk through a task module.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::{Extern, Instance, Memory, ModuleExport, Store, TypedFunc};
use wrun_abi::{IMPORT_MODULE, Kind, Unit, export, import, status};
use wrun_store::Digest;

use crate::admission::{AdmissionError, Module};
use crate::checkpoint::{Boundary, Checkpointing, Ended, Session, SuspendReason, Suspended};
use crate::engine::Runtime;
use crate::epoch::deadline_ticks;
use crate::guest::{Returns, abi, call, classify, copy_in, len32};
use crate::nest::{ChildResult, NestState, Nesting, Spawn};
use crate::outcome::{Failure, TaskFailure, TaskOutput};
use crate::sandbox::{CommandIo, Sandbox, new_store};
use crate::snapshot::{Cursor, Identity, Live};

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
    /// The job's reference data: a host directory shown read-only at
    /// [`crate::DATA_DIR`].
    data: Option<Arc<Path>>,
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

impl Runtime {
    /// Prepare `module` (a task or command) to run chunks with `args`.
    ///
    /// # Errors
    ///
    /// [`AdmissionError::WrongKind`] when `module` is a splitter.
    pub fn task_runner(
        &self,
        module: &Module,
        args: &[String],
    ) -> Result<TaskRunner, AdmissionError> {
        TaskRunner::new(self, module, args)
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
            data: None,
        })
    }

    /// Show every task the files in the host directory `dir`, read-only
    /// at [`crate::DATA_DIR`] (WASI commands and SDK tasks alike). The
    /// directory must hold only what the job was granted: a task sees
    /// all of it (and nothing outside it).
    pub fn with_data(mut self, dir: &Path) -> Self {
        self.data = Some(Arc::from(dir));
        self
    }

    /// Whether a running task of this module can be snapshotted: an SDK
    /// task can, a WASI command (its native stack is mid-`_start`) cannot.
    pub fn snapshottable(&self) -> bool {
        matches!(self.mode, Mode::Sdk(_))
    }

    /// Where the module came from (for messages).
    pub fn source(&self) -> &str {
        self.module.source()
    }

    /// Run one chunk in a fresh sandbox.
    ///
    /// # Errors
    ///
    /// A [`TaskFailure`] when the task does not complete: it trapped, ran
    /// into a limit, exited non-zero, returned an error status or broke the
    /// ABI (see [`Failure`]). A task that spawns children has them run
    /// here, as [`TaskRunner::run_tree`] does.
    pub fn run(&self, chunk: Chunk<'_>) -> Result<TaskOutput, TaskFailure> {
        match self.run_with(chunk, None)? {
            Ended::Finished(output) => Ok(output),
            Ended::Suspended(_) => unreachable!("only a checkpointed run is suspended"),
        }
    }

    /// Instantiate an SDK task and call its `wrun_init` with its arguments
    /// (on an empty chunk), nothing more: a bad argument is reported once,
    /// before any chunk runs, rather than by every chunk. A WASI command
    /// has no such call: `Ok` without running it.
    ///
    /// # Errors
    ///
    /// A [`TaskFailure`] as [`TaskRunner::run`] reports it: the task's own
    /// error status, a trap, a limit.
    pub fn check_arguments(&self) -> Result<(), TaskFailure> {
        let Mode::Sdk(sdk) = &self.mode else {
            return Ok(());
        };
        let mut store = new_store(
            self.runtime.engine(),
            self.runtime.limits(),
            None,
            self.data.as_ref(),
        );
        let empty = Bytes::new();
        let chunk = Chunk {
            data: &empty,
            records: &[],
        };
        let started = self.instantiate(&mut store).and_then(|instance| {
            let live = self.live(&mut store, &instance, sdk)?;
            start_sdk(&mut store, &instance, live.memory, sdk, chunk)
        });
        started.map_err(|reason| TaskFailure {
            reason,
            log: store.data_mut().log.take(),
        })
    }

    /// Run one chunk in a fresh sandbox, taking snapshots as `checkpointing`
    /// says, from its `resume` snapshot if it has one. A snapshot that
    /// cannot be restored is reported in the task's log and the chunk starts
    /// from its beginning: a bad snapshot never produces a wrong result.
    /// WASI commands are not snapshotted (their state includes a stack);
    /// they only ever resume from the start of their chunk.
    ///
    /// # Errors
    ///
    /// As [`TaskRunner::run`]; with [`Checkpointing::suspend_on_fuel`] a run
    /// out of fuel is [`Ended::Suspended`] instead, and a snapshot that cannot
    /// be written fails the run with [`Failure::Host`].
    pub fn run_checkpointed(
        &self,
        chunk: Chunk<'_>,
        checkpointing: &Checkpointing<'_>,
    ) -> Result<Ended, TaskFailure> {
        self.run_with(chunk, Some(checkpointing))
    }

    fn run_with(
        &self,
        chunk: Chunk<'_>,
        checkpointing: Option<&Checkpointing<'_>>,
    ) -> Result<Ended, TaskFailure> {
        self.run_tree(chunk, checkpointing, Nesting::root())
    }

    /// Run one chunk to its end as [`TaskRunner::start`] does, running the
    /// children of each of its waits here, on this thread, one after
    /// another and depth first (each waiting ancestor keeps its instance
    /// meanwhile, so the runtime needs [`Nesting::instances_per_thread`]
    /// instances per thread that calls this). Only the chunk itself is
    /// checkpointed.
    ///
    /// # Errors
    ///
    /// As [`TaskRunner::start`]; a child that failed past a spawn limit
    /// fails the chunk the same way (other failures of a child are handed
    /// to its parent as its result).
    pub fn run_tree(
        &self,
        chunk: Chunk<'_>,
        checkpointing: Option<&Checkpointing<'_>>,
        nesting: Nesting,
    ) -> Result<Ended, TaskFailure> {
        let mut progress = self.start(chunk, checkpointing, nesting)?;
        loop {
            let waiting = match progress {
                Progress::Ended(ended) => return Ok(ended),
                Progress::Waiting(waiting) => waiting,
            };
            let nesting = waiting.nesting().child();
            let mut results = Vec::with_capacity(waiting.children.len());
            for spawn in &waiting.children {
                let child = Chunk {
                    data: &spawn.input,
                    records: &[0],
                };
                match self.for_child(spawn).run_tree(child, None, nesting) {
                    Ok(Ended::Finished(output)) => results.push(Ok(output.output)),
                    Ok(Ended::Suspended(_)) => {
                        results.push(Err("the child was suspended".to_owned()));
                    }
                    Err(failure) if matches!(failure.reason, Failure::SpawnLimit { .. }) => {
                        return Err(failure);
                    }
                    Err(failure) => results.push(Err(failure.to_string())),
                }
            }
            progress = self.resume(waiting, results, checkpointing)?;
        }
    }

    /// Run one chunk in a fresh sandbox at `nesting`'s place in its job's
    /// tree of tasks, checkpointed when `checkpointing` is given (as
    /// [`TaskRunner::run_checkpointed`]), until it ends or waits for the
    /// children it spawned ([`Progress::Waiting`]: hand it back to
    /// [`TaskRunner::resume`] with their results).
    ///
    /// # Errors
    ///
    /// As [`TaskRunner::run_checkpointed`]; [`Failure::SpawnLimit`] when it
    /// spawns past `nesting`'s limits.
    pub fn start(
        &self,
        chunk: Chunk<'_>,
        checkpointing: Option<&Checkpointing<'_>>,
        nesting: Nesting,
    ) -> Result<Progress, TaskFailure> {
        let command = match &self.mode {
            Mode::Sdk(_) => None,
            Mode::Command { argv } => Some(CommandIo {
                stdin: chunk.data.clone(),
                args: argv,
            }),
        };
        let limits = self.runtime.limits();
        let mut store = new_store(self.runtime.engine(), limits, command, self.data.as_ref());
        store.data_mut().nest = NestState::new(nesting);
        let identity = || self.identity(chunk.data);
        // Dropped by `conclude` before the store moves or drops: it may
        // hold a write tracker on the store's memory.
        let mut session = checkpointing.map(|c| Session::new(c, &identity));
        let result = match &self.mode {
            Mode::Sdk(sdk) => self.run_sdk(&mut store, sdk, chunk, session.as_mut()),
            Mode::Command { .. } => self
                .instantiate(&mut store)
                .and_then(|instance| run_command(&mut store, &instance))
                .map(|()| (Stop::Done, None)),
        };
        conclude(store, session, result, chunk.data)
    }

    /// Go on with a task that waited: `results` are its children's, in
    /// spawn order, readable during its next `wrun_step` call. Its timeout
    /// starts again (time spent waiting is not the task's); its fuel goes
    /// on from what it had left.
    ///
    /// # Errors
    ///
    /// As [`TaskRunner::start`].
    pub fn resume(
        &self,
        waiting: Waiting,
        results: Vec<ChildResult>,
        checkpointing: Option<&Checkpointing<'_>>,
    ) -> Result<Progress, TaskFailure> {
        let Parked {
            mut store,
            instance,
            live,
            steps,
            chunk,
        } = waiting.parked;
        let Mode::Sdk(sdk) = &self.mode else {
            unreachable!("only an SDK task waits")
        };
        store.data_mut().nest.deliver(results);
        store.set_epoch_deadline(deadline_ticks(self.runtime.limits().timeout));
        let identity = || self.identity(&chunk);
        let mut session = checkpointing.map(|c| Session::new(c, &identity));
        let rest = Chunk {
            data: &chunk,
            records: &[],
        };
        let result = drive_sdk(
            &mut store,
            &instance,
            &live,
            sdk,
            rest,
            Cursor::Steps { done: steps },
            session.as_mut(),
        )
        .map(|stop| (stop, Some(Held { instance, live })));
        conclude(store, session, result, &chunk)
    }

    /// Whether the task imports [`import::SPAWN`]: only such a task can
    /// wait for children ([`Progress::Waiting`]).
    pub fn spawns(&self) -> bool {
        self.module
            .info()
            .imports
            .iter()
            .any(|i| i.module == IMPORT_MODULE && i.name == import::SPAWN)
    }

    /// The runner of a child `spawn` asked for: this module with the
    /// child's arguments.
    pub fn for_child(&self, spawn: &Spawn) -> TaskRunner {
        let mut runner = self.clone();
        if let Mode::Sdk(sdk) = &mut runner.mode {
            sdk.args.clone_from(&spawn.args);
        }
        runner
    }

    /// What a snapshot of this runner's task on `chunk` must agree with.
    fn identity(&self, chunk: &[u8]) -> Identity {
        Identity {
            module: *self.module.digest(),
            chunk: Digest::of(chunk),
            args: Digest::of(match &self.mode {
                Mode::Sdk(sdk) => &sdk.args,
                Mode::Command { .. } => &[],
            }),
        }
    }

    fn instantiate(&self, store: &mut Store<Sandbox>) -> Result<Instance, Failure> {
        self.module
            .instance_pre()
            .instantiate(&mut *store)
            .map_err(|e| classify(store, e))
    }

    /// Run an SDK task, from its snapshot when the session has one that
    /// restores. `Some` when it stopped early.
    fn run_sdk(
        &self,
        store: &mut Store<Sandbox>,
        sdk: &Sdk,
        chunk: Chunk<'_>,
        mut session: Option<&mut Session<'_, '_>>,
    ) -> Result<(Stop, Option<Held>), Failure> {
        let mut instance = self.instantiate(store)?;
        let mut live = self.live(store, &instance, sdk)?;
        let resume = session.as_ref().and_then(|s| s.control().resume);
        let mut cursor = None;
        if let (Some(session), Some(digest)) = (session.as_deref_mut(), resume) {
            match session.restore(&digest, store, &live) {
                Ok(restored) => {
                    if let (Some(limit), Some(used)) =
                        (store.data().limits.fuel, restored.fuel_used)
                    {
                        store
                            .set_fuel(limit.saturating_sub(used))
                            .expect("fuel is enabled whenever a fuel limit is set");
                    }
                    cursor = Some(restored.cursor);
                }
                Err(error) => {
                    // A failed restore may have written part of the memory:
                    // start over in a fresh store.
                    let nesting = store.data().nest.nesting();
                    *store = new_store(
                        self.runtime.engine(),
                        self.runtime.limits(),
                        None,
                        self.data.as_ref(),
                    );
                    store.data_mut().nest = NestState::new(nesting);
                    let note = format!(
                        "wrun: not resuming from a snapshot ({error}); the chunk starts over\n"
                    );
                    let _ = store.data().log.write(note.as_bytes());
                    instance = self.instantiate(store)?;
                    live = self.live(store, &instance, sdk)?;
                }
            }
        }
        let cursor = match cursor {
            Some(cursor) => cursor,
            None => {
                start_sdk(store, &instance, live.memory, sdk, chunk)?;
                Cursor::Records { next: 0 }
            }
        };
        let stop = drive_sdk(store, &instance, &live, sdk, chunk, cursor, session)?;
        Ok((stop, Some(Held { instance, live })))
    }

    /// The memory and mutable globals a snapshot reads and a restore writes.
    fn live(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        sdk: &Sdk,
    ) -> Result<Live, Failure> {
        let memory = instance
            .get_module_export(&mut *store, &sdk.memory)
            .and_then(Extern::into_memory)
            .ok_or_else(|| abi("the module exports no memory"))?;
        let globals = self
            .module
            .mutable_globals()
            .iter()
            .map(|g| {
                instance
                    .get_global(&mut *store, &g.export)
                    .ok_or_else(|| abi(&format!("global export `{}` is missing", g.export)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Live { memory, globals })
    }
}

/// How far a run got: the end of its chunk (or a suspension), or a wait
/// for the children it spawned.
pub enum Progress {
    /// The run finished its chunk or was suspended.
    Ended(Ended),
    /// The task returned `WAIT`: run its children, then
    /// [`TaskRunner::resume`] it with their results.
    Waiting(Waiting),
}

/// A task that returned `WAIT`, parked with an empty wasm stack: its
/// store and instance are kept (it holds no thread) until its children are
/// done and [`TaskRunner::resume`] calls its `wrun_step` again.
pub struct Waiting {
    /// The children it spawned since its last wait, in spawn order (their
    /// handles are their positions here).
    pub children: Vec<Spawn>,
    parked: Parked,
}

impl Waiting {
    /// Where the waiting task sits in its job's tree: its children's
    /// nesting is this one's [`Nesting::child`].
    pub fn nesting(&self) -> Nesting {
        self.parked.store.data().nest.nesting()
    }
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("children", &self.children.len())
            .field("steps", &self.parked.steps)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Ended(ended) => f.debug_tuple("Ended").field(ended).finish(),
            Progress::Waiting(waiting) => f.debug_tuple("Waiting").field(waiting).finish(),
        }
    }
}

/// A waiting task's store, instance and place.
struct Parked {
    store: Store<Sandbox>,
    instance: Instance,
    live: Live,
    /// `wrun_step` calls made, the wait's included.
    steps: u64,
    /// Its chunk, for the identity of later snapshots.
    chunk: Bytes,
}

/// Where a run stopped, short of failing.
enum Stop {
    /// `wrun_finish` returned (or the command exited 0).
    Done,
    /// The session stopped the task early.
    Suspend(SuspendReason),
    /// `wrun_step` returned `WAIT` after this many step calls.
    Wait { steps: u64 },
}

/// An SDK run's instance, kept for a wait.
struct Held {
    instance: Instance,
    live: Live,
}

/// Turn a run's end into its [`Progress`]: the session (and its write
/// tracker) is dropped first, then the output and log are taken, or the
/// store parked when the task waits.
fn conclude(
    mut store: Store<Sandbox>,
    session: Option<Session<'_, '_>>,
    result: Result<(Stop, Option<Held>), Failure>,
    chunk: &Bytes,
) -> Result<Progress, TaskFailure> {
    let suspend_on_fuel = session
        .as_ref()
        .is_some_and(|s| s.control().suspend_on_fuel);
    let last = session.and_then(|s| s.last);
    let result = match result {
        Ok((Stop::Wait { steps }, Some(Held { instance, live }))) => {
            let children = store.data_mut().nest.take_spawned();
            return Ok(Progress::Waiting(Waiting {
                children,
                parked: Parked {
                    store,
                    instance,
                    live,
                    steps,
                    chunk: chunk.clone(),
                },
            }));
        }
        Ok((Stop::Wait { .. }, None)) => Err(abi("a WASI command cannot wait")),
        Ok((stop, _)) => Ok(stop),
        Err(failure) => Err(failure),
    };
    let fuel_used = store
        .data()
        .limits
        .fuel
        .and_then(|limit| Some(limit - store.get_fuel().ok()?));
    let sandbox = store.data_mut();
    let log = sandbox.log.take();
    let ended = match result {
        Ok(Stop::Done) => Ended::Finished(TaskOutput {
            output: sandbox.output.take(),
            log,
            fuel_used,
        }),
        Ok(Stop::Suspend(reason)) => Ended::Suspended(Suspended {
            reason,
            resume_from: last,
            log,
        }),
        Ok(Stop::Wait { .. }) => unreachable!("a wait returned above"),
        Err(Failure::OutOfFuel { .. }) if suspend_on_fuel => Ended::Suspended(Suspended {
            reason: SuspendReason::Fuel,
            resume_from: last,
            log,
        }),
        Err(reason) => return Err(TaskFailure { reason, log }),
    };
    Ok(Progress::Ended(ended))
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

/// Instantiate-time setup of an SDK task: `_initialize`, the arguments,
/// `wrun_init`, and the chunk copied in.
fn start_sdk(
    store: &mut Store<Sandbox>,
    instance: &Instance,
    memory: Memory,
    sdk: &Sdk,
    chunk: Chunk<'_>,
) -> Result<(), Failure> {
    if let Some(initialize) = &sdk.initialize {
        let initialize: TypedFunc<(), ()> = typed(instance, store, initialize, export::INITIALIZE)?;
        initialize
            .call(&mut *store, ())
            .map_err(|e| classify(store, e))?;
    }
    let reserve: TypedFunc<u32, u32> = typed(instance, store, &sdk.reserve, export::RESERVE)?;
    let init: TypedFunc<u32, i32> = typed(instance, store, &sdk.init, export::INIT)?;
    if !sdk.args.is_empty() {
        copy_in(store, memory, &reserve, &sdk.args)?;
    }
    call(
        store,
        &init,
        len32(sdk.args.len())?,
        export::INIT,
        Returns::Ok,
    )?;
    copy_in(store, memory, &reserve, chunk.data)?;
    Ok(())
}

/// Call the records, steps and `wrun_finish` of an SDK task from `cursor`
/// on, stopping at each call boundary for the session. `Some` when the
/// session stopped the task early.
fn drive_sdk(
    store: &mut Store<Sandbox>,
    instance: &Instance,
    live: &Live,
    sdk: &Sdk,
    chunk: Chunk<'_>,
    cursor: Cursor,
    mut session: Option<&mut Session<'_, '_>>,
) -> Result<Stop, Failure> {
    let record: TypedFunc<(u32, u32), i32> = typed(instance, store, &sdk.record, export::RECORD)?;
    let finish: TypedFunc<(), i32> = typed(instance, store, &sdk.finish, export::FINISH)?;
    let fuel_limit = store.data().limits.fuel;
    // At each boundary: `Some` stops the task. None is taken while
    // children spawned since the last wait are pending: a snapshot holds
    // the guest, not the host's list of them.
    let mut boundary =
        |store: &mut Store<Sandbox>, cursor: Cursor| -> Result<Option<SuspendReason>, Failure> {
            let Some(session) = session.as_deref_mut() else {
                return Ok(None);
            };
            if store.data().nest.has_spawned() {
                return Ok(None);
            }
            let fuel_used = fuel_limit.and_then(|limit| Some(limit - store.get_fuel().ok()?));
            Ok(match session.boundary(store, live, cursor, fuel_used)? {
                Boundary::Continue => None,
                Boundary::Suspend(reason) => Some(reason),
            })
        };

    let total = len32(chunk.data.len())?;
    let records = match sdk.unit {
        Unit::Chunk => 1,
        Unit::Record => chunk.records.len(),
    };
    // The `index`th record call: (offset, length).
    let params = |index: usize| match sdk.unit {
        Unit::Chunk => (0, total),
        Unit::Record => {
            let start = chunk.records[index];
            let end = chunk.records.get(index + 1).copied().unwrap_or(total);
            (start, end - start)
        }
    };
    let (first, mut steps) = match cursor {
        Cursor::Records { next } => (next as usize, 0),
        Cursor::Steps { done } => (records, done),
    };
    if first > records {
        return Err(abi(&format!(
            "a snapshot resumes at record {first} of a chunk of {records}"
        )));
    }
    if first == 0
        && steps == 0
        && let Some(stop) = boundary(store, cursor)?
    {
        return Ok(Stop::Suspend(stop));
    }
    for index in first..records {
        call(store, &record, params(index), export::RECORD, Returns::Ok)?;
        let next = Cursor::Records {
            next: index as u32 + 1,
        };
        if let Some(stop) = boundary(store, next)? {
            return Ok(Stop::Suspend(stop));
        }
    }
    if let Some(step) = &sdk.step {
        let step: TypedFunc<(), i32> = typed(instance, store, step, export::STEP)?;
        loop {
            // `Returns::Step` lets only OK, MORE and WAIT through; `spawn`
            // is allowed only inside the call.
            store.data_mut().nest.set_in_step(true);
            let code = call(store, &step, (), export::STEP, Returns::Step);
            store.data_mut().nest.set_in_step(false);
            let code = code?;
            if code == status::OK {
                break;
            }
            steps += 1;
            if code == status::WAIT {
                if !store.data().nest.has_spawned() {
                    return Err(abi(&format!(
                        "`{}` returned WAIT without spawning a child since its last wait",
                        export::STEP
                    )));
                }
                return Ok(Stop::Wait { steps });
            }
            if let Some(stop) = boundary(store, Cursor::Steps { done: steps })? {
                return Ok(Stop::Suspend(stop));
            }
        }
    }
    if store.data().nest.has_spawned() {
        return Err(abi(&format!(
            "`{}` returned OK with children spawned and not waited for",
            export::STEP
        )));
    }
    call(store, &finish, (), export::FINISH, Returns::Ok)?;
    Ok(Stop::Done)
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
