import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { HostSnapshot, Orphan } from '../agent/api/types.js';
import { labClient } from '../lab/lab.js';
import type { LabRecord } from '../lab/state.js';
import type { Topology } from '../lab/topology.js';
import { BrickError } from '../system/errors.js';
import { progress } from '../system/log.js';
import { PROJECT_ROOT } from '../system/paths.js';
import { SCENARIOS, type Scenario } from './catalog.js';
import { protocolOf, ScenarioContext, ScenarioFailure, sharedNetworks, type ComputeHandle, type NodeHandle, type TargetHandle } from './context.js';
import { collectEvidence } from './evidence.js';
import { claimLab, releaseLab } from './job.js';
import { writeReport } from './report.js';
import { runScheduled } from './schedule.js';
import { LoginGuard } from './login-guard.js';
import { fcoeWwpn } from '../system/fcoe.js';
import { serialQueue } from '../system/serial.js';
import { inspectVolume } from './inspect.js';
import { FC_PAIRS } from './fc-pairs.js';
import { FIELD_PAIRS } from './field-pairs.js';
import { ORPHAN_PAIRS } from './orphan-pairs.js';

export const ALL_SCENARIOS: Scenario[] = [...SCENARIOS, ...ORPHAN_PAIRS, ...FC_PAIRS, ...FIELD_PAIRS];
export const SCENARIO_SETS_FILE = join(PROJECT_ROOT, 'lab', 'scenarios.yaml');

export function scenarioSets(file = SCENARIO_SETS_FILE): Record<string, string[]> {
  const doc = parseYaml(readFileSync(file, 'utf8')) as { sets?: unknown } | null;
  const raw = doc?.sets ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BrickError('BAD_SCENARIO_SETS', `${file}: "sets" must be a mapping of set names to lists of scenario names`);
  }
  const sets = raw as Record<string, string[]>;
  for (const [set, names] of Object.entries(sets)) {
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
      throw new BrickError('BAD_SCENARIO_SETS', `${file}: set ${set} must be a non-empty list of scenario names`);
    }
    for (const n of names) {
      if (!ALL_SCENARIOS.some((s) => s.name === n)) throw new BrickError('UNKNOWN_SCENARIO', `${file}: set ${set} names ${n}, which is no scenario`, { hint: 'brick-lab run --list prints every scenario' });
    }
  }
  return sets;
}

/** Names or set names (comma-separated allowed) to scenarios, in suite order, each once. */
export function selectScenarios(requested: string[], file = SCENARIO_SETS_FILE): Scenario[] {
  const sets = scenarioSets(file);
  const wanted = new Set<string>();
  for (const r of requested.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)) {
    const set = Object.hasOwn(sets, r) ? sets[r] : undefined;
    if (set) for (const n of set) wanted.add(n);
    else if (ALL_SCENARIOS.some((s) => s.name === r)) wanted.add(r);
    else {
      throw new BrickError('UNKNOWN_SCENARIO', `no scenario or set is called ${JSON.stringify(r)}`, {
        hint: `sets: ${Object.keys(sets).join(', ')}; scenarios: ${ALL_SCENARIOS.map((s) => s.name).join(', ')}`,
      });
    }
  }
  return ALL_SCENARIOS.filter((s) => wanted.has(s.name));
}

/** Refuses, before anything boots, a topology that lacks what a chosen scenario needs. */
export function checkNeeds(topo: Topology, scenarios: Scenario[]): void {
  const targets = topo.nodes.filter((n) => n.role === 'target');
  const computes = topo.nodes.filter((n) => n.role === 'compute');
  const problems: string[] = [];
  const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  if (scenarios.length > 0 && targets.length === 0) problems.push('every scenario needs a target node, and the topology has none');
  for (const s of scenarios) {
    if (computes.length < s.needs.computes) problems.push(`${s.name} needs ${plural(s.needs.computes, 'compute node', 'compute nodes')}; the topology has ${computes.length}`);
    if (targets.length === 0) continue;
    const shared = sharedNetworks(topo, s.needs.computes);
    if (shared.length < s.needs.dataNetworks) {
      problems.push(`${s.name} needs ${plural(s.needs.dataNetworks, 'data network', 'data networks')} shared by the target and the computes; the topology has ${shared.length}`);
    }
  }
  if (problems.length > 0) {
    throw new BrickError('TOPOLOGY_LACKS', `the topology cannot run the chosen scenarios:\n  ${problems.join('\n  ')}`, {
      hint: 'use lab/default.yaml (one target, two computes, two data networks) or pick scenarios it can run',
    });
  }
}

