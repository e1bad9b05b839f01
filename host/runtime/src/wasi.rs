//! The WASI preview 1 imports, as wrun links them: wasmtime-wasi's, with the
//! two that could outlive a task's deadline or blame the host for a guest's
//! mistake replaced.
//!
//! * `poll_oneoff` waits on nothing: clock subscriptions are served by the
//!   guest's [`VirtualClock`] (a sleep returns at once, the clock advanced
//!   to its end) and the standard streams, all in memory, are always
//!   ready. wasmtime-wasi's would sleep the worker thread, where epoch
//!   interruption cannot reach it.
//! * `proc_exit` with a status outside WASI's `0..126` is an ABI violation,
//!   not a host error.
//!
//! Every other import is non-blocking as wrun configures WASI (no files,
//! sockets or environment; stdin, stdout and stderr in memory);
//! `docs/abi.md` lists each import and how it is bounded, and a test keeps
//! that list and the linker equal.

use wasmtime::{Caller, Linker};
use wrun_abi::export;

use crate::host_abi::AbiViolation;
use crate::sandbox::Sandbox;

/// The WASI preview 1 module name.
const MODULE: &str = "wasi_snapshot_preview1";

/// WASI `errno` values `poll_oneoff` returns.
mod errno {
    pub(super) const SUCCESS: u16 = 0;
    pub(super) const BADF: u16 = 8;
    pub(super) const INVAL: u16 = 28;
}

/// Size and alignment of a WASI type, in bytes.
#[derive(Debug, Clone, Copy)]
struct Layout {
    size: u64,
    align: u32,
}

const SUBSCRIPTION: Layout = Layout { size: 48, align: 8 };
const EVENT: Layout = Layout { size: 32, align: 8 };
const SIZE: Layout = Layout { size: 4, align: 4 };

/// Subscription tags, which are also event types.
const CLOCK: u8 = 0;
const FD_READ: u8 = 1;
const FD_WRITE: u8 = 2;

/// Clock ids a subscription may name: both read the virtual clock.
const REALTIME: u32 = 0;
const MONOTONIC: u32 = 1;

/// `subclockflags::subscription_clock_abstime`.
const ABSTIME: u16 = 1;

/// Add WASI preview 1 to `linker`, with wrun's `poll_oneoff` and
/// `proc_exit`.
pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, Sandbox::wasi)?;
    linker.allow_shadowing(true);
    let replaced = linker
        .func_wrap(MODULE, "poll_oneoff", poll_oneoff)
        .and_then(|linker| linker.func_wrap(MODULE, "proc_exit", proc_exit))
        .map(|_| ());
    linker.allow_shadowing(false);
    replaced
}

fn proc_exit(status: i32) -> wasmtime::Result<()> {
    Err(if (0..126).contains(&status) {
        wasmtime::Error::new(wasmtime_wasi::I32Exit(status))
    } else {
        violation(format!(
            "`proc_exit({status})`: WASI exit statuses are 0 to 125"
        ))
    })
}

/// One subscription, as read from the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Subscription {
    userdata: u64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Ready when the virtual clock reaches this time (in nanoseconds).
    Clock { deadline: u64 },
    /// Ready at once, with this error (success for the standard streams).
    Fd { event: u8, error: u16 },
}

