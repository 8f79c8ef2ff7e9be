/**
 * Every subcommand's options, as qemu-img 10.1 spells them (long and short) plus the 7.2
 * spellings that 10.1 renamed (convert -B, create/rebase -F), and DiskFerry's own few. This
 * table is the parser's only input (parse.ts) and the source of each command's --help; it is
 * plain data, loaded at start-up, while the code that runs a command is imported on demand.
 */

export interface OptDef {
  /** One-letter spelling(s) without the dash ('f'); several for renamed letters. */
  short?: string | readonly string[];
  /** Long spelling(s) without the dashes. */
  long?: string | readonly string[];
  /** Takes a value (-f FMT, --format=FMT, --format FMT, -fFMT). */
  arg?: boolean;
  /** Repeatable: every value is kept (--object, -o). */
  multi?: boolean;
  /** Value's name in --help. */
  meta?: string;
  /**
   * A flag whose long spelling may also take a value (`--progress=json`): the value is stored
   * under `key` (an option of its own, usually without spellings) instead of setting the flag.
   */
  valueTo?: { readonly key: string; readonly values: readonly string[] };
  help: string;
}

export type OptSpec = Readonly<Record<string, OptDef>>;

/** What the parser gives a command: typed by its spec. */
export type Opts<S extends OptSpec> = {
  -readonly [K in keyof S]: S[K]['multi'] extends true ? string[] : S[K]['arg'] extends true ? string | undefined : boolean;
};

export interface CommandDef<S extends OptSpec = OptSpec> {
  syntax: string;
  description: string;
  options: S;
  /** Positional arguments for --help: [name, text]. */
  args: readonly (readonly [string, string])[];
}

const object = {
  long: 'object',
  arg: true,
  multi: true,
  meta: 'OBJDEF',
  help: 'defines a secret: secret,id=ID,data=PASSWORD or secret,id=ID,file=PATH',
} as const;
const imageOpts = {
  long: 'image-opts',
  help: 'treat FILE as an option string (key=value,..), not a file name (incompatible with -f|--format)',
} as const;
const forceShare = { short: 'U', long: 'force-share', help: 'open images in shared mode (accepted; DiskFerry never locks)' } as const;
const quiet = { short: 'q', long: 'quiet', help: 'quiet mode (produce only error messages if any)' } as const;
const progress = { short: 'p', long: 'progress', help: 'display progress information' } as const;
/** convert's -p, which also takes --progress=json: one JSON object a line on stderr, for programs. */
const convertProgress = {
  ...progress,
  help: 'display progress information (--progress=json: one {"done","total","rate","phase"} object per line on stderr instead)',
  valueTo: { key: 'progressFormat', values: ['json'] },
} as const;
const progressFormat = { arg: true, meta: 'json', help: 'set by --progress=json' } as const;
const output = { long: 'output', arg: true, meta: 'human|json', help: 'output format (default: human)' } as const;
const format = {
  short: 'f',
  long: 'format',
  arg: true,
  meta: 'FMT',
  help: 'specify FILE image format explicitly (default: probing is used)',
} as const;
const outside = {
  long: 'allow-outside-paths',
  help: 'let names inside images (backing files, extents) lead outside the image folder',
} as const;
/** The image argument's own options, shared by every command that opens an image. */
const imageInput = { format, imageOpts } as const;
/** -q and --object, which every command takes. */
const quietWithSecrets = { quiet, object } as const;
const FILE_TO_OPERATE_ON = ['FILE', 'name of the image file to operate on'] as const;
const cache = (s: string) =>
  ({
    short: s,
    long: 'cache',
    arg: true,
    meta: 'CACHE_MODE',
    help: 'cache mode (accepted; DiskFerry always uses the page cache)',
  }) as const;

const info = {
  syntax: '[-f FMT | --image-opts] [--backing-chain] [-U] [--output human|json] [--object OBJDEF] [--disk N|NAME] FILE',
  description: 'Display information about an image',
  options: {
    ...imageInput,
    backingChain: { long: 'backing-chain', help: 'display information about the backing chain for copy-on-write overlays' },
    forceShare,
    output,
    object,
    cache: { short: ['t', 'T'], long: 'cache', arg: true, meta: 'CACHE_MODE', help: 'accepted and ignored' },
    disk: { long: 'disk', arg: true, meta: 'N|NAME', help: 'which disk of an OVA (default: the first in the OVF)' },
    allowOutside: outside,
  },
  args: [['FILE', 'name of the image file, or option string (key=value,..) with --image-opts']],
} as const satisfies CommandDef;

