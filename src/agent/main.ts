import { readFileSync } from 'node:fs';
import { buildAgent } from './server.js';

/** Entry point inside a guest; stage 2 sets the environment from the node's config. */
function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`brick-lab agent: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const role = need('BRICK_ROLE');
if (role !== 'target' && role !== 'compute') {
  console.error(`brick-lab agent: BRICK_ROLE must be target or compute, not ${role}`);
  process.exit(2);
}
const app = await buildAgent({
  lab: need('BRICK_LAB'),
  node: need('BRICK_NODE'),
  role,
  token: readFileSync(need('BRICK_AGENT_TOKEN_FILE'), 'utf8').trim(),
  readyFile: need('BRICK_AGENT_READY_FILE'),
  timelineFile: need('BRICK_AGENT_TIMELINE'),
  logger: false,
});
const host = need('BRICK_AGENT_HOST');
const port = Number(need('BRICK_AGENT_PORT'));
await app.listen({ host, port });
console.error(`brick-lab agent: ${process.env.BRICK_NODE} listening on ${host}:${port}`);
