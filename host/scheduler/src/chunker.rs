//! Grouping records into tasks.

use bytes::Bytes;
use wrun_journal::ChunkPos;

/// How records are grouped into tasks. A chunk is closed before the record
/// that would start it past any bound; a single record larger than a bound
/// makes a chunk of its own. No bound: the whole input is one chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chunking {
    /// Close a chunk once it holds this many records.
    pub max_records: Option<u64>,
    /// Close a chunk once it holds this many bytes.
    pub max_bytes: Option<u64>,
    /// Close a chunk once its records weigh this much, in the splitter
    /// plugin's units (`wrun_weights`): residues for the builtin `fasta`
    /// and `fastq` plugins, so that chunks get about equal sequence
    /// whatever the record lengths (what makes BLAST chunks take equal
    /// time). Records of a plugin that reports no weights weigh nothing.
    pub max_weight: Option<u64>,
}

impl Chunking {
    /// Largest chunk accepted, in bytes: a chunk must fit a wasm32 memory
    /// with room to spare.
    pub const MAX_CHUNK_BYTES: u64 = 1 << 30;

    /// Byte-sized chunks that keep `slots` workers busy on an input of
    /// `input_size` bytes (if known): about 16 chunks per slot, between
    /// 4 KiB and 8 MiB each; 1 MiB when the size is unknown.
    pub fn auto(input_size: Option<u64>, slots: usize) -> Self {
        let bytes = match input_size {
            Some(size) => (size / (slots.max(1) as u64 * 16)).clamp(4 << 10, 8 << 20),
            None => 1 << 20,
        };
        Chunking {
            max_bytes: Some(bytes),
            ..Chunking::default()
        }
    }
}

/// Most bytes a chunk reserves before its records arrive: a bound far
/// above the data (`--chunk-bytes 1G` on a small input) must not allocate
/// it all.
const MAX_RESERVED: u64 = 64 << 20;

/// One unit of work: a chunk of whole records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Position of the chunk in the input, from 0.
    pub index: u64,
    /// Index of its first record in the input, from 0.
    pub first_record: u64,
    /// Byte offset of the chunk in the input.
    pub offset: u64,
    /// The chunk's bytes.
    pub data: Bytes,
    /// Offset in `data` of each record's start; the first is 0.
    pub records: Vec<u32>,
    /// What its records weigh, in the splitter plugin's units (0 when it
    /// reports no weights).
    pub weight: u64,
}

impl Task {
    /// Where the chunk lies in the input (its length and record count are
    /// those of `data` and `records`).
    pub fn pos(&self) -> ChunkPos {
        ChunkPos {
            offset: self.offset,
            len: self.data.len() as u64,
            first_record: self.first_record,
            records: self.records.len() as u64,
        }
    }
}

/// The chunker could not form a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// One record is too large to become a task.
    #[error("the record starting at byte {offset} is larger than {limit} bytes")]
    RecordTooLarge {
        /// Where the record starts in the input, in bytes.
        offset: u64,
        /// The largest chunk accepted, in bytes.
        limit: u64,
    },
}

/// Turns a stream of blocks and the record starts a splitter found in them
/// into [`Task`]s.
#[derive(Debug)]
pub struct Chunker {
    chunking: Chunking,
    /// Bytes of the input consumed, i.e. the offset of the next block.
    consumed: u64,
    /// The chunk being filled, once the first record has started.
    current: Option<Open>,
    next_index: u64,
    next_record: u64,
    /// A record starts exactly where the next block begins; what the
    /// splitter weighed of it so far.
    start_at_next_block: Option<u64>,
    /// Offset of the last record start, to drop repeats.
    last_start: Option<u64>,
    /// Lengths chunks must have, by index (see [`Chunker::replay`]).
    replay: Vec<Option<u64>>,
    /// Records come in pairs (see [`Chunker::in_pairs`]).
    paired: bool,
    /// The whole input, when it is in memory (see [`Chunker::over`]).
    whole: Option<Bytes>,
}

#[derive(Debug)]
struct Open {
    offset: u64,
    first_record: u64,
    /// Its bytes so far, copied from the blocks (empty when the chunker
    /// has the [whole](Chunker::over) input).
    data: Vec<u8>,
    /// Its length so far, in bytes.
    len: usize,
    records: Vec<u32>,
    /// What its records weigh so far.
    weight: u64,
}

