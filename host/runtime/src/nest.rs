//! Tasks that spawn tasks: what a task asks for through `spawn`, the
//! limits on it, and the results it is handed back after a wait.
//!
//! The host side of the protocol is a small state machine per store
//! ([`NestState`]): `spawn` is accepted only inside `wrun_step`; the
//! children asked for since the last wait leave with the `WAIT` status
//! ([`NestState::take_spawned`]); their results are handed back for the
//! next `wrun_step` call only ([`NestState::deliver`], cleared when that
//! call returns), so no call boundary at which a snapshot may be taken
//! has host-side results the snapshot would miss.

use std::fmt;

use bytes::Bytes;

/// A child task asked for with `spawn`: the task's own module run on
/// `input` (one record) with `args`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawn {
    /// The child's input, one record.
    pub input: Bytes,
    /// The child's arguments in the ABI encoding (each UTF-8 followed by a
    /// NUL byte), as `wrun_init` reads them.
    pub args: Vec<u8>,
}

/// How a child ended, as its parent reads it: its output, or the message
/// of its failure (trap, fuel, timeout, error status, a limit).
pub type ChildResult = Result<Vec<u8>, String>;

/// Where a task sits in its job's tree of tasks, and the limits on what it
/// may spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nesting {
    /// 0 for a root task (a chunk of the input), its parent's plus one for
    /// a child.
    pub depth: u32,
    /// Deepest a child may be (`wrun submit --max-spawn-depth`); a task at
    /// this depth cannot spawn.
    pub max_depth: u32,
    /// Most children one task may spawn over its whole run
    /// (`--max-children`).
    pub max_children: u32,
}

impl Nesting {
    /// Default deepest child: 16 levels, deep enough for the recursive
    /// divide-and-conquer examples and shallow enough that an unbounded
    /// recursion is stopped while it is still small.
    pub const DEFAULT_MAX_DEPTH: u32 = 16;
    /// Default most children per task: 10,000 (a generation of a large
    /// genetic algorithm's population, each child a handle of a few bytes).
    pub const DEFAULT_MAX_CHILDREN: u32 = 10_000;

    /// Instances a thread that runs trees needs at `max_depth`: one per
    /// level, each waiting ancestor keeping its own, capped at 17 (each
    /// pool slot reserves 4 GiB of address space, none of it touched until
    /// used; a deeper tree than that fails its deepest children with a
    /// host error, "maximum concurrent instance limit reached").
    pub fn instances_per_thread(max_depth: u32) -> u32 {
        max_depth.min(Self::DEFAULT_MAX_DEPTH) + 1
    }

    /// A root task under the default limits.
    pub fn root() -> Self {
        Nesting {
            depth: 0,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_children: Self::DEFAULT_MAX_CHILDREN,
        }
    }

    /// The nesting of a child of a task with this nesting.
    pub fn child(self) -> Self {
        Nesting {
            depth: self.depth + 1,
            ..self
        }
    }
}

impl Default for Nesting {
    fn default() -> Self {
        Nesting::root()
    }
}

/// A limit on spawning that a task went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnLimit {
    /// A task at the deepest allowed depth spawned.
    Depth {
        /// `--max-spawn-depth`.
        max: u32,
    },
    /// A task spawned more children than allowed.
    Children {
        /// `--max-children`.
        max: u32,
    },
    /// A wait would have put more children of the job in flight than
    /// allowed.
    InFlight {
        /// `--max-children-in-flight`.
        max: u32,
    },
}

impl fmt::Display for SpawnLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnLimit::Depth { max } => write!(
                f,
                "spawn depth limit: a task at depth {max} spawned a child, deeper than the \
                 limit of {max} (--max-spawn-depth)"
            ),
            SpawnLimit::Children { max } => write!(
                f,
                "children limit: a task spawned more than {max} children (--max-children)"
            ),
            SpawnLimit::InFlight { max } => write!(
                f,
                "children in flight limit: a wait would have more than {max} children of the \
                 job queued or running at once (--max-children-in-flight)"
            ),
        }
    }
}

