//! wrun's web dashboard: jobs, their chunks, and a broker's nodes and
//! allocation queues as live pages, a JSON API and Prometheus metrics,
//! read-only.
//!
//! * [`Source`] is what the dashboard reads: [`LocalSource`], a
//!   `WRUN_HOME`'s journal (`wrun dashboard`), or the broker's
//!   (`wrun broker --http`, implemented in `wrun-remote`).
//! * [`Server`] binds and serves it, refusing an address other than
//!   loopback without a [`Token`] (module `auth`: bearer header, or the
//!   cookie a one-time `?token=` visit sets).
//! * Module `api` holds the routes: the JSON API answers the shapes of the
//!   command line's `--json` from the same `wrun_jobs::views` types;
//!   [`metrics`] renders `/metrics`; [`plot`] draws the chunk timeline and
//!   the throughput as SVG; module `assets` embeds the page, which polls
//!   the API every second and redraws without reloading.

mod api;
mod assets;
mod auth;
mod error;
pub mod metrics;
pub mod plot;
mod server;
mod source;

pub use auth::{COOKIE_NAME, Token};
pub use error::DashboardError;
pub use server::{Config, Server};
pub use source::{LocalSource, Source, Unanswered};
