/**
 * Typed errors. Every message is one line that names the file and the problem, because that
 * line is what a user sees in the CLI and on the page. Codes are stable so that the UI and
 * the worker bridge can map them without parsing text.
 */
export const ErrorCode = {
  NotThisFormat: 'not-this-format',
  Unsupported: 'unsupported',
  Corrupt: 'corrupt',
  MissingFile: 'missing-file',
  WrongPassword: 'wrong-password',
  NeedsPassword: 'needs-password',
  Cancelled: 'cancelled',
  InvalidArgument: 'invalid-argument',
  Io: 'io',
  Unsafe: 'unsafe-path',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class DiskFerryError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly file: string,
    readonly detail: string,
  ) {
    super(file ? `${file}: ${detail}` : detail);
    this.name = 'DiskFerryError';
  }
}

export class NotThisFormatError extends DiskFerryError {
  constructor(file: string, detail: string) {
    super(ErrorCode.NotThisFormat, file, detail);
  }
}
export class UnsupportedError extends DiskFerryError {
  constructor(file: string, detail: string) {
    super(ErrorCode.Unsupported, file, detail);
  }
}
/**
 * A file that is one piece of an image another file describes (a VMDK extent opened on its own).
 * Files looked at while searching for that other file are not this one's companions.
 */
export class PartOfImageError extends UnsupportedError {
  constructor(
    file: string,
    detail: string,
    /** The file to open instead, when it was found. */
    readonly owner?: string,
  ) {
    super(file, detail);
  }
}
export class CorruptImageError extends DiskFerryError {
  constructor(file: string, detail: string) {
    super(ErrorCode.Corrupt, file, detail);
  }
}
export class MissingFileError extends DiskFerryError {
  /** The first missing name. */
  readonly missing: string;
  /** Every missing name this error stands for (a descriptor may lack several extents). */
  readonly names: string[];
  constructor(referencedBy: string, missing: string | string[], what = 'file') {
    const names = typeof missing === 'string' ? [missing] : missing;
    super(ErrorCode.MissingFile, referencedBy, `${what} ${names.map((n) => `"${n}"`).join(', ')} not found`);
    this.missing = names[0] ?? '';
    this.names = names;
  }
}
export class WrongPasswordError extends DiskFerryError {
  constructor(file: string, detail = 'wrong password: no key slot could be unlocked') {
    super(ErrorCode.WrongPassword, file, detail);
  }
}
export class NeedsPasswordError extends DiskFerryError {
  constructor(file: string, detail = 'image is encrypted; a password (key secret) is needed') {
    super(ErrorCode.NeedsPassword, file, detail);
  }
}
export class CancelledError extends DiskFerryError {
  constructor(detail = 'operation cancelled') {
    super(ErrorCode.Cancelled, '', detail);
    this.name = 'AbortError';
  }
}
export class InvalidArgumentError extends DiskFerryError {
  constructor(detail: string, file = '') {
    super(ErrorCode.InvalidArgument, file, detail);
  }
}
export class UnsafePathError extends DiskFerryError {
  constructor(file: string, name: string) {
    super(ErrorCode.Unsafe, file, `refers to "${name}", outside the image's folder; refused (allow with --allow-outside-paths)`);
  }
}

/** The same error naming `file`, when it did not name one (errors raised deep in parsers). */
export function withFile(e: unknown, file: string): unknown {
  if (e instanceof DiskFerryError && !e.file && e.code !== ErrorCode.Cancelled) return new DiskFerryError(e.code, file, e.detail);
  return e;
}

export function isDiskFerryError(e: unknown): e is DiskFerryError {
  return e instanceof DiskFerryError;
}

/** Throws the cancellation error if the signal has fired. */
export function assertNotAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** Any thrown value as one readable line (no stack traces reach the user). */
export function errorLine(e: unknown): string {
  if (e instanceof DiskFerryError) return e.message;
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e);
  return String(e);
}
