//! Calls into a guest, shared by tasks and splitters: copying bytes in
//! through `wrun_reserve`, calling an export that returns a status, and
//! classifying whatever went wrong as a [`Failure`].

use wasmtime::{AsContextMut, Memory, Store, TypedFunc};
use wrun_abi::status;

use crate::outcome::Failure;
use crate::sandbox::Sandbox;

/// Ask the guest for a buffer and copy `bytes` into it.
pub(crate) fn copy_in(
    store: &mut Store<Sandbox>,
    memory: Memory,
    reserve: &TypedFunc<u32, u32>,
    bytes: &[u8],
) -> Result<u32, Failure> {
    let len = len32(bytes.len())?;
    let ptr = reserve
        .call(&mut *store, len)
        .map_err(|e| classify(store, e))?;
    if ptr == 0 {
        return Err(Failure::MemoryLimit {
            limit: store.data().limits.memory,
        });
    }
    let start = ptr as usize;
    let target = memory
        .data_mut(store.as_context_mut())
        .get_mut(start..start + bytes.len())
        .ok_or_else(|| {
            abi(&format!(
                "`wrun_reserve({len})` returned {ptr:#x}, outside the guest's memory"
            ))
        })?;
    target.copy_from_slice(bytes);
    Ok(ptr)
}

/// What an export returns when it succeeds; every other value but the
/// error statuses ([`status::ERRORS`]) is an ABI violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returns {
    /// [`status::OK`] only: `wrun_init`, `wrun_record`, `wrun_finish`.
    Ok,
    /// [`status::OK`], [`status::MORE`] or [`status::WAIT`]: `wrun_step`
    /// (whose caller checks that a `WAIT` follows a `spawn`).
    Step,
    /// Any non-negative count: `wrun_split`.
    Count,
}

impl Returns {
    fn allows(self, code: i32) -> bool {
        match self {
            Returns::Ok => code == status::OK,
            Returns::Step => [status::OK, status::MORE, status::WAIT].contains(&code),
            Returns::Count => code >= 0,
        }
    }
}

/// Call an export that returns a status, and interpret it with [`check`].
pub(crate) fn call<P: wasmtime::WasmParams>(
    store: &mut Store<Sandbox>,
    function: &TypedFunc<P, i32>,
    params: P,
    name: &str,
    returns: Returns,
) -> Result<i32, Failure> {
    let result = function.call(&mut *store, params);
    check(store, result, name, returns)
}

/// Interpret an export's result: an error status fails with the guest's
/// message, a value `returns` allows is returned, any other value is an
/// ABI violation, a trap is classified.
fn check(
    store: &mut Store<Sandbox>,
    result: wasmtime::Result<i32>,
    function: &str,
    returns: Returns,
) -> Result<i32, Failure> {
    match result {
        Ok(code) if returns.allows(code) => Ok(code),
        Ok(code) if status::ERRORS.contains(&code) => Err(Failure::Guest {
            status: code,
            message: store.data_mut().error.take().unwrap_or_else(|| {
                format!("`{function}` returned status {code} without a message")
            }),
        }),
        Ok(code) => Err(abi(&format!("`{function}` returned unknown status {code}"))),
        Err(error) => Err(classify(store, error)),
    }
}

/// Classify `error`, with the message the guest set through `error` (taken).
pub(crate) fn classify(store: &mut Store<Sandbox>, error: wasmtime::Error) -> Failure {
    let sandbox = store.data_mut();
    let message = sandbox.error.take();
    Failure::from_wasmtime(error, message, &sandbox.limits)
}

/// An ABI violation found by the host.
pub(crate) fn abi(message: &str) -> Failure {
    Failure::Abi {
        message: message.to_owned(),
    }
}

/// `len` as a guest length; more than wasm32 can address is a memory-limit
/// failure.
pub(crate) fn len32(len: usize) -> Result<u32, Failure> {
    u32::try_from(len).map_err(|_| Failure::MemoryLimit {
        limit: u32::MAX as u64,
    })
}
