#!/usr/bin/python3
"""os-brick behind brick-lab's external connector protocol (version 1, docs/connector-protocol.md).

brick-lab runs a connector program once per call: one JSON request on stdin, one JSON reply on
stdout. Importing os-brick takes ten seconds and more under TCG, so this program is two things:

- a client (how brick-lab runs it): it hands the request to a server process over a Unix socket
  and prints the server's reply, starting the server first when none answers;
- the server (`--serve`): it imports Debian's os-brick once and answers requests one at a time,
  as nova-compute's long-lived process would, and exits after 15 idle minutes.

os-brick runs as root without sudo and without a privsep daemon, as domain.md describes:
oslo.config with a lock path, `os_brick.setup`, `privileged.default.set_client_mode(False)`.
Only the standard library is used on the client side, so a call costs a python3 start, not an
os-brick import.
"""
import json
import os
import socket
import subprocess
import sys
import time

def _own_hash():
    import hashlib

    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


# One server per version of this file: a changed adapter starts a server of its own (the old one
# goes when it has been idle for IDLE_SECONDS).
SOCKET = "/run/brick-lab/os-brick-%s.sock" % _own_hash()
IDLE_SECONDS = 15 * 60
START_TIMEOUT = 300
PROTOCOLS = {"iscsi": "ISCSI", "nvmeof": "NVME", "fc": "FIBRE_CHANNEL", "local": "LOCAL"}


def describe(e):
    """One line per error: os-brick's ExceptionChainer prints whole tracebacks; keep each chained
    exception's type and message instead, and fold the command output of ProcessExecutionError."""
    chained = getattr(e, "_exceptions", None)
    if chained:
        return "; ".join("%s: %s" % (t.__name__, " ".join(str(v).split())) for t, v, _ in chained)
    return " ".join(str(e).split())


def reply_error(kind, message):
    return {"version": 1, "ok": False, "error": {"type": kind, "message": message}}


# ----------------------------------------------------------------------------------------------
# server


def serve():
    # One server at a time: two clients may both find none and start one each.
    import fcntl

    os.makedirs(os.path.dirname(SOCKET), exist_ok=True)
    lock = open(SOCKET + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return
    from oslo_config import cfg
    import os_brick
    from os_brick import privileged
    from os_brick.initiator import connector

    cfg.CONF([], project="brick-lab")
    cfg.CONF.set_override("lock_path", "/run/brick-lab/os-brick-locks", group="oslo_concurrency")
    os_brick.setup(cfg.CONF)
    privileged.default.set_client_mode(False)  # root in the guest: no sudo, no privsep daemon

    connectors = {}

    def get(protocol, multipath):
        key = (protocol, bool(multipath))
        if key not in connectors:
            connectors[key] = connector.InitiatorConnector.factory(PROTOCOLS[protocol], None, use_multipath=bool(multipath))
        return connectors[key]

    def nvme_props(props):
        # os-brick 6.1's NVMe get_volume_paths reads attributes of NVMeOFConnProps, not a dict.
        from os_brick.initiator.connectors.nvmeof import NVMeOFConnProps

        return NVMeOFConnProps(props, find_controllers=True)

    def handle(req):
        op = req.get("operation")
        protocol = req.get("protocol")
        if protocol not in PROTOCOLS:
            return reply_error("BadRequest", "protocol must be one of %s" % ", ".join(PROTOCOLS))
        props = req.get("connection_properties") or {}
        conn = get(protocol, req.get("multipath", False))
        if op == "connect_volume":
            result = conn.connect_volume(props)
        elif op == "disconnect_volume":
            conn.disconnect_volume(props, req.get("device_info"), force=bool(req.get("force")), ignore_errors=bool(req.get("ignore_errors")))
            result = None
        elif op == "get_volume_paths":
            result = conn.get_volume_paths(nvme_props(props) if protocol == "nvmeof" else props)
        elif op == "get_all_available_volumes":
            result = conn.get_all_available_volumes(props)
        elif op == "get_search_path":
            result = conn.get_search_path()
        else:
            return reply_error("BadRequest", "unknown operation %r" % op)
        return {"version": 1, "ok": True, "result": result}

    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(SOCKET)
    os.chmod(SOCKET, 0o600)
    srv.listen(16)
    srv.settimeout(IDLE_SECONDS)
    while True:
        try:
            client, _ = srv.accept()
        except socket.timeout:
            break
        with client:
            data = b""
            while not data.endswith(b"\n"):
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
            try:
                reply = handle(json.loads(data))
            except Exception as e:  # os-brick's own exceptions are the connector's answer
                reply = reply_error(type(e).__name__, describe(e))
            client.sendall(json.dumps(reply, default=str).encode() + b"\n")
    srv.close()
    os.unlink(SOCKET)


# ----------------------------------------------------------------------------------------------
# client


def ask(request_bytes):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCKET)
    with s:
        s.sendall(request_bytes.rstrip(b"\n") + b"\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def start_server():
    log = open("/run/brick-lab/os-brick-server.log", "ab")
    # The server outlives this call: it must not carry the call's marker, by which brick-lab finds
    # (and kills) what a call that ran over its time left running.
    env = {k: v for k, v in os.environ.items() if k != "BRICK_CONNECTOR_CALL"}
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)


def client():
    request = sys.stdin.buffer.read()
    try:
        json.loads(request)
    except ValueError as e:
        print(json.dumps(reply_error("BadRequest", "the request is not JSON: %s" % e)))
        return
    os.makedirs("/run/brick-lab", exist_ok=True)
    deadline = time.monotonic() + START_TIMEOUT
    started = False
    while True:
        try:
            sys.stdout.write(ask(request).decode())
            return
        except (FileNotFoundError, ConnectionRefusedError):
            if not started:
                start_server()
                started = True
            if time.monotonic() > deadline:
                print(json.dumps(reply_error("ServerDidNotStart", "the os-brick server did not answer within %d s: see /run/brick-lab/os-brick-server.log" % START_TIMEOUT)))
                return
            time.sleep(0.2)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        client()
