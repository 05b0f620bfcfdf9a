import { readFile } from 'node:fs/promises';
import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';
import { iscsiDevicesOf, snapshotIndex } from '../inventory/orphans.js';
import { pathsView } from '../inventory/paths-view.js';
import type { HostFs } from '../system/hostfs.js';
import { ISCSI_CONF_DIR, iscsiNodeDb, iscsiNodes, iscsiSessions } from '../inventory/read-scsi.js';
import type { DevLink, HostSnapshot, IscsiNodeRecord, MultipathMap } from '../inventory/model.js';
import { deleteNodeRecord, isRecordFile, NodeRecordTemplate, updateNodeRecord } from './iscsi-db.js';
import { parsePortal } from '../volume/fields.js';
import { ConnectorBase } from './base.js';
import { removeScsiVolume } from './scsi-detach.js';
import { waitForDevice } from './block.js';
import { multipathMapFor } from './multipath.js';
import type { IscsiProperties, IscsiTargetPath } from '../volume/properties.js';
import { byPathName } from '../volume/bypath.js';
import { iscsiIdentity } from '../volume/identity.js';
import { scsiWwid } from '../volume/ids.js';
import type { AvailableVolume, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from './types.js';

const ISCSIADM_TIMEOUT = 120_000;

/**
 * A snapshot's by-path links by name, its multipath maps by member device, and per target IQN the
 * portals of its sessions (null for a session whose portal is not known yet), made once per snapshot.
 */
interface LinkIndex {
  byPath: Map<string, DevLink>;
  mapsBySlave: Map<string, MultipathMap[]>;
  sessionPortals: Map<string, Set<string | null>>;
}
const linkIndexes = new WeakMap<HostSnapshot, LinkIndex>();
function linkIndex(snap: HostSnapshot): LinkIndex {
  let idx = linkIndexes.get(snap);
  if (!idx) {
    idx = { byPath: new Map(), mapsBySlave: new Map(), sessionPortals: new Map() };
    for (const l of snap.links) if (l.dir === 'by-path') idx.byPath.set(l.name, l);
    for (const m of snap.multipathMaps) for (const sl of m.slaves) idx.mapsBySlave.set(sl, [...(idx.mapsBySlave.get(sl) ?? []), m]);
    for (const x of snap.iscsiSessions) {
      if (!x.targetIqn) continue;
      let portals = idx.sessionPortals.get(x.targetIqn);
      if (!portals) idx.sessionPortals.set(x.targetIqn, (portals = new Set()));
      portals.add(x.portal || null);
    }
    linkIndexes.set(snap, idx);
  }
  return idx;
}

/**
 * What an answer of pathsOn depends on, as a key for the answers kept with a view: the WWID and
 * the paths the view has something at, in any order. A path whose portal the host has no session
 * with for its IQN (and no session of that IQN with its portal unknown) and no by-path link named
 * for adds nothing to the answer (no session of it matches, no link is found), so a volume handed
 * out with every portal of its target but attached through one (Cinder's properties, os-brick's
 * single-path attach) has the same key as its attached paths alone.
 */
function answerKey(snap: HostSnapshot, props: IscsiProperties): string {
  const { byPath, sessionPortals } = linkIndex(snap);
  const lines: string[] = [];
  for (const p of props.paths) {
    const portals = sessionPortals.get(p.iqn);
    if (portals?.has(p.portal) || portals?.has(null) || byPath.has(byPathName(p))) lines.push(`${p.portal} ${p.iqn} ${p.lun}`);
  }
  if (lines.length > 1) lines.sort();
  return `${props.deviceWwid ?? ''}\n${lines.join('\n')}`;
}
/** The static node record iscsiadm writes on this host, learned from its last one (one per process and database). */
const recordTemplates = new Map<string, NodeRecordTemplate>();
function recordTemplateAt(root: string): NodeRecordTemplate {
  let t = recordTemplates.get(root);
  if (!t) recordTemplates.set(root, (t = new NodeRecordTemplate(root, `${ISCSI_CONF_DIR}/iscsid.conf`)));
  return t;
}

/** iscsiadm's "no records/sessions found" and "session already exists". */
const NO_OBJS = 21;
const SESSION_EXISTS = 15;

function iscsiadm(args: string[], reject = true): ReturnType<typeof exec> {
  return exec(['iscsiadm', ...args], { timeoutMs: ISCSIADM_TIMEOUT, reject });
}

/**
 * open-iscsi the way os-brick drives it: a node record per (portal, IQN) with manual session scans,
 * login only when there is no session, a targeted scan of the one LUN, and on detach the removal
 * of exactly this volume's devices and a logout only from sessions no other LUN still uses.
 */
export class IscsiConnector extends ConnectorBase<IscsiProperties> {
  readonly protocol = 'iscsi' as const;

  constructor(fs?: HostFs) {
    super(fs);
    // A view read in the background comes with its indexes and the available volumes made.
    pathsView(this.fs).prepare('iscsi', (s) => {
      snapshotIndex(s);
      linkIndex(s);
      this.fromView(s, 'available', () => availableOn(s));
    });
  }

  getSearchPath(): string {
    return '/dev/disk/by-path';
  }

  /** The node record iscsiadm keeps for (portal, IQN), read from its database, or null. */
  private async nodeRecordOf(p: IscsiTargetPath): Promise<IscsiNodeRecord | null> {
    return (await iscsiNodes(this.fs)).find((r) => r.iqn === p.iqn && r.portal === p.portal) ?? null;
  }

  /** Whether open-iscsi keeps its records where Debian's build does, for this connector to read. */
  private async ownDb(): Promise<boolean> {
    // iscsiadm makes nodes/ with the first record; its configuration beside it says the layout.
    return this.fs.exists(`${ISCSI_CONF_DIR}/iscsid.conf`);
  }

  /**
   * The node record (portal, IQN) with os-brick's settings. iscsiadm makes the record (with
   * iscsid.conf's defaults); the settings are then written into it directly, under open-iscsi's
   * own lock (iscsi-db.ts), and only those it does not hold yet. Where the database is elsewhere,
   * iscsiadm does both.
   */
  private async ensureNode(p: IscsiTargetPath, props: IscsiProperties): Promise<void> {
    const settings: Array<[string, string]> = [
      // Manual scan: a login must not bring in every LUN of a shared target (os-brick bug 1483326).
      ['node.session.scan', 'manual'],
      ['node.startup', 'automatic'],
    ];
    if (props.auth) {
      settings.push(['node.session.auth.authmethod', 'CHAP'], ['node.session.auth.username', props.auth.username], ['node.session.auth.password', props.auth.password]);
    }
    const node = ['-m', 'node', '-T', p.iqn, '-p', p.portal];
    if (!(await this.ownDb())) {
      const show = await iscsiadm(node, false);
      if (show.exitCode === NO_OBJS) await iscsiadm([...node, '--op', 'new']);
      else if (show.exitCode !== 0) throw new BrickError('ISCSIADM_FAILED', show.stderr.trim() || `iscsiadm exited with ${show.exitCode}`);
      await iscsiadm([...node, '--op', 'update', ...settings.flatMap(([k, v]) => ['-n', k, '-v', v])]);
      return;
    }
    let rec = await this.nodeRecordOf(p);
    let made = false;
    const { host, port } = parsePortal(p.portal, 'portal');
    const db = iscsiNodeDb(this.fs);
    const recordTemplate = recordTemplateAt(db);
    if (!rec) {
      // As iscsiadm would write it, from the record it wrote last (NodeRecordTemplate); else by iscsiadm, and learnt.
      if (!(await recordTemplate.write(p.iqn, host, port, settings))) {
        await iscsiadm([...node, '--op', 'new']);
        made = true;
      }
      rec = await this.nodeRecordOf(p);
      if (!rec) throw new BrickError('ISCSI_NODE_NOT_MADE', `iscsiadm made no node record for ${p.iqn} at ${p.portal} in ${db}`);
    }
    // "ip,port" is the record file itself; "ip,port,tpgt" is a directory with one file per iface.
    const text = (isRecordFile(rec) ? await this.fs.readText(rec.path) : await this.fs.readText(`${rec.path}/default`)) ?? '';
    if (made && isRecordFile(rec)) {
      // Its bytes as iscsiadm wrote them (readText trims the last line break).
      await recordTemplate.learn(p.iqn, host, port, await readFile(rec.path, 'utf8'));
    }
    const has = (k: string, v: string): boolean => text.split('\n').some((l) => l.trim() === `${k} = ${v}`);
    const missing = settings.filter(([k, v]) => !has(k, v));
    if (missing.length > 0) await updateNodeRecord(rec, missing);
  }

  /** Delete the node record (portal, IQN) when there is one. */
  private async deleteNode(p: IscsiTargetPath): Promise<(() => Promise<unknown>) | null> {
    const node = ['-m', 'node', '-T', p.iqn, '-p', p.portal];
    if (await this.ownDb()) {
      const rec = await this.nodeRecordOf(p);
      if (!rec) return null;
      return isRecordFile(rec) ? () => deleteNodeRecord(rec) : () => iscsiadm([...node, '--op', 'delete']);
    }
    const show = await iscsiadm(node, false);
    return show.exitCode === 0 ? () => iscsiadm([...node, '--op', 'delete']) : null;
  }

  private async sessionFor(p: IscsiTargetPath): Promise<{ sid: number; host: number | null } | null> {
    const x = (await iscsiSessions(this.fs)).find((y) => y.targetIqn === p.iqn && y.portal === p.portal);
    return x ? { sid: x.sid, host: x.host } : null;
  }

  /** The SCSI devices (H:C:T:L) that hang under one session, straight from sysfs. */
  private async lunsUnder(sid: number): Promise<Array<{ hctl: string; dir: string }>> {
    const dir = `/sys/class/iscsi_session/session${sid}/device`;
    const out: Array<{ hctl: string; dir: string }> = [];
    for (const t of await this.fs.list(dir)) {
      if (!t.startsWith('target')) continue;
      for (const d of await this.fs.list(`${dir}/${t}`)) if (/^\d+:\d+:\d+:\d+$/.test(d)) out.push({ hctl: d, dir: `${dir}/${t}/${d}` });
    }
    return out;
  }

  /** The block device of one LUN under one session, straight from sysfs. */
  private async deviceUnder(sid: number, lun: number): Promise<string | null> {
    for (const l of await this.lunsUnder(sid)) {
      if (Number(l.hctl.split(':')[3]) !== lun) continue;
      const blocks = await this.fs.list(`${l.dir}/block`);
      if (blocks[0]) return blocks[0];
    }
    return null;
  }

  private async attachPath(p: IscsiTargetPath, props: IscsiProperties): Promise<string> {
    await this.ensureNode(p, props);
    let session = await this.sessionFor(p);
    if (!session) {
      const r = await iscsiadm(['-m', 'node', '-T', p.iqn, '-p', p.portal, '--login'], false);
      if (r.exitCode !== 0 && r.exitCode !== SESSION_EXISTS) {
        throw new BrickError('ISCSI_LOGIN_FAILED', `login to ${p.iqn} at ${p.portal} failed (iscsiadm exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop()}`);
      }
      session = await waitForDevice(`session to ${p.iqn} at ${p.portal}`, () => this.sessionFor(p), 30_000);
    }
    if (session.host === null) throw new BrickError('ISCSI_NO_HOST', `session${session.sid} has no SCSI host`);
    const existing = await this.deviceUnder(session.sid, p.lun);
    if (existing) return existing;
    // The targeted scan of the one LUN (channel and target wildcards: a session has one target).
    await this.fs.write(`/sys/class/scsi_host/host${session.host}/scan`, `- - ${p.lun}`);
    const sid = session.sid;
    return waitForDevice(`device for LUN ${p.lun} of ${p.iqn} at ${p.portal}`, () => this.deviceUnder(sid, p.lun), 30_000, 20);
  }

  connectVolume(props: IscsiProperties, opts: { multipath?: boolean } = {}): Promise<DeviceInfo> {
    return this.serially(() => this.connectNow(props, opts));
  }

  private async connectNow(props: IscsiProperties, opts: { multipath?: boolean }): Promise<DeviceInfo> {
    const found: Array<{ path: IscsiTargetPath; block: string }> = [];
    const errors: string[] = [];
    for (const p of props.paths) {
      try {
        found.push({ path: p, block: await this.attachPath(p, props) });
        if (!opts.multipath) break; // single path: the first portal that works, as os-brick does
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (found.length === 0) {
      throw new BrickError('CONNECT_FAILED', `no path to the volume worked: ${errors.join('; ')}`);
    }
    // The device is taken from sysfs as soon as the scan made it, as os-brick does; udev's links
    // follow (getVolumePaths reports the device either way).
    // The WWID comes from the LUN's VPD pages, read as the device is added: wait for it (os-brick
    // waits for it too) rather than hand back a device without its identity.
    const first = found[0]!.block;
    const wwid = await waitForDevice(`WWID of ${first}`, () => scsiWwid(this.fs.readText(`/sys/block/${first}/device/wwid`)), 10_000, 20).catch(() => null);
    const devices = found.map((f) => f.block);
    if (opts.multipath && wwid) {
      const map = await multipathMapFor(this.fs, wwid, devices);
      return { type: 'block', path: `/dev/${map}`, devices, multipath: true, identity: wwid };
    }
    return { type: 'block', path: `/dev/${devices[0]}`, devices, multipath: false, identity: wwid };
  }

  disconnectVolume(props: IscsiProperties, device: DeviceInfo | null, opts: DisconnectOptions = {}): Promise<DetachResult> {
    return this.serially(() => this.disconnectNow(props, device, opts));
  }

  private async disconnectNow(props: IscsiProperties, device: DeviceInfo | null, opts: DisconnectOptions): Promise<DetachResult> {
    const d = this.detach(opts);
    const snap = await this.snapshot();
    const blocks = new Set<string>(device?.devices ?? []);
    for (const p of props.paths) for (const x of iscsiDevicesOf(snap, iscsiIdentity(props, p))) if (x.block) blocks.add(x.block);
    const wwid = device?.identity ?? props.deviceWwid ?? snap.scsiDevices.find((x) => x.block && blocks.has(x.block))?.wwid ?? null;
    const links = await removeScsiVolume(this.fs, d, snap, blocks, wwid, opts.force === true);
    const sessions = await iscsiSessions(this.fs);
    for (const p of props.paths) {
      const s = sessions.find((x) => x.targetIqn === p.iqn && x.portal === p.portal);
      const inUse = s ? (await this.lunsUnder(s.sid)).length > 0 : false;
      if (inUse) continue; // another LUN of this target still uses the session
      if (s) await d.step(`session${s.sid} (${p.iqn} at ${p.portal})`, () => iscsiadm(['-m', 'node', '-T', p.iqn, '-p', p.portal, '--logout']));
      const del = await this.deleteNode(p);
      if (del) await d.step(`node record ${p.iqn} ${p.portal}`, del);
    }
    await d.waitLinksGone(links);
    return d.result();
  }

  async getVolumePaths(props: IscsiProperties, snapshot?: HostSnapshot): Promise<VolumePaths> {
    const snap = snapshot ?? this.view({ wwids: Boolean(props.deviceWwid) });
    // Kept by what the answer depends on (a gate job asks for the same volumes again and again).
    return this.fromView(snap, answerKey(snap, props), () => pathsOn(snap, props));
  }

  async getAllAvailableVolumes(props?: IscsiProperties): Promise<AvailableVolume[]> {
    const snap = this.view({ wwids: true });
    return props ? availableOn(snap, props) : this.fromView(snap, 'available', () => availableOn(snap));
  }
}

/** The iSCSI volumes a snapshot shows (of the properties' target and LUNs, when given), one per WWID. */
function availableOn(snap: HostSnapshot, props?: IscsiProperties): AvailableVolume[] {
  const sessions = new Map(snap.iscsiSessions.map((s) => [s.sid, s]));
  const linksTo = new Map<string, string[]>();
  for (const l of snap.links) if (l.dir === 'by-path' && l.target) linksTo.set(l.target, [...(linksTo.get(l.target) ?? []), `/dev/disk/by-path/${l.name}`]);
  const byWwid = new Map<string, AvailableVolume>();
  for (const d of snap.scsiDevices) {
    if (d.session === null || !d.block) continue;
    const s = sessions.get(d.session);
    if (props && !props.paths.some((p) => p.iqn === s?.targetIqn && p.lun === d.lun)) continue;
    const key = d.wwid ?? d.hctl;
    const v = byWwid.get(key) ?? { protocol: 'iscsi' as const, identity: { wwid: d.wwid, target: s?.targetIqn ?? null, lun: d.lun, portals: [] as string[] }, paths: [] as string[], devices: [] as string[] };
    if (s?.portal && !v.identity.portals!.includes(s.portal)) v.identity.portals!.push(s.portal);
    v.devices.push(d.block);
    v.paths.push(...(linksTo.get(d.block) ?? []));
    byWwid.set(key, v);
  }
  return [...byWwid.values()];
}

/** The paths and devices of an iSCSI volume in a snapshot (ISCSIConnector.getVolumePaths). */
function pathsOn(snap: HostSnapshot, props: IscsiProperties): VolumePaths {
  const { byPath, mapsBySlave } = linkIndex(snap);
  const disks = new Set<string>();
  // One lookup per (target, LUN): the paths of a multipath volume over one target share it (its identity covers every portal).
  const looked = new Set<string>();
  for (const p of props.paths) {
    const key = `${p.iqn} ${p.lun}`;
    if (looked.has(key)) continue;
    looked.add(key);
    for (const d of iscsiDevicesOf(snap, iscsiIdentity(props, p))) if (d.block) disks.add(d.block);
  }
  // A link names a (portal, target, LUN), not a volume: when the properties carry the volume's
  // WWID, a link to a device that now holds another volume at that LUN is not its path.
  const paths = new Set<string>();
  for (const p of props.paths) {
    const l = byPath.get(byPathName(p));
    if (l && !l.dangling && (!props.deviceWwid || disks.has(l.target!))) paths.add(`/dev/disk/by-path/${l.name}`);
  }
  const devices = new Set(disks);
  for (const d of disks) for (const m of mapsBySlave.get(d) ?? []) devices.add(m.dm);
  return { paths: [...paths].sort(), devices: [...devices].sort() };
}
