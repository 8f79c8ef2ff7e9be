// Entry of a compression worker thread. deflateWorker.ts is TypeScript; a worker does not
// inherit the parent's tsx loader, so register it here first, then load the real worker.
import { register } from 'tsx/esm/api';
register();
await import('./deflateWorker.ts');
