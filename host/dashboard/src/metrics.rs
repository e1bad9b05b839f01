//! `/metrics`: the source's jobs, nodes and allocations in the Prometheus
//! text format, read afresh at every scrape and encoded by
//! `prometheus-client`:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `wrun_jobs` | gauge | `state` |
//! | `wrun_tasks` | gauge | `job`, `state` (`queued`, `running`, `done`, `failed`, `cancelled`, `suspended`) |
//! | `wrun_queue_depth` | gauge | (tasks queued in running jobs) |
//! | `wrun_running_tasks` | gauge | |
//! | `wrun_task_wall_seconds` | histogram | `job` (done and failed tasks) |
//! | `wrun_input_bytes_total` | counter | `job` (input bytes of finished tasks) |
//! | `wrun_output_bytes_total` | counter | `job` (output bytes of done tasks) |
//! | `wrun_nodes_connected` | gauge | (a broker only) |
//! | `wrun_allocations` | gauge | `queue`, `state` (a broker only) |

use std::collections::BTreeMap;
use std::fmt::Debug;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet, text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use wrun_alloc::AllocState;
use wrun_jobs::Result;
use wrun_jobs::views::Filter;
use wrun_journal::TaskTotals;

use crate::source::Source;

/// Upper bounds of the wall-time histogram's buckets, in microseconds:
/// 100 µs to 1000 s by factors of 10.
pub const WALL_BOUNDS_US: [u64; 8] = [
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

type Labels = Vec<(&'static str, String)>;

/// The metrics of `source` now, in the Prometheus (OpenMetrics) text
/// format; series in a stable order (jobs by number, states as listed).
///
/// # Errors
///
/// What reading the source's jobs returns.
pub fn render(source: &dyn Source) -> Result<String> {
    let jobs = source.jobs(&Filter::default())?;
    let mut registry = Registry::default();
    let mut jobs_by_state: BTreeMap<&str, i64> = BTreeMap::new();
    let mut tasks = Listed::<Level>::default();
    let queue_depth = Gauge::<i64>::default();
    let running = Gauge::<i64>::default();
    let mut input_bytes = Listed::<Total>::default();
    let mut output_bytes = Listed::<Total>::default();
    let mut wall_times = Listed::<WallTimes>::default();
    for job in &jobs {
        *jobs_by_state.entry(&job.state).or_default() += 1;
        let id = job.id.to_string();
        let counts = &job.tasks;
        for (state, count) in [
            ("queued", counts.queued),
            ("running", counts.running),
            ("done", counts.done),
            ("failed", counts.failed),
            ("cancelled", counts.cancelled),
            ("suspended", counts.suspended),
        ] {
            let labels = vec![("job", id.clone()), ("state", state.to_owned())];
            tasks.0.push((labels, Level(count as i64)));
        }
        if job.state == "running" {
            queue_depth.inc_by(counts.queued as i64);
            running.inc_by(counts.running as i64);
        }
        let totals = source.totals(job.id, &WALL_BOUNDS_US)?;
        let labels = vec![("job", id)];
        input_bytes
            .0
            .push((labels.clone(), Total(job.finished_bytes)));
        output_bytes
            .0
            .push((labels.clone(), Total(totals.output_bytes)));
        wall_times.0.push((labels, WallTimes(totals)));
    }
    let jobs_by_state = Listed(
        jobs_by_state
            .into_iter()
            .map(|(state, n)| (vec![("state", state.to_owned())], Level(n)))
            .collect(),
    );
    registry.register("wrun_jobs", "Jobs by state", jobs_by_state);
    registry.register("wrun_tasks", "Tasks by job and state", tasks);
    registry.register(
        "wrun_queue_depth",
        "Tasks waiting to run in running jobs",
        queue_depth,
    );
    registry.register("wrun_running_tasks", "Tasks running now", running);
    registry.register(
        "wrun_task_wall_seconds",
        "Wall time of finished (done or failed) tasks, in seconds",
        wall_times,
    );
    registry.register(
        "wrun_input_bytes",
        "Input bytes of finished tasks",
        input_bytes,
    );
    registry.register(
        "wrun_output_bytes",
        "Output bytes of done tasks",
        output_bytes,
    );
    // Nodes not listed in time leave the gauge out of this scrape: a
    // missing series, not a false zero.
    if let Some(Ok(nodes)) = source.nodes() {
        let connected = Gauge::<i64>::default();
        connected.set(nodes.len() as i64);
        registry.register("wrun_nodes_connected", "Nodes connected now", connected);
    }
    if let Some(queues) = source.allocations() {
        let mut allocations = Listed::<Level>::default();
        for queue in &queues {
            let mut by_state: BTreeMap<&str, i64> = ["queued", "running", "finished", "failed"]
                .map(|s| (s, 0))
                .into();
            for allocation in &queue.allocations {
                *by_state.entry(state_name(&allocation.state)).or_default() += 1;
            }
            for (state, count) in by_state {
                let labels = vec![
                    ("queue", queue.spec.name.clone()),
                    ("state", state.to_owned()),
                ];
                allocations.0.push((labels, Level(count)));
            }
        }
        registry.register(
            "wrun_allocations",
            "Batch-system allocations by queue and state",
            allocations,
        );
    }
    let mut text = String::new();
    text::encode(&mut text, &registry).expect("writing to a String cannot fail");
    Ok(text)
}

fn state_name(state: &AllocState) -> &'static str {
    match state {
        AllocState::Queued => "queued",
        AllocState::Running => "running",
        AllocState::Finished => "finished",
        AllocState::Failed(_) => "failed",
    }
}

/// A metric's series in the order they were added, each with its labels
/// (`prometheus-client`'s `Family` keeps a hash map, whose order changes
/// from scrape to scrape). Shown even when it has none, so that a scrape
/// always names every metric.
#[derive(Debug)]
struct Listed<M>(Vec<(Labels, M)>);

impl<M> Default for Listed<M> {
    fn default() -> Self {
        Listed(Vec::new())
    }
}

/// One series' value.
trait Member: Debug + Send + Sync + 'static {
    const TYPE: MetricType;
    fn encode(&self, encoder: MetricEncoder) -> std::fmt::Result;
}

impl<M: Member> EncodeMetric for Listed<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        for (labels, member) in &self.0 {
            member.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

/// A gauge's value.
#[derive(Debug)]
struct Level(i64);

impl Member for Level {
    const TYPE: MetricType = MetricType::Gauge;
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        encoder.encode_gauge(&self.0)
    }
}

/// A counter's value.
#[derive(Debug)]
struct Total(u64);

impl Member for Total {
    const TYPE: MetricType = MetricType::Counter;
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.0, None)
    }
}

/// A job's wall-time histogram, as the journal counted it (a
/// `prometheus-client` histogram would need every task observed again at
/// every scrape).
#[derive(Debug)]
struct WallTimes(TaskTotals);

impl Member for WallTimes {
    const TYPE: MetricType = MetricType::Histogram;
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let bounds = WALL_BOUNDS_US
            .iter()
            .map(|us| *us as f64 / 1e6)
            .chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(self.0.wall_buckets.iter().copied()).collect();
        encoder.encode_histogram::<NoLabelSet>(
            self.0.wall_us as f64 / 1e6,
            self.0.finished,
            &buckets,
            None,
        )
    }
}
