import { describe, expect, it } from 'vitest';
import { iscsiConnectionInfo, nvmeofConnectionInfo } from '../../src/osbrick/index.js';
import { lioWwid, nguidFromUuid } from '../../src/volume/ids.js';

const ID = '5fb85f75-2f1e-4ccf-a928-783dd267bfa2';
const IQN = 'iqn.2026-11.io.brick-lab:lab.vol1';
const NQN = 'nqn.2026-11.io.brick-lab:lab.vol1';

describe('iscsiConnectionInfo', () => {
  const portals = ['10.10.1.10:3260', '10.10.2.10:3260'];

  it("is os-brick's iSCSI shape, with the plural keys holding one entry per portal", () => {
    expect(iscsiConnectionInfo({ id: ID, iqn: IQN, lun: 3, portals })).toEqual({
      driver_volume_type: 'iscsi',
      data: {
        target_discovered: false,
        volume_id: ID,
        target_portal: '10.10.1.10:3260',
        target_iqn: IQN,
        target_lun: 3,
        target_portals: portals,
        target_iqns: [IQN, IQN],
        target_luns: [3, 3],
        access_mode: 'rw',
        encrypted: false,
        discard: true,
      },
    });
  });

  it('has no auth keys at all without CHAP', () => {
    const { data } = iscsiConnectionInfo({ id: ID, iqn: IQN, lun: 0, portals, chap: undefined });
    expect(data).not.toHaveProperty('auth_method');
    expect(data).not.toHaveProperty('auth_username');
    expect(data).not.toHaveProperty('auth_password');
  });

  it('carries CHAP as auth_method, auth_username and auth_password', () => {
    const { data } = iscsiConnectionInfo({ id: ID, iqn: IQN, lun: 0, portals, chap: { username: 'user1', password: 'secret-12345' } });
    expect(data).toMatchObject({ auth_method: 'CHAP', auth_username: 'user1', auth_password: 'secret-12345' });
  });

  it('with one portal has one-entry plural lists', () => {
    const { data } = iscsiConnectionInfo({ id: ID, iqn: IQN, lun: 1, portals: ['10.10.1.10:3260'] });
    expect(data).toMatchObject({
      target_portal: '10.10.1.10:3260',
      target_portals: ['10.10.1.10:3260'],
      target_iqns: [IQN],
      target_luns: [1],
    });
  });

  it('copies the portal list rather than sharing it', () => {
    const mine = [...portals];
    const { data } = iscsiConnectionInfo({ id: ID, iqn: IQN, lun: 0, portals: mine });
    mine.push('10.10.3.10:3260');
    expect((data as { target_portals: string[] }).target_portals).toEqual(portals);
  });

  it('survives a JSON round trip unchanged (it crosses HTTP)', () => {
    const info = iscsiConnectionInfo({ id: ID, iqn: IQN, lun: 0, portals, chap: { username: 'u', password: 'p' } });
    expect(JSON.parse(JSON.stringify(info))).toEqual(info);
  });
});

describe('nvmeofConnectionInfo', () => {
  const base = {
    nqn: NQN,
    nsid: 1,
    uuid: ID,
    nguid: nguidFromUuid(ID),
    portals: [
      { address: '10.10.1.10', port: 4420 },
      { address: '10.10.2.10', port: 4420 },
    ],
  };

  it("is os-brick's NVMe-oF shape: portals as [address, port, 'tcp'] and ns_id as a string", () => {
    expect(nvmeofConnectionInfo(base)).toEqual({
      driver_volume_type: 'nvmeof',
      data: {
        target_nqn: NQN,
        portals: [
          ['10.10.1.10', 4420, 'tcp'],
          ['10.10.2.10', 4420, 'tcp'],
        ],
        vol_uuid: ID,
        volume_nguid: '5fb85f752f1e4ccfa928783dd267bfa2',
        ns_id: '1',
        access_mode: 'rw',
        encrypted: false,
        discard: true,
      },
    });
  });

  it('gives ns_id as a string for any namespace id', () => {
    const { data } = nvmeofConnectionInfo({ ...base, nsid: 17 });
    expect((data as { ns_id: unknown }).ns_id).toBe('17');
    expect(typeof (data as { ns_id: unknown }).ns_id).toBe('string');
  });

  it('has host_nqn only when one is given', () => {
    expect(nvmeofConnectionInfo(base).data).not.toHaveProperty('host_nqn');
    expect(nvmeofConnectionInfo({ ...base, hostNqn: undefined }).data).not.toHaveProperty('host_nqn');
    const host = 'nqn.2014-08.org.nvmexpress:uuid:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';
    expect(nvmeofConnectionInfo({ ...base, hostNqn: host }).data).toMatchObject({ host_nqn: host });
  });
});

describe('lioWwid', () => {
  // Observed in a guest: Debian bookworm, kernel 6.1.0-56-amd64, LIO target, `/lib/udev/scsi_id -g -u`
  // on the initiator for the LUN whose unit serial is below.
  const serial = '5fb85f75-2f1e-4ccf-a928-783dd267bfa2';

  it('matches the WWID scsi_id reported for a real LIO LUN', () => {
    const wwid = lioWwid(serial);
    expect(wwid.startsWith('360014055fb85f752f1e4ccfa928783dd')).toBe(true);
    expect(wwid).toBe('360014055fb85f752f1e4ccfa928783dd');
    expect(wwid).toHaveLength(33);
  });

  it("is '36001405' and the first 25 hex digits of the serial, dashes removed, lowercased", () => {
    expect(lioWwid(serial.toUpperCase())).toBe(lioWwid(serial));
    const wwid = lioWwid(serial);
    expect(wwid.slice(0, 8)).toBe('36001405');
    expect(wwid.slice(8)).toBe(serial.replace(/-/g, '').slice(0, 25));
    expect(wwid).toMatch(/^36001405[0-9a-f]{25}$/);
  });
});

describe('nguidFromUuid', () => {
  it('strips the dashes and lowercases', () => {
    expect(nguidFromUuid('5FB85F75-2F1E-4CCF-A928-783DD267BFA2')).toBe('5fb85f752f1e4ccfa928783dd267bfa2');
    expect(nguidFromUuid(ID)).toMatch(/^[0-9a-f]{32}$/);
  });
});
