import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * brick-lab as a package: `main`, `types` and `exports` name files `npm run build` makes (npm
 * test builds first), and a program that imports the package by name gets the public API.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

async function exportsOf(specifier: string): Promise<string[]> {
  const r = await run(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()))`], { cwd: ROOT, timeout: 30_000 });
  return JSON.parse(r.stdout) as string[];
}

describe('the package', () => {
  it('points main, types and exports at built files', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { main: string; types: string; exports: Record<string, { types: string; default: string } | string> };
    const files = [pkg.main, pkg.types, ...Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : [e.types, e.default]))];
    for (const f of files) await expect(readFile(join(ROOT, f)), f).resolves.toBeInstanceOf(Buffer);
  });

  it('gives the typed clients, the codec and the error catalogue by name', async () => {
    const names = await exportsOf('brick-lab');
    for (const n of ['AgentClient', 'BrickError', 'ComputeClient', 'ERROR_CATALOGUE', 'NodeClient', 'PROTOCOLS', 'ROUTES', 'TargetClient', 'normalise', 'osBrickData', 'toConnectionInfo']) expect(names).toContain(n);
  });

  it("gives brick-lab's own connectors as brick-lab/connectors", async () => {
    expect(await exportsOf('brick-lab/connectors')).toEqual(['builtinConnector', 'builtinConnectors']);
  });
});
