/**
 * Open a disk image by format. 'auto' looks at the first bytes: note that probing a guest-writable raw image
 * is unsafe (the guest can write a qcow2 header naming any host file as backing file), so callers should pass
 * the format explicitly for images a guest may have written.
 */
import { open as fsOpen } from 'node:fs/promises';
import { BlockBackendError, type BlockBackend } from './backend.js';
import { QCOW2_MAGIC } from './qcow2/format.js';
import { Qcow2Backend } from './qcow2/image.js';
import { RawBackend } from './raw.js';

export type ImageFormat = 'raw' | 'qcow2';

export interface OpenBlockOptions {
  readOnly?: boolean;
  /** Default 'auto' (probe the qcow2 magic). */
  format?: ImageFormat | 'auto';
}

/** Backing chains longer than this are refused (also stops a chain that loops). */
const MAX_BACKING_DEPTH = 16;

export async function detectImageFormat(path: string): Promise<ImageFormat> {
  let fh;
  try {
    fh = await fsOpen(path, 'r');
  } catch (e) {
    throw new BlockBackendError(path, `cannot open image: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
  }
  try {
    const b = new Uint8Array(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && new DataView(b.buffer).getUint32(0) === QCOW2_MAGIC ? 'qcow2' : 'raw';
  } finally {
    await fh.close();
  }
}

export function openBlockBackend(path: string, options: OpenBlockOptions = {}): Promise<BlockBackend> {
  return openAtDepth(path, options, 0);
}

async function openAtDepth(path: string, options: OpenBlockOptions, depth: number): Promise<BlockBackend> {
  if (depth > MAX_BACKING_DEPTH) throw new BlockBackendError(path, `backing chain deeper than ${MAX_BACKING_DEPTH}`);
  const format = !options.format || options.format === 'auto' ? await detectImageFormat(path) : options.format;
  if (format === 'raw') return RawBackend.open(path, { readOnly: options.readOnly ?? false });
  if (format === 'qcow2') {
    return Qcow2Backend.open(path, {
      readOnly: options.readOnly ?? false,
      openBacking: (bpath, bformat) => {
        if (bformat !== undefined && bformat !== 'raw' && bformat !== 'qcow2') {
          throw new BlockBackendError(path, `backing file format '${bformat}' is not supported`);
        }
        return openAtDepth(bpath, { readOnly: true, format: bformat ?? 'auto' }, depth + 1);
      },
    });
  }
  throw new BlockBackendError(path, `unknown image format '${String(format)}'`);
}
