import { describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/agent/server.js';
import { IdleScavenger, scavenge } from '../../src/agent/idle-gc.js';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the agent\'s scavenge while idle', () => {
  it('runs V8\'s scavenge on demand (the flag set at run time)', () => {
    expect(scavenge()).toBe(true);
  });

  it('runs once no request has been in flight for its wait, never during one, once per quiet spell', async () => {
    const s = new IdleScavenger(30);
    s.started();
    s.started();
    s.ended();
    await wait(60);
    expect(s.scavenges).toBe(0); // one still in flight
    s.ended();
    await wait(10);
    s.started();
    s.ended(); // the wait starts again
    await wait(15);
    expect(s.scavenges).toBe(0);
    await wait(40);
    expect(s.scavenges).toBe(1);
    await wait(60);
    expect(s.scavenges).toBe(1);
    // A request that began after the wait started and still runs when it ends: not then.
    s.started();
    s.ended();
    await wait(5);
    s.started();
    await wait(60);
    expect(s.scavenges).toBe(1);
    s.ended();
    await wait(60);
    expect(s.scavenges).toBe(2);
  });

  it('is told of every request an agent answers', async () => {
    const s = new IdleScavenger(20);
    const app = await buildAgent({ lab: 't', node: 't', role: 'compute', token: 'tok', compute: true, idleScavenger: s });
    try {
      await app.ready();
      for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'GET', url: '/v1/connectors', headers: { authorization: 'Bearer tok' } })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/v1/connectors' })).statusCode).toBe(401);
      await wait(60);
      expect(s.scavenges).toBe(1);
    } finally {
      await app.close();
    }
  });
});
