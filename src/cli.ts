import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { doctor, formatDoctor } from './lab/doctor.js';
import { ensureImage } from './lab/image/build.js';
import { claimAlive, markInterrupted, readClaim } from './scenarios/job.js';
import { DEFAULT_TOPOLOGY, describeAgentDeath, down, labClient, listLabs, requireLab, status, type LabStatus } from './lab/lab.js';
import { loadTopology, withGuest, type Topology } from './lab/topology.js';
import { checkGuest, DEFAULT_GUEST } from './lab/image/recipe.js';
import { rebootNode } from './lab/reboot.js';
import { up } from './lab/up.js';
import { OUTAGE_MAX_SECONDS } from './agent/api/types.js';
import { BrickError } from './system/errors.js';
import { progress, setQuiet } from './system/log.js';
import { labDir } from './system/paths.js';
import { listScenarios, runMain } from './scenarios/run.js';
import { listChecks, parseProtocols, validateMain } from './conformance/validate.js';
import { collectEvidence } from './scenarios/evidence.js';
import { join, resolve } from 'node:path';
import { checkExitCode, gateCheck, readProperties, resolveHost, volumeOf, type GateCheck, type HostRef } from './client/gate.js';
import { isProtocol, PROTOCOLS, type Protocol } from './volume/protocol.js';

const USAGE = `brick-lab: a lab of real kernels for proving storage connectors leave no orphans

usage:
  brick-lab up [--topology FILE] [--name NAME] [--guest GUEST] [--dry-run] [--json]
  brick-lab down [--name NAME] [--all]
  brick-lab status [--name NAME] [--json]
  brick-lab exec [--name NAME] [--timeout SECONDS] NODE -- COMMAND [ARGS...]
  brick-lab outage [--name NAME] NODE --seconds N [--network NET]...
  brick-lab outage [--name NAME] NODE --end
  brick-lab reboot [--name NAME] NODE [--hard] [--json]
  brick-lab restart-agent [--name NAME] NODE [--json]
  brick-lab logs [--name NAME] NODE
  brick-lab logs [--name NAME] --export DIR
  brick-lab run [--topology FILE] [--name NAME] [--guest GUEST] [--scenario NAME|SET]... [--shard K/N]
                [--jobs N] [--results DIR] [--keep] [--json]
  brick-lab run --list
  brick-lab validate --connector PATH|os-brick|builtin [--protocol iscsi|nvmeof|fc|local]...
                [--multipath] [--check NAME]... [--connector-timeout SECONDS] [--jobs N]
                [--topology FILE] [--name NAME] [--guest GUEST] [--results DIR] [--keep] [--json]
  brick-lab validate --list [--protocol iscsi|nvmeof|fc|local]... [--multipath]
  brick-lab agent [--test-host] [--listen ADDR:PORT] [--token-file FILE]
                [--tls-cert FILE --tls-key FILE] [--allow-attach]
  brick-lab paths (--node NODE [--name LAB] | --url URL --token-file F) --properties FILE|-
                [--protocol P] [--json]
  brick-lab volumes (--node NODE [--name LAB] | --url URL --token-file F) [--protocol P] [--json]
  brick-lab inventory (--node NODE [--name LAB] | --url URL --token-file F) [--json]
  brick-lab orphans (--node NODE [--name LAB] | --url URL --token-file F) --properties FILE|-
                [--protocol P] [--json]
  brick-lab check --properties FILE|- [--protocol P] [--attached-on HOST]... [--gone-from HOST]...
                [--name LAB] [--token-file F] [--json]
  brick-lab doctor [--json]
  brick-lab image [--guest GUEST] [--json]

The lab name defaults to the topology's name (lab/default.yaml: "default") or $BRICK_LAB_NAME.
Caches live in $BRICK_LAB_CACHE (default ~/.cache/brick-lab), lab state and console logs in
$BRICK_LAB_STATE (default ~/.local/state/brick-lab). BRICK_LAB_ACCEL=kvm|tcg skips the KVM probe.
--guest names the guest (Debian release and kernel) of every node whose topology entry names none:
bookworm (the default) or trixie (images/guests/); \`image\` builds a guest's image alone.
\`run\` runs the "standard" scenario set of lab/scenarios.yaml unless --scenario says otherwise and
writes report.json, junit.xml and summary.md (plus node evidence for failures) to --results
(default results/run); it exits 1 when a scenario failed or left something behind. With --jobs N,
up to N scenarios (or checks) run at once, each on compute nodes of its own while the target
serves them all; one that needs every compute or the whole target runs alone, first (default 1).
\`validate\` runs the conformance checks of each --protocol (default iscsi) against a connector
program (any language; docs/connector-protocol.md), a JavaScript/TypeScript module implementing
the Connector interface, Debian's os-brick ("os-brick") or brick-lab's own ("builtin"), and
writes the same reports to --results (default results/validate); it exits 1 when a check failed.
\`outage\` takes a node's data networks (every one unless --network names some) down for N
seconds (1-3600): a compute's own link, or a target offline. The node's agent brings them back
when the time is up; --end brings them back now.
\`reboot\` reboots a node's guest (with --hard, a reset at once: nothing synced or logged out) and
waits until it is ready again, with the same addresses, IQN and host NQN. Its disk keeps /etc/iscsi
(node records), /etc/multipath and /etc/nvme across the reboot; everything else starts afresh.
\`restart-agent\` restarts a node's agent (the connector's process) and waits for the new one.
\`paths\`, \`volumes\`, \`inventory\` and \`orphans\` ask one compute agent (a lab's node, or any
\`brick-lab agent\` by URL with its token file) for a volume's paths, the available volumes, the
host's snapshot, or what the orphan oracle finds left of a volume (exit 1 when something is).
A volume is its connection properties as JSON (os-brick's connection_info as Cinder hands it,
or its data with --protocol). \`check\` is the os-brick spec's gate check: the volume must be
attached on every --attached-on host and gone from every --gone-from host (no path, no device,
no orphan); a HOST is a compute node of the lab or an agent URL. It exits 0 when every host
holds, 1 when one does not, 3 when none fails but one could not be asked.
\`agent\` serves the compute agent on this host, outside any lab (a devstack compute, a
Kubernetes node): the fetch-paths API, the inventory and the orphan oracle behind a token,
read-only unless --allow-attach. It runs only on a host marked as a test host (--test-host, or
the file /etc/brick-lab/test-host); \`brick-lab agent --help\` says more.
`;

