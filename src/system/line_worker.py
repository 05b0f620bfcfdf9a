"""The Python side of the line-worker protocol that src/system/exec.ts (startLineWorker) speaks.

A worker first writes {"id": 0, "ok": true, "result": {"ready": true}}, then answers one JSON
request per line on stdin with one JSON answer per line on stdout, in order:

    {"id": 7, "op": "NAME", "args": {...}}  ->  {"id": 7, "ok": true, "result": ...}
                                             ->  {"id": 7, "ok": false, "error": {"code", "message", ...}}

It returns when stdin closes (its owner is gone). Both of brick-lab's Python workers (the LIO
worker and the multipathd relay) are shipped beside this file and import it from there.
"""
import json
import sys


def serve(ops, error_of):
    """Answer requests until stdin closes. `ops` maps an op name to a function of its args;
    `error_of(exception)` gives the error object of a request that raised: no exception, however
    unexpected, ends the worker."""
    out = sys.stdout
    out.write(json.dumps({"id": 0, "ok": True, "result": {"ready": True}}) + "\n")
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        rid = None
        try:
            req = json.loads(line)
            rid = req.get("id")
            answer = {"id": rid, "ok": True, "result": ops[req["op"]](req.get("args") or {})}
        except Exception as e:  # noqa: BLE001 -- every failure is answered, never raised
            answer = {"id": rid, "ok": False, "error": error_of(e)}
        out.write(json.dumps(answer) + "\n")
        out.flush()
