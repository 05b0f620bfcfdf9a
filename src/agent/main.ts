import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { useMultipathdRelay, warmUpMultipathd } from '../inventory/multipathd.js';
import { fcInitiatorsOf, TargetVolumes } from '../targets/volumes.js';
import { type DataNetwork } from '../targets/model.js';
import { exec, setChildOomScoreAdj } from '../system/exec.js';
import { tidySysfsReader } from '../system/hostfs.js';
import { pathsView } from '../inventory/paths-view.js';
import { buildAgent } from './server.js';
import { parseAgentEnv } from './agent-env.js';
import { paths, ROUTES } from './api/paths.js';
import { rehearseOn } from './rehearse.js';
import { IdleScavenger } from './idle-gc.js';
import { loadTraining, trainAnswers, trainRequests } from './train.js';
import type { Protocol } from '../volume/protocol.js';

/** "path-a=10.10.1.10 path-b=10.10.2.10" from stage 2. */
function dataNetworks(text: string): DataNetwork[] {
  return text
    .split(/\s+/)
    .filter(Boolean)
    .map((pair) => {
      const [name, address] = pair.split('=');
      return { name: name!, address: address! };
    });
}

/** A step in the node's timeline file, as stage 2's mark writes them ("STEP UPTIME"); a failure to write is not the agent's to die of. */
function markTimeline(file: string, step: string): void {
  try {
    appendFileSync(file, `${step} ${readFileSync('/proc/uptime', 'utf8').split(' ')[0]}\n`);
  } catch (e) {
    console.error(`brick-lab agent: cannot mark ${step} in ${file}: ${(e as Error).message}`);
  }
}

/**
 * Entry point inside a guest; stage 2 sets the environment from the node's config. Bundled as one
 * CommonJS file and started through agent-loader.cjs, which feeds V8 a code cache made at build
 * time (see scripts/bundle-agent.mjs).
 */
