import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import { waitFor } from '../system/wait.js';
import type { Scenario } from './catalog.js';
import { check, ScenarioFailure } from './context.js';
import { firstNetwork, resetConnections } from './iscsi-steps.js';
import { detachedClean, forcedDetach, orphanPair, type Half } from './pair.js';

/**
 * The field's NVMe/TCP orphan mechanisms (shared/docs/field-orphans.md, by row): the target
 * offline at detach, a controller shared by several volumes' namespaces, a partition past
 * ctrl_loss_tmo.
 */

/** The target offline, long enough for any half; the half's end (or the scenario's) brings it back. */
const TARGET_OFFLINE_S = 300;

/** Wait until every controller of an NVMe volume's subsystem on the node is in `state`. */
async function controllersAre({ ctx, node }: Half, v: TargetVolume, state: string): Promise<string[]> {
  let seen: string[] = [];
  return waitFor(
    async () => {
      const cs = (await ctx.snapshot(node)).nvmeControllers.filter((c) => c.subsysNqn === v.nvme!.nqn);
      seen = cs.map((c) => `${c.name} ${c.state ?? '?'}`);
      return cs.length > 0 && cs.every((c) => c.state === state) ? seen : null;
    },
    { timeoutMs: 60_000, intervalMs: 500, onTimeout: () => new ScenarioFailure(`${node.name}: the controllers of ${v.nvme!.nqn} are not ${state} after 60 s: ${seen.join(', ') || 'none'}`) },
  );
}

const nvmeTargetOffline = orphanPair('field-nvme-target-offline', {
  title: 'the NVMe target is offline at detach: a disconnect that picks the subsystem\'s live paths finds none and disconnects nothing, and the controller reconnects forever (caught); a forced detach disconnects every controller, live or not, and leaves nothing, also once the target is back',
  refs: ['field-orphans.md row 18', 'https://github.com/linux-nvme/nvme-cli/issues/2603', 'https://github.com/linux-nvme/libnvme/issues/431'],
  // Every port of the target goes down: a scenario beside it on another compute would lose its paths too.
  wholeLab: true,
  async setup(h) {
    const { ctx, node, phase } = h;
    const v = await ctx.createNvme({ name: phase, networks: firstNetwork(ctx) });
    let d: DeviceInfo | null = null;
    if (phase === 'faulty') {
      // Attached the way os-brick 6.1 does it: ctrl_loss_tmo -1, a controller that never gives up.
      const p = v.portals[0]!;
      await node.client.run(['nvme', 'connect', '-t', 'tcp', '-a', p.address, '-s', String(p.port), '-n', v.nvme!.nqn, '-l', '-1'], { timeoutMs: 60_000 });
      ctx.attached.push({ node, volume: v, device: null });
      const ns = await namespaceOf(h, v);
      await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
      ctx.step(`${node.name}: nvme connect with ctrl_loss_tmo=-1 (os-brick's way): ${ns}`);
    } else {
      d = await ctx.connect(node, v);
    }
    await ctx.outage(ctx.target, TARGET_OFFLINE_S);
    // The host's connections reset now rather than at its keep-alive timeout.
    await resetConnections(node, v.portals.map((p) => `${p.address}:${p.port}`));
    ctx.step(`${node.name}: ${(await controllersAre(h, v, 'connecting')).join(', ')}: the target is offline`);
    return { v, d };
  },
  async faulty(h, { v }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, 'the disconnect takes the subsystem\'s live paths from nvme list-subsys; with the target offline there are none, so nothing is disconnected', async () => {
      const out = await ctx.sh(node, `nvme list-subsys -o json`);
      const live = (JSON.parse(out) as Array<{ Subsystems?: Array<{ NQN: string; Paths?: Array<{ Name: string; State: string }> }> }>)
        .flatMap((h) => h.Subsystems ?? [])
        .filter((s) => s.NQN === v.nvme!.nqn)
        .flatMap((s) => (s.Paths ?? []).filter((p) => p.State === 'live'));
      check(live.length === 0, `${node.name}: ${v.nvme!.nqn} still has a live path: ${live.map((p) => p.Name).join(', ')}`);
    });
    await ctx.verdict(node, v, { phase: 'faulty: no live path, nothing disconnected', expect: ['nvme-controller', 'nvme-namespace', 'by-id-link'] });
    await ctx.endOutage(ctx.target);
    await ctx.disconnect(node, v, null, { force: true, ignoreErrors: true, builtin: true });
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    // Nothing can be written to a target that is offline: the detach is forced.
    await forcedDetach(ctx, node, v, d!);
    await ctx.verdict(node, v, { phase: 'correct: forced detach, the target offline', device: d, expect: 'clean' });
    await ctx.endOutage(ctx.target);
    // Once the target is back, nothing may reconnect (a controller left would go live again).
    await new Promise((r) => setTimeout(r, 5000));
    await ctx.verdict(node, v, { phase: 'correct: the target back online', device: d, expect: 'clean' });
  },
});

