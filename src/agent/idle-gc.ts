import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let youngGc: (() => void) | null | undefined;

/**
 * Empty V8's young generation now (a scavenge: it copies what is still live there, which between
 * requests is little), through `gc` with the flag set at run time (V8 gives it to contexts made
 * after). Returns whether it ran.
 */
export function scavenge(): boolean {
  if (youngGc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as (o: { type: 'minor' }) => void;
      youngGc = () => gc({ type: 'minor' });
    } catch {
      youngGc = null;
    }
  }
  if (!youngGc) return false;
  youngGc();
  return true;
}

/**
 * The node agent's scavenge while idle: once no request has been in flight for `idleMs`, the young
 * generation the last requests filled is emptied, so that the next request does not stop for it.
 * Under TCG a scavenge in the middle of a request costs it milliseconds (a full inventory leaves
 * megabytes behind, and the fetch-paths call after it paid for them). Never during a request.
 */
export class IdleScavenger {
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private runs = 0;

  constructor(private readonly idleMs = 200) {}

  started(): void {
    this.inFlight++;
  }

  ended(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.inFlight > 0) return;
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.inFlight === 0 && scavenge()) this.runs++;
      }, this.idleMs).unref();
    }
  }

  /** How many scavenges ran. */
  get scavenges(): number {
    return this.runs;
  }
}
