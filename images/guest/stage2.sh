#!/bin/sh
# brick-lab stage 2, run by tini after switch_root. Brings the node to the state the lab promises:
# kernel file systems, hostname and addresses, the node agent, udev triggered and settled, the
# role's modules and daemons. Every step is written to the timeline the agent reports.
# The host writes /brick/nodes/<node>/node.env from the validated topology.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
export HOME
export PATH

mark() {
  read -r up _ </proc/uptime
  echo "$1 $up" >>/run/brick-lab/timeline
}
fail() {
  echo "brick-lab stage2: $*" >/dev/console
  mark "failed:$1"
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run/brick-lab /run/lock
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mark stage2

node=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    brick.node=*) node="${arg#brick.node=}" ;;
  esac
done
env_file="/brick/nodes/$node/node.env"
[ -r "$env_file" ] || { fail config "no $env_file (brick.node=$node)"; exec sleep infinity; }
. "$env_file"

hostname "$BRICK_NODE"
echo "$BRICK_NODE" >/etc/hostname
printf '127.0.0.1 localhost\n::1 localhost\n%s\n' "$BRICK_HOSTS" >/etc/hosts

# Addresses first, so the agent can bind its management address before udev is done.
modprobe virtio_net 2>/dev/null
# Path A and path B must stay two paths: without these a node answers ARP for its path-a address
# on path-b too, and a "path down" test would still reach it over the other network.
echo 1 >/proc/sys/net/ipv4/conf/all/arp_ignore
echo 2 >/proc/sys/net/ipv4/conf/all/arp_announce
ip link set lo up
for nic in $BRICK_NICS; do
  name="${nic%%=*}"; rest="${nic#*=}"; mac="${rest%%=*}"; addr="${rest#*=}"
  dev=""
  for d in /sys/class/net/*; do
    [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && dev="${d##*/}"
  done
  [ -n "$dev" ] || { fail nic "no interface with MAC $mac for network $name"; continue; }
  ip link set "$dev" name "$name"
  ip addr add "$addr" dev "$name"
  ip link set "$name" up
done
mark network

# The agent starts while udev settles; /v1/health says "booting" until the ready mark.
BRICK_AGENT_READY_FILE=/run/brick-lab/ready
export BRICK_AGENT_READY_FILE BRICK_LAB BRICK_NODE BRICK_ROLE BRICK_AGENT_HOST BRICK_AGENT_PORT
BRICK_AGENT_TOKEN_FILE=/brick/token
BRICK_AGENT_TIMELINE=/run/brick-lab/timeline
BRICK_LIO_HELPER=/brick/lio_helper.py
BRICK_MULTIPATHD_RELAY=/brick/multipathd_relay.py
BRICK_REBOOT_SCRIPT=/brick/guest/reboot.sh
export BRICK_AGENT_TOKEN_FILE BRICK_AGENT_TIMELINE BRICK_DATA_NETWORKS BRICK_LIO_HELPER BRICK_MULTIPATHD_RELAY BRICK_REBOOT_SCRIPT
# The agent loop: the agent is started again whenever it ends. Exit 75 is POST /v1/agent/restart
# (a connector process restarting). Any other end (the OOM killer's SIGKILL, a crash) is marked
# in the timeline as agent-died-<status>, which /v1/health carries and `brick-lab status` shows,
# and is said on the console; a second later it starts again. The agent is the node's only way
# in, so the OOM killer is told to take nearly anything else first (oom_score_adj -900; the
# programs it runs inherit that while they run).
agent_loop() {
  while :; do
    (echo -900 >/proc/self/oom_score_adj; exec /opt/brick-lab/node/node --compact-on-every-full-gc /brick/agent-loader.cjs /brick/agent.cjs)
    rc=$?
    [ "$rc" -eq 75 ] && continue
    mark "agent-died-$rc"
    echo "brick-lab stage2: the agent ended with status $rc; starting it again" >/dev/console
    sleep 1
  done
}
agent_loop >/dev/console 2>&1 &
mark agent-started

# Coldplug would load drivers for virtual hardware the lab never uses (KVM inside a TCG guest,
# watchdogs, SMBus, CPU-accelerated crypto and hash modules): each load costs a signature check
# and init under TCG. Block their automatic loading only; a test can still modprobe them.
mkdir -p /etc/modprobe.d
for m in kvm kvm_amd kvm_intel irqbypass ccp iTCO_wdt iTCO_vendor_support intel_pmc_bxt i2c_i801 \
         i2c_smbus lpc_ich button ghash_clmulni_intel sha512_ssse3 sha256_ssse3 sha1_ssse3 aesni_intel \
         crc32_pclmul crct10dif_pclmul pcspkr joydev evdev; do
  echo "blacklist $m"
done >/etc/modprobe.d/brick-lab-boot.conf

