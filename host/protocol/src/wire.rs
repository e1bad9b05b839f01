//! Sealed frames: how every message is authenticated on the wire.
//!
//! The vendored libzmq has no CURVE, so wrun authenticates at the
//! application layer. A frame is
//!
//! ```text
//! version u8 | kind u8 | session [16] | counter u64 LE | payload | tag [32]
//! ```
//!
//! where `tag` is keyed blake3 over everything before it. The key depends on
//! the kind:
//!
//! * **hello** (peer → broker) is sealed with a key derived from the cluster
//!   key; `session` is a nonce the peer chose for this connection;
//! * **welcome** (broker → peer) likewise, carrying the broker's own nonce,
//!   and only accepted for the nonce the peer is waiting on;
//! * **session** frames, everything after, are sealed with a key derived
//!   from the cluster key and *both* nonces, one key per direction, and a
//!   counter that must grow: a replayed frame (same session, old counter), a
//!   frame from an earlier session (different nonces, different key) or a
//!   reflected one (other direction's key) fails to open.
//!
//! A frame that fails to open reaches no application code: the receiver
//! only counts and logs it.

use crate::key::ClusterKey;

/// The frame layout's version; bumped when the layout changes.
pub const WIRE_VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER: usize = 1 + 1 + 16 + 8;
/// Bytes of the authentication tag.
pub const TAG: usize = 32;

/// A per-connection random nonce.
pub type Nonce = [u8; 16];

/// What a frame is, which decides the key that seals it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A peer's first message, sealed with the cluster's hello key.
    Hello = 1,
    /// The broker's answer to a hello, sealed with the welcome key.
    Welcome = 2,
    /// Any later message, sealed with the session key of its direction.
    Session = 3,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Too short to be a frame, or an unknown version or kind.
    #[error("not a wrun frame")]
    Garbage,
    /// The tag does not match: another key, or tampering.
    #[error("bad authentication tag (a wrong cluster key, or a forged message)")]
    BadTag,
    /// The counter did not grow: a replay.
    #[error("replayed message (counter {counter}, already saw {last})")]
    Replay {
        /// The frame's counter.
        counter: u64,
        /// The highest counter opened before it.
        last: u64,
    },
    /// A frame of an unexpected kind or session.
    #[error("unexpected {0:?} frame")]
    Unexpected(Kind),
}

/// The unauthenticated header of a frame, read to decide how to open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the frame claims to be.
    pub kind: Kind,
    /// The session it claims to belong to (the sender's nonce).
    pub session: Nonce,
    /// Its position in its direction of the session, from 1.
    pub counter: u64,
}

impl Header {
    /// Read a frame's header; nothing about it is trusted yet.
    pub fn peek(frame: &[u8]) -> Result<Header, WireError> {
        if frame.len() < HEADER + TAG || frame[0] != WIRE_VERSION {
            return Err(WireError::Garbage);
        }
        let kind = match frame[1] {
            1 => Kind::Hello,
            2 => Kind::Welcome,
            3 => Kind::Session,
            _ => return Err(WireError::Garbage),
        };
        Ok(Header {
            kind,
            session: frame[2..18].try_into().expect("16 bytes"),
            counter: u64::from_le_bytes(frame[18..26].try_into().expect("8 bytes")),
        })
    }
}

/// A 32-byte key for one purpose, derived from the cluster key.
#[derive(Clone)]
pub struct FrameKey([u8; 32]);

impl std::fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameKey(..)")
    }
}

impl FrameKey {
    fn derive(cluster: &ClusterKey, label: &[u8], nonces: &[&Nonce]) -> FrameKey {
        let mut hasher = blake3::Hasher::new_keyed(cluster.as_bytes());
        hasher.update(b"wrun frame key\0").update(label);
        for nonce in nonces {
            hasher.update(&nonce[..]);
        }
        FrameKey(*hasher.finalize().as_bytes())
    }

    /// The key of hello frames.
    pub fn hello(cluster: &ClusterKey) -> FrameKey {
        FrameKey::derive(cluster, b"hello", &[])
    }

    /// The key of welcome frames.
    pub fn welcome(cluster: &ClusterKey) -> FrameKey {
        FrameKey::derive(cluster, b"welcome", &[])
    }

    /// The session keys for a peer nonce and a broker nonce: (peer → broker,
    /// broker → peer).
    pub fn session(cluster: &ClusterKey, peer: &Nonce, broker: &Nonce) -> (FrameKey, FrameKey) {
        (
            FrameKey::derive(cluster, b"to broker", &[peer, broker]),
            FrameKey::derive(cluster, b"to peer", &[peer, broker]),
        )
    }

    fn tag(&self, sealed: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.0, sealed)
    }
}

