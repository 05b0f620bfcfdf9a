#!/usr/bin/env python3
"""An iSCSI connector speaking brick-lab's external connector protocol, version 1.

brick-lab runs it once per call, as root on the compute node: one JSON request on stdin, one
JSON reply on stdout, logs on stderr (docs/connector-protocol.md). It drives open-iscsi the way
os-brick does:

  connect     a node record per (portal, IQN) with node.session.scan=manual, a login unless a
              session exists, a scan of the one LUN, the device read from sysfs. Single path: the
              first portal that works. multipath=true: every portal, one session each, and the
              first device is returned (no dm-multipath map is made).
  disconnect  flush and delete this volume's SCSI devices, then log out and delete the node
              record only where no other LUN still uses the session.

connect and disconnect hold one lock per host (flock on LOCK_FILE), as os-brick holds its external
lock: a detach deciding that a session is unused must not interleave with an attach scanning its
LUN under that session (cinder bug 1947370).

Python 3 standard library only. Every failure becomes an "ok": false reply; nothing but the
reply is ever written to stdout.
"""

import collections
import fcntl
import glob
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import time
import traceback

PROTOCOL_VERSION = 1
# The host-wide lock of connect and disconnect: every caller on the host must name the same file.
LOCK_FILE = "/run/brick-lab-example-iscsi.lock"

OPERATIONS = ("connect_volume", "disconnect_volume", "get_volume_paths", "get_all_available_volumes", "get_search_path")

BY_PATH = "/dev/disk/by-path"
SYS = "/sys"  # the tests point this at a copy of sysfs's shape
ISCSIADM_TIMEOUT = 60  # seconds, per iscsiadm call
DEVICE_WAIT = 30.0  # seconds for a session, a device, a device to go
WWID_WAIT = 10.0
DEFAULT_PORT = 3260
MAX_LUN = 16383  # SAM flat-space addressing ends here

# iscsiadm exit codes (open-iscsi's iscsi_err.h)
ISCSI_ERR_SESS_EXISTS = 15
ISCSI_ERR_NO_OBJS_FOUND = 21


class ConnectorError(Exception):
    """A failure that becomes an ok:false reply: a short type name and a message for a person."""

    def __init__(self, type_, message):
        super().__init__(message)
        self.type = type_
        self.message = message


def log(message):
    sys.stderr.write("iscsi-connector: %s\n" % message)
    sys.stderr.flush()


def describe(value):
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return json.dumps(value)


def invalid(field, message):
    return ConnectorError("InvalidConnectionProperties", "%s: %s" % (field, message))


# ---------------------------------------------------------------------------------------------
# Connection properties (os-brick's dict: Cinder's connection_info["data"])

Portal = collections.namedtuple("Portal", "host port ipv6")
Target = collections.namedtuple("Target", "portal iqn lun")

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
IQN_RE = re.compile(r"^(?:iqn\.\d{4}-\d{2}\.[A-Za-z0-9][A-Za-z0-9.:_-]*|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16}(?:[0-9A-Fa-f]{16})?)$")


def portal_arg(p):
    """The portal as iscsiadm's -p takes it: "host:port", IPv6 as "[addr]:port"."""
    return "[%s]:%d" % (p.host, p.port) if p.ipv6 else "%s:%d" % (p.host, p.port)


def parse_portal(value, field):
    if not isinstance(value, str) or value == "" or re.search(r"[\s\x00-\x1f\x7f]", value):
        raise invalid(field, 'must be a portal "host:port" or "[ipv6]:port" (got %s)' % describe(value))
    if value.startswith("["):
        m = re.match(r"^\[([^\]]+)\](?::([0-9]{1,5}))?$", value)
        if not m:
            raise invalid(field, '%s is not "[ipv6]:port"' % json.dumps(value))
        host, port = m.group(1), m.group(2)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise invalid(field, "%s: %s is not an IPv6 address" % (json.dumps(value), json.dumps(host)))
        ipv6 = True
    else:
        if value.count(":") > 1:
            raise invalid(field, '%s looks like an IPv6 address without brackets: write "[address]:port"' % json.dumps(value))
        host, sep, port = value.partition(":")
        if sep and not re.match(r"^[0-9]{1,5}$", port):
            raise invalid(field, "%s has no valid port after the ':'" % json.dumps(value))
        port = port or None
        numeric = re.match(r"^[0-9.]+$", host) is not None
        if numeric:
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise invalid(field, "%s: %s is not an IPv4 address" % (json.dumps(value), json.dumps(host)))
        elif not HOSTNAME_RE.match(host):
            raise invalid(field, "%s has no valid host" % json.dumps(value))
        ipv6 = False
    port = DEFAULT_PORT if port is None else int(port)
    if not 1 <= port <= 65535:
        raise invalid(field, "%s: the port must be from 1 to 65535" % json.dumps(value))
    return Portal(host, port, ipv6)


