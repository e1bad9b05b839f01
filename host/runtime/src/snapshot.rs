//! Snapshots of a running SDK task, and restoring them into a fresh
//! instance (in this process or another).
//!
//! Between two calls into an SDK guest its wasm stack is empty, so its
//! whole state is its linear memory, its mutable globals (admission exports
//! the hidden ones, see [`crate::rewrite`]), and what the host holds for it:
//! where it is in the chunk, the output and log so far, the fuel it used and
//! how far it has read its random streams. A [`Snapshotter`] writes that as
//! one blob (see [`format`]) and remembers where each page went, so the next
//! snapshot of the same task stores only pages whose content changed. Which
//! pages to look at comes from the kernel ([`dirty`]): only pages written
//! since the last snapshot are hashed.
//!
//! Restoring checks everything before touching the instance: the blob and
//! every blob it builds on must match their digests, and the snapshot must
//! have been taken of the same module, chunk and arguments. A snapshot that
//! fails any check is an error; the caller starts the chunk from scratch.

mod dirty;
mod format;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use wasmtime::{AsContextMut, Global, Memory, Store, Val};
use wrun_store::{BlobStore, Digest};

pub use format::{Cursor, SnapshotError};
use format::{GlobalValue, Location, Manifest, PAGE, Piece, piece_len};

use crate::outcome::Failure;
use crate::sandbox::Sandbox;

/// What a snapshot must agree with to be restored: the job's module (as
/// the user gave it), the chunk and the arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) module: Digest,
    pub(crate) chunk: Digest,
    pub(crate) args: Digest,
}

/// The live state of a task that a snapshot reads or a restore writes.
pub(crate) struct Live {
    pub(crate) memory: Memory,
    /// Every mutable global, in the module's order.
    pub(crate) globals: Vec<Global>,
}

/// A snapshot just written (or restored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The blob's digest: how the journal names the snapshot.
    pub digest: Digest,
    /// Bytes written to the store for it (new pages, new output and the
    /// manifest); 0 for a restored one.
    pub stored: u64,
    /// The earlier snapshot blobs whose data holds some of its pages or
    /// output: restoring it needs them and it, nothing else.
    pub bases: Vec<Digest>,
}

/// Why no snapshot was taken at a call boundary.
#[derive(Debug)]
pub(crate) enum TakeError {
    /// The store could not keep the blob (a full disk, a quota): this
    /// snapshot is skipped, and the next one stores everything it would
    /// have.
    Unstored(String),
    /// The task's state could not be read.
    Failed(Failure),
}

/// The earlier snapshot blobs that restoring `blob` (whose digest is
/// `digest`) needs besides itself: what a node fetches before resuming a
/// task from it.
///
/// # Errors
/// [`SnapshotError::Malformed`] when `blob` is not a snapshot of this
/// format.
pub fn bases_of(digest: &Digest, blob: &[u8]) -> Result<Vec<Digest>, SnapshotError> {
    let (manifest, _) = format::decode(digest, blob)?;
    Ok(manifest.bases.into_iter().map(Digest::from_bytes).collect())
}

impl From<Failure> for TakeError {
    fn from(failure: Failure) -> Self {
        TakeError::Failed(failure)
    }
}

/// A page or piece of output, and where its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kept {
    digest: [u8; 32],
    at: At,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// All zero: nothing stored.
    Zero,
    /// In the blob being built, at this data offset.
    Pending(u64),
    /// In the snapshot blob with this digest, at this data offset.
    Stored(Digest, u64),
}

/// Takes the snapshots of one task, each storing only what changed since
/// the one before.
pub(crate) struct Snapshotter<'a> {
    store: &'a BlobStore,
    identity: Identity,
    /// The previous snapshot of this task (taken or restored).
    parent: Option<Digest>,
    /// Pages that differ from a fresh instance, as of the previous snapshot.
    pages: BTreeMap<u32, Kept>,
    /// Output pieces stored by the previous snapshot, and the output length
    /// then.
    output: Vec<Kept>,
    output_len: u64,
    /// Finds the pages written since the previous snapshot, once the first
    /// has been taken (and where the kernel allows it).
    tracker: Option<dirty::WriteTracker>,
    /// Pages found written for a snapshot the store then refused: the
    /// tracker no longer reports them, so the next snapshot looks at them.
    unstored: Vec<u32>,
}

