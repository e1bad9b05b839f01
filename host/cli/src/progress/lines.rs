//! Progress as plain lines (no terminal codes), about once a second and
//! once at the end, for a standard error that is a file or a pipe: `wrun: progress 1.2 MiB/4.0
//! MiB (30.0%), 2.1 MiB/s, ETA 2s, 12 chunks done, 0 failed`.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytesize::ByteSize;

use super::Counts;

/// How often a line is printed.
const EVERY: Duration = Duration::from_secs(1);

/// The thread printing the lines, and what it prints.
#[derive(Debug)]
pub(super) struct Lines {
    counts: Arc<Mutex<Counts>>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Lines {
    /// Print a line every [`EVERY`] for an input of `total` bytes (if
    /// known), and a last one at [`Lines::stop`].
    pub(super) fn start(total: Option<u64>) -> Lines {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = counts.clone();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("wrun-progress".into())
            .spawn(move || {
                loop {
                    let last = stopped.recv_timeout(EVERY) != Err(RecvTimeoutError::Timeout);
                    let counts = *shared.lock().unwrap_or_else(|e| e.into_inner());
                    eprintln!("{}", line(counts, total, started.elapsed()));
                    if last {
                        return;
                    }
                }
            })
            // Without the thread there are no lines; the job runs on.
            .ok();
        Lines {
            counts,
            stop,
            thread,
        }
    }

    pub(super) fn set(&self, counts: Counts) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()) = counts;
    }

    /// Print the last line and stop.
    pub(super) fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One progress line, `elapsed` after the start.
fn line(counts: Counts, total: Option<u64>, elapsed: Duration) -> String {
    let rate = counts.bytes as f64 / elapsed.as_secs_f64().max(1e-3);
    let done = ByteSize(counts.bytes);
    let amount = match total {
        Some(total) if total > 0 => {
            let percent = counts.bytes as f64 * 100.0 / total as f64;
            let eta = match rate > 0.0 {
                true => {
                    let secs = total.saturating_sub(counts.bytes) as f64 / rate;
                    humantime::format_duration(Duration::from_secs(secs.ceil() as u64)).to_string()
                }
                false => "?".to_owned(),
            };
            format!(
                "{done}/{} ({percent:.1}%), {}/s, ETA {eta}",
                ByteSize(total),
                ByteSize(rate as u64)
            )
        }
        _ => format!("{done}, {}/s", ByteSize(rate as u64)),
    };
    format!(
        "wrun: progress {amount}, {} chunks done, {} failed",
        counts.tasks, counts.failed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_tells_bytes_percent_rate_eta_and_chunks() {
        let counts = Counts {
            bytes: 1 << 20,
            tasks: 12,
            failed: 1,
        };
        let total = Some(4 << 20);
        assert_eq!(
            line(counts, total, Duration::from_secs(1)),
            "wrun: progress 1.0 MiB/4.0 MiB (25.0%), 1.0 MiB/s, ETA 3s, 12 chunks done, 1 failed"
        );
        assert_eq!(
            line(Counts::default(), total, Duration::from_secs(1)),
            "wrun: progress 0 B/4.0 MiB (0.0%), 0 B/s, ETA ?, 0 chunks done, 0 failed"
        );
        assert_eq!(
            line(counts, None, Duration::from_secs(2)),
            "wrun: progress 1.0 MiB, 512.0 KiB/s, 12 chunks done, 1 failed"
        );
    }
}
