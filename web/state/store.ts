import { create } from 'zustand';
import type { ConvertOutcome, Estimate, FormatSummary, Inspection, LintFacts, PickedFile, ProgressReport } from '../../workers/protocol.ts';

export type JobState = 'idle' | 'checking' | 'running' | 'finalizing' | 'done' | 'error' | 'cancelling' | 'cancelled';

export interface Job {
  state: JobState;
  progress?: ProgressReport;
  outcome?: ConvertOutcome & { downloadUrl?: string; extraDownloads?: { name: string; url: string }[] };
  error?: string;
  /** Where an error happened: before anything was written ('check'), or while converting. */
  stage?: 'check' | 'convert';
  /** Bytes of the source's files, for the result's before → after. */
  sourceBytes?: number;
  /** The target format and preset the job was started with (for the result's next steps). */
  format?: string;
  preset?: string;
  /** The destination the result is checked against (pre-flight on the saved file). */
  destination?: string;
  /** The output is a download (OPFS path) rather than a file the user picked. */
  viaDownload?: boolean;
  /** The pre-flight check of the finished file: its facts once read back, or why they could not be. */
  outputFacts?: { state: 'reading' } | { state: 'done'; facts: LintFacts } | { state: 'failed'; error: string };
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
  /** convert --reproducible: ids from the source and the settings, fixed times (the CLI's bytes). */
  reproducible: boolean;
  preset?: string;
  /** The destination of the last preset picked (the table's name): the pre-flight check's, kept through changes to the form. */
  destination?: string;
}

/** The output size for the current choice, worked out in the background. */
export type EstimateState =
  | { state: 'none' }
  | { state: 'running'; progress?: ProgressReport }
  | { state: 'done'; result: Estimate }
  | { state: 'failed'; error: string };

/** An encrypted source's password: not yet tried, being tried, accepted, or refused (with why). */
export type UnlockState = { state: 'locked' } | { state: 'checking' } | { state: 'unlocked' } | { state: 'failed'; error: string };

/** An image on a web server, open instead of dropped files. */
export interface RemoteImage {
  url: string;
  /** Bytes fetched from the server for the preview. */
  fetched: number;
}

/** The "Open from a URL" field: idle, fetching the image's metadata, or refused (with why). */
export type UrlOpenState = { state: 'idle' } | { state: 'opening'; url: string } | { state: 'failed'; error: string };

export interface AppState {
  formats: FormatSummary[];
  files: PickedFile[];
  /** The open image is on a web server (`files` is then empty). */
  remote?: RemoteImage;
  urlOpen: UrlOpenState;
  inspecting: boolean;
  inspection?: Inspection;
  /** Failure of the inspection itself (not of one file). */
  inspectError?: string;
  selected?: string;
  sourcePassword: string;
  unlock: UnlockState;
  /** Files the user chose to read as raw disks. */
  rawPaths: string[];
  estimate: EstimateState;
  /** A compressed file being unpacked into private storage. */
  unpacking?: { path: string; done: number; total: number; error?: string };
  /** Files are being dragged over the page. */
  dragging: boolean;
  target: TargetChoice;
  job: Job;
  /** Facts of every file converted this visit: the result's check looks for UUIDs they share. */
  converted: LintFacts[];
  updateReady: boolean;
}

export const initialTarget: TargetChoice = {
  format: 'qcow2',
  options: {},
  compress: false,
  verify: false,
  outputPassword: '',
  snapshot: '',
  reproducible: false,
};

export const useApp = create<AppState>(() => ({
  formats: [],
  files: [],
  urlOpen: { state: 'idle' },
  inspecting: false,
  sourcePassword: '',
  unlock: { state: 'locked' },
  rawPaths: [],
  estimate: { state: 'none' },
  dragging: false,
  target: initialTarget,
  job: { state: 'idle' },
  converted: [],
  updateReady: false,
}));

/** The image summary currently selected, if any. */
export const selectedImage = (s: AppState) => s.inspection?.images.find((i) => i.path === s.selected);

/** Something is open: dropped files or an image on a web server (the page is a workspace). */
export const hasSource = (s: AppState) => s.files.length > 0 || s.remote !== undefined;