import type { NodeVersions, ScenarioResult, SuiteReport } from './results.js';

export type { ScenarioResult, SuiteReport };

/** Kernel messages that fail a scenario (blktests' dmesg check). */
const KERNEL_TROUBLE = /(WARNING:|BUG:|Oops|general protection fault|blocked for more than \d+ seconds|Kernel panic|list_del corruption|refcount_t:)/;

/** Kernel log records of the storage stacks (iSCSI, SCSI, NVMe, FC, dm), quoted when a scenario fails. */
const KERNEL_STORAGE = /(connection\d+:\d+|session\d+|iscsi|scsi|\bsd[a-z]+\b|sd \d+:|nvme|rport|fcoe|host\d+:|I\/O error|device-mapper|multipath)/i;

/** Where each node's kernel log is now: the sequence number its next record will have. */
async function kernelLogMarks(nodes: NodeHandle[]): Promise<Map<string, number>> {
  return new Map(await Promise.all(nodes.map(async (n) => [n.name, (await n.client.kernelLog()).next] as const)));
}

/** What a compute node still holds that a scenario must not leave (after its own teardown). */
function computeLeftovers(s: HostSnapshot): string[] {
  return [
    ...s.iscsiSessions.map((x) => `iSCSI session${x.sid} (${x.targetIqn} via ${x.portal})`),
    ...s.iscsiNodes.map((x) => `node record ${x.iqn} ${x.portal}`),
    ...s.nvmeControllers.filter((c) => c.transport === 'tcp').map((c) => `NVMe controller ${c.name} (${c.subsysNqn} ${c.traddr}:${c.trsvcid})`),
    ...s.multipathMaps.map((m) => `multipath map ${m.name ?? m.dm}`),
    // FC disks (the fabric's logins are the lab's, and stay).
    ...s.scsiDevices.filter((d) => d.rport).map((d) => `FC disk ${d.hctl} (${d.block ?? 'no block device'}, ${d.rport})`),
    ...s.links.filter((l) => l.dir === 'by-path' && /-iscsi-|-nvme-|-fc-0x/.test(l.name)).map((l) => `by-path link ${l.name}`),
  ];
}

/** Whether a target object's name (an IQN, NQN, backstore, loop device line or file) is one of these volumes'. */
export function namedAfter(object: string, volumes: ReadonlySet<string>): boolean {
  return object.split(/[^A-Za-z0-9_-]+/).some((w) => volumes.has(w));
}

/**
 * What the target holds of LIO, nvmet, loop devices and backing files. With `only`, just the
 * objects named after one of those volumes: an IQN or NQN ends in ".<volume>", a backstore is the
 * volume's name, a backing file "<volume>.img" (volume names hold no dot, so a name is one of the
 * words of the object's name). The volume names of a scenario are its own (scenario-prefixed).
 */
async function targetLeftovers(target: TargetHandle, only?: ReadonlySet<string>): Promise<string[]> {
  const t = await target.client.leftovers();
  const ours = (name: string): boolean => !only || namedAfter(name, only);
  return [
    ...t.lio.targets.filter((x) => ours(x.iqn)).map((x) => `LIO target ${x.iqn}`),
    ...t.lio.backstores.filter((x) => ours(x.name)).map((x) => `LIO backstore ${x.name}`),
    ...(t.lio.fcPorts ?? []).flatMap((p) => p.luns.filter((l) => ours(l.storageObject)).map((l) => `LIO FC LUN ${l.lun} of port ${p.wwpn} (${l.storageObject})`)),
    ...t.nvmet.subsystems.map((x) => (typeof x === 'string' ? x : x.nqn)).filter(ours).map((x) => `nvmet subsystem ${x}`),
    ...t.loopDevices.filter(ours).map((x) => `loop device ${x}`),
    ...t.files.filter(ours).map((x) => `backing file ${x}`),
  ];
}

