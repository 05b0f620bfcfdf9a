import { describe, expect, it } from 'vitest';
import { byPathName, lunForPath } from '../../src/volume/bypath.js';
import { checkIqn, normalPortal, parsePortal } from '../../src/volume/fields.js';
import { iscsiConnectionInfo, normalise, nvmeofConnectionInfo } from '../../src/osbrick/index.js';
import type { IscsiProperties, NvmeProperties } from '../../src/volume/properties.js';
import { decode as normaliseIscsi } from '../../src/osbrick/iscsi.js';
import { decode as normaliseLocal } from '../../src/osbrick/local.js';
import { decode as normaliseNvme } from '../../src/osbrick/nvmeof.js';
import { expectRefused } from './refusal.js';
import { nguidFromUuid } from '../../src/volume/ids.js';


const ID = '9a0d35d0-175a-11e4-8c21-0800200c9a66';
const IQN = 'iqn.2010-10.org.openstack:volume-9a0d35d0';
const IQN2 = 'iqn.2026-11.io.brick-lab:lab.vol2';
const NQN = 'nqn.2026-11.io.brick-lab:lab.vol1';
const HOST_NQN = 'nqn.2014-08.org.nvmexpress:uuid:beaae2de-3a97-4be1-a739-6ac4bc5bf138';
const UUID = 'c20aba21-6ef6-446b-b374-45733b4883ba';

