//! The log of a broker or node: every line on stderr with an RFC 3339 UTC
//! timestamp, as text or as JSON (`--log-format`), through `tracing`.

use crate::args::{LogArgs, LogFormat};

/// Send this process's `tracing` events to stderr in `args`' format.
pub(super) fn start(args: LogArgs) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // The default timer prints RFC 3339 in UTC (`2026-12-01T01:02:03.456789Z`).
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
