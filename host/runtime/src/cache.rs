//! The compiled-artifact cache: compile a module once per engine
//! configuration, then start it from a memory-mapped artifact.
//!
//! The key is blake3(`KEY_VERSION`, the engine's
//! `precompile_compatibility_hash`, the module's digest): a module compiled
//! under another wasmtime version or code-generation setting (fuel on or
//! off, for instance) gets another key. The artifact (what
//! `Module::serialize` produced) is a content-addressed blob; an index entry
//! under `entries/artifacts/<key>` names it and records where it came from.
//! Uses are appended to `entries/artifact-uses/<key>` (8 bytes each; hit
//! counts and last use are read from it), and the stamp of the artifact
//! file as last verified is kept in `entries/artifact-verified/<key>`; both
//! without fsync (a crash can only lose a count, or cost one re-hash).
//! A hit therefore writes one 8-byte append, not a new file.
//!
//! A missing, corrupt, truncated or incompatible artifact is a miss: the
//! module is compiled again and the entry rewritten; a task never fails
//! because of the cache.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wrun_store::{BlobStore, Digest, FileStamp, StoreError};

use crate::rewrite::MutableGlobal;

/// Namespace of the index entries.
const ENTRIES: &str = "artifacts";
/// Namespace of the usage logs: one little-endian u64 per use, the Unix
/// time in seconds, with [`HIT`] set for a cache hit.
const USES: &str = "artifact-uses";
/// Marks a use that was a cache hit.
const HIT: u64 = 1 << 63;
/// Namespace of the verified file stamps.
const VERIFIED: &str = "artifact-verified";
/// Bump to invalidate every existing artifact.
const KEY_VERSION: &[u8] = b"wrun-artifact-v1";

/// What the index records about one cached artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Digest of the artifact blob.
    pub artifact: String,
    /// Digest of the module it was compiled from.
    pub module: String,
    /// Where the module came from when it was compiled.
    pub source: String,
    /// Module size in bytes.
    pub module_size: u64,
    /// Artifact size in bytes.
    pub artifact_size: u64,
    /// How long compilation took, in milliseconds.
    pub compile_ms: f64,
    /// When it was compiled (seconds since the Unix epoch).
    pub created: u64,
    /// A task's mutable globals and the exports they are read through (the
    /// admission rewrite's list), so a hit need not parse the module; empty
    /// for other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) globals: Vec<MutableGlobal>,
}

/// Usage of one artifact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Times it was loaded instead of compiling.
    pub hits: u64,
    /// Last load or compile (seconds since the Unix epoch).
    pub last_used: u64,
}

/// A listed cache entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The cache key.
    pub key: String,
    /// The index entry.
    pub entry: CacheEntry,
    /// Its usage.
    pub stats: CacheStats,
}

/// The result of a lookup.
pub(crate) enum Lookup {
    /// A usable compiled module, and its mutable globals.
    Hit(wasmtime::Module, Vec<MutableGlobal>),
    /// Nothing cached.
    Miss,
    /// Something was cached but unusable (the reason); it was removed.
    Discarded(String),
}

/// The artifact cache of one engine configuration.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    store: Arc<BlobStore>,
    /// The engine's share of every key.
    engine_key: [u8; 32],
}

