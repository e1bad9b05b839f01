//! `wrun alloc`: a broker's allocation queues. Every command is one typed
//! request to the broker (`Control::Alloc`), answered with the queues
//! after it, which every command prints (`wrun_alloc::view`); `add
//! --dry-run` only renders the batch script, here.

use std::path::PathBuf;

use wrun_alloc::{QueueSpec, Script, System, view};
use wrun_jobs::Home;
use wrun_remote::protocol::{AllocCommand as Request, Control, Reply};

use crate::args::{AllocAddArgs, AllocCommand, Remote};
use crate::exit::{Code, Fail, OrFail};
use crate::remote::{ask, parse, unexpected};

/// `wrun alloc ...`.
pub(crate) fn run(command: AllocCommand) -> Result<(), Fail> {
    let (remote, request, json) = match command {
        AllocCommand::Add(args) if args.dry_run => return dry_run(&args),
        AllocCommand::Add(args) => {
            let spec = spec(&args)?;
            (args.remote, Request::Add(spec), false)
        }
        AllocCommand::Ls { json, remote } => (remote, Request::List, json),
        AllocCommand::Pause(args) => (args.remote, Request::Pause(args.name), false),
        AllocCommand::Resume(args) => (args.remote, Request::Resume(args.name), false),
        AllocCommand::Rm(args) => (args.remote, Request::Remove(args.name), false),
    };
    broker(&remote)?;
    let queues: Vec<wrun_alloc::Queue> = match ask(&remote, Control::Alloc(request))? {
        Reply::Allocs(text) => parse(&text)?,
        other => return Err(unexpected(&other)),
    };
    if json {
        let text = serde_json::to_string_pretty(&queues).or_fail(Code::Internal)?;
        println!("{text}");
    } else {
        print!("{}", view::table(&queues));
    }
    Ok(())
}

/// The broker's endpoint, which `wrun alloc` needs.
fn broker(remote: &Remote) -> Result<&str, Fail> {
    remote.broker.as_deref().ok_or_else(|| {
        Fail::new(
            Code::Usage,
            anyhow::anyhow!("wrun alloc works on a broker's queues: give --broker tcp://HOST:PORT"),
        )
    })
}

/// The queue `wrun alloc add` asks for.
fn spec(args: &AllocAddArgs) -> Result<QueueSpec, Fail> {
    let system: System = args.system.parse().or_fail(Code::Usage)?;
    Ok(QueueSpec {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| system.name().to_owned()),
        system,
        broker: broker(&args.remote)?.to_owned(),
        time: args.time,
        max_nodes: args.max_nodes,
        slots: args.slots,
        backlog: args.backlog,
        idle_timeout: args.idle_timeout,
        extra: args.extra.clone(),
    })
}

/// `wrun alloc add --dry-run`: the script the broker would submit, were it
/// this wrun, with this --key, in the default broker home.
fn dry_run(args: &AllocAddArgs) -> Result<(), Fail> {
    let spec = spec(args)?;
    let wrun = std::env::current_exe().or_fail(Code::Internal)?;
    let key = match &args.remote.key {
        Some(key) => Some(std::path::absolute(key).or_fail(Code::Usage)?),
        None => None,
    };
    let log_dir: PathBuf = Home::from_env()?
        .root()
        .join("broker")
        .join("alloc")
        .join(&spec.name);
    let job_name = spec.job_name();
    let script = Script {
        job_name: &job_name,
        wrun: &wrun,
        connect: &spec.broker,
        key: key.as_deref(),
        slots: spec.slots,
        time: spec.time,
        idle_timeout: spec.idle_timeout,
        log_dir: &log_dir,
    };
    print!("{}", spec.system.driver().render(&script));
    Ok(())
}
