import { isIPv4, isIPv6 } from 'node:net';
import { BrickError, type ErrorCode } from '../system/errors.js';

/**
 * Checks of the fields every layer takes from outside: names (IQN, NQN, volume), portals,
 * addresses, ports, LUNs, UUIDs, sizes. Each refusal is a coded error (BAD_REQUEST and its
 * kin, a 400 at the agent) whose message starts with the field it is about and says what would
 * be accepted; nothing is made before every field passed.
 */
/** What every refusal of a request's field points to. */
export const SCHEMA_HINT = 'see /openapi.json for the request schema';

export function refuse(field: string, message: string, code: ErrorCode = 'BAD_REQUEST'): never {
  throw new BrickError(code, `${field}: ${message}`, { details: { field }, hint: SCHEMA_HINT });
}

/** Per class of allowed characters (one character), the test of a whole string made of them. */
const wholeOf = new Map<string, RegExp>();

/** What a portal may hold: an IPv4 address, a host name or a bracketed IPv6 address (with a zone), a colon and a port. */
const PORTAL_CHARACTERS = /[A-Za-z0-9.:[\]%_-]/;

/**
 * The characters of a value that its kind of field cannot hold, each named so that a reader sees
 * it: "';'", "' ' (a space)", and anything outside printable ASCII by its code point ("U+0456 'і'"),
 * since a look-alike letter or a NUL byte is invisible in a message. Empty when there are none.
 */
export function strangeCharacters(value: string, allowed: RegExp): string {
  // Most values hold nothing strange: one test of the whole string says so.
  // Keyed by the class's text: a regular expression literal is a new object each time it is met.
  const key = `${allowed.source}/${allowed.flags}`;
  let whole = wholeOf.get(key);
  if (!whole) wholeOf.set(key, (whole = new RegExp(`^(?:${allowed.source})*$`, allowed.flags.replace(/[gy]/g, ''))));
  if (whole.test(value)) return '';
  const seen: string[] = [];
  for (const ch of new Set(value)) {
    if (allowed.test(ch)) continue;
    const cp = ch.codePointAt(0)!;
    if (ch === ' ') seen.push("' ' (a space)");
    else if (cp > 0x20 && cp < 0x7f) seen.push(`'${ch}'`);
    else seen.push(`U+${cp.toString(16).toUpperCase().padStart(4, '0')}${cp > 0x9f ? ` '${ch}'` : ''}`);
  }
  return seen.slice(0, 8).join(', ') + (seen.length > 8 ? ', ...' : '');
}

/** " (it contains X, which ... cannot hold)" or nothing. */
function holding(value: unknown, allowed: RegExp, what: string): string {
  if (typeof value !== 'string') return '';
  const odd = strangeCharacters(value, allowed);
  return odd ? ` (it contains ${odd}, which ${what} cannot hold)` : '';
}

/** An installed connector's name (a file name on the compute node, and ?connector= of the agent's routes). */
export const CONNECTOR_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Volume names become backstore, file and configfs names: no dots, no slashes. */
export const VOLUME_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export function checkVolumeName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !VOLUME_NAME.test(name)) {
    refuse(field, `${describe(name)} is not a volume name${holding(name, /[a-z0-9-]/, 'a volume name')}: 1-40 of a-z, 0-9 and '-', starting with a letter or digit (no '.', '/' or '..')`);
  }
  return name;
}

// RFC 3720 iSCSI qualified name, as rtslib checks it: a date, then a reversed domain with at least
// one dot (rtslib refuses "iqn.2026-11.lab:x"), then an optional unique part.
const IQN = /^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::[a-z0-9.:_-]+)?$/;

/**
 * Values that passed a check, remembered. A host's volumes come from a few targets, so a batch of
 * volumes, or a gate job asking again, names the same portals and IQNs over and over, and under
 * TCG each pattern test of them costs tens of microseconds. A check is a pure function of its
 * value, so a value that passed once passes again: only passes are kept (a refusal is worked out
 * afresh, with the field's name in its message); at most 4096 values, emptied when full.
 */
class Passed<T> {
  private readonly values = new Map<string, T>();
  get(v: string): T | undefined {
    return this.values.get(v);
  }
  keep(v: string, out: T): T {
    if (this.values.size >= 4096) this.values.clear();
    this.values.set(v, out);
    return out;
  }
}

const passedIqns = new Passed<true>();

