#!/usr/bin/env node
// The CLI entry; the code is compiled to dist/ by `npm run build` (scripts/bootstrap runs it).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const entry = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src', 'cli.js');
if (!existsSync(entry)) {
  process.stderr.write('brick-lab: not built yet (dist/ is missing)\n  hint: run scripts/bootstrap (or npm ci && npm run build)\n');
  process.exit(1);
}
const { cli } = await import(entry);
const code = await cli(process.argv.slice(2));
process.exitCode = code;
