// Bundles the node agent into one CommonJS file plus a V8 code cache for it. Guests read the
// bundle over 9p once at boot: one file loads much faster under TCG than fastify's few hundred
// modules would, and the code cache spares the guest compiling it (scripts/agent-loader.cjs).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * fastify loads node:https and node:http2 as it starts, for servers the agent never makes (it
 * serves plain HTTP/1.1): with TLS behind them, a few hundred milliseconds of a booting guest's one
 * vCPU under TCG. In fastify's server module they become objects that load the real module on
 * first use, so an HTTPS or HTTP/2 server still works; everything else is untouched.
 */
function lazyServerModules() {
  return {
    name: 'lazy-server-modules',
    setup(b) {
      b.onResolve({ filter: /^node:(https|http2)$/ }, (args) =>
        /[\\/]fastify[\\/]lib[\\/]server\.js$/.test(args.importer) ? { path: args.path, namespace: 'lazy-builtin' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
        contents: `let m;\nconst load = () => (m ??= require(${JSON.stringify(args.path)}));\nmodule.exports = new Proxy({}, { get: (_, k) => load()[k], has: (_, k) => k in load(), ownKeys: () => Reflect.ownKeys(load()), getOwnPropertyDescriptor: (_, k) => Object.getOwnPropertyDescriptor(load(), k) });\n`,
        loader: 'js',
        resolveDir: root,
      }));
    },
  };
}
const out = join(root, 'dist/agent/agent.cjs');
await build({
  entryPoints: [join(root, 'src/agent/main.ts')],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [lazyServerModules()],
});
// The agent for a host the user already has (brick-lab agent), one file that needs only Node.js.
await build({
  entryPoints: [join(root, 'src/agent/host-main.ts')],
  outfile: join(root, 'dist/brick-lab-agent.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync(join(root, 'dist/brick-lab-agent.cjs'), 0o755);
copyFileSync(join(root, 'scripts/agent-loader.cjs'), join(root, 'dist/agent/agent-loader.cjs'));
// The Python workers import line_worker.py from their own folder.
copyFileSync(join(root, 'src/system/line_worker.py'), join(root, 'dist/agent/line_worker.py'));
copyFileSync(join(root, 'src/targets/lio_helper.py'), join(root, 'dist/agent/lio_helper.py'));
copyFileSync(join(root, 'src/inventory/multipathd_relay.py'), join(root, 'dist/agent/multipathd_relay.py'));
copyFileSync(join(root, 'src/conformance/os_brick_connector.py'), join(root, 'dist/agent/os_brick_connector.py'));
// A compute template's training (src/agent/train.ts): a real compute's recorded host and volumes.
copyFileSync(join(root, 'test/fixtures/guest-6.1.0-56/inventory-attached.json'), join(root, 'dist/agent/agent-training.json'));
// The agent's node flags (see agent-loader.cjs): V8 takes a code cache only under the flags it was made with.
execFileSync(process.execPath, ['--compact-on-every-full-gc', join(root, 'dist/agent/agent-loader.cjs'), out, '--make-cache'], {
  env: { ...process.env, BRICK_AGENT_WARMUP: '1' },
  stdio: 'inherit',
  timeout: 60_000,
});