/// Feeds `Hash` output into blake3.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let hash = self.0.finalize();
        u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ArtifactCache {
    /// The cache for `engine`'s configuration in `store`'s local part
    /// ([`BlobStore::local`]): artifacts are compiled for this machine and
    /// memory-mapped from its disk, never put in a shared bucket.
    pub(crate) fn new(store: &Arc<BlobStore>, engine: &Engine) -> Self {
        let store = store.local();
        let mut hasher = Blake3Hasher(blake3::Hasher::new());
        hasher.write(KEY_VERSION);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache {
            store,
            engine_key: *hasher.0.finalize().as_bytes(),
        }
    }

    fn key(&self, module: &Digest) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.engine_key);
        hasher.update(module.as_bytes());
        hasher.finalize().to_hex().to_string()
    }

    /// Look up the compiled form of the module with digest `module`.
    pub(crate) fn load(&self, engine: &Engine, module: &Digest) -> Result<Lookup, StoreError> {
        let key = self.key(module);
        let Some(bytes) = self.store.get_entry(ENTRIES, &key)? else {
            return Ok(Lookup::Miss);
        };
        let entry: Option<CacheEntry> = serde_json::from_slice(&bytes).ok();
        let Some((artifact, entry)) = entry.and_then(|e| Some((Digest::from_hex(&e.artifact)?, e)))
        else {
            self.store.delete_entry(ENTRIES, &key)?;
            return Ok(Lookup::Discarded(
                "its index entry is unreadable".to_owned(),
            ));
        };
        let known: Option<FileStamp> = self
            .store
            .get_entry(VERIFIED, &key)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let Some((file, stamp)) = self.store.verified_file(&artifact, known.as_ref())? else {
            self.store.delete_entry(ENTRIES, &key)?;
            return Ok(Lookup::Discarded(
                "the artifact is missing or corrupt".to_owned(),
            ));
        };
        if known != Some(stamp) {
            self.remember_verified(&key, &stamp);
        }
        match deserialize(engine, &file) {
            Ok(compiled) => {
                self.record_use(&key, HIT);
                Ok(Lookup::Hit(compiled, entry.globals))
            }
            Err(error) => {
                self.store.delete_entry(ENTRIES, &key)?;
                self.store.delete(&artifact)?;
                Ok(Lookup::Discarded(format!(
                    "the artifact is incompatible: {error:#}"
                )))
            }
        }
    }

    /// Cache `compiled` under `key`: the module's digest, or one derived
    /// from it for a task (whose mutable globals are `globals`). `original`
    /// is the module as given and its digest, kept beside the artifact.
    pub(crate) fn save(
        &self,
        key: &Digest,
        original: (&[u8], &Digest),
        globals: &[MutableGlobal],
        compiled: &wasmtime::Module,
        source: &str,
        compile_time: Duration,
    ) -> Result<(), StoreError> {
        let Ok(artifact_bytes) = compiled.serialize() else {
            // Not serializable: nothing to cache, the compiled module works.
            return Ok(());
        };
        let (bytes, module) = original;
        let artifact = self.store.put(&artifact_bytes)?;
        self.store.put(bytes)?;
        let entry = CacheEntry {
            artifact: artifact.to_hex(),
            module: module.to_hex(),
            source: source.to_owned(),
            module_size: bytes.len() as u64,
            artifact_size: artifact_bytes.len() as u64,
            compile_ms: compile_time.as_secs_f64() * 1e3,
            created: now(),
            globals: globals.to_vec(),
        };
        let key = self.key(key);
        let json = serde_json::to_vec(&entry).expect("entries serialize");
        self.store.put_entry(ENTRIES, &key, &json)?;
        if let Some((_, stamp)) = self.store.verified_file(&artifact, None)? {
            self.remember_verified(&key, &stamp);
        }
        self.record_use(&key, 0);
        Ok(())
    }

    /// Note that the artifact file with this stamp checked out. Best effort:
    /// without it the next load hashes the file again.
    fn remember_verified(&self, key: &str, stamp: &FileStamp) {
        let json = serde_json::to_vec(stamp).expect("stamps serialize");
        let _ = self.store.put_entry_unsynced(VERIFIED, key, &json);
    }

    /// Log a use (`flag` is [`HIT`] or 0). Best effort: statistics never
    /// fail a load.
    fn record_use(&self, key: &str, flag: u64) {
        let _ = self
            .store
            .append_entry(USES, key, &(now() | flag).to_le_bytes());
    }

    fn stats(&self, key: &str) -> CacheStats {
        let log = self
            .store
            .get_entry(USES, key)
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut stats = CacheStats::default();
        for record in log.chunks_exact(8) {
            let use_ = u64::from_le_bytes(record.try_into().expect("8 bytes"));
            stats.hits += u64::from(use_ & HIT != 0);
            stats.last_used = stats.last_used.max(use_ & !HIT);
        }
        stats
    }

    /// Every cached artifact (of any engine configuration), by key.
    /// Entries whose index record cannot be parsed are skipped.
    ///
    /// # Errors
    ///
    /// The [`StoreError`] of a failed store read.
    pub fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let mut listed = Vec::new();
        for meta in self.store.list_entries(ENTRIES)? {
            let Some(bytes) = self.store.get_entry(ENTRIES, &meta.key)? else {
                continue;
            };
            if let Ok(entry) = serde_json::from_slice(&bytes) {
                let stats = self.stats(&meta.key);
                listed.push(Listed {
                    key: meta.key,
                    entry,
                    stats,
                });
            }
        }
        Ok(listed)
    }

    /// Remove one entry, its artifact, and its module blob unless another
    /// entry still uses it (`remaining`: the other entries).
    ///
    /// # Errors
    ///
    /// The [`StoreError`] of the first deletion that fails; what was deleted
    /// before it stays deleted.
    pub fn remove(&self, victim: &Listed, remaining: &[Listed]) -> Result<(), StoreError> {
        self.store.delete_entry(ENTRIES, &victim.key)?;
        self.store.delete_entry(USES, &victim.key)?;
        self.store.delete_entry(VERIFIED, &victim.key)?;
        if let Some(artifact) = Digest::from_hex(&victim.entry.artifact) {
            self.store.delete(&artifact)?;
        }
        let shared = remaining
            .iter()
            .any(|l| l.key != victim.key && l.entry.module == victim.entry.module);
        if let (false, Some(module)) = (shared, Digest::from_hex(&victim.entry.module)) {
            self.store.delete(&module)?;
        }
        Ok(())
    }

    /// Remove entries unused for longer than `max_age`, then the least
    /// recently used until the artifacts and modules fit in `max_size`
    /// bytes. Returns what was removed, oldest first.
    ///
    /// # Errors
    ///
    /// The [`StoreError`] of the first store operation that fails; entries
    /// removed before it stay removed.
    pub fn gc(
        &self,
        max_age: Option<Duration>,
        max_size: Option<u64>,
    ) -> Result<Vec<Listed>, StoreError> {
        let mut entries = self.list()?;
        entries.sort_by_key(|l| l.stats.last_used.max(l.entry.created));
        let size = |l: &Listed| l.entry.artifact_size + l.entry.module_size;
        let mut total: u64 = entries.iter().map(size).sum();
        let cutoff = max_age.map(|age| now().saturating_sub(age.as_secs()));
        let mut removed = Vec::new();
        while let Some(oldest) = entries.first() {
            let last_used = oldest.stats.last_used.max(oldest.entry.created);
            let too_old = cutoff.is_some_and(|cutoff| last_used < cutoff);
            let too_big = max_size.is_some_and(|max| total > max);
            if !too_old && !too_big {
                break;
            }
            let victim = entries.remove(0);
            self.remove(&victim, &entries)?;
            total -= size(&victim);
            removed.push(victim);
        }
        Ok(removed)
    }

    /// Remove every entry, with its artifact and module. The rest of the
    /// store (job outputs, job modules) is not the cache's to remove.
    ///
    /// # Errors
    ///
    /// The [`StoreError`] of the first store operation that fails.
    pub fn clear(&self) -> Result<(), StoreError> {
        for entry in self.list()? {
            self.remove(&entry, &[])?;
        }
        Ok(())
    }
}

/// Load an artifact file.
fn deserialize(engine: &Engine, file: &Path) -> wasmtime::Result<wasmtime::Module> {
    // SAFETY: `deserialize_file` requires bytes that `Module::serialize`
    // produced (they hold machine code that is mapped and run). This file is
    // a blob that only `ArtifactCache::save` writes from `serialize`'s
    // output, found through an index entry that only `save` writes, and its
    // blake3 matched the digest recorded then: either just now, or at an
    // earlier check of this very file whose stamp (device, inode, size,
    // mtime, ctime) is unchanged, i.e. it has not been written since. So the
    // bytes are what wasmtime produced; wasmtime itself rejects artifacts of
    // another version or configuration. Blobs are replaced by atomic rename,
    // never rewritten in place, so the mapping cannot change under us. (Bit
    // rot that leaves the metadata untouched is not caught between full
    // checks.) Anyone able to forge both an entry and a matching blob in
    // WRUN_HOME can already replace the wrun binary.
    unsafe { wasmtime::Module::deserialize_file(engine, file) }
}
