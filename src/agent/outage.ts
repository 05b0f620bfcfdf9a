import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';
import type { DataNetwork } from '../targets/model.js';
import { OUTAGE_MAX_SECONDS, type OutageReply } from './api/types.js';

/**
 * A node's data paths down for a while: its own interfaces on those networks (a compute's link,
 * or with every network a target offline), brought back up by the agent itself when the time is
 * up, when the outage is ended early, or when the agent closes. The management network, which the
 * agent answers on, is never touched.
 */
export class Outages {
  private readonly until = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  constructor(private readonly networks: DataNetwork[]) {}

  /** Take `names` (every data network when none is named) down for `seconds`. */
  async start(names: string[] | undefined, seconds: number): Promise<OutageReply> {
    if (this.networks.length === 0) throw new BrickError('BAD_REQUEST', 'this node has no data network to take down', { hint: 'the topology gives it none' });
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > OUTAGE_MAX_SECONDS) {
      throw new BrickError('BAD_REQUEST', `seconds: an outage lasts 1 to ${OUTAGE_MAX_SECONDS} whole seconds (got ${seconds})`, { details: { field: 'seconds' } });
    }
    const known = this.networks.map((n) => n.name);
    const chosen = names && names.length > 0 ? [...new Set(names)] : known;
    const unknown = chosen.filter((n) => !known.includes(n));
    if (unknown.length > 0) {
      throw new BrickError('BAD_REQUEST', `networks: this node has no data network ${unknown.map((n) => JSON.stringify(n)).join(', ')} (it has ${known.join(', ')})`, { details: { field: 'networks' } });
    }
    const at = Date.now() + seconds * 1000;
    for (const net of chosen) {
      const was = this.until.get(net);
      if (was) clearTimeout(was.timer);
      const timer = setTimeout(() => void this.restore([net]), seconds * 1000);
      timer.unref();
      this.until.set(net, { at, timer });
      await link(net, false);
    }
    return this.state();
  }

  /** Bring `names` (every network that is down, when none is named) back up now. */
  async restore(names?: string[]): Promise<OutageReply> {
    for (const net of names ?? [...this.until.keys()]) {
      const was = this.until.get(net);
      if (!was) continue;
      clearTimeout(was.timer);
      this.until.delete(net);
      await link(net, true);
    }
    return this.state();
  }

  state(): OutageReply {
    return { down: [...this.until].map(([network, u]) => ({ network, until: new Date(u.at).toISOString() })) };
  }
}

function link(net: string, up: boolean): Promise<unknown> {
  return exec(['ip', 'link', 'set', 'dev', net, up ? 'up' : 'down'], { timeoutMs: 10_000 });
}
