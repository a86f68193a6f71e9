/**
 * A tiny test-side "guest" network stack that speaks raw Ethernet frames to a NetBackend: ARP, DHCP, ICMP echo,
 * UDP, and a small TCP endpoint (active and passive open, in-order receive with a finite receive buffer and an
 * application that drains it, optional loss of incoming segments, retransmission of its own unacked data).
 * Checksums of every frame it receives are verified with an implementation independent of lib/net.
 */
import type { NetBackend } from '../../lib/net/backend.js';
import { ipv4ToNumber } from '../../lib/net/spec.js';

export const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
export const BCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const ip = ipv4ToNumber;

// ---- independent encoders/decoders -------------------------------------------------------------------------

function csum(parts: Uint8Array[], initial = 0): number {
  let s = initial;
  for (const p of parts) {
    for (let i = 0; i + 1 < p.length; i += 2) s += p[i]! * 256 + p[i + 1]!;
    if (p.length % 2) s += p[p.length - 1]! * 256;
  }
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return 0xffff - s;
}

function pseudo(src: number, dst: number, proto: number, len: number): number {
  return Math.floor(src / 65536) + (src % 65536) + Math.floor(dst / 65536) + (dst % 65536) + proto + len;
}

function be16(v: number): number[] {
  return [(v >>> 8) & 255, v & 255];
}
function be32(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}
function rd16(b: Uint8Array, o: number): number {
  return b[o]! * 256 + b[o + 1]!;
}
function rd32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function eth(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...dst, ...src, ...be16(type), ...payload]);
}

export function ipv4(src: number, dst: number, proto: number, payload: Uint8Array, extra: { flagsFrag?: number; ttl?: number } = {}): Uint8Array {
  const h = Uint8Array.from([0x45, 0, ...be16(20 + payload.length), 0, 1, ...be16(extra.flagsFrag ?? 0x4000), extra.ttl ?? 64, proto, 0, 0, ...be32(src), ...be32(dst)]);
  const c = csum([h]);
  h[10] = c >>> 8;
  h[11] = c & 255;
  return Uint8Array.from([...h, ...payload]);
}

export function udp(src: number, dst: number, sp: number, dp: number, payload: Uint8Array): Uint8Array {
  const u = Uint8Array.from([...be16(sp), ...be16(dp), ...be16(8 + payload.length), 0, 0, ...payload]);
  const c = csum([u], pseudo(src, dst, 17, u.length)) || 0xffff;
  u[6] = c >>> 8;
  u[7] = c & 255;
  return u;
}

export interface TcpSeg {
  sp: number;
  dp: number;
  seq: number;
  ack: number;
  flags: number;
  win: number;
  mss?: number;
  wscale?: number;
  data: Uint8Array;
}
export const F = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 } as const;

export function tcp(src: number, dst: number, s: TcpSeg): Uint8Array {
  const opts = [...(s.mss !== undefined ? [2, 4, ...be16(s.mss)] : []), ...(s.wscale !== undefined ? [1, 3, 3, s.wscale] : [])];
  const hl = 20 + opts.length;
  const t = Uint8Array.from([...be16(s.sp), ...be16(s.dp), ...be32(s.seq), ...be32(s.ack), (hl / 4) << 4, s.flags, ...be16(s.win), 0, 0, 0, 0, ...opts, ...s.data]);
  const c = csum([t], pseudo(src, dst, 6, t.length));
  t[16] = c >>> 8;
  t[17] = c & 255;
  return t;
}

export interface RxPacket {
  frame: Uint8Array;
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  type: number;
  /** IPv4 fields (when type is 0x0800). */
  src: number;
  dst: number;
  proto: number;
  ttl: number;
  l4: Uint8Array;
}

