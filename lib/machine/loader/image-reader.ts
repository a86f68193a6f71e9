/**
 * Little-endian reads from an image file held in memory. Reads past the end throw LoaderError (truncated
 * image) rather than RangeError, so a short or corrupt file gives a message naming it.
 */

import { LoaderError } from './errors.js';

export class ImageReader {
  private readonly dv: DataView;

  constructor(readonly bytes: Uint8Array, readonly path: string, readonly what: string) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Throws a "truncated" LoaderError unless [offset, offset+size) is inside the file. */
  need(offset: number, size: number, field: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0 || offset + size > this.bytes.length) {
      throw new LoaderError(
        `${this.path}: truncated ${this.what}: ${field} needs bytes up to ${offset + size}, the file has ${this.bytes.length}`,
        this.path,
        'kernel',
      );
    }
  }

  u8(offset: number, field: string): number { this.need(offset, 1, field); return this.dv.getUint8(offset); }
  u16(offset: number, field: string): number { this.need(offset, 2, field); return this.dv.getUint16(offset, true); }
  u32(offset: number, field: string): number { this.need(offset, 4, field); return this.dv.getUint32(offset, true); }

  /** A 64-bit field as a Number; values above 2^53 are reported as errors instead of silently rounded. */
  u64(offset: number, field: string): number {
    this.need(offset, 8, field);
    const v = this.dv.getBigUint64(offset, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new LoaderError(`${this.path}: ${field} 0x${v.toString(16)} is out of range`, this.path, 'kernel');
    }
    return Number(v);
  }

  /** A 64-bit field as a bigint (virtual addresses of x86-64 kernels are above 2^53). */
  u64big(offset: number, field: string): bigint {
    this.need(offset, 8, field);
    return this.dv.getBigUint64(offset, true);
  }

  slice(offset: number, size: number, field: string): Uint8Array {
    this.need(offset, size, field);
    return this.bytes.subarray(offset, offset + size);
  }
}