/** Force-clean a compute node: log out everything, delete records, disconnect NVMe, flush maps. */
async function sweepCompute(node: NodeHandle): Promise<void> {
  const run = (argv: string[]): Promise<unknown> => node.client.exec(argv, { timeoutMs: 120_000 }).catch(() => undefined);
  await run(['multipath', '-F']);
  await run(['iscsiadm', '-m', 'node', '--logoutall=all']);
  await run(['iscsiadm', '-m', 'node', '-o', 'delete']);
  await run(['nvme', 'disconnect-all']);
  // FC disks: deleted from under their remote ports (the logins are the fabric's, and stay).
  await run(['sh', '-c', 'for f in /sys/class/fc_remote_ports/rport-*/device/target*/*:*:*:*/delete; do [ -e "$f" ] && echo 1 > "$f"; done; true']);
  // Maps and holders of any kind (linear, partition maps) a scenario left: the lab has no dm of its own.
  await run(['dmsetup', 'remove_all', '--force']);
  await run(['udevadm', 'settle', '--timeout=60']);
}

export interface RunScenariosOptions {
  resultsDir: string;
  onProgress?: (line: string) => void;
  /** Collect evidence for failed scenarios (default true). */
  evidence?: boolean;
  /** The connector under test (installed on the computes), or brick-lab's own (null, the default). */
  connector?: string | null;
  /**
   * Check each verdict against what the guest's own tools show (scenarios/inspect.ts; default
   * true): the oracle's clean must meet nothing there, its leftovers something.
   */
  inspect?: boolean;
  /**
   * Other scenarios run beside this one on the same lab (runSuite with jobs > 1), each on computes
   * of its own: the target is judged by this scenario's own objects, and a target left unclean
   * is marked here for the scheduler to clean once nothing else runs, rather than cleaned from
   * under the others.
   */
  beside?: { targetDirty: boolean; guard: LoginGuard };
}

async function handles(rec: LabRecord): Promise<{ target: TargetHandle; computes: ComputeHandle[] }> {
  const t = rec.nodes.find((n) => n.role === 'target');
  if (!t) throw new BrickError('TOPOLOGY_LACKS', `lab ${rec.name} has no target node`);
  const computes: ComputeHandle[] = [];
  for (const n of rec.nodes.filter((x) => x.role === 'compute')) computes.push({ name: n.name, client: (await labClient(rec, n.name)).compute, initiatorIqn: n.initiatorIqn, fcWwpns: n.taps.map((t) => fcoeWwpn(t.mac)) });
  return { target: { name: t.name, client: (await labClient(rec, t.name)).target }, computes };
}

export async function runScenario(rec: LabRecord, s: Scenario, opts: RunScenariosOptions): Promise<ScenarioResult> {
  return runScenarioOn(rec, await handles(rec), s, opts);
}