/** Parse and verify a frame from the network; throws on any checksum error (the test then fails). */
export function parseRx(frame: Uint8Array): RxPacket {
  const type = rd16(frame, 12);
  const pkt: RxPacket = { frame, dstMac: frame.slice(0, 6), srcMac: frame.slice(6, 12), type, src: 0, dst: 0, proto: 0, ttl: 0, l4: new Uint8Array(0) };
  if (type !== 0x0800) return pkt;
  const p = frame.subarray(14);
  const ihl = (p[0]! & 15) * 4;
  if (csum([p.subarray(0, ihl)]) !== 0) throw new Error('bad IPv4 header checksum from the network');
  const total = rd16(p, 2);
  pkt.src = rd32(p, 12);
  pkt.dst = rd32(p, 16);
  pkt.proto = p[9]!;
  pkt.ttl = p[8]!;
  pkt.l4 = p.subarray(ihl, total);
  // Fragments carry pieces of the transport payload: nothing to verify until reassembly.
  const ff = rd16(p, 6);
  if (ff & 0x3fff) return pkt;
  if (pkt.proto === 6 && csum([pkt.l4], pseudo(pkt.src, pkt.dst, 6, pkt.l4.length)) !== 0) throw new Error('bad TCP checksum from the network');
  if (pkt.proto === 17 && rd16(pkt.l4, 6) !== 0 && csum([pkt.l4], pseudo(pkt.src, pkt.dst, 17, pkt.l4.length)) !== 0) throw new Error('bad UDP checksum from the network');
  if (pkt.proto === 1 && csum([pkt.l4]) !== 0) throw new Error('bad ICMP checksum from the network');
  return pkt;
}

export function parseTcpSeg(l4: Uint8Array): TcpSeg {
  const hl = (l4[12]! >>> 4) * 4;
  let mss: number | undefined;
  let wscale: number | undefined;
  for (let i = 20; i < hl; ) {
    if (l4[i] === 0) break;
    if (l4[i] === 1) { i++; continue; }
    if (l4[i] === 2) mss = rd16(l4, i + 2);
    if (l4[i] === 3) wscale = l4[i + 2];
    i += l4[i + 1]!;
  }
  return {
    sp: rd16(l4, 0), dp: rd16(l4, 2), seq: rd32(l4, 4), ack: rd32(l4, 8), flags: l4[13]!, win: rd16(l4, 14),
    ...(mss !== undefined ? { mss } : {}), ...(wscale !== undefined ? { wscale } : {}), data: l4.slice(hl),
  };
}

export function parseUdpDgram(l4: Uint8Array): { sp: number; dp: number; data: Uint8Array } {
  return { sp: rd16(l4, 0), dp: rd16(l4, 2), data: l4.slice(8, rd16(l4, 4)) };
}

// ---- the stack ---------------------------------------------------------------------------------------------

type Handler = (p: RxPacket) => boolean;

export class GuestStack {
  mac = GUEST_MAC;
  addr = ip('10.0.2.15');
  gwMac: Uint8Array = BCAST;
  readonly received: RxPacket[] = [];
  errors: string[] = [];
  private handlers: Handler[] = [];
  private waiters: Array<{ pred: (p: RxPacket) => boolean; resolve: (p: RxPacket) => void }> = [];

  constructor(readonly net: NetBackend) {
    net.onFrame((frame) => this.input(frame));
  }

  sendFrame(frame: Uint8Array): void {
    this.net.send(frame);
  }

  sendIp(dst: number, proto: number, payload: Uint8Array, src = this.addr): void {
    this.sendFrame(eth(this.gwMac, this.mac, 0x0800, ipv4(src, dst, proto, payload)));
  }

  sendUdp(dst: number, sp: number, dp: number, data: Uint8Array, src = this.addr): void {
    this.sendIp(dst, 17, udp(src, dst, sp, dp, data), src);
  }

  sendTcp(dst: number, s: TcpSeg): void {
    this.sendIp(dst, 6, tcp(this.addr, dst, s));
  }

  /** Handlers see every packet first; one that returns true consumes it. */
  addHandler(h: Handler): () => void {
    this.handlers.push(h);
    return () => {
      this.handlers = this.handlers.filter((x) => x !== h);
    };
  }

  /** The next received packet matching `pred` (including ones that arrived before the call). */
  waitFor(pred: (p: RxPacket) => boolean, timeoutMs = 5000, what = 'packet'): Promise<RxPacket> {
    const i = this.received.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (p: RxPacket) => { clearTimeout(t); resolve(p); } };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  private input(frame: Uint8Array): void {
    let p: RxPacket;
    try {
      p = parseRx(frame);
    } catch (e) {
      this.errors.push((e as Error).message);
      return;
    }
    for (const h of this.handlers) if (h(p)) return;
    const w = this.waiters.find((x) => x.pred(p));
    if (w) {
      this.waiters = this.waiters.filter((x) => x !== w);
      w.resolve(p);
      return;
    }
    this.received.push(p);
  }
}

// ---- a small TCP endpoint ----------------------------------------------------------------------------------

