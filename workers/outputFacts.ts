import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { readExact } from '../src-core/io/bytes.ts';
import { CorruptImageError } from '../src-core/io/errors.ts';
import { gatherFacts, partitionTableOf, TarScan, type LintFacts } from '../src-core/pipeline/lint/index.ts';
import { chooseCodecs, releaseCodecs } from './codecs.ts';
import { FileSetResolver, type PickedFile } from './io/fileSet.ts';

/**
 * The pre-flight check's facts of a finished output (the result card's check), gathered as
 * `diskferry lint` gathers them: a gzip'd tar (the Google Cloud tarball) is unpacked as it is
 * read and its members listed; anything else is opened as an image, without its backing file.
 */
export async function outputFacts(files: PickedFile[], path: string): Promise<LintFacts> {
  const resolver = new FileSetResolver(files);
  const src = resolver.source(path);
  const magic = src.size >= 2 ? await readExact(src, 0, 2) : new Uint8Array(0);
  if (magic[0] === 0x1f && magic[1] === 0x8b) return tarballFacts(files.find((f) => f.path === path)!.file, path);
  const codecs = chooseCodecs();
  try {
    const device = await openImage(src, drivers, { resolver, codecs, noBacking: true });
    try {
      return await gatherFacts(path, device, src);
    } finally {
      await device.close();
    }
  } finally {
    releaseCodecs(codecs);
  }
}

async function tarballFacts(file: File, name: string): Promise<LintFacts> {
  const scan = new TarScan();
  try {
    const reader = file.stream().pipeThrough(new DecompressionStream('gzip')).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      scan.push(value);
    }
  } catch (e) {
    throw new CorruptImageError(name, `the tarball cannot be read: ${(e as Error).message}`);
  }
  return {
    file: name,
    container: 'gcp-tar',
    format: 'raw',
    virtualSize: scan.members[0]?.size ?? 0,
    fileSize: file.size,
    partitionTable: partitionTableOf(scan.head),
    tar: { members: scan.members },
  };
}
