#!/usr/bin/python3
"""brick-lab's LIO worker: configures the kernel's iSCSI target through rtslib-fb, the library
targetcli-fb is built on, in one long-lived process.

targetcli pays Python's start-up, the rtslib import and a D-Bus probe on every invocation (seconds
under TCG); this worker pays them once and then handles one JSON request per line on stdin, one
JSON answer per line on stdout:

    {"id": 7, "op": "create", "args": {...}}  ->  {"id": 7, "ok": true, "result": {...}}
                                               ->  {"id": 7, "ok": false, "error": {"code", "message", "field"}}

Every operation that makes several objects undoes what it made when a later step fails, so a
refused request leaves nothing half-made in configfs.
"""
import fcntl
import os
import traceback

from rtslib_fb import (BlockStorageObject, FabricModule, FileIOStorageObject, LUN, MappedLUN,
                       NetworkPortal, NodeACL, RDMCPStorageObject, RTSRoot, Target, TPG)
from rtslib_fb.utils import RTSLibError, RTSLibNotInCFS

from line_worker import serve

ISCSI = FabricModule("iscsi")
# tcm_fc: LIO's FC target over libfc, here on the lab's FCoE ports. Its WWNs are "naa.<16 hex>".
FC = FabricModule("tcm_fc")


class Refused(Exception):
    def __init__(self, code, message, field=None):
        super().__init__(message)
        self.code = code
        self.field = field


def undo(made):
    """Delete what a failed operation made, last made first; what will not go is left to the error."""
    for obj in reversed(made):
        try:
            obj.delete()
        except Exception:
            pass


def find_target(iqn):
    for t in ISCSI.targets:
        if t.wwn == iqn:
            return t
    return None


def find_so(name):
    for so in RTSRoot().storage_objects:
        if so.name == name:
            return so
    return None


def tpg_of(target):
    tpgs = list(target.tpgs)
    return tpgs[0] if tpgs else None


def create(a):
    name = a["name"]
    if find_so(name) is not None:
        raise Refused("VOLUME_EXISTS", "a backstore named %s already exists" % name, "name")
    if a["lun"] is not None and not 0 <= a["lun"] <= 16383:
        raise Refused("BAD_REQUEST", "lun must be 0..16383", "lun")
    made = []  # (kind, object), undone in reverse order on failure
    try:
        kind = a["backstore"]
        so = make_so(a)
        made.append(so)

        target = find_target(a["iqn"])
        if target is None:
            try:
                target = Target(ISCSI, a["iqn"], mode="create")
            except RTSLibError as e:
                raise Refused("BAD_IQN", "rtslib refused the IQN %s: %s" % (a["iqn"], e), "iqn")
            made.append(target)
            tpg = TPG(target, 1, mode="create")
            # Portals only where asked: targetcli's auto_add_default_portal would open 0.0.0.0.
            for portal in a["portals"]:
                ip, port = portal.rsplit(":", 1)
                NetworkPortal(tpg, ip, int(port), mode="create")
        else:
            tpg = tpg_of(target)
        used = {lun.lun for lun in tpg.luns}
        lun_id = a["lun"]
        if lun_id is None:
            lun_id = next(i for i in range(0, 16384) if i not in used)
        elif lun_id in used:
            raise Refused("LUN_IN_USE", "LUN %d is already used in %s" % (lun_id, a["iqn"]), "lun")
        lun = LUN(tpg, lun=lun_id, storage_object=so)
        made.append(lun)

        if a["demoMode"]:
            tpg.set_attribute("generate_node_acls", "1")
            tpg.set_attribute("demo_mode_write_protect", "0")
            tpg.set_attribute("cache_dynamic_acls", "1")
        else:
            tpg.set_attribute("generate_node_acls", "0")
        chap = a.get("chap")
        tpg.set_attribute("authentication", "1" if chap else "0")
        for initiator in a["initiators"]:
            acl = None
            for existing in tpg.node_acls:
                if existing.node_wwn == initiator:
                    acl = existing
            if acl is None:
                try:
                    acl = NodeACL(tpg, initiator, mode="create")
                except RTSLibError as e:
                    raise Refused("BAD_IQN", "rtslib refused the initiator IQN %s: %s" % (initiator, e), "initiators")
                made.append(acl)
            if chap:
                acl.chap_userid = chap["username"]
                acl.chap_password = chap["password"]
            made.append(MappedLUN(acl, lun_id, lun))
        tpg.enable = True
        return {"iqn": a["iqn"], "lun": lun_id, "wwn": so.wwn, "backstore": kind, "storageObject": so.path}
    except Exception:
        undo(made)
        raise