/** runScenario on the nodes' agents as given (unit tests give agents that answer from recorded hosts). */
export async function runScenarioOn(rec: LabRecord, { target, computes }: { target: TargetHandle; computes: ComputeHandle[] }, s: Scenario, opts: RunScenariosOptions): Promise<ScenarioResult> {
  const say = opts.onProgress ?? (() => {});
  const nodes: NodeHandle[] = [target, ...computes];
  const ctx = new ScenarioContext(rec, target, computes, s.name, s.needs.computes, (line) => say(`  ${line}`), opts.connector ?? null);
  if (opts.inspect !== false) ctx.inspect = inspectVolume;
  if (opts.beside) ctx.guard = opts.beside.guard;
  // Each node's kernel log mark and each compute's snapshot, asked of every node at once.
  const [marks, snapshots] = await Promise.all([kernelLogMarks(nodes), Promise.all(computes.map((c) => c.client.inventory()))]);
  const baselines = new Map<string, HostSnapshot>(computes.map((c, i) => [c.name, snapshots[i]!]));
  const started = performance.now();
  let failure: string | null = null;
  const problems: string[] = [];
  try {
    await s.run(ctx);
  } catch (e) {
    // A BrickError keeps its code (an agent's answer, a connector under test that misbehaved).
    failure = e instanceof ScenarioFailure ? e.message : e instanceof BrickError ? `${e.code}: ${e.message}` : `${(e as Error).name}: ${(e as Error).message}`;
  }
  // The scenario's own end state, before anything is swept: what it made and did not take away.
  if (!failure && (ctx.attached.length > 0 || ctx.volumes.size > 0)) {
    problems.push(`did not clean up: ${[...ctx.attached.map((a) => `${a.volume.name} still attached on ${a.node.name}`), ...[...ctx.volumes.keys()].map((v) => `volume ${v} still on the target`)].join('; ')}`);
  }
  for (const a of [...ctx.attached].reverse()) {
    await a.node.client.disconnect(protocolOf(a.volume), a.volume.connectionInfo, a.device, { force: true, ignoreErrors: true, timeoutMs: 300_000 }).catch(() => undefined);
  }
  for (const u of [...ctx.undo].reverse()) await u.fn().catch((e: Error) => problems.push(`undo ${u.what}: ${e.message}`));
  for (const v of [...ctx.volumes.keys()]) await ctx.deleteOnTarget(v).catch(() => undefined);
  // Then the lab must be as it was: nothing on any compute, nothing on the target. Host-wide:
  // against the snapshot from before the scenario, nothing new, nothing gone.
  const hostWide: ScenarioResult['hostWide'] = [];
  for (const c of computes) {
    const view = await c.client.hostCheck({ baseline: baselines.get(c.name)! });
    hostWide.push({ node: c.name, orphans: view.orphans, collateral: view.collateral });
    const say = (xs: Orphan[]): string => xs.map((x) => `${x.kind} ${x.id} (${x.evidence})`).join('; ');
    if (view.orphans.length > 0) problems.push(`${c.name} host-wide, left after the scenario: ${say(view.orphans)}`);
    if (view.collateral.length > 0) problems.push(`${c.name} host-wide, gone since before the scenario (collateral): ${say(view.collateral)}`);
    // With a clean baseline and nothing new since, nothing is left: no second read.
    const dirty = view.orphans.length > 0 || computeLeftovers(baselines.get(c.name)!).length > 0;
    const left = dirty ? computeLeftovers(await c.client.inventory()) : [];
    if (left.length > 0) problems.push(`${c.name} not clean after the scenario: ${left.join('; ')}`);
    if (left.length > 0 || view.orphans.length > 0) await sweepCompute(c);
  }
  const tl = await targetLeftovers(target, opts.beside ? ctx.made : undefined);
  if (tl.length > 0) {
    problems.push(`${target.name} not clean after the scenario: ${tl.join('; ')}`);
    if (opts.beside) opts.beside.targetDirty = true;
    else await target.client.cleanup().catch(() => undefined);
  }
  // Every record each kernel logged since the mark (by sequence number: a ring buffer that
  // wrapped meanwhile hides nothing still in it), read on every node at once.
  const logs = await Promise.all(nodes.map((n) => n.client.kernelLog(marks.get(n.name)!)));
  nodes.forEach((n, i) => {
    const bad = logs[i]!.records.filter((r) => KERNEL_TROUBLE.test(r.text)).map((r) => r.text);
    if (bad.length > 0) problems.push(`${n.name} kernel: ${bad.slice(0, 5).join(' | ')}`);
  });
  const status = failure || problems.length > 0 ? 'failed' : 'passed';
  if (status === 'failed') {
    // What the storage stacks logged meanwhile, as the story's last lines (context, not a problem
    // of its own): a report printed by CI is often all there is (a session that failed, a scan).
    nodes.forEach((n, i) => {
      const lines = logs[i]!.records.filter((r) => KERNEL_STORAGE.test(r.text)).map((r) => r.text);
      // The target serves every scenario running beside this one: its lines are theirs too.
      const shared = i === 0 && opts.beside ? ' (the target: lines of the scenarios beside this one too)' : '';
      if (lines.length > 0) ctx.steps.push(`${n.name} kernel log${shared}, storage lines (${lines.length}${lines.length > 12 ? ', the last 12' : ''}): ${lines.slice(-12).join(' | ')}`);
    });
  }
  let evidenceDir: string | null = null;
  if (status === 'failed' && opts.evidence !== false) {
    evidenceDir = join(opts.resultsDir, 'evidence', s.name);
    await collectEvidence(rec, evidenceDir).catch((e: Error) => problems.push(`evidence: ${e.message}`));
  }
  return { name: s.name, title: s.title, kind: s.kind, refs: s.refs, status, durationMs: Math.round(performance.now() - started), failure, problems, steps: ctx.steps, rows: ctx.rows, hostWide, evidenceDir };
}

