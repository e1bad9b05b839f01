//! Slurm: `sbatch --parsable`, `squeue -h -t all -n NAME -o '%i|%j|%T|%r'`
//! (job id, name, state, reason; `sacct` needs accounting, which a cluster
//! may lack), `scancel`. Finished jobs stay in `squeue -t all` for
//! `MinJobAge` (300 s by default) with their final state.

use std::path::Path;
use std::process::Command;

use super::{BatchState, BatchSystem, Observed, Script, SystemError, hms};

/// Slurm.
#[derive(Debug, Clone, Copy)]
pub struct Slurm;

/// The fields `squeue` prints, `|`-separated.
const FORMAT: &str = "%i|%j|%T|%r";

impl BatchSystem for Slurm {
    fn render(&self, script: &Script<'_>) -> String {
        format!(
            "#!/bin/bash\n\
             #SBATCH --job-name={name}\n\
             #SBATCH --time={time}\n\
             #SBATCH --nodes=1\n\
             #SBATCH --ntasks=1\n\
             #SBATCH --cpus-per-task={slots}\n\
             #SBATCH --output={log}/%x-%j.out\n\
             {exec}",
            name = script.job_name,
            time = hms(script.time),
            slots = script.slots,
            log = script.log_dir.display(),
            exec = script.exec_node("SLURM_JOB_ID"),
        )
    }

    fn submit(&self, path: &Path, extra: &[String]) -> Command {
        let mut command = Command::new("sbatch");
        command.arg("--parsable").args(extra).arg(path);
        command
    }

    fn submitted(&self, stdout: &str) -> Result<String, SystemError> {
        // `--parsable`: `ID` or `ID;CLUSTER`.
        let id = stdout.trim().split(';').next().unwrap_or_default();
        match !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            true => Ok(id.to_owned()),
            false => Err(SystemError::NoJobId {
                command: "sbatch",
                output: stdout.to_owned(),
            }),
        }
    }

    fn poll(&self, job_name: &str) -> Command {
        let mut command = Command::new("squeue");
        command.args(["-h", "-t", "all", "-n", job_name, "-o", FORMAT]);
        command
    }

    fn parse(&self, stdout: &str) -> Result<Vec<Observed>, SystemError> {
        stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let fields: Vec<&str> = line.trim().splitn(4, '|').collect();
                let [id, name, state, reason] = fields[..] else {
                    return Err(SystemError::Listing {
                        command: "squeue",
                        detail: format!("expected id|name|state|reason, got {line:?}"),
                    });
                };
                Ok(Observed {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    state: state_of(state, reason),
                })
            })
            .collect()
    }

    fn cancel(&self, id: &str) -> Command {
        let mut command = Command::new("scancel");
        command.arg(id);
        command
    }
}

/// A job state as `squeue %T` prints it, with its reason (`%r`).
fn state_of(state: &str, reason: &str) -> BatchState {
    match state {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" => {
            BatchState::Queued
        }
        "RUNNING" | "CONFIGURING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT" | "RESIZING"
        | "SUSPENDED" | "STOPPED" => BatchState::Running,
        "COMPLETED" => BatchState::Finished,
        _ => BatchState::Failed(match reason {
            "" | "None" => state.to_owned(),
            reason => format!("{state} ({reason})"),
        }),
    }
}
