import { defineConfig } from '@playwright/test';

/** Port of the preview server the e2e run builds and starts (npm start uses 4173); E2E_PORT=N lets two checkouts test at once. */
export const E2E_PORT = Number(process.env.E2E_PORT) || 4179;

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  // Conversions of a few hundred MiB and the 1 GiB memory run take tens of seconds on 2 cores.
  timeout: 180_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [['list'], ['json', { outputFile: 'reports/playwright.json' }]],
  use: {
    baseURL: `http://127.0.0.1:${E2E_PORT}`,
    // Debian's Chromium; nothing is downloaded (docs/browser.md, Testing in Debian's browsers). Playwright adds --no-sandbox.
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--disable-gpu'] },
    serviceWorkers: 'block',
    trace: 'off',
  },
  webServer: {
    command: `npx vite build --logLevel warn && npx vite preview --host 127.0.0.1 --port ${E2E_PORT} --strictPort`,
    url: `http://127.0.0.1:${E2E_PORT}`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'ignore',
  },
});