const convert = {
  syntax:
    '[-f SRC_FMT | --image-opts] [-T SRC_CACHE] [-l SNAPSHOT] [--salvage]\n        [-O TGT_FMT] [-o TGT_FMT_OPTS] [-t TGT_CACHE] [-b BACKING_FILE [-F BACKING_FMT]] [-S SPARSE_SIZE]\n        [-n] [--target-is-zero] [-c] [-U] [-r RATE] [-m NUM_PARALLEL] [-W] [-C] [-p] [-q] [--object OBJDEF]\n        [--verify] [--disk N|NAME] [--target NAME] [--reproducible] SRC_FILE TGT_FILE',
  description: 'Convert an image into another format (or copy it)',
  options: {
    format: {
      short: 'f',
      long: 'source-format',
      arg: true,
      meta: 'SRC_FMT',
      help: 'specify format of SRC_FILE explicitly (default: probing is used)',
    },
    imageOpts: { long: ['image-opts', 'source-image-opts'], help: 'treat SRC_FILE as an option string (key=value,...), not a file name' },
    sourceCache: { short: 'T', long: 'source-cache', arg: true, meta: 'SRC_CACHE', help: 'accepted and ignored' },
    snapshot: {
      short: 'l',
      long: 'snapshot',
      arg: true,
      meta: 'SNAPSHOT',
      help: 'convert this internal snapshot: NAME, snapshot.name=NAME or snapshot.id=ID',
    },
    bitmaps: { long: 'bitmaps', help: 'copy persistent bitmaps (refused: DiskFerry does not copy bitmaps)' },
    skipBrokenBitmaps: { long: 'skip-broken-bitmaps', help: 'with --bitmaps (refused)' },
    salvage: { long: 'salvage', help: 'ignore errors on input (unreadable areas become zeros, with a warning per range)' },
    targetFormat: {
      short: 'O',
      long: 'target-format',
      arg: true,
      meta: 'TGT_FMT',
      help: 'specify TGT_FILE image format (default: raw); ova/ovf package the disks (several SRC_FILEs = several disks) for VMware, VirtualBox, AWS',
    },
    targetImageOpts: { long: 'target-image-opts', help: 'treat TGT_FILE as an option string (requires -n)' },
    options: {
      short: 'o',
      long: ['target-format-options', 'options'],
      arg: true,
      multi: true,
      meta: 'TGT_FMT_OPTS',
      help: 'TGT_FMT-specific options (-o help lists them)',
    },
    targetCache: { short: 't', long: 'target-cache', arg: true, meta: 'TGT_CACHE', help: 'accepted and ignored' },
    backing: {
      short: ['b', 'B'],
      long: 'backing',
      arg: true,
      meta: 'BACKING_FILE',
      help: 'create target image to be a CoW on top of BACKING_FILE (-B in <= 10.0)',
    },
    backingFormat: {
      short: 'F',
      long: 'backing-format',
      arg: true,
      meta: 'BACKING_FMT',
      help: 'specify BACKING_FILE image format explicitly',
    },
    sparseSize: {
      short: 'S',
      long: 'sparse-size',
      arg: true,
      meta: 'SPARSE_SIZE',
      help: 'consecutive zero bytes to treat as a gap on output (multiple of 512; 0 = fully allocated)',
    },
    noCreate: {
      short: 'n',
      long: 'no-create',
      help: 'write into the existing TGT_FILE (file or block device) without creating or truncating it',
    },
    targetIsZero: { long: 'target-is-zero', help: 'the target is pre-zeroed: zero ranges are not written (requires -n)' },
    compress: { short: 'c', long: 'compress', help: 'create compressed output image (qcow, qcow2; vmdk streamOptimized)' },
    forceShare,
    rateLimit: { short: 'r', long: 'rate-limit', arg: true, meta: 'RATE', help: 'I/O rate limit, in bytes per second' },
    parallel: {
      short: 'm',
      long: 'parallel',
      arg: true,
      meta: 'NUM_PARALLEL',
      help: 'accepted (1-16); DiskFerry reads ahead one window and compresses on a worker per core',
    },
    oobWrites: { short: 'W', long: 'oob-writes', help: 'accepted; DiskFerry writes in order' },
    copyRange: { short: 'C', long: 'copy-range-offloading', help: 'accepted and ignored' },
    progress: convertProgress,
    progressFormat,
    ...quietWithSecrets,
    verify: { long: 'verify', help: 're-read the finished output and compare it with the source before renaming it into place' },
    disk: { long: 'disk', arg: true, meta: 'N|NAME', help: 'which disk of an OVA to convert' },
    target: {
      long: 'target',
      arg: true,
      meta: 'NAME',
      help: 'write what this destination accepts (-O, -o, -c and its size rule): aws, azure, gcp, esxi, esxi-datastore, hyperv, virtualbox, proxmox, openstack, xcp-ng',
    },
    reproducible: {
      long: 'reproducible',
      help: 'the same input and options give the same bytes: ids derived from the source and the settings, timestamps fixed at 2000-01-01 (refused with LUKS encryption)',
    },
    allowOutside: outside,
  },
  args: [
    ['SRC_FILE', 'source image file name, or option string (key=value,..) with --image-opts'],
    ['TGT_FILE', 'target (output) image file name'],
  ],
} as const satisfies CommandDef;

