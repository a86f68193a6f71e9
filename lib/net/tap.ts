/**
 * TAP backend: frames go to and come from a Linux TAP interface (IFF_TAP | IFF_NO_PI, so reads and writes
 * are bare Ethernet frames, one per call).
 *
 * Node cannot poll a character device through net.Socket (it reports the fd type as FILE), and fs.read would
 * park a libuv pool thread in read() while the link is idle (the pool disk I/O needs), could not be
 * interrupted by close(), and kept the process alive. So the fd lives in the addon's PacketFd: non-blocking,
 * watched with uv_poll on the JS thread's own loop; when it is readable, the queued frames are read there (up to
 * 64 per loop turn) and handed over in one call. Writes are non-blocking write() calls on the JS thread — a TAP
 * write does not wait; a full kernel queue (EAGAIN/ENOBUFS) drops the frame, like a lossy wire.
 *
 * The watcher does not keep the process alive: whatever runs the guest does. close() closes the fd at once
 * (the interface disappears with it unless it is persistent).
 */
import { closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { NativePacketFd } from '../kvm/native.js';
import { MAX_FRAME_BYTES, MIN_FRAME_BYTES, type NetBackend, type NetBackendStats } from './backend.js';
import { openPacketFd, openTapFd } from './tap-open.js';

const { EAGAIN, ENOBUFS } = osConstants.errno;
const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));
// What reads return once the interface was deleted under the fd (Linux 77); Node's table lacks it.
if (!errnoNames.has(77)) errnoNames.set(77, 'EBADFD');

export interface TapBackendOptions {
  log?: (message: string) => void;
  /** @deprecated Ignored: writes are no longer queued (each send() is one non-blocking write). */
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
  private oversizedSeen = 0;
  private lastWriteError = 0;
  private readonly log: (message: string) => void;

  private constructor(private readonly packets: NativePacketFd, readonly fd: number, readonly ifname: string, options: TapBackendOptions) {
    this.log = options.log ?? ((m) => console.error(m));
    packets.start((frames, error) => this.receive(frames, error));
  }

  /** Open (or attach to) the TAP interface `ifname` ('' lets the kernel choose a name). */
  static open(ifname: string, options: TapBackendOptions = {}): TapBackend {
    const h = openTapFd(ifname);
    return TapBackend.fromFd(h.fd, h.ifname, options);
  }

  /**
   * Wrap an already configured TAP fd (IFF_TAP | IFF_NO_PI) opened elsewhere. The backend owns the fd from this
   * call on (and makes it non-blocking): if this throws (e.g. TapUnavailableError), the fd has been closed.
   */
  static fromFd(fd: number, ifname: string, options: TapBackendOptions = {}): TapBackend {
    let packets: NativePacketFd;
    try {
      packets = openPacketFd(fd, MAX_FRAME_BYTES);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    try {
      return new TapBackend(packets, fd, ifname, options);
    } catch (e) {
      packets.close(); // e.g. an fd the kernel cannot poll
      throw e;
    }
  }

  /** Frames waiting to be written: always 0, since each send() writes at once (kept for API compatibility). */
  get queuedWrites(): number {
    return 0;
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.receiver = cb;
  }

  send(frame: Uint8Array): void {
    if (this.closed || frame.length < MIN_FRAME_BYTES || frame.length > MAX_FRAME_BYTES) {
      this.stats.framesDropped++;
      return;
    }
    const n = this.packets.send(frame);
    if (n >= 0) {
      this.stats.framesSent++;
      this.lastWriteError = 0;
      return;
    }
    this.stats.framesDropped++;
    if (n === -EAGAIN || n === -ENOBUFS) return; // the interface's queue is full: a lossy wire drops
    this.stats.writeErrors++;
    // Log once per run of the same error (a link that is down fails every write).
    if (n !== this.lastWriteError) this.log(`tap ${this.ifname}: write failed (${errnoName(n)})`);
    this.lastWriteError = n;
  }

  /** Stop reading and close the fd now (idempotent). Frames sent before are already with the kernel. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.packets.close();
  }

  private receive(frames: Buffer[], error: number): void {
    if (this.closed) return;
    for (const f of frames) {
      if (f.length < MIN_FRAME_BYTES) {
        this.stats.framesDropped++;
        continue;
      }
      this.stats.framesReceived++;
      // A plain Uint8Array view (no copy): Buffer's slice() shares memory where Uint8Array's copies.
      this.receiver?.(new Uint8Array(f.buffer, f.byteOffset, f.length));
      if (this.closed) return; // the receiver closed the backend
    }
    const oversized = this.packets.oversized;
    this.stats.framesDropped += oversized - this.oversizedSeen;
    this.oversizedSeen = oversized;
    if (error !== 0) {
      // The addon has stopped watching (a failing fd stays readable, so retrying would spin). Typical cause:
      // the interface was deleted under us (EBADFD).
      this.stats.readErrors++;
      this.log(`tap ${this.ifname}: read failed (${errnoName(error)}); no more frames will be received`);
    }
  }
}

/** "EBADFD" for -77, from Node's own table; "errno N" when unknown. */
function errnoName(negErrno: number): string {
  return errnoNames.get(-negErrno) ?? `errno ${-negErrno}`;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}