/// `poll_oneoff(subscriptions, events, count, nevents) -> errno`.
fn poll_oneoff(
    mut caller: Caller<'_, Sandbox>,
    subs: u32,
    events: u32,
    count: u32,
    nevents: u32,
) -> wasmtime::Result<i32> {
    let Some(memory) = caller
        .get_export(export::MEMORY)
        .and_then(|e| e.into_memory())
    else {
        return Err(violation(
            "`poll_oneoff` called by a module that exports no memory".to_owned(),
        ));
    };
    if count == 0 {
        // It would wait for ever.
        return Ok(errno::INVAL.into());
    }
    let (data, sandbox) = memory.data_and_store_mut(&mut caller);
    let subs_range = region(data.len(), "subscriptions", subs, count, SUBSCRIPTION)?;
    let events_range = region(data.len(), "events", events, count, EVENT)?;
    let nevents_range = region(data.len(), "event count", nevents, 1, SIZE)?;
    let now = sandbox.clock.now();
    // Read them all before writing any event: the two arrays may overlap.
    // At most half as many bytes as the subscriptions hold in the guest.
    let mut polled = Vec::new();
    for raw in data[subs_range].chunks_exact(SUBSCRIPTION.size as usize) {
        match read(raw, now) {
            Ok(subscription) => polled.push(subscription),
            Err(errno) => return Ok(errno.into()),
        }
    }
    // Only the standard streams exist and they never wait, so a poll with
    // any descriptor returns at once; one with only clocks sleeps until the
    // first of them, which takes no time.
    let waits_for_fd = polled.iter().any(|s| matches!(s.kind, Kind::Fd { .. }));
    let until = if waits_for_fd {
        now
    } else {
        polled
            .iter()
            .filter_map(|s| match s.kind {
                Kind::Clock { deadline } => Some(deadline),
                Kind::Fd { .. } => None,
            })
            .min()
            .unwrap_or(now)
    };
    sandbox.clock.advance_to(until);
    let ready = polled.iter().filter(|s| match s.kind {
        Kind::Clock { deadline } => deadline <= until,
        Kind::Fd { .. } => true,
    });
    let mut written = 0u32;
    for (subscription, slot) in ready.zip(data[events_range].chunks_exact_mut(EVENT.size as usize))
    {
        write(subscription, slot);
        written += 1;
    }
    data[nevents_range].copy_from_slice(&written.to_le_bytes());
    Ok(errno::SUCCESS.into())
}

/// The byte range of `count` items laid out as `layout` at `ptr`, which
/// must be aligned and inside the guest's `len` bytes of memory.
fn region(
    len: usize,
    what: &str,
    ptr: u32,
    count: u32,
    layout: Layout,
) -> wasmtime::Result<std::ops::Range<usize>> {
    let align = layout.align;
    if !ptr.is_multiple_of(align) {
        return Err(violation(format!(
            "`poll_oneoff`: {what} pointer {ptr:#x} is not aligned to {align}"
        )));
    }
    let start = u64::from(ptr);
    let end = start + u64::from(count) * layout.size;
    if end > len as u64 {
        return Err(violation(format!(
            "`poll_oneoff`: {what} at {ptr:#x}+{} bytes, outside the guest's {len} bytes of memory",
            end - start
        )));
    }
    // Both fit in `len`, a usize.
    Ok(start as usize..end as usize)
}

/// Decode one subscription; an `errno` when it is invalid.
fn read(raw: &[u8], now: u64) -> Result<Subscription, u16> {
    let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
    let userdata = u64_at(0);
    let kind = match raw[8] {
        CLOCK => {
            let (id, timeout) = (u32_at(16), u64_at(24));
            let flags = u16::from_le_bytes([raw[40], raw[41]]);
            if id != REALTIME && id != MONOTONIC {
                // The CPU-time clocks, as in wasmtime-wasi, and unknown ids.
                return Err(errno::INVAL);
            }
            // Both clocks read the same virtual time, so an absolute
            // deadline is the same on either.
            let deadline = if flags & ABSTIME != 0 {
                timeout
            } else {
                now.saturating_add(timeout)
            };
            Kind::Clock { deadline }
        }
        event @ (FD_READ | FD_WRITE) => {
            let standard = u32_at(16) <= 2;
            Kind::Fd {
                event,
                error: if standard {
                    errno::SUCCESS
                } else {
                    errno::BADF
                },
            }
        }
        _ => return Err(errno::INVAL),
    };
    Ok(Subscription { userdata, kind })
}

