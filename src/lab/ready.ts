import { readFile } from 'node:fs/promises';
import { BrickError } from '../system/errors.js';
import { poll, realClock, type Clock } from '../system/wait.js';
import { AgentClient } from '../agent/api/client.js';
import { processAlive } from '../system/process.js';
import type { NodeRecord } from './state.js';

export async function consoleTail(path: string, lines = 30): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  // Console logs hold terminal escapes (a shell's cursor queries); strip them so an error message
  // cannot rewrite the user's terminal.
  const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  return clean.trimEnd().split('\n').slice(-lines).join('\n');
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new BrickError('LAB_INTERRUPTED', 'interrupted; everything made so far was removed');
}

/**
 * Wait until a node's agent reports ready. `alive` says whether the node's process (QEMU, or its
 * container) still runs, so that a node that died is reported at once with its console. After a
 * reboot, `notBoot` is the boot it left: an answer from that boot is not the node being back.
 */
export async function waitReady(node: NodeRecord, token: string, timeoutMs: number, signal?: AbortSignal, alive: () => Promise<boolean> | boolean = () => !node.pid || processAlive(node.pid), clock?: Clock, notBoot?: string): Promise<void> {
  const client = new AgentClient(node.name, node.url, token);
  let last = 'no answer yet';
  let answered = true;
  let oldBoot = false;
  const now = (): number => (clock ?? realClock).now();
  const deadline = now() + timeoutMs;
  const ask = async (): Promise<boolean> => {
    throwIfAborted(signal);
    if (!(await alive())) {
      throw new BrickError('NODE_DIED', `node ${node.name} stopped while booting (${node.provider === 'docker' ? 'its container exited' : 'QEMU exited'}); last console lines:\n${await consoleTail(node.consoleLog)}`, {
        hint: `full console log: ${node.consoleLog}`,
      });
    }
    try {
      // The agent holds the answer until it is ready (5 s at most), but not past this wait's own end.
      const h = await client.health(3000, Math.max(0, Math.min(5000, deadline - now())));
      answered = true;
      oldBoot = notBoot !== undefined && h.bootId === notBoot;
      if (oldBoot) {
        last = `the boot it left (${notBoot}) still answers`;
        return false;
      }
      // A step that failed fails the boot, even if the node went on to ready (a data NIC that
      // did not get its name and address leaves a node that answers and cannot serve).
      const failed = h.timeline.find((t) => t.step.startsWith('failed:'));
      if (failed) {
        throw new BrickError('NODE_BOOT_FAILED', `node ${node.name}: boot step ${failed.step.slice(7)} failed; last console lines:\n${await consoleTail(node.consoleLog)}`, {
          hint: `full console log: ${node.consoleLog}`,
        });
      }
      if (h.state === 'ready') return true;
      last = `agent answers, state ${h.state}, last step ${h.timeline.at(-1)?.step ?? 'none'}`;
    } catch (e) {
      if (e instanceof BrickError && e.code.startsWith('NODE_')) throw e;
      last = (e as Error).message;
      answered = false;
      oldBoot = false;
    }
    return false;
  };
  const r = await poll(ask, {
    timeoutMs,
    // The health call itself waits for ready: ask again at once after an answer, 250 ms after none (agent not listening yet).
    intervalMs: () => (answered && !oldBoot ? 0 : 250),
    ...(clock ? { clock } : {}),
  });
  if (!r.ok) {
    throw new BrickError('NODE_BOOT_TIMEOUT', `node ${node.name} was not ready within ${Math.round(timeoutMs / 1000)} s (${last}); last console lines:\n${await consoleTail(node.consoleLog)}`, {
      hint: `full console log: ${node.consoleLog}; raise bootTimeoutSeconds in the topology if the host is slow`,
    });
  }
}
