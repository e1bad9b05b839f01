//! `wrun submit`: run a task over an input.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use bytes::Bytes;
use wrun_runtime::{Chunk, Limits, Runtime, SplitError, TaskRunner, plugins};
use wrun_scheduler::{Chunking, Job, JobError, LocalExecutor, Summary, Update};

use crate::args::SubmitArgs;
use crate::exit::{Code, Fail, OrFail};
use crate::module_source;
use crate::progress::Progress;

/// Bytes read from the input and handed to the splitter at a time.
const BLOCK_SIZE: usize = 1 << 20;

pub(crate) fn run(args: SubmitArgs) -> Result<(), Fail> {
    let workers = match args.jobs {
        Some(jobs) => jobs as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let limits = Limits {
        fuel: args.fuel,
        timeout: args.timeout.0,
        memory: args.memory,
        output: usize::try_from(args.output_limit).unwrap_or(usize::MAX),
        ..Limits::default()
    };
    // One instance slot per worker, plus the splitter's.
    let slots = workers as u32 + 1;
    let runtime = if args.no_cache {
        Runtime::new(limits, slots)
    } else {
        Runtime::with_store(limits, slots, crate::cache::open_store()?)
    }
    .or_fail(Code::Internal)?;

    let loaded = module_source::load(&args.module, args.verbose)?;
    let module = runtime
        .admit(&loaded.source, &loaded.bytes)
        .or_fail(Code::Module)?;
    let runner = runtime
        .task_runner(&module, &args.args)
        .or_fail(Code::Module)?;

    let Some(input_path) = &args.input else {
        return run_once(&runner, args.output.as_deref());
    };
    let input_name = input_path.display().to_string();
    let (input, size) = open_input(input_path)?;
    let format = resolve_format(&args.format, &module.info().formats, input_path)?;
    let plugin = runtime
        .admit(&format.source, &format.bytes)
        .or_fail(Code::Module)?;
    let splitter = runtime.splitter(&plugin).or_fail(Code::Module)?;

    let chunking = match (args.chunk_records, args.chunk_bytes) {
        (None, None) => Chunking::auto(size, workers),
        (max_records, max_bytes) => Chunking {
            max_records,
            max_bytes,
        },
    };
    let (mut out, output_name) = open_output(args.output.as_deref())?;

    if args.verbose {
        for module in [&module, &plugin] {
            eprintln!(
                "wrun: {}: {} in {:.2} ms",
                module.source(),
                module.origin(),
                module.load_time().as_secs_f64() * 1e3
            );
        }
        eprintln!(
            "wrun: {} ({}) over {input_name} split as {}, {workers} workers, chunks of {}",
            module.source(),
            module.info().kind,
            format.source,
            describe_chunking(chunking)
        );
    }
    let progress = Progress::new(args.progress, size);
    let executor = LocalExecutor::new(runner, workers);
    let job = Job {
        executor: &executor,
        splitter,
        input,
        chunking,
        block_size: BLOCK_SIZE,
        keep_going: args.keep_going,
    };
    let (mut done, mut failed) = (0, 0);
    let result = job.run(&mut out, |update| match update {
        Update::Finished {
            index,
            bytes,
            log,
            failure,
            ..
        } => {
            done += 1;
            failed += u64::from(failure.is_some());
            for line in String::from_utf8_lossy(log).lines() {
                progress.println(&format!("[chunk {index}] {line}"));
            }
            progress.advance(bytes, done, failed);
        }
    });
    progress.finish();
    drop(out);

    let partial = match &args.output {
        Some(_) => format!("; {output_name} holds the output of every chunk before it"),
        None => String::new(),
    };
    match result {
        Ok(summary) => finish(&summary, &input_name, args.verbose),
        Err(JobError::Task(failed)) => {
            let code = Code::of_task(&failed.failure.reason);
            Err(Fail::new(
                code,
                anyhow::anyhow!("{input_name}: {failed}{partial}"),
            ))
        }
        Err(JobError::Split(SplitError::Rejected { plugin, message })) => Err(Fail::new(
            Code::Input,
            anyhow::anyhow!("{input_name}: {message} (format {plugin}){partial}"),
        )),
        Err(error @ JobError::Split(_)) => Err(Fail::new(
            Code::Module,
            anyhow::anyhow!("{input_name}: {error}{partial}"),
        )),
        Err(error @ (JobError::Input(_) | JobError::Chunk(_))) => Err(Fail::new(
            Code::Input,
            anyhow::anyhow!("{input_name}: {error}{partial}"),
        )),
        Err(JobError::Output(error)) => Err(Fail::new(
            Code::Output,
            anyhow::anyhow!("cannot write {output_name}: {error}"),
        )),
    }
}

/// Open `-o`, or standard output; also its name for messages.
fn open_output(path: Option<&Path>) -> Result<(Box<dyn Write>, String), Fail> {
    match path {
        Some(path) => {
            let name = path.display().to_string();
            let file = File::create(path)
                .or_fail_with(Code::Output, || format!("cannot create {name}"))?;
            Ok((Box::new(BufWriter::new(file)), name))
        }
        None => Ok((
            Box::new(BufWriter::new(io::stdout().lock())),
            "standard output".to_owned(),
        )),
    }
}

/// No input: run the module once on an empty chunk, with no records.
fn run_once(runner: &TaskRunner, output: Option<&Path>) -> Result<(), Fail> {
    let (mut out, output_name) = open_output(output)?;
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
            Code::of_task(&failure),
            anyhow::anyhow!("{}: {failure}", runner.source()),
        ));
    }
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .or_fail_with(Code::Output, || format!("cannot write {output_name}"))
}

/// Report a finished job; failures (with `--keep-going`) make it an error.
fn finish(summary: &Summary, input_name: &str, verbose: bool) -> Result<(), Fail> {
    if verbose {
        let secs = summary.elapsed.as_secs_f64();
        eprintln!(
            "wrun: {} chunks, {} records, {} in {:.3}s ({}/s)",
            summary.tasks,
            summary.records,
            bytesize::ByteSize(summary.input_bytes),
            secs,
            bytesize::ByteSize((summary.input_bytes as f64 / secs.max(1e-9)) as u64),
        );
    }
    if summary.tasks == 0 {
        eprintln!("wrun: warning: {input_name}: no records");
    }
    let Some(first) = summary.failed.first() else {
        return Ok(());
    };
    for failed in &summary.failed {
        eprintln!("wrun: {input_name}: {failed}");
    }
    Err(Fail::new(
        Code::of_task(&first.failure.reason),
        anyhow::anyhow!(
            "{} of {} chunks failed",
            summary.failed.len(),
            summary.tasks
        ),
    ))
}

/// Open the input; its size, when it is a regular file.
fn open_input(path: &Path) -> Result<(Box<dyn Read + Send>, Option<u64>), Fail> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(io::stdin()), None));
    }
    let file = File::open(path).or_fail_with(Code::Input, || {
        format!("cannot open input {}", path.display())
    })?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Ok((Box::new(file), size))
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
        let extension = input.extension().and_then(|e| e.to_str());
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

fn describe_chunking(chunking: Chunking) -> String {
    match (chunking.max_records, chunking.max_bytes) {
        (Some(records), Some(bytes)) => {
            format!("{records} records or {}", bytesize::ByteSize(bytes))
        }
        (Some(records), None) => format!("{records} records"),
        (None, Some(bytes)) => format!("{}", bytesize::ByteSize(bytes)),
        (None, None) => "the whole input".to_owned(),
    }
}
