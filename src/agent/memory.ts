import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AgentMemoryReply } from './api/types.js';

/**
 * The agent's memory for a soak: process.memoryUsage() with V8's heap spaces, after a full
 * collection when asked. A figure read without one counts garbage not yet collected (a heap in use
 * that went 13 -> 23 MiB over 100 cycles said nothing about a leak); after one, what stays is what
 * the agent holds. The collector is reached without starting Node.js with --expose-gc: the flag
 * set at run time gives a new context a `gc` function. (Imported statically: the bundle runs in a
 * vm.Script, where a dynamic import() has no loader.)
 */
let collector: (() => void) | null = null;

export function agentMemory(collect: boolean): AgentMemoryReply {
  if (collect) {
    if (!collector) {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
    }
    collector();
  }
  return {
    collected: collect,
    memory: process.memoryUsage(),
    heapSpaces: getHeapSpaceStatistics().map((s) => ({ name: s.space_name, sizeBytes: s.space_size, usedBytes: s.space_used_size })),
  };
}
