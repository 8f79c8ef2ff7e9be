#!/usr/bin/env node
// Prints one closing line for the whole `npm test` run, from the JSON reports vitest and
// Playwright write: "tests: N passed, N failed". CI reads such a line; a person reads it too.
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
const passed = v.numPassedTests + (p.stats?.expected ?? 0);
const failed = v.numFailedTests + (p.stats?.unexpected ?? 0);
const flaky = p.stats?.flaky ?? 0;
console.log(`vitest ${v.numPassedTests} passed, ${v.numFailedTests} failed; playwright ${p.stats?.expected ?? 0} passed, ${p.stats?.unexpected ?? 0} failed${flaky ? `, ${flaky} flaky` : ''}`);
console.log(`tests: ${passed} passed, ${failed} failed`);
if (failed || passed === 0) process.exit(1);
