//! A new job from a request: its modules admitted, its input opened, its
//! spec and fingerprint computed; then either run here (a new journaled
//! job, or the unfinished one with the same fingerprint, resumed) or
//! handed to a broker. A module given no input runs once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wrun_journal::{CheckpointEvery, InflateLimits, InputRef, JobId, JobSpec, LimitsSpec, Pairs};
use wrun_runtime::{Chunk, Kind, ModuleInfo, Unit};
use wrun_scheduler::Chunking;
use wrun_store::object;
use wrun_store::{BlobStore, Digest};

use crate::admit::{self, Admitted, ModuleBytes};
use crate::error::{Error, ErrorKind, Result};
use crate::guard::check_output;
use crate::home::Home;
use crate::journaled::Claim;
use crate::pairs::{Pairing, interleave, open_mate};
use crate::placement::Placement;
use crate::prefix::Unchecked;
use crate::run::{Run, chunking};
use crate::streams::{Destination, Source};

/// What a new job is: the modules, the input and output, and the options
/// that shape its result.
#[derive(Debug, Clone)]
pub struct Request {
    /// The task module.
    pub task: ModuleBytes,
    /// `--format`: `auto`, a builtin plugin's name, or a plugin's path.
    pub format: String,
    /// The reducer module (`--reduce`).
    pub reduce: Option<ModuleBytes>,
    /// The input (`-`: standard input); `None` runs the module once.
    pub input: Option<PathBuf>,
    /// How its records pair up (`--mate`, `--paired interleaved`);
    /// `None`: they do not.
    pub pairing: Option<Pairing>,
    /// The output file; `None` is standard output.
    pub output: Option<PathBuf>,
    /// Arguments passed to the task.
    pub args: Vec<String>,
    /// Most records per chunk.
    pub chunk_records: Option<u64>,
    /// Most bytes per chunk.
    pub chunk_bytes: Option<u64>,
    /// Most weight per chunk, in the splitter plugin's units (residues
    /// for `fasta` and `fastq`).
    pub chunk_weight: Option<u64>,
    /// Adaptive chunking's target time per task; `None` is static.
    pub adaptive: Option<Duration>,
    /// Limits per chunk.
    pub limits: LimitsSpec,
    /// Run every chunk whatever fails.
    pub keep_going: bool,
    /// Attempts after a host failure, per chunk.
    pub retries: u32,
    /// Caps on a compressed input.
    pub inflate: InflateLimits,
    /// How often running tasks are snapshotted.
    pub checkpoint_every: Option<CheckpointEvery>,
    /// Reference data every task reads at `/data/NAME`: `(NAME, PATH)`
    /// pairs (`--data`).
    pub data: Vec<(String, PathBuf)>,
    /// Jobs that must be done before this one runs (`--after`); a `job:N`
    /// input adds `N`.
    pub after: Vec<JobId>,
}

/// How a request is kept: its name, whether it resumes an unfinished job
/// of the same definition, and which parts of the home it uses.
#[derive(Debug, Clone, Default)]
pub struct Keeping {
    /// The job's `--name`.
    pub name: Option<String>,
    /// Start a new job even when an unfinished one has this definition.
    pub fresh: bool,
    /// Record the job in the journal.
    pub journal: bool,
    /// Use the compiled-module cache.
    pub cache: bool,
}

/// A new job, prepared: everything checked and loaded, nothing recorded.
#[derive(Debug)]
pub struct Prepared {
    /// Its spec, with automatic chunking resolved.
    pub spec: JobSpec,
    /// The definition as the user gave it (chunking unresolved): the same
    /// submit again finds the job by it.
    pub fingerprint: [u8; 32],
    /// Its modules, admitted.
    pub admitted: Admitted,
    /// The input; `None` for another job's output (`job:N`), opened once
    /// that job is done ([`crate::after::wait_and_open`]).
    pub input: Option<Source>,
    /// The modules' bytes: task, splitter plugin, and reducer if any.
    pub modules: Vec<Vec<u8>>,
    keeping: Keeping,
    store: Option<Arc<BlobStore>>,
}

/// What a request became: a job over an input, or a module run once.
#[derive(Debug)]
pub enum Submitted {
    /// A job over an input, prepared.
    Job(Box<Prepared>),
    /// A module without input, run once.
    Once(Once),
}

