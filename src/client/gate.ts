import { readFileSync } from 'node:fs';
import { ComputeClient } from '../agent/api/compute-client.js';
import type { ConnectionPayload, VolumePathsReply } from '../agent/api/types.js';
import { labClient, requireLab } from '../lab/lab.js';
import { NODE_NAME } from '../lab/topology.js';
import { normalise, protocolOfDriverType } from '../osbrick/index.js';
import { BrickError } from '../system/errors.js';
import { isProtocol, PROTOCOLS, type Protocol } from '../volume/protocol.js';

/*
 * The client verbs' side of brick-lab (`paths`, `volumes`, `inventory`, `orphans`, `check`): a
 * compute agent reached as a lab's node or at any URL (`brick-lab agent` on a user's own host),
 * and the os-brick spec's gate check over several of them.
 */

/** Where a host's agent is: a lab's compute node by name, or a URL with the token of --token-file. */
export interface HostRef {
  /** As the user wrote it: "compute-1" or "https://10.0.0.5:8470". */
  spec: string;
  client: ComputeClient;
}

const isUrl = (s: string): boolean => /^https?:\/\//.test(s);

/** The token of a --token-file, or a clear refusal. */
export function readTokenFile(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new BrickError('USAGE', `--token-file ${file}: cannot be read: ${(e as Error).message}`, { hint: 'give the file the agent was started with (brick-lab agent --token-file, default /etc/brick-lab/agent-token)' });
  }
  if (!token) throw new BrickError('USAGE', `--token-file ${file}: empty`, { hint: 'give the file the agent was started with' });
  return token;
}

/**
 * The agent of `spec`: a URL (http or https, with the token of `tokenFile`) or a compute node of
 * the lab `labName` (its lab token). Checked before anything is asked.
 */
export async function resolveHost(spec: string, opts: { labName: string; tokenFile?: string }): Promise<HostRef> {
  if (isUrl(spec)) {
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      throw new BrickError('USAGE', `${JSON.stringify(spec)} is not a URL`, { hint: 'an agent URL looks like http://127.0.0.1:8470 or https://10.0.0.5:8470' });
    }
    if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
      throw new BrickError('USAGE', `${JSON.stringify(spec)}: an agent URL is a scheme, a host and a port, nothing after it`, { hint: `say ${url.protocol}//${url.host}` });
    }
    if (!opts.tokenFile) throw new BrickError('USAGE', `${spec}: an agent at a URL needs --token-file`, { hint: 'give the token file the agent was started with (brick-lab agent --token-file, default /etc/brick-lab/agent-token)' });
    return { spec, client: new ComputeClient(spec, `${url.protocol}//${url.host}`, readTokenFile(opts.tokenFile)) };
  }
  if (!NODE_NAME.test(spec)) {
    throw new BrickError('USAGE', `${JSON.stringify(spec)} is neither a node name nor an http(s) URL`, { hint: 'name a compute node of the lab (brick-lab status lists them) or give the URL of a brick-lab agent' });
  }
  const rec = await requireLab(opts.labName);
  // labClient refuses a node the lab does not have (NODE_UNKNOWN); a compute is asked, nothing else.
  const client = await labClient(rec, spec);
  const node = rec.nodes.find((n) => n.name === spec)!;
  if (node.role !== 'compute') throw new BrickError('USAGE', `${spec} is the lab's ${node.role}, not a compute node`, { hint: `its computes: ${rec.nodes.filter((n) => n.role === 'compute').map((n) => n.name).join(', ')}` });
  return { spec, client: client.compute };
}

