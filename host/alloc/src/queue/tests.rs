use std::time::Duration;

use super::*;

fn spec() -> QueueSpec {
    QueueSpec {
        name: "q".into(),
        system: System::Slurm,
        broker: "tcp://127.0.0.1:7878".into(),
        time: Duration::from_secs(3600),
        max_nodes: 3,
        slots: 2,
        backlog: 2,
        idle_timeout: Duration::from_secs(300),
        extra: Vec::new(),
    }
}

fn seen(id: &str, state: BatchState) -> Observed {
    Observed {
        id: id.into(),
        name: "wrun-q".into(),
        state,
    }
}

#[test]
fn submits_only_for_work_nobody_will_take_within_backlog_and_max_nodes() {
    let mut queue = Queue::new(spec());
    assert_eq!(queue.wanted(0), 0);
    assert_eq!(queue.wanted(1), 1);
    // 9 tasks need 5 nodes of 2 slots; the backlog allows 2 pending.
    assert_eq!(queue.wanted(9), 2);
    queue.submitted("1".into(), 0);
    queue.submitted("2".into(), 0);
    assert_eq!(queue.pending_slots(), 4);
    assert_eq!(queue.wanted(9), 0, "backlog full");
    queue.connected("1", 0);
    queue.connected("2", 0);
    assert_eq!(queue.wanted(9), 1, "max 3 nodes, 2 running");
    queue.submitted("3".into(), 0);
    queue.connected("3", 0);
    assert_eq!(queue.wanted(9), 0, "max nodes reached");
    let changes = queue.observe(
        &[
            seen("2", BatchState::Running),
            seen("3", BatchState::Running),
        ],
        5,
    );
    assert_eq!(
        changes,
        vec![Change::Allocation(Allocation {
            id: "1".into(),
            state: AllocState::Finished,
            connected: true,
            submitted_at: 0,
            started_at: Some(0),
        })],
        "a connected allocation that left the listing finished"
    );
    assert_eq!(queue.wanted(9), 1);
}

#[test]
fn pauses_itself_after_consecutive_failures_with_the_reason() {
    let mut queue = Queue::new(spec());
    assert!(
        queue
            .submit_failed("sbatch: error: invalid partition specified: nope")
            .is_empty()
    );
    queue.submitted("7".into(), 0);
    let changes = queue.observe(
        &[seen(
            "7",
            BatchState::Failed("FAILED (NonZeroExitCode)".into()),
        )],
        1,
    );
    assert_eq!(changes.len(), 1);
    queue.submitted("8".into(), 2);
    let changes = queue.observe(&[], 3);
    let reason = "3 allocations failed in a row; the last: allocation 8: left the batch system \
                  before its node connected";
    assert_eq!(changes.last(), Some(&Change::Paused(reason.into())));
    assert_eq!(queue.state, QueueState::Paused(reason.into()));
    assert_eq!(queue.wanted(100), 0);
    queue.resume();
    assert_eq!(queue.failures, 0);
    assert_eq!(queue.wanted(1), 1);
}

#[test]
fn a_connection_resets_the_failure_count() {
    let mut queue = Queue::new(spec());
    queue.submit_failed("a");
    queue.submit_failed("b");
    queue.submitted("1".into(), 0);
    queue.connected("1", 0);
    assert_eq!(queue.failures, 0);
    assert!(queue.submit_failed("c").is_empty());
}

#[test]
fn a_node_that_never_connects_is_cancelled_after_the_timeout() {
    let mut queue = Queue::new(spec());
    queue.submitted("4".into(), 0);
    let running = [seen("4", BatchState::Running)];
    assert_eq!(queue.observe(&running, 1_000).len(), 1, "queued -> running");
    assert!(queue.observe(&running, CONNECT_TIMEOUT_MS).is_empty());
    let changes = queue.observe(&running, 1_000 + CONNECT_TIMEOUT_MS);
    assert_eq!(changes[0], Change::Cancel("4".into()));
    assert!(matches!(
        &changes[1],
        Change::Allocation(Allocation { state: AllocState::Failed(why), .. })
            if why == "its node did not connect within 120 s of the start"
    ));
}

#[test]
fn jobs_of_other_queues_are_ignored() {
    let mut queue = Queue::new(spec());
    queue.submitted("5".into(), 0);
    let other = Observed {
        id: "5".into(),
        name: "wrun-other".into(),
        state: BatchState::Running,
    };
    let changes = queue.observe(&[other], 1);
    assert!(matches!(
        &changes[0],
        Change::Allocation(Allocation {
            state: AllocState::Failed(_),
            ..
        })
    ));
}

#[test]
fn names_are_checked() {
    assert!(QueueSpec::valid_name("gpu_long-2"));
    assert!(!QueueSpec::valid_name("a b"));
    assert!(!QueueSpec::valid_name(""));
    assert!(!QueueSpec::valid_name("../x"));
}
