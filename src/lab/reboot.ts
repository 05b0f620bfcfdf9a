import { readFile } from 'node:fs/promises';
import { BrickError } from '../system/errors.js';
import { progress } from '../system/log.js';
import { waitFor } from '../system/wait.js';
import { labClient } from './lab.js';
import { providerOf } from './providers/registry.js';
import { waitReady } from './ready.js';
import { writeRecord, type LabRecord } from './state.js';

export interface RebootOptions {
  /** A reset at once (nothing synced, unmounted or logged out) instead of a clean reboot. */
  hard?: boolean;
  /** Runs once the node is down and before it is waited for (the array unmapping meanwhile). */
  whileDown?: () => Promise<void>;
  signal?: AbortSignal;
}

export interface RebootReport {
  node: string;
  hard: boolean;
  /** The boot the node left and the one it came back with. */
  fromBoot: string;
  bootId: string;
  /** From the request to the node's agent answering ready again. */
  seconds: number;
  /** Uptime at which the new boot's steps were done (its timeline's ready mark). */
  readyUptimeSeconds: number | null;
}

/** How long a node has to go down once it answered the reboot request (a clean one logs out first). */
const GO_DOWN_MS = 60_000;

/**
 * Reboot a lab node and wait until it is back: the agent answers with the boot it leaves, the
 * guest reboots inside the same QEMU process (same pid, taps, management forward, so `down` finds
 * everything as before), stage 2 runs again from the node's disk, and `up`'s readiness wait (with
 * the node's boot timeout, and QEMU's death seen at once) applies to the new boot.
 */
export async function rebootNode(rec: LabRecord, name: string, opts: RebootOptions = {}): Promise<RebootReport> {
  const client = await labClient(rec, name);
  const node = rec.nodes.find((n) => n.name === name)!;
  if (node.container?.mode === 'host-kernel') {
    throw new BrickError('NODE_NOT_REBOOTABLE', `node ${name} is a target on the host's own kernel (a container): rebooting it would mean rebooting this host`, {
      hint: 'reboot a node that boots the lab\'s guest kernel (provider qemu, or docker with its guest)',
    });
  }
  const hard = opts.hard === true;
  const started = Date.now();
  const left = await client.reboot(hard);
  progress('reboot', `${name}: ${hard ? 'hard reset' : 'clean reboot'} (leaving boot ${left.bootId})`);
  // Down first: until the old boot stops answering, a whileDown step would run on a live host.
  await waitFor(
    async () => {
      const h = await client.health(1000).catch(() => null);
      return h === null || h.bootId !== left.bootId ? true : null;
    },
    {
      timeoutMs: GO_DOWN_MS,
      intervalMs: 200,
      onTimeout: () => new BrickError('NODE_REBOOT_FAILED', `node ${name} still runs boot ${left.bootId} ${GO_DOWN_MS / 1000} s after it was asked to reboot`, {
        hint: `its console says why: brick-lab logs ${name}`,
      }),
    },
  );
  if (opts.whileDown) await opts.whileDown();
  const token = (await readFile(rec.tokenFile, 'utf8')).trim();
  await waitReady(node, token, node.bootTimeoutSeconds * 1000, opts.signal, () => providerOf(node).alive(node), undefined, left.bootId);
  const h = await client.health(5000);
  node.readyAt = new Date().toISOString();
  await writeRecord(rec);
  return {
    node: name,
    hard,
    fromBoot: left.bootId,
    bootId: h.bootId,
    seconds: (Date.now() - started) / 1000,
    readyUptimeSeconds: h.timeline.find((t) => t.step === 'ready')?.uptimeSeconds ?? null,
  };
}