describe('normaliseIscsi', () => {
  it('reads the singular keys as one path', () => {
    expect(normaliseIscsi({ target_portal: '10.0.1.1:3260', target_iqn: IQN, target_lun: 1 })).toEqual({
      protocol: 'iscsi',
      volumeId: null,
      paths: [{ portal: '10.0.1.1:3260', iqn: IQN, lun: 1 }],
      auth: null,
      discoveryAuth: null,
      deviceWwid: null,
    } satisfies IscsiProperties);
  });

  it('keeps each (portal, target, LUN) once, in the order first listed, in a short list and in a long one', () => {
    const portals = ['10.0.1.1:3260', '10.0.2.1', '10.0.1.1'];
    const short = normaliseIscsi({ target_portals: portals, target_iqns: portals.map(() => IQN), target_lun: 3 });
    expect(short.paths).toEqual([{ portal: '10.0.1.1:3260', iqn: IQN, lun: 3 }, { portal: '10.0.2.1:3260', iqn: IQN, lun: 3 }]);
    // 40 entries, 20 paths each listed twice: the long list is matched through a set of keys.
    const many = Array.from({ length: 20 }, (_, i) => `10.0.3.${i + 1}:3260`);
    const long = normaliseIscsi({ target_portals: [...many, ...many], target_iqns: [...many, ...many].map(() => IQN), target_luns: [...many, ...many].map(() => 5) });
    expect(long.paths).toEqual(many.map((portal) => ({ portal, iqn: IQN, lun: 5 })));
  });

  it('writes out the default port 3260 when the portal has none', () => {
    expect(normaliseIscsi({ target_portal: '10.0.1.1', target_iqn: IQN, target_lun: 0 }).paths).toEqual([{ portal: '10.0.1.1:3260', iqn: IQN, lun: 0 }]);
  });

  it('prefers the plural keys over the singular ones', () => {
    const p = normaliseIscsi({
      volume_id: ID,
      target_portal: '10.0.9.9:3260',
      target_iqn: IQN2,
      target_lun: 9,
      target_portals: ['10.0.1.1:3260', '10.0.2.1:3261'],
      target_iqns: [IQN, IQN2],
      target_luns: [1, 2],
    });
    expect(p.volumeId).toBe(ID);
    expect(p.paths).toEqual([
      { portal: '10.0.1.1:3260', iqn: IQN, lun: 1 },
      { portal: '10.0.2.1:3261', iqn: IQN2, lun: 2 },
    ]);
  });

  it('uses target_lun for every portal when target_luns is missing (or empty, as os-brick)', () => {
    const base = { target_portals: ['10.0.1.1:3260', '10.0.2.1'], target_iqns: [IQN, IQN], target_lun: 4 };
    const expected = [
      { portal: '10.0.1.1:3260', iqn: IQN, lun: 4 },
      { portal: '10.0.2.1:3260', iqn: IQN, lun: 4 },
    ];
    expect(normaliseIscsi(base).paths).toEqual(expected);
    expect(normaliseIscsi({ ...base, target_luns: [] }).paths).toEqual(expected);
    expect(normaliseIscsi({ ...base, target_luns: null }).paths).toEqual(expected);
  });

  it('falls back to the singular keys when only one of target_portals / target_iqns is there', () => {
    const p = normaliseIscsi({ target_portal: '10.0.1.1:3260', target_iqn: IQN, target_lun: 1, target_portals: ['10.0.2.1:3260'] });
    expect(p.paths).toEqual([{ portal: '10.0.1.1:3260', iqn: IQN, lun: 1 }]);
  });

  it('keeps one path per distinct (portal, iqn, lun)', () => {
    const p = normaliseIscsi({ target_portals: ['10.0.1.1:3260', '10.0.1.1'], target_iqns: [IQN, IQN], target_luns: [1, 1] });
    expect(p.paths).toEqual([{ portal: '10.0.1.1:3260', iqn: IQN, lun: 1 }]);
  });

  it('takes IPv6 portals in brackets, with or without a port, and host names', () => {
    const p = normaliseIscsi({ target_portals: ['[fe80::1]:3260', '[fd00:10::2]', 'target.lab:3262'], target_iqns: [IQN, IQN, IQN], target_lun: 0 });
    expect(p.paths.map((x) => x.portal)).toEqual(['[fe80::1]:3260', '[fd00:10::2]:3260', 'target.lab:3262']);
  });

  it('reads CHAP for the session and for discovery', () => {
    const p = normaliseIscsi({
      target_portal: '10.0.1.1:3260',
      target_iqn: IQN,
      target_lun: 1,
      auth_method: 'CHAP',
      auth_username: 'u',
      auth_password: 'p4ssw0rd-12345',
      discovery_auth_method: 'CHAP',
      discovery_auth_username: 'du',
      discovery_auth_password: 'dp',
    });
    expect(p.auth).toEqual({ method: 'CHAP', username: 'u', password: 'p4ssw0rd-12345' });
    expect(p.discoveryAuth).toEqual({ method: 'CHAP', username: 'du', password: 'dp' });
  });

  it('ignores credentials without a method, as os-brick does', () => {
    const p = normaliseIscsi({ target_portal: '10.0.1.1', target_iqn: IQN, target_lun: 1, auth_method: null, auth_username: 'u', auth_password: 'p' });
    expect(p.auth).toBeNull();
  });

  it('reads device_wwid when the payload names it', () => {
    const p = normaliseIscsi({ target_portal: '10.0.1.1', target_iqn: IQN, target_lun: 1, device_wwid: '360014059a0d35d0175a11e48c210800' });
    expect(p.deviceWwid).toBe('360014059a0d35d0175a11e48c210800');
  });

  it('round-trips the payload our target API makes, in both wrappings and through JSON', () => {
    const info = iscsiConnectionInfo({ id: ID, iqn: IQN, lun: 300, portals: ['10.10.1.10:3260', '10.10.2.10:3260'], chap: { username: 'user1', password: 'secret-12345' } });
    const expected: IscsiProperties = {
      protocol: 'iscsi',
      volumeId: ID,
      paths: [
        { portal: '10.10.1.10:3260', iqn: IQN, lun: 300 },
        { portal: '10.10.2.10:3260', iqn: IQN, lun: 300 },
      ],
      auth: { method: 'CHAP', username: 'user1', password: 'secret-12345' },
      discoveryAuth: null,
      deviceWwid: null,
    };
    expect(normalise('iscsi', info)).toEqual(expected);
    expect(normalise('iscsi', JSON.parse(JSON.stringify(info)))).toEqual(expected);
    expect(normalise('iscsi', info.data)).toEqual(expected);
    expect(normalise('iscsi', { ...info, driver_volume_type: 'iSCSI' })).toEqual(expected);
    expect(expected.paths.map(byPathName)).toEqual([
      `ip-10.10.1.10:3260-iscsi-${IQN}-lun-0x012c000000000000`,
      `ip-10.10.2.10:3260-iscsi-${IQN}-lun-0x012c000000000000`,
    ]);
  });

  it('does not echo a password it refuses', () => {
    const err = expectRefused(
      () => normaliseIscsi({ target_portal: '10.0.1.1', target_iqn: IQN, target_lun: 1, auth_method: 'CHAP', auth_username: 'u', auth_password: 'secret\nnode.startup = manual' }),
      'BAD_REQUEST',
      'auth_password',
    );
    expect(err.message).not.toContain('secret');
  });
});

