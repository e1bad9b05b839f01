//! The host side of the guest ABI: the `wrun` import module.
//!
//! Guest misuse (a buffer outside linear memory) traps the task with an
//! [`AbiViolation`]; limits (output) trap with their own error; the log and
//! the error message are cut at their caps, saying so; nothing a guest
//! passes can make the host allocate more than its limits allow.

use wasmtime::{Caller, Linker};
use wrun_abi::{IMPORT_MODULE, export, import};

use crate::limits::capped_text;
use crate::sandbox::Sandbox;

/// A guest broke the ABI's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct AbiViolation(pub(crate) String);

/// Add the `wrun` imports to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.func_wrap(
        IMPORT_MODULE,
        import::EMIT,
        |mut caller: Caller<'_, Sandbox>, ptr: u32, len: u32| {
            with_guest_bytes(&mut caller, import::EMIT, ptr, len, |sandbox, bytes| {
                sandbox.output.write(bytes).map_err(wasmtime::Error::new)
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        import::LOG,
        |mut caller: Caller<'_, Sandbox>, ptr: u32, len: u32| {
            with_guest_bytes(&mut caller, import::LOG, ptr, len, |sandbox, bytes| {
                // The log truncates rather than fails; a line break keeps
                // separate `log` calls on separate lines.
                let _ = sandbox.log.write(bytes);
                let _ = sandbox.log.write(b"\n");
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        import::ERROR,
        |mut caller: Caller<'_, Sandbox>, ptr: u32, len: u32| {
            with_guest_bytes(&mut caller, import::ERROR, ptr, len, |sandbox, bytes| {
                let cap = sandbox.limits.error;
                sandbox.error = Some(capped_text("error message", bytes, cap));
                Ok(())
            })
        },
    )?;
    Ok(())
}

/// Run `f` on the guest's bytes `ptr..ptr + len`, checked against its
/// exported memory.
fn with_guest_bytes(
    caller: &mut Caller<'_, Sandbox>,
    function: &str,
    ptr: u32,
    len: u32,
    f: impl FnOnce(&mut Sandbox, &[u8]) -> wasmtime::Result<()>,
) -> wasmtime::Result<()> {
    let Some(memory) = caller
        .get_export(export::MEMORY)
        .and_then(|e| e.into_memory())
    else {
        return Err(violation(format!(
            "`{function}` called by a module that exports no memory"
        )));
    };
    let (data, sandbox) = memory.data_and_store_mut(caller);
    let bytes = guest_slice(data, ptr, len).ok_or_else(|| {
        violation(format!(
            "`{function}` got buffer {ptr:#x}+{len}, outside the guest's {} bytes of memory",
            data.len()
        ))
    })?;
    f(sandbox, bytes)
}

/// `data[ptr..ptr + len]`, if it is all inside `data`.
pub(crate) fn guest_slice(data: &[u8], ptr: u32, len: u32) -> Option<&[u8]> {
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

fn violation(message: String) -> wasmtime::Error {
    wasmtime::Error::new(AbiViolation(message))
}

#[cfg(test)]
mod tests {
    use super::guest_slice;

    #[test]
    fn guest_slices_are_bounds_checked() {
        let memory = [1u8, 2, 3, 4];
        assert_eq!(guest_slice(&memory, 1, 2), Some(&[2u8, 3][..]));
        assert_eq!(guest_slice(&memory, 4, 0), Some(&[][..]));
        assert_eq!(guest_slice(&memory, 3, 2), None);
        assert_eq!(guest_slice(&memory, u32::MAX, u32::MAX), None);
    }
}