export function checkIqn(iqn: unknown, field = 'iqn'): string {
  if (typeof iqn === 'string' && passedIqns.get(iqn)) return iqn;
  if (typeof iqn !== 'string' || iqn.length > 223 || !IQN.test(iqn)) {
    refuse(field, `${describe(iqn)} is not an iSCSI qualified name${holding(iqn, /[a-z0-9.:_-]/, 'an IQN')}: iqn.YYYY-MM.reversed.domain[:unique], lowercase, and the domain needs at least one dot`, 'BAD_IQN');
  }
  passedIqns.keep(iqn, true);
  return iqn;
}

// NVMe qualified names: the spec's form is nqn.YYYY-MM.reversed.domain:unique, but real payloads
// carry others (Cinder's nvmet driver makes "nqn.nvme-subsystem-1-<uuid>") and the kernel takes
// them. Refused: what cannot be a configfs directory name or an nvme-cli argument.
const NQN = /^nqn\.[A-Za-z0-9._:-]+$/;

export function checkNqn(nqn: unknown, field = 'nqn'): string {
  if (typeof nqn !== 'string' || nqn.length > 223 || !NQN.test(nqn)) {
    refuse(field, `${describe(nqn)} is not an NVMe qualified name${holding(nqn, /[A-Za-z0-9._:-]/, 'an NQN')}: "nqn." then letters, digits, '.', ':', '-' or '_' (at most 223 characters, no '/' or spaces)`, 'BAD_NQN');
  }
  return nqn;
}

/**
 * A Fibre Channel port name (WWPN) as Cinder's FC drivers send it and os-brick uses it: 16 hex
 * digits, no 0x, no colons; os-brick lower-cases it and puts "0x" in front itself when it builds
 * the by-path name, so "0x..." would name no device there. Returned in lowercase.
 */
export function checkWwpn(v: unknown, field: string): string {
  if (typeof v !== 'string' || !/^[0-9A-Fa-f]{16}$/.test(v)) {
    const hint = typeof v === 'string' && /^(0x)?[0-9A-Fa-f:]+$/i.test(v) ? `; write its 16 hex digits alone, e.g. ${JSON.stringify(v.replace(/^0x/i, '').replace(/:/g, '').toLowerCase())}` : '';
    refuse(field, `${describe(v)} is not a Fibre Channel port name (WWPN): 16 hex digits such as "20005254004c0102", without 0x or colons${hint}`, 'BAD_WWPN');
  }
  return v.toLowerCase();
}

export const MAX_SIZE_MIB = 4096;

export function checkSize(sizeMiB: unknown, field = 'sizeMiB'): number {
  if (typeof sizeMiB !== 'number' || !Number.isInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > MAX_SIZE_MIB) {
    refuse(field, `must be a whole number of MiB from 1 to ${MAX_SIZE_MIB} (got ${JSON.stringify(sizeMiB)}); volumes are sparse files in the target's memory`);
  }
  return sizeMiB;
}

export function checkInt(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) refuse(field, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return v;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function checkUuid(v: unknown, field: string): string {
  if (typeof v !== 'string' || !UUID.test(v)) refuse(field, `must be a lowercase UUID (got ${JSON.stringify(v)})`);
  return v;
}

/** How a refused value is shown in a message: never a whole object, never a password. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length > 80 ? `${JSON.stringify(v.slice(0, 60))}... (${v.length} characters)` : JSON.stringify(v);
  return typeof v === 'number' || typeof v === 'boolean' ? JSON.stringify(v) : typeof v === 'object' ? 'an object' : typeof v;
}

/** Control characters: a newline in a value would write other keys into iscsiadm's records. */
export const CONTROL = /[\u0000-\u001f\u007f]/;

export const ISCSI_DEFAULT_PORT = 3260;
/** SAM flat-space addressing ends at 16383; LIO's LUN numbers and ours stay below it. */
export const MAX_LUN = 16383;


const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** An IPv4 address or a DNS name (IPv6 is handled by the callers, which know about brackets). */
export function checkHostName(host: string, field: string, shown: string): void {
  // "10.0.0.256" and "10.1" match the hostname pattern but are meant as (bad) IPv4 addresses.
  if (/^[0-9.]+$/.test(host) ? !isIPv4(host) : !HOSTNAME.test(host)) {
    refuse(field, `${JSON.stringify(shown)} has no valid host: expected an IPv4 address, a host name or a bracketed IPv6 address`, 'BAD_PORTAL');
  }
}

export function checkPort(v: unknown, field: string, acceptString: boolean): number {
  const n = typeof v === 'number' ? v : acceptString && typeof v === 'string' && /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    refuse(field, `port must be a whole number from 1 to 65535${acceptString ? ' (a number or a decimal string)' : ''} (got ${describe(v)})`, 'BAD_PORTAL');
  }
  return n;
}

