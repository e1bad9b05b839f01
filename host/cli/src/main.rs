//! `wrun`: run a WebAssembly task over every record of an input, sandboxed,
//! on all cores. See `wrun --help`, the README and `ARCHITECTURE.md`.

mod args;
mod cache;
mod exit;
mod inspect;
mod module_source;
mod progress;
mod submit;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let result = match cli.command {
        args::Command::Submit(submit) => submit::run(submit),
        args::Command::Inspect(inspect) => inspect::run(inspect),
        args::Command::Compile(compile) => cache::compile(compile),
        args::Command::Cache(command) => cache::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
