import { checkIqn, checkLun, CONTROL, describe, normalPortal, refuse } from '../volume/fields.js';
import type { ChapCredentials, IscsiProperties, IscsiTargetPath } from '../volume/properties.js';
import { asPayload, attachmentKeys, get, given, need, optionalVolumeId, optionalWwid, type AttachmentKeys, type EncodeOptions, type Payload } from './payload.js';

/**
 * The iSCSI codec: os-brick's iSCSI connection properties (Cinder's connection_info['data'] for
 * driver_volume_type "iscsi") to IscsiProperties and back. Pure: nothing here touches the host.
 */

/** The iSCSI data dict as os-brick reads it; the optional keys are written only when they hold something. */
export type IscsiConnectionData = Partial<AttachmentKeys> & {
  target_portal: string;
  target_iqn: string;
  target_lun: number;
  target_portals?: string[];
  target_iqns?: string[];
  target_luns?: number[];
  volume_id?: string;
  auth_method?: 'CHAP';
  auth_username?: string;
  auth_password?: string;
  discovery_auth_method?: 'CHAP';
  discovery_auth_username?: string;
  discovery_auth_password?: string;
  /** A key of ours: os-brick's shape has no WWID. */
  device_wwid?: string;
  target_discovered?: boolean;
};

// ---------------------------------------------------------------------------------------------
// Decode

export function decode(data: unknown): IscsiProperties {
  const d = asPayload(data, 'data', 'iSCSI connection properties (target_portal, target_iqn, target_lun, ...)');
  return {
    protocol: 'iscsi',
    volumeId: optionalVolumeId(d),
    paths: iscsiPaths(d),
    auth: chap(d, 'auth_'),
    discoveryAuth: chap(d, 'discovery_auth_'),
    deviceWwid: optionalWwid(d),
  };
}

/**
 * os-brick's rule: the plural keys win when both target_portals and target_iqns are there, with
 * target_luns or else target_lun for every portal; otherwise the singular keys.
 */
function iscsiPaths(d: Payload): IscsiTargetPath[] {
  // Plain loops and arrays built by push: the agent decodes every volume of a batch here, and
  // arrays made by map() and by push() differ to V8's optimised code, which is thrown away and
  // made again (seconds of a TCG guest's only vCPU) each time it meets the other kind.
  const paths: IscsiTargetPath[] = [];
  if (given(d, 'target_portals') && given(d, 'target_iqns')) {
    const portals = nonEmptyList(d, 'target_portals');
    const iqns = nonEmptyList(d, 'target_iqns');
    sameLength('target_iqns', iqns, 'target_portals', portals);
    const rawLuns = get(d, 'target_luns');
    // os-brick: `target_luns or [target_lun] * n`, so an empty list falls back too.
    let lunOfAll: number | null = null;
    if (Array.isArray(rawLuns) && rawLuns.length > 0) {
      sameLength('target_luns', rawLuns, 'target_portals', portals);
    } else if (rawLuns !== undefined && rawLuns !== null && !Array.isArray(rawLuns)) {
      refuse('target_luns', `must be a list of LUNs, one per portal (got ${describe(rawLuns)})`, 'BAD_LUN');
    } else if (given(d, 'target_lun')) {
      lunOfAll = checkLun(d.target_lun, 'target_lun');
    } else {
      refuse('target_luns', 'missing: with target_portals and target_iqns give target_luns (one per portal) or target_lun (used for every portal)');
    }
    const seen = portals.length > 16 ? new Set<string>() : null;
    for (let i = 0; i < portals.length; i++) {
      const portal = normalPortal(portals[i], `target_portals[${i}]`);
      const iqn = checkIqn(iqns[i], `target_iqns[${i}]`);
      const lun = lunOfAll ?? checkLun((rawLuns as unknown[])[i], `target_luns[${i}]`);
      addPath(paths, seen, portal, iqn, lun);
    }
  } else {
    const alone = given(d, 'target_portals') ? ' (target_portals is only used together with target_iqns)' : given(d, 'target_iqns') ? ' (target_iqns is only used together with target_portals)' : '';
    const portal = normalPortal(need(d, 'target_portal', `the target's portal "host:port"${alone}`), 'target_portal');
    const iqn = checkIqn(need(d, 'target_iqn', `the target's IQN${alone}`), 'target_iqn');
    // os-brick would take LUN 0 here; a missing LUN is refused instead, as LIO answers for an
    // unmapped LUN 0 and a guessed 0 would find a device that is not the volume.
    const lun = checkLun(need(d, 'target_lun', 'the LUN number of the volume'), 'target_lun');
    addPath(paths, null, portal, iqn, lun);
  }
  return paths;
}

