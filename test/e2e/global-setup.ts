import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureImage } from '../../src/lab/image/build.js';
import { stopTestDockerd } from './docker-engine.js';
import { ROOT, sweepTestLabs } from './helpers.js';

/**
 * Before the e2e suite: remove what an earlier interrupted run left, check the CLI is built, and
 * build the guest image once (with its progress lines) so no test pays for it. After the suite,
 * and on Ctrl-C or SIGTERM: remove every e2e lab again.
 */
export default async function setup(): Promise<() => Promise<void>> {
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js')) || !existsSync(join(ROOT, 'dist', 'agent', 'agent.cjs.cache'))) {
    throw new Error('dist/ is not built: run scripts/bootstrap (or npm run build) before the e2e tests');
  }
  const stale = await sweepTestLabs();
  await stopTestDockerd(); // one an interrupted run started
  if (stale.length) process.stderr.write(`[e2e] removed labs an earlier run left behind: ${stale.join(', ')}\n`);
  await ensureImage();

  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`[e2e] ${sig}: removing e2e labs\n`);
    void sweepTestLabs()
      .then(stopTestDockerd)
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  return async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const left = await sweepTestLabs();
    if (left.length) process.stderr.write(`[e2e] removed labs the tests left behind: ${left.join(', ')}\n`);
    await stopTestDockerd();
  };
}
