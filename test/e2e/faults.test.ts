import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findQemuProcesses } from '../../src/lab/providers/qemu/processes.js';
import { cacheDir, labDir } from '../../src/system/paths.js';
import { CLI, cli, hostTraces, NOTHING, waitFor } from './helpers.js';

type Traces = Awaited<ReturnType<typeof hostTraces>>;

async function topologyFile(name: string, body: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, body);
  return file;
}

const ONE_NODE = (name: string, extra = ''): string =>
  ['name: ' + name, 'networks:', '  - {name: path-a, subnet: 10.10.1.0/24}', 'nodes:', `  - {name: n1, role: compute${extra}}`, ''].join('\n');

/** Start `brick-lab up` as a child and resolve once its VMs exist. */
async function startUp(name: string): Promise<{ child: ReturnType<typeof spawn>; exit: Promise<{ code: number | null; signal: string | null; stderr: string }> }> {
  const child = spawn(process.execPath, [CLI, 'up', '--name', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  // Every node's QEMU started. A QEMU still daemonizing shows as two processes (the parent exits
  // once its child runs), so count nodes, not processes.
  await waitFor(`QEMU processes of ${name}`, async () => (await qemuNodes(name)).size === 3, 5 * 60_000);
  return { child, exit };
}

async function qemuNodes(name: string): Promise<Set<string>> {
  return new Set((await findQemuProcesses(name)).map((p) => p.node));
}

describe('bad input and faults', () => {
  it('refuses a bad topology file naming the field, and makes nothing', async () => {
    const file = await topologyFile('bad', ONE_NODE('e2e-bad').replace('role: compute', 'role: storage'));
    const r = await cli(['up', '--topology', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('TOPOLOGY_INVALID');
    expect(r.stderr).toContain('nodes[0].role');
    expect(await hostTraces('e2e-bad')).toEqual(NOTHING);
    expect(existsSync(labDir('e2e-bad'))).toBe(false);
  });

  it('refuses a bad lab name and an unknown verb with usage help', async () => {
    const r = await cli(['up', '--name', 'Bad_Name']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('LAB_NAME_INVALID');
    const v = await cli(['frobnicate']);
    expect(v.exitCode).toBe(2);
    expect(v.stderr).toContain('unknown verb');
  });

  it('refuses an option or argument the verb does not take, naming it, and makes nothing', async () => {
    // A topology file given without --topology used to bring up the default lab.
    const file = await topologyFile('stray', ONE_NODE('e2e-stray'));
    const stray = await cli(['up', '--name', 'e2e-stray', file]);
    expect(stray.exitCode).toBe(2);
    expect(stray.stderr).toContain(`--topology ${file}`);
    const opt = await cli(['up', '--name', 'e2e-stray', '--keep']);
    expect(opt.exitCode).toBe(2);
    expect(opt.stderr).toContain('up does not take --keep');
    const cmd = await cli(['status', '--name', 'e2e-stray', '--', 'true']);
    expect(cmd.exitCode).toBe(2);
    expect(cmd.stderr).toContain('no command after --');
    const both = await cli(['outage', '--name', 'e2e-stray', 'n1', '--end', '--seconds', '5']);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('outage --end takes no --seconds or --network');
    const notUp = await cli(['outage', '--name', 'e2e-stray', 'n1', '--seconds', '5']);
    expect(notUp.exitCode).toBe(1);
    expect(notUp.stderr).toContain('e2e-stray');
    for (const [verb, extra] of [['reboot', ['--seconds', '5']], ['restart-agent', ['--hard']]] as const) {
      const wrong = await cli([verb, '--name', 'e2e-stray', 'n1', ...extra]);
      expect(wrong.exitCode, verb).toBe(2);
      expect(wrong.stderr).toContain(`${verb} does not take ${extra[0]}`);
      const noNode = await cli([verb, '--name', 'e2e-stray']);
      expect(noNode.exitCode, verb).toBe(2);
      expect(noNode.stderr).toContain(`${verb} needs a node`);
      const down = await cli([verb, '--name', 'e2e-stray', 'n1']);
      expect(down.exitCode, verb).toBe(1);
      expect(down.stderr).toContain('LAB_NOT_UP: lab e2e-stray is not up');
    }
    const two = await cli(['logs', '--name', 'e2e-stray', 'n1', 'n2']);
    expect(two.exitCode).toBe(2);
    expect(two.stderr).toContain('"n2"');
    expect(await hostTraces('e2e-stray')).toEqual(NOTHING);
    expect(existsSync(labDir('e2e-stray'))).toBe(false);
  });

  it('names the missing package when QEMU and mmdebstrap are not installed', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'brick-e2e-path-'));
    const env = { ...process.env, PATH: empty };
    const doc = await cli(['doctor'], { env });
    expect(doc.exitCode).toBe(1);
    expect(doc.stdout).toContain('qemu-system-x86');
    expect(doc.stdout).toContain('apt-get install -y');
    expect(doc.stdout).toMatch(/mmdebstrap/);
    const up = await cli(['up', '--name', 'e2e-notools'], { env });
    expect(up.exitCode).toBe(1);
    expect(up.stderr).toContain('HOST_TOOLS_MISSING');
    expect(up.stderr).toContain('package qemu-system-x86');
    expect(await hostTraces('e2e-notools')).toEqual(NOTHING);
  });

  it('fails a node that does not boot in time with its name, console lines and log path, and cleans up', async () => {
    const file = await topologyFile('slow', ONE_NODE('e2e-slow', ', bootTimeoutSeconds: 1'));
    // A boot (a node restored from a template can be ready within the second).
    const r = await cli(['up', '--topology', file], { env: { BRICK_LAB_TEMPLATES: '0' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('NODE_BOOT_TIMEOUT');
    expect(r.stderr).toContain('node n1 was not ready within 1 s');
    expect(r.stderr).toContain('last console lines');
    expect(r.stderr).toContain(join(labDir('e2e-slow'), 'logs', 'n1.console.log'));
    expect(await hostTraces('e2e-slow')).toEqual(NOTHING);
  });

  it('removes everything made so far when up is interrupted with Ctrl-C', async () => {
    const { child, exit } = await startUp('e2e-int');
    expect((await hostTraces('e2e-int')).netns).toEqual(['brick-e2e-int']);
    child.kill('SIGINT');
    const e = await exit;
    expect(e.code, e.stderr).toBe(130);
    expect(e.stderr).toContain('LAB_INTERRUPTED');
    expect(await hostTraces('e2e-int')).toEqual(NOTHING);
  });

  // kill -9 of `up` at each stage of a boot (a failpoint holds it there), then `down` from another
  // process: nothing of the lab is left on the host, whatever the stage.
  const STAGES = [
    { at: 'up:record', made: (t: Traces) => t.record && t.netns.length === 0 && t.qemu.length === 0 },
    // While its node's template boots (a shape of its own, so that it has none yet).
    { at: 'up:template', made: (t: Traces) => t.record && t.qemu.length === 1 },
    { at: 'up:networks', made: (t: Traces) => t.record && t.netns.length === 1 && t.qemu.length === 0 },
    { at: 'up:started', made: (t: Traces) => t.qemu.length >= 1 },
    { at: 'up:ready', made: (t: Traces) => t.qemu.length === 1 },
  ] as const;
  it.each(STAGES)('takes a lab down after up was killed with SIGKILL at $at', async ({ at, made }) => {
    const name = `e2e-kill-${at.split(':')[1]}`;
    const shape = at === 'up:template' ? ', memoryMiB: 400' : '';
    if (shape) await rm(join(cacheDir(), 'templates', 'compute-400m-1c-1n'), { recursive: true, force: true });
    const topo = await topologyFile(name, ONE_NODE(name, shape));
    const child = spawn(process.execPath, [CLI, 'up', '--topology', topo], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BRICK_LAB_FAILPOINT: at } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<string | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await waitFor(`failpoint ${at}`, async () => stderr.includes(`failpoint ${at} reached`), 5 * 60_000);
    const before = await hostTraces(name);
    expect(made(before), `${at}: ${JSON.stringify(before)}`).toBe(true);
    if (at === 'up:ready') expect(stderr).toMatch(/n1 ready after/);
    child.kill('SIGKILL');
    expect(await exit).toBe('SIGKILL');
    const d = await cli(['down', '--name', name]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await hostTraces(name)).toEqual(NOTHING);
    // Nor the template build's directory in the cache.
    expect((await readdir(join(cacheDir(), 'templates')).catch(() => [])).filter((f) => f.startsWith('build-'))).toEqual([]);
    const st = await cli(['status', '--name', name, '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject({ phase: 'down' });
  });

  it('takes a lab down at once after up was killed while its first VM was still starting', async () => {
    const child = spawn(process.execPath, [CLI, 'up', '--name', 'e2e-crash2'], { stdio: 'ignore' });
    const exit = new Promise((resolve) => child.on('exit', resolve));
    await waitFor('the first QEMU process', async () => (await findQemuProcesses('e2e-crash2')).length > 0, 5 * 60_000);
    child.kill('SIGKILL');
    await exit;
    // No wait for the other VMs or for QEMU to finish daemonizing: down takes whatever is there.
    const d = await cli(['down', '--name', 'e2e-crash2']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await hostTraces('e2e-crash2')).toEqual(NOTHING);
    // Nothing came back a moment later either (a late fork, a tap).
    await new Promise((r) => setTimeout(r, 3000));
    expect(await hostTraces('e2e-crash2')).toEqual(NOTHING);
  });
});
