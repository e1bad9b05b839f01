#!/usr/bin/env bash
# Stop sge_execd then sge_qmaster, by PID (../shared/testbeds.md §2), after
# deleting every job while the daemons still answer.
export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine} SGE_CELL=${SGE_CELL:-default}
qdel -u '*' >/dev/null 2>&1 || true
stop_pid() { local p=$1; [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0; kill -TERM "$p"
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done; kill -KILL "$p"; }
for f in /var/spool/gridengine/execd/*/execd.pid; do [ -s "$f" ] && stop_pid "$(cat "$f")"; done
[ -s /var/spool/gridengine/qmaster/qmaster.pid ] && stop_pid "$(cat /var/spool/gridengine/qmaster/qmaster.pid)"
true
