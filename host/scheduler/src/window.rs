//! How far the reader may run ahead of the written output.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Bounds how far the reader runs ahead of the written output, and lets the
/// dispatcher stop it. Tasks read but not yet written may hold at most
/// [`Window::MAX_BYTES`] of input and number at most [`Window::MAX_TASKS`]:
/// memory stays flat whatever the input, and a job of tiny tasks still has
/// tens of thousands in flight, so a journal commit waiting on the disk
/// does not starve the workers.
pub(crate) struct Window {
    state: Mutex<WindowState>,
    changed: Condvar,
}

struct WindowState {
    /// Tasks below this index are written.
    written: u64,
    /// Input bytes of the tasks admitted and not yet written.
    bytes: u64,
    cancelled: bool,
}

impl WindowState {
    fn fits(&self, index: u64, bytes: u64) -> bool {
        index < self.written + Window::MAX_TASKS
            && (self.bytes == 0 || self.bytes + bytes <= Window::MAX_BYTES)
    }
}

impl Window {
    pub(crate) const MAX_BYTES: u64 = 64 << 20;
    const MAX_TASKS: u64 = 1 << 16;

    pub(crate) fn new() -> Self {
        Window {
            state: Mutex::new(WindowState {
                written: 0,
                bytes: 0,
                cancelled: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit task `index` of `bytes` if it fits now.
    pub(crate) fn try_admit(&self, index: u64, bytes: u64) -> bool {
        let mut state = self.lock();
        let fits = !state.cancelled && state.fits(index, bytes);
        if fits {
            state.bytes += bytes;
        }
        fits
    }

    /// Wait until task `index` of `bytes` fits, and admit it; false if the
    /// job was cancelled. Progress is guaranteed: every task below `index`
    /// is queued or running, and the window frees as they are written (a
    /// task larger than the window fits once the window is empty).
    pub(crate) fn admit(&self, index: u64, bytes: u64) -> bool {
        let mut state = self.lock();
        while !state.cancelled && !state.fits(index, bytes) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if !state.cancelled {
            state.bytes += bytes;
        }
        !state.cancelled
    }

    /// Tasks below `written` are written; they freed `freed` input bytes.
    pub(crate) fn advance(&self, written: u64, freed: u64) {
        let mut state = self.lock();
        state.written = written;
        state.bytes -= freed;
        drop(state);
        self.changed.notify_all();
    }

    pub(crate) fn cancel(&self) {
        self.lock().cancelled = true;
        self.changed.notify_all();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.lock().cancelled
    }
}