def check_iqn(value, field):
    if not isinstance(value, str) or len(value) > 223 or not IQN_RE.match(value):
        raise invalid(field, "%s is not an iSCSI name (iqn.YYYY-MM.reversed.domain[:unique], eui. or naa.)" % describe(value))
    return value


def check_lun(value, field):
    # bool is an int in Python; a LUN is not a bool.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LUN:
        raise invalid(field, "must be a whole number from 0 to %d (got %s)" % (MAX_LUN, describe(value)))
    return value


def targets(props):
    """(portal, IQN, LUN) per path, os-brick's way: the plural keys when target_portals and
    target_iqns are both given (with target_luns, or target_lun for every portal), else the
    singular keys. Duplicates are dropped; the order is the payload's."""
    if not isinstance(props, dict):
        raise ConnectorError("BadRequest", "connection_properties: must be an object (got %s)" % describe(props))
    found = []
    portals, iqns = props.get("target_portals"), props.get("target_iqns")
    if portals is not None and iqns is not None:
        for key, value in (("target_portals", portals), ("target_iqns", iqns)):
            if not isinstance(value, list) or not value:
                raise invalid(key, "must be a non-empty list (got %s)" % describe(value))
        if len(iqns) != len(portals):
            raise invalid("target_iqns", "has %d entries but target_portals has %d" % (len(iqns), len(portals)))
        luns = props.get("target_luns")
        if luns:
            if not isinstance(luns, list) or len(luns) != len(portals):
                raise invalid("target_luns", "must be a list with one LUN per portal (%d)" % len(portals))
            luns = [check_lun(v, "target_luns[%d]" % i) for i, v in enumerate(luns)]
        elif props.get("target_lun") is not None:
            luns = [check_lun(props["target_lun"], "target_lun")] * len(portals)
        else:
            raise invalid("target_luns", "missing: give target_luns (one per portal) or target_lun")
        for i, portal in enumerate(portals):
            found.append(Target(parse_portal(portal, "target_portals[%d]" % i), check_iqn(iqns[i], "target_iqns[%d]" % i), luns[i]))
    else:
        for key, what in (("target_portal", 'the portal, "host:port"'), ("target_iqn", "the target's IQN"), ("target_lun", "the LUN")):
            if props.get(key) is None:
                raise invalid(key, "missing: %s" % what)
        found.append(Target(parse_portal(props["target_portal"], "target_portal"), check_iqn(props["target_iqn"], "target_iqn"), check_lun(props["target_lun"], "target_lun")))
    out = []
    for t in found:
        if t not in out:
            out.append(t)
    return out


def chap(props):
    """CHAP settings for the node record, or None. As os-brick: no auth_method, no CHAP."""
    method = props.get("auth_method")
    if not method:
        return None
    if method != "CHAP":
        raise invalid("auth_method", 'must be "CHAP" or absent (got %s)' % describe(method))
    out = {}
    for key in ("auth_username", "auth_password"):
        value = props.get(key)
        if not isinstance(value, str) or value == "" or re.search(r"[\x00-\x1f\x7f]", value):
            raise invalid(key, "must be a non-empty string without control characters")
        out[key] = value
    return out


def flag(request, key):
    value = request.get(key, False)
    if not isinstance(value, bool):
        raise ConnectorError("BadRequest", "%s: must be true or false (got %s)" % (key, describe(value)))
    return value


def lun_for_path(lun):
    """The LUN as udev's path_id writes it: decimal below 256, else 0x%04x%04x00000000."""
    if lun < 256:
        return str(lun)
    return "0x%04x%04x00000000" % (lun & 0xFFFF, (lun >> 16) & 0xFFFF)


def by_path_name(t):
    """The name udev gives the LUN under /dev/disk/by-path (no brackets around IPv6)."""
    return "ip-%s:%d-iscsi-%s-lun-%s" % (t.portal.host, t.portal.port, t.iqn, lun_for_path(t.lun))


# ---------------------------------------------------------------------------------------------
# The host: iscsiadm and sysfs

