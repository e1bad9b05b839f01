//! The queues as `wrun alloc ls` shows them: `--json` is [`Queue`]'s serde
//! form (a list), the text a table of queues and their unfinished or
//! latest allocations.

use std::fmt::Write;

use crate::queue::{AllocState, Queue, QueueState};

/// Ended allocations shown per queue in the table (the JSON has them all).
pub const ENDED_SHOWN: usize = 5;

/// The text `wrun alloc ls` prints.
pub fn table(queues: &[Queue]) -> String {
    let mut text = String::new();
    if queues.is_empty() {
        text.push_str("no allocation queues (add one with `wrun alloc add`)\n");
        return text;
    }
    for queue in queues {
        let spec = &queue.spec;
        let state = match &queue.state {
            QueueState::Active => "active".to_owned(),
            QueueState::Paused(why) => format!("paused: {why}"),
        };
        let _ = writeln!(
            text,
            "queue {} ({}, {}s walltime, {} slots, at most {} nodes, backlog {}, idle timeout {}s): {state}",
            spec.name,
            spec.system.name(),
            spec.time.as_secs(),
            spec.slots,
            spec.max_nodes,
            spec.backlog,
            spec.idle_timeout.as_secs(),
        );
        let ended = queue.allocations.iter().filter(|a| a.state.ended()).count();
        let skip = ended.saturating_sub(ENDED_SHOWN);
        let mut skipped = 0;
        for allocation in &queue.allocations {
            if allocation.state.ended() && skipped < skip {
                skipped += 1;
                continue;
            }
            let (state, why) = match &allocation.state {
                AllocState::Queued => ("queued", ""),
                AllocState::Running => ("running", ""),
                AllocState::Finished => ("finished", ""),
                AllocState::Failed(why) => ("failed", why.as_str()),
            };
            let node = if allocation.connected {
                "node connected"
            } else {
                "no node"
            };
            let line = format!("  allocation {:<12} {state:<9} {node}", allocation.id);
            let _ = match why {
                "" => writeln!(text, "{line}"),
                why => writeln!(text, "{line}: {why}"),
            };
        }
        if skip > 0 {
            let _ = writeln!(text, "  ({skip} earlier ended allocations: see --json)");
        }
        if queue.allocations.is_empty() {
            text.push_str("  no allocations yet\n");
        }
    }
    text
}
