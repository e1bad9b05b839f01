#!/usr/bin/env bash
# Single-host Slurm cluster (Debian 12, root, no systemd). Idempotent-ish.
# The recipe of ../shared/testbeds.md §1.2 (tested there on this machine kind).
set -euo pipefail
SLURM_DIR=${SLURM_DIR:-/tmp/slurm}
ms() { date +%s%3N; }
T0=$(ms)

# 1. packages (skip if present)
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  [ -n "${SKIP_APT_UPDATE:-}" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
fi
T1=$(ms)

# 2. munge: key + daemon (runs as user munge, like the systemd unit does)
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key   # postinst normally did this already
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged   # forks to background, pid in /run/munge/munged.pid
  for i in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge | grep -q 'STATUS: *Success' || { echo "munge broken"; exit 1; }

# 3. slurm.conf
HOST=$(hostname -s)
NCPU=$(nproc)
MEM=$(free -m | awk '/^Mem:/{print $2}')
[ "${SLURM_FRESH:-1}" = 1 ] && ! { [ -s "$SLURM_DIR/slurmctld.pid" ] && kill -0 "$(cat "$SLURM_DIR/slurmctld.pid")" 2>/dev/null; } && rm -rf "$SLURM_DIR"   # fresh state per run
mkdir -p "$SLURM_DIR"/{state,spool,log} /etc/slurm
# Process tracking: cgroup v1 freezer (mounted on this VM kind) catches every job process; else process groups.
if [ -z "${PROCTRACK:-}" ]; then
  if [ -d /sys/fs/cgroup/freezer ]; then PROCTRACK=proctrack/cgroup; else PROCTRACK=proctrack/pgid; fi
fi
cat > /etc/slurm/cgroup.conf <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=testbed
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=${PROCTRACK}
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=${SCHED_PARAMS:-sched_interval=1,bf_interval=1,batch_sched_delay=0}
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${SLURM_DIR}/state
SlurmdSpoolDir=${SLURM_DIR}/spool
SlurmctldPidFile=${SLURM_DIR}/slurmctld.pid
SlurmdPidFile=${SLURM_DIR}/slurmd.pid
SlurmctldLogFile=${SLURM_DIR}/log/slurmctld.log
SlurmdLogFile=${SLURM_DIR}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
KillWait=${KILL_WAIT:-5}
MinJobAge=300
InactiveLimit=0
Waittime=0
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# 4. daemons (normal daemon mode: they fork and write their pid files)
[ -s "$SLURM_DIR/slurmctld.pid" ] && kill -0 "$(cat "$SLURM_DIR/slurmctld.pid")" 2>/dev/null || slurmctld -i
[ -s "$SLURM_DIR/slurmd.pid" ] && kill -0 "$(cat "$SLURM_DIR/slurmd.pid")" 2>/dev/null || slurmd
T2=$(ms)

# 5. wait until the node is idle
for i in $(seq 100); do
  st=$(sinfo -h -N -o %T 2>/dev/null || true)
  [ "$st" = idle ] && break
  sleep 0.2
done
[ "$st" = idle ] || { echo "node not idle: '$st'"; sinfo -N -l || true; tail -20 "$SLURM_DIR"/log/*.log; exit 1; }
T3=$(ms)
echo "slurm-up: install $((T1-T0)) ms, config+start $((T2-T1)) ms, until idle $((T3-T2)) ms, total $((T3-T0)) ms"