impl<'a> Snapshotter<'a> {
    pub(crate) fn new(store: &'a BlobStore, identity: Identity) -> Self {
        Snapshotter {
            store,
            identity,
            parent: None,
            pages: BTreeMap::new(),
            output: Vec::new(),
            output_len: 0,
            tracker: None,
            unstored: Vec::new(),
        }
    }

    /// Snapshot the task now. Nothing changes here unless the store keeps
    /// the blob: a refused snapshot ([`TakeError::Unstored`]) leaves the
    /// previous one the base of the next.
    pub(crate) fn take(
        &mut self,
        store: &mut Store<Sandbox>,
        live: &Live,
        cursor: Cursor,
        fuel_used: Option<u64>,
    ) -> Result<Taken, TakeError> {
        let memory_bytes = live.memory.data_size(&*store);
        let mut candidates = self.written_pages(store, live.memory)?;
        if !self.unstored.is_empty() {
            candidates.append(&mut self.unstored);
            candidates.sort_unstable();
            candidates.dedup();
        }
        let mut data = Vec::new();
        let memory = live.memory.data(&*store);
        let mut pages = self.pages.clone();
        for &index in &candidates {
            let start = index as usize * PAGE;
            let bytes = &memory[start..start + PAGE];
            let kept = keep(bytes, self.pages.get(&index), &mut data);
            pages.insert(index, kept);
        }
        // Output only grows: whole pieces stored before are still valid.
        let unchanged = (self.output_len / PAGE as u64) as usize;
        let mut output_kept = self.output[..unchanged.min(self.output.len())].to_vec();
        let output_len = store.data().output.with_bytes(|output| {
            for bytes in output.chunks(PAGE).skip(unchanged) {
                output_kept.push(keep(bytes, None, &mut data));
            }
            output.len() as u64
        });
        let globals = live
            .globals
            .iter()
            .map(|global| global_value(global.get(&mut *store)))
            .collect::<Result<Vec<_>, _>>()?;
        let sandbox = store.data();
        let mut bases = Vec::new();
        let manifest_pages = pieces(pages.iter().map(|(&i, k)| (i, k)), &mut bases);
        let output = pieces(output_kept.iter().enumerate(), &mut bases);
        let manifest = Manifest {
            module: *self.identity.module.as_bytes(),
            chunk: *self.identity.chunk.as_bytes(),
            args: *self.identity.args.as_bytes(),
            parent: self.parent.map(|p| *p.as_bytes()),
            memory_bytes: memory_bytes as u64,
            bases,
            pages: manifest_pages,
            globals,
            cursor,
            output_len,
            output,
            log: sandbox.log.with_bytes(<[u8]>::to_vec),
            fuel_used,
            random_drawn: sandbox.random.drawn(),
            clock_nanos: sandbox.clock.now(),
        };
        let blob = format::encode(&manifest, &data);
        // Unsynced: a snapshot lost in a machine crash fails its digest
        // check and the chunk starts over; the journal, which names it,
        // is synced.
        let digest = match self.store.put_unsynced(&blob) {
            Ok(digest) => digest,
            Err(error) => {
                self.unstored = candidates;
                return Err(TakeError::Unstored(error.to_string()));
            }
        };
        // The pages and pieces written here now live in `digest`.
        for kept in pages.values_mut().chain(&mut output_kept) {
            if let At::Pending(offset) = kept.at {
                kept.at = At::Stored(digest, offset);
            }
        }
        self.pages = pages;
        self.output = output_kept;
        self.parent = Some(digest);
        self.output_len = output_len;
        Ok(Taken {
            digest,
            stored: blob.len() as u64,
            bases: manifest
                .bases
                .iter()
                .map(|b| Digest::from_bytes(*b))
                .collect(),
        })
    }

