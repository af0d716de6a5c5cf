#!/usr/bin/env bash
# Start a single-node SLURM on this machine, reachable on loopback only, for the cluster
# tests (tests/test_slurm.py).  Debian packages: slurmctld, slurmd, slurm-client, munge.
#
#   sudo bash .ci/slurm-up.sh        # as root; safe to run again (idempotent)
#
# The cluster: one node (this host, at 127.0.0.1) with all its cores and most of its
# memory, one partition "debug" (the default), cons_tres with CR_Core_Memory so jobs are
# scheduled by cores and memory, no accounting (sacct is unavailable; job status comes
# from squeue, so MinJobAge keeps finished jobs visible for 30 minutes), and one GPU
# declared for scheduling only (gres.conf File=/dev/null: there is no device behind it;
# a job asking for --gpus=1 is really scheduled as a GPU job, but it gets no CUDA device).
#
# Environment: SLURM_UP_TIMEOUT (seconds to wait for the node, default 120).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm-up: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

TIMEOUT="${SLURM_UP_TIMEOUT:-120}"
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
NODE="$(hostname -s)"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { echo "slurm-up: $*"; }

# --- packages -------------------------------------------------------------------------
need=()
for pkg in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    # policy-rc.d may refuse to start services inside a container; we start them below.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- munge ----------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "writing a munge key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
    munge -n | unmunge >/dev/null || { echo "slurm-up: munged does not answer" >&2; exit 1; }
fi

# --- configuration --------------------------------------------------------------------
# The node's size as slurmd sees it; keep 1 GiB of memory back for the system.
hw="$(slurmd -C | head -1)"
CPUS="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
SOCKETS="$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")"
CORES="$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")"
THREADS="$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")"
MEM="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
MEM=$(( MEM > 2048 ? MEM - 1024 : MEM ))

install -d -m 0755 "$CONF_DIR" "$LOG_DIR"
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld "$LOG_DIR"
install -d -m 0755 /var/spool/slurmd /run/slurm

new_conf="$(mktemp)"
new_gres="$(mktemp)"
trap 'rm -f "$new_conf" "$new_gres"' EXIT
cat >"$new_conf" <<EOF
# Single-node SLURM for tests (written by .ci/slurm-up.sh).
ClusterName=stcore-ci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
# Bind every daemon to its configured address (loopback), not to all interfaces.
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
MpiDefault=none
MailProg=/bin/true
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue (the status source without accounting) for 30 min.
MinJobAge=1800
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 NodeHostname=${NODE} CPUs=${CPUS} Sockets=${SOCKETS} CoresPerSocket=${CORES} ThreadsPerCore=${THREADS} RealMemory=${MEM} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
# File=/dev/null: a GPU for scheduling only (without File= the node is marked INVAL).
echo "Name=gpu File=/dev/null" >"$new_gres"

changed=0
if ! cmp -s "$new_conf" "$CONF_DIR/slurm.conf"; then install -m 0644 "$new_conf" "$CONF_DIR/slurm.conf"; changed=1; fi
if ! cmp -s "$new_gres" "$CONF_DIR/gres.conf"; then install -m 0644 "$new_gres" "$CONF_DIR/gres.conf"; changed=1; fi

# --- daemons --------------------------------------------------------------------------
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {
    if running "$1"; then
        kill "$(cat "$1")"
        for _ in $(seq 1 50); do running "$1" || break; sleep 0.2; done
    fi
}
if [ "$changed" -eq 1 ]; then
    log "configuration written to $CONF_DIR/slurm.conf"
    stop /run/slurm/slurmd.pid
    stop /run/slurm/slurmctld.pid
fi
if ! running /run/slurm/slurmctld.pid; then
    log "starting slurmctld"
    slurmctld
fi
for _ in $(seq 1 100); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.2; done
if ! scontrol ping 2>/dev/null | grep -q "is UP"; then
    echo "slurm-up: slurmctld does not answer" >&2
    tail -n 20 "$LOG_DIR/slurmctld.log" >&2 || true
    exit 1
fi
if ! running /run/slurm/slurmd.pid; then
    log "starting slurmd"
    slurmd
fi

# --- wait for the node ----------------------------------------------------------------
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
    state="$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -1 || true)"
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|drained*|fail*)
            scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "slurm-up: node $NODE did not become idle within ${TIMEOUT}s (state: '${state}')" >&2
        tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
        exit 1
    fi
    sleep 1
done
log "node $NODE is $state"
sinfo
