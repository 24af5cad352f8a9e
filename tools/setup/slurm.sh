#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for defacer's tests, from Debian's packages
# (munge, slurmctld, slurmd, slurm-client), started as root without systemd.
#   tools/setup/slurm.sh start   writes /etc/slurm/slurm.conf (only a file this script wrote
#                                 before is ever replaced), starts munged, slurmctld and
#                                 slurmd, and waits until the node is idle
#   tools/setup/slurm.sh stop    stops the daemons this script started
# State, logs and pid files live in $DEFACER_SLURM_STATE (default /var/tmp/defacer-slurm).
set -euo pipefail
state=${DEFACER_SLURM_STATE:-/var/tmp/defacer-slurm}
conf=/etc/slurm/slurm.conf
marker="# written by defacer tools/setup/slurm.sh"

write_conf() {
    if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
        echo "slurm.sh: $conf exists and is not ours; leaving it (and this cluster) alone" >&2
        exit 1
    fi
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))
    mkdir -p /etc/slurm "$state/ctld" "$state/d" "$state/log"
    cat > "$conf" <<CONF
$marker
ClusterName=defacer-test
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
MinJobAge=3600
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    rm -f "$state/ctld/clustername"
}

start() {
    write_conf
    if [ ! -S /run/munge/munge.socket.2 ]; then
        mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
        if id munge >/dev/null 2>&1; then
            runuser -u munge -- munged --force 2>>"$state/log/munged.log" || munged --force 2>>"$state/log/munged.log"
        else
            munged --force 2>>"$state/log/munged.log"
        fi
        for _ in $(seq 20); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.5; done
    fi
    [ -f "$state/slurmctld.pid" ] && kill -0 "$(cat "$state/slurmctld.pid")" 2>/dev/null || slurmctld
    [ -f "$state/slurmd.pid" ] && kill -0 "$(cat "$state/slurmd.pid")" 2>/dev/null || slurmd
    for _ in $(seq 60); do
        if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then echo "slurm.sh: node idle"; return 0; fi
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        sleep 1
    done
    echo "slurm.sh: the node did not become idle; see $state/log" >&2
    sinfo -N -l >&2 || true
    exit 1
}

stop() {
    for name in slurmd slurmctld; do
        if [ -f "$state/$name.pid" ]; then
            pid=$(cat "$state/$name.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$state/$name.pid"
        fi
    done
    if [ -f /run/munge/munged.pid ]; then
        pid=$(cat /run/munge/munged.pid)
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    echo "slurm.sh: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
