//! `wrun`: run a WebAssembly task over every record of an input, sandboxed,
//! on all cores. See `wrun --help`, the README and `ARCHITECTURE.md`.

mod alloc;
mod args;
mod cache;
mod clock;
mod cluster;
mod control;
mod dashboard;
mod drain;
mod exit;
mod inspect;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod malloc;
mod module_source;
mod progress;
mod remote;
mod run;
mod status;
mod submit;
mod summary;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    malloc::tune();
    let cli = args::Cli::parse();
    let grace = match &cli.command {
        args::Command::Submit(submit) => Some(submit.drain.grace),
        args::Command::Resume(resume) => Some(resume.run.drain.grace),
        args::Command::Retry(retry) => Some(retry.run.drain.grace),
        _ => None,
    };
    if let Some(grace) = grace {
        // Before any other thread starts, so that every thread inherits the
        // mask and only the drain thread takes these signals.
        drain::block_signals();
        drain::watch(grace);
    }
    if let args::Command::Node(_) = &cli.command {
        // The node's drain thread starts once the node does.
        drain::as_node();
        drain::block_signals();
    }
    let result = match cli.command {
        args::Command::Submit(submit) => submit::run(*submit),
        args::Command::Status(args) if args.remote.broker.is_some() => remote::status(args),
        args::Command::Logs(args) if args.remote.broker.is_some() => remote::logs(args),
        args::Command::Cancel(args) if args.remote.broker.is_some() => remote::cancel(args),
        args::Command::Snapshot(args) if args.remote.broker.is_some() => remote::snapshot(args),
        args::Command::Resume(args) if args.remote.broker.is_some() => cluster::resume(&args),
        args::Command::Status(args) => status::status(args),
        args::Command::Logs(args) => status::logs(args),
        args::Command::Resume(args) => control::resume(args),
        args::Command::Retry(args) => control::retry(args.run),
        args::Command::Cancel(args) => control::cancel(args),
        args::Command::Snapshot(args) => control::snapshot(args),
        args::Command::Rm(args) => control::rm(args),
        args::Command::Output(args) => control::output(args),
        args::Command::Inspect(inspect) => inspect::run(inspect),
        args::Command::Compile(compile) => cache::compile(compile),
        args::Command::Cache(command) => cache::run(command),
        args::Command::Broker(args) => cluster::broker(args),
        args::Command::Node(args) => cluster::node(args),
        args::Command::Nodes(args) => remote::nodes(args),
        args::Command::Dashboard(args) => dashboard::local(args),
        args::Command::Alloc(command) => alloc::run(command),
        args::Command::Keygen(args) => cluster::keygen(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
