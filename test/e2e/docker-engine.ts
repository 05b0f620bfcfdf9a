import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerClient, enginePing } from '../../src/lab/providers/docker/engine.js';
import { exec, startServer, which } from '../../src/system/exec.js';
import { processAlive, stopProcesses } from '../../src/system/process.js';
import { stateDir } from '../../src/system/paths.js';

/** The pid of a dockerd the tests started (and must stop); absent when they use one that ran already. */
export const TEST_DOCKERD_PID = '/run/brick-lab/test-dockerd.pid';

function log(msg: string): void {
  process.stderr.write(`[docker-engine] ${msg}\n`);
}

async function aptInstallDocker(): Promise<void> {
  const fresh = await exec(['find', '/var/lib/apt/lists', '-maxdepth', '1', '-name', '*Packages*', '-mmin', '-1440'], { timeoutMs: 10_000, reject: false });
  if (!fresh.stdout.trim()) {
    log('apt-get update');
    await exec(['apt-get', 'update', '-qq'], { timeoutMs: 10 * 60_000 });
  }
  log("installing Debian's docker.io");
  await exec(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'docker.io'], {
    timeoutMs: 15 * 60_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } as Record<string, string>,
  });
}

/**
 * A Docker Engine for the docker-provider tests, as the tests would start any server they need:
 * the one that answers already (left alone afterwards), else Debian's docker.io installed when
 * missing and dockerd started on the default socket, stopped again by `stop`.
 */
export async function ensureDockerEngine(): Promise<{ started: boolean; stop: () => Promise<void> }> {
  if (await enginePing(dockerClient(), 3000)) return { started: false, stop: async () => undefined };
  if (!(await which('dockerd'))) await aptInstallDocker();
  const dockerd = (await which('dockerd'))!;
  await mkdir('/run/brick-lab', { recursive: true });
  const logFile = join(stateDir(), 'test-dockerd.log');
  await mkdir(stateDir(), { recursive: true });
  const t = performance.now();
  const pid = startServer([dockerd, '--host', 'unix:///var/run/docker.sock', '--pidfile', '/run/brick-lab/dockerd.pid'], { logFile });
  await writeFile(TEST_DOCKERD_PID, `${pid}\n`);
  const deadline = Date.now() + 90_000;
  while (!(await enginePing(dockerClient(), 2000))) {
    if (!processAlive(pid)) {
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
      await rm(TEST_DOCKERD_PID, { force: true });
      throw new Error(`dockerd exited while starting; last lines of ${logFile}:\n${tail}`);
    }
    if (Date.now() > deadline) {
      await stopTestDockerd();
      throw new Error(`dockerd did not answer within 90 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`dockerd ${pid} answers after ${((performance.now() - t) / 1000).toFixed(1)} s (log: ${logFile})`);
  return { started: true, stop: stopTestDockerd };
}

/** Stop the dockerd the tests started, if any (also after an interrupted run). */
export async function stopTestDockerd(): Promise<void> {
  if (!existsSync(TEST_DOCKERD_PID)) return;
  const pid = Number((await readFile(TEST_DOCKERD_PID, 'utf8')).trim());
  if (pid > 0 && processAlive(pid)) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('dockerd')) await stopProcesses([pid], 30_000);
  }
  await rm(TEST_DOCKERD_PID, { force: true });
}
