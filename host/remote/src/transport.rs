//! ZeroMQ, in one place: endpoints, sockets with wrun's options, and the
//! waker that lets other threads interrupt a socket poll.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;

use crate::protocol::MAX_MESSAGE;

/// A socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The endpoint is not `tcp://HOST:PORT`.
    #[error("{0:?} is not an endpoint of the form tcp://HOST:PORT")]
    Endpoint(String),
    /// ZeroMQ refused (address in use, unresolvable host, ...).
    #[error("{endpoint}: {source}")]
    Zmq {
        /// The endpoint concerned.
        endpoint: String,
        /// What ZeroMQ said.
        #[source]
        source: zmq::Error,
    },
}

/// A `tcp://HOST:PORT` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The endpoint as given.
    pub url: String,
    /// Its host, without an IPv6 address's brackets.
    pub host: String,
}

impl Endpoint {
    /// Parse `tcp://HOST:PORT` (`*` for the port: any free one).
    pub fn parse(url: &str) -> Result<Endpoint, TransportError> {
        let bad = || TransportError::Endpoint(url.to_owned());
        let rest = url.strip_prefix("tcp://").ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        // `*`: any free port (for a broker; it reports the one it got).
        if host.is_empty() || (port != "*" && port.parse::<u16>().is_err()) {
            return Err(bad());
        }
        Ok(Endpoint {
            url: url.to_owned(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        })
    }

    /// Whether only this machine can reach it.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

fn zmq_error(endpoint: &str) -> impl FnOnce(zmq::Error) -> TransportError + '_ {
    move |source| TransportError::Zmq {
        endpoint: endpoint.to_owned(),
        source,
    }
}

/// The broker's socket, bound to `endpoint`.
pub fn router(context: &zmq::Context, endpoint: &Endpoint) -> Result<zmq::Socket, TransportError> {
    let error = zmq_error(&endpoint.url);
    let socket = context
        .socket(zmq::ROUTER)
        .map_err(zmq_error(&endpoint.url))?;
    configure(&socket)
        // Sending to a peer that is gone fails instead of vanishing.
        .and_then(|()| socket.set_router_mandatory(true))
        // A peer that floods (key or not) is read no faster than the
        // broker handles its messages: libzmq stops reading its connection.
        .and_then(|()| socket.set_rcvhwm(RECEIVE_QUEUE))
        .and_then(|()| socket.bind(&endpoint.url))
        .map_err(error)?;
    Ok(socket)
}

/// A node's or client's socket, connecting to `endpoint`; libzmq
/// reconnects on its own, backing off exponentially up to 5 s.
pub fn dealer(context: &zmq::Context, endpoint: &Endpoint) -> Result<zmq::Socket, TransportError> {
    let socket = unconnected_dealer(context, endpoint)?;
    socket
        .connect(&endpoint.url)
        .map_err(zmq_error(&endpoint.url))?;
    Ok(socket)
}

/// A DEALER connected to `endpoint`, with a [`ConnectWatch`] on it that
/// tells "nothing listens there" from "connected, but no answer".
///
/// # Errors
///
/// As [`dealer`].
pub fn watched_dealer(
    context: &zmq::Context,
    endpoint: &Endpoint,
) -> Result<(zmq::Socket, ConnectWatch), TransportError> {
    let socket = unconnected_dealer(context, endpoint)?;
    let watch = ConnectWatch::new(context, &socket).map_err(zmq_error(&endpoint.url))?;
    socket
        .connect(&endpoint.url)
        .map_err(zmq_error(&endpoint.url))?;
    Ok((socket, watch))
}

fn unconnected_dealer(
    context: &zmq::Context,
    endpoint: &Endpoint,
) -> Result<zmq::Socket, TransportError> {
    let socket = context
        .socket(zmq::DEALER)
        .map_err(zmq_error(&endpoint.url))?;
    configure(&socket)
        .and_then(|()| socket.set_reconnect_ivl(100))
        .and_then(|()| socket.set_reconnect_ivl_max(5000))
        .map_err(zmq_error(&endpoint.url))?;
    Ok(socket)
}

/// Whether a socket ever made a connection: libzmq's socket monitor
/// (`zmq_socket_monitor`) reports each TCP connection it makes as
/// `ZMQ_EVENT_CONNECTED`, over an in-process pair socket.
pub struct ConnectWatch {
    events: zmq::Socket,
    connected: bool,
}

impl std::fmt::Debug for ConnectWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectWatch")
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl ConnectWatch {
    /// Watch `socket`, which has not connected yet.
    fn new(context: &zmq::Context, socket: &zmq::Socket) -> zmq::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let address = format!(
            "inproc://wrun-connect-watch-{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        socket.monitor(&address, zmq::SocketEvent::CONNECTED as i32)?;
        let events = context.socket(zmq::PAIR)?;
        events.set_linger(0)?;
        events.connect(&address)?;
        Ok(ConnectWatch {
            events,
            connected: false,
        })
    }

    /// Whether the socket has connected so far (a TCP connection to a
    /// listener, whatever was said over it).
    pub fn connected(&mut self) -> bool {
        // Each event: a frame of the event number (u16) and a value (u32),
        // in native byte order, then a frame with the address.
        while let Ok(frames) = self.events.recv_multipart(zmq::DONTWAIT) {
            let event = frames
                .first()
                .filter(|frame| frame.len() >= 2)
                .map(|frame| u16::from_ne_bytes([frame[0], frame[1]]));
            self.connected |= event == Some(zmq::SocketEvent::CONNECTED.to_raw());
        }
        self.connected
    }
}

/// Messages queued per peer at the broker before libzmq stops reading it.
const RECEIVE_QUEUE: i32 = 1000;

fn configure(socket: &zmq::Socket) -> zmq::Result<()> {
    // A larger frame closes the connection before it is read.
    socket.set_maxmsgsize(MAX_MESSAGE as i64)?;
    // Every flow is credit-bound at the application level.
    socket.set_sndhwm(0)?;
    socket.set_rcvhwm(0)?;
    socket.set_linger(0)
}

/// Wakes a thread blocked in a poll that includes its [`WakeReceiver`].
/// Wakes coalesce: many wakes before the receiver drains cost one message.
pub struct Waker {
    socket: Mutex<zmq::Socket>,
    armed: AtomicBool,
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

impl Waker {
    /// Wake the receiving thread, unless a wake is pending already.
    pub fn wake(&self) {
        if !self.armed.swap(true, Ordering::AcqRel) {
            let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
            if socket.send(&[][..], zmq::DONTWAIT).is_err() {
                // Not sent: the next wake must try again.
                self.armed.store(false, Ordering::Release);
            }
        }
    }
}

/// The polled end of a [`Waker`].
pub struct WakeReceiver {
    socket: zmq::Socket,
    waker: Arc<Waker>,
}

impl std::fmt::Debug for WakeReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WakeReceiver")
    }
}

