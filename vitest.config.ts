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
