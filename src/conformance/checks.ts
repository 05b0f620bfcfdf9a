import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import type { ConnectionPayload } from '../agent/api/types.js';
import type { Scenario } from '../scenarios/catalog.js';
import { check, type ComputeHandle, type ScenarioContext } from '../scenarios/context.js';
import type { Protocol } from '../volume/protocol.js';
import { ALL_SCENARIOS } from '../scenarios/runner.js';

/**
 * The conformance checks `brick-lab validate` runs against a connector: the suite's scenarios of
 * its protocol, with the connector doing every attach and detach, and agreement checks: whether
 * the connector's own get_volume_paths and get_all_available_volumes tell the kernel's truth
 * (brick-lab's reading of sysfs) while a volume is attached and after it was detached. The
 * agreement checks attach and detach with brick-lab's own connector, so that they judge the
 * connector's answers alone (its attach and detach are judged by the scenarios).
 */

/** Which of the suite's scenarios apply to a protocol, with and without multipath. */
const BY_PROTOCOL: Record<Protocol, { single: string[]; multipath: string[] }> = {
  iscsi: {
    single: [
      'round-trip-iscsi-1path',
      'shared-target-iscsi',
      'live-migration-iscsi',
      'orphan-flush-failure',
      'orphan-lun-unmapped',
      'orphan-lun-reuse',
      'orphan-rescan-during-detach',
      'orphan-several-sessions',
      'orphan-no-udev',
      'field-bypath-gone',
      'field-auto-scan',
      'field-restart-lost-state',
      'field-target-destroyed',
      'field-multipathd-claims',
      'field-shared-session',
      'field-host-cut-off',
      'field-reboot-autologin',
    ],
    multipath: ['round-trip-iscsi-2path', 'orphan-multipath-path-fails', 'field-primary-portal-only', 'field-held-open', 'field-left-suspended', 'field-partition-maps'],
  },
  nvmeof: {
    single: ['round-trip-nvme-1path', 'shared-target-nvme', 'live-migration-nvme', 'orphan-nvme-namespace-gone', 'field-nvme-target-offline', 'field-nvme-shared-controller', 'field-nvme-ctrl-loss'],
    multipath: ['round-trip-nvme-2path'],
  },
  fc: { single: ['round-trip-fc-1path', 'live-migration-fc', 'orphan-fc-lun-reuse', 'orphan-fc-relogin-scan'], multipath: ['round-trip-fc-2path'] },
  local: { single: ['round-trip-local'], multipath: [] },
};

/** Paths that exist, resolved to kernel names, read through the node (the connector's view is checked against it). */
async function resolve(ctx: ScenarioContext, node: ComputeHandle, paths: string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  if (paths.length === 0) return out;
  // A fixed script, the paths as its arguments: readlink -e prints where each path that exists
  // leads, and echo an empty line for the rest, one line per path, in order.
  const r = await node.client.exec(['sh', '-c', 'for p in "$@"; do readlink -e -- "$p" || echo; done', 'resolve', ...paths], { timeoutMs: 60_000 });
  const lines = r.stdout.split('\n');
  paths.forEach((p, i) => {
    const t = lines[i]?.trim() ?? '';
    out.set(p, t ? t.slice(t.lastIndexOf('/') + 1) : null);
  });
  return out;
}

function describePaths(m: Map<string, string | null>): string {
  return [...m].map(([p, d]) => `${p} -> ${d ?? '(nothing)'}`).join(', ') || '(none)';
}

/** A volume of the protocol for an agreement check, and its connection properties. */
async function makeVolume(ctx: ScenarioContext, protocol: Protocol, multipath: boolean): Promise<{ v: TargetVolume | null; props: ConnectionPayload | null; cleanup?: () => Promise<void> }> {
  if (protocol === 'iscsi') return { v: await ctx.createIscsi({ name: 'agree', networks: ctx.networks(multipath ? 2 : 1) }), props: null };
  if (protocol === 'nvmeof') return { v: await ctx.createNvme({ name: 'agree', networks: ctx.networks(multipath ? 2 : 1) }), props: null };
  if (protocol === 'fc') return { v: await ctx.createFc({ name: 'agree', networks: ctx.networks(multipath ? 2 : 1) }), props: null };
  const node = ctx.compute;
  const disk = await node.client.addLocalDisk();
  ctx.undo.push({ what: `${node.name}: scsi_debug host ${disk.host}`, fn: () => node.client.removeLocalDisk(disk.host) });
  ctx.step(`${node.name}: scsi_debug disk ${disk.device} (host ${disk.host})`);
  return { v: null, props: { driver_volume_type: 'local', data: { device_path: disk.device } } };
}

