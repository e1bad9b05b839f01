//! The routes: the JSON API (the shapes of the command line's `--json`,
//! from the same [`wrun_jobs::views`] types), the plots, the output
//! download, `/metrics` and the page's assets. Every route reads; none
//! changes anything.
//!
//! | route | answers |
//! |---|---|
//! | `GET /api/info` | `{"where": ..., "nodes": bool, "allocations": bool}` |
//! | `GET /api/jobs?state=&name=&since=` | `wrun status --json` (`since`: a duration, `1h`) |
//! | `GET /api/jobs/ID` | `wrun status ID --json` |
//! | `GET /api/jobs/ID/logs` | `wrun logs ID --json` |
//! | `GET /api/jobs/ID/timeline.svg`, `throughput.svg` | the plots |
//! | `GET /api/jobs/ID/output` | the job's output (`wrun output ID`) |
//! | `GET /api/nodes` | `wrun nodes --json` (404 without nodes) |
//! | `GET /api/allocations` | `wrun alloc ls --json` (404 without queues) |
//! | `GET /metrics` | Prometheus text format |

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use wrun_jobs::views::{Filter, JOB_STATES, JobDetail};
use wrun_jobs::{Destination, Error, ErrorKind};
use wrun_journal::JobId;

use crate::assets;
use crate::metrics;
use crate::plot;
use crate::source::Source;

/// What every handler reads from.
type App = Arc<dyn Source>;

/// Downloads of outputs that may run at once: each holds a blocking
/// thread while its client reads, so a few stalled clients must not take
/// every thread the pages read the journal on.
const DOWNLOADS: usize = 2;

/// Seconds a 503 tells its client to wait (`Retry-After`).
const RETRY_AFTER_S: u64 = 5;

/// The download slots, as handlers take them.
type Downloads = Arc<Semaphore>;

/// The routes' state: the source and the download slots.
#[derive(Clone)]
struct AppState {
    source: App,
    downloads: Downloads,
}

impl FromRef<AppState> for App {
    fn from_ref(state: &AppState) -> App {
        state.source.clone()
    }
}

impl FromRef<AppState> for Downloads {
    fn from_ref(state: &AppState) -> Downloads {
        state.downloads.clone()
    }
}

/// The dashboard's routes over `source`, without authentication.
pub(crate) fn routes(source: App) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/style.css", get(assets::style))
        .route("/api/info", get(info))
        .route("/api/jobs", get(jobs))
        .route("/api/jobs/{id}", get(job))
        .route("/api/jobs/{id}/logs", get(logs))
        .route("/api/jobs/{id}/timeline.svg", get(timeline))
        .route("/api/jobs/{id}/throughput.svg", get(throughput))
        .route("/api/jobs/{id}/output", get(output))
        .route("/api/nodes", get(nodes))
        .route("/api/allocations", get(allocations))
        .route("/metrics", get(metrics))
        .with_state(AppState {
            source,
            downloads: Arc::new(Semaphore::new(DOWNLOADS)),
        })
}

/// Where the jobs run and which pages there are.
#[derive(Debug, Serialize)]
struct Info {
    r#where: String,
    nodes: bool,
    allocations: bool,
    job_states: [&'static str; 7],
}

/// `wrun status`'s filters as query parameters.
#[derive(Debug, Deserialize)]
struct JobsQuery {
    state: Option<String>,
    name: Option<String>,
    since: Option<String>,
}

/// A failed request: its status and a message, sent as `{"error": ...}`;
/// a 503 says when to try again (`Retry-After`).
#[derive(Debug)]
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 });
        let mut response = (self.0, axum::Json(body)).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, RETRY_AFTER_S.into());
        }
        response
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let status = match error.kind() {
            ErrorKind::Usage => StatusCode::BAD_REQUEST,
            // Also a job that does not exist ("no job 7 in the journal").
            ErrorKind::Journal => StatusCode::NOT_FOUND,
            ErrorKind::JobState => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure(status, error.to_string())
    }
}

/// Run `read` on a blocking thread (the journal is SQLite).
async fn read<T: Send + 'static>(
    source: App,
    read: impl FnOnce(&dyn Source) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(move || read(source.as_ref()))
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// `value` as the command line prints it with `--json` (pretty, a final
/// newline).
fn json(value: &impl Serialize) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            ([(CONTENT_TYPE, "application/json")], text).into_response()
        }
        Err(e) => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn svg(text: String) -> Response {
    ([(CONTENT_TYPE, "image/svg+xml")], text).into_response()
}

async fn info(State(source): State<App>) -> Result<Response, Failure> {
    let info = read(source, |source| {
        Ok(Info {
            r#where: source.place(),
            nodes: source.nodes().is_some(),
            allocations: source.allocations().is_some(),
            job_states: JOB_STATES,
        })
    })
    .await?;
    Ok(json(&info))
}

async fn jobs(
    State(source): State<App>,
    Query(query): Query<JobsQuery>,
) -> Result<Response, Failure> {
    let since_ms = match query.since.as_deref().filter(|s| !s.is_empty()) {
        Some(since) => Some(humantime::parse_duration(since).map_err(|e| {
            Failure(
                StatusCode::BAD_REQUEST,
                format!("since {since:?} is not a duration (like 1h or 30m): {e}"),
            )
        })?),
        None => None,
    };
    let filter = Filter {
        state: query.state.filter(|s| !s.is_empty()),
        name: query.name.filter(|s| !s.is_empty()),
        since_ms: since_ms.map(|d| d.as_millis() as u64),
    };
    let jobs = read(source, move |source| Ok(source.jobs(&filter)?)).await?;
    Ok(json(&jobs))
}

