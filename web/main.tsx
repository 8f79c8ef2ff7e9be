import { createRoot } from 'react-dom/client';
import { filesFromHandles } from './adapters/pickFiles.ts';
import { launchQueueSupported } from './capabilities.ts';
import { App } from './components/App/index.tsx';
import { addFiles, loadFormats } from './state/sources.ts';
import { watchEstimate } from './state/estimate.ts';
import { registerServiceWorker } from './sw/register.ts';
import { inspectorWorker } from './workerBridge.ts';

createRoot(document.getElementById('root')!).render(<App />);

void loadFormats();
watchEstimate();
// Outputs a previous visit left in private storage (a tab closed before clean-up).
void inspectorWorker().api.removeStaleOutputs();
void inspectorWorker().api.removeUnpacked();
void registerServiceWorker().catch((e) => console.warn('service worker not registered:', e));

// The installed app opens disk files from the OS through manifest file_handlers.
if (launchQueueSupported) {
  window.launchQueue!.setConsumer((params) => {
    if (params.files.length) void filesFromHandles(params.files).then((files) => addFiles(files));
  });
}
