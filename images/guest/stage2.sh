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

# Run from a copy on the root overlay: the shell keeps its script open, and a template boot (see
# below) unmounts the lab share this one comes from.
case "$0" in
  /brick/*) cp "$0" /stage2.sh && exec /bin/sh /stage2.sh ;;
esac

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
template=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    brick.node=*) node="${arg#brick.node=}" ;;
    brick.template=*) template="${arg#brick.template=}" ;;
  esac
done

load_env() {
  env_file="/brick/nodes/$node/node.env"
  [ -r "$env_file" ] || { fail config "no $env_file (brick.node=$node)"; exec sleep infinity; }
  . "$env_file"
}

# Addresses first, so the agent can bind its management address before udev is done.
network_setup() {
  echo "$BRICK_NODE" >/proc/sys/kernel/hostname
  echo "$BRICK_NODE" >/etc/hostname
  printf '127.0.0.1 localhost\n::1 localhost\n%s\n' "$BRICK_HOSTS" >/etc/hosts
  [ -d /sys/module/virtio_net ] || modprobe virtio_net 2>/dev/null
  # Data NICs of another model (node.env's BRICK_NIC_MODULE): their driver first, so that they exist.
  [ -z "${BRICK_NIC_MODULE:-}" ] || [ -d "/sys/module/$BRICK_NIC_MODULE" ] || modprobe "$BRICK_NIC_MODULE" || fail nic "modprobe $BRICK_NIC_MODULE failed"
  # Path A and path B must stay two paths: without these a node answers ARP for its path-a address
  # on path-b too, and a "path down" test would still reach it over the other network.
  echo 1 >/proc/sys/net/ipv4/conf/all/arp_ignore
  echo 2 >/proc/sys/net/ipv4/conf/all/arp_announce
  # One ip process for every link (under TCG each program started costs a good part of a second
  # on a restored node, whose translated code is gone): the commands go to `ip -batch`.
  batch="link set lo up"
  for nic in $BRICK_NICS; do
    name="${nic%%=*}"; rest="${nic#*=}"; mac="${rest%%=*}"; addr="${rest#*=}"
    dev=""
    # A node restored from a template still has the template's MACs (52:54:00:4c:ff:<NIC index>):
    # the NIC of the same index takes this node's MAC.
    for want in "$mac" "52:54:00:4c:ff:${mac##*:}"; do
      for d in /sys/class/net/*; do
        read -r a <"$d/address" 2>/dev/null && [ "$a" = "$want" ] && dev="${d##*/}"
      done
      [ -n "$dev" ] && break
    done
    [ -n "$dev" ] || { fail nic "no interface with MAC $mac for network $name"; continue; }
    [ "$want" = "$mac" ] || batch="$batch
link set dev $dev address $mac"
    batch="$batch
link set dev $dev name $name
addr add $addr dev $name
link set dev $name up"
  done
  printf '%s\n' "$batch" | ip -batch - || fail network "ip -batch failed: $batch"
  mark network
}

