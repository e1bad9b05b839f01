//! The S3 client as wrun configures it, shared by a bucket store
//! ([`crate::remote`]) and single objects ([`crate::object`]): built from
//! the standard `AWS_*` environment variables only, with bounded timeouts
//! and retries, and driven by a small tokio runtime of its own, since
//! wrun's callers are synchronous threads.

use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};

/// An S3 client for `bucket`, from the `AWS_*` variables; connecting is
/// bounded (5 s) and a request too (120 s), unless the environment says
/// otherwise, and a failed request is retried at most 3 times within 15 s.
///
/// # Errors
///
/// `object_store`'s message when the client cannot be built (a bad
/// variable); it never holds a credential.
pub(crate) fn client(bucket: &str) -> Result<AmazonS3, String> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (key, value) in [
        (ClientConfigKey::ConnectTimeout, "5s"),
        (ClientConfigKey::Timeout, "120s"),
    ] {
        let key = AmazonS3ConfigKey::Client(key);
        if builder.get_config_value(&key).is_none() {
            builder = builder.with_config(key, value);
        }
    }
    builder
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
        })
        .build()
        .map_err(|e| e.to_string())
}

/// The runtime a client's requests run on: one worker thread driving the
/// sockets and timers, blocked on by the caller.
///
/// # Errors
///
/// The runtime's, when it cannot start its thread.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("wrun-s3")
        .enable_all()
        .build()
}
