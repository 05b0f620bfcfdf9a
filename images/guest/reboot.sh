#!/bin/sh
# brick-lab node reboot, started by the node's agent (POST /v1/node/reboot) once it has answered.
#
#   reboot.sh clean   what a Debian host's shutdown does to its storage, then a reboot:
#                     open-iscsi.service's stop (sync, log out of every session), multipathd
#                     stops, file systems synced. Records, wwids and bindings stay on the disk.
#   reboot.sh hard    a reset at once (sysrq b): nothing synced, unmounted or logged out, as a
#                     power cycle or a crashed host. The target sees its sessions drop, not end.
#
# Either way the machine resets in the same QEMU process and boots the same kernel and stage 2.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

say() { echo "brick-lab reboot: $*" >/dev/console; }

case "${1:-}" in
  hard)
    say "hard reset"
    echo b >/proc/sysrq-trigger
    ;;
  clean)
    say "clean reboot: logging out of iSCSI sessions, stopping multipathd, syncing"
    if [ "${BRICK_ROLE:-}" = compute ]; then
      sync
      # Exit 21: no session to log out of.
      iscsiadm -m node --logoutall=all >/dev/console 2>&1
      multipathd shutdown >/dev/null 2>&1
    fi
    sync
    echo b >/proc/sysrq-trigger
    ;;
  *)
    say "usage: reboot.sh clean|hard (got ${1:-nothing})"
    exit 2
    ;;
esac
# sysrq b does not return; reaching here means the kernel refused it.
say "the reset did not happen"
exit 1
