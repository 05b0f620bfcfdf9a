import { checkLun, checkWwpn, describe, refuse } from '../volume/fields.js';
import type { FcProperties, FcTargetPath } from '../volume/properties.js';
import { asPayload, attachmentKeys, get, given, need, optionalVolumeId, optionalWwid, type AttachmentKeys, type EncodeOptions, type Payload } from './payload.js';

/**
 * The Fibre Channel codec: os-brick's FC connection properties (Cinder's connection_info['data']
 * for driver_volume_type "fibre_channel") to FcProperties and back. Pure: nothing here touches
 * the host.
 *
 * os-brick's reading (fibre_channel.py, _add_targets_to_connection_properties): the port names
 * come from target_wwns, else target_wwn (a list, or one name), lower-cased; the LUNs from
 * target_luns, else target_lun for every port; initiator_target_map, when given, says which
 * target ports each of the host's ports reaches.
 */

/** The FC data dict as os-brick reads it; the optional keys are written only when they hold something. */
export type FcConnectionData = Partial<AttachmentKeys> & {
  target_wwn?: string[];
  target_lun?: number;
  target_wwns?: string[];
  target_luns?: number[];
  initiator_target_map?: Record<string, string[]>;
  volume_id?: string;
  /** A key of ours: os-brick's shape has no WWID. */
  device_wwid?: string;
  target_discovered?: boolean;
};

// ---------------------------------------------------------------------------------------------
// Decode

export function decode(data: unknown): FcProperties {
  const d = asPayload(data, 'data', 'Fibre Channel connection properties (target_wwn, target_lun, ...)');
  return {
    protocol: 'fc',
    volumeId: optionalVolumeId(d),
    targets: fcTargets(d),
    initiatorTargetMap: initiatorTargetMap(d),
    deviceWwid: optionalWwid(d),
  };
}

function fcTargets(d: Payload): FcTargetPath[] {
  let key: string;
  let wwns: unknown[];
  // os-brick: `target_wwns` when it holds names, else `target_wwn`.
  const plural = get(d, 'target_wwns');
  if (given(d, 'target_wwns') && !(Array.isArray(plural) && plural.length === 0 && given(d, 'target_wwn'))) {
    key = 'target_wwns';
    wwns = nonEmptyList(d, key);
  } else {
    key = 'target_wwn';
    const v = need(d, key, 'the target port names (WWPNs): a list of 16-hex-digit names, or one');
    wwns = typeof v === 'string' ? [v] : Array.isArray(v) ? nonEmptyList(d, key) : refuse(key, `must be a WWPN or a non-empty list of them (got ${describe(v)})`, 'BAD_WWPN');
  }
  const names = wwns.map((w, i) => checkWwpn(w, typeof get(d, key) === 'string' ? key : `${key}[${i}]`));
  const rawLuns = get(d, 'target_luns');
  let luns: number[];
  if (Array.isArray(rawLuns) && rawLuns.length > 0) {
    // Paired entry by entry; one LUN for several ports is that LUN on each (os-brick does both).
    if (rawLuns.length !== names.length && rawLuns.length !== 1) refuse('target_luns', `has ${rawLuns.length} entries but ${key} has ${names.length}: give one LUN per port, or one for all`);
    luns = names.map((_, i) => checkLun(rawLuns[rawLuns.length === 1 ? 0 : i], `target_luns[${rawLuns.length === 1 ? 0 : i}]`));
  } else if (rawLuns !== undefined && rawLuns !== null && !Array.isArray(rawLuns)) {
    refuse('target_luns', `must be a list of LUNs, one per target port (got ${describe(rawLuns)})`, 'BAD_LUN');
  } else {
    // os-brick would take LUN 0 here; refused instead, as for iSCSI: a guessed 0 finds a device
    // that is not the volume.
    const lun = checkLun(need(d, 'target_lun', 'the LUN number of the volume (or target_luns, one per port)'), 'target_lun');
    luns = names.map(() => lun);
  }
  const out: FcTargetPath[] = [];
  names.forEach((wwpn, i) => {
    if (!out.some((t) => t.wwpn === wwpn && t.lun === luns[i])) out.push({ wwpn, lun: luns[i]! });
  });
  return out;
}

function initiatorTargetMap(d: Payload): Record<string, string[]> | null {
  if (!given(d, 'initiator_target_map')) return null;
  const m = d.initiator_target_map;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) refuse('initiator_target_map', `must be an object of initiator WWPN -> list of target WWPNs (got ${describe(m)})`);
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(m)) {
    const init = checkWwpn(k, `initiator_target_map key ${JSON.stringify(k)}`);
    if (!Array.isArray(v)) refuse(`initiator_target_map.${k}`, `must be a list of target WWPNs (got ${describe(v)})`, 'BAD_WWPN');
    out[init] = v.map((t, i) => checkWwpn(t, `initiator_target_map.${k}[${i}]`));
  }
  return out;
}

function nonEmptyList(d: Payload, key: string): unknown[] {
  const v = get(d, key);
  if (!Array.isArray(v) || v.length === 0) refuse(key, `must be a non-empty list (got ${describe(v)}${Array.isArray(v) ? ', empty' : ''})`, 'BAD_WWPN');
  return v;
}

// ---------------------------------------------------------------------------------------------
// Encode

/**
 * As Cinder's FC drivers hand it out: target_wwn a list and target_lun one number when every
 * port has the same LUN, else target_wwns with target_luns; the map when known.
 */
export function encode(p: FcProperties, opts: EncodeOptions = {}): FcConnectionData {
  const lun = p.targets[0]!.lun;
  const out: FcConnectionData = p.targets.every((t) => t.lun === lun)
    ? { target_wwn: p.targets.map((t) => t.wwpn), target_lun: lun }
    : { target_wwns: p.targets.map((t) => t.wwpn), target_luns: p.targets.map((t) => t.lun) };
  if (p.initiatorTargetMap) out.initiator_target_map = Object.fromEntries(Object.entries(p.initiatorTargetMap).map(([k, v]) => [k, [...v]]));
  if (p.volumeId !== null) out.volume_id = p.volumeId;
  if (p.deviceWwid !== null) out.device_wwid = p.deviceWwid;
  if (opts.targetDiscovered !== undefined) out.target_discovered = opts.targetDiscovered;
  return { ...out, ...attachmentKeys(opts) };
}