const create = {
  syntax: '[-f FMT] [-o FMT_OPTS] [-b BACKING_FILE [-B BACKING_FMT]] [-u] [-q] [--object OBJDEF] FILE [SIZE]',
  description: 'Create and format a new image file',
  options: {
    format: { short: 'f', long: 'format', arg: true, meta: 'FMT', help: 'specifies the format of the new image (default: raw)' },
    options: {
      short: 'o',
      long: 'options',
      arg: true,
      multi: true,
      meta: 'FMT_OPTS',
      help: "format-specific options (specify '-o help' for help)",
    },
    backing: {
      short: 'b',
      long: 'backing',
      arg: true,
      meta: 'BACKING_FILE',
      help: 'create target image to be a CoW on top of BACKING_FILE',
    },
    backingFormat: {
      short: ['B', 'F'],
      long: 'backing-format',
      arg: true,
      meta: 'BACKING_FMT',
      help: 'specifies the format of BACKING_FILE (-F in <= 10.0)',
    },
    backingUnsafe: { short: 'u', long: 'backing-unsafe', help: 'do not fail if BACKING_FILE can not be read' },
    ...quietWithSecrets,
    allowOutside: outside,
  },
  args: [
    ['FILE', 'name of the image file to create (will be overwritten if it already exists)'],
    ['SIZE[bKMGTPE]', 'image size with optional multiplier suffix (powers of 1024) (required unless BACKING_FILE is specified)'],
  ],
} as const satisfies CommandDef;

const check = {
  syntax: '[-f FMT | --image-opts] [-T CACHE_MODE] [-r leaks|all] [-U] [--output human|json] [-q] [--object OBJDEF] FILE',
  description: 'Check basic image integrity',
  options: {
    ...imageInput,
    cache: cache('T'),
    repair: {
      short: 'r',
      long: 'repair',
      arg: true,
      meta: 'leaks|all',
      help: 'repair errors of the given category (the image is rewritten beside itself and renamed over it)',
    },
    forceShare,
    output,
    ...quietWithSecrets,
    allowOutside: outside,
  },
  args: [['FILE', 'name of the image file, or option string (key=value,..) with --image-opts']],
} as const satisfies CommandDef;

const compare = {
  syntax: '[[-f FMT] [-F FMT] | --image-opts] [-s] [-T CACHE] [-U] [-p] [-q] [--object OBJDEF] FILE1 FILE2',
  description: 'Check if two images have the same contents',
  options: {
    aFormat: { short: 'f', long: 'a-format', arg: true, meta: 'FMT', help: 'specify FILE1 image format explicitly' },
    bFormat: { short: 'F', long: 'b-format', arg: true, meta: 'FMT', help: 'specify FILE2 image format explicitly' },
    imageOpts,
    strict: { short: 's', long: 'strict', help: 'strict mode, also check if sizes are equal' },
    cache: cache('T'),
    forceShare,
    progress,
    ...quietWithSecrets,
    allowOutside: outside,
  },
  args: [['FILE1, FILE2', 'names of the image files, or option strings with --image-opts']],
} as const satisfies CommandDef;

