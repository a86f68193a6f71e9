/**
 * Raw disk image: the file's bytes are the disk's bytes. Positional readv/writev on a FileHandle, so requests
 * run concurrently in libuv's thread pool and never block the event loop.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { BlockBackendError, type BlockBackend } from './backend.js';

/** Largest slice handed to one readv/writev: keeps each libuv request bounded. */
const MAX_IO_BYTES = 1 << 30;
const ZERO_CHUNK = new Uint8Array(1 << 20);

export interface RawOpenOptions {
  readOnly?: boolean;
}

export class RawBackend implements BlockBackend {
  readonly optimalIoSize = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly readOnly: boolean,
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
    return new RawBackend(path, fh, st.size, readOnly);
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

  async writeZeroes(offset: number, length: number): Promise<void> {
    if (this.readOnly) throw new BlockBackendError(this.path, 'write to a read-only image', 'EROFS');
    for (let done = 0; done < length; ) {
      const n = Math.min(ZERO_CHUNK.length, length - done);
      await this.transfer('write', offset + done, [ZERO_CHUNK.subarray(0, n)]);
      done += n;
    }
  }

  async discard(): Promise<void> {
    // Node has no fallocate(PUNCH_HOLE); discard is only a hint (virtio spec 5.2.6), so keep the data.
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
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

