//! `wrun broker --http`: the broker's jobs (as `wrun status --broker`
//! shows them), its nodes (as `wrun nodes`) and its allocation queues.

use serde_json::Value;

use super::get;
use crate::cluster::{start_broker_with, start_node};
use crate::support::{GC_CONTENT, sample, wait_until, wrun_in};

#[test]
fn a_broker_serves_its_jobs_nodes_and_allocation_queues() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, endpoint) = start_broker_with(
        &dir.path().join("broker"),
        "*",
        None,
        None,
        "200ms",
        &["--http", "127.0.0.1:0"],
    );
    broker.wait_for("wrun: dashboard on http://");
    let addr = broker
        .log()
        .split("wrun: dashboard on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .expect("the dashboard's address");
    let node = start_node(&dir.path().join("n1"), "n1", &endpoint, None, None, &[]);
    node.wait_for("connected");
    let json = |path: &str| -> Value {
        let response = get(addr, path, &[]);
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        serde_json::from_slice(&response.body).expect("JSON")
    };
    let info = json("/api/info");
    assert_eq!(info["where"], endpoint.as_str());
    assert_eq!(info["nodes"], true);
    let nodes = json("/api/nodes");
    assert_eq!(nodes[0]["name"], "n1");
    assert!(
        nodes[0]["slots"].as_u64().is_some_and(|s| s >= 1),
        "{nodes}"
    );
    assert_eq!(json("/api/allocations"), serde_json::json!([]));

    // A client's job, as `wrun status --broker` shows it.
    let client = dir.path().join("client");
    let (fasta, expected) = sample();
    let run = wrun_in(
        &client,
        &[
            "submit",
            "--broker",
            &endpoint,
            GC_CONTENT,
            "--input",
            fasta.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), expected);
    let status = wrun_in(
        &client,
        &["status", "1", "--json", "--broker", &endpoint],
        None,
    );
    assert_eq!(status.code, 0, "{}", status.stderr);
    let cli: Value = serde_json::from_slice(&status.stdout).unwrap();
    wait_until("the broker's dashboard shows the job done", || {
        json("/api/jobs")[0]["state"] == "done"
    });
    assert_eq!(json("/api/jobs/1"), cli);
    // Every chunk names the node that ran it, and the timeline has a row
    // for that node's slot.
    for task in cli["tasks"].as_array().unwrap() {
        assert_eq!(task["node"], "n1", "{task}");
    }
    let timeline = get(addr, "/api/jobs/1/timeline.svg", &[]).text();
    assert!(timeline.contains("n1 · slot 1"), "{timeline}");

    let metrics = get(addr, "/metrics", &[]).text();
    for line in [
        "wrun_nodes_connected 1",
        "# TYPE wrun_allocations gauge",
        "# TYPE wrun_task_wall_seconds histogram",
        r#"wrun_tasks{job="1",state="done"}"#,
    ] {
        assert!(metrics.contains(line), "{line:?} not in\n{metrics}");
    }
}