/**
 * Run scenarios, one progress line as each starts and ends (under `tag`), and return the suite's
 * report, its scenarios in the order given. With `jobs` > 1, up to that many run at once, each on
 * a compute of its own (schedule.ts; a scenario that needs the whole lab runs alone), their step
 * lines prefixed with their names; `onResult` hears of each as it ends. Progress goes to
 * `onProgress` when given. `brick-lab run` and `brick-lab validate` both go through here.
 */
export async function runSuite(rec: LabRecord, scenarios: Scenario[], opts: RunScenariosOptions & { tag: string; kernel: string; nodes?: NodeVersions[]; subject?: string; signal?: AbortSignal; jobs?: number; onResult?: (r: ScenarioResult) => void }): Promise<SuiteReport> {
  const started = Date.now();
  const done: Array<ScenarioResult | undefined> = [];
  const under: string[] = [];
  const report = (state: 'running' | 'finished'): SuiteReport => {
    const results = done.filter((r): r is ScenarioResult => r !== undefined);
    return {
      lab: rec.name,
      ...(opts.subject ? { subject: opts.subject } : {}),
      state,
      pid: process.pid,
      current: state === 'running' && under.length > 0 ? under.join(', ') : null,
      accel: rec.accel,
      kernel: opts.kernel,
      ...(opts.nodes ? { nodes: opts.nodes } : {}),
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      scenarios: results,
      passed: results.filter((r) => r.status === 'passed').length,
      failed: results.filter((r) => r.status === 'failed').length,
    };
  };
  const say = opts.onProgress ?? ((line: string): void => progress(opts.tag, line));
  const computeNames = rec.nodes.filter((n) => n.role === 'compute').map((n) => n.name);
  const jobs = Math.max(1, Math.min(opts.jobs ?? 1, computeNames.length));
  if ((opts.jobs ?? 1) > jobs) say(`the lab has ${computeNames.length} compute node${computeNames.length === 1 ? '' : 's'}: ${jobs} scenario${jobs === 1 ? '' : 's'} at once`);
  // The target left unclean (by a scenario beside others, or one whose checks failed): cleaned at the next quiet turn.
  const lab = { targetDirty: false, guard: new LoginGuard() };
  const beside = jobs > 1 ? lab : undefined;
  // Reports are rewritten as scenarios start and end, which with jobs > 1 happens side by side.
  const writeSerially = serialQueue();
  const writeRunning = async (): Promise<void> => {
    await writeSerially(() => writeReport(report('running'), opts.resultsDir));
  };
  await claimLab(rec.name, { tag: opts.tag === 'check' ? 'validate' : 'run', resultsDir: opts.resultsDir }, () => restoreLab(rec), say);
  try {
    await runScheduled(
      scenarios,
      computeNames,
      jobs,
      async (s, turn) => {
        if (opts.signal?.aborted) throw opts.signal.reason;
        const on = jobs > 1 ? ` (on ${turn.computes.join(', ')}${turn.alone ? ', alone' : ''})` : '';
        say(`${turn.index + 1}/${scenarios.length} ${s.name}${on}: ${s.title}`);
        // What is under way, on disk: a run killed now leaves a report that says where it stopped.
        under.push(s.name);
        await writeRunning();
        const all = await handles(rec);
        const nodes = { target: all.target, computes: turn.computes.map((n) => all.computes.find((c) => c.name === n)!) };
        const began = performance.now();
        const r = await runScenarioOn(rec, nodes, s, { ...opts, onProgress: jobs > 1 ? (line) => say(`${s.name}:${line}`) : say, ...(beside ? { beside } : {}) }).catch(
          // The runner's own checks could not be made (an agent did not answer): this scenario
          // failed, and the next ones still run; the target is cleaned at the next quiet turn.
          (e: Error): ScenarioResult => {
            lab.targetDirty = true;
            return { name: s.name, title: s.title, kind: s.kind, refs: s.refs, status: 'failed', durationMs: Math.round(performance.now() - began), failure: `the runner's checks after the scenario failed: ${e instanceof BrickError ? `${e.code}: ` : ''}${e.message}`, problems: [], steps: [], rows: [], hostWide: [], evidenceDir: null };
          },
        );
        say(`${r.status === 'passed' ? 'PASS' : 'FAIL'} ${s.name} in ${(r.durationMs / 1000).toFixed(1)} s${r.failure ? `: ${r.failure.split('\n')[0]}` : r.problems[0] ? `: ${r.problems[0]}` : ''}`);
        under.splice(under.indexOf(s.name), 1);
        done[turn.index] = r;
        opts.onResult?.(r);
        if (jobs > 1) await writeRunning();
        return r;
      },
      // Nothing else runs: the target objects a scenario left (reported as its problem) go now.
      // Side by side, each scenario judged only what is named after its volumes: the whole target
      // is read here, so that nothing named otherwise stays unseen (said, then cleaned).
      async () => {
        if (!lab.targetDirty && !beside) return;
        const { target } = await handles(rec);
        if (!lab.targetDirty) {
          const left = await targetLeftovers(target);
          if (left.length === 0) return;
          say(`the target holds what no scenario's check named, cleaned now: ${left.join('; ')}`);
        }
        lab.targetDirty = false;
        await target.client.cleanup().catch(() => undefined);
      },
    );
    return report('finished');
  } finally {
    await releaseLab(rec.name);
  }
}

