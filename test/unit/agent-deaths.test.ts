import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTimeline } from '../../src/agent/server.js';
import { agentDeaths, describeAgentDeath } from '../../src/lab/lab.js';
import { FIXTURE_KERNELS, guestFixtureUrl } from './inventory-fixtures.js';

/** A real compute's boot timeline after its agent was killed with kill -9 (test/fixtures/README.md). */
const TIMELINE = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'guest-6.1.0-56', 'timeline-agent-died'), 'utf8');

describe("the agent's deaths in a boot timeline", () => {
  it('finds the one the agent loop marked, with its status and uptime', () => {
    const deaths = agentDeaths(parseTimeline(TIMELINE));
    expect(deaths).toEqual([{ status: 137, uptimeSeconds: 24.7 }]);
    expect(describeAgentDeath(deaths[0]!)).toBe('status 137 (SIGKILL: the OOM killer or kill -9) at 24.7 s of uptime');
  });

  it('finds none in a boot where the agent lived', () => {
    expect(agentDeaths(parseTimeline(TIMELINE.replace(/^agent-died.*$/m, '')))).toEqual([]);
    // The real timelines of a compute whose agent lived, booted and restored from a template.
    for (const kernel of FIXTURE_KERNELS) expect(agentDeaths(parseTimeline(readFileSync(guestFixtureUrl('timeline', kernel), 'utf8'))), kernel).toEqual([]);
  });

  it('names other signals, and an exit of its own', () => {
    expect(describeAgentDeath({ status: 134, uptimeSeconds: 3 })).toBe('status 134 (SIGABRT) at 3.0 s of uptime');
    expect(describeAgentDeath({ status: 1, uptimeSeconds: 3 })).toBe("status 1 (its own exit) at 3.0 s of uptime");
  });
});
