import * as Comlink from 'comlink';

/**
 * AbortSignal is not cloneable, so Comlink cannot pass one to a worker. This handler
 * (the pattern from GoogleChromeLabs/comlink#615) sends a MessagePort instead and rebuilds an
 * AbortController on the far side: cancelling then reaches the core's `signal` checks, and the
 * writer can close its file cleanly. Both sides must import this module once.
 */
Comlink.transferHandlers.set('abortsignal', {
  canHandle: (v: unknown): v is AbortSignal => typeof AbortSignal !== 'undefined' && v instanceof AbortSignal,
  serialize(signal: AbortSignal): [MessagePort, Transferable[]] {
    const { port1, port2 } = new MessageChannel();
    if (signal.aborted) port1.postMessage('abort');
    else signal.addEventListener('abort', () => port1.postMessage('abort'), { once: true });
    return [port2, [port2]];
  },
  deserialize(port: MessagePort): AbortSignal {
    const controller = new AbortController();
    port.onmessage = () => {
      controller.abort();
      port.close();
    };
    return controller.signal;
  },
} as Comlink.TransferHandler<AbortSignal, MessagePort>);
