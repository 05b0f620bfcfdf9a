import { exec } from '../system/exec.js';
import type { DmLine } from './model.js';
import { multipathdQuery } from './multipathd.js';

/**
 * The tools' own view, to cross-check sysfs: where iscsiadm or nvme-cli still show something
 * sysfs does not (or the other way round), that disagreement is evidence in itself. Each tool's
 * rows are typed apart (sessions, controllers, multipathd paths and maps): alike in shape, each
 * with the fields its tool prints, and the line itself as evidence.
 */
export interface ToolSession {
  sid: number;
  portal: string;
  iqn: string;
  line: string;
}

/** `iscsiadm -m session` lines: "tcp: [3] 10.10.1.10:3260,1 iqn.2026-11.io.brick-lab:x (non-flash)". */
export function parseIscsiadmSessions(text: string): ToolSession[] {
  const out: ToolSession[] = [];
  for (const line of text.split('\n')) {
    const m = /^\S+:\s+\[(\d+)\]\s+(\S+?),(\d+)\s+(\S+)/.exec(line.trim());
    if (m) out.push({ sid: Number(m[1]), portal: m[2]!, iqn: m[4]!, line: line.trim() });
  }
  return out;
}

export interface ToolNvmeController {
  name: string;
  nqn: string;
  address: string;
  state: string;
}

/** `nvme list-subsys -o json` (nvme-cli 2.x): subsystems with their paths (controllers). */
export function parseNvmeListSubsys(json: string): ToolNvmeController[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return [];
  }
  const out: ToolNvmeController[] = [];
  const hosts = Array.isArray(doc) ? doc : [doc];
  // JSON of another shape (null, a number, a list where an object belongs) gives nothing, not a TypeError.
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? v.filter((x): x is T => typeof x === 'object' && x !== null) : []);
  for (const h of list<{ Subsystems?: unknown }>(hosts)) {
    for (const s of list<{ NQN?: string; Paths?: unknown }>(h.Subsystems)) {
      for (const p of list<{ Name?: string; Address?: string; State?: string }>(s.Paths)) out.push({ name: p.Name ?? '', nqn: s.NQN ?? '', address: p.Address ?? '', state: p.State ?? '' });
    }
  }
  return out;
}

export interface ToolViews {
  iscsiSessions: ToolSession[];
  nvmeControllers: ToolNvmeController[];
  multipathPaths: ToolMultipathPath[];
  multipathMaps: ToolMultipathMap[];
  /** `dmsetup status`: per map, the path states of a multipath map (A active, F failed). */
  dmStatus: DmLine[];
}

/**
 * `dmsetup table` and `dmsetup status` lines: "NAME: START LENGTH TARGET ARGS..." (a map of
 * several segments has one line each). "No devices found" and anything else gives nothing.
 */
export function parseDmsetup(text: string): DmLine[] {
  const out: DmLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const m = /^(\S+): \d+ \d+ (\S+) ?(.*)$/.exec(line);
    if (m) out.push({ name: m[1]!, target: m[2]!, args: m[3]!.trim(), line });
  }
  return out;
}

/** The major:minor numbers a table's arguments name ("8:0", "253:1"). */
export function devtsIn(args: string): string[] {
  return args.split(' ').filter((a) => /^\d+:\d+$/.test(a));
}

/** The paths of a multipath map's status line with their state: "8:0 A 0 0 1" -> ['8:0', 'A']. */
export function multipathPathStates(args: string): Array<{ devt: string; state: string }> {
  const out: Array<{ devt: string; state: string }> = [];
  const f = args.split(' ');
  for (let i = 0; i + 1 < f.length; i++) if (/^\d+:\d+$/.test(f[i]!) && /^[AF]$/.test(f[i + 1]!)) out.push({ devt: f[i]!, state: f[i + 1]! });
  return out;
}

/** `dmsetup table`, parsed: what a full snapshot gives each dm device (SnapshotOptions.dmTables). */
export async function readDmTables(): Promise<DmLine[]> {
  return parseDmsetup(await toolOutput(['dmsetup', 'table']));
}

/**
 * The multipathd queries, in one place: the raw formats the parsers below read, as the CLI's
 * argument vector. The agent sends the same words over multipathd's socket (multipathd.ts).
 */