export interface TestTcpOptions {
  /** Receive buffer (our advertised window when the application has read everything). */
  rcvBuf?: number;
  /** The application reads `readChunk` bytes every `readIntervalMs` (default: reads at once). */
  readIntervalMs?: number;
  readChunk?: number;
  /** Drop every Nth incoming data segment (simulates loss on the receive path). */
  dropEvery?: number;
  /** Send pure ACKs this late (longer than the peer's retransmission timeout provokes spurious retransmissions). */
  ackDelayMs?: number;
  /** Lose every Nth first transmission of a data segment (the network must cope with gaps and retransmissions). */
  dropTxEvery?: number;
  mss?: number;
  /** Offer window scaling with this shift (RFC 7323). */
  wscale?: number;
}

export class TestTcp {
  state: 'closed' | 'syn-sent' | 'syn-received' | 'established' = 'closed';
  sndNxt = 1000 + Math.floor(Math.random() * 1e6);
  sndUna = this.sndNxt;
  rcvNxt = 0;
  peerWin = 0;
  peerMss = 536;
  readonly chunks: Uint8Array[] = [];
  receivedBytes = 0;
  unread = 0;
  finReceived = false;
  resetReceived = false;
  finAcked = false;
  dropped = 0;
  dupSegments = 0;
  maxSegment = 0;
  /** Times our advertised window dropped to zero. */
  windowClosed = 0;
  /** Data bytes that arrived beyond our advertised window, other than 1-byte zero-window probes. */
  beyondWindow = 0;
  private dataCount = 0;
  private txCount = 0;
  ourShift = 0;
  peerShift = 0;
  /** Largest amount of data the peer had outstanding beyond our last ACK. */
  maxPeerInFlight = 0;
  /** Largest window (bytes) the peer advertised after the handshake. */
  maxPeerWin = 0;
  private lastAckSent = 0;
  private highestSent = 0;
  private sndMax(): number {
    return ((this.sndNxt - this.highestSent) | 0) > 0 ? this.sndNxt : this.highestSent;
  }
  txDropped = 0;
  private unsent: Uint8Array = new Uint8Array(0);
  private ourFin = false;
  private ourFinSeq = 0;
  private readonly rcvBuf: number;
  private readonly off: () => void;
  private readTimer: NodeJS.Timeout | undefined;
  private rtxTimer: NodeJS.Timeout | undefined;
  private events: Array<() => void> = [];

  constructor(readonly stack: GuestStack, readonly localPort: number, public remoteIp: number, public remotePort: number, readonly opts: TestTcpOptions = {}) {
    this.rcvBuf = opts.rcvBuf ?? 65535;
    this.off = stack.addHandler((p) => this.match(p) && (this.onSegment(parseTcpSeg(p.l4)), true));
    if (opts.readIntervalMs) {
      this.readTimer = setInterval(() => this.appRead(opts.readChunk ?? 8192), opts.readIntervalMs);
    }
  }

