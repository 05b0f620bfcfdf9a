import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { pathsView } from '../inventory/paths-view.js';
import { BrickError } from '../system/errors.js';
import { tidySysfsReader } from '../system/hostfs.js';
import { IdleScavenger } from './idle-gc.js';
import { rehearseOn } from './rehearse.js';
import { buildAgent } from './server.js';

/*
 * `brick-lab agent`: the compute agent on a host the user already has (a devstack compute, a
 * Kubernetes node, a vendor's test server), outside any lab, so that a gate job can ask that host
 * what it has attached, as the os-brick spec's HTTP service would (../shared/seeds). Everything is
 * checked before anything is made or bound: a refusal leaves nothing behind but, at most, the
 * token file it was told to make.
 */

/** The file that marks a host as a test host; BRICK_LAB_TEST_HOST_FILE names another. */
export const TEST_HOST_MARKER = '/etc/brick-lab/test-host';
export const DEFAULT_TOKEN_FILE = '/etc/brick-lab/agent-token';
export const DEFAULT_LISTEN = '127.0.0.1:8470';

export interface HostAgentOptions {
  /** --test-host: the user says this is a test host (else the marker file must exist). */
  testHost: boolean;
  markerFile: string;
  listen: string;
  tokenFile: string;
  tlsCert?: string;
  tlsKey?: string;
  allowAttach: boolean;
}

export const HOST_AGENT_USAGE = `usage: brick-lab agent [--test-host] [--listen ADDR:PORT] [--token-file FILE]
                       [--tls-cert FILE --tls-key FILE] [--allow-attach]

Serves brick-lab's compute agent on this host, outside any lab: the fetch-paths API (volume
paths, available volumes, search path), the inventory, its diff and the orphan oracle, all
behind a token. Read-only unless --allow-attach (then connect and disconnect too); it never
runs commands for a caller. It runs only on a test host: pass --test-host or create
${TEST_HOST_MARKER} (BRICK_LAB_TEST_HOST_FILE names another marker).
  --listen ADDR:PORT   where to listen (default ${DEFAULT_LISTEN}; [::1]:PORT for IPv6)
  --token-file FILE    the bearer token (default ${DEFAULT_TOKEN_FILE}; made, mode 0600,
                       when missing; refused when group or others can read it)
  --tls-cert, --tls-key
                       serve HTTPS with this certificate and key (PEM), both or neither
  --allow-attach       let callers attach and detach volumes on this host
`;

const usage = (message: string): BrickError => new BrickError('USAGE', message, { hint: 'brick-lab agent --help shows the options' });

/** The command line of `brick-lab agent` (argv after the verb), checked; --help answers null. */
export function parseHostAgentArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): HostAgentOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'test-host': { type: 'boolean', default: false },
        listen: { type: 'string', default: DEFAULT_LISTEN },
        'token-file': { type: 'string', default: DEFAULT_TOKEN_FILE },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'allow-attach': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    throw usage(`brick-lab agent: ${(e as Error).message}`);
  }
  if (values.help) return null;
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw usage(`brick-lab agent: --tls-cert and --tls-key go together (got only ${values['tls-cert'] ? '--tls-cert' : '--tls-key'})`);
  if (!values['token-file']) throw usage('brick-lab agent: --token-file is empty');
  return {
    testHost: values['test-host'],
    markerFile: env.BRICK_LAB_TEST_HOST_FILE || TEST_HOST_MARKER,
    listen: values.listen,
    tokenFile: values['token-file'],
    ...(values['tls-cert'] ? { tlsCert: values['tls-cert'] } : {}),
    ...(values['tls-key'] ? { tlsKey: values['tls-key'] } : {}),
    allowAttach: values['allow-attach'],
  };
}

/** "127.0.0.1:8470", "0.0.0.0:8470", "[::1]:8470": an IP address (no host name) and a port (0: any free one). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  const why = !m
    ? 'not ADDR:PORT'
    : m[1] !== undefined && isIP(m[1]) !== 6
      ? `${m[1]} is not an IPv6 address`
      : m[2] !== undefined && isIP(m[2]) !== 4
        ? `${m[2]} is not an IPv4 address`
        : port > 65535
          ? `port ${m[3]} is over 65535`
          : null;
  if (why || !host) {
    throw new BrickError('AGENT_LISTEN', `--listen ${JSON.stringify(text)}: ${why ?? 'not ADDR:PORT'}`, { hint: `give an IP address and a port, as ${DEFAULT_LISTEN} or [::1]:8470 (a name is not resolved)` });
  }
  return { host, port };
}

/** Refuse unless the host is marked as a test host. */
export function checkTestHost(opts: Pick<HostAgentOptions, 'testHost' | 'markerFile'>): void {
  if (opts.testHost || existsSync(opts.markerFile)) return;
  throw new BrickError(
    'NOT_A_TEST_HOST',
    `this host is not marked as a test host: brick-lab agent reads every block device, session and map of the host it runs on and serves them over HTTP, which the os-brick spec says must never run on a production system`,
    { hint: `on a test host, pass --test-host or create ${opts.markerFile} (mkdir -p ${dirname(opts.markerFile)} && touch ${opts.markerFile})` },
  );
}

