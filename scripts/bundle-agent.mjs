// Bundles the node agent into one ES module file. Guests read it over 9p once at boot; one file
// loads much faster under TCG than fastify's few hundred modules would.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'src/agent/main.ts')],
  outfile: join(root, 'dist/agent/agent.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __brickRequire } from 'node:module'; const require = __brickRequire(import.meta.url);" },
});
