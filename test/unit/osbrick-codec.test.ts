import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DRIVER_VOLUME_TYPE,
  fcConnectionInfo,
  fcVolumeProperties,
  iscsiConnectionInfo,
  iscsiVolumeProperties,
  normalise,
  nvmeofConnectionInfo,
  nvmeofVolumeProperties,
  osBrickData,
  TARGET_ENCODING,
  toConnectionInfo,
} from '../../src/osbrick/index.js';
import type { ConnectionProperties, FcProperties, IscsiProperties, LocalProperties, NvmeProperties } from '../../src/volume/properties.js';
import * as fcCodec from '../../src/osbrick/fc.js';
import * as iscsi from '../../src/osbrick/iscsi.js';
import * as local from '../../src/osbrick/local.js';
import * as nvmeof from '../../src/osbrick/nvmeof.js';
import { MAX_LUN } from '../../src/volume/fields.js';
import type { Protocol } from '../../src/volume/protocol.js';

/**
 * The os-brick codecs as properties: any valid typed properties survive encode then decode, and
 * any payload spelling os-brick accepts (singular or plural keys, UUIDs in any form, ns_id as a
 * string or a number, with or without the connection_info wrapper) decodes to properties that
 * survive the round trip too.
 */

const RUNS = { numRuns: 300 };

// ---------------------------------------------------------------------------------------------
// Arbitraries of valid, already-normalised values (the forms decode() returns)

const label = fc.stringMatching(/^[a-z](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
const hostName = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const port = fc.integer({ min: 1, max: 65535 });
const lun = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 256, max: MAX_LUN }));
const iqn = fc
  .tuple(fc.integer({ min: 1990, max: 2099 }), fc.integer({ min: 1, max: 12 }), fc.array(label, { minLength: 2, maxLength: 4 }), fc.option(fc.stringMatching(/^[a-z0-9.:_-]{1,30}$/), { nil: null }))
  .map(([y, m, ls, unique]) => `iqn.${y}-${String(m).padStart(2, '0')}.${ls.join('.')}${unique === null ? '' : `:${unique}`}`);
const nqn = fc.stringMatching(/^[A-Za-z0-9._:-]{1,60}$/).map((s) => `nqn.${s}`);
/** Printable text (any script) without control characters: CHAP secrets, volume ids. */
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s) && s.length <= 255);
const uuid = fc.uuid().map((u) => u.toLowerCase());
const nguid = fc.stringMatching(/^[0-9a-f]{32}$/);
const nsid = fc.integer({ min: 1, max: 0xfffffffe });
const chap = fc.option(fc.record({ method: fc.constant('CHAP' as const), username: text, password: text }), { nil: null });

const iscsiPortal = fc.oneof(
  fc.tuple(ipv4, port).map(([h, p]) => `${h}:${p}`),
  fc.tuple(hostName, port).map(([h, p]) => `${h}:${p}`),
  fc.tuple(ipv6, port).map(([h, p]) => `[${h}]:${p}`),
);

const iscsiProps: fc.Arbitrary<IscsiProperties> = fc.record({
  protocol: fc.constant('iscsi' as const),
  volumeId: fc.option(text, { nil: null }),
  paths: fc.uniqueArray(fc.record({ portal: iscsiPortal, iqn, lun }), { minLength: 1, maxLength: 4, selector: (p) => `${p.portal} ${p.iqn} ${p.lun}` }),
  auth: chap,
  discoveryAuth: chap,
  deviceWwid: fc.option(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9.:_-]{0,40}$/), { nil: null }),
});

const nvmeProps: fc.Arbitrary<NvmeProperties> = fc.record({
  protocol: fc.constant('nvmeof' as const),
  nqn,
  portals: fc.uniqueArray(fc.record({ address: fc.oneof(ipv4, ipv6, hostName), port, transport: fc.constant('tcp' as const) }), {
    minLength: 1,
    maxLength: 4,
    selector: (p) => `${p.address} ${p.port}`,
  }),
  uuid: fc.option(uuid, { nil: null }),
  nguid: fc.option(nguid, { nil: null }),
  nsid: fc.option(nsid, { nil: null }),
  hostNqn: fc.option(nqn, { nil: null }),
});

