declare const __DISKFERRY_VERSION__: string | undefined;

/** Set by the bundler (scripts/build-cli.mjs); from sources, read from package.json. */
export async function version(): Promise<string> {
  if (typeof __DISKFERRY_VERSION__ === 'string') return __DISKFERRY_VERSION__;
  const { readFileSync } = await import('node:fs');
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