def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def wait_for(what, fn, timeout=DEVICE_WAIT, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ConnectorError("Timeout", "no %s within %d s" % (what, timeout))
        time.sleep(step)


def shown(argv):
    """The command for the log, with CHAP secrets hidden."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] == "-n" and out[i + 1].endswith("password") and i + 3 < len(out):
            out[i + 3] = "***"
    return " ".join(out)


def iscsiadm(args, ok=(0,)):
    argv = ["iscsiadm"] + args
    log("run: " + shown(argv))
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=ISCSIADM_TIMEOUT)
    except FileNotFoundError:
        raise ConnectorError("ToolMissing", "iscsiadm is not installed (Debian package open-iscsi)")
    except subprocess.TimeoutExpired:
        raise ConnectorError("Timeout", "%s did not finish within %d s" % (shown(argv), ISCSIADM_TIMEOUT))
    if ok is not None and p.returncode not in ok:
        last = (p.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConnectorError("IscsiadmFailed", "%s exited with %d: %s" % (shown(argv), p.returncode, last))
    return p


Session = collections.namedtuple("Session", "sid iqn address port host")


def same_address(seen, wanted):
    """Whether a session's persistent_address (always numeric) is the portal's host."""
    try:
        return ipaddress.ip_address(seen) == ipaddress.ip_address(wanted)
    except ValueError:
        pass
    try:
        return any(ipaddress.ip_address(seen) == ipaddress.ip_address(a[4][0]) for a in socket.getaddrinfo(wanted, None))
    except (OSError, ValueError):
        return False


def sessions():
    out = []
    for d in glob.glob(SYS + "/class/iscsi_session/session*"):
        m = re.match(r"^session(\d+)$", os.path.basename(d))
        if not m:
            continue
        sid = int(m.group(1))
        address = port = None
        for c in sorted(glob.glob(SYS + "/class/iscsi_connection/connection%d:*" % sid)):
            address, port = read(c + "/persistent_address"), read(c + "/persistent_port")
            break
        # session N's device is .../hostH/sessionN: H is the SCSI host.
        host = re.match(r"^host(\d+)$", os.path.basename(os.path.dirname(os.path.realpath(d + "/device"))))
        out.append(Session(sid, read(d + "/targetname"), address, int(port) if port and port.isdigit() else None,
                           int(host.group(1)) if host else None))
    return sorted(out)


def sessions_for(t, among=None):
    return [s for s in (sessions() if among is None else among)
            if s.iqn == t.iqn and s.port == t.portal.port and s.address and same_address(s.address, t.portal.host)]


def luns_under(sid):
    """(H, C, T, L) and sysfs directory of every SCSI device under one session."""
    out = []
    for d in glob.glob(SYS + "/class/iscsi_session/session%d/device/target*/*" % sid):
        if re.match(r"^\d+:\d+:\d+:\d+$", os.path.basename(d)):
            out.append((tuple(int(x) for x in os.path.basename(d).split(":")), d))
    return sorted(out)


def device_under(sid, lun):
    for hctl, d in luns_under(sid):
        if hctl[3] == lun:
            try:
                blocks = sorted(os.listdir(d + "/block"))
            except OSError:
                blocks = []
            if blocks:
                return blocks[0]
    return None


def scsi_wwn(wwid):
    """sysfs's wwid in scsi_id's form: "naa.X" -> "3x", "eui.X" -> "2x", "t10.X" -> "1X"."""
    if not wwid:
        return None
    w = wwid.strip().rstrip("\x00")
    for prefix, digit in (("naa.", "3"), ("eui.", "2")):
        if w.startswith(prefix):
            return digit + w[len(prefix):].lower()
    if w.startswith("t10."):
        return "1" + re.sub(r"\s+", "_", w[len("t10."):])
    return w or None


def node_args(t):
    return ["-m", "node", "-T", t.iqn, "-p", portal_arg(t.portal)]


def ensure_node(t, auth):
    node = node_args(t)
    show = iscsiadm(node, ok=None)
    if show.returncode == ISCSI_ERR_NO_OBJS_FOUND:
        iscsiadm(node + ["--op", "new"])
    elif show.returncode != 0:
        raise ConnectorError("IscsiadmFailed", "iscsiadm %s exited with %d" % (" ".join(node), show.returncode))
    # Manual scans: a login must not bring in every LUN of a shared target.
    settings = [("node.session.scan", "manual")]
    if auth:
        settings += [("node.session.auth.authmethod", "CHAP"), ("node.session.auth.username", auth["auth_username"]),
                     ("node.session.auth.password", auth["auth_password"])]
    for key, value in settings:
        iscsiadm(node + ["--op", "update", "-n", key, "-v", value])


def attach(t, auth):
    """Log in (unless a session exists), scan the LUN, return its block device name."""
    ensure_node(t, auth)
    found = sessions_for(t)
    if not found:
        p = iscsiadm(node_args(t) + ["--login"], ok=None)
        if p.returncode not in (0, ISCSI_ERR_SESS_EXISTS):
            last = (p.stderr.strip().splitlines() or ["no message"])[-1]
            raise ConnectorError("LoginFailed", "login to %s at %s failed (iscsiadm exit %d): %s" % (t.iqn, portal_arg(t.portal), p.returncode, last))
        found = wait_for("session to %s at %s" % (t.iqn, portal_arg(t.portal)), lambda: sessions_for(t))
    s = found[0]
    if s.host is None:
        raise ConnectorError("NoScsiHost", "session%d has no SCSI host in sysfs" % s.sid)
    dev = device_under(s.sid, t.lun)
    if dev is None:
        log("scanning host%d for LUN %d" % (s.host, t.lun))
        write(SYS + "/class/scsi_host/host%d/scan" % s.host, "- - %d" % t.lun)
        dev = wait_for("device for LUN %d of %s at %s" % (t.lun, t.iqn, portal_arg(t.portal)), lambda: device_under(s.sid, t.lun), step=0.02)
    return dev


def flush(dev):
    """Write out what the page cache holds for the device (what blockdev --flushbufs does first)."""
    fd = os.open("/dev/" + dev, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def delete_device(dev):
    path = SYS + "/block/%s/device/delete" % dev
    if not os.path.exists(path):
        return
    log("deleting %s" % dev)
    write(path, "1")
    wait_for("removal of %s" % dev, lambda: not os.path.exists(SYS + "/block/" + dev), step=0.02)


# The deliberately faulty variant: connector-faulty.py is a link to this file, and run under that
# name its detach never logs out nor deletes the node record (see logout_and_delete), so every
# detach leaves an iSCSI session and a node record behind for brick-lab's oracle to name.
FAULTY = os.path.basename(__file__).startswith("connector-faulty")


def logout_and_delete(t):
    """Log out of the target at this portal and delete its node record."""
    if FAULTY:
        log("faulty: NOT logging out of %s at %s and NOT deleting its node record" % (t.iqn, portal_arg(t.portal)))
        return
    node = node_args(t)
    if sessions_for(t):
        iscsiadm(node + ["--logout"], ok=(0, ISCSI_ERR_NO_OBJS_FOUND))
    iscsiadm(node + ["--op", "delete"], ok=(0, ISCSI_ERR_NO_OBJS_FOUND))


# ---------------------------------------------------------------------------------------------
# The operations

def connect_volume(request):
    ts = targets(request.get("connection_properties"))
    auth = chap(request["connection_properties"])
    multipath = flag(request, "multipath")
    found, errors = [], []
    for t in ts:
        try:
            found.append(attach(t, auth))
        except (ConnectorError, OSError) as e:
            message = getattr(e, "message", None) or str(e)
            log("path %s at %s failed: %s" % (t.iqn, portal_arg(t.portal), message))
            errors.append("%s at %s: %s" % (t.iqn, portal_arg(t.portal), message))
            continue
        if not multipath:
            break  # single path: the first portal that works
    if not found:
        raise ConnectorError("VolumeDeviceNotFound", "no path to the volume worked: " + "; ".join(errors))
    dev = found[0]
    wwid = None
    try:
        wwid = wait_for("WWID of %s" % dev, lambda: scsi_wwn(read(SYS + "/block/%s/device/wwid" % dev)), timeout=WWID_WAIT)
    except ConnectorError as e:
        log(e.message)
    log("attached: %s" % ", ".join("/dev/" + d for d in found))
    return {"type": "block", "path": "/dev/" + dev, "scsi_wwn": wwid}


def disconnect_volume(request):
    ts = targets(request.get("connection_properties"))
    force, ignore = flag(request, "force"), flag(request, "ignore_errors")
    info = request.get("device_info")
    if info is not None and not isinstance(info, dict):
        raise ConnectorError("BadRequest", "device_info: must be an object or null (got %s)" % describe(info))
    if info:
        log("device_info: %s" % json.dumps(info))
    errors = []

    def step(what, fn):
        try:
            fn()
        except (ConnectorError, OSError) as e:
            message = "%s: %s" % (what, getattr(e, "message", None) or e)
            if not (force or ignore):
                raise ConnectorError("DisconnectFailed", message)
            log("ignored: " + message)
            errors.append(message)

    now = sessions()
    devices = []
    for t in ts:
        for s in sessions_for(t, now):
            dev = device_under(s.sid, t.lun)
            if dev and dev not in devices:
                devices.append(dev)
    for dev in devices:
        try:
            flush(dev)
        except OSError as e:
            if not force:
                # As os-brick: without force a failed flush stops the detach and keeps the data.
                raise ConnectorError("FlushFailed", "flushing /dev/%s failed: %s; nothing was removed (retry with force to drop unwritten data)" % (dev, e))
            log("flushing /dev/%s failed, going on (force): %s" % (dev, e))
        step("deleting %s" % dev, lambda dev=dev: delete_device(dev))
    done = []
    for t in ts:
        key = (t.portal, t.iqn)
        if key in done:
            continue
        done.append(key)
        still = [(s.sid, hctl) for s in sessions_for(t) for hctl, _ in luns_under(s.sid)]
        if still:
            log("keeping the session to %s at %s: %s still use it" % (t.iqn, portal_arg(t.portal), ", ".join("%d:%d:%d:%d" % h for _, h in still)))
            continue
        step("logging out of %s at %s" % (t.iqn, portal_arg(t.portal)), lambda t=t: logout_and_delete(t))
    # The devices' links are udev's: wait until udev has taken them away, so that nothing of the
    # volume is left when the detach returns (a dangling by-path link is an orphan too).
    try:
        subprocess.run(["udevadm", "settle", "--timeout=30"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=40, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        log("udevadm settle: %s" % e)
    if errors and not ignore:
        raise ConnectorError("DisconnectIncomplete", "; ".join(errors))
    return None


def get_volume_paths(request):
    out = []
    for t in targets(request.get("connection_properties")):
        path = os.path.join(BY_PATH, by_path_name(t))
        if os.path.exists(path) and path not in out:  # exists() follows the link: dangling links are left out
            out.append(path)
    return out


def get_all_available_volumes(request):
    try:
        names = sorted(os.listdir(BY_PATH))
    except OSError:
        return []
    return [os.path.join(BY_PATH, n) for n in names if "-iscsi-" in n and os.path.exists(os.path.join(BY_PATH, n))]


def get_search_path(request):
    return BY_PATH


def handle(request):
    """The result of one request, or a ConnectorError."""
    if not isinstance(request, dict):
        raise ConnectorError("BadRequest", "the request must be a JSON object")
    version = request.get("version")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ConnectorError("UnsupportedProtocolVersion", "this connector speaks protocol version %d (the request has %s)" % (PROTOCOL_VERSION, describe(version)))
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise ConnectorError("UnknownOperation", "operation: must be one of %s (got %s)" % (", ".join(OPERATIONS), describe(operation)))
    if request.get("protocol") != "iscsi":
        raise ConnectorError("UnsupportedProtocol", "protocol: this connector handles iscsi only (got %s)" % describe(request.get("protocol")))
    # Looked up at call time, so that a wrapper (connector-faulty.py) can replace a function.
    handlers = {
        "connect_volume": connect_volume,
        "disconnect_volume": disconnect_volume,
        "get_volume_paths": get_volume_paths,
        "get_all_available_volumes": get_all_available_volumes,
        "get_search_path": get_search_path,
    }
    if operation in ("connect_volume", "disconnect_volume"):
        with open(LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return handlers[operation](request)
    return handlers[operation](request)


def main():
    try:
        try:
            request = json.loads(sys.stdin.read())
        except ValueError as e:
            raise ConnectorError("BadRequest", "stdin is not one JSON document: %s" % e)
        reply = {"version": PROTOCOL_VERSION, "ok": True, "result": handle(request)}
    except ConnectorError as e:
        log("%s: %s" % (e.type, e.message))
        reply = {"version": PROTOCOL_VERSION, "ok": False, "error": {"type": e.type, "message": e.message}}
    except Exception as e:  # a bug here: still a reply, with the traceback on stderr
        traceback.print_exc(file=sys.stderr)
        reply = {"version": PROTOCOL_VERSION, "ok": False, "error": {"type": type(e).__name__, "message": str(e) or repr(e)}}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
