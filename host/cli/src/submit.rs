//! `wrun submit`: the arguments as a job request, run here (a new journaled
//! job, or the unfinished job with the same definition, resumed) or on a
//! broker.

use std::io::Write;

use serde_bytes::ByteBuf;
use wrun_jobs::submit::{self, Keeping, Request, Submitted};
use wrun_jobs::{Home, Local, Pairing, Prepared};
use wrun_journal::{InflateLimits, LimitsSpec, SpawnSpec};
use wrun_remote::protocol::Submission;

use crate::args::{ChunkingMode, PairedLayout, SubmitArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::run::{self, Display};
use crate::{cluster, module_source};

pub(crate) fn run(args: SubmitArgs) -> Result<(), Fail> {
    let home = Home::from_env()?;
    let placement = Local::new(args.jobs);
    if args.input.is_none() && args.remote.broker.is_some() {
        return Err(Fail::new(
            Code::Usage,
            anyhow::anyhow!("--broker runs jobs over an input: give one with --input"),
        ));
    }
    // Module files' digests are remembered in the home's store by their
    // stamps, unless the job keeps nothing there.
    let memo = match args.no_cache && args.no_journal {
        true => None,
        false => Some(home.local_store()?),
    };
    let reduce = match &args.reduce {
        Some(path) => Some(module_source::load(path, args.verbose, memo.as_ref())?),
        None => None,
    };
    let request = Request {
        task: module_source::load(&args.module, args.verbose, memo.as_ref())?,
        format: args.format.clone(),
        reduce,
        input: args.input.clone(),
        pairing: match (&args.mate, args.paired) {
            (Some(mate), _) => Some(Pairing::Mate(mate.clone())),
            (None, Some(PairedLayout::Interleaved)) => Some(Pairing::Interleaved),
            (None, None) => None,
        },
        output: args.output.clone(),
        args: args.args.clone(),
        chunk_records: args.chunk_records,
        chunk_bytes: args.chunk_bytes,
        chunk_weight: args.chunk_weight,
        adaptive: (args.chunking == ChunkingMode::Adaptive).then_some(args.target_task_time),
        limits: LimitsSpec {
            fuel: args.fuel,
            timeout_ms: args.timeout.0.map(|d| d.as_millis() as u64),
            memory: args.memory,
            output: args.output_limit,
            spawn: spawn_spec(&args),
        },
        keep_going: args.keep_going,
        retries: args.retries,
        inflate: InflateLimits {
            max_bytes: args.max_inflated,
            max_ratio: args.max_ratio,
        },
        checkpoint_every: args.checkpoint_every,
        data: args.data.clone(),
        after: args.after.clone(),
    };
    let keeping = Keeping {
        name: args.name.clone(),
        fresh: args.fresh,
        journal: !args.no_journal,
        cache: !args.no_cache,
    };
    let prepared = match submit::prepare(&home, request, keeping, &placement)? {
        Submitted::Once(once) => return run_once(once, &args),
        Submitted::Job(prepared) => *prepared,
    };
    if args.remote.broker.is_some() {
        return on_broker(prepared, &args);
    }
    let run = prepared.start(&home, &placement, &mut |note| eprintln!("{note}"))?;
    if let (true, Some(job)) = (args.verbose, run.job()) {
        eprintln!("wrun: job {job}");
    }
    let display = Display {
        progress: args.progress,
        verbose: args.verbose,
    };
    run::execute(run, display)
}

/// `--broker`: send the prepared job, stream the input up and the output
/// back.
fn on_broker(prepared: Prepared, args: &SubmitArgs) -> Result<(), Fail> {
    let submission = Submission {
        spec_json: serde_json::to_string(&prepared.spec).expect("a job spec serialises"),
        fingerprint: prepared.fingerprint,
        name: args.name.clone(),
        fresh: args.fresh || args.input.as_ref().is_some_and(|i| i.as_os_str() == "-"),
        journal: !args.no_journal,
        priority: args.priority,
        size: prepared.input.as_ref().and_then(|input| input.size),
        modules: prepared.modules.into_iter().map(ByteBuf::from).collect(),
    };
    // Another job's output is read on the broker: nothing to stream.
    let input = match prepared.input {
        Some(input) => input.reader,
        None => Box::new(std::io::empty()),
    };
    cluster::submit(
        &args.remote,
        submission,
        input,
        args.output.as_deref(),
        args.progress,
    )
}

/// No input: the module ran once on an empty chunk, with no records.
fn run_once(once: submit::Once, args: &SubmitArgs) -> Result<(), Fail> {
    for line in String::from_utf8_lossy(&once.log).lines() {
        eprintln!("[task] {line}");
    }
    if let Some(error) = once.error {
        return Err(error.into());
    }
    let mut out = wrun_jobs::Destination::open(args.output.as_deref())?;
    let name = out.name.clone();
    out.write_all(&once.output)
        .and_then(|()| out.finish())
        .or_fail_with(Code::Output, || format!("cannot write {name}"))
}

/// The spawn limits given, `None` when all are the defaults (so the job's
/// spec, and its fingerprint, are those of a job that sets none).
fn spawn_spec(args: &SubmitArgs) -> Option<SpawnSpec> {
    let defaults = wrun_scheduler::SpawnLimits::default();
    let spec = SpawnSpec {
        max_depth: args.max_spawn_depth,
        max_children: args.max_children,
        max_in_flight: args.max_children_in_flight,
    };
    let default = SpawnSpec {
        max_depth: defaults.max_depth,
        max_children: defaults.max_children,
        max_in_flight: defaults.max_in_flight,
    };
    (spec != default).then_some(spec)
}
