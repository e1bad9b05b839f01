//! Tasks that spawn tasks.
//!
//! Inside [`Task::step`](crate::Task::step), a task may [`spawn`] child
//! tasks (its own module, each on its own input with its own arguments)
//! and return [`Step::Wait`](crate::Step::Wait). The host then runs the
//! children like any task of the job (on any worker or node; the parent
//! holds none while it waits) and calls `step` again once they are all
//! done. In that call, [`Child::result`] gives each child's output, or the
//! message of its failure: the parent decides what a failed child means.
//!
//! A child runs as a chunk of one record, its `input`: `init(args)`,
//! `record(input)`, its steps (it may spawn too, down to the job's
//! `--max-spawn-depth`), `finish`; what it writes to its [`Output`](crate::Output)
//! is its result, not the job's output.
//!
//! ```
//! use wrun_sdk::spawn::{spawn, Child};
//! use wrun_sdk::{Args, Output, Result, Step, Task};
//!
//! /// Sums 1..=n by halving the range down to single numbers.
//! #[derive(Default)]
//! struct Sum { range: (u64, u64), children: Vec<Child>, total: Option<u64> }
//!
//! impl Task for Sum {
//!     fn init(args: &Args) -> Result<Self> {
//!         let n = |i| args.get(i).and_then(|a: &str| a.parse().ok());
//!         Ok(Sum { range: (n(0).unwrap_or(1), n(1).unwrap_or(1)), ..Sum::default() })
//!     }
//!     fn record(&mut self, _: &[u8], _: &mut Output) -> Result<()> { Ok(()) }
//!     fn step(&mut self, _: &mut Output) -> Result<Step> {
//!         let (low, high) = self.range;
//!         if self.children.is_empty() && low < high {
//!             let mid = (low + high) / 2;
//!             for (a, b) in [(low, mid), (mid + 1, high)] {
//!                 self.children.push(spawn(b"", &[&a.to_string(), &b.to_string()])?);
//!             }
//!             return Ok(Step::Wait);
//!         }
//!         let mut total = if low == high { low } else { 0 };
//!         for child in &self.children {
//!             total += std::str::from_utf8(&child.result()?).unwrap().parse::<u64>().unwrap();
//!         }
//!         self.total = Some(total);
//!         Ok(Step::Done)
//!     }
//!     fn finish(&mut self, out: &mut Output) -> Result<()> {
//!         out.write(self.total.unwrap_or(0).to_string().as_bytes());
//!         Ok(())
//!     }
//! }
//!
//! // Natively, the harness runs the children inline.
//! let out = wrun_sdk::testing::run_task::<Sum>(&["1", "10"], &[b""]).unwrap();
//! assert_eq!(out, b"55");
//! ```

use std::fmt;

use wrun_abi::status;

use crate::Error;

/// A child task spawned since the last wait: its handle is its place in
/// spawn order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    handle: u32,
}

/// Why a child gave no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildError {
    /// The child failed (trapped, ran out of fuel or time, returned an
    /// error, hit a limit); the message says how, as `wrun status` would.
    Failed(String),
    /// Its result is not readable now: only in the `step` call after the
    /// wait that ran it, and before the next `spawn`.
    Unavailable,
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Failed(message) => write!(f, "a child task failed: {message}"),
            ChildError::Unavailable => f.write_str(
                "a child's result was read outside the step after its wait (or after the next \
                 spawn)",
            ),
        }
    }
}

impl std::error::Error for ChildError {}

/// Spawn a child of this task's own module on `input` (one record) with
/// `args`; it runs once `step` returns [`Step::Wait`](crate::Step::Wait).
///
/// # Errors
///
/// A bad-arguments [`Error`] when an argument holds a NUL byte (the ABI
/// separates arguments with NULs), or when the host refuses the spawn; a
/// failed one when called outside `step` natively (outside
/// [`testing`](crate::testing)). Past a spawn limit (`--max-spawn-depth`,
/// `--max-children`) the host stops the task instead, failing the job.
pub fn spawn(input: &[u8], args: &[&str]) -> crate::Result<Child> {
    let mut encoded = Vec::new();
    for arg in args {
        if arg.contains('\0') {
            return Err(Error::bad_args("a child's argument holds a NUL byte"));
        }
        encoded.extend_from_slice(arg.as_bytes());
        encoded.push(0);
    }
    let handle = raw_spawn(input, &encoded)?;
    Ok(Child { handle })
}

