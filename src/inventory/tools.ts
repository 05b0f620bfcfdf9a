import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';
import { sleep } from '../system/wait.js';
import type { DmLine } from './model.js';
import { MULTIPATHD_REPLY_TIMEOUT_MS, multipathdQuery } from './multipathd.js';

/**
 * The tools' own views, where they hold what sysfs does not: multipathd's (the paths it monitors
 * and the maps it made, kept in its own memory) and device-mapper's (tables and path states, from
 * ioctls). iscsiadm's session list and nvme-cli's controllers are not asked for here: both tools
 * print what they read from the same sysfs directories the snapshot reads (open-iscsi's
 * iscsi_sysfs.c, libnvme's tree scan), so a process per check would add time and no view; the
 * fixture tests (test/unit/inventory-tools.test.ts) check on every capture that brick-lab's reading
 * of sysfs agrees with what they printed. Each tool's rows are typed apart, with the line itself
 * as evidence.
 */
export interface ToolViews {
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

/** How many times a running multipathd is asked before its silence is an error. */
export const MULTIPATHD_TRIES = 3;

/**
 * What multipathd prints for one of the queries above; nothing when it does not run. A multipathd
 * that runs and does not answer (busy past the CLI's wait: a checker or uevent burst holding its
 * lock) is asked again; still silent, it is an error. Its silence is never read as "it tracks
 * nothing": that would call a host clean whose multipathd may still hold the volume's paths.
 */
async function multipathdOutput(query: readonly string[]): Promise<string> {
  for (let i = 1; ; i++) {
    const out = await multipathdQuery(query.slice(1));
    if (out !== null) return out;
    if (i === MULTIPATHD_TRIES) break;
    await sleep(250 * i);
  }
  throw new BrickError('MULTIPATHD_SILENT', `multipathd runs but gave no answer to \`${query.join(' ')}\` (${MULTIPATHD_TRIES} tries, each waiting ${MULTIPATHD_REPLY_TIMEOUT_MS / 1000} s as its CLI does): what it holds cannot be read, so the host cannot be judged`, {
    hint: "ask again once multipathd answers `multipathd show daemon`; look at its log (journalctl -u multipathd) for what keeps it busy",
  });
}

/** A tool's stdout, or nothing when it failed or is not installed (it has nothing to say). */
async function toolOutput(argv: readonly string[]): Promise<string> {
  return exec(argv, { timeoutMs: 30_000, reject: false })
    .then((r) => (r.exitCode === 0 ? r.stdout : ''))
    .catch(() => '');
}

/** The paths multipathd tracks now (MULTIPATHD_SILENT when it runs and does not answer). */
export async function readMultipathdPaths(): Promise<ToolMultipathPath[]> {
  return parseMultipathdPaths(await multipathdOutput(MULTIPATHD_SHOW_PATHS));
}

/** Which tools a caller needs: most are a process (100-250 ms under TCG), so only those asked for run. */
export interface ToolNeeds {
  /** `multipathd show paths`. */
  multipathd?: boolean;
  /** `multipathd show maps`. */
  multipathdMaps?: boolean;
  /** `dmsetup status`: worth running only when the host has dm devices. */
  dmStatus?: boolean;
}

const ALL_TOOLS: Required<ToolNeeds> = { multipathd: true, multipathdMaps: true, dmStatus: true };

/** Runs the tools asked for (by default multipathd's paths and maps and dmsetup status) once each; what is not asked for is empty. */
export async function readToolViews(need: ToolNeeds = ALL_TOOLS): Promise<ToolViews> {
  const run = (yes: boolean | undefined, read: () => Promise<string>): Promise<string> => (yes ? read() : Promise.resolve(''));
  const [mpaths, mmaps, dmStatus] = await Promise.all([
    run(need.multipathd, () => multipathdOutput(MULTIPATHD_SHOW_PATHS)),
    run(need.multipathdMaps, () => multipathdOutput(MULTIPATHD_SHOW_MAPS)),
    run(need.dmStatus, () => toolOutput(['dmsetup', 'status'])),
  ]);
  return {
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

/**
 * `multipathd show paths raw format "%d %w %t %T %o"`: device, WWID, dm state, checker, device
 * state. Raw output pads nothing, so the fields are split on single spaces: a path multipathd took
 * while its device was offline has an empty WWID ("sda  undef undef unknown"), and it is still a
 * path multipathd holds. The checker state alone may hold a space ("i/o pending", "i/o timeout"):
 * it is what lies between the dm state and the last field.
 */
export function parseMultipathdPaths(text: string): ToolMultipathPath[] {
  const out: ToolMultipathPath[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const f = line.split(' ');
    if (f.length < 5 || !/^[a-z][a-z0-9!:_-]*$/.test(f[0]!) || /\s/.test(f[1]!)) continue;
    out.push({ dev: f[0]!, wwid: f[1]!, dmState: f[2]!, checkerState: f.slice(3, -1).join(' '), devState: f[f.length - 1]!, line });
  }
  return out;
}

/** `multipathd show maps raw format "%n %w %d %N"`: name, WWID, dm device, number of paths (single spaces, as above). */
export function parseMultipathdMaps(text: string): ToolMultipathMap[] {
  const out: ToolMultipathMap[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const f = line.split(' ');
    if (f.length !== 4 || !f[0] || !/^dm-\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0], wwid: f[1]!, dm: f[2]!, paths: Number(f[3]), line });
  }
  return out;
}
