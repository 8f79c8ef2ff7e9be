import { defineConfig } from 'vitest/config';

/**
 * The Firefox ESR journeys (e2e-firefox/): puppeteer-core drives Debian's firefox-esr over
 * WebDriver BiDi against the built app, served by `vite preview` from the global setup.
 * One file at a time: each test starts its own Firefox, and the machine has two cores.
 */
export default defineConfig({
  test: {
    include: ['e2e-firefox/**/*.test.ts'],
    globalSetup: ['e2e-firefox/globalSetup.ts'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