impl WakeReceiver {
    /// The socket to include in the poll.
    pub fn socket(&self) -> &zmq::Socket {
        &self.socket
    }

    /// Consume pending wakes. Call after every poll, readable or not,
    /// and before draining what the wakers announced, so that a wake after
    /// the drain is not lost.
    pub fn drain(&self) {
        self.waker.armed.store(false, Ordering::Release);
        while self.socket.recv_bytes(zmq::DONTWAIT).is_ok() {}
    }
}

/// A waker and its receiver, over an in-process socket pair.
pub fn waker(context: &zmq::Context) -> Result<(Arc<Waker>, WakeReceiver), TransportError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "inproc://wrun-wake-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let pull = context.socket(zmq::PULL).map_err(zmq_error(&name))?;
    pull.bind(&name).map_err(zmq_error(&name))?;
    let push = context.socket(zmq::PUSH).map_err(zmq_error(&name))?;
    push.set_linger(0)
        // A wake never fails for want of room.
        .and_then(|()| push.set_sndhwm(0))
        .and_then(|()| push.connect(&name))
        .map_err(zmq_error(&name))?;
    let waker = Arc::new(Waker {
        socket: Mutex::new(push),
        armed: AtomicBool::new(false),
    });
    Ok((
        waker.clone(),
        WakeReceiver {
            socket: pull,
            waker,
        },
    ))
}

/// A channel into a polling thread: every send wakes it.
#[derive(Debug)]
pub struct Outbox<T> {
    sender: Sender<T>,
    waker: Arc<Waker>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Outbox {
            sender: self.sender.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl<T> Outbox<T> {
    /// Send through `sender`, waking `waker`'s receiver each time.
    pub fn new(sender: Sender<T>, waker: Arc<Waker>) -> Self {
        Outbox { sender, waker }
    }

    /// Send, and wake the receiving thread. False once it is gone.
    pub fn send(&self, item: T) -> bool {
        let sent = self.sender.send(item).is_ok();
        self.waker.wake();
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_and_loopback_is_recognised() {
        let local = Endpoint::parse("tcp://127.0.0.1:7878").unwrap();
        assert!(local.is_loopback());
        assert!(Endpoint::parse("tcp://[::1]:1").unwrap().is_loopback());
        assert!(Endpoint::parse("tcp://localhost:1").unwrap().is_loopback());
        assert!(!Endpoint::parse("tcp://0.0.0.0:7878").unwrap().is_loopback());
        assert!(!Endpoint::parse("tcp://node7:7878").unwrap().is_loopback());
        assert!(Endpoint::parse("tcp://127.0.0.1:*").is_ok());
        for bad in ["127.0.0.1:7878", "tcp://:1", "tcp://a:b", "ipc:///tmp/x"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
