//! Cluster mode on the command line: `wrun keygen`, `wrun broker`, `wrun
//! node`, and the `--broker` side of `submit`, `resume` and the job
//! commands. The protocol itself is in the `wrun-remote` crate; the
//! threat model in `docs/cluster.md`.

mod client;
mod log;
mod walltime;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use wrun_jobs::{Home, Local};
use wrun_remote::allocator::{Allocator, AllocatorConfig};
use wrun_remote::broker::{Broker, BrokerConfig};
use wrun_remote::dashboard::BrokerSource;
use wrun_remote::key::ClusterKey;
use wrun_remote::node::{Node, NodeConfig, Walltime};
use wrun_remote::service::JobService;
use wrun_remote::transport::Endpoint;
use wrun_runtime::Limits;
use wrun_store::BlobStore;

use crate::args::{BrokerArgs, KeygenArgs, NodeArgs};
use crate::exit::{Code, Fail, OrFail};

pub(crate) use client::{control, resume, submit};
use walltime::Source;

/// `wrun keygen`.
pub(crate) fn keygen(args: KeygenArgs) -> Result<(), Fail> {
    ClusterKey::generate()
        .and_then(|key| key.write_new(&args.output))
        .or_fail(Code::Output)?;
    eprintln!(
        "wrun: wrote a new cluster key to {} (readable by you only); copy it privately to every \
         machine of the cluster and pass it as --key or WRUN_KEY",
        args.output.display()
    );
    Ok(())
}

/// The cluster key from `--key`, or the public loopback key.
fn key(path: Option<&Path>) -> Result<ClusterKey, Fail> {
    match path {
        Some(path) => ClusterKey::read(path).or_fail(Code::Usage),
        None => Ok(ClusterKey::loopback_default()),
    }
}

fn endpoint(url: &str) -> Result<Endpoint, Fail> {
    Endpoint::parse(url).or_fail(Code::Usage)
}

/// The store at `--store` (then shared with the other side; a bucket is
/// cached in `home`), else this machine's own in `home`.
fn store(url: Option<&str>, home: &Home) -> Result<(Arc<BlobStore>, bool), Fail> {
    let Some(url) = url else {
        return Ok((home.store()?, false));
    };
    let store = BlobStore::open(url, home.root()).or_fail(Code::Usage)?;
    Ok((Arc::new(store), true))
}

/// How often the allocation queues look at the load and poll the batch
/// systems.
const ALLOC_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// `wrun broker`.
pub(crate) fn broker(args: BrokerArgs) -> Result<(), Fail> {
    let bind = endpoint(&args.bind)?;
    if args.key.is_none() && !bind.is_loopback() {
        return Err(Fail::new(
            Code::Usage,
            anyhow::anyhow!(
                "refusing to listen on {} without a cluster key: anyone who can reach it could \
                 submit jobs and take tasks. Create one with `wrun keygen -o cluster.key` and \
                 pass --key cluster.key here and to every node and client",
                bind.url
            ),
        ));
    }
    let key = key(args.key.as_deref())?;
    // Its jobs never mix with this user's local ones.
    let home = match &args.home {
        Some(dir) => Home::at(dir),
        None => Home::at(Home::from_env()?.root().join("broker")),
    };
    let (store, _) = store(args.store.as_deref(), &home)?;
    // Fail now, not at the first job, if the journal cannot be opened.
    drop(home.journal()?);
    let config = BrokerConfig {
        bind: bind.clone(),
        key,
        heartbeat: args.heartbeat,
    };
    let (broker, handle) = Broker::bind(config, store.clone()).or_fail(Code::Usage)?;
    log::start(args.log);
    tracing::info!(
        target: "wrun::broker",
        "listening on {}, journal in {}",
        broker.endpoint(),
        home.root().display()
    );
    // Batch scripts name the key and this executable by absolute path.
    let allocator = Allocator::start(
        AllocatorConfig {
            home: home.clone(),
            wrun: std::env::current_exe().or_fail(Code::Internal)?,
            key: match &args.key {
                Some(key) => Some(std::path::absolute(key).or_fail(Code::Usage)?),
                None => None,
            },
            poll: ALLOC_POLL,
        },
        handle.load().clone(),
    )?;
    if let Some(addr) = args.http {
        let source = BrokerSource::new(
            home.clone(),
            broker.endpoint(),
            handle.clone(),
            allocator.clone(),
        );
        crate::dashboard::bind(addr, &args.token, Arc::new(source))?.spawn();
    }
    let service = JobService::new(handle, home, store, crate::exit::code_of, allocator);
    broker.run(Arc::new(service))
}

/// `wrun node`.
pub(crate) fn node(args: NodeArgs) -> Result<(), Fail> {
    let connect = endpoint(&args.connect)?;
    let key = key(args.key.as_deref())?;
    let (store, shared_store) = store(args.store.as_deref(), &Home::from_env()?)?;
    let slots = Local::new(args.slots).workers;
    let name = args.name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "node".to_owned());
        format!("{host}-{}", std::process::id())
    });
    log::start(args.log);
    let given = match args.lifetime {
        Some(lifetime) => Some((SystemTime::now() + lifetime, Source::Lifetime)),
        None => args.until.map(|until| (until, Source::Until)),
    };
    let walltime = match walltime::end_time(given) {
        Ok(Some((ends, source))) => {
            let drain_before = args.drain_before.unwrap_or_else(|| {
                Walltime::default_drain_before(
                    ends.duration_since(SystemTime::now()).unwrap_or_default(),
                )
            });
            tracing::info!(
                target: "wrun::node",
                node = %name,
                "walltime ends at {} ({source}); draining {} before",
                humantime::format_rfc3339_seconds(ends),
                humantime::format_duration(drain_before)
            );
            Some(Walltime { ends, drain_before })
        }
        Ok(None) => None,
        Err(why) => {
            tracing::warn!(
                target: "wrun::node",
                node = %name,
                "cannot tell when this allocation ends ({why}); the node drains only at \
                 SIGTERM or SIGUSR1 (or pass --until)"
            );
            None
        }
    };
    let node = Node::start(NodeConfig {
        connect,
        key,
        name,
        slots,
        store,
        shared_store,
        base_limits: Limits::default(),
        walltime,
        idle_timeout: args.idle_timeout,
        allocation: args.allocation,
    })
    .or_fail(Code::Usage)?;
    crate::drain::watch_node(node.drainer());
    node.run().or_fail(Code::Broker)
}
