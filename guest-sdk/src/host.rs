//! The host functions of the ABI (`wrun` import module), wrapped safely.
//!
//! On `wasm32` these are real imports. On other targets (the native test
//! harness) output is collected by the harness itself, so `emit` and `error`
//! do nothing and `log` writes to stderr.

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "wrun")]
    unsafe extern "C" {
        pub(super) fn emit(ptr: *const u8, len: usize);
        pub(super) fn log(ptr: *const u8, len: usize);
        pub(super) fn error(ptr: *const u8, len: usize);
    }
}

/// Append bytes to the task's output.
#[cfg(target_arch = "wasm32")]
pub(crate) fn emit(bytes: &[u8]) {
    // SAFETY: the pointer and length describe a live slice; the host copies
    // the bytes before returning and keeps no reference.
    unsafe { imports::emit(bytes.as_ptr(), bytes.len()) }
}

/// Set the message of the failure the current call is about to report.
#[cfg(target_arch = "wasm32")]
pub(crate) fn error(message: &str) {
    // SAFETY: as for `emit`.
    unsafe { imports::error(message.as_ptr(), message.len()) }
}

/// Write a line of text to the task's log (what stderr is to a command).
///
/// The host keeps a bounded amount of log per task and shows it with the
/// task's outcome.
pub fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `emit`.
    unsafe {
        imports::log(message.as_ptr(), message.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{message}");
}
