import type { ByteSink, ByteSource, FileResolver } from '../../src-core/io/bytes.ts';
import type { OutputPlace } from '../../src-core/pipeline/job.ts';
import type { OutputTarget } from '../protocol.ts';
import { FileSetResolver } from './fileSet.ts';
import { OpfsSink } from './opfsSink.ts';
import { OpfsOutputResolver } from './outputFiles.ts';
import { WritableSink } from './writableSink.ts';

/** What a finished conversion hands to the page. */
export interface WorkerOutput {
  /** The finished OPFS file, for the page to download (OPFS only). */
  file?: File;
  /** Extra files of a multi-file output (OPFS only), in the order the writer created them. */
  extraFiles: { name: string; file: File }[];
  /** Bytes of the output, its extra files included. */
  size: number;
}

/**
 * The page's output: the file the user picked in the save dialog (written through a
 * File System Access stream, which Chromium commits when it is closed), or a file in OPFS
 * (with the extra files of a multi-file output beside it) that the page offers as a download.
 * discard() aborts or removes only what this conversion created: a picked file that existed
 * before the save dialog keeps its content (OutputTarget.createdByDialog).
 */
export class WorkerOutputPlace implements OutputPlace<WorkerOutput> {
  readonly resolver: FileResolver;
  private readonly outputs: OpfsOutputResolver | undefined;
  private sink: WritableSink | OpfsSink | undefined;
  private finished: Promise<{ file?: File; extraFiles: { name: string; file: File }[] }> | undefined;

  constructor(
    private readonly output: OutputTarget,
    /** The output's name as the user knows it. */
    readonly name: string,
    /** Reads the input's companions. */
    input: FileResolver,
  ) {
    // With a picked file there is no folder for siblings: multi-file formats refuse (typed error).
    this.outputs = output.kind === 'opfs' ? new OpfsOutputResolver(input, output.prefix) : undefined;
    this.resolver = this.outputs ?? input;
  }

  async create(): Promise<ByteSink> {
    this.sink =
      this.output.kind === 'fsa' ? await WritableSink.open(this.output.handle) : await OpfsSink.create(this.output.name, this.name);
    return this.sink;
  }

  /** The closed output as Files (OPFS: the main file and its extra files). */
  private files(): Promise<{ file?: File; extraFiles: { name: string; file: File }[] }> {
    this.finished ??= (async () => {
      const file = this.sink instanceof OpfsSink ? await this.sink.file() : undefined;
      const extraFiles: { name: string; file: File }[] = [];
      for (const c of this.outputs?.created ?? []) extraFiles.push({ name: c.name, file: await c.sink.file() });
      return { file, extraFiles };
    })();
    return this.finished;
  }

  /** The finished file (and any extent files), opened through Blob slices as a user would open them. */
  async reopen(): Promise<{ source: ByteSource; resolver: FileResolver }> {
    const { file, extraFiles } = await this.files();
    const written = file ?? (await (this.output as { handle: FileSystemFileHandle }).handle.getFile());
    const resolver = new FileSetResolver([{ name: this.name, file: written }, ...extraFiles].map((o) => ({ file: o.file, path: o.name })));
    return { source: resolver.source(this.name), resolver };
  }

  async commit(): Promise<WorkerOutput> {
    const { file, extraFiles } = await this.files();
    const main = file?.size ?? (this.sink as WritableSink).size;
    return { file, extraFiles, size: main + extraFiles.reduce((n, f) => n + f.file.size, 0) };
  }

  /**
   * Nothing half-written survives: the staged FSA write is aborted (the file keeps what it had),
   * the OPFS file is deleted, and a file the save dialog created for us is removed — on every
   * path, also when the job failed before it opened its sink.
   */
  async discard(): Promise<void> {
    const sink = this.sink;
    if (sink instanceof OpfsSink) await sink.remove();
    else {
      // After a failed verification the stream is already closed: aborting it then fails harmlessly.
      await sink?.abort().catch(() => {});
      if (this.output.kind === 'fsa' && this.output.createdByDialog) await removeCreatedFile(this.output.handle);
    }
    await this.outputs?.removeAll();
  }
}

/**
 * Removes a file the save dialog created. FileSystemHandle.remove() (Chromium 110+) is in
 * neither TypeScript lib yet. Right after an abort the file can still be locked by the closing
 * stream (seen under load), so try a few times.
 */
export async function removeCreatedFile(handle: FileSystemFileHandle): Promise<void> {
  const h = handle as { remove?(): Promise<void> };
  for (let attempt = 0; attempt < 6 && h.remove; attempt++) {
    try {
      await h.remove();
      return;
    } catch (e) {
      if ((e as DOMException).name === 'NotFoundError') return;
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
}