export function agreementCheck(protocol: Protocol, multipath: boolean): Scenario {
  const label = protocol === 'nvmeof' ? 'nvme' : protocol;
  return {
    name: `agreement-${label}${multipath ? '-multipath' : ''}`,
    title: `the connector's get_volume_paths and get_all_available_volumes name the ${label} volume's own devices while it is attached${multipath ? ' over both paths' : ''}, and nothing of it after the detach (attached and detached by brick-lab)`,
    kind: 'round-trip',
    needs: { computes: 1, dataNetworks: multipath ? 2 : 1 },
    refs: ['brick-fetch-paths.rst: get_volume_paths, get_all_available_volumes'],
    async run(ctx) {
      const node = ctx.compute;
      const made = await makeVolume(ctx, protocol, multipath);
      const props: ConnectionPayload = made.v ? made.v.connectionInfo : made.props!;
      let d: DeviceInfo;
      if (made.v) d = await ctx.connect(node, made.v, multipath, { builtin: true });
      else {
        d = await node.client.connect('local', props, { timeoutMs: 300_000 });
        ctx.step(`${node.name}: attached the local disk as ${d.path}`);
      }
      // The truth: brick-lab's own lookup in sysfs (devices, dm map, links).
      const truth = made.v ? await ctx.paths(node, made.v) : await node.client.volumePaths('local', props);
      const own = new Set(truth.devices);
      check(own.size > 0, `${node.name}: brick-lab finds no device of the volume it attached`);

      // Every disagreement is collected, so that one run names them all; the check fails at the end.
      const disagree: string[] = [];
      const expectThat = (ok: boolean, what: string): void => {
        if (!ok) {
          disagree.push(what);
          ctx.step(`${node.name}: DISAGREES: ${what}`);
        }
      };
      const theirs = await ctx.connectorPaths(node, protocol, props);
      ctx.step(`${node.name}: the connector's get_volume_paths: ${theirs.paths.join(', ') || '(none)'}`);
      const resolved = await resolve(ctx, node, theirs.paths);
      expectThat(theirs.paths.length > 0, `get_volume_paths returned nothing for an attached volume (its devices: ${[...own].join(', ')})`);
      const foreign = [...resolved].filter(([, dev]) => dev === null || !own.has(dev));
      expectThat(foreign.length === 0, `get_volume_paths names what is not this volume's: ${describePaths(new Map(foreign))} (its devices: ${[...own].join(', ')})`);
      // Every by-path link of the volume should be reported (os-brick's iSCSI reports one per
      // portal, its FC one per HBA port and target port).
      const missed = truth.paths.filter((p) => p.startsWith('/dev/disk/by-path/') && !theirs.paths.includes(p) && (protocol === 'iscsi' || protocol === 'fc'));
      expectThat(missed.length === 0, `get_volume_paths misses ${missed.join(', ')}`);

      const avail = await ctx.connectorAvailable(node, protocol);
      const listed = avail.flatMap((a) => a.paths);
      const availResolved = await resolve(ctx, node, listed);
      ctx.step(`${node.name}: the connector's get_all_available_volumes: ${listed.length} entries`);
      expectThat([...availResolved.values()].some((dev) => dev !== null && own.has(dev)), `get_all_available_volumes does not list the attached volume (it lists ${listed.slice(0, 10).join(', ') || 'nothing'}${listed.length > 10 ? ', ...' : ''})`);
      const notVolumes = [...availResolved].filter(([, dev]) => dev === null || !/^(sd[a-z]+|dm-\d+|nvme\d+n\d+)$/.test(dev));
      expectThat(notVolumes.length === 0, `get_all_available_volumes lists ${notVolumes.length} entries that are not volumes: ${notVolumes.slice(0, 8).map(([p]) => p).join(', ')}${notVolumes.length > 8 ? ', ...' : ''}`);

      if (made.v) await ctx.disconnect(node, made.v, d, { builtin: true });
      else {
        await node.client.disconnect('local', props, d, { timeoutMs: 300_000 });
        ctx.step(`${node.name}: detached the local disk`);
      }
      if (made.v) await ctx.verdict(node, made.v, { device: d, paths: theirs.paths, expect: 'clean' });

      const after = await ctx.connectorPaths(node, protocol, props);
      const stillThere = [...(await resolve(ctx, node, after.paths))].filter(([, dev]) => dev !== null);
      if (protocol === 'local') {
        // A local disk stays on the host: its path may (and should) still resolve.
        ctx.step(`${node.name}: after the detach get_volume_paths gives ${after.paths.join(', ') || '(none)'}`);
      } else {
        expectThat(stillThere.length === 0, `after the detach get_volume_paths still names ${describePaths(new Map(stillThere))}`);
        const availAfter = await ctx.connectorAvailable(node, protocol);
        const oldPaths = new Set([...theirs.paths, ...truth.paths]);
        const stale = availAfter.flatMap((a) => a.paths).filter((p) => oldPaths.has(p));
        expectThat(stale.length === 0, `after the detach get_all_available_volumes still lists ${stale.join(', ')}`);
      }
      if (made.v) await ctx.deleteVolume(made.v);
      check(disagree.length === 0, `${node.name}: the connector disagrees with the kernel: ${disagree.join('; ')}`);
    },
  };
}

/** The checks for one protocol (the suite's scenarios, then the agreement checks), in run order. */
export function conformanceChecks(protocol: Protocol, multipath: boolean): Scenario[] {
  const names = [...BY_PROTOCOL[protocol].single, ...(multipath ? BY_PROTOCOL[protocol].multipath : [])];
  const scenarios = names.map((n) => {
    const s = ALL_SCENARIOS.find((x) => x.name === n);
    if (!s) throw new Error(`conformance: no scenario ${n} in the suite`);
    return s;
  });
  return [...scenarios, agreementCheck(protocol, false), ...(multipath && protocol !== 'local' ? [agreementCheck(protocol, true)] : [])];
}
