import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import { check, protocolOf, wwidOf, type ComputeHandle, type ScenarioContext } from './context.js';
import type { TargetProtocol } from '../volume/protocol.js';

export interface ScenarioNeeds {
  /** Compute nodes the scenario uses (live migration needs two). */
  computes: number;
  /** Data networks between target and computes (multipath needs two). */
  dataNetworks: number;
  /**
   * It acts on the target as a whole (takes all its ports down, say), so that scenarios beside it
   * on other computes would feel it, or it leaves iscsid to log in by itself (after an outage, at
   * a reboot), a login that no target change beside it may abort (login-guard.ts): it runs alone
   * (see schedule.ts).
   */
  wholeLab?: boolean;
}

export interface Scenario {
  name: string;
  title: string;
  /** 'round-trip', 'shared', 'migration' or 'orphan-pair' (a faulty sequence, then a correct one). */
  kind: 'round-trip' | 'shared' | 'migration' | 'orphan-pair';
  needs: ScenarioNeeds;
  /** Where the sequence comes from: domain.md's list, upstream bugs, advisories. */
  refs: string[];
  run(ctx: ScenarioContext): Promise<void>;
}

/** A scenario that runs on the first compute node: `run` is given the context and that node. */
export function onCompute(about: Omit<Scenario, 'run'>, run: (ctx: ScenarioContext, node: ComputeHandle) => Promise<void>): Scenario {
  return { ...about, run: (ctx) => run(ctx, ctx.compute) };
}

type Volume = TargetVolume;

/** Create a volume of the protocol on one network (1 path) or on all (2 paths). */
async function makeVolume(ctx: ScenarioContext, protocol: TargetProtocol, name: string, paths: number, extra: Record<string, unknown> = {}): Promise<Volume> {
  const networks = ctx.networks(paths);
  if (protocol === 'iscsi') return ctx.createIscsi({ name, networks, ...extra });
  return protocol === 'fc' ? ctx.createFc({ name, networks, ...extra }) : ctx.createNvme({ name, networks, ...extra });
}

/** Attach, paths equal to what sysfs holds, identity, a signature written and read back. */
async function attachAndCheck(ctx: ScenarioContext, node: ComputeHandle, v: Volume, multipath: boolean): Promise<{ d: DeviceInfo; paths: string[] }> {
  const d = await ctx.connect(node, v, multipath);
  const p = await ctx.paths(node, v);
  for (const dev of d.devices) check(p.devices.includes(dev), `${node.name}: getVolumePaths of ${v.name} lacks ${dev} (it gave ${p.devices.join(', ')})`);
  const wwid = wwidOf(v);
  if (wwid) {
    check(d.identity === wwid, `${node.name}: ${v.name} attached with WWID ${d.identity}, the target says ${wwid}`);
    check(p.paths.length === (multipath ? 2 : 1), `${node.name}: ${v.name} has ${p.paths.length} by-path links, expected ${multipath ? 2 : 1}`);
  } else {
    check(d.identity === v.nvme!.uuid, `${node.name}: ${v.name} attached with UUID ${d.identity}, the target says ${v.nvme!.uuid}`);
    check(p.paths.length === 1 && p.paths[0] === d.path, `${node.name}: ${v.name} paths ${p.paths.join(', ')}, expected ${d.path}`);
  }
  const avail = await node.client.availableVolumes(protocolOf(v));
  const mine = avail.volumes.filter((a) => (wwid ? a.identity.wwid === wwid : a.identity.uuid === v.nvme!.uuid));
  check(mine.length === 1, `${node.name}: getAllAvailableVolumes lists ${v.name} ${mine.length} times`);
  const target = mine[0]!.identity.target;
  check(v.fc ? v.fc.wwpns.includes(target ?? '') : target === (v.iscsi?.iqn ?? v.nvme!.nqn), `${node.name}: getAllAvailableVolumes gives ${v.name} target ${target}`);
  const sig = await ctx.writeSignature(node, d.path, v);
  const back = await ctx.readSignature(node, d.path);
  check(back?.id === sig.id, `${node.name}: ${d.path} read back ${JSON.stringify(back)}, wrote ${JSON.stringify(sig)}`);
  const onTarget = await ctx.target.client.signature(v.name);
  check(onTarget.signature?.id === v.id, `target: ${v.name} holds ${JSON.stringify(onTarget.signature)}, not the signature written on ${node.name}`);
  return { d, paths: p.paths };
}

