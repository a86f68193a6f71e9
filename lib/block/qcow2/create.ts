/**
 * Create an empty qcow2 v3 image, optionally as an overlay on a backing file. Layout: header cluster (header,
 * extensions, backing file name), refcount table, refcount blocks, L1 table — every cluster with refcount 1,
 * so `qemu-img check` finds it clean.
 */
import { writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { BlockBackendError } from '../backend.js';
import { detectImageFormat, openBlockBackend, type ImageFormat } from '../open.js';
import {
  EXT_BACKING_FORMAT,
  HEADER_WRITE_BYTES,
  MAX_BACKING_NAME,
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  writeHeader,
  type Qcow2Header,
} from './format.js';

export interface CreateQcow2Options {
  /** Virtual size in bytes (rounded up to 512). Default: the backing file's size. */
  size?: number;
  /** Backing file name as stored in the image (relative names are relative to the new image's directory). */
  backingFile?: string;
  /** Backing file format; probed from the file when omitted. */
  backingFormat?: ImageFormat;
  /** log2 of the cluster size (9..21), default 16 (64 KiB). */
  clusterBits?: number;
}

const REFCOUNT_ORDER = 4; // 16-bit refcounts, QEMU's default

export async function createQcow2(path: string, options: CreateQcow2Options = {}): Promise<void> {
  const clusterBits = options.clusterBits ?? 16;
  if (!Number.isInteger(clusterBits) || clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new BlockBackendError(path, `clusterBits ${clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  }
  const cs = 2 ** clusterBits;

  let size = options.size;
  let backingFormat = options.backingFormat;
  if (options.backingFile !== undefined) {
    const bpath = isAbsolute(options.backingFile) ? options.backingFile : resolve(dirname(path), options.backingFile);
    backingFormat ??= await detectImageFormat(bpath);
    const backing = await openBlockBackend(bpath, { readOnly: true, format: backingFormat });
    size ??= backing.size;
    await backing.close();
  }
  if (size === undefined) throw new BlockBackendError(path, 'qcow2 size is required when there is no backing file');
  if (!Number.isSafeInteger(size) || size < 0) throw new BlockBackendError(path, `qcow2 size ${size} is invalid`);
  size = Math.ceil(size / 512) * 512;

  const l2Entries = cs / 8;
  const l1Size = Math.max(1, Math.ceil(size / (cs * l2Entries)));
  const l1Clusters = Math.ceil((l1Size * 8) / cs);
  const refsPerBlock = (cs * 8) / 2 ** REFCOUNT_ORDER;
  // Find the smallest refcount table/block counts that cover all metadata clusters, themselves included.
  let blocks = 1;
  let tableClusters = 1;
  for (;;) {
    const total = 1 + tableClusters + blocks + l1Clusters;
    const needBlocks = Math.ceil(total / refsPerBlock);
    const needTable = Math.ceil((needBlocks * 8) / cs);
    if (needBlocks === blocks && needTable === tableClusters) break;
    blocks = needBlocks;
    tableClusters = needTable;
  }
  const totalClusters = 1 + tableClusters + blocks + l1Clusters;
  const refTableOffset = cs;
  const firstBlock = 1 + tableClusters;
  const l1Offset = (firstBlock + blocks) * cs;

  const image = new Uint8Array(totalClusters * cs);
  const dv = new DataView(image.buffer);

  // Header extensions, then the backing file name, all inside cluster 0.
  let off = HEADER_WRITE_BYTES;
  let backingOffset = 0;
  let backingBytes = new Uint8Array(0);
  if (options.backingFile !== undefined) {
    const fmt = new TextEncoder().encode(backingFormat);
    dv.setUint32(off, EXT_BACKING_FORMAT);
    dv.setUint32(off + 4, fmt.length);
    image.set(fmt, off + 8);
    off += 8 + Math.ceil(fmt.length / 8) * 8;
    backingBytes = new TextEncoder().encode(options.backingFile);
    if (backingBytes.length === 0 || backingBytes.length > MAX_BACKING_NAME) {
      throw new BlockBackendError(path, `backing file name must be 1..${MAX_BACKING_NAME} bytes`);
    }
  }
  off += 8; // end-of-extensions marker (type 0, length 0)
  if (backingBytes.length > 0) {
    if (off + backingBytes.length > cs) throw new BlockBackendError(path, 'backing file name does not fit in the first cluster');
    backingOffset = off;
    image.set(backingBytes, off);
  }

  const header: Qcow2Header = {
    version: 3,
    backingFileOffset: backingOffset,
    backingFileSize: backingBytes.length,
    clusterBits,
    size,
    cryptMethod: 0,
    l1Size,
    l1TableOffset: l1Offset,
    refcountTableOffset: refTableOffset,
    refcountTableClusters: tableClusters,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: REFCOUNT_ORDER,
    headerLength: HEADER_WRITE_BYTES,
    compressionType: 0,
    backingFile: options.backingFile,
    backingFormat,
  };
  writeHeader(image, header);
  for (let b = 0; b < blocks; b++) dv.setBigUint64(refTableOffset + 8 * b, BigInt((firstBlock + b) * cs));
  for (let c = 0; c < totalClusters; c++) dv.setUint16((firstBlock + Math.floor(c / refsPerBlock)) * cs + 2 * (c % refsPerBlock), 1);

  try {
    await writeFile(path, image, { flag: 'wx' });
  } catch (e) {
    throw new BlockBackendError(path, `cannot create qcow2 image: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
  }
}
