//! Showing a job run on this terminal: what runs where (`-v`), a progress
//! bar with rate and ETA, task logs as `[chunk N] …`, and the end-of-job
//! summary. The run itself is the job library's.

use wrun_jobs::{Observer, Run, Update, describe_chunking};

use crate::args::When;
use crate::exit::Fail;
use crate::progress::{Counts, Progress};
use crate::{drain, summary};

/// How to show a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Display {
    pub(crate) progress: When,
    pub(crate) verbose: bool,
}

/// Run `run` to its end, showing it as `display` says.
pub(crate) fn execute(run: Run, display: Display) -> Result<(), Fail> {
    let input_name = run.input_name();
    if display.verbose {
        let modules = run.modules();
        for module in modules {
            eprintln!(
                "wrun: {}: {} in {:.2} ms",
                module.source(),
                module.origin(),
                module.load_time().as_secs_f64() * 1e3
            );
        }
        eprintln!(
            "wrun: {} ({}) over {input_name} split as {}, {} workers, chunks of {}",
            modules[0].source(),
            modules[0].info().kind,
            modules[1].source(),
            run.slots(),
            describe_chunking(run.spec())
        );
    }
    let job = run.job();
    if job.is_some() {
        drain::attach(run.requests());
    }
    let mut shown = Shown {
        progress: Progress::new(display.progress, run.input_size()),
        counts: Counts::default(),
    };
    let result = run.execute(&mut shown);
    shown.progress.finish();
    summary::finish(&result?, job, &input_name, display.verbose)
}

/// The progress bar and task logs.
struct Shown {
    progress: Progress,
    counts: Counts,
}

impl Observer for Shown {
    fn finished(&mut self, update: &Update<'_>) {
        let Update::Finished {
            index,
            bytes,
            log,
            error,
            ..
        } = update;
        self.counts.bytes += bytes;
        self.counts.tasks += 1;
        self.counts.failed += u64::from(error.is_some());
        for line in String::from_utf8_lossy(log).lines() {
            self.progress.println(&format!("[chunk {index}] {line}"));
        }
        self.progress.set(self.counts);
    }

    fn note(&mut self, line: &str) {
        self.progress.println(line);
    }
}