const map = {
  syntax: '[-f FMT | --image-opts] [--start-offset OFFSET] [--max-length LENGTH] [--output human|json] [-U] [--object OBJDEF] FILE',
  description: 'Dump image metadata',
  options: {
    ...imageInput,
    startOffset: { short: 's', long: 'start-offset', arg: true, meta: 'OFFSET', help: 'start at the given OFFSET in the image' },
    maxLength: { short: 'l', long: 'max-length', arg: true, meta: 'LENGTH', help: 'process at most LENGTH bytes' },
    forceShare,
    output,
    object,
    allowOutside: outside,
  },
  args: [['FILE', 'the image file name, or option string with --image-opts']],
} as const satisfies CommandDef;

const measure = {
  syntax:
    '[-f FMT|--image-opts] [-l SNAPSHOT] [-O TARGET_FMT] [-o TARGET_FMT_OPTS] [--output human|json] [--object OBJDEF] (--size SIZE | FILE)',
  description: 'Calculate the file size required for a new image',
  options: {
    format: { short: 'f', long: ['format', 'source-format'], arg: true, meta: 'FMT', help: 'specify format of FILE explicitly' },
    imageOpts: { long: ['image-opts', 'source-image-opts'], help: 'FILE is an option string' },
    snapshot: { short: 'l', long: 'snapshot', arg: true, meta: 'SNAPSHOT', help: 'use this snapshot in FILE as source' },
    targetFormat: {
      short: 'O',
      long: 'target-format',
      arg: true,
      meta: 'TARGET_FMT',
      help: 'desired target/output image format (default: raw)',
    },
    options: {
      short: 'o',
      long: ['options', 'target-format-options'],
      arg: true,
      multi: true,
      meta: 'TARGET_FMT_OPTS',
      help: 'options specific to TARGET_FMT',
    },
    forceShare,
    output,
    object,
    size: { short: 's', long: 'size', arg: true, meta: 'SIZE', help: 'measure file size for given image size' },
    allowOutside: outside,
  },
  args: [['FILE', 'measure file size required to convert from FILE']],
} as const satisfies CommandDef;

const snapshot = {
  syntax: '[-f FMT | --image-opts] [-l | -a|-c|-d SNAPSHOT] [-U] [-q] [--object OBJDEF] FILE',
  description: 'List or manipulate snapshots in an image',
  options: {
    ...imageInput,
    list: { short: 'l', long: 'list', help: 'list snapshots in FILE (default action if no -l|-c|-a|-d is given)' },
    create: { short: 'c', long: 'create', arg: true, meta: 'SNAPSHOT', help: 'create named snapshot' },
    apply: { short: 'a', long: 'apply', arg: true, meta: 'SNAPSHOT', help: 'apply named snapshot to the base' },
    delete: { short: 'd', long: 'delete', arg: true, meta: 'SNAPSHOT', help: 'delete named snapshot' },
    forceShare,
    ...quietWithSecrets,
  },
  args: [['FILE', 'name of the image file']],
} as const satisfies CommandDef;

const rebase = {
  syntax:
    '[-f FMT | --image-opts] [-t CACHE] [-b BACKING_FILE [-B BACKING_FMT] [-T BACKING_CACHE]] [-u] [-c] [-U] [-p] [-q] [--object OBJDEF] FILE',
  description: 'Change the backing file of an image',
  options: {
    ...imageInput,
    cache: cache('t'),
    compress: { short: 'c', long: 'compress', help: 'compress the clusters written (when the image supports this)' },
    backing: {
      short: 'b',
      long: 'backing',
      arg: true,
      meta: 'BACKING_FILE',
      help: 'rebase onto this file (specify empty name for no backing file)',
    },
    backingFormat: {
      short: ['B', 'F'],
      long: 'backing-format',
      arg: true,
      meta: 'BACKING_FMT',
      help: 'specify format for BACKING_FILE explicitly (-F in <= 10.0)',
    },
    backingCache: { short: 'T', long: 'backing-cache', arg: true, meta: 'CACHE', help: 'accepted and ignored' },
    unsafe: { short: 'u', long: 'backing-unsafe', help: 'only change the name: do not compare old and new backing file' },
    forceShare,
    progress,
    ...quietWithSecrets,
    allowOutside: outside,
  },
  args: [FILE_TO_OPERATE_ON],
} as const satisfies CommandDef;