const segment = fc.stringMatching(/^[A-Za-z0-9_:+-][A-Za-z0-9._:+-]{0,15}$/);
const localProps: fc.Arbitrary<LocalProperties> = fc.record({
  protocol: fc.constant('local' as const),
  devicePath: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/dev/${s.join('/')}`),
});

const wwpn = fc.stringMatching(/^[0-9a-f]{16}$/);
const fcLun = fc.integer({ min: 0, max: MAX_LUN });
const fcProps: fc.Arbitrary<FcProperties> = fc.record({
  protocol: fc.constant('fc' as const),
  volumeId: fc.option(text, { nil: null }),
  targets: fc.uniqueArray(fc.record({ wwpn, lun: fcLun }), { minLength: 1, maxLength: 4, selector: (t) => `${t.wwpn} ${t.lun}` }),
  initiatorTargetMap: fc.option(fc.dictionary(wwpn, fc.array(wwpn, { maxLength: 3 }), { maxKeys: 3 }), { nil: null }),
  deviceWwid: fc.option(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9.:_-]{0,40}$/), { nil: null }),
});

const anyProps: fc.Arbitrary<ConnectionProperties> = fc.oneof(iscsiProps, nvmeProps, fcProps, localProps);

// ---------------------------------------------------------------------------------------------
// decode(encode(p)) == p

/** decode(encode(p)) is p for every p the arbitrary makes. */
function roundTrips<P>(arb: fc.Arbitrary<P>, codec: { encode(p: P): unknown; decode(data: unknown): P }): void {
  fc.assert(
    fc.property(arb, (p) => {
      expect(codec.decode(codec.encode(p))).toEqual(p);
    }),
    RUNS,
  );
}

describe('os-brick codecs: decode(encode(p)) is p', () => {
  it('iSCSI: IPv4, IPv6 and host-name portals, LUNs past 255, several paths, CHAP or none', () => roundTrips(iscsiProps, iscsi));

  it('NVMe-oF: uuid, nguid, nsid and host NQN each present or not', () => roundTrips(nvmeProps, nvmeof));

  it('local: device paths under /dev', () => roundTrips(localProps, local));

  it('FC: one or several target ports, one LUN for all or one each, with or without the initiator-target map', () => roundTrips(fcProps, fcCodec));

  it('through normalise, wrapped or bare, after JSON, with or without the target API options', () => {
    fc.assert(
      fc.property(anyProps, fc.boolean(), (p, target) => {
        const opts = target ? TARGET_ENCODING : {};
        const info = toConnectionInfo(p, opts);
        expect(info.driver_volume_type).toBe(DRIVER_VOLUME_TYPE[p.protocol]);
        expect(normalise(p.protocol, info)).toEqual(p);
        expect(normalise(p.protocol, osBrickData(p, opts))).toEqual(p);
        expect(normalise(p.protocol, JSON.parse(JSON.stringify(info)))).toEqual(p);
      }),
      RUNS,
    );
  });

  it('writes ns_id as a decimal string, and the plural iSCSI keys only for several paths unless asked', () => {
    fc.assert(
      fc.property(nvmeProps, (p) => {
        const data = osBrickData(p);
        expect(data.ns_id).toBe(p.nsid === null ? undefined : String(p.nsid));
        expect(Object.hasOwn(data, 'ns_id')).toBe(p.nsid !== null);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(iscsiProps, (p) => {
        expect(Object.hasOwn(osBrickData(p), 'target_portals')).toBe(p.paths.length > 1);
        expect(osBrickData(p, { multipath: true }).target_luns).toEqual(p.paths.map((x) => x.lun));
      }),
      RUNS,
    );
  });

  it('gives a dict that fits Record<string, unknown> (what an external connector program is sent)', () => {
    const p: ConnectionProperties = { protocol: 'local', devicePath: '/dev/vdb' };
    const dict: Record<string, unknown> = osBrickData(p);
    expect(dict).toEqual({ device_path: '/dev/vdb' });
  });
});

// ---------------------------------------------------------------------------------------------
// Payload spellings os-brick accepts: normalise(encode(normalise(x))) == normalise(x)

interface Variant {
  payload: unknown;
  protocol: Protocol;
  /** What normalise(payload) must give. */
  expected: ConnectionProperties;
}

const wrap = (protocol: Protocol, data: Record<string, unknown>, how: number): unknown => {
  const names: Record<Protocol, string[]> = { iscsi: ['iscsi', 'iSCSI', 'ISCSI'], nvmeof: ['nvmeof', 'NVMeOF', 'NVMEOF'], fc: ['fibre_channel', 'FIBRE_CHANNEL', 'Fibre_Channel'], local: ['local', 'LOCAL', 'Local'] };
  return how === 0 ? data : { driver_volume_type: names[protocol][how - 1], data };
};

const cinderExtras = fc.option(fc.record({ access_mode: fc.constantFrom('rw', 'ro'), encrypted: fc.boolean(), discard: fc.boolean(), qos_specs: fc.constant(null), target_discovered: fc.boolean() }), { nil: null });

const iscsiVariant: fc.Arbitrary<Variant> = fc
  .tuple(
    iscsiProps,
    fc.record({
      plural: fc.boolean(),
      lunsAs: fc.constantFrom('list', 'single', 'empty-list'),
      singularToo: fc.boolean(),
      dropDefaultPort: fc.boolean(),
      duplicate: fc.boolean(),
      noAuthNoise: fc.constantFrom('absent', 'null', 'empty'),
      wrap: fc.integer({ min: 0, max: 3 }),
      extras: cinderExtras,
    }),
  )
  .map(([p, c]) => {
    const portalOf = (s: string): string => (c.dropDefaultPort && s.endsWith(':3260') ? s.slice(0, -':3260'.length) : s);
    let paths = p.paths;
    const plural = c.plural || paths.length > 1;
    const data: Record<string, unknown> = {};
    if (plural) {
      if (c.duplicate) paths = [...paths, paths[0]!];
      data.target_portals = paths.map((x) => portalOf(x.portal));
      data.target_iqns = paths.map((x) => x.iqn);
      const oneLun = paths.every((x) => x.lun === paths[0]!.lun);
      if (c.lunsAs === 'list' || !oneLun) data.target_luns = paths.map((x) => x.lun);
      else {
        if (c.lunsAs === 'empty-list') data.target_luns = [];
        data.target_lun = paths[0]!.lun;
      }
      if (c.singularToo) Object.assign(data, { target_portal: portalOf(paths[0]!.portal), target_iqn: paths[0]!.iqn, target_lun: paths[0]!.lun });
    } else {
      Object.assign(data, { target_portal: portalOf(paths[0]!.portal), target_iqn: paths[0]!.iqn, target_lun: paths[0]!.lun });
    }
    if (p.volumeId !== null) data.volume_id = p.volumeId;
    if (p.auth) Object.assign(data, { auth_method: 'CHAP', auth_username: p.auth.username, auth_password: p.auth.password });
    else if (c.noAuthNoise !== 'absent') Object.assign(data, { auth_method: c.noAuthNoise === 'null' ? null : '', auth_username: 'ignored', auth_password: 'ignored' });
    if (p.discoveryAuth) Object.assign(data, { discovery_auth_method: 'CHAP', discovery_auth_username: p.discoveryAuth.username, discovery_auth_password: p.discoveryAuth.password });
    if (p.deviceWwid !== null) data.device_wwid = p.deviceWwid;
    else if (c.noAuthNoise === 'null') data.device_wwid = null;
    if (c.extras) Object.assign(data, c.extras);
    return { payload: wrap('iscsi', data, c.wrap), protocol: 'iscsi' as const, expected: p };
  });

const dashedLikeUuid = (hex: string): string => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;

const nvmeVariant: fc.Arbitrary<Variant> = fc
  .tuple(
    nvmeProps,
    fc.record({
      oldFormat: fc.boolean(),
      uuidDashes: fc.boolean(),
      uuidUpper: fc.boolean(),
      nguidDashed: fc.boolean(),
      nguidUpper: fc.boolean(),
      nsidAsString: fc.boolean(),
      portAsString: fc.boolean(),
      transport: fc.constantFrom('tcp', 'TCP', 'Tcp'),
      duplicate: fc.boolean(),
      absentAsNull: fc.boolean(),
      wrap: fc.integer({ min: 0, max: 3 }),
      extras: cinderExtras,
    }),
  )
  .map(([p, c]) => {
    const portOf = (n: number): number | string => (c.portAsString ? String(n) : n);
    const data: Record<string, unknown> = {};
    let expected: NvmeProperties = p;
    if (c.oldFormat && p.portals.length === 1) {
      const only = p.portals[0]!;
      Object.assign(data, { nqn: p.nqn, target_portal: only.address, target_port: portOf(only.port), transport_type: c.transport });
      // The older format has no vol_uuid: os-brick (and decode) take none.
      if (p.uuid !== null) data.vol_uuid = p.uuid;
      expected = { ...p, uuid: null };
    } else {
      data.target_nqn = p.nqn;
      const portals = p.portals.map((x) => [x.address, portOf(x.port), c.transport]);
      data.portals = c.duplicate ? [...portals, portals[0]!] : portals;
      if (p.uuid !== null) {
        const u = c.uuidDashes ? p.uuid : p.uuid.replace(/-/g, '');
        data.vol_uuid = c.uuidUpper ? u.toUpperCase() : u;
      }
    }
    if (p.nguid !== null) {
      const n = c.nguidDashed ? dashedLikeUuid(p.nguid) : p.nguid;
      data.volume_nguid = c.nguidUpper ? n.toUpperCase() : n;
    }
    if (p.nsid !== null) data.ns_id = c.nsidAsString ? String(p.nsid) : p.nsid;
    if (p.hostNqn !== null) data.host_nqn = p.hostNqn;
    if (c.absentAsNull) {
      for (const k of ['vol_uuid', 'volume_nguid', 'ns_id', 'host_nqn', 'volume_replicas']) if (!Object.hasOwn(data, k)) data[k] = null;
    }
    if (c.extras) Object.assign(data, c.extras);
    return { payload: wrap('nvmeof', data, c.wrap), protocol: 'nvmeof' as const, expected };
  });

const localVariant: fc.Arbitrary<Variant> = fc
  .tuple(localProps, fc.integer({ min: 0, max: 3 }), cinderExtras)
  .map(([p, how, extras]) => ({ payload: wrap('local', { device_path: p.devicePath, ...(extras ?? {}) }, how), protocol: 'local' as const, expected: p }));

/**
 * FC as Cinder's drivers spell it: target_wwn one name or a list, in any case; target_wwns with
 * target_luns; target_lun for every port; the map's names in any case.
 */
const fcVariant: fc.Arbitrary<Variant> = fc
  .tuple(fcProps, fc.record({ upper: fc.boolean(), plural: fc.boolean(), wrap: fc.integer({ min: 0, max: 3 }), extras: cinderExtras }))
  .map(([p, o]) => {
    const name = (w: string): string => (o.upper ? w.toUpperCase() : w);
    const oneLun = p.targets.every((t) => t.lun === p.targets[0]!.lun);
    const data: Record<string, unknown> =
      oneLun && !o.plural
        ? { target_wwn: p.targets.length === 1 && o.upper ? name(p.targets[0]!.wwpn) : p.targets.map((t) => name(t.wwpn)), target_lun: p.targets[0]!.lun }
        : { target_wwns: p.targets.map((t) => name(t.wwpn)), target_luns: p.targets.map((t) => t.lun), target_wwn: 'ignored when target_wwns is given' };
    if (p.initiatorTargetMap) data.initiator_target_map = Object.fromEntries(Object.entries(p.initiatorTargetMap).map(([k, v]) => [name(k), v.map(name)]));
    if (p.volumeId !== null) data.volume_id = p.volumeId;
    if (p.deviceWwid !== null) data.device_wwid = p.deviceWwid;
    return { payload: wrap('fc', { ...data, ...(o.extras ?? {}) }, o.wrap), protocol: 'fc' as const, expected: p };
  });

describe('os-brick codecs: payload spellings normalise to properties that round-trip', () => {
  for (const [name, variant] of [
    ['FC (target_wwn one name or a list, target_wwns with target_luns, names in upper case)', fcVariant],
    ['iSCSI (singular or plural keys, target_luns or target_lun, default port left out, duplicate paths, empty auth_method)', iscsiVariant],
    ['NVMe-oF (current or older format, uuid with or without dashes and upper case, nguid dashed, ns_id string or number)', nvmeVariant],
    ['local', localVariant],
  ] as const) {
    it(name, () => {
      fc.assert(
        fc.property(variant, fc.boolean(), ({ payload, protocol, expected }, wrapped) => {
          const n = normalise(protocol, payload);
          expect(n).toEqual(expected);
          const again = wrapped ? toConnectionInfo(n) : osBrickData(n);
          expect(normalise(protocol, again)).toEqual(n);
          expect(normalise(protocol, JSON.parse(JSON.stringify(again)))).toEqual(n);
        }),
        RUNS,
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The target API's builders go through the same encoder

const iscsiFacts = fc.record({
  id: uuid,
  iqn,
  lun,
  portals: fc.uniqueArray(fc.tuple(ipv4, port).map(([h, p]) => `${h}:${p}`), { minLength: 1, maxLength: 4 }),
  chap: fc.option(fc.record({ username: text, password: text }), { nil: undefined }),
});

const nvmeFacts = fc.record({
  nqn,
  nsid: fc.integer({ min: 1, max: 1024 }),
  uuid,
  nguid,
  portals: fc.uniqueArray(fc.record({ address: ipv4, port }), { minLength: 1, maxLength: 4, selector: (p) => `${p.address} ${p.port}` }),
  hostNqn: fc.option(nqn, { nil: undefined }),
});

const TARGET_ONLY_KEYS = ['target_discovered', 'access_mode', 'encrypted', 'discard'];
const without = (d: Record<string, unknown>, keys: string[]): Record<string, unknown> => Object.fromEntries(Object.entries(d).filter(([k]) => !keys.includes(k)));

describe('target builders and osBrickData agree', () => {
  it('iSCSI: the same volume facts give the same dict', () => {
    fc.assert(
      fc.property(iscsiFacts, (facts) => {
        const props = iscsiVolumeProperties(facts);
        const info = iscsiConnectionInfo(facts);
        expect(info).toEqual({ driver_volume_type: 'iscsi', data: osBrickData(props, TARGET_ENCODING) });
        // Beyond the target API's options (lists for one portal too, attachment keys) they are one dict.
        const plain = osBrickData(props);
        const extra = facts.portals.length > 1 ? TARGET_ONLY_KEYS : [...TARGET_ONLY_KEYS, 'target_portals', 'target_iqns', 'target_luns'];
        expect(without(info.data, extra)).toEqual(plain);
        expect(normalise('iscsi', info)).toEqual(props);
        expect(normalise('iscsi', plain)).toEqual(props);
      }),
      RUNS,
    );
  });

  it('NVMe-oF: the same volume facts give the same dict', () => {
    fc.assert(
      fc.property(nvmeFacts, (facts) => {
        const props = nvmeofVolumeProperties(facts);
        const info = nvmeofConnectionInfo(facts);
        expect(info).toEqual({ driver_volume_type: 'nvmeof', data: osBrickData(props, TARGET_ENCODING) });
        expect(without(info.data, TARGET_ONLY_KEYS)).toEqual(osBrickData(props));
        expect(info.data.ns_id).toBe(String(facts.nsid));
        expect(normalise('nvmeof', info)).toEqual(props);
      }),
      RUNS,
    );
  });
});

describe('the FC codec refuses what os-brick could not use, saying what to send', () => {
  const refusal = (data: unknown): { code: string; message: string } => {
    try {
      normalise('fc', data);
    } catch (e) {
      return { code: (e as { code: string }).code, message: (e as Error).message };
    }
    throw new Error('accepted');
  };

  it('a WWPN with 0x or colons (os-brick would build a name with 0x0x), naming the form it takes', () => {
    expect(refusal({ target_wwn: ['0x20005254004c0102'], target_lun: 0 })).toMatchObject({ code: 'BAD_WWPN', message: expect.stringContaining('"20005254004c0102"') });
    expect(refusal({ target_wwn: '20:00:52:54:00:4c:01:02', target_lun: 0 })).toMatchObject({ code: 'BAD_WWPN', message: expect.stringMatching(/^target_wwn: .*16 hex digits/) });
    expect(refusal({ target_wwn: ['20005254004c01'], target_lun: 0 })).toMatchObject({ code: 'BAD_WWPN', message: expect.stringContaining('target_wwn[0]') });
  });

  it('no target port, an empty list, a missing LUN, lists of different lengths', () => {
    expect(refusal({ target_lun: 0 })).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/^target_wwn: missing/) });
    expect(refusal({ target_wwn: [], target_lun: 0 })).toMatchObject({ code: 'BAD_WWPN' });
    expect(refusal({ target_wwn: ['20005254004c0102'] })).toMatchObject({ message: expect.stringMatching(/^target_lun: missing/) });
    expect(refusal({ target_wwns: ['20005254004c0102', '20005254004c0202', '20005254004c0302'], target_luns: [1, 2] })).toMatchObject({ message: expect.stringMatching(/^target_luns: has 2 entries but target_wwns has 3/) });
    expect(refusal({ target_wwn: ['20005254004c0102'], target_lun: '1' })).toMatchObject({ code: 'BAD_LUN' });
  });

  it('takes what os-brick takes: one LUN in target_luns for every port, an empty target_wwns beside target_wwn', () => {
    expect(normalise('fc', { target_wwns: ['20005254004c0102', '20005254004c0202'], target_luns: [3] })).toMatchObject({ targets: [{ wwpn: '20005254004c0102', lun: 3 }, { wwpn: '20005254004c0202', lun: 3 }] });
    expect(normalise('fc', { target_wwns: [], target_wwn: '20005254004C0102', target_lun: 4 })).toMatchObject({ targets: [{ wwpn: '20005254004c0102', lun: 4 }] });
  });

  it('a malformed initiator_target_map, and properties of another protocol', () => {
    expect(refusal({ target_wwn: ['20005254004c0102'], target_lun: 0, initiator_target_map: ['x'] })).toMatchObject({ message: expect.stringMatching(/^initiator_target_map: must be an object/) });
    expect(refusal({ target_wwn: ['20005254004c0102'], target_lun: 0, initiator_target_map: { '20005254004c0101': '20005254004c0102' } })).toMatchObject({ code: 'BAD_WWPN' });
    expect(refusal({ driver_volume_type: 'iscsi', data: { target_wwn: ['20005254004c0102'], target_lun: 0 } })).toMatchObject({ code: 'WRONG_VOLUME_TYPE', message: expect.stringContaining('"fibre_channel"') });
  });
});

describe('target builders and osBrickData agree: FC', () => {
  const fcFacts = fc.record({ id: uuid, wwpns: fc.uniqueArray(wwpn, { minLength: 1, maxLength: 2 }), lun: fc.integer({ min: 0, max: 255 }), initiatorTargetMap: fc.option(fc.dictionary(wwpn, fc.array(wwpn, { maxLength: 2 }), { maxKeys: 2 }), { nil: undefined }) });
  it('the same volume facts give the same dict, target_wwn a list and one target_lun as Cinder\'s FC drivers send them', () => {
    fc.assert(
      fc.property(fcFacts, (facts) => {
        const props = fcVolumeProperties(facts);
        const info = fcConnectionInfo(facts);
        expect(info).toEqual({ driver_volume_type: 'fibre_channel', data: osBrickData(props, TARGET_ENCODING) });
        expect(info.data.target_wwn).toEqual(facts.wwpns);
        expect(info.data.target_lun).toBe(facts.lun);
        expect(normalise('fc', info)).toEqual(props);
      }),
      RUNS,
    );
  });
});