/// A module run once on an empty chunk, with no records.
#[derive(Debug)]
pub struct Once {
    /// Its output.
    pub output: Vec<u8>,
    /// Its log.
    pub log: Vec<u8>,
    /// How it failed, if it did.
    pub error: Option<Error>,
}

/// Check and load `request`: admit its modules in a runtime for
/// `placement`, open its input, and compute its spec; a request without
/// input runs its module once, here and now.
///
/// # Errors
///
/// [`ErrorKind::Usage`] for adaptive chunking with a task whose output
/// depends on where chunks are cut; [`ErrorKind::Module`];
/// [`ErrorKind::Input`].
pub fn prepare(
    home: &Home,
    request: Request,
    keeping: Keeping,
    placement: &dyn Placement,
) -> Result<Submitted> {
    // The store holds the artifact cache, the journal's modules and large
    // outputs, and reference data: with none, wrun needs no home at all.
    let store = match keeping.cache || keeping.journal || !request.data.is_empty() {
        true => Some(home.store()?),
        false => None,
    };
    let cache = store.clone().filter(|_| keeping.cache);
    let paired = request.pairing.is_some();
    let runtime = admit::runtime(
        &request.limits,
        placement.local_slots(),
        paired,
        wrun_runtime::admission::imports_spawn(&request.task.bytes),
        cache,
    )?;
    check_request_output(&request, home)?;
    let (data, view) = match &store {
        Some(store) => {
            let data = crate::data::record(store, &request.data)?;
            let view = crate::data::view(store, &data)?;
            (data, view)
        }
        None => (Vec::new(), None),
    };
    let Some(input_path) = request.input.clone() else {
        return once(&runtime, &request, view.as_deref()).map(Submitted::Once);
    };
    let dep = crate::after::job_input(&input_path.to_string_lossy())?;
    if dep.is_some() && request.pairing.is_some() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "--input {}: another job's output cannot be read as pairs (--mate, --paired); \
                 write it to files with `wrun output` first",
                input_path.display()
            ),
        ));
    }
    let (input, input_stamp) = match dep {
        Some(dep) => (None, unstamped(dep)),
        None => {
            let (input, stamp) = crate::input::open(&input_path, request.inflate)?;
            (Some(input), stamp)
        }
    };
    let mut after = Vec::new();
    for id in request.after.iter().copied().chain(dep) {
        if !after.contains(&id) {
            after.push(id);
        }
    }
    let mate = match &request.pairing {
        Some(Pairing::Mate(path)) => Some(open_mate(path, request.inflate)?),
        _ => None,
    };
    let format = |info: &ModuleInfo| {
        check_adaptive(&request, info)?;
        admit::resolve_format(&request.format, info, &input_path, store.as_deref())
    };
    let admitted = admit::admit(
        &runtime,
        &request.task,
        &request.args,
        format,
        request.reduce.as_ref(),
        view.as_deref(),
    )?;
    if request.chunk_weight.is_some() && !admitted.splitter.weighs() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "--chunk-weight: the splitter plugin {} reports no record weights (it does not \
                 export wrun_weights); cut chunks with --chunk-records or --chunk-bytes",
                admitted.format.source
            ),
        ));
    }
    // A bad argument fails here, once, not in every chunk.
    admitted.runner.check_arguments().map_err(|failed| {
        Error::new(
            ErrorKind::Task(wrun_scheduler::failure_kind(&failed.reason)),
            format!(
                "{}: the task refuses its arguments {:?}: {}{}",
                request.task.source,
                request.args,
                failed.reason,
                String::from_utf8_lossy(&failed.log)
                    .lines()
                    .map(|line| format!("\n[task] {line}"))
                    .collect::<String>()
            ),
        )
    })?;
    let mut spec = JobSpec {
        module: request.task.reference(),
        format: Some(admitted.format.reference()),
        input: Some(input_stamp),
        pairs: match (&request.pairing, &mate) {
            (Some(Pairing::Mate(_)), Some((_, stamp))) => Some(Pairs::Mate(stamp.clone())),
            (Some(_), _) => Some(Pairs::Interleaved),
            (None, _) => None,
        },
        output: request.output.as_deref().map(|p| match p.to_str() {
            Some(url) if object::is_url(url) => url.to_owned(),
            _ => std::path::absolute(p)
                .unwrap_or_else(|_| p.to_owned())
                .display()
                .to_string(),
        }),
        chunk_records: request.chunk_records,
        chunk_bytes: request.chunk_bytes,
        chunk_weight: request.chunk_weight,
        adaptive_ms: request.adaptive.map(|t| t.as_millis().max(1) as u64),
        args: request.args.clone(),
        limits: request.limits.clone(),
        keep_going: request.keep_going,
        retries: request.retries,
        inflate: request.inflate,
        checkpoint_every: request.checkpoint_every,
        reduce: request.reduce.as_ref().map(ModuleBytes::reference),
        data,
        after,
    };
    let fingerprint = fingerprint(&spec);
    // Automatic chunking, out of the fingerprint; a compressed input is
    // sized by what it inflates to, which its chunks cover.
    if chunking(&spec) == Chunking::default() {
        let size = |source: &Source, path: &Path| match source.compressed {
            true => crate::input::estimate_inflated(path, request.inflate),
            false => source.size,
        };
        let size = match (&input, &mate, &request.pairing) {
            (Some(input), Some((source, _)), Some(Pairing::Mate(path))) => size(input, &input_path)
                .zip(size(source, path))
                .map(|(a, b)| a + b),
            (Some(input), ..) => size(input, &input_path),
            (None, ..) => None,
        };
        let auto = Chunking::auto(size, placement.local_slots());
        spec.chunk_records = auto.max_records;
        spec.chunk_bytes = auto.max_bytes;
    }
    let name = spec.input.as_ref().map_or("", |i| i.path.as_str());
    // Another job's output (`None` here) is never paired: refused above.
    let input = match (input, &spec.pairs, mate) {
        (None, ..) => None,
        (Some(input), None, _) => Some(input),
        (Some(input), Some(_), Some((mate, stamp))) => {
            Some(interleave(input, name, Some((mate, &stamp.path)), &|| {
                admitted.another_splitter()
            })?)
        }
        (Some(input), Some(_), None) => Some(interleave(input, name, None, &|| {
            admitted.another_splitter()
        })?),
    };
    let mut modules = vec![request.task.bytes, admitted.format.bytes.clone()];
    modules.extend(request.reduce.map(|reduce| reduce.bytes));
    Ok(Submitted::Job(Box::new(Prepared {
        spec,
        fingerprint,
        admitted,
        input,
        modules,
        store: store.filter(|_| keeping.journal),
        keeping,
    })))
}

