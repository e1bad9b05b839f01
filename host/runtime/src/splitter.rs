//! A splitter plugin instance: finds record boundaries in a stream.

use std::fmt;

use wasmtime::{Memory, Store, TypedFunc};
use wrun_abi::{Kind, export, status};

use crate::admission::{AdmissionError, Module};
use crate::engine::Runtime;
use crate::epoch::deadline_ticks;
use crate::guest::{Returns, call, classify, copy_in, len32};
use crate::host_abi::guest_slice;
use crate::outcome::Failure;
use crate::sandbox::{Sandbox, new_store};

/// Why splitting stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The module is not a usable splitter.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The plugin rejected the input as malformed (its message says where).
    #[error("{message}")]
    Rejected {
        /// The plugin's source (`builtin:fasta`, or a path).
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin failed some other way (trap, limit, ABI violation).
    #[error("splitter {plugin} failed: {failure}")]
    Failed {
        /// The plugin's source (`builtin:fasta`, or a path).
        plugin: String,
        /// How it failed.
        failure: Failure,
    },
}

/// One instance of a splitter plugin, fed an input's blocks in order.
///
/// The instance lives for the whole input (splitters keep state across
/// blocks) under the runtime's memory, table and per-call time limits.
pub struct Splitter {
    plugin: String,
    store: Store<Sandbox>,
    memory: Memory,
    reserve: TypedFunc<u32, u32>,
    split: TypedFunc<(u32, u32), i32>,
    boundaries: TypedFunc<(), u32>,
    /// `wrun_weights`, when the plugin weighs its records.
    weights: Option<TypedFunc<(), u32>>,
    /// The guest buffer from the last `wrun_reserve` and its size.
    buffer: Option<(u32, usize)>,
}

impl fmt::Debug for Splitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Splitter")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Instantiate `module` (a splitter) to stream one input through.
    ///
    /// # Errors
    ///
    /// [`SplitError::Admission`] when `module` is not a splitter;
    /// [`SplitError::Failed`] when instantiating it or its `_initialize`
    /// fails.
    pub fn splitter(&self, module: &Module) -> Result<Splitter, SplitError> {
        Splitter::new(self, module)
    }
}

