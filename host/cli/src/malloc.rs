//! Tuning glibc's allocator for chunk-sized buffers.
//!
//! A job reads its input in chunks of up to 8 MiB (`Chunking::auto`),
//! each a fresh buffer. glibc serves allocations over its mmap threshold
//! (128 KiB, growing to at most 32 MiB) with a fresh `mmap` and returns
//! them with `munmap`, and trims the heap's top above 128 KiB, so every
//! chunk faults in its pages again: half of a no-op job's page faults
//! (measured with `perf stat` on a 256 MB FASTA). Raising both thresholds
//! keeps freed chunk buffers in the heap for the next chunk; peak memory
//! does not grow, since at most a few chunks are alive at once.
//! The parameters are glibc's `mallopt(3)`.

/// Allocations below this many bytes come from the heap, not `mmap`.
const MMAP_THRESHOLD: libc::c_int = 64 << 20;

/// Free memory at the top of the heap kept rather than returned to the
/// kernel, in bytes.
const TRIM_THRESHOLD: libc::c_int = 256 << 20;

/// Set the thresholds; call first thing in `main`, before threads start.
pub(crate) fn tune() {
    // SAFETY: `mallopt` only sets allocator parameters; it is called before
    // any other thread exists. A refused value leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