def make_so(a):
    kind = a["backstore"]
    if kind == "fileio":
        return FileIOStorageObject(a["name"], dev=a["path"], size=a["sizeBytes"], wwn=a["wwn"], write_back=False)
    if kind == "block":
        return BlockStorageObject(a["name"], dev=a["path"], wwn=a["wwn"])
    if kind == "ramdisk":
        return RDMCPStorageObject(a["name"], size=a["sizeBytes"], wwn=a["wwn"])
    raise Refused("BAD_REQUEST", "backstore must be fileio, block or ramdisk", "backstore")


def fc_targets():
    """tcm_fc's targets; none before tcm_fc is loaded (asking rtslib then would load it)."""
    return list(FC.targets) if os.path.isdir("/sys/kernel/config/target/fc") else []


def fc_tpg(wwpn):
    """The TPG of the tcm_fc target of one local FC port (naa.<wwpn>), or None."""
    for t in fc_targets():
        if t.wwn == "naa." + wwpn:
            return tpg_of(t)
    return None


def fc_port(a):
    """The tcm_fc target of a local FC port, with an ACL (no LUN yet) per initiator port.

    Made before the port logs in to the fabric: an initiator whose login (PRLI) this port refused
    for want of a target or an ACL keeps a remote port without the FCP target role, and no scan
    reaches it afterwards. The ACLs are the zoning: which host ports may log in; LUN masking is
    per volume (MappedLUN)."""
    made = []
    try:
        tpg = fc_tpg(a["wwpn"])
        if tpg is None:
            target = Target(FC, "naa." + a["wwpn"], mode="create")
            made.append(target)
            tpg = TPG(target, 1, mode="create")
        have = {acl.node_wwn for acl in tpg.node_acls}
        for initiator in a["initiators"]:
            if "naa." + initiator not in have:
                made.append(NodeACL(tpg, "naa." + initiator, mode="create"))
        return {"wwpn": a["wwpn"], "acls": sorted(acl.node_wwn[4:] for acl in tpg.node_acls)}
    except Exception:
        undo(made)
        raise


def fc_create(a):
    """One FC volume: a backstore, the same LUN id in the TPG of every local FC port named, mapped
    on each port to the initiators named for it (their ACLs exist: fc_port)."""
    if find_so(a["name"]) is not None:
        raise Refused("VOLUME_EXISTS", "a backstore named %s already exists" % a["name"], "name")
    tpgs = []
    for wwpn in a["wwpns"]:
        tpg = fc_tpg(wwpn)
        if tpg is None:
            raise Refused("UNKNOWN_TARGET", "no tcm_fc target for the FC port %s" % wwpn, "wwpns")
        tpgs.append(tpg)
    # One LUN space over every FC port of the target (a volume on one fabric and one on the other
    # never share an id): a LUN id names one volume, wherever it is exported.
    used = set()
    for t in fc_targets():
        tpg = tpg_of(t)
        used |= {lun.lun for lun in tpg.luns} if tpg else set()
    lun_id = a["lun"]
    if lun_id is None:
        lun_id = next((i for i in range(0, 256) if i not in used), None)
        if lun_id is None:
            raise Refused("LIMIT_REACHED", "every LUN id from 0 to 255 is used on this target's FC ports", "lun")
    elif lun_id in used:
        raise Refused("LUN_IN_USE", "LUN %d is already used on this target's FC ports" % lun_id, "lun")
    made = []
    try:
        so = make_so(a)
        made.append(so)
        for tpg in tpgs:
            lun = LUN(tpg, lun=lun_id, storage_object=so)
            made.append(lun)
            mine = a["initiators"].get(tpg.parent_target.wwn[4:], [])
            for acl in tpg.node_acls:
                if acl.node_wwn[4:] in mine:
                    made.append(MappedLUN(acl, lun_id, lun))
        return {"lun": lun_id, "wwn": so.wwn}
    except Exception:
        undo(made)
        raise


