import { applyUpdate } from '../../sw/register.ts';
import { useApp } from '../../state/store.ts';
import './style.css';

/** Shown when a new version has been downloaded and waits for this tab to let it take over. */
export function UpdatePrompt() {
  const ready = useApp((s) => s.updateReady);
  const busy = useApp((s) => s.job.state === 'running' || s.job.state === 'finalizing');
  if (!ready) return null;
  return (
    <div className="update-prompt" role="status" data-testid="update-prompt">
      A new version of DiskFerry is available.
      <button
        type="button"
        className="button button--small"
        disabled={busy}
        onClick={applyUpdate}
        title={busy ? 'Wait for the conversion to finish' : undefined}
      >
        Reload to update
      </button>
    </div>
  );
}
