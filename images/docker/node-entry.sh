#!/bin/sh
# brick-lab node container entry point (the docker provider). Two modes:
#
#   node-entry.sh qemu QEMU-ARGV...
#     The node boots its own kernel: QEMU runs as the container's main process. Each data network
#     reaches the container as an interface, found by the address Docker gave it; the interface
#     joins a bridge with a tap that QEMU opens and keeps no address: the guest has the node's own.
#     BRICK_DOCKER_NICS lists "network=docker-address=node-address/prefix".
#
#   node-entry.sh host-kernel
#     A target on the host's kernel: LIO and nvmet modules of the host, configfs and /dev bound in,
#     the node agent as the main process. Each data interface trades Docker's address for the
#     node's own and takes its network's name.
#
# Values come from the validated topology, through the environment; nothing here is evaluated.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

say() { echo "brick-lab node-entry: $*" >&2; }
die() { say "error: $*"; exit 1; }

mode="${1:-}"
[ $# -gt 0 ] && shift

iface_with() {
  # The interface that holds exactly this IPv4 address.
  ip -o -4 addr show | while read -r _ dev _ cidr _; do
    [ "${cidr%/*}" = "$1" ] && { echo "$dev"; break; }
  done
}

case "$mode" in
  qemu)
    for nic in ${BRICK_DOCKER_NICS:-}; do
      net="${nic%%=*}"; rest="${nic#*=}"; docker_addr="${rest%%=*}"; cidr="${rest#*=}"
      dev="$(iface_with "$docker_addr")"
      [ -n "$dev" ] || die "no interface holds $docker_addr (network $net): Docker did not attach the network"
      ip addr flush dev "$dev"
      ip link add "br-$net" type bridge stp_state 0 forward_delay 0
      ip link set "$dev" master "br-$net"
      ip tuntap add dev "tp-$net" mode tap
      ip link set "tp-$net" master "br-$net"
      ip link set "tp-$net" up
      ip link set "br-$net" up
      say "network $net: $dev and tap tp-$net on bridge br-$net (the guest has $cidr)"
    done
    [ -c /dev/net/tun ] || die "/dev/net/tun is missing in the container"
    # The management relay (see mgmt-relay.cjs): the node binary and script the lab shares in.
    if [ -n "${BRICK_RELAY_SCRIPT:-}" ]; then
      "$BRICK_RELAY_NODE" "$BRICK_RELAY_SCRIPT" "$BRICK_RELAY_HOST" "$BRICK_RELAY_PORT" "$BRICK_RELAY_TARGET" &
    fi
    say "starting QEMU"
    exec "$@"
    ;;
  host-kernel)
    env_file="/brick/nodes/${BRICK_NODE:?}/node.env"
    [ -r "$env_file" ] || die "no $env_file"
    . "$env_file"
    mkdir -p /run/brick-lab /run/lock
    mark() { read -r up _ </proc/uptime; echo "$1 $up" >>/run/brick-lab/timeline; }
    mark stage2
    # Docker named the data interfaces ethN; the lab (and a "path down" test) knows them by network.
    for nic in ${BRICK_DOCKER_NICS:-}; do
      net="${nic%%=*}"; rest="${nic#*=}"; docker_addr="${rest%%=*}"; cidr="${rest#*=}"
      dev="$(iface_with "$docker_addr")"
      [ -n "$dev" ] || { mark failed:nic; die "no interface holds $docker_addr (network $net)"; }
      ip addr flush dev "$dev"
      ip link set "$dev" down
      ip link set "$dev" name "$net"
      ip addr add "$cidr" dev "$net"
      ip link set "$net" up
    done
    mark network
    modprobe -a configfs target_core_mod target_core_iblock target_core_file iscsi_target_mod nvmet nvmet_tcp loop \
      || { mark failed:modules; die "modprobe of the target modules failed (host kernel $(uname -r))"; }
    mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config \
      || { mark failed:configfs; die "cannot mount configfs"; }
    mkdir -p /run/dbus /var/lib/dbus
    dbus-uuidgen --ensure
    dbus-daemon --system --fork || { mark failed:dbus; die "dbus-daemon did not start"; }
    mark role
    mark udev
    mark ready
    touch /run/brick-lab/ready
    BRICK_AGENT_READY_FILE=/run/brick-lab/ready
    BRICK_AGENT_TOKEN_FILE=/brick/token
    BRICK_AGENT_TIMELINE=/run/brick-lab/timeline
    BRICK_LIO_HELPER=/brick/lio_helper.py
    BRICK_MULTIPATHD_RELAY=/brick/multipathd_relay.py
    export BRICK_AGENT_READY_FILE BRICK_LAB BRICK_NODE BRICK_ROLE BRICK_AGENT_HOST BRICK_AGENT_PORT \
      BRICK_AGENT_TOKEN_FILE BRICK_AGENT_TIMELINE BRICK_DATA_NETWORKS BRICK_LIO_HELPER BRICK_MULTIPATHD_RELAY
    # The agent loop (see images/guest/stage2.sh): the agent starts again whenever it ends; an end
    # other than exit 75 (a restart asked for) is marked agent-died-<status>. The shell stays
    # PID 1 and hands a stop on to the agent.
    agent=
    trap 'if [ -n "$agent" ]; then kill -TERM "$agent" 2>/dev/null; wait "$agent" || true; fi; exit 143' TERM INT
    while :; do
      /opt/brick-lab/node/node --compact-on-every-full-gc /brick/agent-loader.cjs /brick/agent.cjs &
      agent=$!
      echo -900 >"/proc/$agent/oom_score_adj" 2>/dev/null || true
      rc=0
      wait "$agent" || rc=$?
      [ "$rc" -eq 75 ] && continue
      mark "agent-died-$rc"
      echo "brick-lab node-entry: the agent ended with status $rc; starting it again" >&2
      sleep 1
    done
    ;;
  *)
    die "usage: node-entry.sh qemu QEMU-ARGV... | node-entry.sh host-kernel"
    ;;
esac