/**
 * Put a lab back as a fresh one is, after a run was interrupted on it: every node's outage ended
 * and the target's data networks up, every compute swept (sessions logged out, records deleted,
 * NVMe disconnected, maps flushed), its local disks and installed connectors removed, the
 * target's LIO and nvmet objects, loop devices and files removed. Then checked: anything still
 * there fails with LAB_NOT_RESTORED naming it. Returns what it did, one line each.
 */
export async function restoreLab(rec: LabRecord): Promise<string[]> {
  const { target, computes } = await handles(rec);
  const did: string[] = [];
  for (const n of [target, ...computes]) await n.client.endOutage();
  did.push('every node: outages ended');
  const targetNode = rec.nodes.find((n) => n.name === target.name)!;
  for (const net of Object.keys(targetNode.addresses)) await target.client.setNetwork(net, true).catch(() => undefined);
  for (const c of computes) {
    await sweepCompute(c);
    for (const d of (await c.client.localDisks().catch(() => ({ disks: [] }))).disks.reverse()) await c.client.removeLocalDisk(d.host).catch(() => undefined);
    for (const p of (await c.client.installedConnectors().catch(() => ({ connectors: [] }))).connectors) await c.client.removeConnector(p.name).catch(() => undefined);
    did.push(`${c.name}: sessions, records, NVMe controllers, maps, local disks and installed connectors removed`);
  }
  const cleaned = await target.client.cleanup();
  did.push(`${target.name}: ${cleaned.removed.length} target objects removed`);
  const left = [...(await Promise.all(computes.map(async (c) => computeLeftovers(await c.client.inventory()).map((x) => `${c.name}: ${x}`)))).flat(), ...(await targetLeftovers(target)).map((x) => `${target.name}: ${x}`)];
  if (left.length > 0) {
    throw new BrickError('LAB_NOT_RESTORED', `lab ${rec.name} still holds what an interrupted run left: ${left.join('; ')}`, { hint: `take it down and bring it up again (brick-lab down --name ${rec.name})` });
  }
  return did;
}

export type { Orphan };
