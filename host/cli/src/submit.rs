//! `wrun submit`: run a task over an input, as a new journaled job (or the
//! unfinished job with the same definition, resumed).

use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use serde_bytes::ByteBuf;
use wrun_journal::{InflateLimits, InputRef, JobSpec, LimitsSpec, ModuleRef};
use wrun_remote::protocol::Submission;
use wrun_runtime::{Chunk, Kind, TaskRunner, Unit, plugins};
use wrun_scheduler::{Chunking, LocalExecutor};
use wrun_store::Digest;

use crate::args::{ChunkingMode, SubmitArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::job::{self, Display, Plan};
use crate::{cluster, home, input, module_source};

pub(crate) fn run(args: SubmitArgs) -> Result<(), Fail> {
    let workers = job::workers(args.jobs);
    let limits = LimitsSpec {
        fuel: args.fuel,
        timeout_ms: args.timeout.0.map(|d| d.as_millis() as u64),
        memory: args.memory,
        output: args.output_limit,
    };
    // The store holds the artifact cache and the journal's modules and
    // large outputs: with neither, wrun needs no home at all.
    let store = match args.no_cache && args.no_journal {
        true => None,
        false => Some(home::open_store()?),
    };
    let cache = store.clone().filter(|_| !args.no_cache);
    let runtime = job::runtime(job::limits(&limits), workers, cache)?;

    let loaded = module_source::load(&args.module, args.verbose)?;
    let module = runtime
        .admit(&loaded.source, &loaded.bytes)
        .or_fail(Code::Module)?;
    let runner = runtime
        .task_runner(&module, &args.args)
        .or_fail(Code::Module)?;

    if args.chunking == ChunkingMode::Adaptive
        && (module.info().kind != Kind::Task || module.info().unit != Unit::Record)
    {
        let what = match module.info().kind {
            Kind::Task => "an SDK task of unit=chunk",
            _ => "a WASI command, which sees whole chunks",
        };
        return Err(Fail::new(
            Code::Usage,
            anyhow::anyhow!(
                "{}: --chunking adaptive needs an SDK task of unit=record, whose output does \
                 not depend on where chunks are cut; this is {what}",
                module.source(),
            ),
        ));
    }
    let Some(input_path) = &args.input else {
        if args.remote.broker.is_some() {
            return Err(Fail::new(
                Code::Usage,
                anyhow::anyhow!("--broker runs jobs over an input: give one with --input"),
            ));
        }
        return run_once(&runner, args.output.as_deref());
    };
    let inflate = InflateLimits {
        max_bytes: args.max_inflated,
        max_ratio: args.max_ratio,
    };
    let input::Opened {
        reader: input,
        size,
        compressed,
    } = input::open(input_path, inflate)?;
    let format = resolve_format(&args.format, &module.info().formats, input_path)?;
    let plugin = runtime
        .admit(&format.source, &format.bytes)
        .or_fail(Code::Module)?;
    let splitter = runtime.splitter(&plugin).or_fail(Code::Module)?;
    let reduce = match &args.reduce {
        Some(path) => {
            let loaded = module_source::load(path, args.verbose)?;
            let module = runtime
                .admit(&loaded.source, &loaded.bytes)
                .or_fail(Code::Module)?;
            let runner = runtime.task_runner(&module, &[]).or_fail(Code::Module)?;
            Some((loaded, module, runner))
        }
        None => None,
    };

    let mut spec = JobSpec {
        module: ModuleRef {
            source: absolute(&loaded.source),
            digest: module.digest().to_hex(),
        },
        format: Some(ModuleRef {
            source: absolute(&format.source),
            digest: Digest::of(&format.bytes).to_hex(),
        }),
        input: Some(InputRef {
            compressed,
            ..input::stamp(input_path)
        }),
        output: job::output_ref(args.output.as_deref()),
        chunk_records: args.chunk_records,
        chunk_bytes: args.chunk_bytes,
        chunk_residues: args.chunk_residues,
        adaptive_ms: (args.chunking == ChunkingMode::Adaptive)
            .then(|| args.target_task_time.as_millis().max(1) as u64),
        args: args.args.clone(),
        limits,
        keep_going: args.keep_going,
        retries: args.retries,
        inflate,
        checkpoint_every: args.checkpoint_every,
        reduce: reduce.as_ref().map(|(loaded, module, _)| ModuleRef {
            source: absolute(&loaded.source),
            digest: module.digest().to_hex(),
        }),
    };
    // The definition as the user gave it (auto chunking unresolved): the
    // same submit again finds this job by it.
    let fingerprint = *Digest::of(
        serde_json::to_string(&spec)
            .expect("a job spec serialises")
            .as_bytes(),
    )
    .as_bytes();
    if job::chunking(&spec) == Chunking::default() {
        let auto = Chunking::auto(size, workers);
        spec.chunk_records = auto.max_records;
        spec.chunk_bytes = auto.max_bytes;
    }
    if args.remote.broker.is_some() {
        let mut modules = vec![loaded.bytes, format.bytes];
        modules.extend(reduce.map(|(reducer, _, _)| reducer.bytes));
        let submission = Submission {
            spec_json: serde_json::to_string(&spec).expect("a job spec serialises"),
            fingerprint,
            name: args.name.clone(),
            fresh: args.fresh || input_path.as_os_str() == "-",
            journal: !args.no_journal,
            priority: args.priority,
            size,
            modules: modules.into_iter().map(ByteBuf::from).collect(),
        };
        return cluster::submit(&args.remote, submission, input, args.output.as_deref());
    }
    let display = Display {
        progress: args.progress,
        verbose: args.verbose,
    };
    // The same job, interrupted or cancelled, is resumed; if it is running
    // in another process, this one refuses rather than write its output too.
    let journal = match store.filter(|_| !args.no_journal) {
        None => None,
        Some(store) => {
            let journal = home::open_journal()?;
            let resumable = match args.fresh || input_path.as_os_str() == "-" {
                true => None,
                false => job::unfinished(&journal, &fingerprint)?,
            };
            Some((journal, store, resumable))
        }
    };
    let (out, output_name) = job::open_output(args.output.as_deref())?;
    let journaled = match journal {
        None => None,
        Some((journal, store, resumable)) => {
            let mut modules = vec![&loaded.bytes[..], &format.bytes[..]];
            if let Some((reducer, _, _)) = &reduce {
                modules.push(&reducer.bytes);
            }
            let journaled = job::open_job(
                journal,
                store,
                resumable,
                &mut spec,
                &fingerprint,
                args.name.as_deref(),
                &modules,
                &mut |note| eprintln!("{note}"),
            )?;
            if args.verbose {
                eprintln!("wrun: job {}", journaled.job);
            }
            Some(journaled)
        }
    };
    let plan = Plan {
        spec,
        executor: Box::new(LocalExecutor::new(runner, workers)),
        splitter,
        modules: [module, plugin],
        input,
        size,
        reducer: reduce.map(|(_, _, runner)| runner),
    };
    job::run(plan, (out, output_name), journaled, display)
}

/// No input: run the module once on an empty chunk, with no records.
fn run_once(runner: &TaskRunner, output: Option<&Path>) -> Result<(), Fail> {
    let (mut out, output_name) = job::open_output(output)?;
    let (bytes, log, failure) = match runner.run(Chunk {
        data: &Bytes::new(),
        records: &[],
    }) {
        Ok(done) => (done.output, done.log, None),
        Err(failed) => (Vec::new(), failed.log, Some(failed.reason)),
    };
    for line in String::from_utf8_lossy(&log).lines() {
        eprintln!("[task] {line}");
    }
    if let Some(failure) = failure {
        return Err(Fail::new(
            Code::of_task(wrun_scheduler::failure_kind(&failure)),
            anyhow::anyhow!("{}: {failure}", runner.source()),
        ));
    }
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .or_fail_with(Code::Output, || format!("cannot write {output_name}"))
}

/// A splitter plugin's bytes and name.
struct Format {
    source: String,
    bytes: Vec<u8>,
}

/// `--format`: `auto`, a builtin name, or a plugin file.
fn resolve_format(format: &str, task_formats: &[String], input: &Path) -> Result<Format, Fail> {
    let builtin = |name: &str| {
        plugins::builtin(name).map(|bytes| Format {
            source: plugins::source_name(name),
            bytes: bytes.to_vec(),
        })
    };
    if format == "auto" {
        let extension = input::format_extension(input);
        let name = plugins::detect(task_formats, extension);
        return Ok(builtin(name).expect("detect returns a builtin"));
    }
    if let Some(found) = builtin(format) {
        return Ok(found);
    }
    let path = Path::new(format);
    if path.is_file() {
        let bytes = std::fs::read(path)
            .or_fail_with(Code::Module, || format!("cannot read plugin {format}"))?;
        return Ok(Format {
            source: format.to_owned(),
            bytes,
        });
    }
    let known: Vec<&str> = plugins::names().collect();
    Err(Fail::new(
        Code::Module,
        anyhow::anyhow!(
            "unknown format {format:?}: use auto, {}, or the path of a splitter plugin .wasm",
            known.join(", ")
        ),
    ))
}

/// A module's source as recorded: a file as an absolute path (a resume may
/// fall back to it from another directory), a builtin as its name.
fn absolute(source: &str) -> String {
    let path = Path::new(source);
    match path.is_file() {
        true => std::path::absolute(path)
            .map_or_else(|_| source.to_owned(), |p| p.display().to_string()),
        false => source.to_owned(),
    }
}
