import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { normalise, type ConnectionProperties } from '../osbrick/decode.js';
import type { AvailableVolume, Connector, DeviceInfo, DisconnectOptions, VolumePaths } from '../connectors/types.js';
import { BrickError, isBrickError, type ErrorCode } from '../system/errors.js';
import { exec, which, type ExecResult } from '../system/exec.js';
import { scsiWwid } from '../volume/ids.js';
import { debug } from '../system/log.js';
import {
  buildRequest,
  DOCS,
  parseReply,
  PROTOCOL_VERSION,
  validateReply,
  validateRequest,
  type ConnectorRequest,
  type OsBrickDeviceInfo,
  type OsBrickProperties,
  type ProtocolName,
  type ResultByOperation,
} from './protocol.js';

/** How long one call may take unless the caller says otherwise (os-brick's own waits are shorter). */
export const DEFAULT_CONNECTOR_TIMEOUT_MS = 120_000;
/** Between SIGTERM and SIGKILL when a call has run out of time. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** Set to the protocol version in the program's environment. */
export const PROTOCOL_ENV = 'BRICK_CONNECTOR_PROTOCOL';
/**
 * Set to a fresh random id for each call, in the program's environment (and so in that of every
 * process it starts): at a timeout, every process holding it is ended, also those that left the
 * program's process group or session.
 */
export const CALL_ENV = 'BRICK_CONNECTOR_CALL';

export interface RunOptions {
  /** Default DEFAULT_CONNECTOR_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Added to the environment the program inherits (brick-lab's own, plus PROTOCOL_ENV and CALL_ENV). */
  env?: Record<string, string>;
  /** Default DEFAULT_KILL_GRACE_MS. */
  killGraceMs?: number;
}

function fail(code: ErrorCode, message: string, details: Record<string, unknown>, hint?: string): BrickError {
  return new BrickError(code, message, { details, hint: hint ?? `see ${DOCS}` });
}

function tail(text: string, lines = 20, chars = 4000): string {
  const t = text.trimEnd().split('\n').slice(-lines).join('\n');
  return t.length > chars ? t.slice(-chars) : t;
}

/** The absolute path of the program, checked to be an executable file. */
export async function locateProgram(program: string): Promise<string> {
  if (typeof program !== 'string' || program.trim() === '') {
    throw fail('CONNECTOR_NOT_FOUND', 'no connector program given: pass the path of the executable file', { program });
  }
  let path: string;
  if (program.includes('/')) {
    path = resolve(program);
  } else {
    const found = await which(program);
    if (!found) {
      throw fail('CONNECTOR_NOT_FOUND', `connector program ${program} is not an executable on PATH: give the path of the program's file`, { program });
    }
    path = found;
  }
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} cannot be reached (permission denied on a directory above it): make its directories searchable (chmod +x on each)`, { program: path });
    }
    throw fail('CONNECTOR_NOT_FOUND', `connector program ${path} does not exist (${code ?? (e as Error).message}): give the path of the program's file as the compute node sees it`, { program: path });
  }
  if (st.isDirectory()) {
    throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} is a directory: give the path of the program's file inside it`, { program: path });
  }
  if (!st.isFile()) throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} is not a regular file: give the path of the program's file`, { program: path });
  try {
    await access(path, constants.X_OK);
  } catch {
    throw fail(
      'CONNECTOR_NOT_EXECUTABLE',
      `connector program ${path} is not executable: run "chmod +x ${path}" (a script also needs a #! line, e.g. "#!/usr/bin/env python3")`,
      { program: path, mode: `0${(st.mode & 0o7777).toString(8)}` },
    );
  }
  return path;
}

/** The first line of a script, when it is a #! line. */
async function shebang(path: string): Promise<string | null> {
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(256);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const line = buf.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
      return line.startsWith('#!') ? line : null;
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}

