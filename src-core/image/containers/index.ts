/**
 * Compressed containers as input (.gz .xz .zst .bz2 .zip holding one image). Platforms call
 * `unwrapContainer(source, { drivers, scratch, signal, onProgress })` before `openImage`; the
 * lower-level `detectContainer(head)` / `openContainer(source)` + `container.decode()` give the
 * kind and a stream of the unpacked bytes.
 */
export { detectContainer, CONTAINER_SUFFIX, type ContainerKind } from './detect.ts';
export { openContainerAs, type Container, type ContainerProgress, type DecodeOptions } from './decode.ts';
export {
  openContainer,
  sniffContainer,
  unwrapContainer,
  StreamingSource,
  type ScratchFactory,
  type ScratchFile,
  type UnwrapOptions,
} from './unwrap.ts';
