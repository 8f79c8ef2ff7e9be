import { useEffect } from 'react';
import { filesFromDrop } from '../../adapters/pickFiles.ts';
import { addFiles } from '../../state/sources.ts';
import { useApp } from '../../state/store.ts';

const carriesFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');

/**
 * The whole page takes drops. Without this a disk dropped beside the drop zone (on the preview,
 * the form, the margin) is opened or downloaded by the browser itself — a surprise at best.
 * Files dropped while an image lacks companions join the open set (see addFiles).
 */
export function usePageDrop(): void {
  useEffect(() => {
    let depth = 0;
    const setDragging = (dragging: boolean) => useApp.getState().dragging !== dragging && useApp.setState({ dragging });
    const onEnter = (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      depth++;
      setDragging(true);
    };
    const onLeave = (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) setDragging(false);
    };
    const onOver = (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const onDrop = (e: DragEvent) => {
      // Always ours: the browser must never navigate to (or download) a dropped disk.
      e.preventDefault();
      depth = 0;
      setDragging(false);
      void filesFromDrop(e).then((files) => addFiles(files));
    };
    window.addEventListener('dragenter', onEnter);
    window.addEventListener('dragleave', onLeave);
    window.addEventListener('dragover', onOver);
    window.addEventListener('drop', onDrop);
    return () => {
      window.removeEventListener('dragenter', onEnter);
      window.removeEventListener('dragleave', onLeave);
      window.removeEventListener('dragover', onOver);
      window.removeEventListener('drop', onDrop);
    };
  }, []);
}
