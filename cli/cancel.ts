/**
 * The running command's cancellation (SIGINT/SIGTERM), for the code that opens sources: a
 * URL source's requests and retry pauses stop as soon as the signal fires.
 */
let current: AbortSignal | undefined;

export function setCliSignal(signal: AbortSignal | undefined): void {
  current = signal;
}

export function cliSignal(): AbortSignal | undefined {
  return current;
}
