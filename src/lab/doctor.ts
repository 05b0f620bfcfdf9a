import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { exec, which } from '../system/exec.js';
import { cacheDir, stateDir } from '../system/paths.js';
import { chooseAccel } from './accel.js';
import { dockerClient, engineAddress, enginePing, requireEngine } from './providers/docker/engine.js';
import { imageExists, nodeImageSpec } from './providers/docker/image.js';
import { choosePrivileges } from './providers/docker/privileges.js';
import { probeHostStorage } from './providers/docker/provider.js';
import { findImage, listImages } from './image/build.js';
import { DEFAULT_GUEST, guestNames, loadRecipe } from './image/recipe.js';
import { leftovers, listLabs } from './lab.js';
import { HOST_TOOLS } from './preflight.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** The command that fixes it, when something is missing. */
  fix?: string;
  /** Informational checks never fail the report. */
  essential: boolean;
}

export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
}

async function version(argv: string[]): Promise<string> {
  const r = await exec(argv, { timeoutMs: 10_000, reject: false }).catch(() => null);
  return r?.stdout.split('\n')[0]?.trim() ?? '';
}

/** What this host has for running labs, what is missing, and the command that fixes each gap. */
export async function doctor(): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const missingPkgs: string[] = [];
  for (const t of HOST_TOOLS) {
    const path = await which(t.program);
    if (!path) missingPkgs.push(t.pkg);
    checks.push({
      name: t.program,
      ok: Boolean(path),
      detail: path ? `${path}${t.program.startsWith('qemu') ? ` (${await version([t.program, '--version'])})` : ''}` : `missing: needed for ${t.for}`,
      ...(path ? {} : { fix: `apt-get install -y ${t.pkg}` }),
      essential: true,
    });
  }
  const root = process.getuid?.() === 0;
  checks.push({ name: 'root', ok: root, detail: root ? 'running as root' : 'not root: namespaces, bridges and taps need root', ...(root ? {} : { fix: 'sudo -E npx brick-lab ...' }), essential: true });
  const tun = existsSync('/dev/net/tun');
  checks.push({ name: '/dev/net/tun', ok: tun, detail: tun ? 'present' : 'missing', ...(tun ? {} : { fix: 'modprobe tun' }), essential: true });

  let netnsOk = false;
  let netnsDetail = 'not checked (needs root and ip)';
  if (root && (await which('ip'))) {
    const probe = `brick-doctor-${process.pid}`;
    const r = await exec(['ip', 'netns', 'add', probe], { timeoutMs: 10_000, reject: false });
    netnsOk = r.exitCode === 0;
    netnsDetail = netnsOk ? 'can create network namespaces' : `ip netns add failed: ${r.stderr.trim()}`;
    if (netnsOk) await exec(['ip', 'netns', 'del', probe], { timeoutMs: 10_000, reject: false });
  }
  checks.push({ name: 'netns', ok: netnsOk, detail: netnsDetail, essential: true });

  // Every guest: its kernel and os-brick (from its recipe), and whether its image is built.
  for (const guest of guestNames()) {
    let loaded: ReturnType<typeof loadRecipe>;
    try {
      loaded = loadRecipe(guest);
    } catch (e) {
      checks.push({ name: `image ${guest}`, ok: false, detail: (e as Error).message, essential: false });
      continue;
    }
    const { key, recipe } = loaded;
    const built = await findImage(guest);
    const what = `${guest}${guest === DEFAULT_GUEST ? ' (the default)' : ''}: Debian ${recipe.release}, kernel ${recipe.kernel.release}`;
    checks.push({
      name: `image ${guest}`,
      ok: true,
      detail: built ? `${what}, built: ${built.dir}` : `${what}, not built yet (recipe ${key}); the first \`up\` that needs it builds it (about a minute), or \`brick-lab image --guest ${guest}\``,
      essential: false,
    });
  }
  const image = await findImage();
  const all = await listImages();
  checks.push({ name: 'cache', ok: true, detail: `${cacheDir()} (${all.length} image${all.length === 1 ? '' : 's'}: ${all.join(', ') || 'none'})`, essential: false });

  const kvmDev = existsSync('/dev/kvm');
  let accel = kvmDev ? '/dev/kvm present; probe needs the image' : 'no /dev/kvm: TCG (software emulation)';
  if (image && (await which('qemu-system-x86_64'))) {
    const d = await chooseAccel(image);
    accel = `${d.accel.toUpperCase()}: ${d.reason}`;
  }
  checks.push({ name: 'acceleration', ok: true, detail: accel, essential: false });

  // The docker provider: informational, a lab of qemu nodes needs none of it.
  const docker = dockerClient();
  if (await enginePing(docker, 3000)) {
    const info = await requireEngine(docker);
    checks.push({ name: 'docker', ok: true, detail: `Docker Engine ${info.version} at ${engineAddress()} (${info.storageDriver}, cgroup v${info.cgroupVersion}): provider: docker can be used`, essential: false });
    // What "privileged" means here, as `up` will use it: probed once (cached per boot and engine).
    const spec = nodeImageSpec();
    if (await imageExists(docker, spec.tag)) {
      const p = await choosePrivileges(docker, spec.tag);
      checks.push({ name: 'docker privileges', ok: true, detail: `${p.summary} (${p.reason})`, essential: false });
    } else {
      checks.push({ name: 'docker privileges', ok: true, detail: `not probed yet: the first up with docker nodes imports ${spec.tag} and probes`, essential: false });
    }
    const storage = await probeHostStorage();
    checks.push({ name: 'host storage', ok: true, detail: storage.ok ? `docker targets can use the host kernel: ${storage.detail}` : `docker targets boot the guest kernel: ${storage.detail}`, essential: false });
  } else {
    checks.push({
      name: 'docker',
      ok: true,
      detail: `no Docker Engine answers at ${engineAddress()}: provider: docker is unavailable (provider: qemu works without it)`,
      fix: 'apt-get install -y docker.io && dockerd &',
      essential: false,
    });
  }

  const labs = await listLabs();
  checks.push({ name: 'labs', ok: true, detail: `${stateDir()}: ${labs.length ? labs.join(', ') : 'none recorded'}`, essential: false });
  const left = await leftovers();
  const stray = left.qemu.length + left.taps.length + left.netns.length + left.containers.length + left.networks.length + left.rules.length;
  checks.push({
    name: 'leftovers',
    ok: true,
    detail: stray
      ? `lab VMs ${left.qemu.join(' ') || '-'}, taps ${left.taps.join(' ') || '-'}, namespaces ${left.netns.join(' ') || '-'}, containers ${left.containers.join(' ') || '-'}, docker networks ${left.networks.join(' ') || '-'}, firewall rules ${left.rules.join(', ') || '-'}`
      : 'none',
    ...(stray ? { fix: 'brick-lab down --name NAME (or --all)' } : {}),
    essential: false,
  });

  const osr = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const debianLike = /^ID(_LIKE)?=.*\b(debian|ubuntu)\b/m.test(osr);
  if (missingPkgs.length > 0) {
    checks.push({
      name: 'fix',
      ok: false,
      detail: debianLike ? 'install what is missing' : 'not a Debian-like host: install the equivalents of these packages',
      fix: debianLike ? `apt-get update && apt-get install -y ${[...new Set(missingPkgs)].join(' ')}` : [...new Set(missingPkgs)].join(' '),
      essential: true,
    });
  }
  return { ok: checks.every((c) => c.ok || !c.essential), checks };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = r.checks.map((c) => `${c.ok ? 'ok  ' : c.essential ? 'FAIL' : 'warn'}  ${c.name.padEnd(20)} ${c.detail}${c.fix ? `\n      fix: ${c.fix}` : ''}`);
  lines.push(r.ok ? 'this host can run brick-lab labs' : 'this host cannot run labs yet: apply the fixes above (scripts/bootstrap does it on Debian/Ubuntu)');
  return lines.join('\n');
}
