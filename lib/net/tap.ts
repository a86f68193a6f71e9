/**
 * TAP backend: frames go to and come from a Linux TAP interface (IFF_TAP | IFF_NO_PI, so reads and writes
 * are bare Ethernet frames, one per call). Node cannot poll a character device through net.Socket (it reports
 * the fd type as FILE), so reads and writes use fs.read/fs.write on the fd, which run on the libuv threadpool:
 * one read is always outstanding (it occupies one pool thread while the link is idle — consider raising
 * UV_THREADPOOL_SIZE when using TAP together with disk I/O); at most two writes are in the pool at a time, the
 * rest wait in a bounded queue (frames beyond it are dropped).
 */
import { close as fsClose, read as fsRead, write as fsWrite } from 'node:fs';
import { MAX_FRAME_BYTES, MIN_FRAME_BYTES, type NetBackend, type NetBackendStats } from './backend.js';
import { openTapFd } from './tap-open.js';

/** Writes handed to the libuv pool at once (see startWrites). */
const POOL_WRITES = 2;

export interface TapBackendOptions {
  log?: (message: string) => void;
  /** Frames queued for writing before further ones are dropped (default 256). */
  maxPendingWrites?: number;
}

export interface TapBackendStats extends NetBackendStats {
  readErrors: number;
  writeErrors: number;
}

export class TapBackend implements NetBackend {
  readonly stats: TapBackendStats = { framesSent: 0, framesReceived: 0, framesDropped: 0, readErrors: 0, writeErrors: 0 };
  private receiver: ((frame: Uint8Array) => void) | undefined;
  private closed = false;
  private writesInPool = 0;
  private writeQueue: Uint8Array[] = [];
  private writesDone: (() => void) | undefined;
  private readonly buf = Buffer.allocUnsafe(MAX_FRAME_BYTES + 4);
  private readonly log: (message: string) => void;
  private readonly maxPendingWrites: number;
  private readInFlight = false;
  private readRetryMs = 0;

  private constructor(readonly fd: number, readonly ifname: string, options: TapBackendOptions) {
    this.log = options.log ?? ((m) => console.error(m));
    this.maxPendingWrites = options.maxPendingWrites ?? 256;
    this.readNext();
  }

  /** Open (or attach to) the TAP interface `ifname` ('' lets the kernel choose a name). */
  static open(ifname: string, options: TapBackendOptions = {}): TapBackend {
    const h = openTapFd(ifname);
    return new TapBackend(h.fd, h.ifname, options);
  }

  /** Wrap an already configured TAP fd (IFF_TAP | IFF_NO_PI) opened elsewhere; the backend owns it afterwards. */
  static fromFd(fd: number, ifname: string, options: TapBackendOptions = {}): TapBackend {
    return new TapBackend(fd, ifname, options);
  }

  /** Frames queued or being written. */
  get queuedWrites(): number {
    return this.writeQueue.length + this.writesInPool;
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.receiver = cb;
  }

  send(frame: Uint8Array): void {
    if (this.closed || frame.length < MIN_FRAME_BYTES || frame.length > MAX_FRAME_BYTES || this.queuedWrites >= this.maxPendingWrites) {
      this.stats.framesDropped++;
      return;
    }
    this.writeQueue.push(frame);
    this.startWrites();
  }

  /**
   * Only a few writes go to the libuv pool at a time; the rest wait here. A long pool queue would delay the
   * next read (its job queues behind the writes), and with it the guest's ACKs.
   */
  private startWrites(): void {
    while (this.writesInPool < POOL_WRITES && this.writeQueue.length > 0) {
      const frame = this.writeQueue.shift()!;
      this.writesInPool++;
      fsWrite(this.fd, frame, 0, frame.length, null, (err) => {
        this.writesInPool--;
        if (err) {
          this.stats.writeErrors++;
          this.stats.framesDropped++;
        } else {
          this.stats.framesSent++;
        }
        if (this.closed) this.writeQueue = [];
        this.startWrites();
        if (this.writesInPool === 0) this.writesDone?.();
      });
    }
  }

  /**
   * Stop and close the fd once no write is in flight. A read blocked in the kernel keeps the interface open
   * until the next frame arrives on it (its result is discarded); no new I/O is started on the fd number.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writeQueue = [];
    if (this.writesInPool > 0) await new Promise<void>((r) => (this.writesDone = r));
    await new Promise<void>((r) => fsClose(this.fd, () => r()));
  }

  private readNext(): void {
    if (this.closed || this.readInFlight) return;
    this.readInFlight = true;
    fsRead(this.fd, this.buf, 0, this.buf.length, null, (err, n) => {
      this.readInFlight = false;
      if (this.closed) return;
      if (err) {
        this.stats.readErrors++;
        if (err.code === 'EBADF') return;
        // Errors while the interface is torn down (or moved away), or transient ones: retry with backoff,
        // logging once per run of errors.
        if (this.readRetryMs === 0) this.log(`tap ${this.ifname}: read failed (${err.code ?? err.message}); retrying`);
        this.readRetryMs = Math.min(Math.max(this.readRetryMs * 2, 50), 5000);
        setTimeout(() => this.readNext(), this.readRetryMs);
        return;
      }
      this.readRetryMs = 0;
      if (n >= MIN_FRAME_BYTES) {
        this.stats.framesReceived++;
        this.receiver?.(new Uint8Array(this.buf.subarray(0, n)));
      } else {
        this.stats.framesDropped++;
      }
      this.readNext();
    });
  }
}