/**
 * A (portal, target, LUN) once: a payload that lists one twice has one path there. A volume's
 * few paths are compared one by one (no key strings, no set: a fifth of decoding a batch on the
 * host); a list of more than 16 goes through a set of keys, so that a payload of thousands of
 * portals is not compared pair by pair.
 */
function addPath(paths: IscsiTargetPath[], seen: Set<string> | null, portal: string, iqn: string, lun: number): void {
  if (seen) {
    const key = `${portal} ${iqn} ${lun}`;
    if (seen.has(key)) return;
    seen.add(key);
  } else {
    for (const p of paths) if (p.portal === portal && p.iqn === iqn && p.lun === lun) return;
  }
  paths.push({ portal, iqn, lun });
}

function nonEmptyList(d: Payload, key: string): unknown[] {
  const v = get(d, key);
  if (!Array.isArray(v) || v.length === 0) refuse(key, `must be a non-empty list (got ${describe(v)}${Array.isArray(v) ? ', empty' : ''})`);
  return v;
}

function sameLength(key: string, list: unknown[], otherKey: string, other: unknown[]): void {
  if (list.length !== other.length) {
    refuse(key, `has ${list.length} entries but ${otherKey} has ${other.length}: the lists pair up entry by entry and must be the same length`);
  }
}

function chap(d: Payload, prefix: 'auth_' | 'discovery_auth_'): ChapCredentials | null {
  const methodKey = `${prefix}method`;
  const method = get(d, methodKey);
  // As os-brick: no (or an empty) method means no CHAP, whatever the username and password say.
  if (method === undefined || method === null || method === '') return null;
  if (method !== 'CHAP') refuse(methodKey, `must be "CHAP" or absent (got ${describe(method)})`);
  return { method: 'CHAP', username: credential(d, `${prefix}username`), password: credential(d, `${prefix}password`) };
}

/** The value is never echoed: it may be a password. */
function credential(d: Payload, key: string): string {
  const v = need(d, key, `${key.replace(/(username|password)$/, 'method')} is "CHAP", so ${key} must be given`);
  if (typeof v !== 'string' || v === '') refuse(key, `must be a non-empty string (got ${typeof v === 'string' ? 'an empty string' : typeof v})`);
  // iscsiadm stores node records as "key = value" lines: a newline would write other keys.
  if (CONTROL.test(v)) refuse(key, 'must not contain control characters such as newlines');
  return v;
}

// ---------------------------------------------------------------------------------------------
// Encode

/**
 * The first path goes in the singular keys, which every os-brick reads; the lists follow when
 * there are several paths (or opts.multipath), one entry per path, so decode() gives the same
 * paths back in the same order. CHAP is written only when there is some.
 */
export function encode(p: IscsiProperties, opts: EncodeOptions = {}): IscsiConnectionData {
  const first = p.paths[0];
  if (first === undefined) refuse('paths', 'an iSCSI volume needs at least one (portal, iqn, lun) path');
  const out: IscsiConnectionData = { target_portal: first.portal, target_iqn: first.iqn, target_lun: first.lun };
  if (p.paths.length > 1 || opts.multipath === true) {
    out.target_portals = p.paths.map((x) => x.portal);
    out.target_iqns = p.paths.map((x) => x.iqn);
    out.target_luns = p.paths.map((x) => x.lun);
  }
  if (p.volumeId !== null) out.volume_id = p.volumeId;
  if (p.auth) Object.assign(out, { auth_method: 'CHAP', auth_username: p.auth.username, auth_password: p.auth.password });
  if (p.discoveryAuth) {
    Object.assign(out, { discovery_auth_method: 'CHAP', discovery_auth_username: p.discoveryAuth.username, discovery_auth_password: p.discoveryAuth.password });
  }
  if (p.deviceWwid !== null) out.device_wwid = p.deviceWwid;
  if (opts.targetDiscovered !== undefined) out.target_discovered = opts.targetDiscovered;
  return { ...out, ...attachmentKeys(opts) };
}