/// Encode the event of a ready `subscription` into `slot` (32 bytes).
fn write(subscription: &Subscription, slot: &mut [u8]) {
    let (event, error, nbytes) = match subscription.kind {
        Kind::Clock { .. } => (CLOCK, errno::SUCCESS, 0u64),
        Kind::Fd { event, error } => (event, error, 1),
    };
    slot.fill(0);
    slot[0..8].copy_from_slice(&subscription.userdata.to_le_bytes());
    slot[8..10].copy_from_slice(&error.to_le_bytes());
    slot[10] = event;
    slot[16..24].copy_from_slice(&nbytes.to_le_bytes());
}

fn violation(message: String) -> wasmtime::Error {
    wasmtime::Error::new(AbiViolation(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock_subscription(userdata: u64, id: u32, timeout: u64, flags: u16) -> [u8; 48] {
        let mut raw = [0u8; 48];
        raw[0..8].copy_from_slice(&userdata.to_le_bytes());
        raw[8] = CLOCK;
        raw[16..20].copy_from_slice(&id.to_le_bytes());
        raw[24..32].copy_from_slice(&timeout.to_le_bytes());
        raw[40..42].copy_from_slice(&flags.to_le_bytes());
        raw
    }

    #[test]
    fn clock_subscriptions_become_virtual_deadlines() {
        let relative = clock_subscription(7, MONOTONIC, 5, 0);
        assert_eq!(
            read(&relative, 10),
            Ok(Subscription {
                userdata: 7,
                kind: Kind::Clock { deadline: 15 }
            })
        );
        let absolute = clock_subscription(1, REALTIME, 5, ABSTIME);
        assert_eq!(
            read(&absolute, 10).unwrap().kind,
            Kind::Clock { deadline: 5 }
        );
        let forever = clock_subscription(1, MONOTONIC, u64::MAX, 0);
        assert_eq!(
            read(&forever, 10).unwrap().kind,
            Kind::Clock { deadline: u64::MAX }
        );
        assert_eq!(read(&clock_subscription(1, 2, 5, 0), 0), Err(errno::INVAL));
    }

    #[test]
    fn descriptors_other_than_the_standard_streams_are_bad() {
        let mut raw = [0u8; 48];
        raw[8] = FD_READ;
        assert_eq!(
            read(&raw, 0).unwrap().kind,
            Kind::Fd {
                event: FD_READ,
                error: errno::SUCCESS
            }
        );
        raw[16] = 3;
        assert_eq!(
            read(&raw, 0).unwrap().kind,
            Kind::Fd {
                event: FD_READ,
                error: errno::BADF
            }
        );
        raw[8] = 9;
        assert_eq!(read(&raw, 0), Err(errno::INVAL));
    }

    #[test]
    fn regions_are_aligned_and_inside_memory() {
        assert_eq!(region(1000, "events", 8, 2, EVENT).unwrap(), 8..72);
        assert!(region(1000, "events", 4, 1, EVENT).is_err());
        assert!(region(1000, "events", 968, 2, EVENT).is_err());
        assert!(region(1000, "event count", 996, 1, SIZE).is_ok());
        assert!(region(1000, "event count", 998, 1, SIZE).is_err());
        assert!(region(64, "events", u32::MAX - 7, u32::MAX, EVENT).is_err());
    }

    #[test]
    fn events_are_written_in_the_wasi_layout() {
        let mut slot = [0xffu8; 32];
        write(
            &Subscription {
                userdata: 0x0102,
                kind: Kind::Fd {
                    event: FD_WRITE,
                    error: errno::BADF,
                },
            },
            &mut slot,
        );
        let mut expected = [0u8; 32];
        expected[0..2].copy_from_slice(&[2, 1]);
        expected[8] = errno::BADF as u8;
        expected[10] = FD_WRITE;
        expected[16] = 1;
        assert_eq!(slot, expected);
    }
}