impl Open {
    /// The chunk goes on with `bytes`, copied unless `copy` is false.
    fn extend(&mut self, bytes: &[u8], copy: bool) {
        if copy {
            self.data.extend_from_slice(bytes);
        }
        self.len += bytes.len();
    }
}

impl Chunker {
    /// A chunker for one input.
    pub fn new(chunking: Chunking) -> Self {
        Chunker {
            chunking,
            consumed: 0,
            current: None,
            next_index: 0,
            next_record: 0,
            start_at_next_block: None,
            last_start: None,
            replay: Vec::new(),
            paired: false,
            whole: None,
        }
    }

    /// The blocks to come are consecutive slices of `whole`, the whole
    /// input from its first byte (a memory-mapped file): tasks are then
    /// slices of it too, their bytes never copied.
    pub fn over(mut self, whole: Bytes) -> Self {
        self.whole = Some(whole);
        self
    }

    /// With `paired`, records come in pairs, mates in turn (a paired
    /// job's interleaved stream): a chunk closes only before a first mate,
    /// so a pair is never split, and `max_records` counts pairs.
    pub fn in_pairs(mut self, paired: bool) -> Self {
        self.paired = paired;
        self
    }

    /// Cut chunk `i` exactly `lengths[i]` bytes long where given, whatever
    /// the bounds: a resumed job cuts the chunks its earlier runs recorded.
    /// (Recorded chunks end at record starts, so the cut falls on one.)
    pub fn replay(&mut self, lengths: Vec<Option<u64>>) {
        self.replay = lengths;
    }

    /// Change the byte bound from the next record on (adaptive chunking).
    pub fn set_max_bytes(&mut self, max_bytes: Option<u64>) {
        self.chunking.max_bytes = max_bytes;
    }

    /// Change the weight bound from the next record on (adaptive chunking
    /// of a weighed input).
    pub fn set_max_weight(&mut self, max_weight: Option<u64>) {
        self.chunking.max_weight = max_weight;
    }

    /// Bytes of the input consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Records seen so far.
    pub fn records(&self) -> u64 {
        self.next_record
    }

    /// Feed the next block, the starts the splitter reported for it
    /// (ascending offsets within the block, at most its length) and, when
    /// it weighs records, its `starts.len() + 1` weights (see
    /// `wrun_runtime::Splitter::split`; empty: no weights). Completed tasks
    /// are passed to `emit`.
    pub fn push(
        &mut self,
        block: &[u8],
        starts: &[u32],
        weights: &[u64],
        mut emit: impl FnMut(Task),
    ) -> Result<(), ChunkError> {
        let weight = |i: usize| weights.get(i).copied().unwrap_or(0);
        let mut cursor = 0;
        // The bytes before the first start weigh for the record open
        // before it: the one carried from the last block, if any.
        let carried = self
            .start_at_next_block
            .take()
            .map(|w| (0, w.saturating_add(weight(0))));
        if carried.is_none() {
            self.add_weight(weight(0));
        }
        let reported = starts
            .iter()
            .enumerate()
            .map(|(i, &s)| (s as usize, weight(i + 1)));
        for (start, weight) in carried.into_iter().chain(reported) {
            if start == block.len() {
                let carry = self.start_at_next_block.get_or_insert(0);
                *carry = carry.saturating_add(weight);
                continue;
            }
            let at = self.consumed + start as u64;
            if self.last_start.is_some_and(|last| at <= last) {
                // Reported twice: at the end of one block, again at the
                // start of the next.
                self.add_weight(weight);
                continue;
            }
            let copy = self.whole.is_none();
            if let Some(open) = &mut self.current {
                open.extend(&block[cursor..start], copy);
            }
            cursor = start;
            self.last_start = Some(at);
            self.begin_record(at, &mut emit)?;
            self.add_weight(weight);
        }
        let copy = self.whole.is_none();
        if let Some(open) = &mut self.current {
            open.extend(&block[cursor..], copy);
            check_size(open)?;
        }
        self.consumed += block.len() as u64;
        Ok(())
    }

    /// Count `weight` for the record being read (bytes before the first
    /// record weigh nothing).
    fn add_weight(&mut self, weight: u64) {
        if let Some(open) = &mut self.current {
            open.weight = open.weight.saturating_add(weight);
        }
    }

