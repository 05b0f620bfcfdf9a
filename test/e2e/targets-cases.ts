import { beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient } from '../../src/agent/api/client.js';
import type { ComputeClient } from '../../src/agent/api/compute-client.js';
import type { TargetClient } from '../../src/agent/api/target-client.js';
import { BrickError } from '../../src/system/errors.js';
import { readSignatureArgv, signatureText, writeSignatureArgv, parseSignature } from '../../src/volume/signature.js';
import type { FcVolumeRequest, IscsiVolumeRequest, NvmeVolumeRequest, TargetVolume } from '../../src/targets/model.js';
import { readLabOrNull } from '../../src/lab/lab.js';
import { fcoeWwpn } from '../../src/system/fcoe.js';
import { STORAGE_LAB, storageLab } from './storage-lab.js';

/**
 * The target side for real: LIO through rtslib, nvmet through configfs, scsi_debug on a compute.
 * The compute node checks each volume the way an initiator sees it (discovery, login, connect),
 * with raw iscsiadm and nvme-cli; the connectors come in a later issue.
 */
const LAB = STORAGE_LAB;
const A = '10.10.1.10';
const B = '10.10.2.10';

interface FcPort {
  wwpn: string;
  luns: Array<{ lun: number; storageObject: string }>;
  acls: Array<{ initiator: string; mappedLuns: number[] }>;
}

interface Leftovers {
  lio: { targets: Array<{ iqn: string; luns: Array<{ lun: number }>; portals: string[] }>; backstores: Array<{ name: string }>; fcPorts: FcPort[] };
  nvmet: { subsystems: Array<{ nqn: string; namespaces: unknown[] }>; ports: unknown[]; hosts: string[] };
  loopDevices: string[];
  files: string[];
}

const EMPTY = { lio: { targets: [], backstores: [], fcPorts: [] }, nvmet: { subsystems: [], ports: [], hosts: [] }, loopDevices: [], files: [] };

async function refusal(p: Promise<unknown>): Promise<BrickError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BrickError) return e;
    throw e;
  }
  throw new Error('expected the request to be refused');
}

