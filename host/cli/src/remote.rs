//! The job commands against a broker (`--broker`): each is one typed
//! request, answered from the broker's journal, and shown exactly as the
//! same command shows a local job.

use std::time::Duration;

use serde::de::DeserializeOwned;
use wrun_jobs::control::Cancelled;
use wrun_jobs::views::{JobDetail, JobView};
use wrun_remote::protocol::{Control, NodeInfo, Reply};

use crate::args::{CancelArgs, LogsArgs, NodesArgs, Remote, SnapshotArgs, StatusArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::{cluster, control, status};

/// `wrun status --broker`.
pub(crate) fn status(args: StatusArgs) -> Result<(), Fail> {
    let request = Control::Status {
        job: args.job,
        state: args.state.clone(),
        name: args.name.clone(),
        since_ms: args.since.map(|since| since.as_millis() as u64),
    };
    // The broker's journal knows its jobs as local: they run where it is.
    let broker = args.remote.broker.clone().unwrap_or_default();
    match ask(&args.remote, request)? {
        Reply::Jobs(json) => {
            let mut jobs: Vec<JobView> = parse(&json)?;
            for job in &mut jobs {
                job.r#where.clone_from(&broker);
            }
            status::show_jobs(&jobs, args.json)
        }
        Reply::Job(json) => {
            let mut detail: JobDetail = parse(&json)?;
            detail.job.r#where = broker;
            status::show_detail(&detail, args.json)
        }
        other => Err(unexpected(&other)),
    }
}

/// `wrun logs --broker`.
pub(crate) fn logs(args: LogsArgs) -> Result<(), Fail> {
    let request = Control::Logs {
        job: args.job,
        task: args.task,
    };
    match ask(&args.remote, request)? {
        Reply::Logs(json) => {
            status::show_logs(&parse::<Vec<_>>(&json)?, args.job, args.task, args.json)
        }
        other => Err(unexpected(&other)),
    }
}

/// `wrun cancel --broker`.
pub(crate) fn cancel(args: CancelArgs) -> Result<(), Fail> {
    match ask(&args.remote, Control::Cancel { job: args.job })? {
        Reply::Cancelled {
            requested,
            unfinished,
        } => {
            let cancelled = match requested {
                true => Cancelled::CancelRequested,
                false => Cancelled::Cancelled { unfinished },
            };
            control::print_cancelled(args.job, cancelled, args.json);
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}

/// `wrun snapshot --broker`.
pub(crate) fn snapshot(args: SnapshotArgs) -> Result<(), Fail> {
    let request = Control::Snapshot {
        job: args.job,
        wait_ms: args.wait.as_millis() as u64,
    };
    match ask(&args.remote, request)? {
        Reply::Snapshot(json) => {
            control::print_snapshot(&parse(&json)?, args.json);
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}

/// `wrun nodes --broker`.
pub(crate) fn nodes(args: NodesArgs) -> Result<(), Fail> {
    if args.remote.broker.is_none() {
        return Err(Fail::new(
            Code::Usage,
            anyhow::anyhow!("wrun nodes lists a broker's nodes: give --broker tcp://HOST:PORT"),
        ));
    }
    let nodes = match ask(&args.remote, Control::Nodes)? {
        Reply::Nodes(nodes) => nodes,
        other => return Err(unexpected(&other)),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&nodes).or_fail(Code::Internal)?;
        println!("{text}");
        return Ok(());
    }
    print!("{}", nodes_table(&nodes));
    Ok(())
}

/// The node table `wrun nodes` prints.
fn nodes_table(nodes: &[NodeInfo]) -> String {
    let mut text = format!(
        "{:<24} {:<22} {:<8} {:>5} {:>7} {:>10} {:>10} {:>10} {:>14} {:<12} {}\n",
        "node",
        "address",
        "version",
        "slots",
        "running",
        "done",
        "heard",
        "up",
        "walltime left",
        "allocation",
        "state"
    );
    let ago = |ms: u64| humantime::format_duration(Duration::from_millis(ms / 100 * 100));
    for node in nodes {
        let left = node
            .walltime_left_ms
            .map(|ms| ago(ms / 1000 * 1000).to_string());
        let state = match &node.draining {
            Some(why) => format!("draining: {why}"),
            None => "up".to_owned(),
        };
        text.push_str(&format!(
            "{:<24} {:<22} {:<8} {:>5} {:>7} {:>10} {:>10} {:>10} {:>14} {:<12} {}\n",
            node.name,
            node.address,
            node.version,
            node.slots,
            node.running,
            node.done,
            format!("{} ago", ago(node.last_heard_ms)),
            ago(node.connected_ms / 1000 * 1000).to_string(),
            left.as_deref().unwrap_or("-"),
            node.allocation.as_deref().unwrap_or("-"),
            state,
        ));
    }
    if nodes.is_empty() {
        text.push_str("no nodes are connected\n");
    }
    text
}

pub(crate) fn ask(remote: &Remote, control: Control) -> Result<Reply, Fail> {
    cluster::control(remote, control)
}

pub(crate) fn parse<T: DeserializeOwned>(json: &str) -> Result<T, Fail> {
    serde_json::from_str(json).or_fail(Code::Broker)
}

pub(crate) fn unexpected(reply: &Reply) -> Fail {
    let text: String = format!("{reply:?}").chars().take(60).collect();
    Fail::new(
        Code::Broker,
        anyhow::anyhow!("the broker sent an unexpected reply: {text}"),
    )
}
