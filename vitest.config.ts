import { defineConfig } from 'vitest/config';

const FIFTEEN_MINUTES = 15 * 60_000;

export default defineConfig({
  test: {
    // The console report, plus files CI keeps: JUnit for GitHub, JSON for .ci/run's summary line.
    reporters: ['default', ['junit', { outputFile: 'results/tests.junit.xml' }], ['json', { outputFile: 'results/tests.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Some unit tests start the CLI or a connector program as a process; they run beside the
          // e2e project's image build and VMs on a 2-core machine, where 5 s is not enough to be
          // sure a process started. A hang guard, not a speed goal.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: FIFTEEN_MINUTES,
          hookTimeout: FIFTEEN_MINUTES,
          fileParallelism: false,
          globalSetup: ['test/e2e/global-setup.ts'],
        },
      },
    ],
  },
});
