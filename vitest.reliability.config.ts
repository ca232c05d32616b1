import { defineConfig } from 'vitest/config';

/** `npm run test:reliability`: the reliability cases of issue 12 at full size (see test/reliability/scale.ts). */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default'],
    env: { EWML_RELIABILITY: 'full' },
  },
});
