//! Why the dashboard cannot start.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the dashboard cannot start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// A non-loopback address without `--token-file`.
    #[error(
        "refusing to serve the dashboard on {0} without a token: anyone who can reach it could \
         read every job. Bind to a loopback address (127.0.0.1:8080) or pass --token-file FILE"
    )]
    NoToken(SocketAddr),
    /// The token file cannot be read.
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token file holds no usable token.
    #[error("the token file {path} {problem}")]
    BadToken {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, in words ("is empty").
        problem: &'static str,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("the dashboard on {addr} stopped: {source}")]
    Serve {
        /// The address it served.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
