//! What a finished job tells its user: the end-of-job summary (counts,
//! failures grouped by reason, the slowest chunks) and the exit status.

use std::collections::BTreeMap;
use std::time::Duration;

use wrun_journal::{FailureKind, JobId};
use wrun_scheduler::Summary;

use crate::exit::Fail;

/// Report a finished job; failures (with `--keep-going`) make it an error.
pub(crate) fn finish(
    summary: &Summary,
    job: Option<JobId>,
    input_name: &str,
    verbose: bool,
) -> Result<(), Fail> {
    if summary.tasks == 0 {
        eprintln!("wrun: warning: {input_name}: no records");
    }
    if verbose || !summary.failed.is_empty() {
        for line in summary_lines(summary, job) {
            eprintln!("wrun: {line}");
        }
    }
    for failed in &summary.failed {
        eprintln!("wrun: {input_name}: {failed}");
    }
    wrun_jobs::check(summary, job).map_err(Fail::from)
}

/// The end-of-job summary: counts, failures grouped by reason, the
/// slowest tasks.
fn summary_lines(summary: &Summary, job: Option<JobId>) -> Vec<String> {
    let secs = summary.elapsed.as_secs_f64();
    let job = job.map_or_else(String::new, |id| format!("job {id}: "));
    let restored = match summary.restored {
        0 => String::new(),
        n => format!(" ({n} from earlier runs)"),
    };
    let mut lines = vec![format!(
        "{job}{} chunks{restored}, {} done, {} failed; {} records, {} in {secs:.3}s ({}/s)",
        summary.tasks,
        summary.tasks - summary.failed.len() as u64,
        summary.failed.len(),
        summary.records,
        bytesize::ByteSize(summary.input_bytes),
        bytesize::ByteSize((summary.input_bytes as f64 / secs.max(1e-9)) as u64),
    )];
    let mut by_kind: BTreeMap<FailureKind, Vec<u64>> = BTreeMap::new();
    for failed in &summary.failed {
        by_kind
            .entry(failed.error.kind)
            .or_default()
            .push(failed.index);
    }
    for (kind, chunks) in by_kind {
        let shown: Vec<String> = chunks.iter().take(10).map(u64::to_string).collect();
        let more = if chunks.len() > 10 { ", ..." } else { "" };
        lines.push(format!(
            "  {kind}: {}: {}{more}",
            chunks_word(chunks.len() as u64),
            shown.join(", ")
        ));
    }
    if !summary.slowest.is_empty() {
        let slowest: Vec<String> = summary
            .slowest
            .iter()
            .map(|(index, wall)| format!("chunk {index} {}", format_wall(*wall)))
            .collect();
        lines.push(format!("  slowest: {}", slowest.join(", ")));
    }
    lines
}

/// "1 chunk", "2 chunks".
fn chunks_word(n: u64) -> String {
    match n {
        1 => "1 chunk".to_owned(),
        n => format!("{n} chunks"),
    }
}

/// A task's wall time, short.
pub(crate) fn format_wall(wall: Duration) -> String {
    let secs = wall.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2}s")
    } else {
        format!("{:.2}ms", secs * 1e3)
    }
}
