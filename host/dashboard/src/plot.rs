//! Server-rendered SVG plots of a job, drawn from the same task views as
//! `wrun status JOB --json` ([`JobDetail`]): [`timeline`] (a Gantt chart of
//! chunks per node and slot over time, coloured by outcome) and
//! [`throughput`] (chunks finished per second over time). Both have axes
//! with units and are sized for a laptop screen (960 px wide).

mod axis;
mod svg;
mod throughput;
mod timeline;

use std::time::{SystemTime, UNIX_EPOCH};

use wrun_jobs::views::{JobDetail, TaskView};
use wrun_journal::TaskStateKind;

pub use throughput::throughput;
pub use timeline::timeline;

/// Width of every plot, in pixels.
const WIDTH: f64 = 960.0;

/// One attempt of a chunk on the time axis, in seconds since the job's
/// latest run started.
#[derive(Debug, Clone, PartialEq)]
struct Span {
    /// The chunk's index.
    index: u64,
    /// Where it ran: a node's name, or `local`.
    node: String,
    /// When it started, in seconds.
    start: f64,
    /// When it ended (now for a running chunk), in seconds.
    end: f64,
    /// Its state.
    state: TaskStateKind,
    /// Its failure kind, when it failed.
    error_kind: Option<String>,
}

/// The spans of `detail`'s chunks that have run or run now, in order of
/// their start; `now` ends a running chunk's span.
fn spans(detail: &JobDetail, now: SystemTime) -> (Vec<Span>, f64) {
    let origin = seconds(&detail.job.started_at).unwrap_or(0.0);
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
        - origin;
    let mut spans: Vec<Span> = detail
        .tasks
        .iter()
        .filter_map(|task| span(task, origin, now))
        .collect();
    spans.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.index.cmp(&b.index)));
    (spans, now)
}

fn span(task: &TaskView, origin: f64, now: f64) -> Option<Span> {
    let (start, end) = match (&task.started_at, &task.finished_at, task.wall_us) {
        (Some(started), None, _) => (seconds(started)? - origin, now),
        (_, Some(finished), Some(wall_us)) => {
            let end = seconds(finished)? - origin;
            (end - wall_us as f64 / 1e6, end)
        }
        _ => return None,
    };
    // A chunk finished in an earlier run lies before this run's origin.
    (end >= 0.0).then(|| Span {
        index: task.index,
        node: task.node.clone().unwrap_or_else(|| "local".to_owned()),
        start: start.max(0.0),
        end: end.max(start.max(0.0)),
        state: task.state,
        error_kind: task.error_kind.clone(),
    })
}

/// An RFC 3339 time as seconds since the Unix epoch.
fn seconds(rfc3339: &str) -> Option<f64> {
    let time = humantime::parse_rfc3339(rfc3339).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

/// The colour of a chunk in `state`.
fn colour(state: TaskStateKind) -> &'static str {
    match state {
        TaskStateKind::Done => "#2e7d32",
        TaskStateKind::Failed => "#c62828",
        TaskStateKind::Running => "#1565c0",
        TaskStateKind::Suspended => "#ef6c00",
        TaskStateKind::Queued | TaskStateKind::Cancelled => "#9e9e9e",
    }
}
