//! The `--broker` side of the command line: submit and resume stream a
//! job through the broker; the job commands run on it.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use wrun_jobs::Destination;
use wrun_journal::JobSpec;
use wrun_remote::client::{Client, ClientError, Ended, Watch};
use wrun_remote::protocol::{Control, JobProgress, Reply, Resume, Submission, ToBroker, ToPeer};

use crate::args::{Remote, ResumeArgs, When};
use crate::exit::{Code, Fail, OrFail};
use crate::progress::{Counts, Progress};

/// How long to wait for the broker's welcome.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(remote: &Remote) -> Result<Client, Fail> {
    let url = remote.broker.as_deref().expect("called with --broker");
    let endpoint = super::endpoint(url)?;
    let key = super::key(remote.key.as_deref())?;
    Client::connect(&endpoint, &key, CONNECT_TIMEOUT).map_err(broker_failure)
}

fn broker_failure(error: ClientError) -> Fail {
    let code = match error {
        ClientError::Input(_) => Code::Input,
        ClientError::Output(_) => Code::Output,
        _ => Code::Broker,
    };
    Fail::new(code, error)
}

/// Ask the broker `control` and wait for its reply; a failure it reports
/// comes back with its exit code.
pub(crate) fn control(remote: &Remote, control: Control) -> Result<Reply, Fail> {
    let mut client = connect(remote)?;
    match client.control(control).map_err(broker_failure)? {
        Reply::Failed { code, message } => Err(Fail::remote(code, message)),
        reply => Ok(reply),
    }
}

/// `wrun submit --broker`: send the job, stream `input` up and the
/// output into `output`, showing its progress as `progress` says.
pub(crate) fn submit(
    remote: &Remote,
    submission: Submission,
    input: Box<dyn Read + Send>,
    output: Option<&Path>,
    progress: When,
) -> Result<(), Fail> {
    let total = submission.size;
    let mut client = connect(remote)?;
    client
        .send(&ToBroker::Submit(Box::new(submission)))
        .map_err(broker_failure)?;
    let credit = loop {
        match client.recv().map_err(broker_failure)? {
            ToPeer::Note(note) => eprintln!("{note}"),
            ToPeer::Accepted { job, credit } => {
                if let Some(job) = job {
                    crate::drain::attach_remote(job, url(remote));
                    eprintln!(
                        "wrun: job {job} on {} (`wrun status {job} --broker ...`)",
                        url(remote)
                    );
                }
                break credit;
            }
            ToPeer::Ended { code, message } => return ended(Ended { code, message }),
            other => return Err(unexpected(&other)),
        }
    };
    let out = Destination::open(output)?;
    stream(
        &mut client,
        credit,
        input,
        out,
        Progress::new(progress, total),
    )
}

/// Stream the job's input up and its output into `out`, showing its notes
/// and `progress`; `out` is finished (a compressed file's end) when the job
/// succeeds.
fn stream(
    client: &mut Client,
    credit: u32,
    input: Box<dyn Read + Send>,
    mut out: Destination,
    progress: Progress,
) -> Result<(), Fail> {
    let mut shown = Shown(progress);
    let ended_with = client.stream(credit, input, &mut out, &mut shown);
    shown.0.finish();
    let ended_with = ended_with.map_err(broker_failure)?;
    if ended_with.code == 0 {
        let name = out.name.clone();
        out.finish()
            .or_fail_with(Code::Output, || format!("cannot write {name}"))?;
    }
    ended(ended_with)
}

/// A remote job's notes and progress, shown as a local job's.
struct Shown(Progress);

impl Watch for Shown {
    fn note(&mut self, line: &str) {
        self.0.println(line);
    }

    fn progress(&mut self, progress: JobProgress) {
        self.0.set(Counts {
            bytes: progress.bytes,
            tasks: progress.tasks,
            failed: progress.failed,
        });
    }
}

/// The broker's address, as given.
fn url(remote: &Remote) -> &str {
    remote.broker.as_deref().unwrap_or_default()
}

/// `wrun resume --broker`: the broker sends the job's spec, this process
/// streams the input it recorded and writes the output where it did.
pub(crate) fn resume(args: &ResumeArgs) -> Result<(), Fail> {
    let mut client = connect(&args.remote)?;
    client
        .send(&ToBroker::Resume(Resume {
            job: args.run.job as u64,
            add_fuel: args.add_fuel,
            priority: args.priority,
        }))
        .map_err(broker_failure)?;
    let (spec, credit) = loop {
        match client.recv().map_err(broker_failure)? {
            ToPeer::Note(note) => eprintln!("{note}"),
            ToPeer::Resuming {
                job,
                spec_json,
                credit,
            } => {
                let spec: JobSpec = serde_json::from_str(&spec_json).or_fail(Code::Broker)?;
                crate::drain::attach_remote(job, url(&args.remote));
                eprintln!("wrun: job {job} on {}", url(&args.remote));
                break (spec, credit);
            }
            ToPeer::Ended { code, message } => return ended(Ended { code, message }),
            other => return Err(unexpected(&other)),
        }
    };
    // Another job's output is read on the broker: nothing to stream.
    let path = spec.input.as_ref().map_or("", |input| input.path.as_str());
    let input: Box<dyn std::io::Read + Send> = match wrun_jobs::after::job_input(path)? {
        Some(_) => Box::new(std::io::empty()),
        None => wrun_jobs::pairs::open_recorded_here(args.run.job, &spec)?.reader,
    };
    let out = Destination::open(spec.output.as_deref().map(Path::new))?;
    let total = spec.chunked_bytes();
    let progress = Progress::new(args.run.progress, total);
    stream(&mut client, credit, input, out, progress)
}

fn ended(ended: Ended) -> Result<(), Fail> {
    match ended.code {
        0 => Ok(()),
        code => Err(Fail::remote(code, ended.message)),
    }
}

fn unexpected(message: &ToPeer) -> Fail {
    let text: String = format!("{message:?}").chars().take(60).collect();
    Fail::new(
        Code::Broker,
        anyhow::anyhow!("the broker sent an unexpected message: {text}"),
    )
}