def fc_map(a):
    """Map one LUN of one local FC port to these initiator ports (their ACLs made when missing)."""
    tpg = fc_tpg(a["wwpn"])
    if tpg is None:
        raise Refused("UNKNOWN_TARGET", "no tcm_fc target for the FC port %s" % a["wwpn"], "wwpn")
    lun = next((x for x in tpg.luns if x.lun == a["lun"]), None)
    if lun is None:
        raise Refused("VOLUME_UNKNOWN", "no LUN %d on the FC port %s" % (a["lun"], a["wwpn"]), "lun")
    fc_port({"wwpn": a["wwpn"], "initiators": a["initiators"]})
    mapped = 0
    for acl in tpg.node_acls:
        if acl.node_wwn[4:] in a["initiators"] and not any(ml.mapped_lun == a["lun"] for ml in acl.mapped_luns):
            MappedLUN(acl, a["lun"], lun)
            mapped += 1
    return {"mapped": mapped}


def fc_remove_lun(a):
    """Take one LUN out of every local FC port (its mappings first); ports and ACLs stay. With a
    name, only a LUN of that backstore is taken."""
    removed = 0
    for t in fc_targets():
        tpg = tpg_of(t)
        for lun in list(tpg.luns) if tpg else []:
            if lun.lun != a["lun"] or (a.get("name") and lun.storage_object.name != a["name"]):
                continue
            for acl in tpg.node_acls:
                for ml in list(acl.mapped_luns):
                    if ml.tpg_lun.lun == lun.lun:
                        ml.delete()
            lun.delete()
            removed += 1
    return {"removed": removed}


def fc_delete(a):
    fc_remove_lun(a)
    so = find_so(a["name"])
    if so is not None:
        so.delete()
    return {"deleted": a["name"]}


def fc_unmap(a):
    """Take a LUN away from one initiator port (or all) on every local FC port; the LUN stays."""
    removed = 0
    for t in fc_targets():
        for acl in tpg_of(t).node_acls:
            if a.get("initiator") and acl.node_wwn != "naa." + a["initiator"]:
                continue
            for ml in list(acl.mapped_luns):
                if ml.tpg_lun.lun == a["lun"]:
                    ml.delete()
                    removed += 1
    return {"unmapped": removed}


def remove_lun(a):
    """Take a LUN out of its target (its ACL mappings first); the target goes with its last LUN."""
    target = find_target(a["iqn"])
    if target is None:
        return {"removed": False}
    tpg = tpg_of(target)
    for lun in list(tpg.luns) if tpg else []:
        if lun.lun == a["lun"]:
            for acl in tpg.node_acls:
                for ml in list(acl.mapped_luns):
                    if ml.tpg_lun.lun == lun.lun:
                        ml.delete()
            lun.delete()
    if tpg is None or not list(tpg.luns):
        target.delete()  # portals, ACLs and the TPG go with it
    return {"removed": True}


def delete(a):
    """Remove one volume: its LUN (as remove_lun), then its backstore."""
    remove_lun(a)
    so = find_so(a["name"])
    if so is not None:
        so.delete()
    return {"deleted": a["name"]}


def unmap(a):
    """Take a LUN away from one initiator while it may be logged in (the LUN itself stays)."""
    target = find_target(a["iqn"])
    if target is None:
        raise Refused("UNKNOWN_TARGET", "no target %s" % a["iqn"], "iqn")
    removed = 0
    for acl in tpg_of(target).node_acls:
        if a.get("initiator") and acl.node_wwn != a["initiator"]:
            continue
        for ml in list(acl.mapped_luns):
            if ml.tpg_lun.lun == a["lun"]:
                ml.delete()
                removed += 1
    return {"unmapped": removed}


