import { OPFS_OUTPUT_DIR } from './opfsSink.ts';

/** Deletes outputs left by earlier visits (a closed tab never reached its own clean-up). */
export async function removeOpfsOutputs(except: readonly string[] = []): Promise<void> {
  try {
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle(OPFS_OUTPUT_DIR, { create: true });
    const names: string[] = [];
    for await (const [name] of dir.entries()) if (!except.includes(name)) names.push(name);
    for (const n of names) await dir.removeEntry(n).catch(() => {});
  } catch {
    // No OPFS (or it is locked by a running conversion): nothing to clean.
  }
}
