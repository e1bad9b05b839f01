//! Compressed inputs: which compression a stream's first bytes name, and a
//! streaming decoder for each one wrun reads (gzip, bzip2, xz, zstd, as
//! seqkit does); the others are named, not mistaken for their format.

use std::io::{self, BufRead, Read};

use flate2::bufread::GzDecoder;

use crate::streams::Notices;

/// How an input is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Not at all (as far as its magic bytes say).
    None,
    /// gzip, one member or several (BGZF is several).
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz (LZMA2).
    Xz,
    /// Zstandard.
    Zstd,
    /// A compression or archive wrun does not read, as messages say what
    /// the input is (`lz4-compressed`, `a zip archive`).
    Unread(&'static str),
}

/// Magic bytes at the start of a stream, and what they mean. Sources: RFC
/// 1952 (gzip), the bzip2 and xz file format specifications, RFC 8878
/// (zstd), the LZ4 frame format, PKWARE's APPNOTE (zip), 7-Zip's format.
const MAGIC: [(&[u8], Compression); 8] = [
    (&[0x1f, 0x8b], Compression::Gzip),
    (b"BZh", Compression::Bzip2),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
    (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
    (
        &[0x04, 0x22, 0x4d, 0x18],
        Compression::Unread("lz4-compressed"),
    ),
    (b"PK\x03\x04", Compression::Unread("a zip archive")),
    (
        &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c],
        Compression::Unread("a 7z archive"),
    ),
    (
        &[0x1f, 0x9d],
        Compression::Unread("compressed with compress (.Z)"),
    ),
];

impl Compression {
    /// The compression `head` (a stream's first bytes) starts with.
    pub(crate) fn sniff(head: &[u8]) -> Compression {
        MAGIC
            .iter()
            .find(|(magic, _)| head.starts_with(magic))
            .map_or(Compression::None, |&(_, compression)| compression)
    }

    /// Its name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Unread(name) => name,
        }
    }

    /// A decoder of `compressed`; `None` for plain or unread streams.
    ///
    /// # Errors
    ///
    /// The zstd decoder's, when it cannot be created.
    /// What the decoder notices and goes on past (bytes after the last gzip
    /// member) goes to `notices`.
    pub(crate) fn decoder<R: BufRead + Send + 'static>(
        self,
        compressed: R,
        notices: Notices,
    ) -> io::Result<Option<Box<dyn Read + Send>>> {
        Ok(Some(match self {
            Compression::None | Compression::Unread(_) => return Ok(None),
            Compression::Gzip => Box::new(GzipMembers::new(compressed, notices)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(compressed)),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(compressed)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(compressed)?),
        }))
    }
}

/// Every gzip member of a stream, one after the other, as `gzip -d` reads
/// them: zero padding after the last member (tape blocks, some
/// uploaders) ends the stream silently; any other trailing bytes end it
/// with a notice, not an error.
struct GzipMembers<R: BufRead> {
    /// The member being read, or the stream between members.
    state: Members<R>,
    notices: Notices,
}

enum Members<R: BufRead> {
    Member(GzDecoder<R>),
    Between(R),
    Done,
}

impl<R: BufRead> GzipMembers<R> {
    fn new(stream: R, notices: Notices) -> Self {
        GzipMembers {
            state: Members::Member(GzDecoder::new(stream)),
            notices,
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, Members::Done) {
                Members::Done => return Ok(0),
                Members::Member(mut member) => {
                    let n = member.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        self.state = Members::Member(member);
                        return Ok(n);
                    }
                    self.state = Members::Between(member.into_inner());
                }
                Members::Between(mut stream) => {
                    let head = stream.fill_buf()?;
                    if head.is_empty() {
                        return Ok(0);
                    }
                    if head.starts_with(&[0x1f, 0x8b]) || (head.len() == 1 && head[0] == 0x1f) {
                        self.state = Members::Member(GzDecoder::new(stream));
                        continue;
                    }
                    let trailing = trailing(&mut stream)?;
                    if let Some(bytes) = trailing {
                        self.notices.push(format!(
                            "{bytes} bytes after the last gzip member are not gzip: ignored, as \
                             `gzip -d` does"
                        ));
                    }
                    return Ok(0);
                }
            }
        }
    }
}

/// Read what follows the last member: `None` if it is all zero bytes
/// (padding), else how many bytes there are.
fn trailing(stream: &mut impl BufRead) -> io::Result<Option<u64>> {
    let (mut total, mut zeros) = (0u64, true);
    loop {
        let chunk = stream.fill_buf()?;
        if chunk.is_empty() {
            return Ok((!zeros).then_some(total));
        }
        zeros &= chunk.iter().all(|&b| b == 0);
        let n = chunk.len();
        total += n as u64;
        stream.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(stream: Vec<u8>) -> (io::Result<Vec<u8>>, Vec<String>) {
        let notices = Notices::default();
        let compression = Compression::sniff(&stream);
        let mut decoder = compression
            .decoder(io::Cursor::new(stream), notices.clone())
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        let result = decoder.read_to_end(&mut out).map(|_| out);
        (result, notices.take())
    }

    #[test]
    fn gzip_members_padding_and_trailing_bytes_read_as_gzip_d_does() {
        let mut stream = gzip(b">a\nAC\n");
        stream.extend(gzip(b">b\nGT\n"));
        let (out, notices) = read_all(stream.clone());
        assert_eq!(out.unwrap(), b">a\nAC\n>b\nGT\n");
        assert!(notices.is_empty());

        let mut padded = stream.clone();
        padded.extend([0; 512]);
        let (out, notices) = read_all(padded);
        assert_eq!(out.unwrap(), b">a\nAC\n>b\nGT\n");
        assert!(notices.is_empty(), "{notices:?}");

        let mut garbage = stream;
        garbage.extend(b"junk!");
        let (out, notices) = read_all(garbage);
        assert_eq!(out.unwrap(), b">a\nAC\n>b\nGT\n");
        assert_eq!(notices.len(), 1);
        assert!(notices[0].starts_with("5 bytes after the last gzip member"));
    }

    #[test]
    fn a_truncated_gzip_member_is_an_error() {
        let stream = gzip(&[b'A'; 10_000]);
        let (out, _) = read_all(stream[..stream.len() / 2].to_vec());
        assert!(out.is_err());
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&data).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        for (stream, name) in [
            (gzip(&data), "gzip"),
            (bz.finish().unwrap(), "bzip2"),
            (xz.finish().unwrap(), "xz"),
            (zstd::encode_all(&data[..], 1).unwrap(), "zstd"),
        ] {
            assert_eq!(Compression::sniff(&stream).name(), name);
            assert_eq!(read_all(stream).0.unwrap(), data, "{name}");
        }
    }

    #[test]
    fn unread_compressions_are_named() {
        assert_eq!(
            Compression::sniff(&[0x04, 0x22, 0x4d, 0x18, 0]),
            Compression::Unread("lz4-compressed")
        );
        assert_eq!(Compression::sniff(b">seq\nACGT"), Compression::None);
    }
}
