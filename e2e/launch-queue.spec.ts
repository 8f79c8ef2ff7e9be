import { readFileSync } from 'node:fs';
import { test, expect, qemuImg, fillPattern } from './fixtures.ts';
import { expectPreview } from './helpers.ts';

const MiB = 1024 * 1024;

/**
 * The installed app receives files from the OS through launchQueue (manifest file_handlers).
 * Chromium cannot be made to launch an installed app here, so the queue is replaced by one the
 * test drives, and it hands over real FileSystemFileHandles (from OPFS), as the OS launch does.
 */
test('files launched from the OS (launchQueue) are previewed', async ({ page, context, work }) => {
  const src = work.file('launched.vdi');
  qemuImg('create', '-q', '-f', 'vdi', src, String(24 * MiB));
  fillPattern(src, 'vdi', 0, 3 * MiB, MiB, 4);
  await context.addInitScript(() => {
    const queued: unknown[] = [];
    Object.defineProperty(window, 'launchQueue', {
      value: {
        setConsumer(fn: (p: unknown) => void) {
          (window as unknown as { __launch: (p: unknown) => void }).__launch = fn;
          for (const p of queued.splice(0)) fn(p);
        },
      },
    });
  });
  await page.goto('/');
  await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const handle = await (await navigator.storage.getDirectory()).getFileHandle('launched.vdi', { create: true });
    const w = await handle.createWritable();
    await w.write(bytes);
    await w.close();
    (window as unknown as { __launch: (p: unknown) => void }).__launch({ files: [handle] });
  }, readFileSync(src).toString('base64'));
  await expectPreview(page, 'vdi', 24 * MiB);
  await expect(page.getByTestId('image-info')).toContainText('launched.vdi');
});