/// A guest error raised inside a `wrun` import: carried through wasmtime's
/// error and classified by [`crate::outcome::Failure::from_wasmtime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SpawnLimitHit(pub(crate) SpawnLimit);

/// The spawning state of one store.
#[derive(Debug, Default)]
pub(crate) struct NestState {
    nesting: Nesting,
    /// Inside a `wrun_step` call: the only time `spawn` is allowed.
    in_step: bool,
    /// Children asked for since the last wait.
    spawned: Vec<Spawn>,
    /// Children spawned over the whole run.
    total: u32,
    /// The results of the last wait, during the step call after it.
    results: Vec<ChildResult>,
}

impl NestState {
    pub(crate) fn new(nesting: Nesting) -> Self {
        NestState {
            nesting,
            ..NestState::default()
        }
    }

    pub(crate) fn nesting(&self) -> Nesting {
        self.nesting
    }

    /// A `wrun_step` call starts (true) or returned (false); results are
    /// readable only during the call after a wait.
    pub(crate) fn set_in_step(&mut self, in_step: bool) {
        self.in_step = in_step;
        if !in_step {
            self.results.clear();
        }
    }

    /// Whether `spawn` may be called now.
    pub(crate) fn in_step(&self) -> bool {
        self.in_step
    }

    /// Accept a child, or say which limit it is past. Its handle is its
    /// place among the children since the last wait.
    pub(crate) fn spawn(&mut self, spawn: Spawn) -> Result<u32, SpawnLimit> {
        let Nesting {
            depth,
            max_depth,
            max_children,
        } = self.nesting;
        if depth >= max_depth {
            return Err(SpawnLimit::Depth { max: max_depth });
        }
        if self.total >= max_children {
            return Err(SpawnLimit::Children { max: max_children });
        }
        self.total += 1;
        self.results.clear();
        self.spawned.push(spawn);
        Ok(self.spawned.len() as u32 - 1)
    }

    /// Whether a child was spawned since the last wait (`WAIT` is allowed).
    pub(crate) fn has_spawned(&self) -> bool {
        !self.spawned.is_empty()
    }

    /// The children asked for since the last wait, in spawn order.
    pub(crate) fn take_spawned(&mut self) -> Vec<Spawn> {
        std::mem::take(&mut self.spawned)
    }

    /// Hand the results of a wait over, in spawn order, for the next step.
    pub(crate) fn deliver(&mut self, results: Vec<ChildResult>) {
        self.results = results;
    }

    /// The result of child `handle` of the last wait, if it is readable.
    pub(crate) fn result(&self, handle: u32) -> Option<&ChildResult> {
        self.results.get(handle as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn() -> Spawn {
        Spawn {
            input: Bytes::from_static(b"x"),
            args: Vec::new(),
        }
    }

    #[test]
    fn handles_count_from_the_last_wait_and_limits_apply() {
        let mut state = NestState::new(Nesting {
            depth: 0,
            max_depth: 1,
            max_children: 3,
        });
        assert_eq!(state.spawn(spawn()), Ok(0));
        assert_eq!(state.spawn(spawn()), Ok(1));
        assert_eq!(state.take_spawned().len(), 2);
        state.deliver(vec![Ok(b"a".to_vec()), Err("b".into())]);
        assert_eq!(state.result(1), Some(&Err("b".into())));
        assert_eq!(state.spawn(spawn()), Ok(0));
        assert_eq!(state.result(0), None, "a spawn ends the results' life");
        assert_eq!(state.spawn(spawn()), Err(SpawnLimit::Children { max: 3 }));
        let mut deepest = NestState::new(Nesting::root().child());
        deepest.nesting.max_depth = 1;
        assert_eq!(deepest.spawn(spawn()), Err(SpawnLimit::Depth { max: 1 }));
    }

    #[test]
    fn results_are_readable_only_in_the_step_after_the_wait() {
        let mut state = NestState::new(Nesting::root());
        state.spawn(spawn()).unwrap();
        state.take_spawned();
        state.deliver(vec![Ok(Vec::new())]);
        state.set_in_step(true);
        assert!(state.result(0).is_some());
        state.set_in_step(false);
        assert!(state.result(0).is_none());
    }
}
