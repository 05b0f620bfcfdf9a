/**
 * Connector benchmark, side by side with os-brick in the same guest and the same run: paths of
 * every attached volume, all available volumes, a full inventory snapshot, and one attach +
 * detach cycle with the same end state (checked by the orphan oracle for both), after one cycle of
 * each not counted.
 *
 *   node dist/bench/connectors.js [--single 64,256] [--multi 64] [--warm 15] [--warm-seconds 2] [--repeat 10] [--cycles 3] [--guest bookworm|trixie]
 *
 * --single is a list of sizes reached in turn on one path (64 attached, measured, then more
 * attached up to 256, measured); --multi volumes are attached on both paths (dm-multipath).
 * brick-lab's figures are the agent's own time (Server-Timing): the first call to a route (once the
 * guest is idle, and half a second after the last request), then
 * the median of --repeat calls after more calls to warm it (at least --warm of them, and for at
 * least --warm-seconds); the time the agent waited for a request's body to arrive over the network
 * (its `receive` phase, about a millisecond under TCG) is not counted, as os-brick's calls have no
 * network, and its median is printed beside. The agent's JavaScript is compiled to optimised code
 * only once it has run a while, on a background thread that under TCG shares the guest's one vCPU:
 * a route's first hundred or so calls are slower and vary as those compiles land in them (and
 * `first call` shows the coldest), so a warm figure is taken once they are done, by time as well as
 * by count (a fast route makes hundreds of calls in two seconds, a full inventory a dozen).
 * os-brick's are timed inside its Python process (imports done), one call per volume as a caller
 * would make, and the same way: the first call once the process has slept as long as the agent's
 * first call waits (a resident caller such as nova-compute answering a check after a quiet spell),
 * then the median of up to --repeat more; the call right after its import is printed beside.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { down, labClient, labVersions } from '../src/lab/lab.js';
import { loadTopology, renderTopology } from '../src/lab/topology.js';
import { up } from '../src/lab/up.js';
import { checkGuest, DEFAULT_GUEST } from '../src/lab/image/recipe.js';
import { setQuiet } from '../src/system/log.js';
import { PROJECT_ROOT } from '../src/system/paths.js';
import type { TargetVolume } from '../src/targets/model.js';

const { values } = parseArgs({ options: { single: { type: 'string', default: '64,256' }, multi: { type: 'string', default: '64' }, warm: { type: 'string', default: '15' }, 'warm-seconds': { type: 'string', default: '2' }, repeat: { type: 'string', default: '10' }, cycles: { type: 'string', default: '3' }, guest: { type: 'string', default: DEFAULT_GUEST } } });
checkGuest(values.guest, '--guest');
const singles = values.single.split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const multi = Number(values.multi);
const repeat = Math.max(1, Number(values.repeat));
const warm = Math.max(0, Number(values.warm));
const warmMs = Math.max(0, Number(values['warm-seconds'])) * 1000;
const cycles = Math.max(1, Number(values.cycles));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
setQuiet(true);

const dir = await mkdtemp(join(tmpdir(), 'brick-bench-'));
const topo = join(dir, 'conn.yaml');
await writeFile(topo, renderTopology({ name: 'bench-conn', guest: values.guest, nodes: [{ name: 'target-1', role: 'target' }, { name: 'compute-1', role: 'compute', memoryMiB: 768 }] }));
const rec = await up(await loadTopology(topo), { topologyFile: topo });
const t = (await labClient(rec, 'target-1')).target;
const c = (await labClient(rec, 'compute-1')).compute;
const iqn = rec.nodes.find((n) => n.name === 'compute-1')!.initiatorIqn;
const rows: string[][] = [['measure', 'brick-lab', 'os-brick', 'ratio']];
const fmt = (s: number): string => (s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`);
const row = (what: string, ours: number, theirs: number | null): void => {
  rows.push([what, fmt(ours), theirs === null ? '-' : fmt(theirs), theirs === null ? '-' : `${(theirs / ours).toFixed(1)}x`]);
};

/** A read timed as the driver does (bench/os_brick_driver.py): fresh, first after idle, warm. */
interface OsBrickRead {
  fresh: number;
  first: number;
  warm: number;
  calls: number;
}

