import { describe, expect, it } from 'vitest';
import { ConnectorBase } from '../../src/connectors/base.js';
import type { IscsiProperties } from '../../src/volume/properties.js';

/** A connector whose calls only note when they start and end, to see the order the chain gives them. */
class Noting extends ConnectorBase<IscsiProperties> {
  readonly protocol = 'iscsi' as const;
  constructor(readonly log: string[] = []) {
    super();
  }
  call(name: string, ms: number, fail = false): Promise<string> {
    return this.serially(async () => {
      this.log.push(`${name} starts`);
      await new Promise((r) => setTimeout(r, ms));
      this.log.push(`${name} ends`);
      if (fail) throw new Error(`${name} failed`);
      return name;
    });
  }
  connectVolume = (): never => { throw new Error('not used'); };
  disconnectVolume = (): never => { throw new Error('not used'); };
  getVolumePaths = (): never => { throw new Error('not used'); };
  getAllAvailableVolumes = (): never => { throw new Error('not used'); };
  getSearchPath = (): null => null;
}

describe('ConnectorBase.serially', () => {
  it('runs an attach and a detach started at once one after the other, across instances, and goes on after a failure', async () => {
    const log: string[] = [];
    const a = new Noting(log);
    const b = new Noting(log);
    const results = await Promise.all([a.call('detach A', 30, true).catch((e: Error) => e.message), b.call('attach B', 1), a.call('attach C', 1)]);
    expect(results).toEqual(['detach A failed', 'attach B', 'attach C']);
    expect(log).toEqual(['detach A starts', 'detach A ends', 'attach B starts', 'attach B ends', 'attach C starts', 'attach C ends']);
  });

  it('starts a call only when the one before it has ended', async () => {
    const c = new Noting();
    await Promise.all([c.call('first', 20), c.call('second', 1), c.call('third', 1)]);
    expect(c.log).toEqual(['first starts', 'first ends', 'second starts', 'second ends', 'third starts', 'third ends']);
  });
});