class UsageError extends BrickError {
  constructor(message: string) {
    super('USAGE', message, { hint: 'brick-lab --help shows every verb and option' });
  }
}

/** The topology of --topology (or the default one), read once however many times it is asked for. */
function topologyLoader(file: string): () => Promise<Topology> {
  let loaded: Promise<Topology> | null = null;
  return () => (loaded ??= loadTopology(file));
}

async function defaultName(topologyFile: string | undefined, topology: () => Promise<Topology>): Promise<string> {
  if (process.env.BRICK_LAB_NAME) return process.env.BRICK_LAB_NAME;
  if (topologyFile) return (await topology()).name;
  return 'default';
}

/** Ctrl-C once: cancel and clean up; twice: say we are still cleaning. */
function abortOnSignals(): AbortController {
  const ac = new AbortController();
  let count = 0;
  const handler = (sig: NodeJS.Signals): void => {
    count++;
    if (count === 1) {
      progress('signal', `${sig}: stopping and removing what was made so far`);
      ac.abort(new BrickError('LAB_INTERRUPTED', `interrupted by ${sig}`));
    } else {
      progress('signal', 'still cleaning up; wait a few seconds');
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
  return ac;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function formatStatus(s: LabStatus): string {
  if (s.phase === 'down') return `lab ${s.name}: down`;
  const images = s.images && Object.keys(s.images).length > 1 ? `images ${Object.entries(s.images).map(([g, i]) => `${g} ${i.key} (kernel ${i.kernelRelease})`).join(', ')}` : `image ${s.image?.key} kernel ${s.image?.kernelRelease}`;
  const head = [`lab ${s.name}: ${s.phase}, ${s.accel?.toUpperCase()} (${s.accelReason}), ${images}`];
  head.push(`token: ${s.tokenFile}   ${s.docker ? `docker: ${s.docker.privileges.summary}, networks ${Object.values(s.docker.networks).map((n) => n.name).join(' ')}` : `network namespace: ${s.netns}`}`);
  const rows = [['NODE', 'ROLE', 'STATE', 'GUEST', 'KERNEL', 'OS-BRICK', 'MANAGEMENT URL', 'DATA ADDRESSES']];
  for (const n of s.nodes) {
    rows.push([n.container ? `${n.name} (container)` : n.name, n.role, n.state, n.guest, n.kernel ?? '-', n.osBrick ?? '-', n.url, Object.entries(n.addresses).map(([k, v]) => `${k}=${v}`).join(' ')]);
  }
  const deaths = s.nodes.filter((n) => n.agentDeaths.length > 0).map((n) => {
    const last = n.agentDeaths.at(-1)!;
    return `${n.name}: its agent ended ${n.agentDeaths.length} time${n.agentDeaths.length === 1 ? '' : 's'} this boot and was started again (last: ${describeAgentDeath(last)}); \`brick-lab logs ${n.name}\` has its console`;
  });
  return `${head.join('\n')}\n${table(rows)}${deaths.length ? `\n${deaths.join('\n')}` : ''}`;
}

/**
 * What each verb takes (USAGE): an option or an argument another verb takes, given to one that
 * does not, would otherwise be dropped without a word (`up --name x topo.yaml` bringing up the
 * default topology).
 */
const VERB_ARGS: Record<string, { options: string[]; node?: true; command?: true }> = {
  up: { options: ['topology', 'name', 'guest', 'dry-run', 'json'] },
  down: { options: ['name', 'all'] },
  status: { options: ['name', 'json'] },
  exec: { options: ['name', 'timeout'], node: true, command: true },
  logs: { options: ['name', 'export'], node: true },
  outage: { options: ['name', 'seconds', 'network', 'end'], node: true },
  reboot: { options: ['name', 'hard', 'json'], node: true },
  'restart-agent': { options: ['name', 'json'], node: true },
  run: { options: ['topology', 'name', 'guest', 'scenario', 'shard', 'jobs', 'results', 'keep', 'json', 'list'] },
  validate: { options: ['connector', 'protocol', 'multipath', 'check', 'connector-timeout', 'jobs', 'topology', 'name', 'guest', 'results', 'keep', 'json', 'list'] },
  paths: { options: ['node', 'name', 'url', 'token-file', 'properties', 'protocol', 'json'] },
  volumes: { options: ['node', 'name', 'url', 'token-file', 'protocol', 'json'] },
  inventory: { options: ['node', 'name', 'url', 'token-file', 'json'] },
  orphans: { options: ['node', 'name', 'url', 'token-file', 'properties', 'protocol', 'json'] },
  check: { options: ['properties', 'protocol', 'attached-on', 'gone-from', 'name', 'token-file', 'json'] },
  doctor: { options: ['json'] },
  image: { options: ['guest', 'json'] },
};

function checkVerbArgs(verb: string, given: string[], positionals: string[], dashdash: boolean): void {
  const takes = VERB_ARGS[verb];
  if (!takes) return; // an unknown verb is named as such below
  const wrong = given.filter((k) => !takes.options.includes(k));
  if (wrong.length > 0) {
    throw new UsageError(`${verb} does not take ${wrong.map((k) => `--${k}`).join(', ')} (it takes ${takes.options.map((k) => `--${k}`).join(', ')})`);
  }
  const extra = positionals.slice(takes.node ? 1 : 0);
  if (extra.length > 0) {
    const file = extra.find((a) => /\.ya?ml$/.test(a));
    throw new UsageError(`${verb} takes ${takes.node ? 'one node name and ' : ''}no other argument, got ${extra.map((a) => JSON.stringify(a)).join(' ')}${file && takes.options.includes('topology') ? ` (for a topology file: --topology ${file})` : ''}`);
  }
  if (dashdash && !takes.command) throw new UsageError(`${verb} takes no command after --`);
}

async function main(argv: string[]): Promise<number> {
  const verb = argv[0];
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(USAGE);
    return verb ? 0 : 2;
  }
  const rest = argv.slice(1);
  // The agent on this host, outside any lab: options of its own (src/agent/host-agent.ts).
  if (verb === 'agent') return (await import('./agent/host-agent.js')).hostAgentMain(rest);
  const dashdash = rest.indexOf('--');
  const optsPart = dashdash >= 0 ? rest.slice(0, dashdash) : rest;
  const command = dashdash >= 0 ? rest.slice(dashdash + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: optsPart,
      allowPositionals: true,
      options: {
        topology: { type: 'string' },
        name: { type: 'string' },
        guest: { type: 'string' },
        json: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        all: { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        seconds: { type: 'string' },
        network: { type: 'string', multiple: true },
        end: { type: 'boolean', default: false },
        hard: { type: 'boolean', default: false },
        scenario: { type: 'string', multiple: true },
        results: { type: 'string' },
        list: { type: 'boolean', default: false },
        export: { type: 'string' },
        shard: { type: 'string' },
        jobs: { type: 'string' },
        connector: { type: 'string' },
        protocol: { type: 'string', multiple: true },
        multipath: { type: 'boolean', default: false },
        check: { type: 'string', multiple: true },
        'connector-timeout': { type: 'string' },
        node: { type: 'string' },
        url: { type: 'string' },
        'token-file': { type: 'string' },
        properties: { type: 'string' },
        'attached-on': { type: 'string', multiple: true },
        'gone-from': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  checkVerbArgs(verb, Object.keys(o).filter((k) => k !== 'help' && o[k as keyof typeof o] !== undefined && o[k as keyof typeof o] !== false), positionals, dashdash >= 0);
  const topologyFile = o.topology;
  if (topologyFile && !existsSync(topologyFile)) throw new UsageError(`--topology ${topologyFile}: no such file`);
  const topologyPath = topologyFile ?? DEFAULT_TOPOLOGY;
  // --guest: the lab-wide guest, checked before anything is loaded, built or booted.
  const guest = o.guest === undefined ? undefined : checkGuest(o.guest);
  const loadTopo = topologyLoader(topologyPath);
  const topology = async (): Promise<Topology> => withGuest(await loadTopo(), guest);
  const name = o.name ?? (await defaultName(topologyFile, topology));
  if (o.json) setQuiet(false);

  switch (verb) {
    case 'up': {
      const ac = abortOnSignals();
      const rec = await up(await topology(), { topologyFile: topologyPath, name, dryRun: o['dry-run'], signal: ac.signal });
      if (o['dry-run']) return 0;
      const s = await status(rec.name);
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : `${formatStatus(s)}\n`);
      return 0;
    }
    case 'down': {
      const names = o.all ? await listLabs() : [name];
      for (const n of names) {
        // A run killed on this lab left its claim: its report is marked interrupted before the
        // lab's state (and the claim with it) goes.
        const claim = await readClaim(n);
        if (claim && !claimAlive(claim)) {
          const report = await markInterrupted(claim, 'brick-lab down');
          if (report) process.stderr.write(`[down] the ${claim.tag} started at ${claim.startedAt} (pid ${claim.pid}) on lab ${n} was interrupted; its report now says so: ${report}\n`);
        }
        await down(n);
      }
      return 0;
    }
    case 'status': {
      const s = await status(name);
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : `${formatStatus(s)}\n`);
      return s.phase === 'up' && s.nodes.every((n) => n.state === 'ready') ? 0 : 1;
    }
    case 'exec': {
      const node = positionals[0];
      if (!node || command.length === 0) throw new UsageError('exec needs a node and a command: brick-lab exec NODE -- COMMAND [ARGS...]');
      const timeout = o.timeout ? Number(o.timeout) : 300;
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds (got ${o.timeout})`);
      const rec = await requireLab(name);
      const client = await labClient(rec, node);
      const r = await client.exec(command, { timeoutMs: Math.round(timeout * 1000) });
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      if (r.timedOut) {
        process.stderr.write(`brick-lab: command timed out after ${timeout} s\n`);
        return 124;
      }
      return r.exitCode ?? 128;
    }
    case 'outage': {
      const node = positionals[0];
      if (!node) throw new UsageError('outage needs a node: brick-lab outage NODE --seconds N [--network NET]... (or --end)');
      if (o.end && (o.seconds || o.network)) throw new UsageError('outage --end takes no --seconds or --network: it brings every data network of the node back up');
      let seconds = 0;
      if (!o.end) {
        seconds = Number(o.seconds);
        if (!o.seconds || !Number.isInteger(seconds) || seconds < 1 || seconds > OUTAGE_MAX_SECONDS) throw new UsageError(`outage needs --seconds, a whole number from 1 to ${OUTAGE_MAX_SECONDS} (got ${o.seconds ?? 'none'})`);
      }
      const client = await labClient(await requireLab(name), node);
      const r = o.end ? await client.endOutage() : await client.startOutage(seconds, o.network);
      process.stdout.write(o.end || r.down.length === 0 ? `${node}: every data network is up\n` : `${r.down.map((d) => `${node}: ${d.network} down until ${d.until}`).join('\n')}\n`);
      return 0;
    }
    case 'reboot': {
      const node = positionals[0];
      if (!node) throw new UsageError('reboot needs a node: brick-lab reboot NODE [--hard]');
      const r = await rebootNode(await requireLab(name), node, { hard: Boolean(o.hard) });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${node}: ${r.hard ? 'hard reset' : 'clean reboot'}, ready again in ${r.seconds.toFixed(1)} s (boot ${r.bootId})\n`);
      return 0;
    }
    case 'restart-agent': {
      const node = positionals[0];
      if (!node) throw new UsageError('restart-agent needs a node: brick-lab restart-agent NODE');
      const client = await labClient(await requireLab(name), node);
      const before = await client.health();
      const h = await client.restartAgent();
      process.stdout.write(o.json ? `${JSON.stringify({ node, fromPid: before.agent.pid, pid: h.agent.pid }, null, 2)}\n` : `${node}: the agent restarted (pid ${before.agent.pid} -> ${h.agent.pid})\n`);
      return 0;
    }
    case 'logs': {
      if (o.export) {
        const rec = await requireLab(name);
        const files = await collectEvidence(rec, resolve(o.export));
        process.stdout.write(`${files.join('\n')}\n`);
        return 0;
      }
      const node = positionals[0];
      if (!node) throw new UsageError('logs needs a node: brick-lab logs NODE');
      const path = join(labDir(name), 'logs', `${node}.console.log`);
      if (!existsSync(path)) {
        throw new BrickError('LOG_MISSING', `no console log for node ${node} of lab ${name} (${path})`, {
          hint: 'check the node and lab names with `brick-lab status`',
        });
      }
      process.stdout.write(await readFile(path, 'utf8'));
      return 0;
    }
    case 'doctor': {
      const report = await doctor();
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
      return report.ok ? 0 : 1;
    }
    case 'image': {
      const img = await ensureImage({ guest: guest ?? DEFAULT_GUEST });
      process.stdout.write(o.json ? `${JSON.stringify(img, null, 2)}\n` : `${img.key} ${img.dir}\n`);
      return 0;
    }
    case 'run': {
      if (o.list) {
        process.stdout.write(listScenarios());
        return 0;
      }
      const jobs = parseJobs(o.jobs);
      const ac = abortOnSignals();
      return runMain({ topology: await topology(), topologyFile: topologyPath, name, ...(guest ? { guest } : {}), keep: o.keep, json: o.json, scenarios: o.scenario ?? [], ...(o.results ? { resultsDir: o.results } : {}), ...(o.shard ? { shard: o.shard } : {}), ...(jobs ? { jobs } : {}), signal: ac.signal });
    }
    case 'validate': {
      if (o.list) {
        process.stdout.write(listChecks(parseProtocols(o.protocol ?? []), o.multipath));
        return 0;
      }
      if (!o.connector) throw new UsageError('validate needs --connector PATH|os-brick|builtin');
      const t = o['connector-timeout'];
      if (t !== undefined && !/^[1-9][0-9]{0,4}$/.test(t)) throw new UsageError(`--connector-timeout must be whole seconds from 1 (got ${JSON.stringify(t)})`);
      const jobs = parseJobs(o.jobs);
      const ac = abortOnSignals();
      return validateMain({
        connector: o.connector,
        protocols: parseProtocols(o.protocol ?? []),
        multipath: o.multipath,
        checks: o.check ?? [],
        topology: await topology(),
        topologyFile: topologyPath,
        name,
        ...(guest ? { guest } : {}),
        keep: o.keep,
        json: o.json,
        ...(o.results ? { resultsDir: o.results } : {}),
        ...(t ? { timeoutMs: Number(t) * 1000 } : {}),
        ...(jobs ? { jobs } : {}),
        signal: ac.signal,
      });
    }
    case 'paths':
    case 'volumes':
    case 'inventory':
    case 'orphans':
    case 'check':
      return clientVerb(verb, o, name);
    default:
      throw new UsageError(`unknown verb ${verb}`);
  }
}

/** --jobs N: a whole number from 1 to 64 (the lab's computes bound it further, at run time). */
function parseJobs(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]?$/.test(v) || Number(v) > 64) throw new UsageError(`--jobs must be a whole number from 1 to 64, scenarios at once (got ${JSON.stringify(v)})`);
  return Number(v);
}

