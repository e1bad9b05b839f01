//! Which 4 KiB host pages of a linear memory were written, so that snapshots can be incremental.
//!
//! A snapshot only needs to hash and store the host pages that can differ from what it already
//! has. Both tools here ask the kernel, through the `PAGEMAP_SCAN` ioctl on `/proc/self/pagemap`
//! (Linux 6.7+), which walks this process's page tables over an address range and reports runs of
//! pages whose *categories* match a filter. Nothing is copied and no memory is read, so a scan
//! costs a page-table walk rather than a pass over the data.
//!
//! # Written since mapped: [`written_pages`]
//!
//! Reading a page that was never touched maps a shared page: the zero page (`PAGE_IS_PFNZERO`) for
//! anonymous memory, or the page-cache page (`PAGE_IS_FILE`) under a `MAP_PRIVATE` file mapping
//! such as wasmtime's copy-on-write memory image. Only a *write* gives the process a private
//! anonymous copy. So "present or swapped out, not the zero page, not a file page" means "written
//! since the range was mapped or last decommitted". That is the criterion wasmtime's pooling
//! allocator uses to find the pages of a slot that it must reset, plus swapped-out pages (a
//! written page that went to swap is still written). This scan cannot tell *when* a page was
//! written, so it gives the baseline: the pages that may differ from the freshly instantiated
//! memory.
//!
//! # Written since the last snapshot: [`WriteTracker`]
//!
//! The tracker registers the range with a userfaultfd in write-protect mode with
//! `UFFD_FEATURE_WP_ASYNC`, then write-protects all of it. The kernel sets the uffd-wp bit in each
//! page-table entry of the range. `UFFD_FEATURE_WP_UNPOPULATED`, which `WP_ASYNC` implies, puts
//! "pte markers" in empty entries, so a page first touched later keeps the protection. A read of
//! such a page maps the zero page (or file page) still protected, so reads are never reported.
//! A write to a protected page faults, and in async mode the kernel resolves the fault itself by
//! clearing the bit. There is no handler thread, no signal and no message on the fd. Each page
//! costs about one minor fault per snapshot interval. This also holds for writes the kernel makes
//! on the process's behalf, such as `read(2)` into wasm memory: the fd is opened with
//! `UFFD_USER_MODE_ONLY`, but that flag only concerns faults delivered to a handler, and async WP
//! delivers none. [`WriteTracker::take_written`] then runs `PAGEMAP_SCAN` for entries without the
//! bit (`PAGE_IS_WRITTEN`). With `PM_SCAN_WP_MATCHING`, it sets the bit again under the same
//! page-table lock. A concurrent write is therefore either reported by this scan, and lands in
//! memory before `take_written` returns, or faults again and is reported by the next one. No write
//! is lost, as long as the caller reads the reported pages *after* `take_written` returns.
//! `PM_SCAN_CHECK_WPASYNC` makes the scan fail with `EPERM`, instead of silently skipping, if
//! part of the range is no longer registered. For example, something `mmap(MAP_FIXED)`ed over it.
//!
//! # Older kernels, missing permissions
//!
//! Before Linux 6.7, `/proc/self/pagemap` has no ioctl (`ENOTTY`) and userfaultfd has no
//! `WP_ASYNC` (`UFFDIO_API` fails with `EINVAL`). [`written_pages`] then returns `Ok(false)` and
//! [`WriteTracker::start`] returns an error. The caller falls back to hashing every page, which is
//! always correct, only slower. The userfaultfd is opened with `userfaultfd(2)` and
//! `UFFD_USER_MODE_ONLY`, which works unprivileged even with `vm.unprivileged_userfaultfd=0`. If
//! the syscall fails with `EPERM` (a seccomp filter, for example), the code tries
//! `/dev/userfaultfd`'s `USERFAULTFD_IOC_NEW`, which needs read-write access to that device node
//! (root-only by default).
//!
//! # Interplay with wasmtime's slot reset
//!
//! When an instance is deallocated, wasmtime resets its pool slot by scanning for pages that are
//! PRESENT, WRITTEN, not PFNZERO and not FILE. It restores only those, up to `keep_resident`, and
//! decommits what lies past the scan's end. A page that is still uffd-write-protected does not read
//! as WRITTEN, so the reset would skip it and its contents would leak into the next instance that
//! gets the slot. So, when a [`WriteTracker`] is dropped, it removes every protection bit and pte
//! marker (`UFFDIO_WRITEPROTECT` with mode 0, then `UFFDIO_UNREGISTER`, which on these kernels
//! also clears them, as does closing the fd). Afterwards every present page reads as WRITTEN again,
//! exactly as if the tracker had never existed. The tracker must be dropped *before* the memory
//! goes back to the pool, that is, before the wasmtime instance or `Store` that owns it.
//!
//! # Caveats
//!
//! * Transparent huge pages: [`written_pages`] reports a written THP whole (2 MiB; a superset,
//!   which is correct). Under a [`WriteTracker`], the first write to a THP that was mapped before
//!   tracking started splits it into 4 KiB entries (that is how async write protection resolves a
//!   huge-page fault), so reports stay page-exact. No new THP forms in a tracked range: the pte
//!   markers occupy its page tables, and khugepaged does not collapse uffd-wp entries. So a
//!   tracked memory gradually loses its THP backing. That costs TLB misses but does not affect
//!   correctness.
//! * Only writes are tracked. If the range is changed by other means while tracked, the change may
//!   not be reported. Examples: `madvise(MADV_DONTNEED)` zeroing pages, or a new mapping over part
//!   of it (`take_written` fails with `EPERM` in that case). wasmtime does neither to the memory of
//!   a live instance.
//! * Register only the accessible part of a memory. When `memory.grow` makes more of the
//!   reservation accessible, call [`WriteTracker::grow`]. Registering the `PROT_NONE` rest of a
//!   slot would work, and the registration survives a later `mprotect`, but write-protecting it
//!   fills page tables with markers (2 MiB of page tables per GiB). Several VMAs with different
//!   backings, such as the image mapping followed by anonymous memory, are fine.
//! * Both the userfaultfd registration and the `/proc/self/pagemap` fd belong to this process's
//!   address space. A forked child must not use a tracker inherited from its parent.
//! * `PAGEMAP_SCAN` holds the address space's mmap lock for reading while it walks. That briefly
//!   delays `mmap` or `mprotect` calls made by other threads at the same moment.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Size of a host page, the granularity of everything reported here (checked against `sysconf`
/// at run time).
pub(crate) const HOST_PAGE: usize = 4096;

