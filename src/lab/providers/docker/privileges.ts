import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { progress } from '../../../system/log.js';
import { cacheDir } from '../../../system/paths.js';

const PROBE_LABEL = 'io.brick-lab.probe';

/** Linux capability names by number (capability.h), as Docker spells them without CAP_. */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** Capabilities up to lastCap that the bounding set (a hex mask from /proc/self/status) lacks. */
export function missingCapabilities(capBndHex: string, lastCap: number): string[] {
  const mask = BigInt(`0x${capBndHex.trim() || '0'}`);
  const out: string[] = [];
  for (let i = 0; i <= Math.min(lastCap, CAPABILITIES.length - 1); i++) {
    if (((mask >> BigInt(i)) & 1n) === 0n) out.push(CAPABILITIES[i]!);
  }
  return out;
}

/**
 * What "privileged" means on this host: Docker's --privileged when the engine accepts it, else
 * every capability the host's bounding set has, no seccomp or AppArmor filter, and the devices a
 * node needs passed one by one (privileged mode would pass them all).
 */
export interface PrivilegeSet {
  mode: 'privileged' | 'capabilities';
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  /** One line for the progress output and the lab record. */
  summary: string;
  /** Why this set: what the probe found. */
  reason: string;
}

export interface PrivilegeProbe {
  privileged: { ok: boolean; detail: string };
  capabilities?: { ok: boolean; detail: string };
}

export function hostCapabilities(): { capBnd: string; lastCap: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const capBnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0';
  const lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  return { capBnd, lastCap };
}

function apparmorEnabled(): boolean {
  try {
    return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    return false;
  }
}

/** Pure: the set to use, from the probe's results and the host's bounding set. */
export function decidePrivileges(probe: PrivilegeProbe, missing: readonly string[], apparmor: boolean): PrivilegeSet {
  if (probe.privileged.ok) {
    return { mode: 'privileged', capAdd: [], capDrop: [], securityOpt: [], summary: '--privileged', reason: 'the engine accepts --privileged' };
  }
  const securityOpt = ['seccomp=unconfined', ...(apparmor ? ['apparmor=unconfined'] : [])];
  const summary = [`--cap-add ALL`, ...missing.map((c) => `--cap-drop ${c}`), ...securityOpt.map((o) => `--security-opt ${o}`)].join(' ');
  const why = missing.length ? `this host's capability bounding set lacks ${missing.join(', ')}` : 'no capability is missing from the bounding set';
  return {
    mode: 'capabilities',
    capAdd: ['ALL'],
    capDrop: [...missing],
    securityOpt,
    summary,
    reason: `--privileged is refused (${probe.privileged.detail}); ${why}${probe.capabilities ? `; the fallback ${probe.capabilities.ok ? 'works' : `also failed: ${probe.capabilities.detail}`}` : ''}`,
  };
}

async function tryContainer(docker: Docker, image: string, hostConfig: Docker.HostConfig, cmd: string[]): Promise<{ ok: boolean; detail: string }> {
  let container: Docker.Container | null = null;
  try {
    container = await docker.createContainer({ Image: image, Cmd: cmd, HostConfig: hostConfig, Labels: { [PROBE_LABEL]: 'privileges' }, NetworkDisabled: false });
    await container.start();
    const r = (await container.wait()) as { StatusCode: number };
    if (r.StatusCode === 0) return { ok: true, detail: 'started and ran' };
    const logs = (await container.logs({ stdout: true, stderr: true })).toString('utf8').replace(/[\x00-\x08]/g, '').trim();
    return { ok: false, detail: `exited ${r.StatusCode}: ${logs.slice(-200)}` };
  } catch (e) {
    return { ok: false, detail: ((e as { json?: { message?: string } }).json?.message ?? (e as Error).message).trim().slice(0, 300) };
  } finally {
    await container?.remove({ force: true }).catch(() => undefined);
  }
}

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
}

/**
 * Probe the engine once per host boot and engine version: can a container start privileged? If
 * not, does the capability set work (a bridge and a tap made inside, as a QEMU node does)?
 */
export async function choosePrivileges(docker: Docker, image: string): Promise<PrivilegeSet> {
  const { capBnd, lastCap } = hostCapabilities();
  const missing = missingCapabilities(capBnd, lastCap);
  const apparmor = apparmorEnabled();
  const version = (await docker.version()).Version;
  const dir = join(cacheDir(), 'probe');
  const cache = join(dir, `docker-privileges-${await bootId()}-${version}-${capBnd}.json`);
  let probe: PrivilegeProbe | null = null;
  if (existsSync(cache)) probe = JSON.parse(await readFile(cache, 'utf8').catch(() => 'null')) as PrivilegeProbe | null;
  if (!probe) {
    progress('docker', 'probing which privileges the Docker Engine grants here');
    // A probe killed half-way (Ctrl-C) may have left its container.
    for (const c of await docker.listContainers({ all: true, filters: JSON.stringify({ label: [PROBE_LABEL] }) })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    const test = ['sh', '-c', 'ip link add brick-probe type bridge && ip tuntap add dev brick-tap mode tap'];
    probe = { privileged: await tryContainer(docker, image, { Privileged: true }, test) };
    if (!probe.privileged.ok) {
      const set = decidePrivileges(probe, missing, apparmor);
      probe.capabilities = await tryContainer(docker, image, { CapAdd: set.capAdd, CapDrop: set.capDrop, SecurityOpt: set.securityOpt, Devices: [tunDevice()] }, test);
    }
    await mkdir(dir, { recursive: true });
    await writeFile(cache, JSON.stringify(probe));
  }
  return decidePrivileges(probe, missing, apparmor);
}

export function tunDevice(): Docker.DeviceMapping {
  return { PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' };
}

export function kvmDevice(): Docker.DeviceMapping {
  return { PathOnHost: '/dev/kvm', PathInContainer: '/dev/kvm', CgroupPermissions: 'rwm' };
}
