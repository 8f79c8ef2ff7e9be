import { create } from 'zustand';
import type { ConvertOutcome, FormatSummary, Inspection, PickedFile, ProgressReport } from '../../workers/protocol.ts';

export type JobState = 'idle' | 'running' | 'finalizing' | 'done' | 'error' | 'cancelling' | 'cancelled';

export interface Job {
  state: JobState;
  progress?: ProgressReport;
  outcome?: ConvertOutcome & { downloadUrl?: string; extraDownloads?: { name: string; url: string }[] };
  error?: string;
  /** The output is a download (OPFS path) rather than a file the user picked. */
  viaDownload?: boolean;
}

export interface TargetChoice {
  format: string;
  options: Record<string, string>;
  compress: boolean;
  /** Verify after write (convert --verify). */
  verify: boolean;
  outputPassword: string;
  /** Snapshot id to convert from ('' = the current state). */
  snapshot: string;
  preset?: string;
}

export interface AppState {
  formats: FormatSummary[];
  files: PickedFile[];
  inspecting: boolean;
  inspection?: Inspection;
  /** Failure of the inspection itself (not of one file). */
  inspectError?: string;
  selected?: string;
  sourcePassword: string;
  target: TargetChoice;
  job: Job;
  updateReady: boolean;
}

export const initialTarget: TargetChoice = { format: 'qcow2', options: {}, compress: false, verify: false, outputPassword: '', snapshot: '' };

export const useApp = create<AppState>(() => ({
  formats: [],
  files: [],
  inspecting: false,
  sourcePassword: '',
  target: initialTarget,
  job: { state: 'idle' },
  updateReady: false,
}));

/** The image summary currently selected, if any. */
export const selectedImage = (s: AppState) => s.inspection?.images.find((i) => i.path === s.selected);
