import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { conformanceChecks } from './checks.js';
import { labClient, labVersions } from '../lab/lab.js';
import { labFor } from '../lab/session.js';
import type { LabRecord } from '../lab/state.js';
import type { Topology } from '../lab/topology.js';
import { emitReport } from '../scenarios/report.js';
import { PROTOCOLS, type Protocol } from '../volume/protocol.js';
import { checkNeeds, runSuite } from '../scenarios/runner.js';
import { BrickError } from '../system/errors.js';
import { progress } from '../system/log.js';
import { PROJECT_ROOT } from '../system/paths.js';

export const DEFAULT_VALIDATE_RESULTS = 'results/validate';

export interface ValidateOptions {
  /** --guest: a running lab of another guest is refused. */
  guest?: string;
  /** A path to a connector program or module, "os-brick", or "builtin". */
  connector: string;
  protocols: Protocol[];
  multipath: boolean;
  /** Run only these checks (names from `conformanceChecks`); all of the protocols' by default. */
  checks?: string[];
  /** The topology the CLI loaded (used when the lab is brought up), and where from. */
  topology: Topology;
  topologyFile: string;
  name: string;
  keep: boolean;
  json: boolean;
  resultsDir?: string;
  /** Per call to an external connector (default 120 s). */
  timeoutMs?: number;
  /** At most this many checks at once, each on a compute of its own (default 1). */
  jobs?: number;
  signal?: AbortSignal;
}

/** What goes into the compute nodes: a program (any language) or a JavaScript module. */
export interface ConnectorPackage {
  /** The name it is installed under, and which the agent's routes take as ?connector=. */
  name: string;
  kind: 'program' | 'module';
  content: Buffer;
  executable: boolean;
  source: string;
}

export function parseProtocols(values: string[]): Protocol[] {
  const out = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const p of out) {
    if (!(PROTOCOLS as readonly string[]).includes(p)) throw new BrickError('USAGE', `--protocol must be one of ${PROTOCOLS.join(', ')} (got ${JSON.stringify(p)})`);
  }
  return out.length > 0 ? [...new Set(out as Protocol[])] : ['iscsi'];
}

/** `brick-lab validate --list`: the checks of the protocols, with what each one does. */
export function listChecks(protocols: Protocol[], multipath: boolean): string {
  const checks = protocols.flatMap((p) => conformanceChecks(p, multipath));
  const w = Math.max(...checks.map((c) => c.name.length));
  return `${checks.map((c) => `${c.name.padEnd(w)}  ${c.title}`).join('\n')}\n`;
}

/** A connector name as the agent accepts it, from a file name. */
export function connectorName(file: string): string {
  const n = basename(file).toLowerCase().replace(/\.(c|m)?(t|j)s$/, '').replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 48);
  return n || 'connector';
}

/**
 * Read the connector on the host before anything boots: a missing file is refused here; a file
 * that is not executable is installed as it is, and the checks then say so (the program is run
 * inside the compute node, where that is found out the way a vendor would meet it).
 */
export async function packageConnector(spec: string): Promise<ConnectorPackage | null> {
  if (spec === 'builtin') return null;
  if (spec === 'os-brick') {
    const file = join(PROJECT_ROOT, 'dist', 'agent', 'os_brick_connector.py');
    await access(file).catch(() => {
      throw new BrickError('AGENT_NOT_BUILT', `the os-brick adapter ${file} is missing`, { hint: 'run `npm run build` (scripts/bootstrap does it)' });
    });
    return { name: 'os-brick', kind: 'program', content: await readFile(file), executable: true, source: 'os-brick (Debian python3-os-brick in the guest, through src/conformance/os_brick_connector.py)' };
  }
  const file = resolve(spec);
  const st = await stat(file).catch(() => null);
  if (!st) throw new BrickError('CONNECTOR_NOT_FOUND', `no connector at ${file}`, { hint: 'give the path of a connector program or module, or "os-brick" or "builtin"' });
  if (!st.isFile()) throw new BrickError('CONNECTOR_NOT_FOUND', `${file} is not a file`, { hint: 'give the path of a connector program or module' });
  if (/^\.(c|m)?(t|j)s$/.test(extname(file))) {
    // A module implementing the Connector interface: bundled into one CommonJS file that the
    // agent loads with require (TypeScript is compiled on the way).
    let esbuild: typeof import('esbuild');
    try {
      esbuild = await import('esbuild');
    } catch {
      throw new BrickError('TOOL_MISSING', 'a TypeScript or JavaScript connector module needs esbuild to bundle it', { hint: 'run `npm ci` in the brick-lab checkout' });
    }
    const out = await esbuild.build({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', target: 'node20', write: false, logLevel: 'silent' }).catch((e: Error) => {
      throw new BrickError('CONNECTOR_BUILD_FAILED', `bundling ${file} failed: ${e.message.split('\n').slice(0, 5).join(' ')}`, { hint: 'the module must build on its own (esbuild, bundle: true)' });
    });
    return { name: connectorName(file), kind: 'module', content: Buffer.from(out.outputFiles[0]!.contents), executable: false, source: file };
  }
  let executable = true;
  await access(file, constants.X_OK).catch(() => (executable = false));
  return { name: connectorName(file), kind: 'program', content: await readFile(file), executable, source: file };
}