/** The pids of every process whose environment holds this call's id (zombies hold none). */
async function callProcesses(callId: string): Promise<number[]> {
  const needle = Buffer.from(`\0${CALL_ENV}=${callId}\0`);
  const out: number[] = [];
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return out;
  }
  await Promise.all(
    entries.map(async (e) => {
      if (!/^\d+$/.test(e) || Number(e) === process.pid) return;
      const env = await readFile(`/proc/${e}/environ`).catch(() => null);
      if (env && Buffer.concat([Buffer.from([0]), env]).includes(needle)) out.push(Number(e));
    }),
  );
  return out.sort((a, b) => a - b);
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * End every process of a call: SIGTERM, up to `graceMs` to go, then SIGKILL. Returns how many
 * there were and which (if any) outlived SIGKILL (a process in uninterruptible sleep).
 */
async function endCall(callId: string, graceMs: number): Promise<{ ended: number; left: number[] }> {
  const first = await callProcesses(callId);
  signal(first, 'SIGTERM');
  const seen = new Set(first);
  let left = first;
  for (const deadline = Date.now() + graceMs; left.length > 0 && Date.now() < deadline; ) {
    await sleep(25);
    left = await callProcesses(callId);
    left.forEach((p) => seen.add(p));
  }
  if (left.length > 0) {
    signal(left, 'SIGKILL');
    for (const deadline = Date.now() + 1000; left.length > 0 && Date.now() < deadline; ) {
      await sleep(25);
      left = await callProcesses(callId);
    }
  }
  return { ended: seen.size, left };
}

/**
 * Run a connector program for one call: the request as JSON on its stdin, its reply read from
 * stdout, through the exec wrapper (an argument vector, no shell). The program runs with its own
 * directory as the working directory and PROTOCOL_ENV=1 and CALL_ENV set in its environment.
 *
 * At `timeoutMs` the program and every process it started are ended (see CALL_ENV): exec's own
 * timeout only signals the process it started, and waits for whoever still holds the pipes.
 *
 * Errors (BrickError): CONNECTOR_NOT_FOUND, CONNECTOR_NOT_EXECUTABLE, CONNECTOR_TIMEOUT,
 * CONNECTOR_CRASHED, and parseReply's CONNECTOR_BAD_JSON, CONNECTOR_BAD_REPLY, CONNECTOR_FAILED.
 */