# The agent starts while udev settles; /v1/health says "booting" until the ready mark.
# The agent loop: the agent is started again whenever it ends. Exit 75 is POST /v1/agent/restart
# (a connector process restarting). Any other end (the OOM killer's SIGKILL, a crash) is marked
# in the timeline as agent-died-<status>, which /v1/health carries and `brick-lab status` shows,
# and is said on the console; a second later it starts again. The agent is the node's only way
# in, so the OOM killer is told to take nearly anything else first (oom_score_adj -900; the
# programs it runs inherit that while they run).
AGENT_ENV=/run/brick-lab/agent.env
AGENT_WAKE=/run/brick-lab/agent-wake
agent_loop() {
  while :; do
    if [ -r "$AGENT_ENV" ]; then
      (. "$AGENT_ENV"; echo -900 >/proc/self/oom_score_adj; exec /opt/brick-lab/node/node --compact-on-every-full-gc /brick/agent-loader.cjs /brick/agent.cjs)
    else
      # A template boot: the agent from the runtime disk (the 9p shares are let go before the
      # save), waiting on $AGENT_WAKE for the node it becomes.
      (BRICK_AGENT_TEMPLATE="$template" BRICK_AGENT_WAKE="$AGENT_WAKE"; export BRICK_AGENT_TEMPLATE BRICK_AGENT_WAKE
       echo -900 >/proc/self/oom_score_adj; exec /run/brick-lab/runtime/node --compact-on-every-full-gc /run/brick-lab/runtime/agent-loader.cjs /run/brick-lab/runtime/agent.cjs)
    fi
    rc=$?
    [ "$rc" -eq 75 ] && continue
    mark "agent-died-$rc"
    echo "brick-lab stage2: the agent ended with status $rc; starting it again" >/dev/console
    sleep 1
  done
}
# The agent's environment, in $AGENT_ENV: what every start of the agent reads (and, written to
# $AGENT_WAKE, what a template's waiting agent becomes).
agent_env() {
  BRICK_AGENT_READY_FILE=/run/brick-lab/ready
  BRICK_AGENT_TOKEN_FILE=/brick/token
  BRICK_AGENT_TIMELINE=/run/brick-lab/timeline
  BRICK_LIO_HELPER=/brick/lio_helper.py
  BRICK_MULTIPATHD_RELAY=/brick/multipathd_relay.py
  BRICK_REBOOT_SCRIPT=/brick/guest/reboot.sh
  for v in BRICK_LAB BRICK_NODE BRICK_ROLE BRICK_AGENT_HOST BRICK_AGENT_PORT BRICK_DATA_NETWORKS BRICK_FC_INITIATORS BRICK_AGENT_READY_FILE \
           BRICK_AGENT_TOKEN_FILE BRICK_AGENT_TIMELINE BRICK_LIO_HELPER BRICK_MULTIPATHD_RELAY BRICK_REBOOT_SCRIPT; do
    eval "printf \"export %s='%s'\\n\" $v \"\${$v:-}\""
  done >"$AGENT_ENV.new" && mv "$AGENT_ENV.new" "$AGENT_ENV"
}
agent_start() {
  agent_env
  agent_loop >/dev/console 2>&1 &
  mark agent-started
}

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
  # send_targets, iscsid.conf; trixie keeps the records in /var/lib/iscsi, bound too), /etc/multipath (wwids, bindings, conf.d) and /etc/nvme (hostnqn,
  # hostid, discovery.conf, config.json) are bound from it, and so are the connectors installed on
  # the node (/var/lib/brick-lab/connectors: software on a host's disk); the first boot fills them
  # from the image. Everything else starts from the image at every boot, as a host's /run and /tmp do.
  disk=/var/lib/brick-lab/disk
  mkdir -p "$disk"
  if mount -t 9p -o rw,trans=virtio,version=9p2000.L,msize=262144 disk "$disk"; then
    mkdir -p /etc/iscsi /etc/multipath /etc/nvme /var/lib/brick-lab/connectors
    # open-iscsi's database is under /etc/iscsi up to bookworm, under /var/lib/iscsi from trixie on.
    dirs="etc/iscsi etc/multipath etc/nvme var/lib/brick-lab/connectors"
    [ -d /var/lib/iscsi ] && dirs="$dirs var/lib/iscsi"
    for d in $dirs; do
      if [ ! -d "$disk/$d" ]; then
        mkdir -p "$disk/$d"
        cp -a "/$d/." "$disk/$d/"
      fi
      mount --bind "$disk/$d" "/$d" || fail disk "cannot bind $disk/$d over /$d"
    done
    boots=0
    [ -r "$disk/boots" ] && read -r boots <"$disk/boots"
    boots=$((boots + 1))
    echo "$boots" >"$disk/boots.new" && mv "$disk/boots.new" "$disk/boots"
    mark "disk:boot-$boots"
  else
    fail disk "cannot mount the node's disk (9p tag disk)"
  fi

  # Identity of this node as an initiator: one IQN and one host NQN per node, stable per lab (the
  # same at every boot).
  echo "InitiatorName=$BRICK_INITIATOR_IQN" >/etc/iscsi/initiatorname.iscsi
  echo "$BRICK_HOST_NQN" >/etc/nvme/hostnqn
  echo "$BRICK_HOST_ID" >/etc/nvme/hostid
}

# The role's kernel modules (and the target's system bus): the same on every node of a role, so a
# template boot does them before it is saved.
role_modules() {
  case "$1" in
    target)
      modprobe -a configfs target_core_mod target_core_iblock target_core_file target_core_pscsi \
        iscsi_target_mod nvmet nvmet_tcp loop || fail modules "modprobe of the target modules failed"
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
      ;;
  esac
  mark modules
}

# The role's daemons, which read this node's identity and its disk.
role_daemons() {
  case "$BRICK_ROLE" in
    compute)
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
      if [ -n "$(ls -A /etc/iscsi/nodes /var/lib/iscsi/nodes 2>/dev/null | grep -v -e '^/' -e '^$')" ]; then
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

udev_start() {
  "$@" /lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/dev/null
}
# Coldplug of what the lab reads: block devices (the image disk, and after a reboot whatever an
# automatic login or connect-all brought in before udevd listened) with their SCSI and NVMe
# parents, so their links and udev database entries are there at ready. The rest of the guest's
# ~280 devices (71 ttys, ACPI, PCI, the SATA controller) would only load drivers the lab never
# uses: under TCG that coldplug kept udev busy 10-15 s of a boot, beside the role's setup on the
# one vCPU. Everything added from here on gets its events as usual.
udev_coldplug() {
  "$@" udevadm trigger --type=subsystems --action=add
  "$@" udevadm trigger --type=devices --action=add --subsystem-match=block --subsystem-match=scsi --subsystem-match=nvme --subsystem-match=nvme-subsystem
  "$@" udevadm settle --timeout=120 || fail udev "udevadm settle timed out"
  mark udev
}
# udev (udevd and udevadm) reads the kernel's boot_id, which the kernel makes at its first read: in
# a template that would make one boot id for every node restored from it. There they run in a
# mount namespace of their own with a stand-in file over boot_id; the node starts udevd again,
# beside everything else, once it is restored (the database in /run/udev stays).
TEMPLATE_BOOT_ID=/run/brick-lab/template-boot-id
# The namespace lets go of its copies of the 9p mounts at once: they too would block the save.
template_ns() {
  unshare -m sh -c 'umount -l /opt/brick-lab/node /brick; mount --bind "$0" /proc/sys/kernel/random/boot_id && exec "$@"' "$TEMPLATE_BOOT_ID" "$@"
}

