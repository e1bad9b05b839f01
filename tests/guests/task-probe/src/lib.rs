//! Test guest: an SDK task whose behaviour is its first argument.
//!
//! Each mode exercises one outcome the host must tell apart; see
//! `tests/e2e`. The harmful modes only do harm when compiled to wasm, and
//! only to records that do not start with `ok:`.

use std::io::Write;

use wrun_sdk::pairs::mate_name;
use wrun_sdk::spawn::{Child, ChildError, spawn};
use wrun_sdk::{Args, Error, Output, Result, Step, Task};

/// What the probe does, from `args[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Echo records, but fail on one that contains `args[1]`.
    FailIf(String),
    /// Emit every record unchanged.
    Echo,
    /// Emit `records=N bytes=M` at finish.
    Count,
    /// Emit `step K` lines from `step()`, `args[1]` times.
    Steps,
    /// Panic (an `unreachable` trap carrying the message).
    Panic,
    /// Load from far outside linear memory.
    OutOfBounds,
    /// Spin forever (fuel or timeout must stop it).
    Spin,
    /// Allocate until the memory limit stops it.
    Hog,
    /// Recurse until the stack overflows.
    Recurse,
    /// Return an error.
    Fail,
    /// Emit far more output than any sane limit.
    Flood,
    /// Write to the task log, then echo.
    Log,
    /// Emit each record followed by a hash of it iterated `args[1]` times:
    /// deterministic work that takes a while.
    Work(u64),
    /// Emit, per record, the size and a checksum of the data file
    /// `args[1]`, read through `wrun_sdk::data::open` in that call.
    Data(String),
    /// Spawn a child per record (an `ok:` one too), on the record, with
    /// the arguments after `spawn` (a probe mode of its own); after the
    /// wait, emit per child `child K: ` and its output, or `child K
    /// failed: ` and its error.
    Spawn(Vec<String>),
    /// Return `Wait` from `step` without spawning (an ABI violation).
    WaitAlone,
    /// Paired records: pair them up (`wrun_sdk::pairs::Mates`), fail on a
    /// pair whose names differ or a chunk that ends with a mate missing,
    /// emit each pair's name and, at finish, `pairs=N`.
    Mates,
}

/// The probe task.
#[derive(Debug)]
pub struct Probe {
    mode: Mode,
    records: u64,
    bytes: u64,
    steps_left: u64,
    mates: wrun_sdk::pairs::Mates,
    pairs: u64,
    /// Records to spawn children on, then the children (mode `spawn`).
    to_spawn: Vec<Vec<u8>>,
    children: Vec<Child>,
}

impl Task for Probe {
    fn init(args: &Args) -> Result<Self> {
        let mode = match args.get(0).unwrap_or("echo") {
            "echo" => Mode::Echo,
            "count" => Mode::Count,
            "steps" => Mode::Steps,
            "panic" => Mode::Panic,
            "oob" => Mode::OutOfBounds,
            "spin" => Mode::Spin,
            "hog" => Mode::Hog,
            "recurse" => Mode::Recurse,
            "fail" => Mode::Fail,
            "flood" => Mode::Flood,
            "log" => Mode::Log,
            "fail-if" => Mode::FailIf(args.get(1).unwrap_or("X").to_owned()),
            "data" => Mode::Data(args.get(1).unwrap_or("ref").to_owned()),
            "mates" => Mode::Mates,
            "spawn" => Mode::Spawn(args.iter().skip(1).map(str::to_owned).collect()),
            "wait-alone" => Mode::WaitAlone,
            "work" => Mode::Work(
                args.get(1)
                    .unwrap_or("1")
                    .parse()
                    .map_err(|_| Error::bad_args("work wants a count"))?,
            ),
            other => return Err(Error::bad_args(format!("unknown probe mode {other:?}"))),
        };
        let steps_left = match (&mode, args.get(1)) {
            (Mode::Steps, Some(n)) => n
                .parse()
                .map_err(|_| Error::bad_args("steps wants a count"))?,
            _ => 0,
        };
        Ok(Probe {
            mode,
            records: 0,
            bytes: 0,
            steps_left,
            mates: Default::default(),
            pairs: 0,
            to_spawn: Vec::new(),
            children: Vec::new(),
        })
    }

    fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()> {
        self.records += 1;
        self.bytes += record.len() as u64;
        // A spawning probe hands every record to a child (which may echo
        // an `ok:` one).
        if let Mode::Spawn(_) = self.mode {
            self.to_spawn.push(record.to_vec());
            return Ok(());
        }
        // Records marked `ok:` are echoed whatever the mode, so that a test
        // can fail one chunk of a job and not the others.
        if record.starts_with(b"ok:") {
            out.write(record);
            return Ok(());
        }
        match &self.mode {
            Mode::Echo => out.write(record),
            Mode::FailIf(marker) => {
                if record.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                    return Err(Error::failed(format!("record contains {marker:?}")));
                }
                out.write(record);
            }
            Mode::Log => {
                wrun_sdk::log("probe saw a record");
                out.write(record);
            }
            &Mode::Work(rounds) => {
                let mut hash = 0xcbf2_9ce4_8422_2325u64;
                for _ in 0..rounds {
                    for &byte in record {
                        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
                    }
                }
                out.write(record);
                writeln!(out, "{hash:016x}")?;
            }
            Mode::Panic => panic!("probe panicked on purpose"),
            Mode::OutOfBounds => out_of_bounds(),
            Mode::Spin => spin(),
            Mode::Hog => hog(),
            Mode::Recurse => {
                let depth = recurse(std::hint::black_box(1));
                writeln!(out, "{depth}")?;
            }
            Mode::Fail => return Err(Error::failed("probe failed on purpose")),
            Mode::Data(name) => {
                let mut file = wrun_sdk::data::open(name)?;
                let (mut size, mut sum) = (0u64, 0u64);
                let mut block = vec![0; 64 << 10];
                loop {
                    let n = std::io::Read::read(&mut file, &mut block)
                        .map_err(|e| Error::failed(format!("reading {name}: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    size += n as u64;
                    sum = block[..n].iter().fold(sum, |sum, &b| {
                        sum.wrapping_mul(31).wrapping_add(u64::from(b))
                    });
                }
                writeln!(out, "{name} {size} {sum:016x}")?;
            }
            Mode::Flood => {
                let block = [b'x'; 65536];
                loop {
                    out.write(&block);
                }
            }
            Mode::Mates => {
                if let Some(pair) = self.mates.push(record) {
                    let (r1, r2) = (mate_name(pair.r1), mate_name(pair.r2));
                    if r1 != r2 || r1.is_empty() {
                        return Err(Error::failed(format!(
                            "pair {} has mates {:?} and {:?}",
                            self.pairs + 1,
                            String::from_utf8_lossy(r1),
                            String::from_utf8_lossy(r2)
                        )));
                    }
                    self.pairs += 1;
                    out.write(r1);
                    out.write(b"\n");
                }
            }
            Mode::Count | Mode::Steps | Mode::WaitAlone | Mode::Spawn(_) => {}
        }
        Ok(())
    }

    fn step(&mut self, out: &mut Output) -> Result<Step> {
        if self.mode == Mode::WaitAlone {
            return Ok(Step::Wait);
        }
        if let Mode::Spawn(args) = &self.mode {
            if !self.to_spawn.is_empty() {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                for record in std::mem::take(&mut self.to_spawn) {
                    self.children.push(spawn(&record, &args)?);
                }
                return Ok(Step::Wait);
            }
            for (k, child) in std::mem::take(&mut self.children).iter().enumerate() {
                match child.result() {
                    Ok(output) => {
                        write!(out, "child {k}: ")?;
                        out.write(&output);
                    }
                    Err(ChildError::Failed(message)) => {
                        writeln!(out, "child {k} failed: {message}")?
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            return Ok(Step::Done);
        }
        if self.steps_left == 0 {
            return Ok(Step::Done);
        }
        writeln!(out, "step {}", self.steps_left)?;
        self.steps_left -= 1;
        Ok(Step::More)
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        if self.mode == Mode::Count {
            writeln!(out, "records={} bytes={}", self.records, self.bytes)?;
        }
        if self.mode == Mode::Mates {
            self.mates.finish()?;
            writeln!(out, "pairs={}", self.pairs)?;
        }
        Ok(())
    }
}

fn out_of_bounds() {
    #[cfg(target_arch = "wasm32")]
    {
        let far = std::hint::black_box(0xFFFF_FFF0usize) as *const u64;
        // SAFETY: deliberately not safe: the load traps in the sandbox,
        // which is the point of this probe. Never compiled natively.
        let value = unsafe { far.read_volatile() };
        std::hint::black_box(value);
    }
}

fn spin() {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn hog() {
    let mut hoard = Vec::new();
    loop {
        let mut block = vec![1u8; 1 << 20];
        block[0] = std::hint::black_box(2);
        hoard.push(block);
    }
}

/// Recursion that lives on the wasm stack only (no shadow-stack frames, no
/// tail call to turn into a loop), so it overflows the native stack limit.
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(depth + 1)) + 1
}

wrun_sdk::export_task!(Probe);
