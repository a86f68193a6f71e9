/**
 * What a block device model needs from a disk image. Offsets and lengths are in bytes; the device model
 * validates them against `size` before calling. Buffers are often zero-copy views of guest RAM.
 * Implementations must never block the event loop (async file I/O only).
 */
export interface BlockBackend {
  /** Virtual disk size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Preferred I/O granularity in bytes (qcow2: the cluster size); 0 when there is none. */
  readonly optimalIoSize: number;
  /** Fill `buffers` (in order) with the bytes starting at `offset`. */
  read(offset: number, buffers: readonly Uint8Array[]): Promise<void>;
  /** Write `buffers` (in order) starting at `offset`. */
  write(offset: number, buffers: readonly Uint8Array[]): Promise<void>;
  /** Make every write that completed before this call durable. */
  flush(): Promise<void>;
  /** Make [offset, offset+length) read as zeros. */
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void>;
  /** The range's contents are no longer needed (a hint: may do nothing, zero it, or free its space). */
  discard(offset: number, length: number): Promise<void>;
  close(): Promise<void>;
}

export interface WriteZeroesOptions {
  /** The guest allows deallocating the range (virtio-blk WRITE_ZEROES flag UNMAP): a hole is fine. */
  unmap?: boolean;
}

export class BlockBackendError extends Error {
  constructor(readonly path: string, message: string, readonly code = 'EBLOCK') {
    super(`${path}: ${message}`);
    this.name = 'BlockBackendError';
  }
}

export function totalLength(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}

/** Sub-views covering bytes [start, start+length) of the concatenation of `buffers` (no copies). */
export function sliceBuffers(buffers: readonly Uint8Array[], start: number, length: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = start;
  let want = length;
  for (const b of buffers) {
    if (want === 0) break;
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    const take = Math.min(b.length - skip, want);
    out.push(b.subarray(skip, skip + take));
    want -= take;
    skip = 0;
  }
  return out;
}

/** One async-operation-at-a-time lock: metadata updates of image formats must not interleave. */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
