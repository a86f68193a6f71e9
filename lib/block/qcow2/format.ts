/**
 * qcow2 on-disk format constants and header parsing/serialization (QEMU's docs/interop/qcow2.txt, versions 2
 * and 3). All fields are big-endian. 64-bit offsets are kept as Numbers: image offsets are far below 2^53.
 */
import { BlockBackendError } from '../backend.js';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
export const HEADER_V2_BYTES = 72;
export const HEADER_V3_BYTES = 104;
/** Header length we write: v3 plus the compression_type byte, padded to 8 (what current QEMU writes). */
export const HEADER_WRITE_BYTES = 112;

export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_NAMES = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_FDE = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;

/** L1/L2 entry bits, split into the high and low 32-bit words. */
export const HI_COPIED = 0x8000_0000;
export const HI_COMPRESSED = 0x4000_0000;
/** Bits 32..55 of an offset (the high word's part of bits 9..55). */
export const HI_OFFSET_MASK = 0x00ff_ffff;
export const LO_OFFSET_MASK = 0xffff_fe00;
export const LO_ZERO = 1;

export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
export const MAX_BACKING_NAME = 1023;

export interface Qcow2Header {
  version: number;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  backingFile: string | undefined;
  backingFormat: string | undefined;
}

function u64(dv: DataView, off: number, path: string, field: string): number {
  const v = dv.getBigUint64(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BlockBackendError(path, `qcow2 header field ${field} = ${v} is too large`);
  return Number(v);
}

/** Parse the header, its extensions and the backing file name from the image's first cluster. */
export function parseHeader(first: Uint8Array, path: string): Qcow2Header {
  if (first.length < HEADER_V2_BYTES) throw new BlockBackendError(path, 'file too short for a qcow2 header');
  const dv = new DataView(first.buffer, first.byteOffset, first.byteLength);
  if (dv.getUint32(0) !== QCOW2_MAGIC) throw new BlockBackendError(path, 'not a qcow2 image (bad magic)');
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) throw new BlockBackendError(path, `unsupported qcow2 version ${version}`);
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(dv, 8, path, 'backing_file_offset'),
    backingFileSize: dv.getUint32(16),
    clusterBits: dv.getUint32(20),
    size: u64(dv, 24, path, 'size'),
    cryptMethod: dv.getUint32(32),
    l1Size: dv.getUint32(36),
    l1TableOffset: u64(dv, 40, path, 'l1_table_offset'),
    refcountTableOffset: u64(dv, 48, path, 'refcount_table_offset'),
    refcountTableClusters: dv.getUint32(56),
    nbSnapshots: dv.getUint32(60),
    snapshotsOffset: u64(dv, 64, path, 'snapshots_offset'),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: HEADER_V2_BYTES,
    compressionType: 0,
    backingFile: undefined,
    backingFormat: undefined,
  };
  if (version === 3) {
    if (first.length < HEADER_V3_BYTES) throw new BlockBackendError(path, 'file too short for a qcow2 v3 header');
    h.incompatibleFeatures = dv.getBigUint64(72);
    h.compatibleFeatures = dv.getBigUint64(80);
    h.autoclearFeatures = dv.getBigUint64(88);
    h.refcountOrder = dv.getUint32(96);
    h.headerLength = dv.getUint32(100);
    if (h.headerLength < HEADER_V3_BYTES || h.headerLength > first.length) {
      throw new BlockBackendError(path, `qcow2 header_length ${h.headerLength} is invalid`);
    }
    if (h.headerLength > HEADER_V3_BYTES) h.compressionType = dv.getUint8(104);
  }
  if (h.clusterBits < MIN_CLUSTER_BITS || h.clusterBits > MAX_CLUSTER_BITS) {
    throw new BlockBackendError(path, `qcow2 cluster_bits ${h.clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  }
  parseExtensions(first, h, path);
  if (h.backingFileOffset !== 0) {
    if (h.backingFileSize === 0 || h.backingFileSize > MAX_BACKING_NAME || h.backingFileOffset + h.backingFileSize > first.length) {
      throw new BlockBackendError(path, `qcow2 backing file name (offset ${h.backingFileOffset}, ${h.backingFileSize} bytes) is invalid`);
    }
    h.backingFile = new TextDecoder().decode(first.subarray(h.backingFileOffset, h.backingFileOffset + h.backingFileSize));
  }
  return h;
}

/** Walk the header extensions: remember the ones we use, skip the rest (each is 8-byte padded). */
function parseExtensions(first: Uint8Array, h: Qcow2Header, path: string): void {
  // v2 headers are 72 bytes long and extensions (e.g. the backing format) follow directly.
  const dv = new DataView(first.buffer, first.byteOffset, first.byteLength);
  let off = h.headerLength;
  const limit = h.backingFileOffset !== 0 ? Math.min(h.backingFileOffset, first.length) : first.length;
  while (off + 8 <= limit) {
    const type = dv.getUint32(off);
    const length = dv.getUint32(off + 4);
    if (type === EXT_END) return;
    const data = off + 8;
    if (data + length > limit) throw new BlockBackendError(path, `qcow2 header extension 0x${type.toString(16)} overruns the header`);
    if (type === EXT_BACKING_FORMAT) h.backingFormat = new TextDecoder().decode(first.subarray(data, data + length));
    if (type === EXT_FDE) throw new BlockBackendError(path, 'encrypted qcow2 images (LUKS) are not supported');
    if (type === EXT_DATA_FILE) throw new BlockBackendError(path, 'qcow2 images with an external data file are not supported');
    off = data + Math.ceil(length / 8) * 8;
  }
}

/** Serialize a v3 header (HEADER_WRITE_BYTES long) into `out` at 0. */
export function writeHeader(out: Uint8Array, h: Qcow2Header): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(0, QCOW2_MAGIC);
  dv.setUint32(4, 3);
  dv.setBigUint64(8, BigInt(h.backingFileOffset));
  dv.setUint32(16, h.backingFileSize);
  dv.setUint32(20, h.clusterBits);
  dv.setBigUint64(24, BigInt(h.size));
  dv.setUint32(32, 0);
  dv.setUint32(36, h.l1Size);
  dv.setBigUint64(40, BigInt(h.l1TableOffset));
  dv.setBigUint64(48, BigInt(h.refcountTableOffset));
  dv.setUint32(56, h.refcountTableClusters);
  dv.setUint32(60, 0);
  dv.setBigUint64(64, 0n);
  dv.setBigUint64(72, h.incompatibleFeatures);
  dv.setBigUint64(80, h.compatibleFeatures);
  dv.setBigUint64(88, h.autoclearFeatures);
  dv.setUint32(96, h.refcountOrder);
  dv.setUint32(100, HEADER_WRITE_BYTES);
  dv.setUint8(104, 0); // compression_type zlib (unused: we never write compressed clusters)
}

/** Host cluster offset in an L1/L2 entry (bits 9..55). */
export function entryOffset(hi: number, lo: number): number {
  return (hi & HI_OFFSET_MASK) * 0x1_0000_0000 + ((lo & LO_OFFSET_MASK) >>> 0);
}

export function entryWords(offset: number): [number, number] {
  return [Math.floor(offset / 0x1_0000_0000) & HI_OFFSET_MASK, ((offset % 0x1_0000_0000) & LO_OFFSET_MASK) >>> 0];
}
