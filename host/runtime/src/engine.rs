//! The process-wide [`Runtime`]: engine, linker and the epoch ticker.

use std::sync::Arc;
use std::sync::mpsc;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, Linker, OptLevel, PoolingAllocationConfig,
    Strategy,
};

use wrun_store::BlobStore;

use crate::cache::ArtifactCache;
use crate::epoch;
use crate::limits::Limits;
use crate::sandbox::Sandbox;

/// Bytes of each linear-memory slot kept resident between tasks: the
/// largest automatic chunk (8 MiB, `Chunking::auto`) with room for the
/// guest's stack, heap and output, so that the next task on the slot
/// writes its chunk into pages already mapped instead of faulting in
/// fresh zero pages one 4 KiB page at a time.
const KEEP_RESIDENT_MEMORY: usize = 16 << 20;

/// Bytes of each table slot kept resident between tasks.
const KEEP_RESIDENT_TABLE: usize = 4 << 20;

/// A runtime could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime rejected the configuration (for example, the pooling
    /// allocator could not reserve its address space).
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// A limit is out of range.
    #[error("invalid limit: {0}")]
    Limit(String),
}

/// The sandbox runtime of a process: one wasmtime engine (Cranelift,
/// pooling allocator, epoch interruption) and the linker with the guest ABI
/// and WASI. Cloning is cheap; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    cache: Option<ArtifactCache>,
    linker: Linker<Sandbox>,
    limits: Limits,
    /// Dropping it stops the epoch thread.
    _ticker: mpsc::Sender<()>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

// `Runtime::admit`, `Runtime::task_runner` and `Runtime::splitter` are
// defined beside what they build (admission.rs, task.rs, splitter.rs), so
// that the engine depends on none of them.
impl Runtime {
    /// A runtime enforcing `limits`, able to run `slots` guest instances at
    /// once (workers plus the splitter), compiling every module it admits.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Limit`] when `limits.memory` is over
    /// [`Limits::MAX_MEMORY`]; [`RuntimeError::Engine`] when wasmtime rejects
    /// the configuration or the epoch thread cannot start.
    pub fn new(limits: Limits, slots: u32) -> Result<Self, RuntimeError> {
        Self::build(limits, slots, None)
    }

    /// Like [`Runtime::new`], with compiled artifacts cached in `store`.
    ///
    /// # Errors
    ///
    /// As [`Runtime::new`].
    pub fn with_store(
        limits: Limits,
        slots: u32,
        store: Arc<BlobStore>,
    ) -> Result<Self, RuntimeError> {
        Self::build(limits, slots, Some(store))
    }

    fn build(
        limits: Limits,
        slots: u32,
        store: Option<Arc<BlobStore>>,
    ) -> Result<Self, RuntimeError> {
        if limits.memory > Limits::MAX_MEMORY {
            return Err(RuntimeError::Limit(format!(
                "memory limit {} bytes exceeds the wasm32 maximum of 4 GiB",
                limits.memory
            )));
        }
        let mut pool = PoolingAllocationConfig::default();
        let slots = slots.max(1);
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .table_elements(limits.table_elements as usize)
            // The pool admits any wasm32 memory (each slot reserves 4 GiB of
            // address space regardless); the store's limiter enforces the
            // job's limit, so a module whose initial memory is over it is a
            // memory-limit outcome, not a compile error.
            .max_memory_size(Limits::MAX_MEMORY as usize)
            // Reset a reused slot by rewriting only the pages the last task
            // dirtied (found with Linux's PAGEMAP_SCAN where available)
            // instead of `madvise`: no page faults on the next task, and no
            // TLB shootdown across the worker threads, which otherwise
            // dominate the cost of a small task.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE);
        let mut config = Config::new();
        config
            .strategy(Strategy::Cranelift)
            .cranelift_opt_level(OptLevel::Speed)
            .epoch_interruption(true)
            .consume_fuel(limits.fuel.is_some())
            .max_wasm_stack(limits.stack)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        crate::wasi::add_to_linker(&mut linker)
            .and_then(|()| crate::host_abi::add_to_linker(&mut linker))
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let ticker = epoch::start_ticker(&engine)
            .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch thread: {e}")))?;

        Ok(Runtime {
            inner: Arc::new(Inner {
                cache: store.map(|store| ArtifactCache::new(&store, &engine)),
                engine,
                linker,
                limits,
                _ticker: ticker,
            }),
        })
    }

    /// The limits every task runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The artifact cache, when the runtime has a store.
    pub fn cache(&self) -> Option<&ArtifactCache> {
        self.inner.cache.as_ref()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<Sandbox> {
        &self.inner.linker
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sandbox::new_store;

    /// `docs/abi.md` lists every import with how it is bounded in time; an
    /// import linked but not listed there has not been audited.
    #[test]
    fn every_linked_import_is_audited_in_the_abi_document() {
        let runtime = Runtime::new(Limits::default(), 1).unwrap();
        let mut store = new_store(runtime.engine(), runtime.limits(), None, None);
        let linked: BTreeSet<String> = runtime
            .linker()
            .iter(&mut store)
            .map(|(module, name, _)| format!("{module}::{name}"))
            .collect();
        let doc = include_str!("../../../docs/abi.md");
        let table = doc
            .split("### Which imports can block")
            .nth(1)
            .and_then(|rest| rest.split("\n#").next())
            .expect("docs/abi.md has the import table");
        let audited: BTreeSet<String> = table
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .flat_map(|row| row.split(" |").next().unwrap_or_default().split(", "))
            .map(|name| name.trim_matches('`').to_owned())
            .collect();
        assert_eq!(linked, audited);
    }
}
