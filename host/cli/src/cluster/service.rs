//! The broker's [`Service`]: jobs that clients submit or resume run here,
//! on a thread each, exactly as `wrun submit` runs them locally, except
//! that the input comes from the client, the output goes back to it, and
//! the tasks run on the nodes. Job commands run as a child `wrun` on the
//! broker's journal.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use wrun_journal::{JobId, JobSpec, TaskStateKind};
use wrun_remote::broker::{BrokerHandle, ClientLink, Service};
use wrun_remote::executor::RemoteExecutor;
use wrun_remote::protocol::{MAX_MESSAGE, Resume, Submission, ToPeer, Work};
use wrun_store::{BlobStore, Digest};

use crate::args::When;
use crate::control;
use crate::exit::{Code, Fail, OrFail};
use crate::home;
use crate::job::{self, Display, Journaled, Plan};

/// Commands a client may run on the broker.
const COMMANDS: [&str; 3] = ["status", "logs", "cancel"];

pub(super) struct BrokerService {
    handle: BrokerHandle,
    store: Arc<BlobStore>,
    store_url: Option<String>,
}

impl BrokerService {
    pub(super) fn new(
        handle: BrokerHandle,
        store: Arc<BlobStore>,
        store_url: Option<String>,
    ) -> Self {
        BrokerService {
            handle,
            store,
            store_url,
        }
    }

    fn end(link: &ClientLink, result: Result<(), Fail>) {
        let (code, message) = match result {
            Ok(()) => (0, String::new()),
            Err(fail) => fail.into_parts(),
        };
        link.send(ToPeer::Ended { code, message });
    }

    fn executor(&self, spec: &JobSpec, priority: i32) -> Result<RemoteExecutor, Fail> {
        let module = Digest::from_hex(&spec.module.digest).ok_or_else(|| {
            Fail::new(
                Code::Journal,
                anyhow::anyhow!("bad module digest {:?}", spec.module.digest),
            )
        })?;
        let work = Work {
            module: *module.as_bytes(),
            args: spec.args.clone(),
            limits: wrun_remote::convert::limits_to_wire(&spec.limits),
        };
        Ok(RemoteExecutor::new(self.handle.clone(), work, priority))
    }

    /// Run `spec` with the client's input and output.
    fn run(
        &self,
        spec: JobSpec,
        priority: i32,
        size: Option<u64>,
        journaled: Option<Journaled>,
        link: &ClientLink,
    ) -> Result<(), Fail> {
        // The broker runs the splitter and the reducer, one at a time.
        let loaded = job::load(&spec, 1, &self.store)?;
        let plan = Plan {
            executor: Box::new(self.executor(&spec, priority)?),
            spec,
            splitter: loaded.splitter,
            modules: loaded.modules,
            input: Box::new(link.input()),
            size,
            reducer: loaded.reducer,
        };
        let display = Display {
            progress: When::Never,
            verbose: false,
        };
        let output = (
            Box::new(link.output()) as Box<dyn std::io::Write>,
            "the client's output".to_owned(),
        );
        job::run(plan, output, journaled, display)
    }

    fn submission(&self, submission: Submission, link: &ClientLink) -> Result<(), Fail> {
        let mut spec: JobSpec = serde_json::from_str(&submission.spec_json).or_fail(Code::Usage)?;
        let modules: Vec<&[u8]> = submission.modules.iter().map(|m| &m[..]).collect();
        // Kept whether journaled or not: nodes fetch the task module from
        // the store, and the broker loads every module from it.
        for bytes in &modules {
            job::keep_module(&self.store, bytes)?;
        }
        let journaled = match submission.journal {
            false => None,
            true => {
                let journal = home::open_journal()?;
                let resumable = match submission.fresh {
                    true => None,
                    false => job::unfinished(&journal, &submission.fingerprint)?,
                };
                Some(job::open_job(
                    journal,
                    self.store.clone(),
                    resumable,
                    &mut spec,
                    &submission.fingerprint,
                    submission.name.as_deref(),
                    // Kept above already.
                    &[],
                    &mut |note| link.send(ToPeer::Note(note)),
                )?)
            }
        };
        if let Some(journaled) = &journaled {
            eprintln!("wrun broker: job {} accepted", journaled.job);
        }
        link.send(ToPeer::Accepted {
            job: journaled.as_ref().map(|j| j.job as u64),
            credit: link.input_credit(),
        });
        self.run(spec, submission.priority, submission.size, journaled, link)
    }

    fn resumption(&self, resume: Resume, link: &ClientLink) -> Result<(), Fail> {
        let id = resume.job as JobId;
        let mut journal = home::open_journal()?;
        let mut note = |line: String| link.send(ToPeer::Note(line));
        if !control::resumable(&mut journal, id, resume.add_fuel, &mut note)? {
            return Ok(());
        }
        let lock = job::lock(id)?;
        let spec = journal.job(id).or_fail(Code::Journal)?.spec;
        let (_, prior) = job::reopen(&mut journal, id, &[TaskStateKind::Cancelled])?;
        link.send(ToPeer::Resuming {
            job: resume.job,
            spec_json: serde_json::to_string(&spec).expect("a job spec serialises"),
            credit: link.input_credit(),
        });
        let size = spec
            .input
            .as_ref()
            .filter(|input| !input.compressed)
            .and_then(|input| input.size);
        let journaled = Journaled {
            journal,
            job: id,
            _lock: lock,
            store: self.store.clone(),
            prior,
        };
        self.run(spec, resume.priority, size, Some(journaled), link)
    }
}

impl Service for BrokerService {
    fn submit(&self, submission: Submission, link: ClientLink) {
        let result = self.submission(submission, &link);
        Self::end(&link, result);
    }

    fn resume(&self, resume: Resume, link: ClientLink) {
        let result = self.resumption(resume, &link);
        Self::end(&link, result);
    }

    fn command(&self, argv: Vec<String>) -> (u8, Vec<u8>, Vec<u8>) {
        // Only job commands, and only on this broker's own journal.
        let allowed = argv.first().is_some_and(|c| COMMANDS.contains(&c.as_str()))
            && !argv
                .iter()
                .any(|a| a.starts_with("--broker") || a.starts_with("--key"));
        if !allowed {
            let message = format!(
                "wrun: error: a broker runs only these commands for clients, on its own \
                 journal: {}\n",
                COMMANDS.join(", ")
            );
            return (Code::Usage as u8, Vec::new(), message.into_bytes());
        }
        let exe = std::env::current_exe().unwrap_or_else(|_| Path::new("wrun").to_owned());
        let mut command = Command::new(exe);
        command
            .args(&argv)
            // The child runs here, on this journal.
            .env_remove("WRUN_BROKER")
            .env_remove("WRUN_KEY");
        if let Some(url) = &self.store_url {
            command.env("WRUN_STORE", url);
        }
        match command.output() {
            Ok(mut output) => {
                // One message carries it back.
                let limit = MAX_MESSAGE / 2;
                if output.stdout.len() > limit {
                    output.stdout.truncate(limit);
                    output.stderr.extend_from_slice(
                        b"wrun: the output was cut: run the command on the broker's machine\n",
                    );
                }
                output.stderr.truncate(limit / 2);
                (
                    output.status.code().unwrap_or(1) as u8,
                    output.stdout,
                    output.stderr,
                )
            }
            Err(e) => (
                Code::Internal as u8,
                Vec::new(),
                format!("wrun: error: the broker cannot run wrun: {e}\n").into_bytes(),
            ),
        }
    }
}
