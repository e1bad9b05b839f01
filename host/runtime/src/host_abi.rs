//! The host side of the guest ABI: the `wrun` import module.
//!
//! Guest misuse (a buffer outside linear memory) traps the task with an
//! [`AbiViolation`]; limits (output) trap with their own error; the log and
//! the error message are cut at their caps, saying so; nothing a guest
//! passes can make the host allocate more than its limits allow.

use bytes::Bytes;
use wasmtime::{Caller, Linker};
use wrun_abi::{IMPORT_MODULE, SELF_MODULE, export, import, status};

use crate::limits::capped_text;
use crate::nest::{ChildResult, Spawn, SpawnLimitHit};
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
    add_nest_to_linker(linker)
}

/// Add `spawn` and the child result imports to `linker`.
fn add_nest_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.func_wrap(
        IMPORT_MODULE,
        import::SPAWN,
        |mut caller: Caller<'_, Sandbox>,
         module: i32,
         input_ptr: u32,
         input_len: u32,
         args_ptr: u32,
         args_len: u32|
         -> wasmtime::Result<i32> {
            if !caller.data().nest.in_step() {
                return Err(violation(format!(
                    "`{}` called outside `{}`",
                    import::SPAWN,
                    export::STEP
                )));
            }
            let mut input = Bytes::new();
            with_guest_bytes(&mut caller, import::SPAWN, input_ptr, input_len, |_, b| {
                input = Bytes::copy_from_slice(b);
                Ok(())
            })?;
            let mut args = Vec::new();
            with_guest_bytes(&mut caller, import::SPAWN, args_ptr, args_len, |_, b| {
                args = b.to_vec();
                Ok(())
            })?;
            if module != SELF_MODULE || !well_formed_args(&args) {
                return Ok(status::BAD_ARGS);
            }
            match caller.data_mut().nest.spawn(Spawn { input, args }) {
                Ok(handle) => Ok(handle as i32),
                Err(limit) => Err(wasmtime::Error::new(SpawnLimitHit(limit))),
            }
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        import::CHILD_STATUS,
        |caller: Caller<'_, Sandbox>, handle: u32| -> i32 {
            match caller.data().nest.result(handle) {
                Some(Ok(_)) => status::OK,
                Some(Err(_)) => status::FAILED,
                None => status::BAD_ARGS,
            }
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        import::CHILD_OUTPUT_LEN,
        |caller: Caller<'_, Sandbox>, handle: u32| -> i32 {
            match caller.data().nest.result(handle) {
                Some(result) => i32::try_from(result_bytes(result).len()).unwrap_or(i32::MAX),
                None => status::BAD_ARGS,
            }
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        import::CHILD_OUTPUT_READ,
        |mut caller: Caller<'_, Sandbox>,
         handle: u32,
         ptr: u32,
         len: u32|
         -> wasmtime::Result<i32> {
            let Some(memory) = caller
                .get_export(export::MEMORY)
                .and_then(|e| e.into_memory())
            else {
                return Err(violation(format!(
                    "`{}` called by a module that exports no memory",
                    import::CHILD_OUTPUT_READ
                )));
            };
            let (data, sandbox) = memory.data_and_store_mut(&mut caller);
            let Some(result) = sandbox.nest.result(handle) else {
                return Ok(status::BAD_ARGS);
            };
            let bytes = result_bytes(result);
            let count = bytes.len().min(len as usize).min(i32::MAX as usize);
            let size = data.len();
            let target = guest_slice_mut(data, ptr, count as u32).ok_or_else(|| {
                violation(format!(
                    "`{}` got buffer {ptr:#x}+{count}, outside the guest's {size} bytes of memory",
                    import::CHILD_OUTPUT_READ
                ))
            })?;
            target.copy_from_slice(&bytes[..count]);
            Ok(count as i32)
        },
    )?;
    Ok(())
}

/// A child's output, or its error message.
fn result_bytes(result: &ChildResult) -> &[u8] {
    match result {
        Ok(output) => output,
        Err(message) => message.as_bytes(),
    }
}

/// Arguments in the ABI encoding: UTF-8, each followed by a NUL.
fn well_formed_args(args: &[u8]) -> bool {
    (args.is_empty() || args.last() == Some(&0)) && std::str::from_utf8(args).is_ok()
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

/// `data[ptr..ptr + len]` to write into, if it is all inside `data`.
fn guest_slice_mut(data: &mut [u8], ptr: u32, len: u32) -> Option<&mut [u8]> {
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get_mut(start..end)
}

fn violation(message: String) -> wasmtime::Error {
    wasmtime::Error::new(AbiViolation(message))
}

#[cfg(test)]
mod tests {
    use super::{guest_slice, well_formed_args};

    #[test]
    fn guest_slices_are_bounds_checked() {
        let memory = [1u8, 2, 3, 4];
        assert_eq!(guest_slice(&memory, 1, 2), Some(&[2u8, 3][..]));
        assert_eq!(guest_slice(&memory, 4, 0), Some(&[][..]));
        assert_eq!(guest_slice(&memory, 3, 2), None);
        assert_eq!(guest_slice(&memory, u32::MAX, u32::MAX), None);
    }

    #[test]
    fn spawned_arguments_must_be_nul_terminated_utf8() {
        assert!(well_formed_args(b""));
        assert!(well_formed_args(b"8\x002\x00"));
        assert!(!well_formed_args(b"8"));
        assert!(!well_formed_args(b"\xff\x00"));
    }
}
