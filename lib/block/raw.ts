/**
 * Raw disk image: the file's bytes are the disk's bytes. Positional readv/writev on a FileHandle, so requests
 * run concurrently in libuv's thread pool and never block the event loop. Discard punches holes and
 * write-zeroes uses fallocate (ZERO_RANGE, or PUNCH_HOLE when the guest allows unmapping), also on the pool;
 * where the filesystem or the addon cannot, discard keeps the data and write-zeroes writes zero blocks.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { NativeFallocate } from '../kvm/native.js';
import { BlockBackendError, type BlockBackend, type WriteZeroesOptions } from './backend.js';
import { fallocateRange, nativeFallocate, type SpaceOp } from './fallocate.js';

/** Largest slice handed to one readv/writev: keeps each libuv request bounded. */
const MAX_IO_BYTES = 1 << 30;
const ZERO_CHUNK = new Uint8Array(1 << 20);

export interface RawOpenOptions {
  readOnly?: boolean;
  /** fallocate to use: default the addon's; null means none (discard keeps data, write-zeroes writes zeros). */
  fallocate?: NativeFallocate | null;
  /** Where the one-time "this filesystem cannot punch holes / zero ranges" notes go (default console.warn). */
  log?: (line: string) => void;
}

export class RawBackend implements BlockBackend {
  readonly optimalIoSize = 0;
  private closed = false;
  /** fallocate modes the filesystem refused once: not tried again (each refusal is logged once). */
  private readonly refused = new Set<SpaceOp>();
  /** fallocate calls in flight: close() waits for them, since they use the raw fd. */
  private readonly spaceOps = new Set<Promise<boolean>>();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly readOnly: boolean,
    private readonly fallocate: NativeFallocate | null,
    private readonly log: (line: string) => void,
  ) {}

  static async open(path: string, options: RawOpenOptions = {}): Promise<RawBackend> {
    const readOnly = options.readOnly ?? false;
    let fh: FileHandle;
    try {
      fh = await open(path, readOnly ? 'r' : 'r+');
    } catch (e) {
      throw new BlockBackendError(path, `cannot open raw image: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
    }
    const st = await fh.stat();
    const fallocate = options.fallocate === undefined ? nativeFallocate() : options.fallocate;
    return new RawBackend(path, fh, st.size, readOnly, fallocate, options.log ?? ((line) => console.warn(line)));
  }

  async read(offset: number, buffers: readonly Uint8Array[]): Promise<void> {
    await this.transfer('read', offset, buffers);
  }

  async write(offset: number, buffers: readonly Uint8Array[]): Promise<void> {
    if (this.readOnly) throw new BlockBackendError(this.path, 'write to a read-only image', 'EROFS');
    await this.transfer('write', offset, buffers);
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.fh.datasync();
  }

  /**
   * Unmap allowed: punch a hole (a hole reads as zeros). Otherwise ZERO_RANGE, which keeps the space
   * allocated as the guest asked. Either way, when the filesystem refuses, write zero blocks.
   */
  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    this.checkRange('write-zeroes', offset, length);
    if (length === 0) return;
    if (options.unmap && (await this.space('punch-hole', offset, length))) return;
    if (await this.space('zero-range', offset, length)) return;
    for (let done = 0; done < length; ) {
      const n = Math.min(ZERO_CHUNK.length, length - done);
      await this.transfer('write', offset + done, [ZERO_CHUNK.subarray(0, n)]);
      done += n;
    }
  }

  /** Frees the range's blocks; where holes cannot be punched the data stays (discard is a hint, virtio 5.2.6). */
  async discard(offset: number, length: number): Promise<void> {
    this.checkRange('discard', offset, length);
    if (length === 0) return;
    await this.space('punch-hole', offset, length);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.spaceOps]);
    await this.fh.close();
  }

  /** Refuses writes to a read-only image and ranges outside the image (the device checks too; this is the backstop). */
  private checkRange(what: string, offset: number, length: number): void {
    if (this.readOnly) throw new BlockBackendError(this.path, `${what} on a read-only image`, 'EROFS');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockBackendError(this.path, `${what} of ${length} bytes at offset ${offset} is outside the ${this.size}-byte image`, 'EINVAL');
    }
  }

  /** fallocate `op` on the range: true when done; false when unsupported here (noted once, not retried). */
  private async space(op: SpaceOp, offset: number, length: number): Promise<boolean> {
    if (this.fallocate === null || this.refused.has(op)) return false;
    if (this.closed) throw new BlockBackendError(this.path, `${op} after close`, 'EBADF');
    const pending = fallocateRange(this.fallocate, this.fh.fd, op, offset, length);
    this.spaceOps.add(pending);
    let done: boolean;
    try {
      done = await pending;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new BlockBackendError(this.path, `fallocate ${op} of ${length} bytes at offset ${offset}: ${err.message}`, err.code ?? 'EIO');
    } finally {
      this.spaceOps.delete(pending);
    }
    if (!done) {
      this.refused.add(op);
      this.log(
        `${this.path}: the filesystem cannot ${op === 'punch-hole' ? 'punch holes (fallocate PUNCH_HOLE); discard keeps the data' : 'zero ranges (fallocate ZERO_RANGE); write-zeroes writes zero blocks'}`,
      );
    }
    return done;
  }

  /** readv/writev until every byte moved; a read past end of file yields zeros. */
  private async transfer(kind: 'read' | 'write', offset: number, buffers: readonly Uint8Array[]): Promise<void> {
    let pending = buffers.filter((b) => b.length > 0);
    let position = offset;
    while (pending.length > 0) {
      const batch = takeBatch(pending);
      const n =
        kind === 'read'
          ? (await this.fh.readv(batch, position)).bytesRead
          : (await this.fh.writev(batch, position)).bytesWritten;
      if (n === 0) {
        if (kind === 'write') throw new BlockBackendError(this.path, `short write at offset ${position}`, 'EIO');
        for (const b of pending) b.fill(0);
        return;
      }
      position += n;
      pending = advance(pending, n);
    }
  }
}

/** A prefix of `buffers` small enough for one system call (IOV_MAX 1024, MAX_IO_BYTES). */
function takeBatch(buffers: Uint8Array[]): Uint8Array[] {
  const batch: Uint8Array[] = [];
  let bytes = 0;
  for (const b of buffers) {
    if (batch.length === 1024) break;
    if (bytes + b.length > MAX_IO_BYTES) {
      if (batch.length === 0) batch.push(b.subarray(0, MAX_IO_BYTES));
      break;
    }
    batch.push(b);
    bytes += b.length;
  }
  return batch;
}

function advance(buffers: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (i < buffers.length && n >= buffers[i]!.length) n -= buffers[i++]!.length;
  const rest = buffers.slice(i);
  if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

