import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/system/paths.js';

/**
 * The agent's node flags are written where node is started: the guest's stage 2, the docker entry
 * script, and the build that makes the code cache (V8 takes a code cache only under the flags it
 * was made with). The loader names them (AGENT_NODE_FLAGS) and warns at run time; this keeps the
 * three launchers in step with it before any guest boots.
 */
const read = (rel: string): string => readFileSync(join(PROJECT_ROOT, rel), 'utf8');

/** The flags given to node before agent-loader.cjs, on each line that starts it. */
function launchFlags(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.includes('agent-loader.cjs') && (l.includes('/node ') || l.includes('execFileSync(')))
    .map((l) => {
      const before = l.slice(0, l.indexOf('agent-loader.cjs'));
      return [...before.matchAll(/(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
    });
}

describe("the agent's node flags", () => {
  const named = /const AGENT_NODE_FLAGS = \[([^\]]*)\]/.exec(read('scripts/agent-loader.cjs'));
  const flags = [...(named?.[1] ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]!);

  it('are named by the loader', () => {
    expect(flags).toEqual(['--compact-on-every-full-gc']);
  });

  it.each(['images/guest/stage2.sh', 'images/docker/node-entry.sh', 'scripts/bundle-agent.mjs'])('are what %s starts the agent with', (file) => {
    const lines = launchFlags(read(file));
    expect(lines.length, file).toBeGreaterThan(0);
    for (const l of lines) expect(l, file).toEqual(flags);
  });

  it('tells a launcher that leaves one out', () => {
    expect(launchFlags('exec /opt/brick-lab/node/node /brick/agent-loader.cjs /brick/agent.cjs')).toEqual([[]]);
  });
});