// Kernel ABI, from linux/fs.h and linux/userfaultfd.h (Linux 6.7+; distribution headers are often
// older than that, so it is spelled out here). The ioctl numbers use the generic `_IOC` layout;
// the `const` assertions pin them to the values the C headers produce on x86_64.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
compile_error!("dirty.rs encodes ioctl numbers with the generic _IOC layout");

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, ty, nr, size)`.
const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// `struct pm_scan_arg`.
#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`.
#[repr(C)]
#[derive(Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `struct uffdio_api`.
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_range`.
#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

/// `struct uffdio_register`.
#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

/// `struct uffdio_writeprotect`.
#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

const PAGEMAP_SCAN: u32 = ioc(IOC_READ | IOC_WRITE, b'f', 16, size_of::<PmScanArg>());
const PAGE_IS_WRITTEN: u64 = 1 << 1;
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
const PAGE_IS_PFNZERO: u64 = 1 << 5;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

const UFFD_API: u64 = 0xaa;
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
/// Bit of `_UFFDIO_WRITEPROTECT` in `uffdio_register.ioctls`.
const UFFDIO_WRITEPROTECT_BIT: u64 = 1 << 0x06;
const UFFDIO_REGISTER: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0xaa,
    0x00,
    size_of::<UffdioRegister>(),
);
const UFFDIO_UNREGISTER: u32 = ioc(IOC_READ, 0xaa, 0x01, size_of::<UffdioRange>());
const UFFDIO_WRITEPROTECT: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0xaa,
    0x06,
    size_of::<UffdioWriteprotect>(),
);
const UFFDIO_API: u32 = ioc(IOC_READ | IOC_WRITE, 0xaa, 0x3f, size_of::<UffdioApi>());
const USERFAULTFD_IOC_NEW: u32 = ioc(0, 0xaa, 0x00, 0);

const _: () = {
    assert!(size_of::<PmScanArg>() == 96 && size_of::<PageRegion>() == 24);
    assert!(size_of::<UffdioApi>() == 24 && size_of::<UffdioRegister>() == 32);
    assert!(size_of::<UffdioRange>() == 16 && size_of::<UffdioWriteprotect>() == 24);
    assert!(PAGEMAP_SCAN == 0xc060_6610);
    assert!(UFFDIO_API == 0xc018_aa3f);
    assert!(UFFDIO_REGISTER == 0xc020_aa00);
    assert!(UFFDIO_UNREGISTER == 0x8010_aa01);
    assert!(UFFDIO_WRITEPROTECT == 0xc018_aa06);
    assert!(USERFAULTFD_IOC_NEW == 0xaa00);
};

/// Capacity of the region vector handed to one `PAGEMAP_SCAN` call. When more disjoint regions
/// match, the call stops early and [`scan`] resumes from `walk_end`.
const SCAN_REGIONS: usize = 512;

/// The filter of one `PAGEMAP_SCAN`. A page matches if `categories ^ category_inverted` has every
/// bit of `category_mask` and, unless it is 0, some bit of `category_anyof_mask`.
#[derive(Clone, Copy)]
struct Query {
    flags: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// [`written_pages`]: (PRESENT or SWAPPED) and WRITTEN and not PFNZERO and not FILE. The return
/// mask is empty so that all matching regions look alike and adjacent ones merge.
const WRITTEN_SINCE_MAPPED: Query = Query {
    flags: 0,
    category_inverted: PAGE_IS_PFNZERO | PAGE_IS_FILE,
    category_mask: PAGE_IS_WRITTEN | PAGE_IS_PFNZERO | PAGE_IS_FILE,
    category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
    return_mask: 0,
};

/// [`WriteTracker::take_written`]: pages without the uffd-wp bit, write-protected again as they
/// are reported. This is the exact shape the kernel has a fast path for.
const TAKE_WRITTEN: Query = Query {
    flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
    category_inverted: 0,
    category_mask: PAGE_IS_WRITTEN,
    category_anyof_mask: 0,
    return_mask: PAGE_IS_WRITTEN,
};

/// `ioctl(fd, request, arg)`, with -1 turned into the `errno` error.
///
/// # Safety
///
/// `request` must be an ioctl of `fd` whose argument is a pointer to a `T`, and `*arg` must be a
/// valid `T`, including any pointers inside it.
unsafe fn ioctl<T>(fd: RawFd, request: u32, arg: *mut T) -> io::Result<libc::c_int> {
    // SAFETY: the caller guarantees that `request` takes a `*mut T` and that `arg` is valid.
    let rc = unsafe { libc::ioctl(fd, request as libc::Ioctl, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The same error, with `what` prepended to its message.
fn context(err: io::Error, what: &str) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Checks that `[addr, addr + len)` is page-aligned and does not wrap around.
fn check_range(addr: usize, len: usize) -> io::Result<()> {
    let aligned = addr.is_multiple_of(HOST_PAGE) && len.is_multiple_of(HOST_PAGE);
    if aligned && addr.checked_add(len).is_some() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("range {addr:#x}+{len:#x} is not {HOST_PAGE}-byte aligned or wraps around"),
    ))
}

/// Whether the host's page size is [`HOST_PAGE`], so that scan results are in those units.
fn host_page_size_matches() -> bool {
    // SAFETY: `sysconf` only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size) == Ok(HOST_PAGE)
}

/// Runs `PAGEMAP_SCAN` with `query` over `[start, start + len)` until the walk reaches the end.
/// `f` gets the matching regions as offsets from `start`, ascending, with adjacent regions merged
/// (also across calls). Errors come from the first failing call.
fn scan(
    pagemap: &File,
    start: usize,
    len: usize,
    query: Query,
    mut f: impl FnMut(Range<usize>),
) -> io::Result<()> {
    let end = start + len;
    let mut regions = [PageRegion {
        start: 0,
        end: 0,
        categories: 0,
    }; SCAN_REGIONS];
    let mut pending: Option<Range<usize>> = None;
    let mut from = start;
    loop {
        let mut arg = PmScanArg {
            size: size_of::<PmScanArg>() as u64,
            flags: query.flags,
            start: from as u64,
            end: end as u64,
            walk_end: 0,
            vec: regions.as_mut_ptr() as u64,
            vec_len: SCAN_REGIONS as u64,
            max_pages: 0,
            category_inverted: query.category_inverted,
            category_mask: query.category_mask,
            category_anyof_mask: query.category_anyof_mask,
            return_mask: query.return_mask,
        };
        // SAFETY: PAGEMAP_SCAN takes a `struct pm_scan_arg`, whose `vec` points at `SCAN_REGIONS`
        // writable `struct page_region`s that outlive the call. The kernel validates the scanned
        // range itself and only walks page tables; it never touches the memory.
        let n = unsafe { ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg)? };
        let n = usize::try_from(n).unwrap_or(0).min(SCAN_REGIONS);
        for region in &regions[..n] {
            let region = (region.start as usize - start)..(region.end as usize - start);
            match &mut pending {
                Some(last) if last.end == region.start => last.end = region.end,
                _ => {
                    if let Some(last) = pending.replace(region) {
                        f(last);
                    }
                }
            }
        }
        let walk_end = arg.walk_end as usize;
        if walk_end >= end {
            break;
        }
        if walk_end <= from {
            return Err(io::Error::other(format!(
                "PAGEMAP_SCAN stopped at {walk_end:#x} without progress"
            )));
        }
        from = walk_end;
    }
    if let Some(last) = pending {
        f(last);
    }
    Ok(())
}

/// Reports the pages of `[ptr, ptr + len)` that may differ from what was freshly mapped there.
/// These are present or swapped pages that are private anonymous copies, meaning they were
/// written: `PAGEMAP_SCAN` categories (PRESENT or SWAPPED) and WRITTEN, but neither PFNZERO nor
/// FILE. This is the criterion wasmtime uses to find the dirty pages of a pool slot.
///
/// `f` receives byte offsets from `ptr`: page-aligned, ascending, adjacent pages merged.
/// The result may be a superset (a page written back to its original contents still counts), but
/// a written page is never missing. Pages that were never touched, or only read, are not reported.
///
/// While a [`WriteTracker`] covers part of the range, pages it has write-protected read as not
/// WRITTEN. There, this function only reports writes made since the tracker last protected them.
///
/// Returns `Ok(false)`, after reporting nothing, if `PAGEMAP_SCAN` is unavailable (Linux before
/// 6.7, no `/proc`, or a host page size other than [`HOST_PAGE`]). The caller must then treat every
/// page as written.
///
/// # Safety
///
/// `ptr` must be [`HOST_PAGE`]-aligned and `len` a multiple of it (both are checked). The range
/// must be part of this process's address space. The kernel never dereferences it, and unmapped
/// parts are simply not reported.
pub(crate) unsafe fn written_pages(
    ptr: *const u8,
    len: usize,
    f: impl FnMut(Range<usize>),
) -> io::Result<bool> {
    check_range(ptr as usize, len)?;
    if !host_page_size_matches() {
        return Ok(false);
    }
    let pagemap = match File::open("/proc/self/pagemap") {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    match scan(&pagemap, ptr as usize, len, WRITTEN_SINCE_MAPPED, f) {
        Ok(()) => Ok(true),
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(libc::ENOTTY | libc::EINVAL | libc::ENOENT)
            ) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Opens a userfaultfd. It is close-on-exec and non-blocking, and it handles user-mode faults
/// only, which lets unprivileged processes use it whatever `vm.unprivileged_userfaultfd` says.
/// If the syscall itself is refused with `EPERM`, it falls back to `/dev/userfaultfd`.
fn open_userfaultfd() -> io::Result<OwnedFd> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
    // SAFETY: userfaultfd(2) takes one integer argument and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    if fd >= 0 {
        // SAFETY: the syscall just created this fd, and nothing else owns it.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(context(err, "userfaultfd(2)"));
    }
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/userfaultfd")
        .map_err(|e| context(e, "userfaultfd(2) got EPERM, and /dev/userfaultfd"))?;
    // SAFETY: USERFAULTFD_IOC_NEW takes the flags of userfaultfd(2) as a plain integer argument
    // and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(dev.as_raw_fd(), USERFAULTFD_IOC_NEW as libc::Ioctl, flags) };
    if fd < 0 {
        return Err(context(
            io::Error::last_os_error(),
            "userfaultfd(2) got EPERM, and USERFAULTFD_IOC_NEW",
        ));
    }
    // SAFETY: the ioctl just created this fd, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Tracks the writes to a range from the moment it is created, using userfaultfd async write
/// protection (see the module documentation). Dropping it removes every trace of the protection.
#[derive(Debug)]
pub(crate) struct WriteTracker {
    uffd: OwnedFd,
    pagemap: File,
    /// Start of the tracked range.
    base: usize,
    /// Length of the tracked, registered range.
    len: usize,
}

impl WriteTracker {
    /// Registers `[ptr, ptr + len)` and write-protects all of it. Fails if userfaultfd, or its
    /// `WP_ASYNC` mode, is unavailable (Linux before 6.7, a seccomp filter, `CONFIG_USERFAULTFD`
    /// off), or if another userfaultfd already has part of the range registered.
    ///
    /// # Safety
    ///
    /// `ptr` must be [`HOST_PAGE`]-aligned and `len` a multiple of it (both are checked). The
    /// range must be mapped memory of this process that stays mapped, without being replaced, for
    /// as long as the tracker lives. While it lives, the range's page-table entries carry
    /// write-protect bits that other users of the same pages (wasmtime's slot reset) must not see.
    /// So it must be dropped before the memory is unmapped, remapped or reset.
    pub(crate) unsafe fn start(ptr: *mut u8, len: usize) -> io::Result<Self> {
        check_range(ptr as usize, len)?;
        if !host_page_size_matches() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("host page size is not {HOST_PAGE}"),
            ));
        }
        let uffd = open_userfaultfd()?;
        let mut api = UffdioApi {
            api: UFFD_API,
            features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes a `struct uffdio_api`.
        unsafe { ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api) }.map_err(|e| {
            context(
                e,
                "userfaultfd UFFDIO_API with WP_ASYNC|WP_UNPOPULATED (needs Linux 6.7+)",
            )
        })?;
        let pagemap = File::open("/proc/self/pagemap")?;
        let mut tracker = WriteTracker {
            uffd,
            pagemap,
            base: ptr as usize,
            len: 0,
        };
        // SAFETY: the caller's guarantees for `[ptr, ptr + len)` are exactly `grow`'s.
        unsafe { tracker.grow(len)? };
        Ok(tracker)
    }

    /// The range grew to `new_len`, because wasm `memory.grow` made more of the same reservation
    /// accessible. This registers and write-protects the new part. Writes made to the new part
    /// *before* this call are not reported later, so the caller must first find them with
    /// [`written_pages`].
    ///
    /// # Safety
    ///
    /// The same as for [`WriteTracker::start`], for the whole new range. `new_len` must be at
    /// least the current length (checked).
    pub(crate) unsafe fn grow(&mut self, new_len: usize) -> io::Result<()> {
        check_range(self.base, new_len)?;
        if new_len < self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot shrink a tracked range from {} to {new_len}",
                    self.len
                ),
            ));
        }
        if new_len == self.len {
            return Ok(());
        }
        let range = || UffdioRange {
            start: (self.base + self.len) as u64,
            len: (new_len - self.len) as u64,
        };
        let mut register = UffdioRegister {
            range: range(),
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes a `struct uffdio_register`. The caller
        // guarantees that the range is mapped memory of ours.
        unsafe { ioctl(self.uffd.as_raw_fd(), UFFDIO_REGISTER, &mut register) }
            .map_err(|e| context(e, "UFFDIO_REGISTER (write-protect mode)"))?;
        let mut protect = UffdioWriteprotect {
            range: range(),
            mode: UFFDIO_WRITEPROTECT_MODE_WP,
        };
        // From here on, `drop` undoes the registration, even if the rest fails.
        self.len = new_len;
        if register.ioctls & UFFDIO_WRITEPROTECT_BIT == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "UFFDIO_WRITEPROTECT is not available for this memory",
            ));
        }
        // SAFETY: UFFDIO_WRITEPROTECT reads a `struct uffdio_writeprotect`. The range was just
        // registered with this userfaultfd.
        unsafe { ioctl(self.uffd.as_raw_fd(), UFFDIO_WRITEPROTECT, &mut protect) }
            .map_err(|e| context(e, "UFFDIO_WRITEPROTECT"))?;
        Ok(())
    }

    /// Length of the tracked range.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Reports every page written since [`WriteTracker::start`] (or [`WriteTracker::grow`], for
    /// the part it added) or since the previous call, and write-protects the reported pages again,
    /// atomically per page. `f` receives byte offsets from the start of the range: page-aligned,
    /// ascending, adjacent pages merged. Read the reported pages only after this returns.
    ///
    /// Fails with `EPERM` if part of the range is no longer registered, for example because a new
    /// mapping replaced it. Pages reported before the failure are already protected again, so the
    /// caller must then consider the whole range written.
    pub(crate) fn take_written(&mut self, f: impl FnMut(Range<usize>)) -> io::Result<()> {
        scan(&self.pagemap, self.base, self.len, TAKE_WRITTEN, f)
    }
}

impl Drop for WriteTracker {
    /// Unprotects the whole range (write-protect bits and pte markers), unregisters it, then
    /// closes the fd. Afterwards every present page reads as WRITTEN again, which wasmtime's slot
    /// reset relies on. Errors are ignored: they only happen if part of the range was unmapped or
    /// remapped, in which case `UFFDIO_WRITEPROTECT` stops at the first VMA that is no longer
    /// registered, and `UFFDIO_UNREGISTER` still clears the protection of every VMA that is.
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        let range = || UffdioRange {
            start: self.base as u64,
            len: self.len as u64,
        };
        let mut unprotect = UffdioWriteprotect {
            range: range(),
            mode: 0,
        };
        // SAFETY: UFFDIO_WRITEPROTECT reads a `struct uffdio_writeprotect`. Mode 0 only removes
        // protection.
        let _ = unsafe { ioctl(self.uffd.as_raw_fd(), UFFDIO_WRITEPROTECT, &mut unprotect) };
        let mut unregister = range();
        // SAFETY: UFFDIO_UNREGISTER reads a `struct uffdio_range`. On 6.7+ kernels it also clears
        // any protection left in the range.
        let _ = unsafe { ioctl(self.uffd.as_raw_fd(), UFFDIO_UNREGISTER, &mut unregister) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;
    use std::time::{Duration, Instant};

    const MIB: usize = 1 << 20;
    const PAGE_IS_HUGE: u64 = 1 << 6;

    /// A private mapping, unmapped on drop. Page indices are in [`HOST_PAGE`] units.
    struct Map {
        ptr: *mut u8,
        len: usize,
    }

    impl Map {
        /// Anonymous memory with `prot`, with transparent huge pages off, so that results are
        /// page-exact.
        fn anon(len: usize, prot: libc::c_int) -> Map {
            // SAFETY: a fresh private anonymous mapping at an address the kernel picks.
            let ptr = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(ptr, libc::MAP_FAILED, "{}", io::Error::last_os_error());
            let map = Map {
                ptr: ptr.cast(),
                len,
            };
            map.madvise(0..len / HOST_PAGE, libc::MADV_NOHUGEPAGE);
            map
        }

        fn rw(len: usize) -> Map {
            Map::anon(len, libc::PROT_READ | libc::PROT_WRITE)
        }

        /// Maps `fd` (from offset 0) `MAP_PRIVATE` over `pages`, as wasmtime maps a memory image.
        fn map_file_over(&self, pages: Range<usize>, fd: RawFd) {
            // SAFETY: replaces pages of our own mapping with a private file mapping.
            let ptr = unsafe {
                libc::mmap(
                    self.page(pages.start).cast(),
                    pages.len() * HOST_PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    fd,
                    0,
                )
            };
            assert_eq!(ptr, self.page(pages.start).cast());
        }

        fn mprotect(&self, pages: Range<usize>, prot: libc::c_int) {
            // SAFETY: changes the protection of pages of our own mapping.
            let rc = unsafe {
                libc::mprotect(self.page(pages.start).cast(), pages.len() * HOST_PAGE, prot)
            };
            assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        }

        fn madvise(&self, pages: Range<usize>, advice: libc::c_int) {
            // SAFETY: only advice on pages of our own mapping.
            let rc = unsafe {
                libc::madvise(
                    self.page(pages.start).cast(),
                    pages.len() * HOST_PAGE,
                    advice,
                )
            };
            assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        }

        fn page(&self, page: usize) -> *mut u8 {
            assert!(page * HOST_PAGE < self.len);
            self.ptr.wrapping_add(page * HOST_PAGE)
        }

        fn write(&self, page: usize) {
            // SAFETY: the page is inside our read-write mapping.
            unsafe { ptr::write_volatile(self.page(page).add(17), 0x5a) }
        }

        fn read(&self, page: usize) -> u8 {
            // SAFETY: the page is inside our readable mapping.
            unsafe { ptr::read_volatile(self.page(page).add(17)) }
        }

        fn written(&self) -> Vec<usize> {
            written_in(self.ptr, self.len)
        }

        fn track(&self, len: usize) -> WriteTracker {
            // SAFETY: the range is our mapping, and every test drops the tracker before the map.
            unsafe { WriteTracker::start(self.ptr, len) }
                .unwrap_or_else(|e| panic!("userfaultfd WP_ASYNC tracking unavailable: {e}"))
        }
    }

    impl Drop for Map {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly what `anon` mapped.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }

    /// Collects reported ranges as page indices, checking the promised shape: page-aligned,
    /// non-empty, ascending, adjacent ranges merged.
    fn pages_of(collect: impl FnOnce(&mut dyn FnMut(Range<usize>))) -> Vec<usize> {
        let mut pages = Vec::new();
        let mut last_end = None;
        collect(&mut |r: Range<usize>| {
            assert!(r.start.is_multiple_of(HOST_PAGE) && r.end.is_multiple_of(HOST_PAGE));
            assert!(r.start < r.end, "empty range {r:?}");
            if let Some(last_end) = last_end {
                assert!(
                    r.start > last_end,
                    "{r:?} not ascending/merged after {last_end}"
                );
            }
            last_end = Some(r.end);
            pages.extend(r.start / HOST_PAGE..r.end / HOST_PAGE);
        });
        pages
    }

    fn written_in(ptr: *mut u8, len: usize) -> Vec<usize> {
        pages_of(|f| {
            // SAFETY: callers pass ranges of their own mappings.
            let supported = unsafe { written_pages(ptr, len, f) }.unwrap();
            assert!(supported, "PAGEMAP_SCAN unsupported (needs Linux 6.7+)");
        })
    }

    fn take(tracker: &mut WriteTracker) -> Vec<usize> {
        pages_of(|f| tracker.take_written(f).unwrap())
    }

    /// A plain scan with `query` over the map, as page indices.
    fn raw_scan(map: &Map, query: Query) -> Vec<usize> {
        let pagemap = File::open("/proc/self/pagemap").unwrap();
        pages_of(|f| scan(&pagemap, map.ptr as usize, map.len, query, f).unwrap())
    }

    const PLAIN: Query = Query {
        flags: 0,
        category_inverted: 0,
        category_mask: 0,
        category_anyof_mask: 0,
        return_mask: 0,
    };

    /// Pages that are present or swapped (or hold a pte marker, which reads as swapped) but are
    /// not WRITTEN: traces of write protection. wasmtime's reset would skip these.
    fn protected_leftovers(map: &Map) -> Vec<usize> {
        raw_scan(
            map,
            Query {
                category_inverted: PAGE_IS_WRITTEN,
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                ..PLAIN
            },
        )
    }

    /// A memfd of `pages` pages filled with 0xab, like a wasm memory image.
    fn image(pages: usize) -> OwnedFd {
        // SAFETY: creates a new fd, owned below.
        let fd = unsafe { libc::memfd_create(c"image".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: memfd_create just returned this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let content = vec![0xab_u8; pages * HOST_PAGE];
        // SAFETY: writes from a live buffer of that length.
        let n = unsafe { libc::write(fd.as_raw_fd(), content.as_ptr().cast(), content.len()) };
        assert_eq!(n, content.len() as isize);
        fd
    }

    #[test]
    fn host_page_is_sysconf_page_size() {
        assert!(host_page_size_matches());
    }

    #[test]
    fn written_pages_anonymous() {
        let map = Map::rw(16 * MIB);
        assert_eq!(map.written(), Vec::<usize>::new());
        for page in [10, 11, 12, 500, 4095] {
            map.write(page);
        }
        for page in [0, 13, 600, 4094] {
            assert_eq!(map.read(page), 0);
        }
        assert_eq!(map.written(), [10, 11, 12, 500, 4095]);
        // Sub-ranges report offsets relative to their own start.
        assert_eq!(written_in(map.page(8), 8 * HOST_PAGE), [2, 3, 4]);
    }

    #[test]
    fn written_pages_rejects_unaligned() {
        let map = Map::rw(MIB);
        // SAFETY: a range of our own mapping.
        let err = unsafe { written_pages(map.ptr.wrapping_add(1), HOST_PAGE, |_| {}) }.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn written_pages_copy_on_write_image() {
        let fd = image(64);
        let map = Map::rw(64 * HOST_PAGE);
        map.map_file_over(0..64, fd.as_raw_fd());
        for page in 0..64 {
            assert_eq!(map.read(page), 0xab);
        }
        assert_eq!(map.written(), Vec::<usize>::new(), "reads are not writes");
        map.write(5);
        map.write(9);
        map.write(63);
        assert_eq!(map.written(), [5, 9, 63]);
        assert_eq!(map.read(6), 0xab);
    }

    #[test]
    fn tracker_reports_exactly_the_written_pages() {
        let map = Map::rw(16 * MIB);
        let mut tracker = map.track(map.len);
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
        map.write(3);
        map.write(100);
        assert_eq!(take(&mut tracker), [3, 100]);
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
        map.write(3);
        assert_eq!(take(&mut tracker), [3]);
        map.write(4);
        map.write(5);
        map.write(7);
        assert_eq!(take(&mut tracker), [4, 5, 7]);
        assert_eq!(map.read(3), 0x5a, "contents survive re-protection");
    }

    #[test]
    fn tracker_sees_unpopulated_and_previously_populated_pages() {
        let map = Map::rw(16 * MIB);
        // Before tracking: page 0 written, page 1 read (zero page). The rest has no page tables.
        map.write(0);
        map.read(1);
        let mut tracker = map.track(map.len);
        // Reads, of never-touched and of populated pages, are not writes (WP_UNPOPULATED).
        map.read(0);
        map.read(2);
        map.read(3000);
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
        // First writes to never-touched pages, also in a 2 MiB region that had no page table.
        map.write(2);
        map.write(3000);
        map.write(3001);
        // Writes to pages populated before tracking: written and zero page.
        map.write(0);
        map.write(1);
        assert_eq!(take(&mut tracker), [0, 1, 2, 3000, 3001]);
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
    }

    #[test]
    fn tracker_sees_other_threads_and_kernel_writes() {
        let map = Map::rw(4 * MIB);
        let mut tracker = map.track(map.len);
        let addr = map.ptr as usize;
        std::thread::scope(|s| {
            s.spawn(|| {
                for page in [5, 6, 7, 300] {
                    let p = (addr + page * HOST_PAGE) as *mut u8;
                    // SAFETY: inside the live read-write mapping; no other access meanwhile.
                    unsafe { ptr::write_volatile(p, 1) };
                }
            });
        });
        assert_eq!(take(&mut tracker), [5, 6, 7, 300]);

        // The kernel writing into tracked memory (copy_to_user), as read(2) does for WASI.
        map.read(9);
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        for page in [8, 9] {
            // SAFETY: write from and read into live buffers of 8 bytes.
            unsafe {
                assert_eq!(libc::write(fds[1], b"abcdefgh".as_ptr().cast(), 8), 8);
                assert_eq!(libc::read(fds[0], map.page(page).cast(), 8), 8);
            }
        }
        // SAFETY: the pipe fds are ours.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        assert_eq!(take(&mut tracker), [8, 9]);
        assert_eq!(map.read(8), 0);
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { *map.page(8) }, b'a');
    }

    #[test]
    fn tracker_grow() {
        let map = Map::rw(32 * MIB);
        let half = 16 * MIB / HOST_PAGE;
        let mut tracker = map.track(16 * MIB);
        map.write(10);
        map.write(half + 904);
        assert_eq!(take(&mut tracker), [10], "only the tracked half is scanned");
        // The caller catches writes in the new part with `written_pages`, then grows.
        assert_eq!(written_in(map.page(half), 16 * MIB), [904]);
        // SAFETY: still our mapping, which outlives the tracker.
        unsafe { tracker.grow(32 * MIB) }.unwrap();
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
        map.write(20);
        map.write(half + 1000);
        map.write(2 * half - 1);
        assert_eq!(take(&mut tracker), [20, half + 1000, 2 * half - 1]);
        drop(tracker);
        assert_eq!(protected_leftovers(&map), Vec::<usize>::new());
    }

    #[test]
    fn tracker_from_empty() {
        let map = Map::rw(MIB);
        let mut tracker = map.track(0);
        map.write(1);
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
        assert_eq!(map.written(), [1]);
        // SAFETY: still our mapping, which outlives the tracker.
        unsafe { tracker.grow(MIB) }.unwrap();
        map.write(2);
        assert_eq!(take(&mut tracker), [2]);
    }

    /// Mimics a wasmtime pool slot: a `PROT_NONE` reservation whose accessible head is the
    /// copy-on-write image followed by anonymous memory, grown by `mprotect`.
    #[test]
    fn tracker_on_pool_like_slot() {
        let fd = image(1024);
        let slot = Map::anon(32 * MIB, libc::PROT_NONE);
        slot.mprotect(0..4096, libc::PROT_READ | libc::PROT_WRITE);
        slot.map_file_over(0..1024, fd.as_raw_fd());
        slot.read(1);
        slot.write(2);
        assert_eq!(slot.written(), [2]);
        let mut tracker = slot.track(16 * MIB);
        slot.read(1);
        slot.read(3);
        assert_eq!(slot.read(1000), 0xab);
        slot.write(1000);
        slot.write(1);
        slot.write(2000);
        assert_eq!(take(&mut tracker), [1, 1000, 2000]);
        assert_eq!(slot.read(1000), 0x5a);
        assert_eq!(slot.read(999), 0xab);

        // memory.grow: more of the reservation becomes accessible.
        slot.mprotect(4096..6144, libc::PROT_READ | libc::PROT_WRITE);
        slot.write(4500);
        assert_eq!(written_in(slot.page(4096), 8 * MIB), [4500 - 4096]);
        // SAFETY: still our mapping, which outlives the tracker.
        unsafe { tracker.grow(24 * MIB) }.unwrap();
        slot.write(4600);
        slot.write(1000);
        assert_eq!(take(&mut tracker), [1000, 4600]);
        drop(tracker);
        assert_eq!(protected_leftovers(&slot), Vec::<usize>::new());
        assert_eq!(slot.written(), [1, 2, 1000, 2000, 4500, 4600]);
    }

    #[test]
    fn drop_leaves_every_present_page_written() {
        let map = Map::rw(16 * MIB);
        for page in 0..8 {
            map.write(page);
        }
        for page in 100..108 {
            map.read(page);
        }
        let mut tracker = map.track(map.len);
        map.write(3);
        map.write(200);
        map.read(300);
        map.read(2);
        assert_eq!(take(&mut tracker), [3, 200]);
        map.write(201);
        map.read(400);
        // Now: pages 0..8, 100..108, 200, 300, 400 protected, 201 not, the rest markers.
        assert!(
            !protected_leftovers(&map).is_empty(),
            "protection is visible while tracking"
        );
        drop(tracker);

        assert_eq!(protected_leftovers(&map), Vec::<usize>::new());
        let present = raw_scan(
            &map,
            Query {
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                ..PLAIN
            },
        );
        // (Only present pages are asked for: this kernel also calls empty entries in an existing
        // page table WRITTEN, which neither wasmtime nor `written_pages` look at.)
        let present_written = raw_scan(
            &map,
            Query {
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                ..PLAIN
            },
        );
        let expected_present: Vec<usize> =
            (0..8).chain(100..108).chain([200, 201, 300, 400]).collect();
        assert_eq!(present, expected_present);
        assert_eq!(present_written, present, "every present page reads WRITTEN");
        // wasmtime's reset criterion (and ours) finds every page written at any time.
        assert_eq!(map.written(), [0, 1, 2, 3, 4, 5, 6, 7, 200, 201]);
    }

    #[test]
    fn drop_without_take_or_writes() {
        let map = Map::rw(4 * MIB);
        map.write(1);
        map.read(2);
        drop(map.track(map.len));
        assert_eq!(protected_leftovers(&map), Vec::<usize>::new());
        assert_eq!(map.written(), [1]);
    }

    #[test]
    fn take_written_loops_past_the_region_capacity() {
        let map = Map::rw(16 * MIB);
        let mut tracker = map.track(map.len);
        let pages: Vec<usize> = (0..2 * SCAN_REGIONS + 100).map(|i| 2 * i + 1).collect();
        for &page in &pages {
            map.write(page);
        }
        assert_eq!(take(&mut tracker), pages);
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
        assert_eq!(map.written(), Vec::<usize>::new(), "all re-protected");
        drop(tracker);
        assert_eq!(map.written(), pages);
    }

    #[test]
    fn take_written_fails_loudly_when_the_range_is_remapped() {
        let map = Map::rw(MIB);
        let mut tracker = map.track(map.len);
        map.write(1);
        // SAFETY: replaces pages of our own mapping with fresh anonymous memory.
        let ptr = unsafe {
            libc::mmap(
                map.page(4).cast(),
                4 * HOST_PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        assert_eq!(ptr, map.page(4).cast());
        let err = tracker.take_written(|_| {}).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        drop(tracker);
        assert_eq!(protected_leftovers(&map), Vec::<usize>::new());
        assert_eq!(map.written(), [1]);
    }

    /// Transparent huge pages populated before tracking: a write is reported, at worst as the
    /// whole 2 MiB page around it.
    #[test]
    fn tracker_with_transparent_huge_pages() {
        let huge = 2 * MIB / HOST_PAGE;
        let map = Map::rw(10 * MIB);
        // The 2 MiB-aligned 8 MiB inside, with huge pages allowed.
        let first =
            (map.ptr as usize).next_multiple_of(2 * MIB) / HOST_PAGE - map.ptr as usize / HOST_PAGE;
        map.madvise(first..first + 4 * huge, libc::MADV_HUGEPAGE);
        for page in first..first + 4 * huge {
            map.write(page);
        }
        let in_thp = raw_scan(
            &map,
            Query {
                category_mask: PAGE_IS_HUGE,
                ..PLAIN
            },
        );
        eprintln!(
            "{} of {} pages are in transparent huge pages",
            in_thp.len(),
            4 * huge
        );
        let mut tracker = map.track(map.len);
        map.write(first + huge + 7);
        let reported = take(&mut tracker);
        assert!(reported.contains(&(first + huge + 7)), "{reported:?}");
        assert!(
            reported
                .iter()
                .all(|&p| (first + huge..first + 2 * huge).contains(&p)),
            "only the huge page written to: {reported:?}"
        );
        eprintln!(
            "a 1-byte write into a THP region reported {} pages",
            reported.len()
        );
        assert_eq!(take(&mut tracker), Vec::<usize>::new());
        drop(tracker);
        assert_eq!(protected_leftovers(&map), Vec::<usize>::new());
    }

    /// Number of pages `written_pages` reports for a range of `map`.
    fn count_written(map: &Map, len: usize) -> usize {
        let mut n = 0;
        // SAFETY: a range of our own mapping.
        let supported = unsafe { written_pages(map.ptr, len, |r| n += r.len() / HOST_PAGE) };
        assert!(supported.unwrap(), "PAGEMAP_SCAN unsupported");
        n
    }

    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort();
        samples[samples.len() / 2]
    }

    /// `cargo test --release -- --ignored --nocapture bench`
    #[test]
    #[ignore]
    fn bench_256_mib_one_percent() {
        const RUNS: usize = 21;
        let len = 256 * MIB;
        let chunk = 64 * 1024 / HOST_PAGE;
        let map = Map::rw(len);
        let pages = len / HOST_PAGE;
        for page in 0..pages {
            map.write(page);
        }
        // 1% of the pages, in 64 KiB-aligned chunks, shifted each run.
        let dirty = |run: usize| {
            let chunks = pages / chunk;
            (0..chunks.div_ceil(100)).map(move |i| (i * 100 + run) % chunks * chunk)
        };
        let expected = dirty(0).count() * chunk;

        let t = Instant::now();
        let mut tracker = map.track(len);
        let start_time = t.elapsed();
        let (mut take_times, mut scan_times, mut fault_times) = (vec![], vec![], vec![]);
        for run in 0..RUNS {
            let t = Instant::now();
            for first in dirty(run) {
                for page in first..first + chunk {
                    map.write(page);
                }
            }
            fault_times.push(t.elapsed());
            let t = Instant::now();
            let n = count_written(&map, len);
            scan_times.push(t.elapsed());
            assert_eq!(n, expected);
            let mut n = 0;
            let t = Instant::now();
            tracker.take_written(|r| n += r.len() / HOST_PAGE).unwrap();
            take_times.push(t.elapsed());
            assert_eq!(n, expected);
        }
        let t = Instant::now();
        drop(tracker);
        let drop_time = t.elapsed();
        let t = Instant::now();
        for first in dirty(0) {
            for page in first..first + chunk {
                map.write(page);
            }
        }
        let unprotected_write_time = t.elapsed();

        // Without a tracker: 256 MiB read everywhere (zero page, or a CoW image), 1% written.
        let fresh = Map::rw(len);
        let fd = image(pages);
        let cow = Map::rw(len);
        cow.map_file_over(0..pages, fd.as_raw_fd());
        for page in 0..pages {
            fresh.read(page);
            cow.read(page);
        }
        for first in dirty(0) {
            for page in first..first + chunk {
                fresh.write(page);
                cow.write(page);
            }
        }
        let (mut fresh_times, mut cow_times) = (vec![], vec![]);
        for _ in 0..RUNS {
            for (m, times) in [(&fresh, &mut fresh_times), (&cow, &mut cow_times)] {
                let t = Instant::now();
                let n = count_written(m, len);
                times.push(t.elapsed());
                assert_eq!(n, expected);
            }
        }
        // For scale: one pass over all 256 MiB (what hashing everything at least costs).
        let mut read_times = vec![];
        for _ in 0..5 {
            let t = Instant::now();
            // SAFETY: the whole mapping is readable and initialized; u64-aligned.
            let words = unsafe { std::slice::from_raw_parts(map.ptr.cast::<u64>(), len / 8) };
            let sum = words.iter().fold(0u64, |a, &w| a.wrapping_add(w));
            read_times.push(t.elapsed());
            std::hint::black_box(sum);
        }
        eprintln!("256 MiB, {expected} dirty pages (1%) in 64 KiB chunks, median of {RUNS}:");
        eprintln!(
            "  take_written (scan + re-protect): {:?}",
            median(take_times)
        );
        eprintln!(
            "  written_pages (tracked range):    {:?}",
            median(scan_times)
        );
        eprintln!(
            "  written_pages (zero-page reads):  {:?}",
            median(fresh_times)
        );
        eprintln!(
            "  written_pages (CoW image reads):  {:?}",
            median(cow_times)
        );
        eprintln!(
            "  dirtying 1% under WP (faults):    {:?}",
            median(fault_times)
        );
        eprintln!("  dirtying 1% unprotected:          {unprotected_write_time:?}");
        eprintln!("  WriteTracker::start (256 MiB):    {start_time:?}");
        eprintln!("  WriteTracker drop (256 MiB):      {drop_time:?}");
        eprintln!(
            "  reading all 256 MiB once:         {:?}",
            median(read_times)
        );
    }
}