def inventory(_a):
    root = RTSRoot()
    targets = []
    for t in ISCSI.targets:
        for tpg in t.tpgs:
            targets.append({
                "iqn": t.wwn,
                "tpg": tpg.tag,
                "enabled": tpg.enable,
                "portals": sorted("%s:%d" % (np.ip_address, np.port) for np in tpg.network_portals),
                "luns": sorted(({"lun": lun.lun, "storageObject": lun.storage_object.name} for lun in tpg.luns),
                               key=lambda x: x["lun"]),
                "acls": [{"initiator": acl.node_wwn, "mappedLuns": [ml.mapped_lun for ml in acl.mapped_luns]}
                         for acl in tpg.node_acls],
            })
    backstores = [{"name": so.name, "plugin": so.plugin, "wwn": so.wwn, "udevPath": getattr(so, "udev_path", "")}
                  for so in root.storage_objects]
    fc_ports = []
    for t in fc_targets():
        tpg = tpg_of(t)
        fc_ports.append({
            "wwpn": t.wwn[4:],
            "luns": sorted(({"lun": lun.lun, "storageObject": lun.storage_object.name} for lun in tpg.luns),
                           key=lambda x: x["lun"]) if tpg else [],
            "acls": [{"initiator": acl.node_wwn[4:], "mappedLuns": [ml.mapped_lun for ml in acl.mapped_luns]}
                     for acl in tpg.node_acls] if tpg else [],
        })
    targets.sort(key=lambda t: t["iqn"])
    backstores.sort(key=lambda b: b["name"])
    fc_ports.sort(key=lambda p: p["wwpn"])
    return {"targets": targets, "backstores": backstores, "fcPorts": fc_ports}


def save(_a):
    return RTSRoot().dump()


def restore(a):
    errors = RTSRoot().restore(a["config"], clear_existing=True, abort_on_error=False)
    return {"errors": errors or []}


def clear(_a):
    """Everything of the volumes goes; the FC ports' targets and ACLs stay (see fc_port): taking
    them away would leave the hosts' remote ports without the target role once they came back."""
    for t in list(ISCSI.targets) if os.path.isdir("/sys/kernel/config/target/iscsi") else []:
        t.delete()
    for t in fc_targets():
        tpg = tpg_of(t)
        for lun in list(tpg.luns) if tpg else []:
            for acl in tpg.node_acls:
                for ml in list(acl.mapped_luns):
                    ml.delete()
            lun.delete()
    for so in list(RTSRoot().storage_objects):
        so.delete()
    return {"cleared": True}


# Loop devices by ioctl, in this already-running process: a losetup process start costs more than
# 100 ms under TCG, and NVMe namespaces need one loop device each.
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_CTL_GET_FREE = 0x4C82


def loop_attach(a):
    ctl = os.open("/dev/loop-control", os.O_RDWR)
    try:
        n = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
    finally:
        os.close(ctl)
    device = "/dev/loop%d" % n
    backing = os.open(a["file"], os.O_RDWR)
    try:
        dev = os.open(device, os.O_RDWR)
        try:
            fcntl.ioctl(dev, LOOP_SET_FD, backing)
        finally:
            os.close(dev)
    finally:
        os.close(backing)
    return {"device": device}


def loop_detach(a):
    dev = os.open(a["device"], os.O_RDWR)
    try:
        fcntl.ioctl(dev, LOOP_CLR_FD, 0)
    finally:
        os.close(dev)
    return {"detached": a["device"]}


OPS = {"create": create, "loop_attach": loop_attach, "loop_detach": loop_detach, "delete": delete, "remove_lun": remove_lun, "unmap": unmap,
       "fc_port": fc_port, "fc_create": fc_create, "fc_map": fc_map, "fc_delete": fc_delete, "fc_remove_lun": fc_remove_lun, "fc_unmap": fc_unmap,
       "inventory": inventory, "save": save, "restore": restore, "clear": clear,
       "ping": lambda _a: {"pong": True}}


def error_of(e):
    if isinstance(e, Refused):
        return {"code": e.code, "message": str(e), "field": e.field}
    if isinstance(e, (RTSLibError, RTSLibNotInCFS)):
        return {"code": "LIO_REFUSED", "message": str(e)}
    # A bug here must not take the worker down: answer it, with where it happened.
    return {"code": "LIO_INTERNAL", "message": "%s: %s" % (type(e).__name__, e), "trace": traceback.format_exc()[-2000:]}


if __name__ == "__main__":
    serve(OPS, error_of)