const nvmeSharedController = orphanPair('field-nvme-shared-controller', {
  title: 'several namespaces on one NVMe controller: a detach that disconnects the controller it used takes the namespace another volume still uses (collateral, caught); volumes of the subsystem attached and detached in turn (the target unexporting each) keep the controller for the one in use, and the last detach takes it',
  refs: ['field-orphans.md rows 20 and 17', 'https://github.com/ceph/ceph-csi/issues/6163', 'https://github.com/fenio/tns-csi/issues/204'],
  async setup({ ctx, node, phase }) {
    const net = firstNetwork(ctx);
    const a = await ctx.createNvme({ name: `${phase}-a`, nsid: 1, networks: net });
    const b = await ctx.createNvme({ name: `${phase}-b`, nqn: a.nvme!.nqn, nsid: 2, networks: net });
    const builtin = phase === 'faulty';
    const db = await ctx.connect(node, b, false, { builtin });
    await ctx.writeSignature(node, db.path, b);
    return { a, b, db, da: await ctx.connect(node, a, false, { builtin }) };
  },
  async faulty(h, { a, b, db, da }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, a, `the detach disconnects the controller of ${da.path} without counting the other namespaces on it`, () => ctx.sh(node, `nvme disconnect -n ${a.nvme!.nqn}; udevadm settle --timeout=60`));
    check((await ctx.readSignature(node, db.path)) === null, `${node.name}: ${b.name} still reads at ${db.path} after the controller went`);
    await ctx.verdict(node, a, { phase: `faulty: the controller taken from under ${b.name}`, device: da, stillAttached: [b], expect: ['nvme-controller', 'nvme-namespace', 'block-device', 'by-id-link'] });
    ctx.forget(node, a);
    ctx.forget(node, b);
  },
  async correct(h, { a, b, db, da }) {
    const { ctx, node, phase } = h;
    // NVMe has no per-namespace logout: one volume of a shared subsystem goes when the host lets
    // go of it and the target stops exporting it (terminate_connection). Churn: three volumes of
    // the subsystem in turn, attached and detached back to back, the other namespace in use.
    let [v, d] = [a, da];
    for (let round = 1; round <= 3; round++) {
      await ctx.disconnect(node, v, d);
      await ctx.target.client.unmap(v.name);
      await ctx.waitGone(node, v);
      await ctx.verdict(node, v, { phase: `correct: round ${round}, detached; the controller kept for the other namespace`, device: d, stillAttached: [b], expect: 'clean' });
      if (round === 3) break;
      v = await ctx.createNvme({ name: `${phase}-a${round + 1}`, nqn: a.nvme!.nqn, nsid: round + 2, networks: firstNetwork(ctx) });
      d = await ctx.connect(node, v);
    }
    check((await ctx.readSignature(node, db.path))?.id === b.id, `${node.name}: ${b.name} no longer reads its data at ${db.path} after the churn`);
    ctx.step(`${node.name}: ${b.name} still reads its data after 3 rounds on its subsystem`);
    await detachedClean(h, b, db, 'correct: the last namespace detached, and the controller with it');
  },
});

/** The namespace of an NVMe volume on the node, once it is there (its head's name). */
async function namespaceOf({ ctx, node }: Half, v: TargetVolume): Promise<string> {
  return waitFor(async () => (await ctx.snapshot(node)).nvmeNamespaces.find((n) => n.uuid === v.nvme!.uuid)?.name ?? null, {
    timeoutMs: 30_000,
    intervalMs: 300,
    onTimeout: () => new ScenarioFailure(`${node.name}: no namespace with uuid ${v.nvme!.uuid} after 30 s`),
  });
}

