//! (Son of) Grid Engine: `qsub -terse`, `qstat -xml` (pending and running
//! jobs; a finished job leaves the listing at once, and `qacct` needs
//! accounting), `qdel`. A job in an error state (`Eqw`: it could not
//! start) stays listed until deleted.

use std::path::Path;
use std::process::Command;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{BatchState, BatchSystem, Observed, Script, SystemError, hms};

/// Grid Engine.
#[derive(Debug, Clone, Copy)]
pub struct Sge;

impl BatchSystem for Sge {
    fn render(&self, script: &Script<'_>) -> String {
        // Slots beyond one need a parallel environment, which is
        // site-specific: `-- -pe smp N` among the extra arguments. `-V`:
        // the node inherits the broker's environment, as under Slurm.
        format!(
            "#!/bin/bash\n\
             #$ -N {name}\n\
             #$ -S /bin/bash\n\
             #$ -V\n\
             #$ -l h_rt={time}\n\
             #$ -j y\n\
             #$ -o {log}/\n\
             {exec}",
            name = script.job_name,
            time = hms(script.time),
            log = script.log_dir.display(),
            exec = script.exec_node("JOB_ID"),
        )
    }

    fn submit(&self, path: &Path, extra: &[String]) -> Command {
        let mut command = Command::new("qsub");
        command.arg("-terse").args(extra).arg(path);
        command
    }

    fn submitted(&self, stdout: &str) -> Result<String, SystemError> {
        // `-terse`: the job id alone (`ID.1-N:1` for an array job).
        let id = stdout.trim().split('.').next().unwrap_or_default();
        match !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            true => Ok(id.to_owned()),
            false => Err(SystemError::NoJobId {
                command: "qsub",
                output: stdout.to_owned(),
            }),
        }
    }

    fn poll(&self, _job_name: &str) -> Command {
        let mut command = Command::new("qstat");
        command.arg("-xml");
        command
    }

    fn parse(&self, stdout: &str) -> Result<Vec<Observed>, SystemError> {
        let error = |detail: String| SystemError::Listing {
            command: "qstat -xml",
            detail,
        };
        let mut reader = Reader::from_str(stdout);
        let mut jobs = Vec::new();
        let mut job: Option<[String; 3]> = None;
        loop {
            match reader.read_event().map_err(|e| error(e.to_string()))? {
                Event::Start(start) => {
                    let field = match start.name().as_ref() {
                        b"job_list" => {
                            job = Some(Default::default());
                            continue;
                        }
                        b"JB_job_number" => 0,
                        b"JB_name" => 1,
                        b"state" => 2,
                        _ => continue,
                    };
                    let text = reader
                        .read_text(start.name())
                        .map_err(|e| error(e.to_string()))?;
                    let text = text.decode().map_err(|e| error(e.to_string()))?;
                    if let Some(job) = &mut job {
                        job[field] = text.trim().to_owned();
                    }
                }
                Event::End(end) if end.name().as_ref() == b"job_list" => {
                    let Some([id, name, state]) = job.take() else {
                        continue;
                    };
                    if id.is_empty() || state.is_empty() {
                        return Err(error(format!(
                            "a job_list without JB_job_number or state (job {id:?})"
                        )));
                    }
                    jobs.push(Observed {
                        id,
                        name,
                        state: state_of(&state),
                    });
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(jobs)
    }

    fn cancel(&self, id: &str) -> Command {
        let mut command = Command::new("qdel");
        command.arg(id);
        command
    }
}

/// A job's state letters as `qstat` prints them (`qw`, `r`, `Eqw`, ...).
fn state_of(state: &str) -> BatchState {
    if state.contains('E') {
        BatchState::Failed(format!("error state {state}"))
    } else if state.contains(['r', 't', 'R', 's', 'S', 'T', 'd']) {
        BatchState::Running
    } else {
        BatchState::Queued
    }
}
