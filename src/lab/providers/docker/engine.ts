import Docker from 'dockerode';
import { BrickError } from '../../../system/errors.js';

// Ryuk, testcontainers' reaper, is an image from a registry, and it removes containers when the
// process that made them exits; a lab outlives `brick-lab up`. brick-lab removes its containers
// and networks by label instead (`down`, and the test suite's sweep).
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

/** Every container and network a lab makes carries these labels; `down` finds them by the first. */
export const LAB_LABEL = 'io.brick-lab.lab';
export const NODE_LABEL = 'io.brick-lab.node';

let client: Docker | null = null;

/** The Docker Engine named by DOCKER_HOST, else the local socket. */
export function dockerClient(): Docker {
  client ??= new Docker();
  return client;
}

export function engineAddress(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

export interface EngineInfo {
  version: string;
  apiVersion: string;
  storageDriver: string;
  cgroupVersion: string;
}

/** Whether an engine answers, within a few seconds; never throws. */
export async function enginePing(docker = dockerClient(), timeoutMs = 5000): Promise<boolean> {
  try {
    await Promise.race([docker.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref())]);
    return true;
  } catch {
    return false;
  }
}

/** The engine's identity, or a clear refusal when none answers. */
export async function requireEngine(docker = dockerClient()): Promise<EngineInfo> {
  if (!(await enginePing(docker))) {
    throw new BrickError('DOCKER_UNAVAILABLE', `no Docker Engine answers at ${engineAddress()}, and the topology has nodes with provider: docker`, {
      hint: 'start one (apt-get install -y docker.io && dockerd &), point DOCKER_HOST at one, or use provider: qemu for those nodes',
    });
  }
  const [v, info] = await Promise.all([docker.version(), docker.info() as Promise<{ Driver?: string; CgroupVersion?: string }>]);
  return { version: v.Version, apiVersion: v.ApiVersion, storageDriver: info.Driver ?? '?', cgroupVersion: info.CgroupVersion ?? '?' };
}

/** What the engine said, from a dockerode error. */
export function dockerMessage(e: unknown): string {
  return ((e as { json?: { message?: string } }).json?.message ?? (e as Error).message).trim();
}