/// The stamp of job `dep`'s output as an input before it is done: taken
/// when the job starts ([`crate::after::wait_and_open`]).
fn unstamped(dep: JobId) -> InputRef {
    InputRef {
        path: format!("{}{dep}", crate::after::JOB_INPUT),
        size: None,
        modified_ns: None,
        etag: None,
        compressed: false,
    }
}

/// Refuse an output that is one of the files the request reads (input,
/// modules, plugin) or inside wrun's home, before anything is written.
fn check_request_output(request: &Request, home: &Home) -> Result<()> {
    let Some(output) = &request.output else {
        return Ok(());
    };
    let mut reads: Vec<&Path> = request.input.iter().map(PathBuf::as_path).collect();
    if let Some(Pairing::Mate(mate)) = &request.pairing {
        reads.push(mate);
    }
    reads.extend(
        [Some(&request.task), request.reduce.as_ref()]
            .into_iter()
            .flatten()
            .map(|module| Path::new(&module.source)),
    );
    reads.extend(request.data.iter().map(|(_, path)| path.as_path()));
    let plugin = Path::new(&request.format);
    if plugin.is_file() {
        reads.push(plugin);
    }
    check_output(output, &reads, home)
}

/// The fingerprint of a spec: blake3 of its JSON.
fn fingerprint(spec: &JobSpec) -> [u8; 32] {
    let json = serde_json::to_string(spec).expect("a job spec serialises");
    *Digest::of(json.as_bytes()).as_bytes()
}

