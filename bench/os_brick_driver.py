#!/usr/bin/python3
"""Drives Debian's os-brick (6.1.0) in one process for the connector benchmark, as domain.md says:
the import alone takes seconds under TCG, so it is paid once and only the calls are timed.

stdin: {"protocol": "ISCSI"|"NVME", "multipath": bool, "paths": [props...], "all": bool,
        "cycle": props|null, "cycles": n, "idleSeconds": s, "repeat": n, "budgetSeconds": s}
stdout: one JSON object with seconds per step and the results.

A read ("paths", "all") is timed three ways, as brick-lab's agent is: the call right after the
import ("fresh", what a one-shot process pays), then, after the process has slept idleSeconds and
the guest with it, the call that wakes it ("first": a resident service such as nova-compute or the
spec's HTTP service answering a check that comes after a quiet spell), then the median of
up to `repeat` more ("warm"; at least three, and no more once budgetSeconds are spent).
"""
import json
import sys
import time

t0 = time.perf_counter()
from oslo_config import cfg  # noqa: E402
import os_brick  # noqa: E402
from os_brick import privileged  # noqa: E402
from os_brick.initiator import connector  # noqa: E402

cfg.CONF([], project="brick-lab")
cfg.CONF.set_override("lock_path", "/tmp/os-brick-locks", group="oslo_concurrency")
os_brick.setup(cfg.CONF)
privileged.default.set_client_mode(False)  # no sudo, no privsep daemon: we are root in the guest

job = json.load(sys.stdin)
conn = connector.InitiatorConnector.factory(job["protocol"], None, use_multipath=job.get("multipath", False))
out = {"importSeconds": time.perf_counter() - t0}



def timed(fn):
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def read_three_ways(fn):
    fresh, value = timed(fn)
    time.sleep(float(job.get("idleSeconds", 0)))
    first, _ = timed(fn)
    warm = []
    start = time.perf_counter()
    while len(warm) < max(3, int(job.get("repeat", 3))):
        if len(warm) >= 3 and time.perf_counter() - start > float(job.get("budgetSeconds", 15)):
            break
        warm.append(timed(fn)[0])
    warm.sort()
    return {"fresh": fresh, "first": first, "warm": warm[len(warm) // 2], "calls": len(warm)}, value


if job.get("paths"):
    times, results = read_three_ways(lambda: [conn.get_volume_paths(p) for p in job["paths"]])
    out["paths"] = dict(times, results=results)

if job.get("all"):
    times, found = read_three_ways(conn.get_all_available_volumes)
    out["all"] = dict(times, count=len(found))

if job.get("cycle"):
    props = job["cycle"]
    cycles = []
    for _ in range(int(job.get("cycles", 1))):
        t = time.perf_counter()
        info = conn.connect_volume(props)
        attached = time.perf_counter() - t
        t = time.perf_counter()
        conn.disconnect_volume(props, info)
        cycles.append({"attachSeconds": attached, "detachSeconds": time.perf_counter() - t, "device": info.get("path")})
    out["cycle"] = cycles

print(json.dumps(out, default=str))