/** A protocol's word in scenario names, and its name in titles. */
const SHORT = { iscsi: 'iscsi', nvmeof: 'nvme', fc: 'fc' } as const satisfies Record<TargetProtocol, string>;
const LABEL = { iscsi: 'iSCSI', nvmeof: 'NVMe/TCP', fc: 'FC (FCoE VN2VN, one fabric per data network)' } as const satisfies Record<TargetProtocol, string>;

function roundTrip(protocol: TargetProtocol, paths: 1 | 2): Scenario {
  return onCompute({
    name: `round-trip-${SHORT[protocol]}-${paths}path`,
    title: `${LABEL[protocol]} over ${paths} path${paths > 1 ? 's' : ''}: attach, paths, signature, detach, nothing left`,
    kind: 'round-trip',
    needs: { computes: 1, dataNetworks: paths },
    refs: ['design.md: What "no orphans" means'],
  }, async (ctx, node) => {
    const v = await makeVolume(ctx, protocol, 'vol', paths);
    const { d, paths: found } = await attachAndCheck(ctx, node, v, paths === 2);
    await ctx.disconnect(node, v, d);
    await ctx.verdict(node, v, { device: d, paths: found, expect: 'clean' });
    await ctx.deleteVolume(v);
  });
}

const roundTripLocal = onCompute({
  name: 'round-trip-local',
  title: 'local SCSI (scsi_debug): attach, paths, signature, detach, nothing left',
  kind: 'round-trip',
  needs: { computes: 1, dataNetworks: 1 },
  refs: ['design.md: local SCSI connector'],
}, async (ctx, node) => {
  const disk = await node.client.addLocalDisk();
  ctx.undo.push({ what: `${node.name}: scsi_debug host ${disk.host}`, fn: () => node.client.removeLocalDisk(disk.host) });
  ctx.step(`${node.name}: scsi_debug disk ${disk.device} (host ${disk.host})`);
  const props = { driver_volume_type: 'local', data: { device_path: disk.device } };
  const d = await node.client.connect('local', props, ctx.via());
  ctx.step(`${node.name}: attached the local disk as ${d.path}`);
  const p = await node.client.volumePaths('local', props);
  check(p.paths.includes(disk.device!), `${node.name}: local paths ${p.paths.join(', ')} lack ${disk.device}`);
  const sig = { volume: ctx.name('local'), id: '00000000-0000-4000-8000-000000000001' };
  await ctx.writeSignature(node, d.path, sig);
  const back = await ctx.readSignature(node, d.path);
  check(back?.id === sig.id, `${node.name}: ${d.path} read back ${JSON.stringify(back)}`);
  const baseline = await node.client.inventory();
  await node.client.disconnect('local', props, d, ctx.via());
  ctx.step(`${node.name}: detached the local disk`);
  const r = await node.client.orphans({ protocol: 'local', properties: props, ...(disk.wwid ? { wwid: disk.wwid } : {}), devices: d.devices, baseline });
  ctx.rows.push({ node: node.name, volume: disk.device!, protocol: 'local', phase: 'run', device: d.path, paths: p.paths, left: r.orphans, kept: r.kept, hostWide: r.hostWide ?? null, expected: 'clean' });
  check(r.clean, `${node.name}: local disk left ${JSON.stringify(r.orphans)}; host-wide ${JSON.stringify(r.hostWide)}`);
});