export async function runConnectorProgram<R extends ConnectorRequest>(program: string, request: R, opts: RunOptions = {}): Promise<ResultByOperation[R['operation']]> {
  const req = validateRequest(request);
  const op = req.operation as R['operation'];
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECTOR_TIMEOUT_MS;
  const graceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new BrickError('CONNECTOR_BAD_REQUEST', `timeoutMs must be a positive number of milliseconds (got ${timeoutMs})`);
  const path = await locateProgram(program);
  const callId = randomBytes(12).toString('hex');

  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    void callProcesses(callId).then((pids) => signal(pids, 'SIGTERM'));
    killTimer = setTimeout(() => void callProcesses(callId).then((pids) => signal(pids, 'SIGKILL')), graceMs);
  }, timeoutMs);

  let r: ExecResult;
  try {
    r = await exec([path], {
      input: JSON.stringify(req),
      cwd: dirname(path),
      env: { ...opts.env, [PROTOCOL_ENV]: String(PROTOCOL_VERSION), [CALL_ENV]: callId },
      // A backstop only: the timer above ends the call first.
      timeoutMs: timeoutMs + graceMs + 5_000,
      killGraceMs: graceMs,
      reject: false,
    });
  } catch (e) {
    clearTimeout(timer);
    clearTimeout(killTimer);
    if (isBrickError(e) && e.code === 'EXEC_NOT_FOUND') {
      const line = await shebang(path);
      throw fail(
        'CONNECTOR_NOT_FOUND',
        `connector program ${path} exists but could not be started: ${line ? `the interpreter of its first line "${line}" is not installed on this node` : 'the kernel found no such program'}: install it, or fix the #! line`,
        { program: path, operation: op },
      );
    }
    throw e;
  }
  clearTimeout(timer);
  if (r.stderr) debug(`connector ${path} ${op} stderr:\n${tail(r.stderr)}`);

  if (timedOut || r.timedOut) {
    const { ended, left } = await endCall(callId, graceMs);
    clearTimeout(killTimer);
    const err = tail(r.stderr, 10);
    const exitedByItself = r.exitCode === 0 && r.signal === null;
    throw fail(
      'CONNECTOR_TIMEOUT',
      `connector program ${path} did not finish ${op} within ${timeoutMs / 1000} s; it was killed together with the processes it started` +
        `${left.length > 0 ? ` (still running after SIGKILL: ${left.join(', ')})` : ''}.` +
        `${exitedByItself ? ' It had exited with 0, so a process it started kept its stdout or stderr open: start helpers with those redirected.' : ''}` +
        ` Make ${op} finish in time (wait for devices with a bounded poll), or run brick-lab with a longer timeout.` +
        `${err ? `\nLast lines of its stderr:\n${err}` : ''}`,
      { program: path, operation: op, timeoutMs, exitCode: r.exitCode, signal: r.signal, processesAfterTimeout: ended, stillRunning: left, stderr: err },
    );
  }
  clearTimeout(killTimer);

  if (r.exitCode === null && r.signal === null) {
    throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} could not be started (the kernel refused to run it): check "chmod +x ${path}" and its #! line`, { program: path, operation: op });
  }
  if (r.exitCode !== 0 || r.signal !== null) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with ${r.exitCode}`;
    const err = tail(r.stderr);
    let replied = '';
    try {
      const reply = validateReply(op, JSON.parse(r.stdout), path);
      if (!reply.ok) replied = ` Its stdout held an error reply (${reply.error.type}: ${reply.error.message.slice(0, 200)}), but a reply counts only with exit status 0.`;
    } catch {
      // no reply: nothing to add
    }
    throw fail(
      'CONNECTOR_CRASHED',
      `connector program ${path} ${how} during ${op}.${replied} A connector exits 0 after printing its reply, also when the reply reports a failure ("ok": false); find the cause in its stderr.` +
        (err ? `\nLast lines of its stderr:\n${err}` : ' It wrote nothing on stderr.'),
      { program: path, operation: op, exitCode: r.exitCode, signal: r.signal, stderr: err },
    );
  }
  try {
    return parseReply(op, r.stdout, path);
  } catch (e) {
    if (isBrickError(e) && e.details) Object.assign(e.details, { stderr: tail(r.stderr, 10) });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// A connector program as a Connector

type PropsOf<T extends ProtocolName> = Extract<ConnectionProperties, { protocol: T }>;

/** brick-lab's checked properties, plus the os-brick dict they came from (sent to the program as is). */
export type ExternalProperties<T extends ProtocolName = ProtocolName> = PropsOf<T> & { readonly osBrick: OsBrickProperties };

export interface ExternalConnectorOptions extends RunOptions {
  /** Prefix for the /dev and /sys reads that turn reply paths into kernel names (tests only). */
  root?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const DM = /^dm-\d+$/;

/** The os-brick dict for properties that did not come through ExternalConnector.normalise. */
export function osBrickFromProperties(p: ConnectionProperties): OsBrickProperties {
  const out: OsBrickProperties = {};
  if (p.protocol === 'local') return { device_path: p.devicePath };
  if (p.protocol === 'nvmeof') {
    out.target_nqn = p.nqn;
    out.portals = p.portals.map((x) => [x.address, x.port, x.transport]);
    if (p.uuid) out.vol_uuid = p.uuid;
    if (p.nguid) out.volume_nguid = p.nguid;
    if (p.nsid !== null) out.ns_id = p.nsid;
    if (p.hostNqn) out.host_nqn = p.hostNqn;
    return out;
  }
  const first = p.paths[0]!;
  Object.assign(out, { target_portal: first.portal, target_iqn: first.iqn, target_lun: first.lun });
  if (p.paths.length > 1) {
    Object.assign(out, { target_portals: p.paths.map((x) => x.portal), target_iqns: p.paths.map((x) => x.iqn), target_luns: p.paths.map((x) => x.lun) });
  }
  if (p.volumeId) out.volume_id = p.volumeId;
  if (p.auth) Object.assign(out, { auth_method: 'CHAP', auth_username: p.auth.username, auth_password: p.auth.password });
  if (p.discoveryAuth) Object.assign(out, { discovery_auth_method: 'CHAP', discovery_auth_username: p.discoveryAuth.username, discovery_auth_password: p.discoveryAuth.password });
  return out;
}

/**
 * A vendor's connector program for one protocol, as a Connector. Properties are checked with
 * the built-in normalise (a malformed IQN, portal or LUN is refused before the program runs),
 * but the program gets the os-brick dict exactly as it was given.
 *
 * `await connector.init()` before use: getSearchPath() is synchronous in the Connector
 * interface, so init() asks the program once (get_search_path) and keeps the answer.
 */
export class ExternalConnector<T extends ProtocolName = ProtocolName> implements Connector<ExternalProperties<T>> {
  readonly protocol: ExternalProperties<T>['protocol'];
  private readonly root: string;
  private readonly runOpts: RunOptions;
  /** What the program returned from connect_volume, by DeviceInfo.path, to send back on disconnect. */
  private readonly deviceInfos = new Map<string, OsBrickDeviceInfo>();
  private searchPath: string | null = null;
  private initialised = false;

  constructor(
    readonly program: string,
    protocol: T,
    opts: ExternalConnectorOptions = {},
  ) {
    this.protocol = protocol as ExternalProperties<T>['protocol'];
    this.root = (opts.root ?? '').replace(/\/+$/, '');
    const { root: _root, ...run } = opts;
    this.runOpts = run;
  }

  /** Asks the program for its search path once; must be awaited before getSearchPath(). */
  async init(): Promise<this> {
    this.searchPath = await this.call(buildRequest('get_search_path', this.protocol, { connection_properties: null }));
    this.initialised = true;
    return this;
  }

  getSearchPath(): string | null {
    if (!this.initialised) {
      throw new BrickError('CONNECTOR_NOT_INITIALISED', `the external connector ${this.program} has no search path yet: call "await connector.init()" once before getSearchPath()`);
    }
    return this.searchPath;
  }

  normalise(payload: unknown): ExternalProperties<T> {
    // Throws the built-in refusals (BAD_IQN, BAD_PORTAL, BAD_LUN, ...) before any program runs.
    const props = normalise(this.protocol, payload) as PropsOf<T>;
    const data = isObject(payload) && Object.hasOwn(payload, 'driver_volume_type') ? payload.data : payload;
    return { ...props, osBrick: JSON.parse(JSON.stringify(data)) as OsBrickProperties };
  }

  async connectVolume(props: ExternalProperties<T>, opts: { multipath?: boolean } = {}): Promise<DeviceInfo> {
    const info = await this.call(buildRequest('connect_volume', this.protocol, { connection_properties: this.osBrickOf(props), multipath: opts.multipath === true }));
    const name = await this.kernelName(info.path);
    const multipath = name !== null && DM.test(name);
    let devices: string[] = name === null ? [] : [name];
    if (multipath) {
      const slaves = await this.slaves(name);
      if (slaves.length > 0) devices = slaves;
    }
    this.deviceInfos.set(info.path, info);
    // The identity as the host reads it (the WWID or UUID in sysfs of what the path leads to),
    // not as the program claims it: the lab checks that the connector attached the right volume.
    return { type: 'block', path: info.path, devices, multipath, identity: devices[0] ? await this.kernelIdentity(devices[0]) : null };
  }

  /** A SCSI disk's WWID (scsi_id form) or an NVMe namespace's UUID, from sysfs. */
  private async kernelIdentity(dev: string): Promise<string | null> {
    const read = (p: string): Promise<string | null> => readFile(`${this.root}${p}`, 'utf8').then((t) => t.trim() || null, () => null);
    if (/^nvme\d+(c\d+)?n\d+$/.test(dev)) return read(`/sys/block/${dev}/uuid`);
    return scsiWwid(await read(`/sys/block/${dev}/device/wwid`));
  }

  /**
   * Sends back the device_info the program returned for device.path (or a minimal one). An
   * ok:false reply with ignoreErrors is returned in `errors`; anything else wrong is thrown.
   */
  async disconnectVolume(props: ExternalProperties<T>, device: DeviceInfo | null, opts: DisconnectOptions = {}): Promise<{ removed: string[]; errors: string[] }> {
    const deviceInfo: OsBrickDeviceInfo | null = device ? (this.deviceInfos.get(device.path) ?? { type: 'block', path: device.path }) : null;
    const request = buildRequest('disconnect_volume', this.protocol, {
      connection_properties: this.osBrickOf(props),
      device_info: deviceInfo,
      force: opts.force === true,
      ignore_errors: opts.ignoreErrors === true,
    });
    try {
      await this.call(request);
    } catch (e) {
      if (opts.ignoreErrors && isBrickError(e) && e.code === 'CONNECTOR_FAILED') return { removed: [], errors: [e.message] };
      throw e;
    }
    if (device) this.deviceInfos.delete(device.path);
    return { removed: [`${device ? device.path : 'the volume'} (disconnect_volume by ${basename(this.program)})`], errors: [] };
  }

  async getVolumePaths(props: ExternalProperties<T>): Promise<VolumePaths> {
    const paths = await this.call(buildRequest('get_volume_paths', this.protocol, { connection_properties: this.osBrickOf(props) }));
    const devices = new Set<string>();
    for (const p of paths) for (const d of await this.devicesOf(p)) devices.add(d);
    return { paths, devices: [...devices].sort() };
  }

  async getAllAvailableVolumes(props?: ExternalProperties<T>): Promise<AvailableVolume[]> {
    const paths = await this.call(buildRequest('get_all_available_volumes', this.protocol, { connection_properties: props ? this.osBrickOf(props) : null }));
    const out: AvailableVolume[] = [];
    for (const p of paths) out.push({ protocol: this.protocol, identity: {}, paths: [p], devices: await this.devicesOf(p) });
    return out;
  }

  private call<R extends ConnectorRequest>(request: R): Promise<ResultByOperation[R['operation']]> {
    return runConnectorProgram(this.program, request, this.runOpts);
  }

  private osBrickOf(props: ExternalProperties<T> | PropsOf<T>): OsBrickProperties {
    const raw = (props as { osBrick?: unknown }).osBrick;
    return isObject(raw) ? raw : osBrickFromProperties(props);
  }

  /** The kernel name a path resolves to under /dev (sdb, dm-0, nvme0n1), or null. */
  private async kernelName(path: string): Promise<string | null> {
    if (!path.startsWith('/')) return null;
    let real: string;
    try {
      real = await realpath(this.root + path);
    } catch {
      return null;
    }
    if (this.root) {
      if (!real.startsWith(`${this.root}/`)) return null;
      real = real.slice(this.root.length);
    }
    return real.startsWith('/dev/') && real.length > '/dev/'.length ? basename(real) : null;
  }

  private async slaves(dm: string): Promise<string[]> {
    return (await readdir(`${this.root}/sys/block/${dm}/slaves`).catch(() => [] as string[])).sort();
  }

  /** The kernel name of a path and, for a dm device, the devices under it. */
  private async devicesOf(path: string): Promise<string[]> {
    const name = await this.kernelName(path);
    if (name === null) return [];
    return DM.test(name) ? [name, ...(await this.slaves(name))] : [name];
  }
}
