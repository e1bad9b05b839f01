#!/usr/bin/env bash
# Single-host Son of Grid Engine 8.1.9 (Debian 12 gridengine-*), root, no systemd.
# The recipe of ../shared/testbeds.md §2, and the queue without load thresholds.
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
H=$(hostname)
ms() { date +%s%3N; }
T0=$(ms)
if ! command -v sge_qmaster >/dev/null && [ ! -x /usr/sbin/sge_qmaster ]; then
  [ -n "${SKIP_APT_UPDATE:-}" ] || apt-get update -qq
  debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginemaster string $H
gridengine-client shared/gridengineconfig boolean true
gridengine-master shared/gridengineconfig boolean true
gridengine-exec shared/gridengineconfig boolean true
EOF
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    gridengine-master gridengine-exec gridengine-client >/dev/null
fi
T1=$(ms)
C=$SGE_ROOT/$SGE_CELL/common
echo "$H" > $C/act_qmaster
# 127.0.0.1 reverse-resolves to "localhost" (first in /etc/hosts) -> commlib "access denied".
echo "$H localhost" > $C/host_aliases
mkdir -p /var/run/gridengine /var/spool/gridengine/execd
chown sgeadmin:sgeadmin /var/run/gridengine /var/spool/gridengine/execd
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
alive /var/spool/gridengine/qmaster/qmaster.pid || /usr/sbin/sge_qmaster
for i in $(seq 100); do qconf -sh >/dev/null 2>&1 && break; sleep 0.2; done
W=$(mktemp -d)
qconf -as "$H" >/dev/null 2>&1 || true
cat > $W/exechost <<EOF
hostname $H
load_scaling NONE
complex_values NONE
user_lists NONE
xuser_lists NONE
projects NONE
xprojects NONE
usage_scaling NONE
report_variables NONE
EOF
qconf -se "$H" >/dev/null 2>&1 || qconf -Ae $W/exechost >/dev/null
printf 'group_name @allhosts\nhostlist %s\n' "$H" > $W/hg
qconf -shgrp @allhosts >/dev/null 2>&1 || qconf -Ahgrp $W/hg >/dev/null
if ! qconf -sq all.q >/dev/null 2>&1; then
  qconf -sq | sed "s/^qname .*/qname all.q/; s/^hostlist .*/hostlist @allhosts/; s/^slots .*/slots $(nproc)/;
    s/^shell .*/shell \/bin\/bash/; s/^shell_start_mode .*/shell_start_mode unix_behavior/; s/^pe_list .*/pe_list NONE/" > $W/q
  qconf -Aq $W/q >/dev/null
fi
# The default load threshold (np_load_avg 1.75) drops the only queue while
# builds load the machine: jobs would wait in qw for as long.
qconf -rattr queue load_thresholds NONE all.q >/dev/null
# allow root jobs (default min_uid/min_gid 1000); file name must equal the config name
mkdir -p $W/cfg; qconf -sconf global | sed 's/^min_uid .*/min_uid 0/; s/^min_gid .*/min_gid 0/' > $W/cfg/global
(cd $W/cfg && qconf -Mconf global >/dev/null)
qconf -ssconf | sed 's/^schedule_interval .*/schedule_interval 0:0:1/; s/^flush_submit_sec .*/flush_submit_sec 1/; s/^flush_finish_sec .*/flush_finish_sec 1/' > $W/sconf
qconf -Msconf $W/sconf >/dev/null
rm -rf $W
alive "$(ls /var/spool/gridengine/execd/*/execd.pid 2>/dev/null | head -1)" || /usr/sbin/sge_execd
for i in $(seq 150); do
  st=$(qstat -f 2>/dev/null | awk '/^all.q@/{print $6}')
  [ -n "$(qstat -f 2>/dev/null | grep '^all.q@')" ] && [ -z "$st" ] && break   # no state flag = ok
  sleep 0.2
done
T2=$(ms)
qstat -f
echo "sge-up: install $((T1-T0)) ms, config+start $((T2-T1)) ms"
