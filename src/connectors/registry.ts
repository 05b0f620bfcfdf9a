import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { ExternalConnector } from './external/connector.js';
import type { Connector } from './types.js';
import type { Protocol } from '../volume/protocol.js';
import { CONNECTOR_NAME } from '../volume/fields.js';


export interface InstallRequest {
  /** The file, base64. */
  content: string;
  /** 'program': run per call through the external connector protocol; 'module': a CommonJS module. */
  kind: 'program' | 'module';
  /** Programs only: install with the executable bit (false to reproduce a vendor's mistake). */
  executable?: boolean;
  /** Per call, programs only (default 120 s). */
  timeoutMs?: number;
}

export interface InstalledConnector {
  name: string;
  kind: 'program' | 'module';
  file: string;
  bytes: number;
  executable: boolean;
  timeoutMs: number | null;
}

export const DEFAULT_CONNECTORS_DIR = '/var/lib/brick-lab/connectors';

const METHODS = ['normalise', 'connectVolume', 'disconnectVolume', 'getVolumePaths', 'getAllAvailableVolumes', 'getSearchPath'] as const;

/**
 * The connectors installed on a compute node besides brick-lab's own (`brick-lab validate`
 * installs the one under test): programs that speak the external connector protocol, and
 * CommonJS modules whose `createConnector(protocol)` returns a Connector. The agent's connector
 * routes pick one with `?connector=NAME`.
 */
/** Installed connectors a node keeps at once: each is a file on the node's disk and a loaded module. */
export const MAX_INSTALLED_CONNECTORS = 32;

export class ConnectorRegistry {
  private readonly installed = new Map<string, InstalledConnector>();
  private readonly instances = new Map<string, Connector>();

  /**
   * What was installed before this registry was made is known again: a restarted agent (POST
   * /v1/agent/restart) still has the connector under test, as a restarted driver still has its
   * binary. Each install leaves its entry in `.installed/NAME.json` beside the files (a name never
   * starts with '.'); an entry whose file is gone, or that does not parse, is skipped.
   */
  constructor(private readonly dir = DEFAULT_CONNECTORS_DIR) {
    const entries = join(dir, '.installed');
    if (!existsSync(entries)) return;
    for (const f of readdirSync(entries).filter((x) => x.endsWith('.json')).sort()) {
      try {
        const e = JSON.parse(readFileSync(join(entries, f), 'utf8')) as InstalledConnector;
        if (CONNECTOR_NAME.test(e.name) && `${e.name}.json` === f && existsSync(e.file)) this.installed.set(e.name, e);
      } catch {
        // not an entry this registry wrote
      }
    }
  }

  private entryFile(name: string): string {
    return join(this.dir, '.installed', `${name}.json`);
  }

  async install(name: string, req: InstallRequest): Promise<InstalledConnector> {
    if (!CONNECTOR_NAME.test(name)) {
      throw new BrickError('BAD_CONNECTOR_NAME', `connector name ${JSON.stringify(name)} is not 1-64 of a-z, 0-9, '.', '_', '-' starting with a letter or digit`);
    }
    const content = Buffer.from(req.content, 'base64');
    if (content.length === 0) throw new BrickError('BAD_CONNECTOR', `connector ${name} is empty`, { hint: 'send the file base64-encoded in "content"' });
    if (!this.installed.has(name) && this.installed.size >= MAX_INSTALLED_CONNECTORS) {
      throw new BrickError('LIMIT_REACHED', `name: ${MAX_INSTALLED_CONNECTORS} connectors are installed on this node already, the most it keeps`, {
        details: { field: 'name' },
        hint: 'remove one (DELETE /v1/connectors/programs/NAME), or install under a name already used to replace it',
      });
    }
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, req.kind === 'module' ? `${name}.cjs` : name);
    this.remove(name);
    await rm(file, { force: true });
    await writeFile(file, content);
    const executable = req.kind === 'program' && req.executable !== false;
    await chmod(file, executable ? 0o755 : 0o644);
    const entry: InstalledConnector = { name, kind: req.kind, file, bytes: content.length, executable, timeoutMs: req.timeoutMs ?? null };
    await mkdir(join(this.dir, '.installed'), { recursive: true });
    await writeFile(this.entryFile(name), `${JSON.stringify(entry)}\n`);
    this.installed.set(name, entry);
    return entry;
  }

  remove(name: string): boolean {
    for (const k of [...this.instances.keys()]) if (k.startsWith(`${name}:`)) this.instances.delete(k);
    return this.installed.delete(name);
  }

  async uninstall(name: string): Promise<boolean> {
    // The name becomes a path: never one that leaves the connectors' directory.
    if (!CONNECTOR_NAME.test(name)) return false;
    const e = this.installed.get(name);
    const had = this.remove(name);
    if (e) await rm(e.file, { force: true });
    await rm(this.entryFile(name), { force: true });
    return had;
  }

  list(): InstalledConnector[] {
    return [...this.installed.values()];
  }

  /** The installed connector NAME for a protocol, made (and for a program, asked its search path) on first use. */
  async get(name: string, protocol: Protocol): Promise<Connector> {
    const key = `${name}:${protocol}`;
    const known = this.instances.get(key);
    if (known) return known;
    const e = this.installed.get(name);
    if (!e) {
      throw new BrickError('CONNECTOR_NOT_INSTALLED', `no connector ${JSON.stringify(name)} is installed on this node`, {
        hint: `install it with PUT /v1/connectors/programs/${name} (brick-lab validate does), or leave out ?connector= for brick-lab's own`,
      });
    }
    let c: Connector;
    if (e.kind === 'program') {
      // init() runs the program once (get_search_path): a program that cannot run fails here, and
      // is asked again on the next call rather than kept half-made.
      c = (await new ExternalConnector(e.file, protocol, e.timeoutMs ? { timeoutMs: e.timeoutMs } : {}).init()) as unknown as Connector;
    } else {
      c = loadModule(e.file, protocol);
    }
    this.instances.set(key, c);
    return c;
  }
}

/** A CommonJS module's createConnector(protocol), checked to have the Connector's methods. */
function loadModule(file: string, protocol: Protocol): Connector {
  let mod: { createConnector?: (p: Protocol) => unknown };
  try {
    mod = createRequire(file)(file) as typeof mod;
  } catch (e) {
    throw new BrickError('CONNECTOR_MODULE_FAILED', `loading the connector module ${file} failed: ${(e as Error).message}`);
  }
  if (typeof mod.createConnector !== 'function') {
    throw new BrickError('CONNECTOR_MODULE_FAILED', `the connector module ${file} exports no createConnector(protocol) function`, {
      hint: 'export function createConnector(protocol) returning an object with the Connector interface (src/connectors/types.ts)',
    });
  }
  let c: unknown;
  try {
    c = mod.createConnector(protocol);
  } catch (e) {
    throw new BrickError('CONNECTOR_MODULE_FAILED', `createConnector(${JSON.stringify(protocol)}) of ${file} threw: ${(e as Error).message}`);
  }
  const missing = METHODS.filter((m) => typeof (c as Record<string, unknown> | null)?.[m] !== 'function');
  if (missing.length > 0) {
    throw new BrickError('CONNECTOR_MODULE_FAILED', `createConnector(${JSON.stringify(protocol)}) of ${file} returned an object without ${missing.join(', ')}`);
  }
  return c as Connector;
}