/// Seal `payload` as one frame.
pub fn seal(key: &FrameKey, kind: Kind, session: &Nonce, counter: u64, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER + payload.len() + TAG);
    frame.push(WIRE_VERSION);
    frame.push(kind as u8);
    frame.extend_from_slice(session);
    frame.extend_from_slice(&counter.to_le_bytes());
    frame.extend_from_slice(payload);
    let tag = key.tag(&frame);
    frame.extend_from_slice(tag.as_bytes());
    frame
}

/// Check a frame's tag with `key`; its header and payload if it is sound.
pub fn open<'a>(key: &FrameKey, frame: &'a [u8]) -> Result<(Header, &'a [u8]), WireError> {
    let header = Header::peek(frame)?;
    let (sealed, tag) = frame.split_at(frame.len() - TAG);
    // `blake3::Hash` compares in constant time.
    if key.tag(sealed) != blake3::Hash::from_bytes(tag.try_into().expect("32 bytes")) {
        return Err(WireError::BadTag);
    }
    Ok((header, &sealed[HEADER..]))
}

/// One direction of a session: seals outgoing frames with a growing
/// counter.
#[derive(Debug)]
pub struct Sealer {
    key: FrameKey,
    session: Nonce,
    next: u64,
}

impl Sealer {
    /// Seal frames of session `session` with `key`, counting from 1.
    pub fn new(key: FrameKey, session: Nonce) -> Sealer {
        Sealer {
            key,
            session,
            next: 1,
        }
    }

    /// Seal `payload` as the session's next frame.
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let frame = seal(&self.key, Kind::Session, &self.session, self.next, payload);
        self.next += 1;
        frame
    }
}

/// The other direction: opens incoming frames, refusing replays.
#[derive(Debug)]
pub struct Opener {
    key: FrameKey,
    session: Nonce,
    last: u64,
}

impl Opener {
    /// Open frames of session `session` sealed with `key`.
    pub fn new(key: FrameKey, session: Nonce) -> Opener {
        Opener {
            key,
            session,
            last: 0,
        }
    }

    /// The payload of a sound session frame whose counter is new.
    pub fn open<'a>(&mut self, frame: &'a [u8]) -> Result<&'a [u8], WireError> {
        let (header, payload) = open(&self.key, frame)?;
        if header.kind != Kind::Session || header.session != self.session {
            return Err(WireError::Unexpected(header.kind));
        }
        if header.counter <= self.last {
            return Err(WireError::Replay {
                counter: header.counter,
                last: self.last,
            });
        }
        self.last = header.counter;
        Ok(payload)
    }
}

/// A fresh random nonce.
pub fn nonce() -> Nonce {
    let mut nonce = [0; 16];
    getrandom::fill(&mut nonce).expect("the operating system gives randomness");
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cluster: &ClusterKey) -> (Sealer, Opener) {
        let (peer, broker) = ([1; 16], [2; 16]);
        let (up, _) = FrameKey::session(cluster, &peer, &broker);
        (Sealer::new(up.clone(), peer), Opener::new(up, peer))
    }

    #[test]
    fn a_sealed_frame_opens_once() {
        let key = ClusterKey::from_bytes([7; 32]);
        let (mut sealer, mut opener) = pair(&key);
        let first = sealer.seal(b"credit 4");
        let second = sealer.seal(b"credit 5");
        assert_eq!(opener.open(&first).unwrap(), b"credit 4");
        assert_eq!(opener.open(&second).unwrap(), b"credit 5");
        assert_eq!(
            opener.open(&first),
            Err(WireError::Replay {
                counter: 1,
                last: 2
            })
        );
    }

    #[test]
    fn forged_tampered_and_foreign_frames_are_dropped() {
        let key = ClusterKey::from_bytes([7; 32]);
        let (mut sealer, mut opener) = pair(&key);
        let mut frame = sealer.seal(b"results");
        frame[HEADER] ^= 1;
        assert_eq!(opener.open(&frame), Err(WireError::BadTag));
        // Sealed with another cluster key.
        let (mut stranger, _) = pair(&ClusterKey::from_bytes([8; 32]));
        assert_eq!(opener.open(&stranger.seal(b"x")), Err(WireError::BadTag));
        // The broker's own direction reflected back.
        let (_, down) = FrameKey::session(&key, &[1; 16], &[2; 16]);
        let reflected = Sealer::new(down, [1; 16]).seal(b"x");
        assert_eq!(opener.open(&reflected), Err(WireError::BadTag));
        // A different session's frames, with the same cluster key.
        let (other, _) = FrameKey::session(&key, &[1; 16], &[3; 16]);
        let earlier = Sealer::new(other, [1; 16]).seal(b"x");
        assert_eq!(opener.open(&earlier), Err(WireError::BadTag));
        assert_eq!(opener.open(b"short"), Err(WireError::Garbage));
    }
}
