/**
 * The host agent as one file that needs only Node.js (dist/brick-lab-agent.cjs, made by
 * scripts/bundle-agent.mjs): `node brick-lab-agent.cjs --test-host ...` takes what
 * `brick-lab agent` takes (src/agent/host-agent.ts).
 */
import { BrickError } from '../system/errors.js';
import { hostAgentMain } from './host-agent.js';

hostAgentMain(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`brick-lab agent: ${e instanceof BrickError ? e.describe() : ((e as Error).stack ?? String(e))}\n`);
    process.exitCode = e instanceof BrickError && e.code === 'USAGE' ? 2 : 1;
  },
);
