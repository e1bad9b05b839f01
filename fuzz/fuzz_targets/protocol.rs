//! The cluster protocol's decoders never panic or over-allocate on any
//! bytes a peer can send, and what they accept round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wrun_protocol::key::ClusterKey;
use wrun_protocol::protocol::{Hello, ToBroker, ToPeer, Welcome, decode, encode};
use wrun_protocol::wire::{self, FrameKey, Header, Opener};

fn round_trips<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(message) = decode::<T>(data) {
        assert_eq!(decode::<T>(&encode(&message)), Ok(message));
    }
}

fuzz_target!(|data: &[u8]| {
    round_trips::<ToBroker>(data);
    round_trips::<ToPeer>(data);
    round_trips::<Hello>(data);
    round_trips::<Welcome>(data);
    // Frames: a header is read without trust; no frame opens without the
    // key that sealed it.
    let _ = Header::peek(data);
    let key = ClusterKey::from_bytes([7; 32]);
    let _ = wire::open(&FrameKey::hello(&key), data);
    let (up, _) = FrameKey::session(&key, &[1; 16], &[2; 16]);
    let mut opener = Opener::new(up, [1; 16]);
    assert!(opener.open(data).is_err() || data.len() >= wire::HEADER + wire::TAG);
});