function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`brick-lab agent: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

/** Connection properties of each shape the fetch-paths routes take, for the warm-up (nothing is attached by them). */
const WARMUP_IQN = 'iqn.2026-11.io.brick-lab:warmup.none';
const WARMUP_VOLUMES: Array<[Protocol, Record<string, unknown>]> = [
  ['iscsi', { target_portal: '10.10.1.10:3260', target_iqn: WARMUP_IQN, target_lun: 0, target_portals: ['10.10.1.10:3260', '10.10.2.10:3260'], target_iqns: [WARMUP_IQN, WARMUP_IQN], target_luns: [0, 0], volume_id: 'warmup' }],
  ['iscsi', { driver_volume_type: 'iscsi', data: { target_portal: '10.10.1.10:3260', target_iqn: WARMUP_IQN, target_lun: 1, device_wwid: '36001405000000000000000000000000a' } }],
  ['nvmeof', { target_nqn: 'nqn.2026-11.io.brick-lab:warmup.none', portals: [['10.10.1.10', 4420, 'tcp']], vol_uuid: '00000000-0000-4000-8000-000000000000' }],
  ['local', { device_path: '/dev/brick-lab-warmup-none' }],
];

/**
 * Build time only: exercise the startup path and the read-only routes a gate job asks most (the
 * fetch-paths API, the inventory) once, so that the code cache holds their compiled bytecode and
 * their first call in a guest does not compile them. They read this host's sysfs; nothing here
 * attaches, detaches or writes anything. Then stop.
 */
async function warmup(opts: { health: boolean; trainMs: number } = { health: true, trainMs: 0 }): Promise<void> {
  const app = await buildAgent({ lab: 'warmup', node: 'warmup', role: 'compute', token: 'warmup', compute: true });
  await app.ready();
  const headers = { authorization: 'Bearer warmup' };
  if (opts.health) await app.inject({ method: 'GET', url: ROUTES.health }).catch(() => undefined);
  await app.inject({ method: 'POST', url: ROUTES.exec, headers, payload: { argv: ['true'] } });
  await app.inject({ method: 'GET', url: ROUTES.connectors, headers });
  for (const [protocol, props] of WARMUP_VOLUMES) {
    await app.inject({ method: 'GET', url: paths.searchPath(protocol), headers });
    await app.inject({ method: 'POST', url: paths.volumePaths(protocol), headers, payload: props });
    await app.inject({ method: 'POST', url: paths.volumePathsBatch(protocol), headers, payload: { volumes: [props, props] } });
    await app.inject({ method: 'POST', url: paths.availableVolumes(protocol), headers, payload: {} });
  }
  await app.inject({ method: 'GET', url: paths.inventory(), headers });
  // The fetch-paths code trained on real shapes (src/agent/train.ts): in a template for as long as
  // V8 takes to optimise it, at build time a few dozen rounds, so that the code cache holds it.
  // A training that fails (its file unreadable too) costs the first calls their speed, not the
  // node (or the template) its agent.
  try {
    const training = loadTraining();
    if (training) {
      await trainRequests(app, training, 'warmup', opts.trainMs);
      await trainAnswers(training, opts.trainMs);
    } else if (opts.trainMs > 0) console.error('brick-lab agent: no training file beside the agent: its first calls will be slower');
  } catch (e) {
    console.error(`brick-lab agent: training stopped, the first calls will be slower: ${(e as Error).message}`);
  }
  await app.close();
}

async function main(): Promise<void> {
  const role = need('BRICK_ROLE');
  if (role !== 'target' && role !== 'compute') {
    console.error(`brick-lab agent: BRICK_ROLE must be target or compute, not ${role}`);
    process.exit(2);
  }
  const lab = need('BRICK_LAB');
  // The node's agent loop asks the OOM killer to spare the agent; what it runs must not be spared.
  const ownAdj = Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
  if (ownAdj < 0) setChildOomScoreAdj(0);
  tidySysfsReader();
  // The fetch-paths answers' view of the host, read again in the background once the kernel is
  // quiet after a change, for as long as they are asked for (PathsView).
  if (role === 'compute') pathsView().keepWarm();
  const networks = dataNetworks(process.env.BRICK_DATA_NETWORKS ?? '');
  const fcInitiators = fcInitiatorsOf(process.env.BRICK_FC_INITIATORS ?? '');
  const targets = role === 'target' ? new TargetVolumes(lab, networks, need('BRICK_LIO_HELPER'), fcInitiators) : undefined;
  // multipathd's view over its socket, through the relay stage 2 names; without it, through the CLI.
  const mpRelay = role === 'compute' ? process.env.BRICK_MULTIPATHD_RELAY : undefined;
  if (mpRelay) useMultipathdRelay({ argv: ['/usr/bin/python3', mpRelay] });
  const rebootScript = process.env.BRICK_REBOOT_SCRIPT;
  let closing: Promise<unknown> | null = null;
  const token = readFileSync(need('BRICK_AGENT_TOKEN_FILE'), 'utf8').trim();
  const app = await buildAgent({
    // Exit 75 once closed: stage 2's (or the container entry's) agent loop starts the agent again.
    restart: () => {
      closing ??= app.close().finally(() => process.exit(75));
    },
    // A lab guest's reboot script (stage 2 names it); a host-kernel target has none.
    ...(rebootScript ? { reboot: (hard: boolean) => void exec(['/bin/sh', rebootScript, hard ? 'hard' : 'clean'], { timeoutMs: 120_000, reject: false }) } : {}),
    lab,
    dataNetworks: networks,
    ...(targets ? { targets } : {}),
    localDisks: role === 'compute',
    compute: role === 'compute',
    requestLog: true,
    idleScavenger: new IdleScavenger(),
    node: need('BRICK_NODE'),
    role,
    token,
    readyFile: need('BRICK_AGENT_READY_FILE'),
    timelineFile: need('BRICK_AGENT_TIMELINE'),
    logger: false,
  });
  // After each change, the fetch-paths routes asked about the volumes the host shows (rehearse.ts).
  if (role === 'compute') rehearseOn(pathsView(), app, token);
  const host = need('BRICK_AGENT_HOST');
  const port = Number(need('BRICK_AGENT_PORT'));
  await app.listen({ host, port });
  // In the boot timeline beside stage 2's steps: under TCG the agent's own start (Node.js, the
  // bundle, fastify and its schemas) shares the booting guest's one vCPU, and the host can only
  // see ready once it listens.
  markTimeline(need('BRICK_AGENT_TIMELINE'), 'agent-listening');
  // python3 (+ rtslib on a target) takes seconds to start under TCG: pay it once the node is ready
  // (not while it boots, when the vCPU is busiest, and after stage 2 started multipathd), and not
  // on the first volume or the first oracle call.
  if (targets || mpRelay) {
    const readyFile = need('BRICK_AGENT_READY_FILE');
    const poll = setInterval(() => {
      if (existsSync(readyFile)) {
        clearInterval(poll);
        targets?.warmUp();
        if (mpRelay) warmUpMultipathd();
      }
    }, 500);
  }
  console.error(`brick-lab agent: ${process.env.BRICK_NODE} listening on ${host}:${port}`);
}

/**
 * A template boot's agent (BRICK_AGENT_TEMPLATE=ROLE): started from the runtime disk before the
 * machine's state is saved, it loads the bundle and runs the role's startup and read routes once
 * (what costs a restored node's vCPU most under TCG: Node.js, the bundle, fastify and its
 * schemas), then waits on BRICK_AGENT_WAKE (a FIFO) for the node it becomes. Stage 2 writes that
 * node's environment there once the node restored from the template has its name and addresses;
 * from then on this is the node's agent, started as any other.
 */
async function template(role: string): Promise<void> {
  // Not the health route: it reads the kernel's boot_id, which the kernel makes at its first read,
  // and every node restored from this template would then report the same boot.
  if (role === 'compute') await warmup({ health: false, trainMs: 1500 });
  else {
    const app = await buildAgent({ lab: 'template', node: 'template', role: 'target', token: 'template', compute: false, targets: new TargetVolumes('template', [], '/nonexistent') });
    await app.ready();
    await app.inject({ method: 'GET', url: ROUTES.openapi });
    await app.close();
  }
  const wake = need('BRICK_AGENT_WAKE');
  writeFileSync(`${wake}.waiting`, '');
  // Opening a FIFO for reading blocks until stage 2 opens it to write: nothing else runs meanwhile.
  const env = parseAgentEnv(readFileSync(wake, 'utf8'));
  if (!env.BRICK_NODE) {
    console.error(`brick-lab agent: ${wake} gave no node`);
    process.exit(2);
  }
  Object.assign(process.env, env);
  delete process.env.BRICK_AGENT_TEMPLATE;
  await main();
}

const templateRole = process.env.BRICK_AGENT_TEMPLATE;
export const started: Promise<void> = (process.env.BRICK_AGENT_WARMUP ? warmup() : templateRole ? template(templateRole) : main()).catch((e: unknown) => {
  console.error(`brick-lab agent: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
