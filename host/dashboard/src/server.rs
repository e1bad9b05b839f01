//! The HTTP server: the loopback rule, binding, and serving the routes
//! behind the token check on a small tokio runtime of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::middleware;

use crate::api;
use crate::auth::{self, Token};
use crate::error::DashboardError;
use crate::source::Source;

/// Threads that read the journal for requests, at most.
const READERS: usize = 4;

/// How the dashboard listens.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (port 0: any free one).
    pub bind: SocketAddr,
    /// The token every request must carry; `None`: none, which only a
    /// loopback address allows.
    pub token: Option<Token>,
}

/// A bound dashboard, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    token: Option<Token>,
    source: Arc<dyn Source>,
}

impl std::fmt::Debug for dyn Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({})", self.place())
    }
}

impl Server {
    /// Bind `config.bind` to serve `source`.
    ///
    /// # Errors
    ///
    /// [`DashboardError::NoToken`] for an address other than loopback
    /// without a token (before anything is bound);
    /// [`DashboardError::Bind`].
    pub fn bind(config: Config, source: Arc<dyn Source>) -> Result<Server, DashboardError> {
        if config.token.is_none() && !config.bind.ip().is_loopback() {
            return Err(DashboardError::NoToken(config.bind));
        }
        let bind_error = |source| DashboardError::Bind {
            addr: config.bind,
            source,
        };
        let listener = std::net::TcpListener::bind(config.bind).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Server {
            listener,
            addr,
            token: config.token,
            source,
        })
    }

    /// The address bound, with the port chosen when it was 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until the process ends, on this thread (a one-thread tokio
    /// runtime, with at most [`READERS`] threads reading the journal).
    ///
    /// # Errors
    ///
    /// [`DashboardError::Serve`] when the runtime cannot start or the
    /// listener fails.
    pub fn run(self) -> Result<(), DashboardError> {
        let addr = self.addr;
        let serve_error = |source| DashboardError::Serve { addr, source };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(READERS)
            .thread_name("wrun-dashboard")
            .build()
            .map_err(serve_error)?;
        let app =
            api::routes(self.source).layer(middleware::from_fn_with_state(self.token, auth::check));
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener).map_err(serve_error)?;
            axum::serve(listener, app).await.map_err(serve_error)
        })
    }

    /// Serve on a thread of its own (the broker's), logging why it stops.
    pub fn spawn(self) {
        std::thread::Builder::new()
            .name("wrun-dashboard".into())
            .spawn(move || {
                if let Err(error) = self.run() {
                    tracing::error!(target: "wrun::dashboard", "{error}");
                }
            })
            .expect("a thread starts");
    }
}