/**
 * An iSCSI portal as Cinder writes it: "host:port", "[ipv6]:port", or either without the port
 * (iscsiadm then uses 3260). Unbracketed IPv6 is refused even without a port: in "fe80::1:3260"
 * nobody can tell the port from the last group.
 */
export interface Portal {
  readonly host: string;
  readonly port: number;
  readonly ipv6: boolean;
}

/** Each portal that passed, parsed and as brick-lab writes it. */
const passedPortals = new Passed<{ parsed: Portal; text: string }>();

function passedPortal(portal: unknown, field: string): { parsed: Portal; text: string } {
  if (typeof portal === 'string') {
    const known = passedPortals.get(portal);
    if (known) return known;
  }
  if (typeof portal !== 'string' || portal === '') refuse(field, `must be a portal "host:port" (got ${describe(portal)})`, 'BAD_PORTAL');
  const parsed = Object.freeze(checkPortal(portal, field));
  return passedPortals.keep(portal, { parsed, text: formatPortal(parsed) });
}

export function parsePortal(portal: unknown, field: string): Portal {
  return passedPortal(portal, field).parsed;
}

function checkPortal(portal: string, field: string): Portal {
  const odd = strangeCharacters(portal, PORTAL_CHARACTERS);
  if (odd) {
    refuse(field, `${describe(portal)} contains ${odd}, which a portal cannot hold: a portal is "host:port", the host an IPv4 address, a host name or "[IPv6 address]"`, 'BAD_PORTAL');
  }

  if (portal.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(portal);
    if (!m) refuse(field, `${JSON.stringify(portal)} is not "[ipv6]:port": nothing but ":port" may follow the closing bracket`, 'BAD_PORTAL');
    const host = m[1]!;
    if (host === '') refuse(field, `${JSON.stringify(portal)} has an empty host`, 'BAD_PORTAL');
    if (!isIPv6(host)) refuse(field, `${JSON.stringify(portal)}: ${JSON.stringify(host)} between the brackets is not an IPv6 address`, 'BAD_PORTAL');
    const port = m[2] === undefined ? ISCSI_DEFAULT_PORT : portOf(m[2], portal, field);
    return { host, port, ipv6: true };
  }

  const colons = portal.split(':').length - 1;
  if (colons > 1) {
    refuse(field, `${JSON.stringify(portal)} looks like an IPv6 address without brackets: write "[address]:port", e.g. "[fe80::1]:3260"`, 'BAD_PORTAL');
  }
  const [host, portText] = colons === 1 ? [portal.slice(0, portal.indexOf(':')), portal.slice(portal.indexOf(':') + 1)] : [portal, undefined];
  if (host === '') refuse(field, `${JSON.stringify(portal)} has an empty host`, 'BAD_PORTAL');
  checkHostName(host, field, portal);
  const port = portText === undefined ? ISCSI_DEFAULT_PORT : portOf(portText, portal, field);
  return { host, port, ipv6: false };
}

function portOf(text: string, portal: string, field: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    refuse(field, `${JSON.stringify(portal)} has no valid port: after the last ':' must come a number from 1 to 65535`, 'BAD_PORTAL');
  }
  return Number(text);
}

export function formatPortal(p: Portal): string {
  return p.ipv6 ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}

/** A portal as brick-lab writes it ("host:port", the port always given). */
export function normalPortal(portal: unknown, field: string): string {
  return passedPortal(portal, field).text;
}

/** os-brick passes target_lun(s) through as ints; a numeric string is a driver bug, so say so. */
export function checkLun(v: unknown, field: string): number {
  if (typeof v === 'string' && /^\s*[0-9]+\s*$/.test(v)) {
    refuse(field, `LUN ${JSON.stringify(v)} is a string: send it as a JSON number (os-brick takes integer LUNs)`, 'BAD_LUN');
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_LUN) {
    refuse(field, `LUN must be a whole number from 0 to ${MAX_LUN} (got ${describe(v)})`, 'BAD_LUN');
  }
  return v;
}