if [ -z "$template" ]; then
  load_env
  network_setup
  agent_start
  # The role's modules and daemons come up while udev works through coldplug: on one vCPU under
  # TCG both are slow, and neither waits on the other. Off the agent's path: nothing the agent
  # does before ready reads these.
  (disk_setup; role_modules "$BRICK_ROLE"; role_daemons) &
  role_pid=$!
  udev_start
  udev_coldplug
  wait "$role_pid"
else
  # A template boot (brick-lab's `up` makes one per role and machine shape, and keeps it): what
  # every node of a role does alike (udev's coldplug, the role's modules, the agent's start), then
  # the host saves the machine's state. A node of that role starts from the saved state in its own
  # QEMU, with the kernel and everything below still running, and carries on from the read of
  # the control line below, as itself.
  mkdir -p /run/brick-lab/runtime
  mount -t erofs -o ro /dev/vdb /run/brick-lab/runtime || { fail template "cannot mount the runtime disk (/dev/vdb)"; exec sleep infinity; }
  rm -f "$AGENT_WAKE"
  mkfifo "$AGENT_WAKE"
  agent_loop >/dev/console 2>&1 &
  echo 00000000-0000-4000-8000-000000000000 >"$TEMPLATE_BOOT_ID"
  role_modules "$template" &
  role_pid=$!
  udev_start template_ns
  pgrep -x -P 1 systemd-udevd >"$TEMPLATE_BOOT_ID.udevd"
  udev_coldplug template_ns
  wait "$role_pid"
  i=0
  while [ ! -e "$AGENT_WAKE.waiting" ]; do
    i=$((i + 1))
    [ "$i" -le 1200 ] || { fail template "the agent did not start within 120 s"; exec sleep infinity; }
    sleep 0.1
  done
  # What a node's first boot copies from the image onto its disk (disk_setup), made once here
  # into the template's own disk and kept with it: the host puts it on a new node's disk.
  seed=/run/brick-lab/seed
  mkdir -p "$seed"
  if mount -t 9p -o rw,trans=virtio,version=9p2000.L,msize=262144 disk "$seed"; then
    dirs="etc/iscsi etc/multipath etc/nvme var/lib/brick-lab/connectors"
    [ -d /var/lib/iscsi ] && dirs="$dirs var/lib/iscsi"
    for d in $dirs; do
      mkdir -p "$seed/$d" "/$d" && cp -a "/$d/." "$seed/$d/"
    done
    umount "$seed"
  fi
  template_ns udevadm settle --timeout=60
  # A mounted 9p share blocks QEMU's migration: let go of the lab share and the node runtime (the
  # node mounts them again).
  umount /opt/brick-lab/node /brick || { fail template "cannot unmount the 9p shares"; exec sleep infinity; }
  mark template
  # ttyS1 is the host's control line, kept open across the save (a serial port opened later
  # drops what arrived before). The node's line: "brick-node NAME EPOCH".
  exec 3<>/dev/ttyS1
  stty -echo <&3 2>/dev/null
  # A template whose boot had a step fail is not kept: every node restored from it would carry
  # the failure (its timeline) and fail its own up.
  failed=$(grep '^failed:' /run/brick-lab/timeline | cut -d' ' -f1 | tr '\n' ' ')
  if [ -n "$failed" ]; then echo "brick-template-failed $failed" >&3; exec sleep infinity; fi
  echo "brick-template-ready" >&3
  while read -r word node now <&3; do
    [ "$word" = brick-node ] && [ -n "$node" ] && break
  done
  echo "brick-node-ok $node" >&3
  exec 3>&-
  # The clock stood still while the state was kept; the node's time is the host's.
  date -s "@$now" >/dev/null
  mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144 lab /brick || { fail restore "cannot mount the lab share (9p tag lab)"; exec sleep infinity; }
  mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose node /opt/brick-lab/node || { fail restore "cannot mount the node runtime (9p tag node)"; exec sleep infinity; }
  mark "restored:$template"
  # The template's udevd (its namespace, its boot id) goes, and the node's own starts. A SIGTERM:
  # a restored udevd does not act on `udevadm control --exit`.
  for p in $(cat "$TEMPLATE_BOOT_ID.udevd"); do
    kill -TERM "$p" 2>/dev/null
    i=0
    while kill -0 "$p" 2>/dev/null; do
      i=$((i + 1))
      [ "$i" -le 100 ] || { kill -KILL "$p"; break; }
      sleep 0.1
    done
  done
  udev_start
  load_env
  network_setup
  agent_env
  cat "$AGENT_ENV" >"$AGENT_WAKE"
  mark agent-woken
  disk_setup
  role_daemons
fi

udevadm settle --timeout=60
mark ready
touch /run/brick-lab/ready
exec sleep infinity