describe('normaliseNvme', () => {
  it('reads the current format', () => {
    const p = normaliseNvme({
      target_nqn: NQN,
      portals: [
        ['10.0.1.1', 4420, 'tcp'],
        ['fd00:10::2', '4421', 'TCP'],
      ],
      vol_uuid: UUID,
      ns_id: '1',
      host_nqn: HOST_NQN,
    });
    expect(p).toEqual({
      protocol: 'nvmeof',
      nqn: NQN,
      portals: [
        { address: '10.0.1.1', port: 4420, transport: 'tcp' },
        { address: 'fd00:10::2', port: 4421, transport: 'tcp' },
      ],
      uuid: UUID,
      nguid: null,
      nsid: 1,
      hostNqn: HOST_NQN,
    } satisfies NvmeProperties);
  });

  it('reads the older format (nqn, transport_type, target_portal, target_port) and drops vol_uuid as os-brick does', () => {
    const p = normaliseNvme({
      nqn: NQN,
      transport_type: 'tcp',
      target_portal: '10.0.1.1',
      target_port: '4420',
      ns_id: 7,
      volume_nguid: 'C20ABA21-6EF6-446B-B374-45733B4883BA',
      vol_uuid: UUID,
    });
    expect(p).toEqual({
      protocol: 'nvmeof',
      nqn: NQN,
      portals: [{ address: '10.0.1.1', port: 4420, transport: 'tcp' }],
      uuid: null,
      nguid: 'c20aba216ef6446bb37445733b4883ba',
      nsid: 7,
      hostNqn: null,
    } satisfies NvmeProperties);
  });

  it('normalises vol_uuid to lowercase with dashes and volume_nguid to 32 lowercase hex digits', () => {
    const p = normaliseNvme({ target_nqn: NQN, portals: [['10.0.1.1', 4420, 'tcp']], vol_uuid: UUID.replace(/-/g, '').toUpperCase(), volume_nguid: UUID });
    expect(p.uuid).toBe(UUID);
    expect(p.nguid).toBe('c20aba216ef6446bb37445733b4883ba');
  });

  it('round-trips the payload our target API makes', () => {
    const info = nvmeofConnectionInfo({
      nqn: NQN,
      nsid: 17,
      uuid: UUID,
      nguid: nguidFromUuid(UUID),
      portals: [
        { address: '10.10.1.10', port: 4420 },
        { address: '10.10.2.10', port: 4420 },
      ],
      hostNqn: HOST_NQN,
    });
    const expected: NvmeProperties = {
      protocol: 'nvmeof',
      nqn: NQN,
      portals: [
        { address: '10.10.1.10', port: 4420, transport: 'tcp' },
        { address: '10.10.2.10', port: 4420, transport: 'tcp' },
      ],
      uuid: UUID,
      nguid: nguidFromUuid(UUID),
      nsid: 17,
      hostNqn: HOST_NQN,
    };
    expect(normalise('nvmeof', info)).toEqual(expected);
    expect(normalise('nvmeof', JSON.parse(JSON.stringify(info)))).toEqual(expected);
    expect(normalise('nvmeof', info.data)).toEqual(expected);
  });
});

describe('normaliseLocal', () => {
  it('takes an absolute path under /dev', () => {
    expect(normaliseLocal({ device_path: '/dev/vdb' })).toEqual({ protocol: 'local', devicePath: '/dev/vdb' });
    expect(normalise('local', { driver_volume_type: 'local', data: { device_path: '/dev/disk/by-id/virtio-vol1' } })).toEqual({
      protocol: 'local',
      devicePath: '/dev/disk/by-id/virtio-vol1',
    });
  });
});