async function install(rec: LabRecord, pkg: ConnectorPackage, timeoutMs: number | undefined): Promise<void> {
  for (const n of rec.nodes.filter((x) => x.role === 'compute')) {
    const c = await labClient(rec, n.name);
    await c.compute.installConnector(pkg.name, { content: pkg.content.toString('base64'), kind: pkg.kind, executable: pkg.executable, ...(timeoutMs ? { timeoutMs } : {}) });
    progress('validate', `${n.name}: installed ${pkg.kind} ${pkg.name} (${pkg.content.length} bytes${pkg.kind === 'program' && !pkg.executable ? ', not executable' : ''})`);
  }
}

async function uninstall(rec: LabRecord, name: string): Promise<void> {
  for (const n of rec.nodes.filter((x) => x.role === 'compute')) {
    await (await labClient(rec, n.name)).compute.removeConnector(name).catch(() => undefined);
  }
}

/**
 * `brick-lab validate`: the conformance checks of the chosen protocols against a connector, with
 * brick-lab's oracle as the judge: a verdict per check with evidence, report.json, junit.xml and
 * summary.md, exit 1 when a check failed.
 */
export async function validateMain(o: ValidateOptions): Promise<number> {
  const pkg = await packageConnector(o.connector);
  const all = o.protocols.flatMap((p) => conformanceChecks(p, o.multipath));
  const wanted = (o.checks ?? []).flatMap((c) => c.split(',')).map((c) => c.trim()).filter(Boolean);
  const unknown = wanted.filter((w) => !all.some((c) => c.name === w));
  if (unknown.length > 0) {
    throw new BrickError('UNKNOWN_CHECK', `no check ${unknown.join(', ')} for ${o.protocols.join(', ')}${o.multipath ? ' with multipath' : ''}`, { hint: `the checks are: ${all.map((c) => c.name).join(', ')}` });
  }
  const checks = wanted.length > 0 ? all.filter((c) => wanted.includes(c.name)) : all;
  const resultsDir = resolve(o.resultsDir ?? DEFAULT_VALIDATE_RESULTS);
  const subject = `connector ${pkg ? pkg.source : "brick-lab's own"} (${o.protocols.join(', ')}${o.multipath ? ', multipath' : ''})`;
  const session = {
    name: o.name,
    topology: o.topology,
    topologyFile: o.topologyFile,
    tag: 'validate',
    keep: o.keep,
    ...(o.guest ? { guest: o.guest } : {}),
    check: (t: Topology) => checkNeeds(t, checks),
    // A lab left running gets its connectors back as they were.
    ...(pkg ? { beforeKeep: (rec: LabRecord) => uninstall(rec, pkg.name) } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  return labFor(session, async (rec) => {
    // os-brick retries and waits for minutes on its own where things go wrong (and its first call
    // starts the server that imports it): give it more than a program's default 120 s.
    if (pkg) await install(rec, pkg, o.timeoutMs ?? (pkg.name === 'os-brick' ? 600_000 : undefined));
    const { nodes, kernel } = await labVersions(rec);
    progress('validate', `${subject}: ${checks.length} checks`);
    const report = await runSuite(rec, checks, { resultsDir, connector: pkg?.name ?? null, tag: 'check', kernel, nodes, subject, ...(o.jobs ? { jobs: o.jobs } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    return emitReport(report, resultsDir, o.json, 'validate');
  });
}