  get data(): Uint8Array {
    const out = new Uint8Array(this.receivedBytes);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  connect(): Promise<void> {
    this.state = 'syn-sent';
    this.sendSyn();
    return this.until(() => this.state === 'established' || this.resetReceived, 'SYN-ACK').then(() => {
      if (this.resetReceived) throw new Error('connection refused (RST)');
    });
  }

  write(data: Uint8Array): void {
    this.unsent = Uint8Array.from([...this.unsent, ...data]);
    this.pump();
  }

  close(): void {
    this.ourFin = true;
    this.pump();
  }

  until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what} (received ${this.receivedBytes} bytes, state ${this.state})`)), timeoutMs);
      const check = (): void => {
        if (cond()) {
          clearTimeout(t);
          this.events = this.events.filter((e) => e !== check);
          resolve();
        }
      };
      this.events.push(check);
    });
  }

  dispose(): void {
    this.off();
    clearInterval(this.readTimer);
    clearTimeout(this.rtxTimer);
  }

  /** Bytes we can take. */
  private window(): number {
    return Math.max(0, Math.min(65535 * 2 ** this.ourShift, this.rcvBuf - this.unread));
  }

  /** The window field for a non-SYN segment. */
  private winField(): number {
    return Math.floor(this.window() / 2 ** this.ourShift);
  }

  private appRead(n: number): void {
    const before = this.window();
    this.unread = Math.max(0, this.unread - n);
    // Window update once it opens by a useful amount (receiver-side silly-window avoidance).
    if (this.state === 'established' && before < 1460 && this.window() >= 1460) this.ack();
  }

  private match(p: RxPacket): boolean {
    if (p.proto !== 6 || p.dst !== this.stack.addr) return false;
    const s = parseTcpSeg(p.l4);
    if (s.dp !== this.localPort) return false;
    if (this.state === 'closed' && s.flags === F.SYN) return false; // a listener takes it
    return p.src === this.remoteIp && s.sp === this.remotePort;
  }

  /** Passive open from a received SYN. */
  accept(syn: TcpSeg): void {
    this.state = 'syn-received';
    this.rcvNxt = (syn.seq + 1) >>> 0;
    this.lastAckSent = this.rcvNxt;
    this.peerWin = syn.win;
    this.peerMss = syn.mss ?? 536;
    if (this.opts.wscale !== undefined && syn.wscale !== undefined) {
      this.ourShift = this.opts.wscale;
      this.peerShift = syn.wscale;
    }
    this.sendSyn();
  }

  private sendSyn(): void {
    const flags = this.state === 'syn-received' ? F.SYN | F.ACK : F.SYN;
    // State first: the network may answer synchronously, from inside sendTcp.
    this.sndNxt = (this.sndUna + 1) >>> 0;
    this.highestSent = this.sndNxt;
    const offerScale = this.opts.wscale !== undefined && (flags === F.SYN || this.ourShift > 0);
    this.stack.sendTcp(this.remoteIp, {
      sp: this.localPort, dp: this.remotePort, seq: this.sndUna, ack: flags & F.ACK ? this.rcvNxt : 0, flags, win: Math.min(65535, this.window()),
      mss: this.opts.mss ?? 1460, ...(offerScale ? { wscale: this.opts.wscale } : {}), data: new Uint8Array(0),
    });
  }

  private onSegment(s: TcpSeg): void {
    try {
      this.handle(s);
    } finally {
      for (const e of [...this.events]) e();
    }
  }

  private handle(s: TcpSeg): void {
    if (s.flags & F.RST) {
      this.resetReceived = true;
      return;
    }
    if (this.state === 'syn-sent') {
      if ((s.flags & (F.SYN | F.ACK)) === (F.SYN | F.ACK) && s.ack === this.sndNxt) {
        this.rcvNxt = (s.seq + 1) >>> 0;
        this.lastAckSent = this.rcvNxt;
        this.sndUna = s.ack;
        this.peerWin = s.win;
        this.peerMss = s.mss ?? 536;
        if (this.opts.wscale !== undefined && s.wscale !== undefined) {
          this.ourShift = this.opts.wscale;
          this.peerShift = s.wscale;
        }
        this.state = 'established';
        this.ack();
        this.pump();
      }
      return;
    }
    if (s.flags & F.ACK) {
      const adv = (s.ack - this.sndUna) | 0;
      // After a go-back-N rewind, ACKs can cover data sent before the rewind (up to sndMax).
      if (adv > 0 && ((this.sndMax() - s.ack) | 0) >= 0) {
        this.sndUna = s.ack;
        if (((s.ack - this.sndNxt) | 0) > 0) this.sndNxt = s.ack;
        if (this.state === 'syn-received') this.state = 'established';
        if (this.ourFin && s.ack === ((this.ourFinSeq + 1) >>> 0)) this.finAcked = true;
      }
      this.peerWin = s.win * 2 ** this.peerShift;
      this.maxPeerWin = Math.max(this.maxPeerWin, this.peerWin);
    }
    if (this.state !== 'established') return;
    if (s.data.length > 0) {
      this.maxSegment = Math.max(this.maxSegment, s.data.length);
      this.maxPeerInFlight = Math.max(this.maxPeerInFlight, (s.seq + s.data.length - this.lastAckSent) | 0);
      if (this.opts.dropEvery && ++this.dataCount % this.opts.dropEvery === 0) {
        this.dropped++;
        return; // lost on the way: no ACK
      }
      if (s.seq !== this.rcvNxt) {
        this.dupSegments++;
        this.ack();
        return;
      }
      const take = Math.min(s.data.length, this.window());
      if (s.data.length > take && !(this.window() === 0 && s.data.length === 1)) this.beyondWindow += s.data.length - take;
      if (take > 0) {
        this.chunks.push(s.data.slice(0, take));
        this.receivedBytes += take;
        this.unread += take;
        this.rcvNxt = (this.rcvNxt + take) >>> 0;
        if (!this.opts.readIntervalMs) this.unread = 0;
        if (this.window() === 0) this.windowClosed++;
      }
      if (take < s.data.length) {
        this.ack();
        return;
      }
    }
    if (s.flags & F.FIN && ((s.seq + s.data.length) >>> 0) === this.rcvNxt) {
      if (!this.finReceived) {
        this.finReceived = true;
        this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      }
    }
    if (s.data.length > 0 || s.flags & F.FIN) this.ack();
    this.pump();
  }

  private ack(): void {
    const seg = { sp: this.localPort, dp: this.remotePort, seq: this.sndNxt, ack: this.rcvNxt, flags: F.ACK, win: this.winField(), data: new Uint8Array(0) };
    const send = (): void => {
      if (((seg.ack - this.lastAckSent) | 0) > 0) this.lastAckSent = seg.ack;
      this.stack.sendTcp(this.remoteIp, seg);
    };
    if (this.opts.ackDelayMs) setTimeout(send, this.opts.ackDelayMs);
    else send();
  }

  /** Send unsent data within the peer's window; retransmit from sndUna on a timer. */
  private pump(): void {
    if (this.state !== 'established') return;
    for (;;) {
      const offset = this.unsentOffset();
      const room = this.peerWin - ((this.sndNxt - this.sndUna) | 0);
      const left = this.unsent.length - offset;
      if (left <= 0 || room <= 0) break;
      const n = Math.min(left, room, this.peerMss);
      const seq = this.sndNxt;
      const fresh = ((seq - this.highestSent) | 0) >= 0;
      this.sndNxt = (this.sndNxt + n) >>> 0;
      this.highestSent = this.sndMax();
      // Only first transmissions are lost, so every retransmission round makes progress.
      if (this.opts.dropTxEvery && fresh && ++this.txCount % this.opts.dropTxEvery === 0) {
        this.txDropped++;
        continue;
      }
      this.stack.sendTcp(this.remoteIp, { sp: this.localPort, dp: this.remotePort, seq, ack: this.rcvNxt, flags: F.ACK | F.PSH, win: this.winField(), data: this.unsent.slice(offset, offset + n) });
    }
    if (this.ourFin && this.ourFinSeq === 0 && this.unsentOffset() >= this.unsent.length) {
      this.ourFinSeq = this.sndNxt;
      this.sndNxt = (this.sndNxt + 1) >>> 0;
      this.highestSent = this.sndMax();
      this.stack.sendTcp(this.remoteIp, { sp: this.localPort, dp: this.remotePort, seq: this.ourFinSeq, ack: this.rcvNxt, flags: F.ACK | F.FIN, win: this.winField(), data: new Uint8Array(0) });
    }
    // Trim acknowledged data and retransmit on silence.
    clearTimeout(this.rtxTimer);
    if (this.sndNxt !== this.sndUna) {
      this.rtxTimer = setTimeout(() => {
        this.sndNxt = this.sndUna;
        if (this.ourFinSeq !== 0 && !this.finAcked) this.ourFinSeq = 0;
        this.pump();
      }, 300);
    }
  }

  /** Offset in `unsent` of the byte at sndNxt (data starts one after the SYN). */
  private unsentOffset(): number {
    return ((this.sndNxt - this.dataStart()) | 0);
  }

  /** Sequence number of our first data byte: sndUna when the handshake completed (first pump). */
  private dataStartSeq: number | undefined;
  private dataStart(): number {
    if (this.dataStartSeq === undefined) this.dataStartSeq = this.sndUna;
    return this.dataStartSeq;
  }
}

/** Accept connections on `port`: each SYN creates a TestTcp in passive mode. */
export function listen(stack: GuestStack, port: number, onConn: (c: TestTcp) => void, opts: TestTcpOptions = {}): () => void {
  return stack.addHandler((p) => {
    if (p.proto !== 6 || p.dst !== stack.addr) return false;
    const s = parseTcpSeg(p.l4);
    if (s.dp !== port || s.flags !== F.SYN) return false;
    const c = new TestTcp(stack, port, p.src, s.sp, opts);
    c.accept(s);
    onConn(c);
    return true;
  });
}

/** An ICMP echo message (type 8 request, 0 reply) with identifier, sequence and data; checksum filled in. */
export function icmpEcho(type: number, id: number, seq: number, data: Uint8Array): Uint8Array {
  const m = Uint8Array.from([type, 0, 0, 0, ...be16(id), ...be16(seq), ...data]);
  const c = csum([m]);
  m[2] = c >>> 8;
  m[3] = c & 255;
  return m;
}