describe('lunForPath and byPathName', () => {
  it.each([
    [0, '0'],
    [1, '1'],
    [255, '255'],
    [256, '0x0100000000000000'],
    [300, '0x012c000000000000'],
    [16383, '0x3fff000000000000'],
    [65536, '0x0000000100000000'],
  ])('writes LUN %i as %s', (lun, text) => {
    expect(lunForPath(lun)).toBe(text);
  });

  it('refuses a LUN that is not a whole number from 0', () => {
    expectRefused(() => lunForPath(-1), 'BAD_LUN', 'lun');
    expectRefused(() => lunForPath(1.5), 'BAD_LUN', 'lun');
  });

  it('names an IPv4 path', () => {
    expect(byPathName({ portal: '10.0.1.1:3260', iqn: IQN, lun: 1 })).toBe(`ip-10.0.1.1:3260-iscsi-${IQN}-lun-1`);
  });

  it('strips the brackets of an IPv6 portal, as udev and os-brick do', () => {
    const [path] = normaliseIscsi({ target_portal: '[fe80::1]:3260', target_iqn: IQN, target_lun: 0 }).paths;
    expect(byPathName(path!)).toBe(`ip-fe80::1:3260-iscsi-${IQN}-lun-0`);
  });

  it.each([
    [0, 'lun-0'],
    [255, 'lun-255'],
    [256, 'lun-0x0100000000000000'],
    [300, 'lun-0x012c000000000000'],
  ])('ends the name of LUN %i in %s', (lun, tail) => {
    expect(byPathName({ portal: '10.0.1.1:3260', iqn: IQN, lun })).toBe(`ip-10.0.1.1:3260-iscsi-${IQN}-${tail}`);
  });
});

