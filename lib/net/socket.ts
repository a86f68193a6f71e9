/**
 * The socket backend joins two VMs (or a VM and any program speaking the format) over one TCP stream carrying
 * Ethernet frames, each preceded by its length as a 4-byte big-endian integer — the framing of QEMU's
 * `-netdev socket,listen=/connect=`, so it interoperates with QEMU. Like a cable: frames sent while no peer is
 * connected, or while the peer is not reading, are dropped and counted. The listening side accepts one peer at
 * a time (a new one after the current one leaves); the connecting side reconnects after the peer goes away.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { MAX_FRAME_BYTES, MIN_FRAME_BYTES, type NetBackend, type NetBackendStats } from './backend.js';

export interface SocketBackendOptions {
  log?: (message: string) => void;
  /** Connect mode: delay between reconnection attempts (default 1000 ms). */
  reconnectDelayMs?: number;
  /** Bytes queued towards a slow peer before further frames are dropped (default 1 MiB). */
  maxQueuedBytes?: number;
}

export interface SocketBackendStats extends NetBackendStats {
  connections: number;
  /** Frames dropped because no peer was connected. */
  droppedNoPeer: number;
}

export class SocketBackend implements NetBackend {
  readonly stats: SocketBackendStats = { framesSent: 0, framesReceived: 0, framesDropped: 0, connections: 0, droppedNoPeer: 0 };
  private peer: Socket | undefined;
  private server: Server | undefined;
  private receiver: ((frame: Uint8Array) => void) | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly log: (message: string) => void;
  private readonly maxQueued: number;

  private constructor(readonly label: string, private readonly options: SocketBackendOptions) {
    this.log = options.log ?? ((m) => console.error(m));
    this.maxQueued = options.maxQueuedBytes ?? 1 << 20;
  }

  /** Listen on host:port (port 0 picks one: see `port`). Resolves once listening. */
  static listen(host: string, port: number, options: SocketBackendOptions = {}): Promise<SocketBackend> {
    const b = new SocketBackend(`socket,listen=${host}:${port}`, options);
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true }, (s) => b.accept(s));
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`${b.label}: cannot listen (${e.code ?? e.message})`)));
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        server.on('error', (e) => b.log(`${b.label}: ${e.message}`));
        b.server = server;
        resolve(b);
      });
    });
  }

  /** Connect to host:port. Rejects when the first attempt fails; later disconnects are retried. */
  static connect(host: string, port: number, options: SocketBackendOptions = {}): Promise<SocketBackend> {
    const b = new SocketBackend(`socket,connect=${host}:${port}`, options);
    return new Promise((resolve, reject) => {
      const s = connect({ host, port, noDelay: true });
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`${b.label}: cannot connect (${e.code ?? e.message}); is the listening side running?`)),
      );
      s.once('connect', () => {
        s.removeAllListeners('error');
        b.attach(s, () => b.scheduleReconnect(host, port));
        resolve(b);
      });
    });
  }

  /** The local listening port (listen mode). */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  get connected(): boolean {
    return this.peer !== undefined;
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.receiver = cb;
  }

  send(frame: Uint8Array): void {
    const peer = this.peer;
    if (!peer) {
      this.stats.droppedNoPeer++;
      this.stats.framesDropped++;
      return;
    }
    if (frame.length > MAX_FRAME_BYTES || peer.writableLength > this.maxQueued) {
      this.stats.framesDropped++;
      return;
    }
    const out = Buffer.allocUnsafe(4 + frame.length);
    out.writeUInt32BE(frame.length, 0);
    out.set(frame, 4);
    peer.write(out);
    this.stats.framesSent++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.peer?.destroy();
    this.peer = undefined;
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(s: Socket): void {
    if (this.closed || this.peer) {
      // One cable, one peer: refuse the extra connection.
      this.log(`${this.label}: refusing a second peer from ${s.remoteAddress}:${s.remotePort}`);
      s.destroy();
      return;
    }
    this.attach(s, () => this.log(`${this.label}: peer disconnected; waiting for a new one`));
  }

  private attach(s: Socket, onGone: () => void): void {
    this.peer = s;
    this.stats.connections++;
    let pending: Buffer = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let off = 0;
      while (pending.length - off >= 4) {
        const len = pending.readUInt32BE(off);
        if (len > MAX_FRAME_BYTES) {
          this.log(`${this.label}: peer sent a frame length of ${len} bytes (max ${MAX_FRAME_BYTES}); dropping the connection`);
          s.destroy();
          return;
        }
        if (pending.length - off - 4 < len) break;
        const frame = new Uint8Array(pending.subarray(off + 4, off + 4 + len));
        off += 4 + len;
        if (len < MIN_FRAME_BYTES) {
          this.stats.framesDropped++;
          continue;
        }
        this.stats.framesReceived++;
        this.receiver?.(frame);
      }
      pending = off === pending.length ? Buffer.alloc(0) : pending.subarray(off);
    });
    s.on('error', (e) => this.log(`${this.label}: ${e.message}`));
    s.on('close', () => {
      if (this.peer === s) this.peer = undefined;
      if (!this.closed) onGone();
    });
  }

  private scheduleReconnect(host: string, port: number, attempt = 0): void {
    if (this.closed) return;
    if (attempt === 0) this.log(`${this.label}: peer disconnected; reconnecting`);
    this.reconnectTimer = setTimeout(() => {
      if (this.closed) return;
      const s = connect({ host, port, noDelay: true });
      s.once('error', () => {
        s.destroy();
        this.scheduleReconnect(host, port, attempt + 1);
      });
      s.once('connect', () => {
        s.removeAllListeners('error');
        if (this.closed) {
          s.destroy();
          return;
        }
        this.log(`${this.label}: reconnected`);
        this.attach(s, () => this.scheduleReconnect(host, port));
      });
    }, this.options.reconnectDelayMs ?? 1000);
  }
}
