#!/usr/bin/env python3
"""connector.py with one deliberate defect, to show that brick-lab catches a leaky detach.

DEFECT: disconnect_volume flushes and deletes the volume's SCSI devices as connector.py does,
but never logs out of the target nor deletes the node record, even when no other LUN uses the
session. Every detach leaves an iSCSI session and a node record behind: orphans that brick-lab's
oracle must name. Everything else is connector.py itself, imported, so the two stay in sync.
"""

import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ beside the examples
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import connector  # noqa: E402


def logout_and_delete(t):
    # The defect: connector.logout_and_delete would run "iscsiadm -m node -T IQN -p PORTAL --logout"
    # and "--op delete" here. Skipping both leaves the session and the node record.
    connector.log("faulty: NOT logging out of %s at %s and NOT deleting its node record" % (t.iqn, connector.portal_arg(t.portal)))


connector.logout_and_delete = logout_and_delete

if __name__ == "__main__":
    sys.exit(connector.main())