const nvmeCtrlLoss = orphanPair('field-nvme-ctrl-loss', {
  title: "a partition outlasts ctrl_loss_tmo: the kernel deletes the controller, another volume gets the freed name, the re-attach gets a new one; a detach by the name the caller recorded disconnects the other volume and leaves its own (caught); a detach by the volume's identity takes only its own",
  refs: ['field-orphans.md row 19', 'https://github.com/openebs/mayastor/issues/1777'],
  async setup({ ctx, phase }) {
    const net = firstNetwork(ctx);
    return { a: await ctx.createNvme({ name: `${phase}-a`, networks: net }), b: await ctx.createNvme({ name: `${phase}-b`, networks: net }) };
  },
  async faulty(h, { a, b }) {
    const { ctx, node } = h;
    const p = a.portals[0]!;
    // A driver tuned for fast failover: ctrl_loss_tmo 5 s, a reconnect every second.
    const connect = (v: TargetVolume): Promise<unknown> => node.client.run(['nvme', 'connect', '-t', 'tcp', '-a', p.address, '-s', String(p.port), '-n', v.nvme!.nqn, '-l', '5', '-c', '1'], { timeoutMs: 60_000 });
    await connect(a);
    ctx.attached.push({ node, volume: a, device: null });
    const recorded = await namespaceOf(h, a);
    ctx.step(`${node.name}: ${a.name} attached with ctrl_loss_tmo=5 as /dev/${recorded}; the caller records that name`);
    await ctx.outage(node, 20, [p.network]);
    await resetConnections(node, [`${p.address}:${p.port}`]);
    const gone = await ctx.sh(node, `for i in $(seq 1 80); do [ -e /sys/block/${recorded} ] || { echo gone; exit 0; }; sleep 0.25; done; echo still`);
    check(gone.trim() === 'gone', `${node.name}: /dev/${recorded} is still there 20 s into the partition: the controller was not deleted`);
    ctx.step(`${node.name}: the partition outlasted ctrl_loss_tmo: the kernel deleted the controller and /dev/${recorded}`);
    await ctx.endOutage(node);
    await connect(b);
    ctx.attached.push({ node, volume: b, device: null });
    const bName = await namespaceOf(h, b);
    await connect(a);
    const aName = await namespaceOf(h, a);
    await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
    check(bName === recorded && aName !== recorded, `${node.name}: ${b.name} is /dev/${bName} and ${a.name} /dev/${aName}: the freed name did not go to the other volume`);
    ctx.step(`${node.name}: ${b.name} attached as /dev/${bName}, the freed name; ${a.name} re-attached as /dev/${aName}`);
    await ctx.writeSignature(node, `/dev/${bName}`, b);
    // The controllers under a namespace head: its paths are nvme<subsystem>c<controller>n<nsid>.
    const head = (await ctx.snapshot(node)).nvmeNamespaces.find((n) => n.name === recorded);
    const ctrls = (head?.paths ?? []).map((x) => /c(\d+)n\d+$/.exec(x)?.[1]).filter((x): x is string => x !== undefined).map((x) => `nvme${x}`);
    check(ctrls.length > 0, `${node.name}: no controller under /dev/${recorded} (paths ${head?.paths.join(', ') ?? 'none'})`);
    await ctx.faultyDetach(node, a, `the detach goes by the name recorded at the first attach, /dev/${recorded}, now ${b.name}'s: it disconnects that namespace's controller ${ctrls.join(', ')}`, async () => {
      for (const c of ctrls) await node.client.run(['nvme', 'disconnect', '-d', c], { timeoutMs: 60_000 });
      await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
    });
    check((await ctx.readSignature(node, `/dev/${bName}`)) === null, `${node.name}: ${b.name} still reads at /dev/${bName} after the detach by the stale name`);
    await ctx.verdict(node, a, { phase: `faulty: detached by a stale name, ${b.name}'s now`, stillAttached: [b], expect: ['nvme-controller', 'nvme-namespace', 'block-device', 'by-id-link'] });
    ctx.forget(node, b);
    await ctx.disconnect(node, a, null, { force: true, ignoreErrors: true, builtin: true });
  },
  async correct(h, { a, b }) {
    const { ctx, node } = h;
    const first = await ctx.connect(node, a);
    // The same state as the partition leaves, reached without waiting out the connector's own
    // ctrl_loss_tmo: the controller deleted as the kernel deletes it when that time is up.
    await ctx.sh(node, `nvme disconnect -n ${a.nvme!.nqn}; udevadm settle --timeout=60`);
    ctx.forget(node, a);
    ctx.step(`${node.name}: ${a.name}'s controller deleted, as at the end of ctrl_loss_tmo; its name ${first.path} is free`);
    const db = await ctx.connect(node, b);
    const again = await ctx.connect(node, a);
    check(db.path === first.path && again.path !== first.path, `${node.name}: ${b.name} is ${db.path} and ${a.name} ${again.path}: the freed name did not go to the other volume`);
    await ctx.writeSignature(node, db.path, b);
    await ctx.disconnect(node, a, first);
    check((await ctx.readSignature(node, db.path))?.id === b.id, `${node.name}: ${b.name} no longer reads its data at ${db.path} after ${a.name}'s detach with its stale device info`);
    await ctx.verdict(node, a, { phase: 'correct: detached by identity, the recorded name now another volume\'s', device: first, stillAttached: [b], expect: 'clean' });
    await detachedClean(h, b, db, 'correct: the volume that got the freed name, detached');
  },
});

export const NVME_FIELD_PAIRS: Scenario[] = [nvmeTargetOffline, nvmeSharedController, nvmeCtrlLoss];