function sharedTarget(protocol: TargetProtocol): Scenario {
  return onCompute({
    name: `shared-target-${protocol === 'iscsi' ? 'iscsi' : 'nvme'}`,
    title: protocol === 'iscsi'
      ? 'two LUNs on one IQN: detaching the first keeps the session (not an orphan); detaching the second removes it'
      : 'two namespaces in one subsystem: detaching the first keeps the controller (not an orphan); detaching the second removes it',
    kind: 'shared',
    needs: { computes: 1, dataNetworks: 1 },
    refs: ['domain.md: Not an orphan: a session kept because another attached volume still uses it'],
  }, async (ctx, node) => {
    const first = await makeVolume(ctx, protocol, 'a', 1);
    const shared = protocol === 'iscsi' ? { iqn: first.iscsi!.iqn } : { nqn: first.nvme!.nqn };
    const second = await makeVolume(ctx, protocol, 'b', 1, shared);
    const a = await attachAndCheck(ctx, node, first, false);
    const b = await attachAndCheck(ctx, node, second, false);
    await ctx.disconnect(node, first, a.d);
    if (protocol === 'nvmeof') {
      // NVMe has no per-namespace logout: a host lets go of one namespace of a subsystem it
      // still uses when the target stops exporting it (Cinder's terminate_connection).
      await ctx.target.client.unmap(first.name);
      ctx.step(`target: namespace ${first.nvme!.nsid} of ${first.nvme!.nqn} no longer exported (terminate_connection)`);
      await ctx.waitGone(node, first);
    }
    await ctx.verdict(node, first, { phase: 'first detached', device: a.d, paths: a.paths, stillAttached: [second], expect: 'clean' });
    const snap = await ctx.snapshot(node);
    if (protocol === 'iscsi') check(snap.iscsiSessions.some((s) => s.targetIqn === first.iscsi!.iqn), `${node.name}: the session to ${first.iscsi!.iqn} went with the first LUN, though the second still uses it`);
    else check(snap.nvmeControllers.some((c) => c.subsysNqn === first.nvme!.nqn), `${node.name}: the controller of ${first.nvme!.nqn} went with the first namespace, though the second still uses it`);
    check((await ctx.readSignature(node, b.d.path))?.id === second.id, `${node.name}: ${second.name} no longer reads its signature after ${first.name} was detached`);
    await ctx.disconnect(node, second, b.d);
    await ctx.verdict(node, second, { phase: 'second detached', device: b.d, paths: b.paths, expect: 'clean' });
    await ctx.verdict(node, first, { phase: 'second detached', expect: 'clean' });
    await ctx.deleteVolume(second);
    await ctx.deleteVolume(first);
  });
}

function liveMigration(protocol: TargetProtocol): Scenario {
  return {
    name: `live-migration-${SHORT[protocol]}`,
    title: 'attach on compute-1, attach the same volume on compute-2, detach on compute-1: compute-1 is clean, compute-2 still reads the data',
    kind: 'migration',
    needs: { computes: 2, dataNetworks: 1 },
    refs: ['brick-fetch-paths.rst: verify attach and detach across hosts (live migration)', 'os-brick bug 1483326'],
    async run(ctx) {
      const [src, dst] = [ctx.computes[0]!, ctx.computes[1]!];
      const v = await makeVolume(ctx, protocol, 'vol', 1);
      const s = await attachAndCheck(ctx, src, v, false);
      const dd = await ctx.connect(dst, v, false);
      check((await ctx.readSignature(dst, dd.path))?.id === v.id, `${dst.name}: the migrated volume does not read the signature written on ${src.name}`);
      await ctx.disconnect(src, v, s.d);
      await ctx.verdict(src, v, { phase: 'source detached', device: s.d, paths: s.paths, expect: 'clean' });
      check((await ctx.readSignature(dst, dd.path))?.id === v.id, `${dst.name}: lost the volume's data when ${src.name} detached`);
      const dp = await ctx.paths(dst, v);
      check(dp.devices.length > 0, `${dst.name}: getVolumePaths found nothing after the source detached`);
      await ctx.disconnect(dst, v, dd);
      await ctx.verdict(dst, v, { phase: 'destination detached', device: dd, paths: dp.paths, expect: 'clean' });
      await ctx.deleteVolume(v);
    },
  };
}

export const SCENARIOS: Scenario[] = [
  roundTrip('iscsi', 1),
  roundTrip('iscsi', 2),
  roundTrip('nvmeof', 1),
  roundTrip('nvmeof', 2),
  roundTrip('fc', 1),
  roundTrip('fc', 2),
  roundTripLocal,
  sharedTarget('iscsi'),
  sharedTarget('nvmeof'),
  liveMigration('iscsi'),
  liveMigration('nvmeof'),
  liveMigration('fc'),
];