async fn job(State(source): State<App>, Path(id): Path<JobId>) -> Result<Response, Failure> {
    let detail = read(source, move |source| Ok(source.job(id)?)).await?;
    Ok(json(&detail))
}

async fn logs(State(source): State<App>, Path(id): Path<JobId>) -> Result<Response, Failure> {
    let logs = read(source, move |source| Ok(source.logs(id)?)).await?;
    Ok(json(&logs))
}

async fn timeline(State(source): State<App>, Path(id): Path<JobId>) -> Result<Response, Failure> {
    let text = read(source, move |source| {
        Ok(plot::timeline(&source.job(id)?, SystemTime::now()))
    })
    .await?;
    Ok(svg(text))
}

async fn throughput(State(source): State<App>, Path(id): Path<JobId>) -> Result<Response, Failure> {
    let text = read(source, move |source| {
        Ok(plot::throughput(&source.job(id)?, SystemTime::now()))
    })
    .await?;
    Ok(svg(text))
}

async fn nodes(State(source): State<App>) -> Result<Response, Failure> {
    let nodes = read(source, |source| match source.nodes() {
        Some(nodes) => nodes.map_err(|e| Failure(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        None => Err(not_here("nodes")),
    })
    .await?;
    Ok(json(&nodes))
}

async fn allocations(State(source): State<App>) -> Result<Response, Failure> {
    let queues = read(source, |source| {
        source
            .allocations()
            .ok_or_else(|| not_here("allocation queues"))
    })
    .await?;
    Ok(json(&queues))
}

fn not_here(what: &str) -> Failure {
    Failure(
        StatusCode::NOT_FOUND,
        format!(
            "this dashboard serves a local journal: {what} are a broker's (wrun broker --http)"
        ),
    )
}

async fn metrics(State(source): State<App>) -> Result<Response, Failure> {
    let text = read(source, |source| Ok(metrics::render(source)?)).await?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Output pieces in flight to the client, at most.
const OUTPUT_PIECES: usize = 16;

/// The job's output, streamed as the job library writes it on a blocking
/// thread, at most [`DOWNLOADS`] at once (beyond that, 503 with
/// `Retry-After`). A job whose
/// output is not complete (a chunk not done, unless it failed under
/// `--keep-going`) is 409 before anything is sent. A failure after the
/// status is sent (a stored output found damaged) ends the body with an
/// error, so the client sees a broken transfer rather than a short file.
async fn output(
    State(source): State<App>,
    State(downloads): State<Downloads>,
    Path(id): Path<JobId>,
) -> Result<Response, Failure> {
    let slot = downloads.try_acquire_owned().map_err(|_| busy())?;
    // Fail early, with a status, for a job that does not exist or is not
    // finished.
    let detail = read(source.clone(), move |source| Ok(source.job(id)?)).await?;
    if let Some(why) = incomplete(&detail) {
        return Err(Failure(StatusCode::CONFLICT, why));
    }
    let (sender, receiver) = mpsc::channel(OUTPUT_PIECES);
    let name = format!("job {id} output");
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let failed = sender.clone();
        let out = Destination::new(Box::new(Pipe(sender)), name);
        if let Err(error) = source.output(id, out) {
            tracing::warn!(target: "wrun::dashboard", "output of job {id}: {error}");
            let _ = failed.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    let stream = pieces(receiver);
    let file = format!("job-{}-output", detail.job.id);
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// 503: every download slot is taken.
fn busy() -> Failure {
    Failure(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "all {DOWNLOADS} output downloads this dashboard serves at once are in progress: \
             try again in {RETRY_AFTER_S} s (or use `wrun output JOB`)"
        ),
    )
}

/// Why `detail`'s job has no complete output yet, if it has none: some
/// chunk is not done (a failed one counts as finished under
/// `--keep-going`), or its input is not split to the end.
fn incomplete(detail: &JobDetail) -> Option<String> {
    let job = &detail.job;
    let failed = match detail.spec.keep_going {
        true => job.tasks.failed,
        false => 0,
    };
    let finished = job.tasks.done + failed;
    if job.tasks_total == Some(finished) {
        return None;
    }
    let total = job
        .tasks_total
        .map_or_else(|| "?".to_owned(), |total| total.to_string());
    Some(format!(
        "job {} has no complete output: it is {}, with {} of {total} chunks done \
         (`wrun output {}` writes the chunks done so far)",
        job.id, job.state, job.tasks.done, job.id
    ))
}

/// A piece of output, or the error that ended it.
type Piece = std::io::Result<Bytes>;

/// The pieces `receiver` gets, as a stream of body chunks; an error ends
/// the body without its end marker.
fn pieces(receiver: mpsc::Receiver<Piece>) -> impl futures::Stream<Item = Piece> + Send + 'static {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    })
}

/// A writer whose every write is a piece sent to the response body.
struct Pipe(mpsc::Sender<Piece>);

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