impl Child {
    /// The child's output, or why it has none.
    ///
    /// # Errors
    ///
    /// [`ChildError::Failed`] with the child's failure;
    /// [`ChildError::Unavailable`] outside the `step` after its wait.
    pub fn result(&self) -> Result<Vec<u8>, ChildError> {
        match raw_result(self.handle) {
            Some((status::OK, output)) => Ok(output),
            Some((_, message)) => Err(ChildError::Failed(
                String::from_utf8_lossy(&message).into_owned(),
            )),
            None => Err(ChildError::Unavailable),
        }
    }

    /// Its handle: its place among the children spawned since the last
    /// wait.
    pub fn handle(&self) -> u32 {
        self.handle
    }
}

#[cfg(target_arch = "wasm32")]
fn raw_spawn(input: &[u8], args: &[u8]) -> crate::Result<u32> {
    let handle = crate::host::spawn(wrun_abi::SELF_MODULE, input, args);
    u32::try_from(handle).map_err(|_| Error::bad_args("the host refused to spawn a child"))
}

#[cfg(target_arch = "wasm32")]
fn raw_result(handle: u32) -> Option<(i32, Vec<u8>)> {
    crate::host::child_result(handle).ok()
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_spawn(input: &[u8], args: &[u8]) -> crate::Result<u32> {
    native::spawn(input, args)
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_result(handle: u32) -> Option<(i32, Vec<u8>)> {
    native::result(handle)
}

/// The native side: [`testing`](crate::testing) runs each child inline
/// when it is spawned and hands its result over at the wait, as the host
/// would. (Compiled for wasm32 too, where the harness is, but unused.)
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) mod native {
    use std::cell::RefCell;
    use std::rc::Rc;

    use wrun_abi::status;

    use crate::{Args, Error};

    /// Runs a child: its input and arguments to its output or failure.
    pub(crate) type Runner = Rc<dyn Fn(&[u8], &Args) -> Result<Vec<u8>, String>>;

    /// One task the harness is running.
    struct Level {
        runner: Runner,
        /// Children since the last wait, already run.
        spawned: Vec<Result<Vec<u8>, String>>,
        /// The last wait's, readable in the step after it.
        results: Vec<Result<Vec<u8>, String>>,
    }

    thread_local! {
        static LEVELS: RefCell<Vec<Level>> = const { RefCell::new(Vec::new()) };
    }

    /// Run `f` as a task whose children `runner` runs.
    pub(crate) fn with_level<R>(runner: Runner, f: impl FnOnce() -> R) -> R {
        LEVELS.with_borrow_mut(|levels| {
            levels.push(Level {
                runner,
                spawned: Vec::new(),
                results: Vec::new(),
            })
        });
        let result = f();
        LEVELS.with_borrow_mut(Vec::pop);
        result
    }

    /// The current task returned `Wait`: its children's results become
    /// readable. False when it spawned none (the host's ABI violation).
    pub(crate) fn wait() -> bool {
        LEVELS.with_borrow_mut(|levels| match levels.last_mut() {
            Some(level) if !level.spawned.is_empty() => {
                level.results = std::mem::take(&mut level.spawned);
                true
            }
            _ => false,
        })
    }

    /// A step that did not wait returned: the results are gone.
    pub(crate) fn step_returned() {
        LEVELS.with_borrow_mut(|levels| {
            if let Some(level) = levels.last_mut() {
                level.results.clear();
            }
        });
    }

    /// Whether children were spawned and not waited for.
    pub(crate) fn pending() -> bool {
        LEVELS.with_borrow(|levels| levels.last().is_some_and(|l| !l.spawned.is_empty()))
    }

    pub(super) fn spawn(input: &[u8], args: &[u8]) -> crate::Result<u32> {
        let runner = LEVELS.with_borrow(|levels| levels.last().map(|l| Rc::clone(&l.runner)));
        let runner = runner
            .ok_or_else(|| Error::failed("spawn outside the wrun host or wrun_sdk::testing"))?;
        let args = Args::decode(args)?;
        // Run inline, with no borrow held: the child pushes its own level.
        let result = runner(input, &args);
        LEVELS.with_borrow_mut(|levels| {
            let level = levels.last_mut().expect("the level that spawned");
            level.results.clear();
            level.spawned.push(result);
            Ok(level.spawned.len() as u32 - 1)
        })
    }

    pub(super) fn result(handle: u32) -> Option<(i32, Vec<u8>)> {
        LEVELS.with_borrow(
            |levels| match levels.last()?.results.get(handle as usize)? {
                Ok(output) => Some((status::OK, output.clone())),
                Err(message) => Some((status::FAILED, message.as_bytes().to_vec())),
            },
        )
    }
}