disk_setup() {
  # The node's disk (a host directory of the lab, read-write): what a real host keeps on disk and
  # what decides what comes back after a reboot. /etc/iscsi (node records with their node.startup,
  # send_targets, iscsid.conf), /etc/multipath (wwids, bindings, conf.d) and /etc/nvme (hostnqn,
  # hostid, discovery.conf, config.json) are bound from it, and so are the connectors installed on
  # the node (/var/lib/brick-lab/connectors: software on a host's disk); the first boot fills them
  # from the image. Everything else starts from the image at every boot, as a host's /run and /tmp do.
  disk=/var/lib/brick-lab/disk
  mkdir -p "$disk"
  if mount -t 9p -o rw,trans=virtio,version=9p2000.L,msize=262144 disk "$disk"; then
    for d in etc/iscsi etc/multipath etc/nvme var/lib/brick-lab/connectors; do
      if [ ! -d "$disk/$d" ]; then
        mkdir -p "$disk/$d"
        [ -d "/$d" ] && cp -a "/$d/." "$disk/$d/"
      fi
      mkdir -p "/$d"
      mount --bind "$disk/$d" "/$d" || fail disk "cannot bind $disk/$d over /$d"
    done
    echo $(( $(cat "$disk/boots" 2>/dev/null || echo 0) + 1 )) >"$disk/boots.new" && mv "$disk/boots.new" "$disk/boots"
    mark "disk:boot-$(cat "$disk/boots")"
  else
    fail disk "cannot mount the node's disk (9p tag disk)"
  fi

  # Identity of this node as an initiator: one IQN and one host NQN per node, stable per lab (the
  # same at every boot).
  mkdir -p /etc/iscsi /etc/nvme
  echo "InitiatorName=$BRICK_INITIATOR_IQN" >/etc/iscsi/initiatorname.iscsi
  echo "$BRICK_HOST_NQN" >/etc/nvme/hostnqn
  echo "$BRICK_HOST_ID" >/etc/nvme/hostid
}

# The role's modules and daemons come up while udev works through coldplug: on one vCPU under
# TCG both are slow, and neither waits on the other.
role_setup() {
  # Off the agent's path: nothing the agent does before ready reads these.
  disk_setup
  case "$BRICK_ROLE" in
    target)
      modprobe -a configfs target_core_mod target_core_iblock target_core_file target_core_pscsi \
        iscsi_target_mod nvmet nvmet_tcp loop || fail modules "modprobe of the target modules failed"
      mark modules
      # configfs is a module here: mount it now that it is loaded (LIO and nvmet live in it).
      mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config || fail configfs "cannot mount configfs"
      # targetcli-fb probes tcmu over D-Bus and fails every command without a system bus.
      mkdir -p /run/dbus /var/lib/dbus
      dbus-uuidgen --ensure
      dbus-daemon --system --fork || fail dbus "dbus-daemon did not start"
      ;;
    compute)
      # add_host=0: ready for local disks, but none until a test asks; per_host_store=1: each disk
      # has its own data (the default shares one store between all of them).
      modprobe scsi_debug add_host=0 per_host_store=1 dev_size_mb=32 || fail modules "modprobe scsi_debug failed"
      modprobe -a sd_mod sg iscsi_tcp nvme_tcp nvme_fabrics dm_multipath || fail modules "modprobe of the initiator modules failed"
      mark modules
      iscsid || fail iscsid "iscsid did not start"
      # multipathd makes maps only for WWIDs a connector adds (find_multipaths strict), as
      # os-brick does with `multipath -a`: a single-path volume stays a plain disk.
      mkdir -p /etc/multipath
      printf 'defaults {\n  user_friendly_names no\n  find_multipaths strict\n}\nblacklist {\n  devnode "^(vd|loop|ram|nvme)"\n}\n' >/etc/multipath.conf
      multipathd || fail multipathd "multipathd did not start"
      mark daemons
      # What a Debian host does at boot with the records on its disk: open-iscsi.service logs in
      # to every record marked node.startup=automatic, nvmf-autoconnect.service connects what
      # /etc/nvme/discovery.conf lists. A login that fails does not stop the boot (nor does it on
      # a real host): the console says so. On a first boot there is nothing to log in to.
      if [ -n "$(ls -A /etc/iscsi/nodes 2>/dev/null)" ]; then
        iscsiadm -m node --loginall=automatic >/dev/console 2>&1
        rc=$?
        case $rc in 0|15|21) ;; *) echo "brick-lab stage2: iscsiadm --loginall=automatic exited $rc" >/dev/console ;; esac
        mark "iscsi-login:$rc"
      fi
      if grep -qv '^[[:space:]]*\(#\|$\)' /etc/nvme/discovery.conf 2>/dev/null || [ -e /etc/nvme/config.json ]; then
        nvme connect-all >/dev/console 2>&1
        mark "nvme-connect-all:$?"
      fi
      ;;
  esac
  mark role
}
role_setup &
role_pid=$!

/lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/dev/null
# Coldplug of what the lab reads: block devices (the image disk, and after a reboot whatever an
# automatic login or connect-all brought in before udevd listened) with their SCSI and NVMe
# parents, so their links and udev database entries are there at ready. The rest of the guest's
# ~280 devices (71 ttys, ACPI, PCI, the SATA controller) would only load drivers the lab never
# uses: under TCG that coldplug kept udev busy 10-15 s of a boot, beside the role's setup on the
# one vCPU. Everything added from here on gets its events as usual.
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add --subsystem-match=block --subsystem-match=scsi --subsystem-match=nvme --subsystem-match=nvme-subsystem
udevadm settle --timeout=120 || fail udev "udevadm settle timed out"
mark udev
wait "$role_pid"

udevadm settle --timeout=60
mark ready
touch /run/brick-lab/ready
exec sleep infinity
