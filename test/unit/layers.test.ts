import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The layer check (`npm run check:layers`, dependency-cruiser with .dependency-cruiser.cjs) is
 * itself tested: it must fail on a deliberately bad tree before its pass on src/ means anything.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const run = promisify(execFile);

async function cruise(cwd: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'err'], { cwd, timeout: 50_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

/** A small tree shaped like src/, with the given files. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'brick-lab-layers-'));
  made.push(dir);
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

/** The check on a tree of these files must fail, and its report name each of `expected`. */
async function refused(files: Record<string, string>, ...expected: string[]): Promise<void> {
  const r = await cruise(await tree(files));
  expect(r.code).not.toBe(0);
  for (const e of expected) expect(r.out).toContain(e);
}

describe('the layer check', () => {
  it('fails on an import from a lower layer to a higher one, naming the rule and the files', async () => {
    await refused(
      {
        'src/system/exec.ts': "import { IscsiConnector } from '../connectors/iscsi.js';\nexport const x = IscsiConnector;\n",
        'src/connectors/iscsi.ts': 'export class IscsiConnector {}\n',
      },
      'layer-system',
      'src/system/exec.ts → src/connectors/iscsi.ts',
    );
  });

  it('fails on a sideways import (connectors to targets) and on host code reaching node code', async () => {
    await refused(
      {
        'src/connectors/iscsi.ts': "import { lun } from '../targets/volumes.js';\nexport const x = lun;\n",
        'src/targets/volumes.ts': 'export const lun = 0;\n',
        'src/scenarios/catalog.ts': "import { takeSnapshot } from '../inventory/snapshot.js';\nexport const y = takeSnapshot;\n",
        'src/inventory/snapshot.ts': 'export function takeSnapshot(): void {}\n',
      },
      'layer-connectors: src/connectors/iscsi.ts → src/targets/volumes.ts',
      'layer-scenarios: src/scenarios/catalog.ts → src/inventory/snapshot.ts',
    );
  });

  it('fails on a cycle between folders even when no module cycle exists', async () => {
    await refused(
      {
        'src/lab/a.ts': "import { b } from '../scenarios/b.js';\nexport const a = b;\n",
        'src/scenarios/b.ts': 'export const b = 1;\n',
        'src/scenarios/c.ts': "import { d } from '../lab/d.js';\nexport const c = d;\n",
        'src/lab/d.ts': 'export const d = 1;\n',
      },
      'no-circular-folders',
    );
  });

  it("lets the contract name the node's model types, but not run its code", async () => {
    const typesOnly = await tree({
      'src/agent/api/wire.ts': "import type { Snap } from '../../inventory/model.js';\nexport type Reply = Snap;\n",
      'src/inventory/model.ts': 'export interface Snap { a: number }\n',
    });
    expect((await cruise(typesOnly)).code).toBe(0);
    await refused(
      {
        'src/agent/api/wire.ts': "import { snap } from '../../inventory/model.js';\nexport const r = snap;\n",
        'src/inventory/model.ts': 'export const snap = 1;\n',
      },
      'layer-agent-api-model-types-only',
    );
  });

  it('passes on brick-lab\'s own src/', async () => {
    const r = await cruise(ROOT);
    expect(r.out).toContain('no dependency violations found');
    expect(r.code).toBe(0);
  });
});