    /// The input ended: emit the last task, if any.
    pub fn finish(&mut self, mut emit: impl FnMut(Task)) {
        if let Some(open) = self.current.take() {
            emit(self.close(open));
        }
    }

    /// A record starts at absolute offset `at`.
    fn begin_record(&mut self, at: u64, emit: &mut impl FnMut(Task)) -> Result<(), ChunkError> {
        if let Some(open) = &self.current {
            check_size(open)?;
        }
        let between_pairs = !self.paired || self.next_record.is_multiple_of(2);
        if let Some(open) = self.current.as_ref().filter(|_| between_pairs) {
            let per_unit = if self.paired { 2 } else { 1 };
            let full_records = self
                .chunking
                .max_records
                .is_some_and(|max| open.records.len() as u64 >= max.saturating_mul(per_unit));
            let full_bytes = self
                .chunking
                .max_bytes
                .is_some_and(|max| open.len as u64 >= max);
            let full_weight = self
                .chunking
                .max_weight
                .is_some_and(|max| open.weight >= max);
            let full = match self.replay.get(self.next_index as usize).copied().flatten() {
                Some(len) => open.len as u64 >= len,
                None => full_records || full_bytes || full_weight,
            };
            if full {
                let open = self.current.take().expect("checked above");
                emit(self.close(open));
            }
        }
        // A chunk's expected size, reserved at once: growing by doubling
        // would copy an 8 MiB chunk nearly once more, into fresh pages.
        let expected = match self.replay.get(self.next_index as usize).copied().flatten() {
            Some(len) => Some(len),
            None => self.chunking.max_bytes,
        };
        let capacity = match self.whole {
            Some(_) => 0,
            None => expected.unwrap_or(0).min(MAX_RESERVED) as usize,
        };
        let open = self.current.get_or_insert_with(|| Open {
            offset: at,
            first_record: self.next_record,
            data: Vec::with_capacity(capacity),
            len: 0,
            records: Vec::new(),
            weight: 0,
        });
        // `check_size` keeps chunks below 4 GiB, so the offset fits.
        open.records.push((at - open.offset) as u32);
        self.next_record += 1;
        Ok(())
    }

    fn close(&mut self, open: Open) -> Task {
        let data = match &self.whole {
            // The chunk's bytes were in the blocks, which are `whole`'s.
            Some(whole) => {
                let start = open.offset as usize;
                whole.slice(start..start + open.len)
            }
            None => Bytes::from(open.data),
        };
        let task = Task {
            index: self.next_index,
            first_record: open.first_record,
            offset: open.offset,
            data,
            records: open.records,
            weight: open.weight,
        };
        self.next_index += 1;
        task
    }
}

