//! The chunk timeline: one row per slot of each node (the chunks a node
//! ran, packed into as many rows as it ran at once), time on the x axis,
//! each chunk a bar coloured by its state.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::SystemTime;

use wrun_jobs::views::JobDetail;

use super::svg::{Doc, MARGIN, escape};
use super::{Span, WIDTH, colour, spans};

/// Chunks drawn at most: the ones that ended last.
const MAX_CHUNKS: usize = 5000;

/// The timeline of `detail` at `now` as an SVG document (`class="timeline"`,
/// each chunk a `rect` of class `chunk chunk-STATE` with its index in
/// `data-index` and a tooltip).
pub fn timeline(detail: &JobDetail, now: SystemTime) -> String {
    let (mut spans, _) = spans(detail, now);
    if spans.len() > MAX_CHUNKS {
        spans.sort_by(|a, b| b.end.total_cmp(&a.end));
        spans.truncate(MAX_CHUNKS);
        spans.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    let rows = rows(&spans);
    let row_height = match rows.len() {
        0..=24 => 18.0,
        n => (432.0 / n as f64).max(3.0),
    };
    let (_, _, top, bottom) = MARGIN;
    let height = top + bottom + row_height * rows.len().max(1) as f64;
    let mut doc = Doc::new(WIDTH, height, "timeline");
    // A running chunk's span ends now: the axis reaches now while one runs.
    let end = spans.iter().map(|s| s.end).fold(1e-3, f64::max);
    let max = doc.x_axis(end, "time since the run started (s)");
    let (x0, x1, y0, _) = doc.area();
    let scale = (x1 - x0) / max;
    for (row, (label, members)) in rows.iter().enumerate() {
        let y = y0 + row as f64 * row_height;
        if row_height >= 10.0 {
            let _ = write!(
                doc.text,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                x0 - 6.0,
                y + row_height * 0.7,
                escape(label)
            );
        }
        for span in members {
            let wall = span.end - span.start;
            let what = match &span.error_kind {
                Some(kind) => format!("{} ({kind})", span.state.as_str()),
                None => span.state.as_str().to_owned(),
            };
            let _ = write!(
                doc.text,
                r#"<rect class="chunk chunk-{}" data-index="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>chunk {}: {what}, {wall:.3} s on {}</title></rect>"#,
                span.state.as_str(),
                span.index,
                x0 + span.start * scale,
                y + 1.0,
                (wall * scale).max(1.0),
                (row_height - 2.0).max(1.0),
                colour(span.state),
                span.index,
                escape(&span.node),
            );
        }
    }
    doc.finish()
}

/// How far a chunk may seem to overlap the one before it in its slot, in
/// seconds: a chunk's end is when the journal recorded it (its next group
/// commit), a little after the task returned.
const SLACK: f64 = 0.05;

/// The rows of the chart: for each node in name order, its spans packed
/// greedily into slots (a span goes to the first slot free at its start).
fn rows(spans: &[Span]) -> Vec<(String, Vec<&Span>)> {
    let mut nodes: BTreeMap<&str, Vec<Vec<&Span>>> = BTreeMap::new();
    for span in spans {
        let slots = nodes.entry(&span.node).or_default();
        let free = slots.iter().position(|slot| {
            slot.last()
                .is_none_or(|last| last.end <= span.start + SLACK)
        });
        match free {
            Some(at) => slots[at].push(span),
            None => slots.push(vec![span]),
        }
    }
    nodes
        .into_iter()
        .flat_map(|(node, slots)| {
            slots
                .into_iter()
                .enumerate()
                .map(move |(n, slot)| (format!("{node} · slot {}", n + 1), slot))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_journal::TaskStateKind;

    fn span(index: u64, node: &str, start: f64, end: f64) -> Span {
        Span {
            index,
            node: node.to_owned(),
            start,
            end,
            state: TaskStateKind::Done,
            error_kind: None,
        }
    }

    #[test]
    fn overlapping_chunks_of_a_node_take_separate_slots() {
        let spans = [
            span(0, "local", 0.0, 1.0),
            span(1, "local", 0.5, 1.5),
            span(2, "local", 1.0, 2.0),
            span(3, "b", 0.0, 2.0),
        ];
        let rows = rows(&spans);
        let shape: Vec<(String, Vec<u64>)> = rows
            .into_iter()
            .map(|(label, spans)| (label, spans.iter().map(|s| s.index).collect()))
            .collect();
        assert_eq!(
            shape,
            [
                ("b · slot 1".to_owned(), vec![3]),
                ("local · slot 1".to_owned(), vec![0, 2]),
                ("local · slot 2".to_owned(), vec![1]),
            ]
        );
    }
}
