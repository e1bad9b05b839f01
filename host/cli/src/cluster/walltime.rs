//! When a node's allocation ends: `--until`, or asked of the batch system
//! the node runs under (Slurm: `squeue -h -j $SLURM_JOB_ID -o %e`; Grid
//! Engine: the `h_rt` limit in `qstat -j $JOB_ID`, counted from the node's
//! start), and the signals that drain a node at once.

use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::clock::parse_time;

/// Where a node's end time came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--lifetime`, from the node's start.
    Lifetime,
    /// `--until`.
    Until,
    /// The Slurm job `id`.
    Slurm(String),
    /// The Grid Engine job `id`.
    GridEngine(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Lifetime => f.write_str("--lifetime"),
            Source::Until => f.write_str("--until"),
            Source::Slurm(id) => write!(f, "Slurm job {id}"),
            Source::GridEngine(id) => write!(f, "Grid Engine job {id}"),
        }
    }
}

/// The node's end time: the one `given` (`--lifetime`, `--until`), else
/// its batch job's, if it runs in one that has a time limit. `Err` names
/// what could not be read.
pub(crate) fn end_time(
    given: Option<(SystemTime, Source)>,
) -> Result<Option<(SystemTime, Source)>, String> {
    if given.is_some() {
        return Ok(given);
    }
    if let Ok(id) = std::env::var("SLURM_JOB_ID") {
        let out = run("squeue", &["-h", "-j", &id, "-o", "%e"])?;
        return Ok(parse_slurm_end(&out)?.map(|t| (t, Source::Slurm(id))));
    }
    if let (Ok(id), true) = (
        std::env::var("JOB_ID"),
        std::env::var_os("SGE_ROOT").is_some(),
    ) {
        let out = run("qstat", &["-j", &id])?;
        let limit = parse_sge_h_rt(&out)?;
        return Ok(limit.map(|l| (SystemTime::now() + l, Source::GridEngine(id))));
    }
    Ok(None)
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let shown = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `squeue -o %e`'s end time: `2026-12-01T05:30:00` in local time;
/// `Unknown`, `N/A` or `NONE` for a job without one.
pub(crate) fn parse_slurm_end(text: &str) -> Result<Option<SystemTime>, String> {
    let text = text.trim();
    if matches!(text, "Unknown" | "N/A" | "NONE" | "") {
        return Ok(None);
    }
    parse_time(text).map(Some)
}

/// The `h_rt` limit in `qstat -j`'s `hard resource_list` line (seconds,
/// or `H:M:S`); `None` without one.
pub(crate) fn parse_sge_h_rt(text: &str) -> Result<Option<Duration>, String> {
    let Some(list) = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("hard resource_list:"))
    else {
        return Ok(None);
    };
    let Some(value) = list
        .split(',')
        .find_map(|item| item.trim().strip_prefix("h_rt="))
    else {
        return Ok(None);
    };
    let bad = || format!("h_rt={value} is neither seconds nor H:M:S");
    let mut seconds = 0u64;
    for part in value.split(':') {
        seconds = seconds * 60 + part.trim().parse::<u64>().map_err(|_| bad())?;
    }
    Ok(Some(Duration::from_secs(seconds)))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn slurm_end_times_parse_and_no_limit_is_none() {
        let zoned = parse_time("2026-12-01T05:30:00Z").unwrap();
        assert_eq!(
            zoned.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_796_103_000
        );
        assert!(parse_slurm_end("2026-12-01T05:30:00\n").unwrap().is_some());
        for none in ["Unknown\n", "N/A", "NONE", ""] {
            assert_eq!(parse_slurm_end(none).unwrap(), None);
        }
        assert_eq!(
            parse_slurm_end("tomorrow").unwrap_err(),
            "`tomorrow` is not a time like 2026-12-01T05:30:00[Z]"
        );
    }

    #[test]
    fn grid_engine_h_rt_in_seconds_or_hms() {
        let qstat = "job_number:                 42\n\
                     hard resource_list:         h_vmem=2G,h_rt=01:30:00\n";
        assert_eq!(
            parse_sge_h_rt(qstat).unwrap(),
            Some(Duration::from_secs(5400))
        );
        let qstat = "hard resource_list:         h_rt=600\n";
        assert_eq!(
            parse_sge_h_rt(qstat).unwrap(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_sge_h_rt("job_number: 42\n").unwrap(), None);
        assert_eq!(
            parse_sge_h_rt("hard resource_list: h_rt=1h\n").unwrap_err(),
            "h_rt=1h is neither seconds nor H:M:S"
        );
    }
}