    /// Indices of the pages that may have changed since the previous
    /// snapshot (every page that differs from a fresh instance for the
    /// first one), ascending.
    fn written_pages(
        &mut self,
        store: &mut Store<Sandbox>,
        memory: Memory,
    ) -> Result<Vec<u32>, Failure> {
        let len = memory.data_size(&*store);
        let ptr = memory.data_ptr(&*store);
        let mut pages = Vec::new();
        let mut add = |range: std::ops::Range<usize>| {
            let (first, last) = (range.start / PAGE, (range.end - 1) / PAGE);
            for page in first..=last {
                if pages.last() != Some(&(page as u32)) {
                    pages.push(page as u32);
                }
            }
        };
        let host = |e: std::io::Error| Failure::Host {
            message: format!("cannot find the pages a task wrote: {e}"),
        };
        match &mut self.tracker {
            Some(tracker) => {
                let tracked = tracker.len();
                tracker.take_written(&mut add).map_err(host)?;
                if len > tracked {
                    // SAFETY: `ptr..ptr + len` is the guest's memory, which
                    // stays mapped while the store lives; the guest is not
                    // running.
                    let grown = unsafe { ptr.add(tracked) };
                    // SAFETY: `grown..ptr + len` is the part of the guest's
                    // memory past the tracked range, mapped likewise.
                    let complete = unsafe {
                        dirty::written_pages(grown, len - tracked, |r| {
                            add(r.start + tracked..r.end + tracked)
                        })
                    }
                    .map_err(host)?;
                    if !complete {
                        add(tracked..len);
                    }
                    // SAFETY: as above; the tracked range only grows.
                    unsafe { tracker.grow(len) }.map_err(host)?;
                }
            }
            None => {
                // SAFETY: as above.
                let complete = unsafe { dirty::written_pages(ptr, len, &mut add) }.map_err(host)?;
                if !complete && len > 0 {
                    add(0..len);
                }
                // SAFETY: as above; the tracker is dropped before the store
                // (it is owned by this snapshotter, which borrows nothing
                // from the store but outlives no task run).
                self.tracker = unsafe { dirty::WriteTracker::start(ptr, len) }.ok();
            }
        }
        pages.sort_unstable();
        pages.dedup();
        Ok(pages)
    }

