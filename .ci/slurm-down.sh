#!/usr/bin/env bash
# Stop the single-host Slurm cluster by PID (never by name).
# The recipe of ../shared/testbeds.md §1.7.
SLURM_DIR=${SLURM_DIR:-/tmp/slurm}
stop_pid() {  # TERM, wait up to 10 s, then KILL
  local p=$1; [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p"
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
# 1. cancel jobs while the daemons are still up; jobs (slurmstepd + children) survive daemon shutdown otherwise
if [ -s "$SLURM_DIR/slurmctld.pid" ] && kill -0 "$(cat "$SLURM_DIR/slurmctld.pid")" 2>/dev/null; then
  steps=$(scontrol listpids 2>/dev/null | awk 'NR>1{print $1}')   # job PIDs, for a fallback kill
  scancel --full --user=root 2>/dev/null || true    # all of root's jobs (add other users if tests use them)
  for i in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
fi
# 2. daemons
[ -s "$SLURM_DIR/slurmd.pid" ] && stop_pid "$(cat "$SLURM_DIR/slurmd.pid")"
[ -s "$SLURM_DIR/slurmctld.pid" ] && stop_pid "$(cat "$SLURM_DIR/slurmctld.pid")"
[ -s /run/munge/munged.pid ] && stop_pid "$(cat /run/munge/munged.pid)"
# 3. any job process still alive (listed by PID before the cancel) gets SIGKILL
for p in ${steps:-}; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
rm -f "$SLURM_DIR"/slurmd.pid "$SLURM_DIR"/slurmctld.pid
true
