#!/usr/bin/python3
"""brick-lab's multipathd relay: asks multipathd over its control socket, in one long-lived process.

`multipathd show ...` costs a process (100-250 ms under TCG) per question; the compute agent asks
several per oracle call. multipathd listens only on the abstract unix socket
@/org/kernel/linux/storage/multipathd, which Node 20 cannot reach (it connects with the whole
sockaddr_un as address length, so the name it asks for is padded with NULs): this relay connects
for it. It speaks the line-worker protocol of src/system/exec.ts on stdin/stdout:

    {"id": 7, "op": "query", "args": {"command": "show paths raw format \\"%d\\" \\n", "timeoutMs": 4000}}
        ->  {"id": 7, "ok": true, "result": {"reply": "..."}}
        ->  {"id": 7, "ok": false, "error": {"code": "MULTIPATHD_NOT_RUNNING", "message": "..."}}

and libmpathcmd's framing on the socket (libmpathcmd/mpath_cmd.c, multipath-tools 0.9.4): a
native size_t length, then that many bytes, the text with its terminating NUL; the same for the
reply. One connection carries any number of questions, one at a time.

The connection is made on the first question and kept; when multipathd went away (restarted, shut
down) the next question makes a new one. The relay ends when its stdin closes (its owner is gone).
Usage: multipathd_relay.py [SOCKET_NAME]   (the abstract name without its leading NUL; tests only)
"""
import select
import socket
import struct
import sys
import time

from line_worker import serve

NAME = sys.argv[1] if len(sys.argv) > 1 else "/org/kernel/linux/storage/multipathd"
# size_t in the machine's own byte order, as mpath_send_cmd writes it.
LENGTH = struct.Struct("@N")
# libmpathcmd refuses replies this long or longer (MAX_REPLY_LEN).
MAX_REPLY_LEN = 32 * 1024 * 1024


class Failed(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


conn = None


def connect(deadline):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A connect waits while multipathd's backlog is full: not longer than the question may take.
    s.settimeout(max(deadline - time.monotonic(), 0.001))
    try:
        # Python gives the kernel exactly these bytes as the address: the name multipathd bound.
        s.connect("\0" + NAME)
    except socket.timeout:
        s.close()
        raise
    except OSError as e:
        s.close()
        raise Failed("MULTIPATHD_NOT_RUNNING", "nothing listens on @%s (%s)" % (NAME, e.strerror or e))
    return s


def closed_while_idle(s):
    """multipathd never writes unasked: an idle connection that reads as ready was closed."""
    ready, _, _ = select.select([s], [], [], 0)
    return bool(ready)


def drop():
    global conn
    if conn is not None:
        conn.close()
        conn = None


def recv_exactly(s, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        s.settimeout(left)
        chunk = s.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise Failed("MULTIPATHD_CLOSED", "multipathd closed the connection before it answered")
        buf += chunk
    return bytes(buf)


def exchange(s, command, deadline):
    data = command.encode("utf-8") + b"\0"
    s.settimeout(max(deadline - time.monotonic(), 0.001))
    s.sendall(LENGTH.pack(len(data)) + data)
    (n,) = LENGTH.unpack(recv_exactly(s, LENGTH.size, deadline))
    if n <= 0 or n >= MAX_REPLY_LEN:
        raise Failed("MULTIPATHD_BAD_REPLY", "multipathd announced a reply of %d bytes" % n)
    body = recv_exactly(s, n, deadline)
    # The CLI prints the reply as a C string: up to its first NUL.
    return body[:-1].split(b"\0", 1)[0].decode("utf-8", "replace")


def query(args):
    global conn
    deadline = time.monotonic() + max(int(args.get("timeoutMs") or 4000), 1) / 1000
    if conn is not None and closed_while_idle(conn):
        drop()
    try:
        if conn is None:
            conn = connect(deadline)
        return {"reply": exchange(conn, args["command"], deadline)}
    except socket.timeout:
        # A late reply would be read as the next question's: that connection is done.
        drop()
        raise Failed("MULTIPATHD_TIMEOUT", "multipathd did not answer in %s ms" % args.get("timeoutMs"))
    except Failed:
        drop()
        raise
    except OSError as e:
        drop()
        raise Failed("MULTIPATHD_FAILED", "multipathd connection: %s" % (e.strerror or e))


OPS = {"query": query}


def error_of(e):
    if isinstance(e, Failed):
        return {"code": e.code, "message": str(e)}
    # A bad request must not take the relay down.
    return {"code": "MULTIPATHD_RELAY_ERROR", "message": "%s: %s" % (type(e).__name__, e)}


def main():
    serve(OPS, error_of)
    drop()


if __name__ == "__main__":
    main()
