//! What the user sees on standard error while a job runs: a progress bar
//! with rate and ETA (when asked or when on a terminal) and task logs.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::When;

/// Progress of one job, measured in input bytes done.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A reporter for an input of `total` bytes (if known).
    pub(crate) fn new(when: When, total: Option<u64>) -> Self {
        let show = match when {
            When::Always => true,
            When::Never => false,
            When::Auto => std::io::stderr().is_terminal(),
        };
        if !show {
            return Progress { bar: None };
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {bytes} {bytes_per_sec} {msg}")
                    .expect("valid template"),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    /// A task covering `bytes` of input finished; `failed` counts failures.
    pub(crate) fn advance(&self, bytes: u64, tasks: u64, failed: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            if failed == 0 {
                bar.set_message(format!("{tasks} chunks"));
            } else {
                bar.set_message(format!("{tasks} chunks, {failed} failed"));
            }
        }
    }

    /// Print a line on standard error without breaking the bar.
    pub(crate) fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Remove the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