describe('parsePortal', () => {
  it.each([
    ['10.0.1.1:3260', { host: '10.0.1.1', port: 3260, ipv6: false }],
    ['10.0.1.1', { host: '10.0.1.1', port: 3260, ipv6: false }],
    ['target.lab:3261', { host: 'target.lab', port: 3261, ipv6: false }],
    ['[fe80::1]:3260', { host: 'fe80::1', port: 3260, ipv6: true }],
    ['[fe80::1]', { host: 'fe80::1', port: 3260, ipv6: true }],
    ['10.0.1.1:65535', { host: '10.0.1.1', port: 65535, ipv6: false }],
  ])('reads %s', (portal, parsed) => {
    expect(parsePortal(portal, 'target_portal')).toEqual(parsed);
  });

  it.each([
    ['10.0.1.1:0', 'port 0'],
    ['10.0.1.1:65536', 'port above 65535'],
    ['10.0.1.1:', 'empty port'],
    ['10.0.1.1:abc', 'port not a number'],
    [':3260', 'empty host'],
    ['[]:3260', 'empty IPv6 host'],
    ['fe80::1:3260', 'IPv6 without brackets'],
    ['fe80::1', 'IPv6 without brackets, even without a port'],
    ['[10.0.1.1]:3260', 'IPv4 in brackets'],
    ['[fe80::1]3260', 'junk after the bracket'],
    ['10.0.1.256:3260', 'bad IPv4'],
    ['bad_host:3260', 'bad host name'],
    ['10.0.1.1 :3260', 'white space'],
    ['', 'empty'],
    [3260, 'not a string'],
  ])('refuses %j (%s)', (portal, _why) => {
    expectRefused(() => parsePortal(portal, 'target_portals[1]'), 'BAD_PORTAL', 'target_portals[1]');
  });

  it.each([
    ['10.10.1.10:3260;touch /tmp/x', ["';'", "' ' (a space)", "'/'"]],
    ['10.10.1.10:3260\u0000', ['U+0000']],
    ['１0.10.1.10:3260', ["U+FF11 '１'"]],
    ['10.10.1.10:3260$(id)', ["'$'", "'('", "')'"]],
  ])('names the characters a portal cannot hold in %j', (portal, named) => {
    let message = '';
    try {
      parsePortal(portal, 'target_portal');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^target_portal: .* which a portal cannot hold: a portal is "host:port"/);
    for (const n of named) expect(message).toContain(n);
  });

  it('remembers what passed (the same answer, frozen) and never what was refused: a refusal is made again, with the field it is asked for', () => {
    const first = parsePortal('10.0.9.9:3260', 'target_portal');
    expect(parsePortal('10.0.9.9:3260', 'target_portals[3]')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(normalPortal('10.0.9.9', 'target_portal')).toBe('10.0.9.9:3260');
    expect(normalPortal('10.0.9.9', 'target_portal')).toBe('10.0.9.9:3260');
    expect(checkIqn('iqn.2026-11.io.brick-lab:remembered', 'target_iqn')).toBe('iqn.2026-11.io.brick-lab:remembered');
    expect(checkIqn('iqn.2026-11.io.brick-lab:remembered', 'target_iqns[1]')).toBe('iqn.2026-11.io.brick-lab:remembered');
    for (const field of ['target_portal', 'target_portals[2]']) {
      expectRefused(() => parsePortal('10.0.9.9:3260;id', field), 'BAD_PORTAL', field);
      expectRefused(() => normalPortal('10.0.9.9:0', field), 'BAD_PORTAL', field);
      expectRefused(() => checkIqn('iqn.2026-11.lab:x', field), 'BAD_IQN', field);
    }
  });
});

describe('refusals', () => {
  const one = { target_portal: '10.0.1.1:3260', target_iqn: IQN, target_lun: 1 };
  const plural = { target_portals: ['10.0.1.1:3260', '10.0.2.1:3260'], target_iqns: [IQN, IQN], target_luns: [1, 1] };
  const nvme = { target_nqn: NQN, portals: [['10.0.1.1', 4420, 'tcp']], vol_uuid: UUID, ns_id: '1' };

  it.each([
    ['a malformed IQN', { ...one, target_iqn: 'iqn.2026-11.lab:x' }, 'BAD_IQN', 'target_iqn'],
    ['a malformed IQN in a list', { ...plural, target_iqns: [IQN, 'IQN.bad'] }, 'BAD_IQN', 'target_iqns[1]'],
    ['a malformed portal', { ...one, target_portal: '10.0.1.1:99999' }, 'BAD_PORTAL', 'target_portal'],
    ['a malformed portal in a list', { ...plural, target_portals: ['10.0.1.1:3260', 'fe80::1:3260'] }, 'BAD_PORTAL', 'target_portals[1]'],
    ['a LUN above 16383', { ...one, target_lun: 16384 }, 'BAD_LUN', 'target_lun'],
    ['a negative LUN', { ...one, target_lun: -1 }, 'BAD_LUN', 'target_lun'],
    ['a fractional LUN', { ...one, target_lun: 1.5 }, 'BAD_LUN', 'target_lun'],
    ['a LUN as a numeric string', { ...one, target_lun: '1' }, 'BAD_LUN', 'target_lun'],
    ['a LUN that is a boolean', { ...one, target_lun: true }, 'BAD_LUN', 'target_lun'],
    ['a numeric-string LUN in a list', { ...plural, target_luns: [1, '1'] }, 'BAD_LUN', 'target_luns[1]'],
    ['target_luns not a list', { ...plural, target_luns: 1 }, 'BAD_LUN', 'target_luns'],
    ['fewer IQNs than portals', { ...plural, target_iqns: [IQN] }, 'BAD_REQUEST', 'target_iqns'],
    ['more LUNs than portals', { ...plural, target_luns: [1, 1, 1] }, 'BAD_REQUEST', 'target_luns'],
    ['empty plural lists', { ...plural, target_portals: [], target_iqns: [] }, 'BAD_REQUEST', 'target_portals'],
    ['plural keys with no LUN at all', { target_portals: plural.target_portals, target_iqns: plural.target_iqns }, 'BAD_REQUEST', 'target_luns'],
    ['no portal', { target_iqn: IQN, target_lun: 1 }, 'BAD_REQUEST', 'target_portal'],
    ['no IQN', { target_portal: '10.0.1.1', target_lun: 1 }, 'BAD_REQUEST', 'target_iqn'],
    ['no LUN', { target_portal: '10.0.1.1', target_iqn: IQN }, 'BAD_REQUEST', 'target_lun'],
    ['an auth method other than CHAP', { ...one, auth_method: 'chap', auth_username: 'u', auth_password: 'p' }, 'BAD_REQUEST', 'auth_method'],
    ['CHAP without a username', { ...one, auth_method: 'CHAP', auth_password: 'p' }, 'BAD_REQUEST', 'auth_username'],
    ['CHAP without a password', { ...one, auth_method: 'CHAP', auth_username: 'u' }, 'BAD_REQUEST', 'auth_password'],
    ['discovery CHAP with an empty password', { ...one, discovery_auth_method: 'CHAP', discovery_auth_username: 'u', discovery_auth_password: '' }, 'BAD_REQUEST', 'discovery_auth_password'],
    ['a volume_id that is not a string', { ...one, volume_id: 42 }, 'BAD_REQUEST', 'volume_id'],
    ['a device_wwid with a slash', { ...one, device_wwid: '../sda' }, 'BAD_REQUEST', 'device_wwid'],
  ])('iSCSI: refuses %s', (_what, data, code, field) => {
    expectRefused(() => normaliseIscsi(data), code, field);
    expectRefused(() => normalise('iscsi', { driver_volume_type: 'iscsi', data }), code, field);
  });

  it.each([
    ['a malformed target_nqn', { ...nvme, target_nqn: 'nqn.bad/x' }, 'BAD_NQN', 'target_nqn'],
    ['a malformed host_nqn', { ...nvme, host_nqn: 'host' }, 'BAD_NQN', 'host_nqn'],
    ['a malformed older-format nqn', { nqn: 'x', transport_type: 'tcp', target_portal: '10.0.1.1', target_port: 4420 }, 'BAD_NQN', 'nqn'],
    ['no NQN in either format', { portals: nvme.portals }, 'BAD_REQUEST', 'target_nqn'],
    ['no portals', { target_nqn: NQN }, 'BAD_REQUEST', 'portals'],
    ['an empty portal list', { ...nvme, portals: [] }, 'BAD_REQUEST', 'portals'],
    ['a portal that is not a triple', { ...nvme, portals: [['10.0.1.1', 4420]] }, 'BAD_REQUEST', 'portals[0]'],
    ['an rdma portal', { ...nvme, portals: [['10.0.1.1', 4420, 'rdma']] }, 'UNSUPPORTED_TRANSPORT', 'portals[0][2]'],
    ['a RoCEv2 portal', { ...nvme, portals: [['10.0.1.1', 4420, 'RoCEv2']] }, 'UNSUPPORTED_TRANSPORT', 'portals[0][2]'],
    ['an fc portal', { ...nvme, portals: [['10.0.1.1', 4420, 'fc']] }, 'UNSUPPORTED_TRANSPORT', 'portals[0][2]'],
    ['an older-format rdma transport', { nqn: NQN, transport_type: 'rdma', target_portal: '10.0.1.1', target_port: 4420 }, 'UNSUPPORTED_TRANSPORT', 'transport_type'],
    ['a port out of range', { ...nvme, portals: [['10.0.1.1', 70000, 'tcp']] }, 'BAD_PORTAL', 'portals[0][1]'],
    ['a port that is not a number', { ...nvme, portals: [['10.0.1.1', '44x', 'tcp']] }, 'BAD_PORTAL', 'portals[0][1]'],
    ['a bracketed address', { ...nvme, portals: [['[fe80::1]', 4420, 'tcp']] }, 'BAD_PORTAL', 'portals[0][0]'],
    ['an address with a port', { ...nvme, portals: [['10.0.1.1:4420', 4420, 'tcp']] }, 'BAD_PORTAL', 'portals[0][0]'],
    ['an empty address', { ...nvme, portals: [['', 4420, 'tcp']] }, 'BAD_PORTAL', 'portals[0][0]'],
    ['an older format without target_port', { nqn: NQN, transport_type: 'tcp', target_portal: '10.0.1.1' }, 'BAD_REQUEST', 'target_port'],
    ['an older format without transport_type', { nqn: NQN, target_portal: '10.0.1.1', target_port: 4420 }, 'BAD_REQUEST', 'transport_type'],
    ['a vol_uuid that is not a UUID', { ...nvme, vol_uuid: 'volume-1' }, 'BAD_REQUEST', 'vol_uuid'],
    ['an NGUID of the wrong length', { ...nvme, volume_nguid: 'c20aba21' }, 'BAD_REQUEST', 'volume_nguid'],
    ['ns_id 0', { ...nvme, ns_id: 0 }, 'BAD_REQUEST', 'ns_id'],
    ['a non-decimal ns_id', { ...nvme, ns_id: '0x1' }, 'BAD_REQUEST', 'ns_id'],
    ['replicated volumes', { ...nvme, volume_replicas: [nvme] }, 'BAD_REQUEST', 'volume_replicas'],
  ])('NVMe-oF: refuses %s', (_what, data, code, field) => {
    expectRefused(() => normaliseNvme(data), code, field);
    expectRefused(() => normalise('nvmeof', { driver_volume_type: 'nvmeof', data }), code, field);
  });

  it.each([
    ['a relative path', 'dev/sdb'],
    ['a path with ..', '/dev/../etc/passwd'],
    ['a path with .. deeper down', '/dev/disk/../../etc/shadow'],
    ['a path outside /dev', '/etc/passwd'],
    ['/dev itself', '/dev'],
    ['a path with a trailing slash', '/dev/sdb/'],
    ['an empty path', ''],
    ['a number', 5],
  ])('local: refuses %s', (_what, devicePath) => {
    expectRefused(() => normaliseLocal({ device_path: devicePath }), 'BAD_REQUEST', 'device_path');
  });

  it('local: names device_path when it is missing', () => {
    expectRefused(() => normaliseLocal({}), 'BAD_REQUEST', 'device_path');
  });

  it.each([
    ['null', null],
    ['a string', 'target_portal=10.0.1.1'],
    ['a list', [one]],
    ['a number', 3],
  ])('refuses a payload that is %s', (_what, payload) => {
    expectRefused(() => normalise('iscsi', payload), 'BAD_REQUEST', 'connection_info');
    expectRefused(() => normaliseIscsi(payload), 'BAD_REQUEST', 'data');
    expectRefused(() => normaliseNvme(payload), 'BAD_REQUEST', 'data');
    expectRefused(() => normaliseLocal(payload), 'BAD_REQUEST', 'data');
  });

  it('refuses connection_info whose data is not an object', () => {
    expectRefused(() => normalise('iscsi', { driver_volume_type: 'iscsi', data: 'x' }), 'BAD_REQUEST', 'data');
    expectRefused(() => normalise('iscsi', { driver_volume_type: 'iscsi' }), 'BAD_REQUEST', 'data');
  });

  it('refuses connection_info without driver_volume_type', () => {
    expectRefused(() => normalise('iscsi', { data: one }), 'BAD_REQUEST', 'driver_volume_type');
  });

  it('refuses a driver_volume_type for another protocol', () => {
    const info = nvmeofConnectionInfo({ nqn: NQN, nsid: 1, uuid: UUID, nguid: nguidFromUuid(UUID), portals: [{ address: '10.0.1.1', port: 4420 }] });
    const err = expectRefused(() => normalise('iscsi', info), 'WRONG_VOLUME_TYPE', 'driver_volume_type');
    expect(err.message).toContain('nvmeof');
    expectRefused(() => normalise('local', { driver_volume_type: 'iscsi', data: one }), 'WRONG_VOLUME_TYPE', 'driver_volume_type');
    expectRefused(() => normalise('nvmeof', { driver_volume_type: null, data: nvme }), 'WRONG_VOLUME_TYPE', 'driver_volume_type');
  });

  it('refuses an unknown protocol name', () => {
    expectRefused(() => normalise('rbd' as 'iscsi', { data: {} }), 'BAD_REQUEST', 'protocol');
  });

  it('refuses an rdma transport with a message that says the lab speaks NVMe/TCP', () => {
    const err = expectRefused(() => normaliseNvme({ ...nvme, portals: [['10.0.1.1', 4420, 'rdma']] }), 'UNSUPPORTED_TRANSPORT', 'portals[0][2]');
    expect(err.message).toContain('NVMe/TCP');
  });
});