/** A volume's connection properties from a file (or "-", standard input): os-brick's JSON as Cinder hands it, or its bare data. */
export function readProperties(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new BrickError('USAGE', `--properties ${file}: cannot be read: ${(e as Error).message}`, { hint: 'give a JSON file of the volume\'s connection_info ({"driver_volume_type": ..., "data": {...}}) or its data' });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new BrickError('USAGE', `--properties ${file}: not JSON: ${(e as Error).message}`, { hint: 'give os-brick\'s connection_info as JSON' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BrickError('USAGE', `--properties ${file}: not a JSON object`, { hint: 'give os-brick\'s connection_info as one JSON object' });
  return value as Record<string, unknown>;
}

/**
 * The protocol of a volume: --protocol, else its connection_info's driver_volume_type; and its
 * properties checked by that protocol's codec, so that a malformed volume is refused before any
 * host is asked.
 */
export function volumeOf(properties: Record<string, unknown>, protocol?: string): { protocol: Protocol; properties: ConnectionPayload } {
  // Cinder's driver_volume_type names FC "fibre_channel"; the rest as brick-lab does.
  const declared = typeof properties.driver_volume_type === 'string' ? protocolOfDriverType(properties.driver_volume_type) ?? properties.driver_volume_type.toLowerCase() : undefined;
  const p = protocol ?? declared;
  if (!p) throw new BrickError('USAGE', 'the properties carry no driver_volume_type and no --protocol was given', { hint: `say --protocol ${PROTOCOLS.join('|')}, or give the connection_info whole` });
  if (!isProtocol(p)) throw new BrickError('USAGE', `${protocol ? '--protocol' : 'driver_volume_type'} ${JSON.stringify(p)}: not a protocol brick-lab knows`, { hint: `one of ${PROTOCOLS.join(', ')}` });
  normalise(p, properties);
  return { protocol: p, properties: properties as ConnectionPayload };
}

/** One host's verdict in a gate check. */
export interface HostVerdict {
  host: string;
  expect: 'attached' | 'gone';
  verdict: 'holds' | 'fails' | 'error';
  /** What holds or what is wrong, in words. */
  detail: string;
  paths: string[];
  devices: string[];
  /** Gone hosts: what the oracle found left of the volume ("kind id"). */
  orphans: string[];
  /** Hosts that could not be asked: the error's code. */
  code?: string;
}

export interface GateCheck {
  ok: boolean;
  protocol: Protocol;
  hosts: HostVerdict[];
}

/**
 * The spec's gate check: the volume attached on every `attachedOn` host (its paths or devices
 * found), and gone from every `goneFrom` host (no path, no device, and the orphan oracle finds
 * nothing left of it: device, link, session, node record, controller or map). Every host is
 * asked, in turn; one that cannot be asked is an error, never a pass.
 */
export async function gateCheck(volume: { protocol: Protocol; properties: ConnectionPayload }, attachedOn: HostRef[], goneFrom: HostRef[]): Promise<GateCheck> {
  const hosts: HostVerdict[] = [];
  for (const [expect, list] of [['attached', attachedOn], ['gone', goneFrom]] as const) {
    for (const h of list) {
      try {
        const found: VolumePathsReply = await h.client.volumePaths(volume.protocol, volume.properties);
        const what = [...found.paths, ...found.devices];
        if (expect === 'attached') {
          hosts.push({ host: h.spec, expect, paths: found.paths, devices: found.devices, orphans: [], ...(what.length > 0 ? { verdict: 'holds', detail: `attached: ${what.join(', ')}` } : { verdict: 'fails', detail: 'not attached: no path or device' }) });
          continue;
        }
        const judged = await h.client.orphans({ protocol: volume.protocol, properties: volume.properties });
        const left = judged.orphans.map((o) => `${o.kind} ${o.id}`);
        const wrong = [...(what.length > 0 ? [`still has ${what.join(', ')}`] : []), ...(left.length > 0 ? [`orphans: ${judged.orphans.map((o) => `${o.kind} ${o.id} (${o.evidence})`).join('; ')}`] : [])];
        hosts.push({ host: h.spec, expect, paths: found.paths, devices: found.devices, orphans: left, ...(wrong.length === 0 && judged.clean ? { verdict: 'holds', detail: 'gone: no path, no device, no orphan' } : { verdict: 'fails', detail: wrong.join('; ') || 'the oracle judged it not clean' }) });
      } catch (e) {
        const err = e instanceof BrickError ? e : new BrickError('INTERNAL', (e as Error).message);
        hosts.push({ host: h.spec, expect, verdict: 'error', detail: err.message, paths: [], devices: [], orphans: [], code: err.code });
      }
    }
  }
  return { ok: hosts.every((h) => h.verdict === 'holds'), protocol: volume.protocol, hosts };
}

/** `check`'s exit code: 0 every host holds, 1 one fails, 3 none fails but one could not be asked. */
export function checkExitCode(c: GateCheck): number {
  if (c.hosts.some((h) => h.verdict === 'fails')) return 1;
  return c.hosts.some((h) => h.verdict === 'error') ? 3 : 0;
}