const resize = {
  syntax: '[-f FMT | --image-opts] [--preallocation PREALLOC] [--shrink] [-q] [--object OBJDEF] FILE [+-]SIZE[bkKMGTPE]',
  description: 'Resize an image',
  options: {
    ...imageInput,
    preallocation: {
      long: 'preallocation',
      arg: true,
      meta: 'PREALLOC',
      help: 'preallocation of the new area: off, metadata (qcow2), falloc, full',
    },
    shrink: { long: 'shrink', help: 'allow operation when the new size is smaller than the original' },
    ...quietWithSecrets,
  },
  args: [
    ['FILE', 'name of the image file to operate on'],
    ['[+-]SIZE[bkKMGTPE]', 'new image size or amount by which to shrink (-)/grow (+)'],
  ],
} as const satisfies CommandDef;

const amend = {
  syntax: '-o FMT_OPTS [-f FMT | --image-opts] [-t CACHE] [--force] [-p] [-q] [--object OBJDEF] FILE',
  description: 'Change options of an existing disk image',
  options: {
    options: { short: 'o', long: 'options', arg: true, multi: true, meta: 'FMT_OPTS', help: 'FMT-specific format options (required)' },
    ...imageInput,
    cache: cache('t'),
    force: { long: 'force', help: 'allow certain unsafe operations' },
    progress,
    ...quietWithSecrets,
  },
  args: [FILE_TO_OPERATE_ON],
} as const satisfies CommandDef;

const commit = {
  syntax: '[-f FMT | --image-opts] [-t CACHE_MODE] [-b BASE_IMG] [-d] [-r RATE] [-p] [-q] [--object OBJDEF] FILE',
  description: 'Commit image to its backing file',
  options: {
    ...imageInput,
    cache: cache('t'),
    drop: { short: 'd', long: 'drop', help: 'skip emptying FILE on completion' },
    base: {
      short: 'b',
      long: 'base',
      arg: true,
      meta: 'BASE_IMG',
      help: 'image in the backing chain to commit change to (only the immediate backing file)',
    },
    rateLimit: { short: 'r', long: 'rate-limit', arg: true, meta: 'RATE', help: 'I/O rate limit, in bytes per second' },
    progress,
    ...quietWithSecrets,
    allowOutside: outside,
  },
  args: [FILE_TO_OPERATE_ON],
} as const satisfies CommandDef;

const dd = {
  syntax: '[-f FMT|--image-opts] [-O OUTPUT_FMT] [-U] [--object OBJDEF] [bs=BLOCK_SIZE] [count=BLOCKS] [skip=BLOCKS] if=INPUT of=OUTPUT',
  description: 'Copy input to output with optional format conversion',
  options: {
    format: { short: 'f', long: 'format', arg: true, meta: 'FMT', help: 'specify format for INPUT explicitly' },
    imageOpts,
    outputFormat: { short: 'O', long: 'output-format', arg: true, meta: 'OUTPUT_FMT', help: 'format of the OUTPUT (default: raw)' },
    forceShare,
    object,
    allowOutside: outside,
  },
  args: [
    ['bs=BLOCK_SIZE[bKMGTP]', 'size of the I/O block (default: 512)'],
    ['count=COUNT', 'number of blocks to convert (default whole INPUT)'],
    ['skip=COUNT', 'number of input blocks to skip'],
    ['if=INPUT', 'input file name'],
    ['of=OUTPUT', 'output file name to create (will be overwritten if it already exists)'],
  ],
} as const satisfies CommandDef;

const lint = {
  syntax: '[--target NAME] [-f FMT | --image-opts] [--output human|json] [--object OBJDEF] [--disk N|NAME] FILE [FILE...]',
  description: "Check files against what a destination's importer accepts (exit 0 pass, 1 a rule failed, 2 usage or unreadable file)",
  options: {
    target: {
      long: 'target',
      arg: true,
      meta: 'NAME',
      help: 'the destination to check for (default: every one): aws, azure, gcp, esxi, esxi-datastore, hyperv, virtualbox, proxmox, openstack, xcp-ng',
    },
    ...imageInput,
    output,
    object,
    disk: { long: 'disk', arg: true, meta: 'N|NAME', help: 'which disk of an OVA to check (default: the first in the OVF)' },
    allowOutside: outside,
  },
  args: [
    [
      'FILE',
      'image files to check; several at once are also checked for shared UUIDs (VirtualBox refuses a second disk with the same UUID)',
    ],
  ],
} as const satisfies CommandDef;

export const COMMANDS = { amend, check, commit, compare, convert, create, dd, info, lint, map, measure, rebase, resize, snapshot } as const;
export type CommandName = keyof typeof COMMANDS;
export type OptsOf<N extends CommandName> = Opts<(typeof COMMANDS)[N]['options']>;
