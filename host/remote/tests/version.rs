//! A peer of another protocol version is refused, by name, before its
//! hello is decoded.

use std::sync::Arc;
use std::time::Duration;

use wrun_remote::broker::{Broker, BrokerConfig, ClientLink, Service};
use wrun_remote::key::ClusterKey;
use wrun_remote::protocol::{
    self, Control, Hello, PROTOCOL_VERSION, Reply, Resume, Role, Submission, Welcome,
};
use wrun_remote::transport::Endpoint;
use wrun_remote::wire::{self, FrameKey, Kind};
use wrun_store::BlobStore;

/// A service that runs nothing: this test never gets past the hello.
struct Nothing;

impl Service for Nothing {
    fn submit(&self, _: Submission, _: ClientLink) {}
    fn resume(&self, _: Resume, _: ClientLink) {}
    fn control(&self, _: Control) -> Reply {
        Reply::Nodes(Vec::new())
    }
}

#[test]
fn a_peer_of_another_version_is_refused_with_both_versions_named() {
    let home = tempfile::tempdir().unwrap();
    let key = ClusterKey::loopback_default();
    let config = BrokerConfig {
        bind: Endpoint::parse("tcp://127.0.0.1:*").unwrap(),
        key: key.clone(),
        heartbeat: Duration::from_millis(200),
    };
    let store = Arc::new(BlobStore::open_local(home.path()).unwrap());
    let (broker, _handle) = Broker::bind(config, store).unwrap();
    let endpoint = broker.endpoint();
    std::thread::spawn(move || broker.run(Arc::new(Nothing)));

    let old = PROTOCOL_VERSION - 1;
    let context = zmq::Context::new();
    let socket = context.socket(zmq::DEALER).unwrap();
    socket.set_linger(0).unwrap();
    socket.connect(&endpoint).unwrap();
    let nonce = wire::nonce();
    let hello = Hello {
        version: old,
        role: Role::Client,
    };
    let frame = wire::seal(
        &FrameKey::hello(&key),
        Kind::Hello,
        &nonce,
        0,
        &protocol::encode(&hello),
    );
    socket.send(frame, 0).unwrap();
    // Bounded: the broker answers a hello at once.
    assert_eq!(socket.poll(zmq::POLLIN, 30_000).unwrap(), 1, "no welcome");
    let frame = socket.recv_bytes(0).unwrap();
    let (header, payload) = wire::open(&FrameKey::welcome(&key), &frame).unwrap();
    assert_eq!(header.kind, Kind::Welcome);
    let Welcome::Refused(why) = protocol::decode::<Welcome>(payload).unwrap() else {
        panic!("a peer of protocol {old} was accepted");
    };
    assert!(
        why.contains(&format!("protocol {PROTOCOL_VERSION}"))
            && why.contains(&format!("this peer {old}")),
        "{why}"
    );
}
