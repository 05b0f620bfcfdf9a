import { kernelRandomUUID } from '../system/random.js';
import type { HostSnapshot } from '../inventory/model.js';
import { BrickError } from '../system/errors.js';

/**
 * The baselines an agent keeps: the last `size` snapshots it took as baselines, each named by a
 * random id. The oldest goes first; an agent that restarts keeps none, and a caller that finds its
 * id gone sends the snapshot itself.
 */
export class KeptBaselines {
  private readonly kept = new Map<string, HostSnapshot>();

  constructor(private readonly size = 16) {}

  keep(s: HostSnapshot): string {
    const id = kernelRandomUUID();
    this.kept.set(id, s);
    while (this.kept.size > this.size) this.kept.delete(this.kept.keys().next().value!);
    return id;
  }

  get(id: string): HostSnapshot {
    const s = this.kept.get(id);
    if (!s) {
      throw new BrickError('BASELINE_UNKNOWN', `no baseline ${JSON.stringify(id)} is kept on this node (the agent keeps the last ${this.size}, and none across a restart)`, {
        hint: 'send the snapshot itself as baseline, or take a new one with POST /v1/inventory/baselines',
      });
    }
    return s;
  }
}
