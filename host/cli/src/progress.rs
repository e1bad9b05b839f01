//! What the user sees on standard error while a job runs (locally or on a
//! broker): a progress bar with rate and ETA on a terminal, a plain line
//! about once a second when asked for (`--progress always`) without one,
//! and task logs.

mod lines;

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::When;

use self::lines::Lines;

/// How far a job is: input bytes of finished chunks, chunks finished and
/// failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) bytes: u64,
    pub(crate) tasks: u64,
    pub(crate) failed: u64,
}

/// Progress of one job, measured in input bytes done.
#[derive(Debug)]
pub(crate) struct Progress {
    shown: Shown,
}

#[derive(Debug)]
enum Shown {
    Nothing,
    Bar(ProgressBar),
    Lines(Lines),
}

impl Progress {
    /// A reporter for an input of `total` bytes (if known): a bar on a
    /// terminal (`auto`, `always`), plain lines elsewhere (`always`).
    pub(crate) fn new(when: When, total: Option<u64>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let shown = match (when, terminal) {
            (When::Never, _) | (When::Auto, false) => Shown::Nothing,
            (When::Always, false) => Shown::Lines(Lines::start(total)),
            (_, true) => Shown::Bar(bar(total)),
        };
        Progress { shown }
    }

    /// The job has come this far.
    pub(crate) fn set(&self, counts: Counts) {
        match &self.shown {
            Shown::Nothing => {}
            Shown::Bar(bar) => {
                bar.set_position(counts.bytes);
                bar.set_message(match counts.failed {
                    0 => format!("{} chunks", counts.tasks),
                    failed => format!("{} chunks, {failed} failed", counts.tasks),
                });
            }
            Shown::Lines(lines) => lines.set(counts),
        }
    }

    /// Print a line on standard error without breaking the bar.
    pub(crate) fn println(&self, line: &str) {
        match &self.shown {
            Shown::Bar(bar) => bar.suspend(|| eprintln!("{line}")),
            Shown::Nothing | Shown::Lines(_) => eprintln!("{line}"),
        }
    }

    /// Remove the bar, or stop the lines.
    pub(crate) fn finish(&mut self) {
        match std::mem::replace(&mut self.shown, Shown::Nothing) {
            Shown::Nothing => {}
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Lines(lines) => lines.stop(),
        }
    }
}

/// The terminal's bar (a spinner when the total is unknown).
fn bar(total: Option<u64>) -> ProgressBar {
    let template = match total {
        Some(_) => {
            "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}"
        }
        None => "{spinner} {elapsed_precise} {bytes} {bytes_per_sec} {msg}",
    };
    let style = ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
