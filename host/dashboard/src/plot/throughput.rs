//! Throughput over time: chunks finished per second in each of up to
//! [`BINS`] equal intervals of the run, each a second at least.

use std::fmt::Write;
use std::time::SystemTime;

use wrun_jobs::views::JobDetail;
use wrun_journal::TaskStateKind;

use super::svg::Doc;
use super::{WIDTH, spans};

/// Intervals the run is cut into, at most.
const BINS: usize = 60;

/// The throughput of `detail` up to `now` as an SVG document
/// (`class="throughput"`): a line of chunks finished per second, one point
/// per interval, at the interval's middle.
pub fn throughput(detail: &JobDetail, now: SystemTime) -> String {
    let (spans, now) = spans(detail, now);
    let ends: Vec<f64> = spans
        .iter()
        .filter(|s| s.state != TaskStateKind::Running)
        .map(|s| s.end)
        .collect();
    // While the job runs, the axis reaches now.
    let running = spans.iter().any(|s| s.state == TaskStateKind::Running);
    let last = ends.iter().copied().fold(1e-3, f64::max);
    let span = if running { last.max(now) } else { last };
    let bins = rates(&ends, span);
    let width = span / bins.len() as f64;
    let peak = bins.iter().copied().fold(0.0, f64::max);
    let mut doc = Doc::new(WIDTH, 240.0, "throughput");
    let x_max = doc.x_axis(span, "time since the run started (s)");
    let y_max = doc.y_axis(peak, "chunks finished per second");
    let (x0, x1, y0, y1) = doc.area();
    let points: Vec<String> = bins
        .iter()
        .enumerate()
        .map(|(i, rate)| {
            let x = x0 + (i as f64 + 0.5) * width / x_max * (x1 - x0);
            let y = y1 - rate / y_max * (y1 - y0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        doc.text,
        r##"<polyline class="rate" fill="none" stroke="#1565c0" stroke-width="2" points="{}"/>"##,
        points.join(" ")
    );
    doc.finish()
}

/// Chunks per second ending in each of `BINS` (fewer for a short run: a
/// second each at least) equal intervals of `0..span` seconds.
fn rates(ends: &[f64], span: f64) -> Vec<f64> {
    let count = (span.floor() as usize).clamp(1, BINS);
    let width = span / count as f64;
    let mut bins = vec![0.0; count];
    for end in ends {
        let at = ((end / width) as usize).min(count - 1);
        bins[at] += 1.0 / width;
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_count_chunks_per_second_of_their_interval() {
        let ends = [0.5, 1.5, 1.6, 2.9];
        let three = rates(&ends, 3.0);
        assert_eq!(three, [1.0, 2.0, 1.0]);
        assert_eq!(rates(&ends, 0.3), [4.0 / 0.3]);
        assert_eq!(rates(&[], 100.0).len(), BINS);
    }
}