fn check_size(open: &Open) -> Result<(), ChunkError> {
    if open.len as u64 > Chunking::MAX_CHUNK_BYTES {
        let last = open.records.last().copied().unwrap_or(0);
        return Err(ChunkError::RecordTooLarge {
            offset: open.offset + last as u64,
            limit: Chunking::MAX_CHUNK_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a test splitter weighs records.
    #[derive(Clone, Copy)]
    enum Weights<'a> {
        /// It reports none.
        None,
        /// Each record weighs this, reported in the block where it starts.
        AtStart(&'a [u64]),
        /// Every byte of a record weighs 1, reported block by block.
        PerByte,
    }

    /// Chunk `input` given record starts, feeding blocks of `block` bytes
    /// (a start at the end of a block is reported again at 0 of the next),
    /// once copying the blocks and once [over](Chunker::over) the whole
    /// input, which must make the same tasks.
    fn chunk(
        input: &[u8],
        starts: &[usize],
        weighs: Weights<'_>,
        block: usize,
        chunking: Chunking,
    ) -> Vec<Task> {
        let copied = chunk_with(Chunker::new(chunking), input, starts, weighs, block);
        let whole = Chunker::new(chunking).over(Bytes::copy_from_slice(input));
        let sliced = chunk_with(whole, input, starts, weighs, block);
        assert_eq!(copied, sliced, "block {block}");
        copied
    }

    fn chunk_with(
        mut chunker: Chunker,
        input: &[u8],
        starts: &[usize],
        weighs: Weights<'_>,
        block: usize,
    ) -> Vec<Task> {
        let mut tasks = Vec::new();
        let mut base = 0;
        for piece in input.chunks(block) {
            let local: Vec<u32> = starts
                .iter()
                .filter(|&&s| s >= base && s <= base + piece.len())
                .map(|&s| (s - base) as u32)
                .collect();
            let mut ends = local.iter().map(|&s| s as u64).chain([piece.len() as u64]);
            let mut from = 0;
            let mut segment = || {
                let end = ends.next().unwrap();
                (end - std::mem::replace(&mut from, end)) as u64
            };
            let weights: Vec<u64> = match weighs {
                Weights::None => Vec::new(),
                Weights::PerByte => (0..=local.len()).map(|_| segment()).collect(),
                Weights::AtStart(each) => [0]
                    .into_iter()
                    .chain(local.iter().map(|&s| {
                        let at = base + s as usize;
                        match (s as usize) < piece.len() {
                            true => each[starts.iter().position(|&x| x == at).unwrap()],
                            false => 0,
                        }
                    }))
                    .collect(),
            };
            chunker
                .push(piece, &local, &weights, |t| tasks.push(t))
                .unwrap();
            base += piece.len();
        }
        chunker.finish(|t| tasks.push(t));
        tasks
    }

    fn records(n: u64) -> Chunking {
        Chunking {
            max_records: Some(n),
            ..Chunking::default()
        }
    }

    #[test]
    fn groups_records_whatever_the_block_size() {
        let input = b"junk>a\n>bb\n>c\n>dddd\n";
        let starts = [4, 7, 11, 14];
        for block in 1..=input.len() {
            let tasks = chunk(input, &starts, Weights::None, block, records(2));
            assert_eq!(tasks.len(), 2, "block {block}");
            assert_eq!(&tasks[0].data[..], b">a\n>bb\n");
            assert_eq!(tasks[0].records, [0, 3]);
            assert_eq!(
                (tasks[0].index, tasks[0].offset, tasks[0].first_record),
                (0, 4, 0)
            );
            assert_eq!(&tasks[1].data[..], b">c\n>dddd\n");
            assert_eq!(tasks[1].records, [0, 3]);
            assert_eq!(
                (tasks[1].index, tasks[1].offset, tasks[1].first_record),
                (1, 11, 2)
            );
        }
    }

    #[test]
    fn byte_bound_closes_before_the_record_that_passes_it() {
        let input = b"aaaa\nb\ncc\nd\n";
        let chunking = Chunking {
            max_bytes: Some(6),
            ..Chunking::default()
        };
        let tasks = chunk(input, &[0, 5, 7, 10], Weights::None, 4, chunking);
        let data: Vec<&[u8]> = tasks.iter().map(|t| &t.data[..]).collect();
        assert_eq!(data, [&b"aaaa\nb\n"[..], b"cc\nd\n"]);
    }

    #[test]
    fn weight_bound_closes_before_the_record_that_passes_it() {
        let input = b">a\n>b\n>c\n>d\n>e\n";
        let starts = [0, 3, 6, 9, 12];
        let chunking = Chunking {
            max_weight: Some(8),
            ..Chunking::default()
        };
        for block in 1..=input.len() {
            let tasks = chunk(
                input,
                &starts,
                Weights::AtStart(&[5, 2, 1, 9, 0]),
                block,
                chunking,
            );
            let data: Vec<&[u8]> = tasks.iter().map(|t| &t.data[..]).collect();
            assert_eq!(
                data,
                [&b">a\n>b\n>c\n"[..], b">d\n", b">e\n"],
                "block {block}"
            );
            let weights: Vec<u64> = tasks.iter().map(|t| t.weight).collect();
            assert_eq!(weights, [8, 9, 0], "block {block}");
        }
    }

    #[test]
    fn weights_reported_in_parts_add_up_across_blocks() {
        // A byte weighing 1, reported block by block, cuts as bytes do.
        let input = b"aaaa\nb\ncc\nd\neeeeeee\nf\n";
        let starts = [0, 5, 7, 10, 12, 20];
        let by_bytes = chunk(
            input,
            &starts,
            Weights::None,
            4,
            Chunking {
                max_bytes: Some(6),
                ..Chunking::default()
            },
        );
        for block in 1..=input.len() {
            let by_weight = chunk(
                input,
                &starts,
                Weights::PerByte,
                block,
                Chunking {
                    max_weight: Some(6),
                    ..Chunking::default()
                },
            );
            let data = |tasks: &[Task]| -> Vec<Vec<u8>> {
                tasks.iter().map(|t| t.data.to_vec()).collect()
            };
            assert_eq!(data(&by_weight), data(&by_bytes), "block {block}");
            for task in &by_weight {
                assert_eq!(task.weight, task.data.len() as u64, "block {block}");
            }
        }
    }

    #[test]
    fn replayed_lengths_win_over_the_bounds() {
        let input = b">a\n>b\n>c\n>d\n>e\n";
        let mut chunker = Chunker::new(records(1));
        chunker.replay(vec![Some(6), None, Some(6)]);
        let mut tasks = Vec::new();
        chunker
            .push(input, &[0, 3, 6, 9, 12], &[], |t| tasks.push(t))
            .unwrap();
        chunker.finish(|t| tasks.push(t));
        let data: Vec<&[u8]> = tasks.iter().map(|t| &t.data[..]).collect();
        assert_eq!(data, [&b">a\n>b\n"[..], b">c\n", b">d\n>e\n"]);
    }

    #[test]
    fn repeated_and_end_of_block_starts_count_once() {
        let mut chunker = Chunker::new(records(10));
        let mut tasks = Vec::new();
        chunker
            .push(b"x\n", &[0, 2], &[], |t| tasks.push(t))
            .unwrap();
        chunker
            .push(b"y\n", &[0, 2], &[], |t| tasks.push(t))
            .unwrap();
        chunker.push(b"", &[0], &[], |t| tasks.push(t)).unwrap();
        chunker.finish(|t| tasks.push(t));
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].records, [0, 2]);
        assert_eq!(chunker.records(), 2);
    }

    #[test]
    fn a_pair_is_never_split() {
        // Mates in turn: a1 a2 b1 b2 c1 c2.
        let input = b"a1\na2\nb1\nb2\nc1\nc2\n";
        let starts = [0, 3, 6, 9, 12, 15];
        let cut = |chunking: Chunking, weights: Weights<'_>| -> Vec<Vec<u8>> {
            let mut chunker = Chunker::new(chunking).in_pairs(true);
            let mut tasks = Vec::new();
            let local: Vec<u32> = starts.iter().map(|&s| s as u32).collect();
            let weights: Vec<u64> = match weights {
                Weights::AtStart(each) => [0].iter().chain(each).copied().collect(),
                _ => Vec::new(),
            };
            chunker
                .push(input, &local, &weights, |t| tasks.push(t))
                .unwrap();
            chunker.finish(|t| tasks.push(t));
            tasks.iter().map(|t| t.data.to_vec()).collect()
        };
        // One pair per chunk: two records.
        assert_eq!(
            cut(records(1), Weights::None),
            [&b"a1\na2\n"[..], b"b1\nb2\n", b"c1\nc2\n"]
        );
        // A byte bound passed inside a pair closes after the pair.
        let bytes = Chunking {
            max_bytes: Some(4),
            ..Chunking::default()
        };
        assert_eq!(
            cut(bytes, Weights::None),
            [&b"a1\na2\n"[..], b"b1\nb2\n", b"c1\nc2\n"]
        );
        // Weights add both mates: 3 + 3 reaches 5 after the first pair.
        let weight = Chunking {
            max_weight: Some(5),
            ..Chunking::default()
        };
        assert_eq!(
            cut(weight, Weights::AtStart(&[3, 3, 1, 1, 1, 1])),
            [&b"a1\na2\n"[..], b"b1\nb2\nc1\nc2\n"]
        );
    }

    #[test]
    fn no_records_no_tasks() {
        assert!(chunk(b"\n\n", &[], Weights::None, 1, records(1)).is_empty());
        assert!(chunk(b"", &[], Weights::None, 1, records(1)).is_empty());
    }

    #[test]
    fn auto_chunking_keeps_every_slot_busy() {
        assert_eq!(Chunking::auto(Some(64 << 20), 2).max_bytes, Some(2 << 20));
        assert_eq!(Chunking::auto(Some(1000), 2).max_bytes, Some(4 << 10));
        assert_eq!(Chunking::auto(None, 8).max_bytes, Some(1 << 20));
    }
}
