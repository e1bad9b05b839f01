//! The native peer of `examples/gc-content` in the benchmarks: the same
//! per-record code (`gc_content::write_line`), compiled natively, over a
//! FASTA file split between N threads at record boundaries, output in
//! input order. What a careful user would write without wrun.
//!
//! `native-gc [-j N] FILE|-` (`-`: standard input, as GNU parallel's
//! `--pipepart` feeds it).

use std::io::{self, Read, Write};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (threads, path) = match args.as_slice() {
        [flag, n, path] if flag == "-j" => (n.parse().expect("-j N"), path.as_str()),
        [path] => (1, path.as_str()),
        _ => panic!("usage: native-gc [-j N] FILE|-"),
    };
    let mut stdin = Vec::new();
    let mapped;
    let input: &[u8] = match path {
        "-" => {
            io::stdin().lock().read_to_end(&mut stdin)?;
            &stdin
        }
        path => {
            mapped = Mapped::open(path)?;
            mapped.bytes()
        }
    };
    let starts = record_starts(input);
    // Equal shares of bytes, cut at record starts.
    let mut cuts = vec![0];
    for t in 1..threads {
        let target = input.len() * t / threads;
        let at = starts.partition_point(|&s| s < target);
        cuts.push(at.min(starts.len()));
    }
    cuts.push(starts.len());
    let outputs: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cuts
            .windows(2)
            .map(|w| {
                let starts = &starts;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for i in w[0]..w[1] {
                        let end = starts.get(i + 1).copied().unwrap_or(input.len());
                        gc_content::write_line(&input[starts[i]..end], &mut out)
                            .expect("a FASTA record");
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut stdout = io::stdout().lock();
    for output in outputs {
        stdout.write_all(&output)?;
    }
    stdout.flush()
}

/// A file mapped read-only: no copy, pages read as the threads reach them.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn open(path: &str) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len() as usize;
        if len == 0 {
            return Ok(Mapped {
                ptr: std::ptr::null_mut(),
                len,
            });
        }
        // SAFETY: a fresh read-only private mapping of a file we opened; the
        // pointer is checked below and unmapped only in `drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly the mapping made in `open`.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// Offsets of the `>` that start lines.
fn record_starts(input: &[u8]) -> Vec<usize> {
    let mut starts: Vec<usize> = memchr::memmem::find_iter(input, b"\n>")
        .map(|i| i + 1)
        .collect();
    if input.first() == Some(&b'>') {
        starts.insert(0, 0);
    }
    starts
}