/**
 * The token in `file`: made (64 hex digits, mode 0600, its folder 0700 when made) when the file
 * is missing; refused when group or others may read it, or when it is empty.
 */
export function ensureToken(file: string): { token: string; made: boolean } {
  if (!existsSync(file)) {
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, `${randomBytes(32).toString('hex')}\n`);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw new BrickError('AGENT_TOKEN_FILE', `token file ${file}: cannot be made: ${(e as Error).message}`, { hint: 'give --token-file a path this user can write, or make the file yourself (mode 0600)' });
    }
    return { token: readToken(file), made: true };
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new BrickError('AGENT_TOKEN_FILE', `token file ${file}: mode ${mode.toString(8).padStart(4, '0')} lets group or others read it`, { hint: `chmod 600 ${file}` });
  }
  return { token: readToken(file), made: false };
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new BrickError('AGENT_TOKEN_FILE', `token file ${file}: cannot be read: ${(e as Error).message}`, { hint: 'run as a user that can read it, or give --token-file another' });
  }
  if (token.length < 16 || /\s/.test(token)) {
    throw new BrickError('AGENT_TOKEN_FILE', `token file ${file}: ${token.length === 0 ? 'empty' : token.length < 16 ? `holds ${token.length} characters, fewer than 16` : 'holds white space inside the token'}`, { hint: `remove it and start again to have one made, or write one line of 16 or more characters without spaces` });
  }
  return token;
}

function readTls(opts: HostAgentOptions): { cert: Buffer; key: Buffer } | undefined {
  if (!opts.tlsCert || !opts.tlsKey) return undefined;
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new BrickError('AGENT_TLS', `${what} ${file}: cannot be read: ${(e as Error).message}`, { hint: 'give a PEM file this user can read' });
    }
  };
  return { cert: read('--tls-cert', opts.tlsCert), key: read('--tls-key', opts.tlsKey) };
}

export interface RunningHostAgent {
  app: FastifyInstance;
  url: string;
  tokenFile: string;
  tokenMade: boolean;
  close(): Promise<void>;
}

/** Check everything, then build the agent and listen. */
export async function startHostAgent(opts: HostAgentOptions): Promise<RunningHostAgent> {
  checkTestHost(opts);
  const { host, port } = parseListen(opts.listen);
  const tls = readTls(opts);
  const { token, made } = ensureToken(opts.tokenFile);
  // A start that fails leaves no token file it made.
  const undo = (): void => {
    if (made) rmSync(opts.tokenFile, { force: true });
  };
  let app: FastifyInstance;
  try {
    app = await buildAgent({
      lab: 'host',
      node: hostname(),
      role: 'compute',
      token,
      compute: true,
      host: { allowAttach: opts.allowAttach },
      requestLog: true,
      idleScavenger: new IdleScavenger(),
      ...(tls ? { https: tls } : {}),
    });
  } catch (e) {
    undo();
    // A certificate and key that do not make a TLS context fail here, as the server is made.
    if (!tls) throw e;
    throw new BrickError('AGENT_TLS', `--tls-cert ${opts.tlsCert} and --tls-key ${opts.tlsKey}: ${(e as Error).message}`, { hint: 'give a PEM certificate and the PEM private key that goes with it' });
  }
  try {
    await app.listen({ host, port });
  } catch (e) {
    await app.close();
    undo();
    throw new BrickError('AGENT_LISTEN', `--listen ${opts.listen}: ${(e as Error).message}`, { hint: 'pick another port, or stop what listens there' });
  }
  // As a lab's compute: the paths view kept warm while asked, its answers rehearsed after each change.
  tidySysfsReader();
  pathsView().keepWarm();
  rehearseOn(pathsView(), app, token);
  const shown = host.includes(':') ? `[${host}]` : host;
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return { app, url: `${tls ? 'https' : 'http'}://${shown}:${bound}`, tokenFile: opts.tokenFile, tokenMade: made, close: () => app.close() };
}

/** `brick-lab agent ARGS`: serve until SIGINT or SIGTERM. Returns the exit code. */
export async function hostAgentMain(argv: string[]): Promise<number> {
  const opts = parseHostAgentArgs(argv);
  if (!opts) {
    process.stdout.write(HOST_AGENT_USAGE);
    return 0;
  }
  const running = await startHostAgent(opts);
  process.stderr.write(
    `brick-lab agent: serving ${running.url} (${opts.allowAttach ? 'attach and detach allowed' : 'read-only'}); token in ${running.tokenFile}${running.tokenMade ? ' (made now)' : ''}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.stderr.write(`brick-lab agent: ${sig}: closing\n`);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  pathsView().stop();
  await running.close();
  return 0;
}