export const MULTIPATHD_SHOW_PATHS = ['multipathd', 'show', 'paths', 'raw', 'format', '%d %w %t %T %o'] as const;
export const MULTIPATHD_SHOW_MAPS = ['multipathd', 'show', 'maps', 'raw', 'format', '%n %w %d %N'] as const;

/** What multipathd prints for one of the queries above, or nothing. */
function multipathdOutput(query: readonly string[]): Promise<string> {
  return multipathdQuery(query.slice(1));
}

/** A tool's stdout, or nothing when it failed or is not installed (it has nothing to say). */
async function toolOutput(argv: readonly string[]): Promise<string> {
  return exec(argv, { timeoutMs: 30_000, reject: false })
    .then((r) => (r.exitCode === 0 ? r.stdout : ''))
    .catch(() => '');
}

/** The paths multipathd tracks now. */
export async function readMultipathdPaths(): Promise<ToolMultipathPath[]> {
  return parseMultipathdPaths(await multipathdOutput(MULTIPATHD_SHOW_PATHS));
}

/** Which tools a caller needs: most are a process (100-250 ms under TCG), so only those asked for run. */
export interface ToolNeeds {
  iscsi?: boolean;
  nvme?: boolean;
  /** `multipathd show paths`. */
  multipathd?: boolean;
  /** `multipathd show maps`. */
  multipathdMaps?: boolean;
  /** `dmsetup status`: worth running only when the host has dm devices. */
  dmStatus?: boolean;
}

const ALL_TOOLS: Required<ToolNeeds> = { iscsi: true, nvme: true, multipathd: true, multipathdMaps: true, dmStatus: true };

/** Runs the tools asked for (by default iscsiadm, nvme-cli, multipathd and dmsetup) once each; what is not asked for is empty. */
export async function readToolViews(need: ToolNeeds = ALL_TOOLS): Promise<ToolViews> {
  const run = (yes: boolean | undefined, read: () => Promise<string>): Promise<string> => (yes ? read() : Promise.resolve(''));
  const [isc, nv, mpaths, mmaps, dmStatus] = await Promise.all([
    run(need.iscsi, () => toolOutput(['iscsiadm', '-m', 'session'])),
    run(need.nvme, () => toolOutput(['nvme', 'list-subsys', '-o', 'json'])),
    run(need.multipathd, () => multipathdOutput(MULTIPATHD_SHOW_PATHS)),
    run(need.multipathdMaps, () => multipathdOutput(MULTIPATHD_SHOW_MAPS)),
    run(need.dmStatus, () => toolOutput(['dmsetup', 'status'])),
  ]);
  return {
    iscsiSessions: parseIscsiadmSessions(isc),
    nvmeControllers: parseNvmeListSubsys(nv),
    multipathPaths: parseMultipathdPaths(mpaths),
    multipathMaps: parseMultipathdMaps(mmaps),
    dmStatus: parseDmsetup(dmStatus),
  };
}

export interface ToolMultipathPath {
  dev: string;
  wwid: string;
  dmState: string;
  checkerState: string;
  devState: string;
  line: string;
}

export interface ToolMultipathMap {
  name: string;
  wwid: string;
  dm: string;
  paths: number;
  line: string;
}

/** `multipathd show paths raw format "%d %w %t %T %o"`: device, WWID, dm state, checker, device state. */
export function parseMultipathdPaths(text: string): ToolMultipathPath[] {
  const out: ToolMultipathPath[] = [];
  for (const raw of text.split('\n')) {
    const f = raw.trim().split(/\s+/);
    if (f.length < 5 || !/^[a-z]/.test(f[0]!)) continue;
    out.push({ dev: f[0]!, wwid: f[1]!, dmState: f[2]!, checkerState: f[3]!, devState: f[4]!, line: raw.trim() });
  }
  return out;
}

/** `multipathd show maps raw format "%n %w %d %N"`: name, WWID, dm device, number of paths. */
export function parseMultipathdMaps(text: string): ToolMultipathMap[] {
  const out: ToolMultipathMap[] = [];
  for (const raw of text.split('\n')) {
    const f = raw.trim().split(/\s+/);
    if (f.length < 4 || !/^dm-\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, wwid: f[1]!, dm: f[2]!, paths: Number(f[3]), line: raw.trim() });
  }
  return out;
}