    /// Restore the snapshot `digest` into a freshly instantiated task, and
    /// take later snapshots relative to it. Returns where the task was.
    pub(crate) fn restore(
        &mut self,
        digest: &Digest,
        store: &mut Store<Sandbox>,
        live: &Live,
    ) -> Result<Restored, SnapshotError> {
        let blob = read(self.store, digest)?;
        let (manifest, data) = format::decode(digest, &blob)?;
        let mismatch = |what| SnapshotError::Mismatch {
            digest: digest.to_hex(),
            what,
        };
        if manifest.module != *self.identity.module.as_bytes() {
            return Err(mismatch("another module"));
        }
        if manifest.chunk != *self.identity.chunk.as_bytes() {
            return Err(mismatch("another chunk"));
        }
        if manifest.args != *self.identity.args.as_bytes() {
            return Err(mismatch("other arguments"));
        }
        if manifest.globals.len() != live.globals.len() {
            return Err(malformed(digest, "its globals do not match the module's"));
        }
        let mut blobs: HashMap<Digest, Bytes> = HashMap::new();
        for base in &manifest.bases {
            let base = Digest::from_bytes(*base);
            let bytes = read(self.store, &base)?;
            let (_, base_data) = format::decode(&base, &bytes)?;
            let offset = bytes.len() - base_data.len();
            blobs.insert(base, bytes.slice(offset..));
        }
        let here = blob.slice(blob.len() - data.len()..);
        let resolve = |piece: &Piece, len: usize| -> Result<(Option<&[u8]>, Kept), SnapshotError> {
            let (bytes, at, offset): (&[u8], Digest, u64) = match piece.location {
                Location::Zero => {
                    return Ok((
                        None,
                        Kept {
                            digest: piece.digest,
                            at: At::Zero,
                        },
                    ));
                }
                Location::Here { offset } => (&here, *digest, offset),
                Location::Base { base, offset } => {
                    let base = Digest::from_bytes(manifest.bases[base as usize]);
                    (&blobs[&base], base, offset)
                }
            };
            let bytes = usize::try_from(offset)
                .ok()
                .and_then(|start| bytes.get(start..start.checked_add(len)?))
                .ok_or_else(|| malformed(digest, "a page lies outside its snapshot"))?;
            Ok((
                Some(bytes),
                Kept {
                    digest: piece.digest,
                    at: At::Stored(at, offset),
                },
            ))
        };

        // Every check passes before the instance is touched.
        let mut pages = Vec::with_capacity(manifest.pages.len());
        for piece in &manifest.pages {
            pages.push((piece.index, resolve(piece, PAGE)?));
        }
        let mut output = Vec::with_capacity(manifest.output_len as usize);
        let mut output_kept = Vec::with_capacity(manifest.output.len());
        for piece in &manifest.output {
            let len = piece_len(piece.index, manifest.output_len);
            let (bytes, kept) = resolve(piece, len)?;
            match bytes {
                Some(bytes) => output.extend_from_slice(bytes),
                None => output.resize(output.len() + len, 0),
            }
            output_kept.push(kept);
        }

        let apply = |store: &mut Store<Sandbox>| -> Result<(), String> {
            let current = live.memory.data_size(&*store) as u64;
            if manifest.memory_bytes < current {
                return Err(format!(
                    "memory of {} bytes, smaller than the module's initial {current}",
                    manifest.memory_bytes
                ));
            }
            let grow = (manifest.memory_bytes - current) / PAGE as u64;
            if grow > 0 {
                live.memory
                    .grow(&mut *store, grow)
                    .map_err(|e| format!("cannot grow memory back to its size: {e:#}"))?;
            }
            let memory = live.memory.data_mut(store.as_context_mut());
            for (index, (bytes, _)) in &pages {
                let start = *index as usize * PAGE;
                let page = &mut memory[start..start + PAGE];
                match bytes {
                    Some(bytes) => page.copy_from_slice(bytes),
                    None => page.fill(0),
                }
            }
            for (global, value) in live.globals.iter().zip(&manifest.globals) {
                global
                    .set(&mut *store, global_val(*value))
                    .map_err(|e| format!("cannot set a global: {e:#}"))?;
            }
            let sandbox = store.data_mut();
            sandbox.output.restore(&output).map_err(|e| e.to_string())?;
            sandbox
                .log
                .restore(&manifest.log)
                .map_err(|e| e.to_string())?;
            sandbox.random.restore(manifest.random_drawn);
            sandbox.clock.restore(manifest.clock_nanos);
            Ok(())
        };
        apply(store).map_err(|reason| malformed(digest, &reason))?;

        self.parent = Some(*digest);
        self.pages = pages
            .into_iter()
            .map(|(index, (_, kept))| (index, kept))
            .collect();
        self.output = output_kept;
        self.output_len = manifest.output_len;
        let len = live.memory.data_size(&*store);
        let ptr = live.memory.data_ptr(&*store);
        // SAFETY: the guest's memory, mapped while the store lives; the
        // tracker is dropped with this snapshotter, before the store.
        self.tracker = unsafe { dirty::WriteTracker::start(ptr, len) }.ok();
        Ok(Restored {
            cursor: manifest.cursor,
            fuel_used: manifest.fuel_used,
            bases: manifest
                .bases
                .iter()
                .map(|b| Digest::from_bytes(*b))
                .collect(),
        })
    }
}

/// Where a restored task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restored {
    pub(crate) cursor: Cursor,
    pub(crate) fuel_used: Option<u64>,
    /// The blobs the restored snapshot builds on.
    pub(crate) bases: Vec<Digest>,
}

