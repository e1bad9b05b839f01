//! `wrun dashboard` and the dashboard of `wrun broker --http`: the
//! arguments turned into a bound `wrun_dashboard::Server`; the pages, API
//! and metrics are that crate's.

use std::net::SocketAddr;
use std::sync::Arc;

use wrun_dashboard::{Config, DashboardError, LocalSource, Server, Source, Token};
use wrun_jobs::Home;

use crate::args::{DashboardArgs, TokenArgs};
use crate::exit::{Code, Fail};

/// `wrun dashboard`: serve this user's journal until killed.
pub(crate) fn local(args: DashboardArgs) -> Result<(), Fail> {
    let source = Arc::new(LocalSource::new(Home::from_env()?));
    let server = bind(args.bind, &args.token, source)?;
    server.run().map_err(fail)
}

/// Bind a dashboard of `source` on `addr` and say where it is (never with
/// its token).
///
/// # Errors
///
/// [`Code::Usage`]: an address other than loopback without a token, a
/// token file that cannot be read or holds none, an address in use.
pub(crate) fn bind(
    addr: SocketAddr,
    token: &TokenArgs,
    source: Arc<dyn Source>,
) -> Result<Server, Fail> {
    let token = match &token.token_file {
        Some(path) => Some(Token::read(path).map_err(fail)?),
        None => None,
    };
    let guarded = token.is_some();
    let server = Server::bind(Config { bind: addr, token }, source).map_err(fail)?;
    let how = match guarded {
        true => " (token required)",
        false => "",
    };
    eprintln!("wrun: dashboard on http://{}/{how}", server.local_addr());
    Ok(server)
}

fn fail(error: DashboardError) -> Fail {
    let code = match error {
        DashboardError::Serve { .. } => Code::Internal,
        _ => Code::Usage,
    };
    Fail::new(code, anyhow::Error::new(error))
}
