//! PBS Pro / OpenPBS: `qsub`, `qstat -f -F json -x` (every job, finished
//! ones included, as JSON), `qdel`. PBS is not installable on the test
//! machines: the parser is tested on recorded listings only.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use super::{BatchState, BatchSystem, Observed, Script, SystemError, hms};

/// PBS.
#[derive(Debug, Clone, Copy)]
pub struct Pbs;

/// `qstat -f -F json`: the fields wrun reads.
#[derive(Deserialize)]
struct Listing {
    #[serde(rename = "Jobs", default)]
    jobs: BTreeMap<String, Job>,
}

#[derive(Deserialize)]
struct Job {
    #[serde(rename = "Job_Name")]
    name: String,
    job_state: String,
    #[serde(rename = "Exit_status")]
    exit_status: Option<i64>,
    comment: Option<String>,
}

impl BatchSystem for Pbs {
    fn render(&self, script: &Script<'_>) -> String {
        // `-V`: the node inherits the broker's environment, as under Slurm.
        format!(
            "#!/bin/bash\n\
             #PBS -N {name}\n\
             #PBS -V\n\
             #PBS -l walltime={time}\n\
             #PBS -l select=1:ncpus={slots}\n\
             #PBS -j oe\n\
             #PBS -o {log}/\n\
             {exec}",
            name = script.job_name,
            time = hms(script.time),
            slots = script.slots,
            log = script.log_dir.display(),
            exec = script.exec_node("PBS_JOBID"),
        )
    }

    fn submit(&self, path: &Path, extra: &[String]) -> Command {
        let mut command = Command::new("qsub");
        command.args(extra).arg(path);
        command
    }

    fn submitted(&self, stdout: &str) -> Result<String, SystemError> {
        // `123.server`
        let id = stdout.trim();
        match !id.is_empty() && !id.contains(char::is_whitespace) {
            true => Ok(id.to_owned()),
            false => Err(SystemError::NoJobId {
                command: "qsub",
                output: stdout.to_owned(),
            }),
        }
    }

    fn poll(&self, _job_name: &str) -> Command {
        let mut command = Command::new("qstat");
        command.args(["-f", "-F", "json", "-x"]);
        command
    }

    fn parse(&self, stdout: &str) -> Result<Vec<Observed>, SystemError> {
        let listing: Listing = serde_json::from_str(stdout).map_err(|e| SystemError::Listing {
            command: "qstat -f -F json",
            detail: e.to_string(),
        })?;
        Ok(listing
            .jobs
            .into_iter()
            .map(|(id, job)| Observed {
                id,
                state: state_of(&job),
                name: job.name,
            })
            .collect())
    }

    fn cancel(&self, id: &str) -> Command {
        let mut command = Command::new("qdel");
        command.arg(id);
        command
    }
}

/// A job's `job_state` letter, with its exit status and comment once ended.
fn state_of(job: &Job) -> BatchState {
    match job.job_state.as_str() {
        "Q" | "H" | "W" | "T" | "S" | "U" => BatchState::Queued,
        "R" | "E" | "B" | "X" => BatchState::Running,
        _ => match job.exit_status {
            Some(0) => BatchState::Finished,
            status => {
                let status =
                    status.map_or("no exit status".to_owned(), |s| format!("exit status {s}"));
                BatchState::Failed(match &job.comment {
                    Some(comment) => format!("{status}: {comment}"),
                    None => status,
                })
            }
        },
    }
}
