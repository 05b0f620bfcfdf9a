#!/usr/bin/python3
"""Drives Debian's os-brick (6.1.0) in one process for the connector benchmark, as domain.md says:
the import alone takes seconds under TCG, so it is paid once and only the calls are timed.

stdin: {"protocol": "ISCSI"|"NVME", "multipath": bool, "paths": [props...], "all": bool,
        "cycle": props|null, "cycles": n}
stdout: one JSON object with seconds per step and the results.
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

if job.get("paths"):
    t = time.perf_counter()
    results = [conn.get_volume_paths(p) for p in job["paths"]]
    out["paths"] = {"seconds": time.perf_counter() - t, "results": results}

if job.get("all"):
    t = time.perf_counter()
    found = conn.get_all_available_volumes()
    out["all"] = {"seconds": time.perf_counter() - t, "count": len(found)}

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