/// How the page (or piece) `bytes` is kept: as it was, as zero, or
/// appended to `data`.
fn keep(bytes: &[u8], previous: Option<&Kept>, data: &mut Vec<u8>) -> Kept {
    let digest = *blake3::hash(bytes).as_bytes();
    if let Some(previous) = previous
        && previous.digest == digest
    {
        return *previous;
    }
    if bytes.iter().all(|&b| b == 0) {
        return Kept {
            digest,
            at: At::Zero,
        };
    }
    let offset = data.len() as u64;
    data.extend_from_slice(bytes);
    Kept {
        digest,
        at: At::Pending(offset),
    }
}

/// The manifest entries for `kept`, naming earlier blobs through `bases`.
fn pieces<'k, I, K>(kept: I, bases: &mut Vec<[u8; 32]>) -> Vec<Piece>
where
    I: IntoIterator<Item = (K, &'k Kept)>,
    K: TryInto<u32> + Copy,
{
    kept.into_iter()
        .map(|(index, kept)| {
            let location = match kept.at {
                At::Zero => Location::Zero,
                At::Pending(offset) => Location::Here { offset },
                At::Stored(blob, offset) => {
                    let blob = *blob.as_bytes();
                    let base = match bases.iter().position(|b| *b == blob) {
                        Some(base) => base,
                        None => {
                            bases.push(blob);
                            bases.len() - 1
                        }
                    };
                    Location::Base {
                        base: base as u32,
                        offset,
                    }
                }
            };
            Piece {
                index: index.try_into().ok().expect("fewer than 2^32 pages"),
                digest: kept.digest,
                location,
            }
        })
        .collect()
}

/// A snapshot blob, checked against its digest by the store. A local blob
/// is hashed where it lies (memory-mapped, on every core) and used through
/// the mapping: a large snapshot is never copied into a buffer first.
fn read(store: &BlobStore, digest: &Digest) -> Result<Bytes, SnapshotError> {
    let failed = |message: String| SnapshotError::Store {
        digest: digest.to_hex(),
        message,
    };
    if let Some((path, _)) = store
        .verified_file(digest, None)
        .map_err(|e| failed(e.to_string()))?
    {
        let file = std::fs::File::open(&path).map_err(|e| failed(e.to_string()))?;
        // SAFETY: blobs are never written in place (the store writes a new
        // file and renames it over the name), so the mapped bytes stay the
        // ones just verified while the mapping lives.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| failed(e.to_string()))?;
        return Ok(Bytes::from_owner(map));
    }
    match store.get(digest) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(SnapshotError::Missing {
            digest: digest.to_hex(),
        }),
        Err(e) => Err(SnapshotError::Store {
            digest: digest.to_hex(),
            message: e.to_string(),
        }),
    }
}

fn malformed(digest: &Digest, reason: &str) -> SnapshotError {
    SnapshotError::Malformed {
        digest: digest.to_hex(),
        reason: reason.to_owned(),
    }
}

fn global_value(value: Val) -> Result<GlobalValue, Failure> {
    Ok(match value {
        Val::I32(v) => GlobalValue::I32(v as u32),
        Val::I64(v) => GlobalValue::I64(v as u64),
        Val::F32(v) => GlobalValue::F32(v),
        Val::F64(v) => GlobalValue::F64(v),
        Val::V128(v) => GlobalValue::V128(v.as_u128()),
        Val::FuncRef(_) | Val::ExternRef(_) | Val::AnyRef(_) | Val::ExnRef(_) | Val::ContRef(_) => {
            return Err(Failure::Host {
                message: "cannot snapshot a global holding a reference".to_owned(),
            });
        }
    })
}

fn global_val(value: GlobalValue) -> Val {
    match value {
        GlobalValue::I32(v) => Val::I32(v as i32),
        GlobalValue::I64(v) => Val::I64(v as i64),
        GlobalValue::F32(v) => Val::F32(v),
        GlobalValue::F64(v) => Val::F64(v),
        GlobalValue::V128(v) => Val::V128(v.into()),
    }
}
