#!/usr/bin/env node
// Prints one closing line for the whole `npm test` run, from the JSON reports vitest, Playwright
// (Chromium) and the Firefox suite (vitest, e2e-firefox/) write: "tests: N passed, N failed".
// CI reads such a line; a person reads it too.
import { readFileSync } from 'node:fs';

function load(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    console.error(`test-summary: no report at ${file}`);
    process.exit(1);
  }
}

const v = load('reports/vitest.json');
const p = load('reports/playwright.json');
const f = load('reports/firefox.json');
// A Firefox run that failed before any test (the build, the server, a global setup) counts as one failure.
const fFailed = f.numFailedTests || (f.success === false ? 1 : 0);
const passed = v.numPassedTests + (p.stats?.expected ?? 0) + f.numPassedTests;
const failed = v.numFailedTests + (p.stats?.unexpected ?? 0) + fFailed;
const flaky = p.stats?.flaky ?? 0;
console.log(
  `vitest ${v.numPassedTests} passed, ${v.numFailedTests} failed; playwright ${p.stats?.expected ?? 0} passed, ${p.stats?.unexpected ?? 0} failed${flaky ? `, ${flaky} flaky` : ''}; ` +
    `firefox ${f.numPassedTests} passed, ${fFailed} failed`,
);
console.log(`tests: ${passed} passed, ${failed} failed`);
if (failed || passed === 0) process.exit(1);