impl Splitter {
    pub(crate) fn new(runtime: &Runtime, module: &Module) -> Result<Self, SplitError> {
        let plugin = module.source().to_owned();
        if module.info().kind != Kind::Splitter {
            return Err(AdmissionError::WrongKind {
                module: plugin,
                expected: "splitter",
                found: module.info().kind,
            }
            .into());
        }
        let mut limits = runtime.limits().clone();
        // Fuel budgets tasks; a splitter is bounded by its per-call timeout.
        limits.fuel = limits.fuel.map(|_| u64::MAX);
        let mut store = new_store(runtime.engine(), &limits, None, None);
        let failed = |store: &mut Store<Sandbox>, e| SplitError::Failed {
            plugin: plugin.clone(),
            failure: classify(store, e),
        };
        let instance = module
            .instance_pre()
            .instantiate(&mut store)
            .map_err(|e| failed(&mut store, e))?;
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, export::INITIALIZE) {
            init.call(&mut store, ())
                .map_err(|e| failed(&mut store, e))?;
        }
        let memory = instance.get_memory(&mut store, export::MEMORY);
        let reserve = instance.get_typed_func(&mut store, export::RESERVE);
        let split = instance.get_typed_func(&mut store, export::SPLIT);
        let boundaries = instance.get_typed_func(&mut store, export::BOUNDARIES);
        // Admission checked its type when it is exported.
        let weights = instance.get_typed_func(&mut store, export::WEIGHTS).ok();
        match (memory, reserve, split, boundaries) {
            (Some(memory), Ok(reserve), Ok(split), Ok(boundaries)) => Ok(Splitter {
                plugin,
                store,
                memory,
                reserve,
                split,
                boundaries,
                weights,
                buffer: None,
            }),
            // Admission checked the exports; this is unreachable for a
            // module that passed it, but stays an error, not a panic.
            _ => Err(SplitError::Failed {
                plugin,
                failure: Failure::Abi {
                    message: "splitter exports are missing".to_owned(),
                },
            }),
        }
    }

    /// Whether the plugin weighs its records (exports `wrun_weights`).
    pub fn weighs(&self) -> bool {
        self.weights.is_some()
    }

    /// Feed the next block; `starts` receives the offsets within `block`
    /// where records start (ascending, each at most `block.len()`). `eof`
    /// says this is the last block. When the plugin [weighs](Self::weighs)
    /// its records, `weights` is set to `starts.len() + 1` weights (in the
    /// plugin's units): the part of the block's bytes before the first
    /// start (they belong to the record open since an earlier block), then
    /// that of each start's record; otherwise it is left empty.
    ///
    /// # Errors
    ///
    /// [`SplitError::Rejected`] when the plugin finds the input malformed;
    /// [`SplitError::Failed`] when it traps, runs into a limit or reports
    /// offsets out of order or outside `block`, or weights outside its
    /// memory.
    pub fn split(
        &mut self,
        block: &[u8],
        eof: bool,
        starts: &mut Vec<u32>,
        weights: &mut Vec<u64>,
    ) -> Result<(), SplitError> {
        weights.clear();
        self.call(block, eof, starts, weights)
            .map_err(|failure| match failure {
                Failure::Guest {
                    status: status::BAD_INPUT,
                    message,
                } => SplitError::Rejected {
                    plugin: self.plugin.clone(),
                    message,
                },
                failure => SplitError::Failed {
                    plugin: self.plugin.clone(),
                    failure,
                },
            })
    }

    fn call(
        &mut self,
        block: &[u8],
        eof: bool,
        starts: &mut Vec<u32>,
        weights: &mut Vec<u64>,
    ) -> Result<(), Failure> {
        let store = &mut self.store;
        store.set_epoch_deadline(deadline_ticks(store.data().limits.timeout));
        let ptr = match self.buffer {
            Some((ptr, size)) if size >= block.len() => {
                let start = ptr as usize;
                self.memory
                    .data_mut(&mut *store)
                    .get_mut(start..start + block.len())
                    .ok_or_else(|| Failure::Abi {
                        message: "reserved buffer left the guest's memory".to_owned(),
                    })?
                    .copy_from_slice(block);
                ptr
            }
            _ => copy_in(store, self.memory, &self.reserve, block)?,
        };
        self.buffer = Some((ptr, self.buffer.map_or(0, |b| b.1).max(block.len())));

        // `call` passes only non-negative values.
        let count = call(
            store,
            &self.split,
            (len32(block.len())?, u32::from(eof)),
            export::SPLIT,
            Returns::Count,
        )? as u32;
        let at = self
            .boundaries
            .call(&mut *store, ())
            .map_err(|e| classify(store, e))?;
        let bytes = count
            .checked_mul(4)
            .and_then(|len| guest_slice(self.memory.data(&*store), at, len))
            .ok_or_else(|| Failure::Abi {
                message: format!("`wrun_boundaries` returned {count} offsets at {at:#x}, outside the guest's memory"),
            })?;
        let first = starts.len();
        starts.extend(
            bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        let new = &starts[first..];
        if new.windows(2).any(|w| w[0] > w[1])
            || new.last().is_some_and(|&s| s as usize > block.len())
        {
            return Err(Failure::Abi {
                message: format!(
                    "`wrun_split` reported offsets out of order or beyond its {}-byte block",
                    block.len()
                ),
            });
        }
        if let Some(export) = &self.weights {
            let at = export
                .call(&mut *store, ())
                .map_err(|e| classify(store, e))?;
            let entries = u64::from(count) + 1;
            let bytes = u32::try_from(entries * 8)
                .ok()
                .and_then(|len| guest_slice(self.memory.data(&*store), at, len))
                .ok_or_else(|| Failure::Abi {
                    message: format!(
                        "`wrun_weights` returned {entries} weights at {at:#x}, outside the guest's memory"
                    ),
                })?;
            weights.extend(
                bytes
                    .chunks_exact(8)
                    .map(|b| u64::from_le_bytes(b.try_into().expect("chunks of 8 bytes"))),
            );
        }
        Ok(())
    }
}