/// `--chunking adaptive` needs an SDK task of `unit=record`, whose output
/// does not depend on where chunks are cut.
fn check_adaptive(request: &Request, info: &ModuleInfo) -> Result<()> {
    if request.adaptive.is_none() || (info.kind == Kind::Task && info.unit == Unit::Record) {
        return Ok(());
    }
    let what = match info.kind {
        Kind::Task => "an SDK task of unit=chunk",
        _ => "a WASI command, which sees whole chunks",
    };
    Err(Error::new(
        ErrorKind::Usage,
        format!(
            "{}: --chunking adaptive needs an SDK task of unit=record, whose output does not \
             depend on where chunks are cut; this is {what}",
            request.task.source,
        ),
    ))
}

/// Run the task module once on an empty chunk, shown `data` at `/data`.
fn once(runtime: &wrun_runtime::Runtime, request: &Request, data: Option<&Path>) -> Result<Once> {
    let module = admit::admit_one(runtime, &request.task)?;
    check_adaptive(request, module.info())?;
    let runner = admit::runner(runtime, &module, &request.args, data)?;
    Ok(
        match runner.run(Chunk {
            data: &Bytes::new(),
            records: &[],
        }) {
            Ok(done) => Once {
                output: done.output,
                log: done.log,
                error: None,
            },
            Err(failed) => Once {
                output: Vec::new(),
                log: failed.log,
                error: Some(Error::new(
                    ErrorKind::Task(wrun_scheduler::failure_kind(&failed.reason)),
                    format!("{}: {}", runner.source(), failed.reason),
                )),
            },
        },
    )
}

impl Prepared {
    /// Whether it runs without the journal (`--no-journal`).
    pub fn is_journaled(&self) -> bool {
        self.store.is_some()
    }

    /// Its name, whether it starts fresh, and what it keeps.
    pub fn keeping(&self) -> &Keeping {
        &self.keeping
    }

    /// Run it here: the unfinished job with the same fingerprint is
    /// resumed (`note` says so) unless fresh, else a new one is recorded;
    /// the output is opened once the journal has decided (so a refused
    /// resume truncates nothing) and before the job is recorded (so an
    /// unwritable `-o` records nothing), and a resumed job's output keeps
    /// the prefix the journal vouches for and is appended to.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::JobState`] when another process runs the same job;
    /// [`ErrorKind::Dependency`] when a job it waits for does not exist,
    /// failed, was cancelled or removed (see [`crate::after`]);
    /// [`ErrorKind::Output`]; [`ErrorKind::Journal`].
    pub fn start(
        self,
        home: &Home,
        placement: &dyn Placement,
        note: &mut dyn FnMut(String),
    ) -> Result<Run> {
        let Prepared {
            mut spec,
            fingerprint,
            admitted,
            input,
            modules,
            keeping,
            store,
        } = self;
        // Waiting for a job that does not exist is refused before anything
        // is recorded.
        crate::after::check_known(home, &spec)?;
        // The same job, interrupted or cancelled, is resumed; stdin cannot
        // be read again, so a job over it is always new.
        let fresh = keeping.fresh || spec.input.as_ref().is_some_and(|i| i.path == "-");
        let claim = match store {
            Some(store) => Some(Claim::new(home, store, &fingerprint, fresh)?),
            None => None,
        };
        let path = spec.output.as_deref().map(std::path::Path::new);
        let (output, mut journaled) = match claim {
            Some(claim) => {
                let output = Unchecked::open(path)?;
                let modules: Vec<&[u8]> = modules.iter().map(|m| &m[..]).collect();
                let mut journaled = claim.open(
                    &mut spec,
                    &fingerprint,
                    keeping.name.as_deref(),
                    &modules,
                    note,
                )?;
                let output = journaled.open_output(output, &spec, note)?;
                (output, Some(journaled))
            }
            None => (Destination::open(path)?, None),
        };
        // Recorded (`wrun status` shows it waiting), it waits for the jobs
        // it comes after.
        let input = match crate::after::wait_and_open(home, &mut spec, journaled.as_mut(), note)? {
            Some(input) => input,
            None => input.ok_or_else(|| {
                Error::new(
                    ErrorKind::Internal,
                    "a job over another job's output opened none",
                )
            })?,
        };
        Run::new(spec, admitted, placement, input, output, journaled)
    }
}
