import type { TestProject } from 'vitest/node';
import { buildApp, startPreview } from './server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    baseURL: string;
  }
}

/** Builds the app once and serves it for every Firefox test; the server stops after the run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  buildApp();
  const preview = await startPreview();
  project.provide('baseURL', preview.url);
  return () => preview.stop();
}
