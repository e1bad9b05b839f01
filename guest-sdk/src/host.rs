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
        pub(super) fn spawn(
            module: i32,
            input: *const u8,
            input_len: usize,
            args: *const u8,
            args_len: usize,
        ) -> i32;
        pub(super) fn child_status(handle: u32) -> i32;
        pub(super) fn child_output_len(handle: u32) -> i32;
        pub(super) fn child_output_read(handle: u32, ptr: *mut u8, len: usize) -> i32;
    }
}

/// Ask for a child of module `module` on `input` with `args` (ABI
/// encoding); its handle, or a negative status.
#[cfg(target_arch = "wasm32")]
pub(crate) fn spawn(module: i32, input: &[u8], args: &[u8]) -> i32 {
    // SAFETY: both pointers and lengths describe live slices; the host
    // copies the bytes before returning and keeps no reference.
    unsafe {
        imports::spawn(
            module,
            input.as_ptr(),
            input.len(),
            args.as_ptr(),
            args.len(),
        )
    }
}

/// How child `handle` of the last wait ended (a status), and its output
/// (or error message); `Err` with the status when it has no result.
#[cfg(target_arch = "wasm32")]
pub(crate) fn child_result(handle: u32) -> Result<(i32, Vec<u8>), i32> {
    // SAFETY: the host reads nothing from the guest for these two.
    let (status, len) = unsafe {
        (
            imports::child_status(handle),
            imports::child_output_len(handle),
        )
    };
    let len = usize::try_from(len).map_err(|_| len)?;
    if status < 0 && status != wrun_abi::status::FAILED {
        return Err(status);
    }
    let mut bytes = vec![0; len];
    // SAFETY: the host writes at most `len` bytes into the live buffer.
    let read = unsafe { imports::child_output_read(handle, bytes.as_mut_ptr(), bytes.len()) };
    bytes.truncate(usize::try_from(read).map_err(|_| read)?);
    Ok((status, bytes))
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