export async function cli(argv: string[]): Promise<number> {
  try {
    return await main(argv);
  } catch (e) {
    if (e instanceof BrickError) {
      process.stderr.write(`brick-lab: ${e.describe()}\n`);
      return e.code === 'USAGE' ? 2 : e.code === 'LAB_INTERRUPTED' ? 130 : 1;
    }
    process.stderr.write(`brick-lab: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

interface ClientOptions {
  node?: string | undefined;
  url?: string | undefined;
  'token-file'?: string | undefined;
  properties?: string | undefined;
  protocol?: string[] | undefined;
  'attached-on'?: string[] | undefined;
  'gone-from'?: string[] | undefined;
  json: boolean;
}

/** The one agent a client verb asks: --node of the lab, or --url with --token-file. */
async function oneHost(verb: string, o: ClientOptions, labName: string): Promise<HostRef> {
  if (Boolean(o.node) === Boolean(o.url)) throw new UsageError(`${verb} asks one agent: give --node NODE (a lab's compute) or --url URL (with --token-file)${o.node ? ', not both' : ''}`);
  if (o.node && o['token-file']) throw new UsageError(`${verb}: --token-file goes with --url (a lab's node uses the lab's token)`);
  return resolveHost(o.node ?? o.url!, { labName, ...(o['token-file'] ? { tokenFile: o['token-file'] } : {}) });
}

function oneProtocol(verb: string, o: ClientOptions): string | undefined {
  if ((o.protocol?.length ?? 0) > 1) throw new UsageError(`${verb} takes one --protocol, got ${o.protocol!.join(', ')}`);
  return o.protocol?.[0];
}

function needProperties(verb: string, o: ClientOptions): Record<string, unknown> {
  if (!o.properties) throw new UsageError(`${verb} needs --properties FILE (the volume's connection_info as JSON; - for standard input)`);
  return readProperties(o.properties);
}

const list = (xs: readonly string[]): string => (xs.length > 0 ? xs.join(' ') : '-');

function formatCheck(c: GateCheck): string {
  const rows = [['HOST', 'EXPECTED', 'VERDICT', 'DETAIL'], ...c.hosts.map((h) => [h.host, h.expect, h.verdict === 'error' ? `error ${h.code ?? ''}`.trim() : h.verdict, h.detail])];
  const n = c.hosts.length;
  const hosts = `host${n === 1 ? '' : 's'}`;
  const fails = c.hosts.filter((h) => h.verdict === 'fails').length;
  const errors = c.hosts.filter((h) => h.verdict === 'error').length;
  const why = [...(fails > 0 ? [`${fails} of ${n} ${hosts} ${fails === 1 ? 'does' : 'do'} not hold`] : []), ...(errors > 0 ? [`${errors} of ${n} ${hosts} could not be asked`] : [])];
  return `${table(rows)}\n${c.ok ? `check holds on all ${n} ${hosts}` : `check FAILED: ${why.join('; ')}`}`;
}

/** paths, volumes, inventory, orphans, check: clients of compute agents (src/client/gate.ts). */
async function clientVerb(verb: string, o: ClientOptions, labName: string): Promise<number> {
  const out = (json: unknown, text: string): void => void process.stdout.write(o.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
  if (verb === 'check') {
    const volume = volumeOf(needProperties(verb, o), oneProtocol(verb, o));
    const attached = o['attached-on'] ?? [];
    const gone = o['gone-from'] ?? [];
    if (attached.length + gone.length === 0) throw new UsageError('check needs at least one --attached-on HOST or --gone-from HOST');
    // Every host resolved (lab, node, URL, token) before any is asked.
    const opts = { labName, ...(o['token-file'] ? { tokenFile: o['token-file'] } : {}) };
    const on = await Promise.all(attached.map((h) => resolveHost(h, opts)));
    const from = await Promise.all(gone.map((h) => resolveHost(h, opts)));
    const c = await gateCheck(volume, on, from);
    out(c, formatCheck(c));
    return checkExitCode(c);
  }
  const host = await oneHost(verb, o, labName);
  switch (verb) {
    case 'paths': {
      const v = volumeOf(needProperties(verb, o), oneProtocol(verb, o));
      const r = await host.client.volumePaths(v.protocol, v.properties);
      out(r, `paths:   ${list(r.paths)}\ndevices: ${list(r.devices)}`);
      return 0;
    }
    case 'volumes': {
      const p = oneProtocol(verb, o);
      if (p !== undefined && !isProtocol(p)) throw new UsageError(`--protocol ${JSON.stringify(p)}: one of ${PROTOCOLS.join(', ')}`);
      const protocols: Protocol[] = p ? [p] : [...PROTOCOLS];
      const found: Record<string, Awaited<ReturnType<typeof host.client.availableVolumes>>['volumes']> = {};
      for (const q of protocols) found[q] = (await host.client.availableVolumes(q, {})).volumes;
      const rows = [['PROTOCOL', 'IDENTITY', 'PATHS', 'DEVICES']];
      for (const [q, vs] of Object.entries(found)) for (const v of vs) rows.push([q, Object.entries(v.identity).filter(([, x]) => x !== null && x !== undefined).map(([k, x]) => `${k}=${Array.isArray(x) ? x.join(',') : String(x)}`).join(' '), list(v.paths), list(v.devices)]);
      out(found, rows.length > 1 ? table(rows) : `no volume of ${protocols.join(', ')} on ${host.spec}`);
      return 0;
    }
    case 'inventory': {
      const s = await host.client.inventory();
      const lines = [
        `${host.spec}: taken at ${s.takenAt}`,
        `scsi devices (${s.scsiDevices.length}): ${list(s.scsiDevices.map((d) => `${d.hctl}${d.block ? `=${d.block}` : ''}`))}`,
        `iscsi sessions (${s.iscsiSessions.length}): ${list(s.iscsiSessions.map((x) => `${x.sid} ${x.targetIqn ?? '?'} ${x.portal ?? '?'}`))}`,
        `iscsi node records (${s.iscsiNodes.length}): ${list(s.iscsiNodes.map((x) => `${x.iqn} ${x.portal}`))}`,
        `nvme controllers (${s.nvmeControllers.length}): ${list(s.nvmeControllers.map((x) => `${x.name} ${x.subsysNqn ?? '?'}`))}`,
        `nvme namespaces (${s.nvmeNamespaces.length}): ${list(s.nvmeNamespaces.map((x) => x.name))}`,
        `multipath maps (${s.multipathMaps.length}): ${list(s.multipathMaps.map((m) => `${m.dm}${m.name ? `=${m.name}` : ''}`))}`,
        `by-path and by-id links: ${s.links.length}`,
      ];
      out(s, lines.join('\n'));
      return 0;
    }
    case 'orphans': {
      const v = volumeOf(needProperties(verb, o), oneProtocol(verb, o));
      const r = await host.client.orphans({ protocol: v.protocol, properties: v.properties });
      out(r, r.clean ? `${host.spec}: clean, nothing of the volume is left` : `${host.spec}: ${r.orphans.length} orphan${r.orphans.length === 1 ? '' : 's'}\n${r.orphans.map((x) => `  ${x.kind} ${x.id}: ${x.evidence}`).join('\n')}`);
      return r.clean ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown verb ${verb}`);
  }
}
