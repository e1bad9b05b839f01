//! Shared helpers: guest paths, runtimes, and running the `wrun` binary
//! with a bounded wait.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use wrun_runtime::{Chunk, Limits, Runtime, TaskFailure, TaskOutput};

pub(crate) use wrun_tests::{
    COMMAND_PROBE, EVOLVE, FASTA_PLUGIN, GC_CONTENT, KMER_COUNT, KMER_MERGE, NQUEENS, PI,
    SW_SEARCH, TASK_PROBE, WC, repo,
};

/// Longest any `wrun` process may run in a test.
const PROCESS_LIMIT: Duration = Duration::from_secs(120);

/// The shipped sample FASTA and its expected gc-content output.
pub(crate) fn sample() -> (PathBuf, String) {
    let fasta = repo().join("examples/data/reads.fa");
    let expected =
        std::fs::read_to_string(repo().join("examples/data/reads.gc.tsv")).expect("golden output");
    (fasta, expected)
}

/// Run one chunk made of `records` through `module` under `limits`.
pub(crate) fn run_task(
    limits: Limits,
    module: &str,
    args: &[&str],
    records: &[&[u8]],
) -> Result<TaskOutput, TaskFailure> {
    let runtime = Runtime::new(limits, 2).expect("runtime");
    let bytes = std::fs::read(module).expect("guest");
    let module = runtime.admit(module, &bytes).expect("admitted");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let runner = runtime.task_runner(&module, &args).expect("runner");
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for record in records {
        offsets.push(data.len() as u32);
        data.extend_from_slice(record);
    }
    if offsets.is_empty() {
        offsets.push(0);
    }
    runner.run(Chunk {
        data: &Bytes::from(data),
        records: &offsets,
    })
}

/// The `wrun` binary, built by cargo for this test run.
pub(crate) fn wrun_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wrun"))
}

/// What a `wrun` run produced.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("utf-8 output")
    }
}

/// Run `wrun args…` (with `stdin` fed if given) with a `WRUN_HOME` of its
/// own, killing it if it outlives [`PROCESS_LIMIT`].
pub(crate) fn wrun(args: &[&str], stdin: Option<&Path>) -> Run {
    let home = tempfile::tempdir().expect("temp WRUN_HOME");
    wrun_in(home.path(), args, stdin)
}

/// Run `wrun args…` with `home` as `WRUN_HOME` (see [`wrun`]).
pub(crate) fn wrun_in(home: &Path, args: &[&str], stdin: Option<&Path>) -> Run {
    wrun_with_env(home, args, stdin, &[])
}

/// [`wrun_in`] with the variables `env` (name, value) set as well.
pub(crate) fn wrun_with_env(
    home: &Path,
    args: &[&str],
    stdin: Option<&Path>,
    env: &[(&str, &str)],
) -> Run {
    let mut command = Command::new(wrun_binary());
    command
        .env("WRUN_HOME", home)
        .envs(env.iter().copied())
        .args(args)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match stdin {
            Some(path) => Stdio::from(std::fs::File::open(path).expect("stdin file")),
            None => Stdio::null(),
        });
    let output = output_within(command, &format!("wrun {args:?}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Run `command` (its stdout and stderr piped) to its end, killing it if
/// it outlives [`PROCESS_LIMIT`]; `what` names it in the panic.
pub(crate) fn output_within(mut command: Command, what: &str) -> Output {
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<std::io::Result<Output>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PROCESS_LIMIT) {
        Ok(output) => output.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{what} ran longer than {PROCESS_LIMIT:?}");
        }
    }
}

/// Compare `actual` with `tests/golden/<name>`; with `WRUN_BLESS=1` in the
/// environment, rewrite the golden file instead (then review the diff).
pub(crate) fn assert_golden(name: &str, actual: &str) {
    let golden = repo().join("tests/golden").join(name);
    if std::env::var_os("WRUN_BLESS").is_some() {
        std::fs::write(&golden, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with WRUN_BLESS=1 to create it)",
            golden.display()
        )
    });
    assert_eq!(actual, expected, "output differs from {}", golden.display());
}

/// Start `wrun args…` with `home` as `WRUN_HOME`, without waiting for it.
pub(crate) fn spawn_wrun(home: &Path, args: &[&str]) -> std::process::Child {
    Command::new(wrun_binary())
        .env("WRUN_HOME", home)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wrun")
}

/// `wrun status JOB --json` (or the job table without JOB), parsed.
pub(crate) fn status_json(home: &Path, job: Option<&str>) -> serde_json::Value {
    let mut args = vec!["status", "--json"];
    args.extend(job);
    let run = wrun_in(home, &args, None);
    assert_eq!(run.code, 0, "wrun status: {}", run.stderr);
    serde_json::from_slice(&run.stdout).expect("status --json is JSON")
}

/// Poll `condition` until it holds, for at most [`PROCESS_LIMIT`]: for
/// waiting on another process, whose progress has no other signal.
pub(crate) fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PROCESS_LIMIT;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