interface OsBrickAnswer {
  paths?: OsBrickRead;
  all?: OsBrickRead & { count: number };
  cycle?: Array<{ attachSeconds: number; detachSeconds: number }>;
}

/**
 * One os-brick process for a job. Its reads are timed like the agent's (agentMs): the first call
 * once the process and the guest have been idle as long as the agent's first call waits (two
 * seconds of an idle guest and half a second more), then the median of up to `repeat` calls; the
 * call right after the import (a one-shot process's figure, which comes with the guest wide awake
 * from seconds of importing) is printed beside.
 */
async function osBrick(job: Record<string, unknown>): Promise<OsBrickAnswer> {
  const r = await c.run(['python3', '/tmp/os_brick_driver.py'], { input: JSON.stringify({ idleSeconds: 2.5, repeat, budgetSeconds: 15, ...job }), timeoutMs: 1_800_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as OsBrickAnswer;
}

/**
 * The agent's own time for a route: its first call, and the median of `repeat` calls after warming
 * it (`warm` calls and `warmMs` at least); `phases` is the median of each step the route timed (Server-Timing: request, snapshot,
 * tools, judge, hostwide).
 */
async function agentMs(call: () => Promise<unknown>): Promise<{ first: number; firstPhases: string; warm: number; phases: string; spread: string }> {
  const own = (): number => (c.lastServerMs ?? Number.NaN) - (c.lastServerTimings.receive ?? 0);
  // The first call on a quiet guest, as a gate job's check comes after its attach has settled:
  // not in the wake of the row before (a full inventory's warm-up leaves megabytes of garbage,
  // which the agent collects once it has been idle for a moment, src/agent/idle-gc.ts).
  await waitIdle();
  await new Promise((r) => setTimeout(r, 500));
  await call();
  const first = own();
  const firstPhases = Object.entries(c.lastServerTimings).filter(([k]) => k !== 'agent').map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
  const warmFrom = performance.now();
  for (let i = 0; i < warm || performance.now() - warmFrom < warmMs; i++) await call();
  const xs: number[] = [];
  const byPhase = new Map<string, number[]>();
  for (let i = 0; i < repeat; i++) {
    await call();
    xs.push(own());
    for (const [k, v] of Object.entries(c.lastServerTimings)) if (k !== 'agent') byPhase.set(k, [...(byPhase.get(k) ?? []), v]);
  }
  // The spread of the calls measured: under TCG a host's other work shows as a long tail.
  const at = (q: number): string => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!.toFixed(1);
  return { first, firstPhases, warm: median(xs), phases: [...byPhase].map(([k, v]) => `${k} ${median(v).toFixed(1)}${v.length < repeat ? ` (in ${v.length} of ${repeat})` : ''}`).join(', '), spread: `p10 ${at(0.1)}, p90 ${at(0.9)}` };
}

/**
 * Wait until the compute guest is idle: after many attaches udev and multipathd go on working
 * through events for a while after `udevadm settle`, and a measurement taken then is theirs too.
 * Idle: over 90% of the guest's CPU time idle across two seconds (waited for up to two minutes).
 */
async function waitIdle(): Promise<number> {
  const t0 = performance.now();
  const sample = async (): Promise<[number, number]> => {
    const f = (await c.run(['head', '-1', '/proc/stat'])).stdout.trim().split(/\s+/).slice(1).map(Number);
    return [f.reduce((a, b) => a + b, 0), f[3]! + (f[4] ?? 0)];
  };
  for (let i = 0; i < 50; i++) {
    const [t1, i1] = await sample();
    await new Promise((r) => setTimeout(r, 2000));
    const [t2, i2] = await sample();
    if ((i2 - i1) / Math.max(1, t2 - t1) > 0.9) break;
  }
  return (performance.now() - t0) / 1000;
}

/**
 * What the available volumes' answer cannot go below while it tells the truth: every SCSI
 * device's WWID read again (a LUN rescanned in place changes it with no uevent), here alone,
 * one pread per device through descriptors held open as the agent holds them, by the agent's own
 * Node in the compute guest; the median of 30 rounds after 30 not counted.
 */
const WWID_FLOOR_JS = `
const fs = require('fs');
const dir = '/sys/class/scsi_device';
const fds = fs.readdirSync(dir).map((d) => { try { return fs.openSync(dir + '/' + d + '/device/wwid', 'r'); } catch { return -1; } }).filter((fd) => fd >= 0);
const b = Buffer.alloc(4096);
const xs = [];
for (let i = 0; i < 60; i++) {
  const t = performance.now();
  for (const fd of fds) b.toString('utf8', 0, fs.readSync(fd, b, 0, b.length, 0)).trim();
  xs.push(performance.now() - t);
}
const w = xs.slice(30).sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ devices: fds.length, ms: w[w.length >> 1] }));
`;

async function wwidFloor(): Promise<{ devices: number; ms: number }> {
  const r = await c.run(['/opt/brick-lab/node/node', '-e', WWID_FLOOR_JS]);
  return JSON.parse(r.stdout) as { devices: number; ms: number };
}

async function setUp(n: number, multipath: boolean, prefix: string, from = 0): Promise<TargetVolume[]> {
  const vols: TargetVolume[] = [];
  const target = `iqn.2026-11.io.brick-lab:bench.${prefix}`;
  for (let i = from; i < n; i++) {
    vols.push(await t.createIscsiVolume({ name: `${prefix}${i}`, sizeMiB: 1, iqn: target, initiators: [iqn], ...(multipath ? {} : { networks: ['path-a'] }) }));
  }
  for (const v of vols) await c.connect('iscsi', v.connectionInfo, { multipath, timeoutMs: 600_000 });
  await c.run(['udevadm', 'settle', '--timeout=600'], { timeoutMs: 700_000 });
  const idle = await waitIdle();
  if (idle > 5) process.stderr.write(`[bench] compute-1 became idle ${idle.toFixed(0)} s after udev settled\n`);
  return vols;
}

async function pathsFor(label: string, vols: TargetVolume[], multipath: boolean): Promise<void> {
  const volumes = vols.map((v) => v.connectionInfo);
  let oursFound = 0;
  const ours = await agentMs(async () => {
    const res = await c.volumePathsBatch('iscsi', volumes, { timeoutMs: 600_000 });
    oursFound = res.results.reduce((a, r) => a + r.paths.length, 0);
  });
  const theirs = await osBrick({ protocol: 'ISCSI', multipath, paths: vols.map((v) => v.connectionInfo.data) });
  row(`${label}: paths of every volume (${oursFound} paths)`, ours.warm / 1000, theirs.paths!.warm);
  rows.push([`    where it went (ms): ${ours.phases}; spread of the ${repeat}: ${ours.spread}`, '', '', '']);
  row('  the same, first call after a quiet spell', ours.first / 1000, theirs.paths!.first);
  rows.push([`    where it went (ms): ${ours.firstPhases}`, '', '', '']);
  rows.push([`    os-brick's call right after its import: ${fmt(theirs.paths!.fresh)}; its warm figure: median of ${theirs.paths!.calls}`, '', '', '']);
}

try {
  await c.run(['tee', '/tmp/os_brick_driver.py'], { input: await readFile(join(PROJECT_ROOT, 'bench', 'os_brick_driver.py'), 'utf8') });
  const node = (await labVersions(rec)).nodes.find((n) => n.name === 'compute-1')!;
  process.stdout.write(`connector benchmark: ${cpus().length} cores, ${rec.accel.toUpperCase()}, compute-1 ${rec.nodes[1]!.memoryMiB} MiB, guest ${node.guest} (kernel ${node.kernel}, os-brick ${node.osBrick}); ours: agent time, first call and median of ${repeat} after at least ${warm} more and ${warmMs / 1000} s of them; os-brick: one python3 process per measure (import not counted), timed the same way (first call after 2.5 s asleep, median of up to ${repeat})\n`);

  // Attach + detach cycles, both ends clean.
  const cyc = await t.createIscsiVolume({ name: 'cycle', sizeMiB: 8, initiators: [iqn], networks: ['path-a'] });
  const attach: number[] = [];
  const detach: number[] = [];
  // Both sides start from an idle guest (right after boot, coldplug's tail is still running),
  // and each side's first cycle is not counted: under TCG the first login, scan, udev run and
  // logout after a boot have the guest's kernel, iscsid and udev paths translated (QEMU keeps
  // the translations for whoever comes next), which would charge that to whichever side goes first.
  await waitIdle();
  await c.disconnect('iscsi', cyc.connectionInfo, await c.connect('iscsi', cyc.connectionInfo));
  await osBrick({ protocol: 'ISCSI', cycle: cyc.connectionInfo.data, cycles: 1 });
  await waitIdle();
  for (let i = 0; i < cycles; i++) {
    const s0 = performance.now();
    const d = await c.connect('iscsi', cyc.connectionInfo);
    const s1 = performance.now();
    await c.disconnect('iscsi', cyc.connectionInfo, d);
    attach.push((s1 - s0) / 1000);
    detach.push((performance.now() - s1) / 1000);
  }
  const oursClean = (await c.orphans({ protocol: 'iscsi', properties: cyc.connectionInfo, wwid: cyc.iscsi!.wwid })).clean;
  await waitIdle();
  const theirs = (await osBrick({ protocol: 'ISCSI', cycle: cyc.connectionInfo.data, cycles })).cycle!;
  const theirsClean = await c.orphans({ protocol: 'iscsi', properties: cyc.connectionInfo, wwid: cyc.iscsi!.wwid });
  const ta = theirs.map((x) => x.attachSeconds);
  const td = theirs.map((x) => x.detachSeconds);
  row(`attach (one volume, one path; median of ${cycles})`, median(attach), median(ta));
  row('detach', median(detach), median(td));
  row('attach + detach', median(attach.map((a, i) => a + detach[i]!)), median(ta.map((a, i) => a + td[i]!)));
  rows.push(['end state (orphan oracle)', oursClean ? 'clean' : 'ORPHANS', theirsClean.clean ? 'clean' : `ORPHANS ${JSON.stringify(theirsClean.orphans).slice(0, 200)}`, '']);
  await t.deleteVolume('cycle');

  const one = await setUp(1, false, 'one');
  await pathsFor('1 volume, 1 path', one, false);
  let many: TargetVolume[] = [];
  for (const n of singles) {
    many = [...many, ...(await setUp(n, false, 'single', many.length))];
    await pathsFor(`${n} volumes, 1 path`, many, false);
    const snap = await agentMs(() => c.inventory({ timeoutMs: 600_000 }));
    row(`  full inventory snapshot (${n + one.length} volumes, as many SCSI disks)`, snap.warm / 1000, null);
    row('  the same, first call', snap.first / 1000, null);
  }
  if (many.length > 0) {
    // The oracle with every volume attached: one volume judged (volume-scoped, what a check after
    // a detach asks), and the host-wide view against a baseline taken just before, with every
    // attached volume declared (each is judged to know what it accounts for).
    const v0 = many[0]!;
    const scoped = await agentMs(() => c.orphans({ protocol: 'iscsi', properties: v0.connectionInfo, wwid: v0.iscsi!.wwid }, { timeoutMs: 600_000 }));
    row(`  orphan oracle, volume-scoped (${many.length + one.length} volumes attached)`, scoped.warm / 1000, null);
    rows.push([`    where it went (ms): ${scoped.phases}; spread of the ${repeat}: ${scoped.spread}`, '', '', '']);
    row('  the same, first call', scoped.first / 1000, null);
    // Host-wide: the baseline kept by the agent and named by its id (what a big host wants: no
    // snapshot of hundreds of kilobytes sent back and parsed again), then the same sent back whole.
    const kept = await c.takeBaseline({ timeoutMs: 600_000 });
    const declared = [...one, ...many].map((v) => ({ protocol: 'iscsi' as const, properties: v.connectionInfo }));
    let clean = true;
    const wide = await agentMs(async () => {
      clean = (await c.hostCheck({ baselineId: kept.id, stillAttached: declared }, { timeoutMs: 600_000 })).clean;
    });
    row(`  orphan oracle, host-wide against a kept baseline (${declared.length} declared attached)${clean ? '' : ' NOT CLEAN'}`, wide.warm / 1000, null);
    rows.push([`    where it went (ms): ${wide.phases}; spread of the ${repeat}: ${wide.spread}`, '', '', '']);
    row('  the same, first call', wide.first / 1000, null);
    const sent = await agentMs(async () => {
      clean = (await c.hostCheck({ baseline: kept.snapshot, stillAttached: declared }, { timeoutMs: 600_000 })).clean;
    });
    row(`  the same, the baseline sent back (${Math.round(JSON.stringify(kept.snapshot).length / 1024)} KiB)${clean ? '' : ' NOT CLEAN'}`, sent.warm / 1000, null);
    rows.push([`    where it went (ms): ${sent.phases}; spread of the ${repeat}: ${sent.spread}`, '', '', '']);
  }
  const mp = multi > 0 ? await setUp(multi, true, 'multi') : [];
  if (mp.length > 0) await pathsFor(`${multi} volumes, 2 paths (dm-multipath)`, mp, true);

  const attached = one.length + many.length + mp.length;
  const snapMs = await agentMs(() => c.inventory({ timeoutMs: 600_000 }));
  const availMs = await agentMs(() => c.availableVolumes('iscsi', {}, { timeoutMs: 600_000 }));
  const theirsAll = await osBrick({ protocol: 'ISCSI', all: true });
  row(`all available volumes (${attached} attached)`, availMs.warm / 1000, theirsAll.all!.warm);
  rows.push([`    where it went (ms): ${availMs.phases}; spread of the ${repeat}: ${availMs.spread}`, '', '', '']);
  row('  the same, first call after a quiet spell', availMs.first / 1000, theirsAll.all!.first);
  rows.push([`    where it went (ms): ${availMs.firstPhases}`, '', '', '']);
  rows.push([`    os-brick's call right after its import: ${fmt(theirsAll.all!.fresh)}; its warm figure: median of ${theirsAll.all!.calls}`, '', '', '']);
  const floor = await wwidFloor();
  rows.push([`    the floor of a true answer: the ${floor.devices} WWIDs alone, read again in the agent's Node: ${fmt(floor.ms / 1000)}`, '', '', '']);
  row(`full inventory snapshot (${attached} volumes, ${many.length + one.length + 2 * mp.length} SCSI disks)`, snapMs.warm / 1000, null);
  row('  the same, first call', snapMs.first / 1000, null);

  const w = Math.max(...rows.map((r) => r[0]!.length));
  for (const r of rows) process.stdout.write(`  ${r[0]!.padEnd(w)}  ${r[1]!.padStart(10)}  ${r[2]!.padStart(10)}  ${r[3]!.padStart(7)}\n`);
} finally {
  await down(rec.name, { quiet: true, keepLogs: true });
}
