#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, from Debian's packages, for the executor tests (issue 23):
# munge + slurmctld + slurmd, and slurmdbd on MariaDB (submitit reads job states through sacct; without
# accounting a job killed by Slurm leaves its driver waiting forever). Two partitions: debug (default,
# preemptable: REQUEUE with Slurm's USR2 warning) and high (preempts debug), so a test can preempt for real.
#
#   bash tests/slurm/local_cluster.sh start    # install if missing, configure, start, wait until the node is idle
#   bash tests/slurm/local_cluster.sh stop     # cancel jobs, stop every daemon by its pid file
#   bash tests/slurm/local_cluster.sh status
#
# Runs as root, without systemd (daemons are started by hand and daemonize). Everything it writes lives under
# /etc/slurm, /etc/munge, /var/{lib,log,spool}/slurm*, /run; state survives stop/start.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
HOST=$(hostname -s)
CLUSTER=nasbenchpc
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
DB_PASSWORD=nasbenchpc-local

log() { echo "[local_cluster] $*" >&2; }

wait_for() {  # seconds, description, command...
  local seconds=$1 what=$2
  shift 2
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      log "timed out after ${seconds}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

start_munge() {
  [ -f /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge /var/lib/munge /var/log/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- munged
  fi
  wait_for 20 "munge" sh -c 'munge -n | unmunge'
}

write_slurm_conf() {
  # the node's hardware as slurmd sees it; RealMemory at 85% (above the reported value the node drains)
  local hw cpus sockets cores threads mem
  hw=$(slurmd -C | head -1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  sockets=$(sed -n 's/.*Boards=1 SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
  [ -n "$sockets" ] || sockets=$(sed -n 's/.*Sockets=\([0-9]*\).*/\1/p' <<<"$hw")
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$((mem * 85 / 100))
  install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  cat >/etc/slurm/slurm.conf <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job may start again after cred_expire (120 s by default); the schedulers look every 2 s
AuthInfo=cred_expire=10
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=2
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SelectType=select/cons_tres
# memory is not a consumable: otherwise every job takes the whole node and array tasks run one at a time
SelectTypeParameters=CR_Core
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# Slurm 22.05's spelling: preemption sends the job's --signal (submitit's USR2) before SIGTERM
SlurmctldParameters=preempt_send_user_signal
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# submitit ignores SIGTERM: a cancelled step is killed this many seconds later
KillWait=5
MinJobAge=300
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=20
PartitionName=high Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
}

start_accounting() {
  install -d -o mysql -g mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  if ! mariadb-admin ping >/dev/null 2>&1; then
    (mariadbd --user=mysql --bind-address=127.0.0.1 --innodb-buffer-pool-size=32M \
      --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock >/var/log/slurm/mariadb.log 2>&1 &)
  fi
  wait_for 60 "MariaDB" mariadb-admin ping
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
EOF
  chmod 0600 /etc/slurm/slurmdbd.conf
  running /run/slurmdbd.pid || slurmdbd
  wait_for 60 "slurmdbd" sacctmgr -n show cluster
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
}

running() {  # pid file
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_idle() {
  sinfo -h -n "$HOST" -o %t | grep -qE '^(idle|mix|alloc)'
}

start() {
  local t0=$SECONDS
  install_packages
  start_munge
  write_slurm_conf
  start_accounting
  running /run/slurmctld.pid || slurmctld
  wait_for 60 "slurmctld" scontrol ping
  running /run/slurmd.pid || slurmd
  if ! wait_for 30 "the node to become idle" node_idle; then
    scontrol update nodename="$HOST" state=resume || true
    wait_for 30 "the node to become idle after resume" node_idle
  fi
  log "Slurm is up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %t %D' | tr '\n' ' ')"
}

stop_pid() {  # pid file, name
  local pidfile=$1
  running "$pidfile" || return 0
  local pid
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$2 ($pid) did not exit after SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  if command -v scancel >/dev/null && scontrol ping >/dev/null 2>&1; then
    scancel --user=root --full 2>/dev/null || true
    wait_for 30 "the queue to empty" sh -c '[ -z "$(squeue -h)" ]' || true
  fi
  stop_pid /run/slurmd.pid slurmd
  stop_pid /run/slurmctld.pid slurmctld
  stop_pid /run/slurmdbd.pid slurmdbd
  stop_pid /run/mysqld/mysqld.pid mariadbd
  stop_pid /run/munge/munged.pid munged
  log "stopped"
}

status() {
  for f in /run/munge/munged.pid /run/mysqld/mysqld.pid /run/slurmdbd.pid /run/slurmctld.pid /run/slurmd.pid; do
    if running "$f"; then echo "$f: running"; else echo "$f: stopped"; fi
  done
  command -v sinfo >/dev/null && sinfo 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
