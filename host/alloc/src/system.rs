//! The batch systems wrun submits allocations to, behind one trait.
//!
//! Every system gets the same [`Script`] (what the node needs) and answers
//! with text; nothing here runs a command. A script `exec`s `wrun node`, so
//! that the node *is* the batch job's process and receives its signals
//! (a shell in between would die of them and leave the node behind).

pub mod pbs;
pub mod sge;
pub mod slurm;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A batch system wrun knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// Slurm: `sbatch`, `squeue`, `scancel`.
    Slurm,
    /// (Son of) Grid Engine: `qsub`, `qstat -xml`, `qdel`.
    Sge,
    /// PBS Pro / OpenPBS: `qsub`, `qstat -f -F json`, `qdel`.
    Pbs,
}

impl System {
    /// The system's implementation.
    pub fn driver(self) -> &'static dyn BatchSystem {
        match self {
            System::Slurm => &slurm::Slurm,
            System::Sge => &sge::Sge,
            System::Pbs => &pbs::Pbs,
        }
    }

    /// Its name on the command line: `slurm`, `sge` or `pbs`.
    pub fn name(self) -> &'static str {
        match self {
            System::Slurm => "slurm",
            System::Sge => "sge",
            System::Pbs => "pbs",
        }
    }
}

impl std::str::FromStr for System {
    type Err = SystemError;

    fn from_str(name: &str) -> Result<System, SystemError> {
        match name {
            "slurm" => Ok(System::Slurm),
            "sge" => Ok(System::Sge),
            "pbs" => Ok(System::Pbs),
            other => Err(SystemError::Unknown(other.to_owned())),
        }
    }
}

/// What went wrong reading a batch system's answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SystemError {
    /// Not `slurm`, `sge` or `pbs`.
    #[error("unknown batch system {0:?}: use slurm, sge or pbs")]
    Unknown(String),
    /// The submit command printed no job id.
    #[error("{command} printed no job id: {output:?}")]
    NoJobId {
        /// `sbatch` or `qsub`.
        command: &'static str,
        /// What it printed on standard output.
        output: String,
    },
    /// A queue listing that does not parse.
    #[error("cannot read the output of {command}: {detail}")]
    Listing {
        /// `squeue`, `qstat -xml`, ...
        command: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

/// What a batch script must start: one `wrun node` for one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script<'a> {
    /// The batch job's name (`wrun-QUEUE`): how polls find the queue's jobs.
    pub job_name: &'a str,
    /// The wrun executable, by absolute path (the broker's own).
    pub wrun: &'a Path,
    /// The broker's endpoint the node connects to.
    pub connect: &'a str,
    /// The cluster key file, readable on the nodes (none: the loopback key).
    pub key: Option<&'a Path>,
    /// Tasks the node runs at once (cores asked for).
    pub slots: u32,
    /// The walltime asked for; also the node's `--lifetime`.
    pub time: Duration,
    /// The node exits after this long without work.
    pub idle_timeout: Duration,
    /// Where the batch system writes the job's output.
    pub log_dir: &'a Path,
}

impl Script<'_> {
    /// The script's last line: `exec WRUN node ...`, with the allocation's
    /// id read from `id_var` (the batch system's job id variable).
    fn exec_node(&self, id_var: &str) -> String {
        let mut line = format!(
            "exec {} node --connect {}",
            quote(&self.wrun.display().to_string()),
            quote(self.connect)
        );
        if let Some(key) = self.key {
            line.push_str(&format!(" --key {}", quote(&key.display().to_string())));
        }
        line.push_str(&format!(
            " --slots {} --lifetime {}s --idle-timeout {}s --allocation \"${id_var}\" --name \
             \"{}-${id_var}\"\n",
            self.slots,
            self.time.as_secs(),
            self.idle_timeout.as_secs(),
            self.job_name,
        ));
        line
    }
}

/// `text` quoted for a POSIX shell (single quotes).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `duration` as `H:MM:SS`, rounded up to whole seconds.
fn hms(duration: Duration) -> String {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// An allocation's state in the batch system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum BatchState {
    /// Waiting to start (`PENDING`, `qw`, `Q`).
    Queued,
    /// Started (`RUNNING`, `r`, `R`).
    Running,
    /// Ended normally.
    Finished,
    /// Ended abnormally or cannot start: the system's words.
    Failed(String),
}

/// One of the queue's batch jobs in a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The batch system's job id (what the node's `--allocation` says).
    pub id: String,
    /// The job's name.
    pub name: String,
    /// Its state.
    pub state: BatchState,
}

/// What wrun needs of a batch system: each method builds a command line or
/// reads its output; none runs anything.
pub trait BatchSystem: Sync {
    /// The batch script for one allocation.
    fn render(&self, script: &Script<'_>) -> String;
    /// The command that submits the script at `path`, with the queue's
    /// extra arguments before it.
    fn submit(&self, path: &Path, extra: &[String]) -> Command;
    /// The job id in the submit command's standard output.
    fn submitted(&self, stdout: &str) -> Result<String, SystemError>;
    /// The command that lists the jobs named `job_name`.
    fn poll(&self, job_name: &str) -> Command;
    /// The jobs in the poll command's standard output (jobs of other names
    /// may be among them).
    fn parse(&self, stdout: &str) -> Result<Vec<Observed>, SystemError>;
    /// The command that cancels job `id`.
    fn cancel(&self, id: &str) -> Command;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walltimes_round_up_to_seconds() {
        assert_eq!(hms(Duration::from_secs(3600)), "1:00:00");
        assert_eq!(hms(Duration::from_millis(90_500)), "0:01:31");
        assert_eq!(hms(Duration::from_secs(49 * 3600 + 61)), "49:01:01");
    }

    #[test]
    fn quotes_survive_the_shell() {
        assert_eq!(quote("/a b/it's"), r"'/a b/it'\''s'");
    }

    #[test]
    fn names_parse() {
        assert_eq!("sge".parse::<System>(), Ok(System::Sge));
        assert_eq!(
            "lsf".parse::<System>().unwrap_err().to_string(),
            "unknown batch system \"lsf\": use slurm, sge or pbs"
        );
    }
}
