import type { ByteSource, FileResolver } from '../../src-core/io/bytes.ts';
import type { PickedFile } from './fileSet.ts';
import { FileSetResolver } from './fileSet.ts';
import { UrlInput } from './urlInput.ts';

/**
 * Where a job's image and its companions come from: files the user dropped (FileSetResolver)
 * or a web server (UrlInput). Paths are relative paths in a drop, URLs on a server.
 */
export interface InputFiles extends FileResolver {
  /** A file by its path (the image, or a companion opened through `open`). */
  source(path: string): ByteSource;
  /** Companions the opened images hold now. */
  readonly inUse: string[];
  /** Every path handed out through `open`, even if only looked at. */
  readonly opened: Set<string>;
  /** Opens what must be opened before `source(path)` (a URL's first request). */
  ready?(): Promise<void>;
}

/** The input of a plan: its URL when it has one, else its files. */
export function inputFor(plan: { files: PickedFile[]; url?: string }, signal?: AbortSignal): InputFiles {
  return plan.url ? new UrlInput(plan.url, signal) : new FileSetResolver(plan.files);
}