describe('target volumes over iSCSI (LIO) and NVMe/TCP (nvmet)', () => {
  let target: TargetClient;
  let compute: ComputeClient;
  let computeIqn = '';
  let computeNqn = '';

  // Bodies the target must refuse are sent too: the typed methods send them as they are.
  const create = (kind: 'iscsi' | 'nvmet', body: Record<string, unknown>): Promise<TargetVolume> =>
    kind === 'iscsi' ? target.createIscsiVolume(body as unknown as IscsiVolumeRequest) : target.createNvmeVolume(body as unknown as NvmeVolumeRequest);
  const leftovers = async (): Promise<Leftovers> => (await target.leftovers()) as unknown as Leftovers;
  const sh = async (node: AgentClient, script: string, timeoutMs = 120_000): Promise<string> => (await node.run(['bash', '-c', script], { timeoutMs })).stdout;

  /** Log in to one portal of a volume and return its block device, found through by-path. */
  async function iscsiLogin(v: TargetVolume, portal = `${A}:3260`): Promise<string> {
    const link = `/dev/disk/by-path/ip-${portal}-iscsi-${v.iscsi!.iqn}-lun-${v.iscsi!.lun}`;
    await sh(compute, `iscsiadm -m discovery -t sendtargets -p ${portal} >/dev/null && iscsiadm -m node -T ${v.iscsi!.iqn} -p ${portal} --login >/dev/null && udevadm settle && for i in $(seq 100); do [ -e ${link} ] && break; sleep 0.2; done; readlink -f ${link}`);
    return (await sh(compute, `readlink -f ${link}`)).trim();
  }

  async function iscsiLogoutAll(): Promise<void> {
    await compute.exec(['iscsiadm', '-m', 'node', '--logoutall=all']);
    await compute.exec(['iscsiadm', '-m', 'node', '-o', 'delete']);
    await compute.exec(['iscsiadm', '-m', 'discoverydb', '-t', 'sendtargets', '-o', 'delete', '-p', `${A}:3260`]);
    await compute.exec(['iscsiadm', '-m', 'discoverydb', '-t', 'sendtargets', '-o', 'delete', '-p', `${B}:3260`]);
    await compute.run(['udevadm', 'settle']);
  }

  /** Connect one portal of an NVMe volume and return its namespace device, found by UUID in sysfs. */
  async function nvmeConnect(v: TargetVolume, addr = A): Promise<string> {
    await compute.run(['nvme', 'connect', '-t', 'tcp', '-a', addr, '-s', '4420', '-n', v.nvme!.nqn, '-l', '10']);
    return (
      await sh(compute, `for i in $(seq 100); do for f in /sys/block/nvme*n*/uuid; do d=\${f%/uuid}; d=\${d##*/}; [[ $d =~ ^nvme[0-9]+n[0-9]+$ ]] && [ "$(cat $f 2>/dev/null)" = "${v.nvme!.uuid}" ] && { echo /dev/$d; exit 0; }; done; sleep 0.2; done; exit 1`)
    ).trim();
  }

  beforeAll(() => {
    ({ target, compute, computeIqn, computeNqn } = storageLab());
  });

  it('starts with nothing on the target', async () => {
    expect(await leftovers()).toEqual(EMPTY);
  });

  it('creates iSCSI volumes of every backstore, alone and sharing one IQN, with os-brick connection properties', async () => {
    const file = await create('iscsi', { name: 'ifile', sizeMiB: 32 });
    const block = await create('iscsi', { name: 'iblock', sizeMiB: 32, backstore: 'block', iqn: 'iqn.2026-11.io.brick-lab:e2e.shared', initiators: [computeIqn] });
    const ram = await create('iscsi', { name: 'iram', sizeMiB: 16, backstore: 'ramdisk', iqn: 'iqn.2026-11.io.brick-lab:e2e.shared', initiators: [computeIqn], lun: 7 });
    expect(file.iscsi).toMatchObject({ iqn: `iqn.2026-11.io.brick-lab:${LAB}.ifile`, lun: 0, demoMode: true });
    expect(block.iscsi).toMatchObject({ iqn: 'iqn.2026-11.io.brick-lab:e2e.shared', lun: 0, demoMode: false, initiators: [computeIqn] });
    expect(ram.iscsi!.lun).toBe(7);
    expect(new Set([file, block, ram].map((v) => v.iscsi!.unitSerial)).size).toBe(3);
    expect(block.backing.device).toMatch(/^\/dev\/loop\d+$/);
    expect(file.connectionInfo).toEqual({
      driver_volume_type: 'iscsi',
      data: {
        target_discovered: false,
        volume_id: file.id,
        target_portal: `${A}:3260`,
        target_iqn: file.iscsi!.iqn,
        target_lun: 0,
        target_portals: [`${A}:3260`, `${B}:3260`],
        target_iqns: [file.iscsi!.iqn, file.iscsi!.iqn],
        target_luns: [0, 0],
        access_mode: 'rw',
        encrypted: false,
        discard: true,
      },
    });
    const listed = await target.volumes();
    expect(listed.volumes.map((v) => v.name).sort()).toEqual(['iblock', 'ifile', 'iram']);
    const lio = (await leftovers()).lio;
    expect(lio.targets.find((t) => t.iqn === 'iqn.2026-11.io.brick-lab:e2e.shared')!.luns.map((l) => l.lun).sort()).toEqual([0, 7]);
    for (const t of lio.targets) expect(t.portals.sort()).toEqual([`${A}:3260`, `${B}:3260`]);
  });

  it('shows every iSCSI target in discovery from the compute node on both portals', async () => {
    for (const portal of [`${A}:3260`, `${B}:3260`]) {
      const out = await sh(compute, `iscsiadm -m discovery -t sendtargets -p ${portal}`);
      for (const iqn of [`iqn.2026-11.io.brick-lab:${LAB}.ifile`, 'iqn.2026-11.io.brick-lab:e2e.shared']) {
        expect(out, portal).toContain(`${portal},1 ${iqn}`);
      }
    }
    await iscsiLogoutAll();
  });

  it('serves a LUN whose WWID is the one the API announced, and carries a signature written through it', async () => {
    const v = (await target.volumes()).volumes.find((x) => x.name === 'iblock')!;
    const dev = await iscsiLogin(v, `${B}:3260`);
    expect(dev).toMatch(/^\/dev\/sd[a-z]+$/);
    expect((await sh(compute, `/lib/udev/scsi_id -g -u -d ${dev}`)).trim()).toBe(v.iscsi!.wwid);
    expect(Number(await sh(compute, `cat /sys/block/${dev.replace('/dev/', '')}/size`))).toBe(v.sizeMiB * 2048);
    await compute.run(writeSignatureArgv(dev), { input: signatureText({ volume: v.name, id: v.id }) });
    expect(parseSignature((await compute.run(readSignatureArgv(dev))).stdout)).toEqual({ volume: v.name, id: v.id });
    const onTarget = await target.signature(v.name);
    expect(onTarget.signature).toEqual({ volume: v.name, id: v.id });
    await iscsiLogoutAll();
  });

  it('creates NVMe/TCP volumes, alone and sharing a subsystem, that nvme discover shows on both ports', async () => {
    const one = await create('nvmet', { name: 'nfile', sizeMiB: 32 });
    const two = await create('nvmet', { name: 'nblock', sizeMiB: 32, nqn: 'nqn.2026-11.io.brick-lab:e2e.shared', hosts: [computeNqn] });
    const three = await create('nvmet', { name: 'nthree', sizeMiB: 32, nqn: 'nqn.2026-11.io.brick-lab:e2e.shared', nsid: 5 });
    expect(one.nvme).toMatchObject({ nqn: `nqn.2026-11.io.brick-lab:${LAB}.nfile`, nsid: 1, allowAnyHost: true });
    expect(two.nvme).toMatchObject({ nsid: 1, allowAnyHost: false, hosts: [computeNqn] });
    expect(three.nvme!.nsid).toBe(5);
    expect(one.connectionInfo).toEqual({
      driver_volume_type: 'nvmeof',
      data: {
        target_nqn: one.nvme!.nqn,
        portals: [[A, 4420, 'tcp'], [B, 4420, 'tcp']],
        vol_uuid: one.nvme!.uuid,
        volume_nguid: one.nvme!.nguid,
        ns_id: '1',
        access_mode: 'rw',
        encrypted: false,
        discard: true,
      },
    });
    expect(two.connectionInfo.data).toMatchObject({ host_nqn: computeNqn });
    for (const addr of [A, B]) {
      const out = JSON.parse(await sh(compute, `nvme discover -t tcp -a ${addr} -s 4420 -o json`)) as { records: Array<{ subnqn: string; traddr: string }> };
      const nqns = out.records.filter((r) => r.traddr === addr).map((r) => r.subnqn);
      expect(nqns, addr).toEqual(expect.arrayContaining([one.nvme!.nqn, 'nqn.2026-11.io.brick-lab:e2e.shared']));
    }
    const sub = (await leftovers()).nvmet.subsystems.find((s) => s.nqn === 'nqn.2026-11.io.brick-lab:e2e.shared')!;
    expect(sub.namespaces.length).toBe(2);
  });

  it('serves a namespace with the announced UUID and NGUID, and carries a signature written through it', async () => {
    const v = (await target.volumes()).volumes.find((x) => x.name === 'nblock')!;
    const dev = await nvmeConnect(v, B);
    expect(dev).toMatch(/^\/dev\/nvme\d+n\d+$/);
    const base = dev.replace('/dev/', '');
    expect((await sh(compute, `cat /sys/block/${base}/nguid`)).trim().replace(/-/g, '')).toBe(v.nvme!.nguid);
    expect((await sh(compute, `cat /sys/block/${base}/nsid`)).trim()).toBe('1');
    expect(Number(await sh(compute, `cat /sys/block/${base}/size`))).toBe(v.sizeMiB * 2048);
    await compute.run(writeSignatureArgv(dev), { input: signatureText({ volume: v.name, id: v.id }) });
    const onTarget = await target.signature(v.name);
    expect(onTarget.signature).toEqual({ volume: v.name, id: v.id });
    await compute.run(['nvme', 'disconnect', '-n', v.nvme!.nqn]);
  });

  it('gives a reused LUN id or NSID a new identity', async () => {
    const first = await create('iscsi', { name: 'reuse-a', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.reuse', lun: 3 });
    await target.deleteVolume('reuse-a');
    const second = await create('iscsi', { name: 'reuse-b', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.reuse', lun: 3 });
    expect(second.iscsi!.lun).toBe(3);
    expect(second.iscsi!.unitSerial).not.toBe(first.iscsi!.unitSerial);
    expect(second.iscsi!.wwid).not.toBe(first.iscsi!.wwid);
    const n1 = await create('nvmet', { name: 'nreuse-a', sizeMiB: 8, nqn: 'nqn.2026-11.io.brick-lab:e2e.reuse', nsid: 9 });
    await target.deleteVolume('nreuse-a');
    const n2 = await create('nvmet', { name: 'nreuse-b', sizeMiB: 8, nqn: 'nqn.2026-11.io.brick-lab:e2e.reuse', nsid: 9 });
    expect(n2.nvme!.nsid).toBe(9);
    expect(n2.nvme!.uuid).not.toBe(n1.nvme!.uuid);
    expect(n2.nvme!.nguid).not.toBe(n1.nvme!.nguid);
    await target.deleteVolume('reuse-b');
    await target.deleteVolume('nreuse-b');
  });

  it('refuses bad input with a coded 4xx naming the field, leaving nothing half-made', async () => {
    const before = await leftovers();
    const cases: Array<[string, () => Promise<unknown>, string, string]> = [
      ['iqn', () => create('iscsi', { name: 'bad1', sizeMiB: 8, iqn: 'iqn.2026-11.lab:target1' }), 'BAD_IQN', 'iqn'],
      ['initiator', () => create('iscsi', { name: 'bad2', sizeMiB: 8, initiators: ['not-an-iqn'] }), 'BAD_IQN', 'initiators[0]'],
      ['nqn', () => create('nvmet', { name: 'bad3', sizeMiB: 8, nqn: 'nqn-is-not/this' }), 'BAD_NQN', 'nqn'],
      ['duplicate lun', () => create('iscsi', { name: 'bad4', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.shared', lun: 7 }), 'LUN_IN_USE', 'lun'],
      ['duplicate nsid', () => create('nvmet', { name: 'bad5', sizeMiB: 8, nqn: 'nqn.2026-11.io.brick-lab:e2e.shared', nsid: 5 }), 'NSID_IN_USE', 'nsid'],
      ['size 0', () => create('iscsi', { name: 'bad6', sizeMiB: 0 }), 'BAD_REQUEST', 'sizeMiB'],
      ['absurd size', () => create('nvmet', { name: 'bad7', sizeMiB: 1_000_000_000 }), 'BAD_REQUEST', 'sizeMiB'],
      ['dotdot name', () => create('iscsi', { name: '../etc/x', sizeMiB: 8 }), 'BAD_REQUEST', 'name'],
      ['slash name', () => create('nvmet', { name: 'a/b', sizeMiB: 8 }), 'BAD_REQUEST', 'name'],
      ['existing name', () => create('iscsi', { name: 'ifile', sizeMiB: 8 }), 'VOLUME_EXISTS', 'name'],
      ['unknown volume', () => target.deleteVolume('no-such-volume'), 'VOLUME_UNKNOWN', 'name'],
      ['unknown network', () => create('iscsi', { name: 'bad8', sizeMiB: 8, networks: ['path-z'] }), 'BAD_REQUEST', 'networks[0]'],
      ['lun out of range', () => create('iscsi', { name: 'bad9', sizeMiB: 8, lun: 70000 }), 'BAD_REQUEST', 'lun'],
      ['lun above 255 with an ACL', () => create('iscsi', { name: 'bad10', sizeMiB: 8, lun: 300, initiators: [computeIqn] }), 'BAD_REQUEST', 'lun'],
    ];
    for (const [what, call, code, field] of cases) {
      const e = await refusal(call());
      expect(e.code, what).toBe(code);
      expect(e.statusCode, what).toBeGreaterThanOrEqual(400);
      expect(e.statusCode, what).toBeLessThan(500);
      expect(e.message, what).toContain(`${field}:`);
    }
    expect(await leftovers()).toEqual(before);
    // The IQN rule is rtslib's own: the library refuses the same name when asked directly.
    const rtslib = await target.exec(['python3', '-c', "from rtslib_fb import FabricModule, Target; Target(FabricModule('iscsi'), 'iqn.2026-11.lab:target1')"]);
    expect(rtslib.exitCode).not.toBe(0);
    expect(rtslib.stderr).toMatch(/WWN|wwn/);
  });

  it('unmaps a LUN from a logged-in initiator, and removes a namespace under a connected host', async () => {
    const v = await create('iscsi', { name: 'iunmap', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.unmap', lun: 1, initiators: [computeIqn] });
    const dev = await iscsiLogin(v);
    await compute.run(['dd', `if=${dev}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct', 'status=none']);
    const r = await target.unmap('iunmap', computeIqn);
    expect(r.removed).toBe(1);
    const lio = (await leftovers()).lio;
    expect(lio.targets.find((t) => t.iqn === v.iscsi!.iqn)!.luns.map((l) => l.lun)).toEqual([1]);
    // The initiator still has the device, but the LUN is gone for it: I/O fails.
    const io = await compute.exec(['dd', `if=${dev}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct', 'status=none'], { timeoutMs: 120_000 });
    expect(io.exitCode).not.toBe(0);
    await iscsiLogoutAll();

    const n = await create('nvmet', { name: 'nunmap', sizeMiB: 8 });
    const ndev = await nvmeConnect(n);
    await target.unmap('nunmap');
    expect((await leftovers()).nvmet.subsystems.find((s) => s.nqn === n.nvme!.nqn)!.namespaces).toEqual([]);
    await sh(compute, `for i in $(seq 150); do [ -e ${ndev} ] || exit 0; dd if=${ndev} of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null || exit 0; sleep 0.2; done; exit 1`);
    await compute.run(['nvme', 'disconnect', '-n', n.nvme!.nqn]);
    await target.deleteVolume('iunmap');
    await target.deleteVolume('nunmap');
  });

  it('takes one data path down and brings it back', async () => {
    await target.setNetwork('path-b', false);
    expect((await compute.exec(['ping', '-c', '1', '-W', '2', B])).exitCode).not.toBe(0);
    expect((await compute.exec(['ping', '-c', '1', '-W', '5', A])).exitCode).toBe(0);
    await target.setNetwork('path-b', true);
    await sh(compute, `for i in $(seq 30); do ping -c 1 -W 1 ${B} >/dev/null && exit 0; done; exit 1`);
  });

  it('sets an ANA group state on one port', async () => {
    await target.setAna({ network: 'path-b', group: 1, state: 'inaccessible' });
    const ports = (await leftovers()).nvmet.ports as Array<{ traddr: string; anaGroups: Array<{ group: number; state: string }> }>;
    expect(ports.find((p) => p.traddr === B)!.anaGroups).toContainEqual({ group: 1, state: 'inaccessible' });
    expect(ports.find((p) => p.traddr === A)!.anaGroups).toContainEqual({ group: 1, state: 'optimized' });
    await target.setAna({ network: 'path-b', group: 1, state: 'optimized' });
  });

  it('restarts the target services and brings back the same configuration', async () => {
    const before = await leftovers();
    await target.restart();
    const after = await leftovers();
    const shape = (l: Leftovers): unknown => ({
      targets: l.lio.targets.map((t) => [t.iqn, t.luns, [...t.portals].sort()]).sort(),
      backstores: l.lio.backstores.map((b) => b.name).sort(),
      subsystems: l.nvmet.subsystems,
      hosts: l.nvmet.hosts,
    });
    expect(before.lio.targets.length).toBeGreaterThan(0);
    expect(before.nvmet.subsystems.length).toBeGreaterThan(0);
    expect(shape(after)).toEqual(shape(before));
    const out = await sh(compute, `iscsiadm -m discovery -t sendtargets -p ${A}:3260`);
    expect(out).toContain('iqn.2026-11.io.brick-lab:e2e.shared');
    await iscsiLogoutAll();
  });

  it('lets in only the initiators on the ACL, and with CHAP only those that know the secret', async () => {
    const login = (iqn: string, extra = ''): Promise<{ exitCode: number | null }> =>
      compute.exec(['bash', '-c', `iscsiadm -m discovery -t sendtargets -p ${A}:3260 >/dev/null; ${extra} iscsiadm -m node -T ${iqn} -p ${A}:3260 --login`], { timeoutMs: 120_000 });
    const other = await create('iscsi', { name: 'iother', sizeMiB: 8, initiators: ['iqn.2026-11.io.brick-lab:elsewhere:node'] });
    expect((await login(other.iscsi!.iqn)).exitCode).not.toBe(0);
    await iscsiLogoutAll();

    const chap = { username: 'brick-user', password: 'brick-secret-1234' };
    const secret = await create('iscsi', { name: 'ichap', sizeMiB: 8, initiators: [computeIqn], chap });
    expect(secret.connectionInfo.data).toMatchObject({ auth_method: 'CHAP', auth_username: chap.username, auth_password: chap.password });
    expect((await login(secret.iscsi!.iqn)).exitCode).not.toBe(0);
    await iscsiLogoutAll();
    const set = (k: string, v: string): string => `iscsiadm -m node -T ${secret.iscsi!.iqn} -p ${A}:3260 -o update -n ${k} -v ${v};`;
    const withChap = set('node.session.auth.authmethod', 'CHAP') + set('node.session.auth.username', chap.username) + set('node.session.auth.password', chap.password);
    expect((await login(secret.iscsi!.iqn, withChap)).exitCode).toBe(0);
    await iscsiLogoutAll();
    await target.deleteVolume('iother');
    await target.deleteVolume('ichap');
  });

  it('deletes every volume and leaves nothing in configfs, no loop device and no file', async () => {
    const { volumes } = await target.volumes();
    for (const v of volumes) await target.deleteVolume(v.name);
    expect(await leftovers()).toEqual(EMPTY);
    // And straight from configfs: no iSCSI target, no storage object, no nvmet subsystem or port.
    const cfs = await sh(target, 'cd /sys/kernel/config; ls -d target/iscsi/iqn.* target/core/*/* nvmet/subsystems/* nvmet/ports/* nvmet/hosts/* 2>/dev/null | grep -v /alua || true');
    expect(cfs.trim()).toBe('');
  });

  it('force-cleans whatever is left, in reverse order, and reports it', async () => {
    await create('iscsi', { name: 'left1', sizeMiB: 8, backstore: 'block' });
    await create('nvmet', { name: 'left2', sizeMiB: 8, hosts: [computeNqn] });
    const r = await target.cleanup();
    expect(r.removed).toEqual(
      expect.arrayContaining([`subsystem nqn.2026-11.io.brick-lab:${LAB}.left2`, `host ${computeNqn}`, `iscsi target iqn.2026-11.io.brick-lab:${LAB}.left1`, 'backstore left1', 'file left1.img', 'file left2.img']),
    );
    expect(await leftovers()).toEqual(EMPTY);
  });

  it('exports FC volumes on FCoE ports: LUN picked or given, mapped per host port, the host\'s ports in its connector properties, refused whole, a reused LUN with a new identity, kept across a restart, cleaned leaving the fabric', async () => {
    const rec = (await readLabOrNull(LAB))!;
    const node = rec.nodes.find((n) => n.name === 'compute-1')!;
    // The compute's ports, named after its data NICs' MACs as the target was told (BRICK_FC_INITIATORS).
    const [portA, portB] = node.taps.map((t) => fcoeWwpn(t.mac)) as [string, string];
    const fcVol = (body: Record<string, unknown>): Promise<TargetVolume> => target.createFcVolume(body as unknown as FcVolumeRequest);
    const fcDisks = async (): Promise<string> => (await sh(compute, 'ls -d /sys/class/fc_remote_ports/rport-*/device/target*/*:*:*:* 2>/dev/null | sed "s,.*/,," || true')).trim();
    const a = await fcVol({ name: 'fca', sizeMiB: 8 });
    expect(a.protocol).toBe('fc');
    expect(a.fc).toMatchObject({ lun: 0, initiators: [] });
    expect(a.fc!.wwpns).toHaveLength(2);
    expect(a.fc!.wwid).toMatch(/^36001405[0-9a-f]{25}$/);
    // Cinder's FC shape, zoned per fabric: each host port reaches the target port on its own network.
    expect(a.connectionInfo).toMatchObject({ driver_volume_type: 'fibre_channel', data: { target_wwn: a.fc!.wwpns, target_lun: 0, initiator_target_map: { [portA]: [a.fc!.wwpns[0]], [portB]: [a.fc!.wwpns[1]] } } });
    // Mapped to the host before it attaches (initialize_connection); its ports come up at the
    // attach, log in, and see LUN 0 through both fabrics with the announced WWID.
    // Each port on the target port of its own fabric: two mappings.
    expect(await target.map('fca', [portA, portB])).toEqual({ volume: 'fca', mapped: 2 });
    expect(await target.map('fca', [portA, portB])).toEqual({ volume: 'fca', mapped: 0 });
    const d = await compute.connect('fc', a.connectionInfo, { multipath: true });
    expect(d).toMatchObject({ multipath: true, identity: a.fc!.wwid });
    expect(d.devices).toHaveLength(2);
    // The host's connector properties (os-brick's) name its ports now that they are online, and
    // its iSCSI and NVMe names as the lab gave them.
    const props = await compute.connectorProperties({ multipath: true });
    expect(props).toMatchObject({ os_type: 'linux', platform: 'x86_64', host: 'compute-1', ip: node.addresses['path-a'], multipath: true, initiator: node.initiatorIqn, nqn: node.hostNqn });
    expect([...props.wwpns!].sort()).toEqual([portA, portB].sort());
    expect(props.wwnns!.map((w) => `2000${w.slice(4)}`)).toEqual(props.wwpns);

    const b = await fcVol({ name: 'fcb', sizeMiB: 8, lun: 5, initiators: [portA], networks: ['path-a'] });
    expect(b.fc).toMatchObject({ lun: 5, wwpns: [a.fc!.wwpns[0]], initiators: [portA] });
    let ports = (await leftovers()).lio.fcPorts;
    expect(ports.map((p) => p.wwpn).sort()).toEqual([...a.fc!.wwpns].sort());
    // LUN 5 is mapped to port A alone, LUN 0 to both of the compute's ports; the other ACLs
    // (the lab's other compute) map nothing.
    const onA = ports.find((p) => p.wwpn === a.fc!.wwpns[0])!;
    expect(onA.acls.find((x) => x.initiator === portA)!.mappedLuns.sort()).toEqual([0, 5]);
    expect(onA.acls.filter((x) => x.initiator !== portA).every((x) => x.mappedLuns.length === 0)).toBe(true);

    // Refused whole: nothing of the volume is made.
    expect(await refusal(fcVol({ name: 'fcc', sizeMiB: 8, lun: 5 }))).toMatchObject({ code: 'LUN_IN_USE', statusCode: 400 });
    expect(await refusal(fcVol({ name: 'fcc', sizeMiB: 8, initiators: ['0x20005254004c0101'] }))).toMatchObject({ code: 'BAD_WWPN', message: expect.stringContaining('initiators[0]') });
    expect(await refusal(fcVol({ name: 'fcc', sizeMiB: 8, lun: 256 }))).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('lun: must be') });
    expect(await refusal(target.map('fca', ['20:00:52:54:00:4c:01:01']))).toMatchObject({ code: 'BAD_WWPN' });
    const now = await leftovers();
    expect(now.lio.backstores.map((x) => x.name).sort()).toEqual(['fca', 'fcb']);
    expect(now.files.sort()).toEqual(['fca.img', 'fcb.img']);
    // A LUN made after the host logged in is not scanned by it: only LUN 0's two disks.
    expect((await fcDisks()).split('\n').map((h) => Number(h.split(':')[3]))).toEqual([0, 0]);
    await compute.disconnect('fc', a.connectionInfo, d);
    expect(await fcDisks()).toBe('');

    // LUN 5 again after a delete: another volume, another WWID.
    await target.deleteVolume('fcb');
    const again = await fcVol({ name: 'fcb2', sizeMiB: 8, lun: 5, networks: ['path-a'] });
    expect(again.fc!.lun).toBe(5);
    expect(again.fc!.wwid).not.toBe(b.fc!.wwid);
    // A restart of the target's services brings the FC ports back as they were: their LUNs, their
    // ACLs and what each maps (rtslib's dump and restore, as for iSCSI).
    const fcShape = (ps: typeof ports): unknown => ps.map((p) => [p.wwpn, p.luns, p.acls.map((x) => [x.initiator, [...x.mappedLuns].sort()]).sort()]).sort();
    const beforeRestart = fcShape((await leftovers()).lio.fcPorts);
    expect((await target.restart()).lioErrors).toEqual([]);
    expect(fcShape((await leftovers()).lio.fcPorts)).toEqual(beforeRestart);

    // A force clean takes every volume; the FC ports and their ACLs are the fabric's, and stay.
    const r = await target.cleanup();
    expect(r.removed).toEqual(expect.arrayContaining(['backstore fca', 'backstore fcb2', 'file fca.img', 'file fcb2.img']));
    ports = (await leftovers()).lio.fcPorts;
    expect(ports.every((p) => p.luns.length === 0 && p.acls.every((x) => x.mappedLuns.length === 0))).toBe(true);
    expect(ports.flatMap((p) => p.acls.map((x) => x.initiator))).toEqual(expect.arrayContaining([portA, portB]));
    const after = await leftovers();
    expect({ ...after, lio: { ...after.lio, fcPorts: [] } }).toEqual(EMPTY);
  });

  it('adds and removes local scsi_debug disks on a compute node, each with its own data', async () => {
    const d1 = await compute.addLocalDisk();
    const d2 = await compute.addLocalDisk();
    expect(d1.device).toMatch(/^\/dev\/sd[a-z]+$/);
    expect(d2.device).not.toBe(d1.device);
    expect(d2.wwid).not.toBe(d1.wwid);
    await compute.run(writeSignatureArgv(d1.device!), { input: signatureText({ volume: 'local1', id: '1' }) });
    expect(parseSignature((await compute.run(readSignatureArgv(d2.device!))).stdout)).toBeNull();
    expect(parseSignature((await compute.run(readSignatureArgv(d1.device!))).stdout)).toEqual({ volume: 'local1', id: '1' });
    await compute.removeLocalDisk(d2.host);
    await compute.removeLocalDisk(d1.host);
    const { disks } = await compute.localDisks();
    expect(disks).toEqual([]);
    expect((await sh(compute, 'ls /sys/class/scsi_disk')).trim()).toBe('');
    const unknown = await refusal(compute.removeLocalDisk(999));
    expect(unknown.code).toBe('DISK_UNKNOWN');
  });
});
