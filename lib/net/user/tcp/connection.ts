/**
 * One TCP connection between the guest and the user-mode network, bridged to a host net.Socket. We play the
 * guest's peer: our own sequence space, retransmission of data the guest has not acknowledged (go-back-N with
 * exponential backoff, fast retransmit on three duplicate ACKs), zero-window probing, and flow control both ways:
 *  - host → guest: at most the guest's window in flight; the host socket is paused while too much is buffered;
 *  - guest → host: our advertised window is what the host socket can still buffer, and bytes beyond it are
 *    neither taken nor acknowledged (the guest retransmits them later).
 * No window scaling, SACK or timestamps are negotiated, which keeps both windows within 16 bits.
 */
import type { Socket } from 'node:net';
import { ACK, FIN, PSH, RST, SYN, seqAdd, seqDiff, seqLt, type TcpSegment } from './segment.js';

export type OutSegment = Omit<TcpSegment, 'srcPort' | 'dstPort'>;

export interface ConnectionHooks {
  /** Send a segment to the guest (the NAT fills in addresses and ports). */
  emit(segment: OutSegment): void;
  /** The connection is over: forget it. */
  closed(): void;
  log?(message: string): void;
}

export interface TcpTuning {
  /** Largest segment we send (and the MSS we announce). Default 1460 (Ethernet MTU). */
  mss?: number;
  /** Guest → host bytes we buffer before closing our window. Default 256 KiB. */
  receiveBuffer?: number;
  /** Host → guest bytes we buffer before pausing the host socket. Default 256 KiB. */
  sendBuffer?: number;
  initialRtoMs?: number;
  maxRtoMs?: number;
  /** Most unacknowledged bytes towards the guest, whatever its window (default 128 KiB). */
  maxInFlight?: number;
  /** Timeouts in a row without any ACK from the guest before the connection is reset. Default 10. */
  maxRetries?: number;
  /** How long a guest-initiated connection may take to connect on the host. Default 30 s. */
  connectTimeoutMs?: number;
}

type State = 'connecting' | 'syn-sent' | 'syn-received' | 'established' | 'closed';

/** Our window scale shift when the guest supports scaling: windows up to 2 MiB, in 32-byte units. */
const WINDOW_SHIFT = 5;
const DEFAULT_GUEST_MSS = 536; // RFC 9293 default when the SYN carries no MSS option
/** Smallest MSS we honour: a guest announcing 0 (or tiny values) must not stall or flood the NAT. */
const MIN_MSS = 64;

function clampMss(ours: number, theirs: number | undefined): number {
  return Math.max(MIN_MSS, Math.min(ours, theirs ?? DEFAULT_GUEST_MSS));
}

export class TcpConnection {
  state: State;
  private socket: Socket | undefined;
  private readonly mss: number;
  private readonly rcvBuffer: number;
  private readonly sndBufferHigh: number;
  private readonly initialRto: number;
  private readonly maxRto: number;
  private readonly maxRetries: number;
  private readonly maxInFlight: number;

  // Our sequence space.
  private readonly iss = (Math.random() * 0x1_0000_0000) >>> 0;
  private sndUna: number;
  private sndNxt: number;
  /** Highest sequence number sent so far: after a go-back-N rewind, ACKs up to here are still valid. */
  private sndMax: number;
  private sndWnd = 0;
  private synAcked = false;
  private sndBuf: Buffer[] = [];
  /** Bytes of sndBuf[0] already acknowledged (trimmed lazily instead of re-slicing on every ACK). */
  private sndBufHeadOffset = 0;
  /** Unacknowledged host bytes; the first one has sequence number sndBufStart. */
  private sndBufBytes = 0;
  private sndBufStart: number;
  private hostEof = false;
  private finSent = false;
  /** Sequence number of our FIN once it was first sent (a rewind may resend it; its number stays). */
  private finSeq: number | undefined;
  private finAcked = false;
  private sendMss = DEFAULT_GUEST_MSS;

  // The guest's sequence space.
  private irs = 0;
  private rcvNxt = 0;
  private guestFin = false;
  /** Bytes of receive window last advertised. */
  private lastWindow = 0;
  /** Window scale shifts (RFC 7323): both 0 unless the guest's SYN (or SYN-ACK) carried the option. */
  private ourShift = 0;
  private guestShift = 0;

  private rtxTimer: NodeJS.Timeout | undefined;
  private rto: number;
  private retries = 0;
  private dupAcks = 0;
  private ackScheduled = false;
  private needAck = false;
  private hostPaused = false;
  private cancelConnect: (() => void) | undefined;

  private constructor(private readonly hooks: ConnectionHooks, state: State, tuning: TcpTuning) {
    this.state = state;
    this.mss = tuning.mss ?? 1460;
    this.rcvBuffer = tuning.receiveBuffer ?? 256 * 1024;
    this.sndBufferHigh = tuning.sendBuffer ?? 256 * 1024;
    this.initialRto = this.rto = tuning.initialRtoMs ?? 200;
    this.maxRto = tuning.maxRtoMs ?? 8000;
    this.maxRetries = tuning.maxRetries ?? 10;
    this.maxInFlight = tuning.maxInFlight ?? 128 * 1024;
    this.sndUna = this.sndNxt = this.sndMax = this.iss;
    this.sndBufStart = seqAdd(this.iss, 1);
  }

  /**
   * The guest sent a SYN and `socket` is connecting to the host-side destination: answer the guest once it
   * connects (state 'connecting' until then), reset the guest's attempt if it fails or takes too long.
   */
  static fromGuestSyn(syn: TcpSegment, socket: Socket, hooks: ConnectionHooks, tuning: TcpTuning = {}): TcpConnection {
    const c = new TcpConnection(hooks, 'connecting', tuning);
    c.irs = syn.seq;
    c.rcvNxt = seqAdd(syn.seq, 1);
    c.sndWnd = syn.window;
    c.sendMss = clampMss(c.mss, syn.mss);
    if (syn.wscale !== undefined) {
      c.guestShift = syn.wscale;
      c.ourShift = WINDOW_SHIFT;
    }
    c.socket = socket;
    const timeout = setTimeout(() => fail(), tuning.connectTimeoutMs ?? 30_000);
    const fail = (): void => {
      clearTimeout(timeout);
      socket.destroy();
      if (c.state !== 'connecting') return;
      c.hooks.emit({ flags: RST | ACK, seq: 0, ack: c.rcvNxt, window: 0, payload: new Uint8Array(0) });
      c.finishClose();
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timeout);
      socket.off('error', fail);
      if (c.state !== 'connecting') {
        socket.destroy();
        return;
      }
      c.attach(socket);
      c.state = 'syn-received';
      c.sendSyn();
    });
    c.cancelConnect = fail;
    return c;
  }

  /** A host connection forwarded into the guest: send our SYN now. */
  static toGuest(socket: Socket, hooks: ConnectionHooks, tuning: TcpTuning = {}): TcpConnection {
    const c = new TcpConnection(hooks, 'syn-sent', tuning);
    c.attach(socket);
    c.sendSyn();
    return c;
  }

  /** Tear down from outside (network shutdown): reset the guest side, destroy the host socket. */
  abort(reason: string): void {
    if (this.state === 'closed') return;
    this.hooks.log?.(`tcp: ${reason}`);
    if (this.state === 'connecting') {
      this.cancelConnect?.();
      return;
    }
    this.emit(RST | ACK, this.sndNxt, new Uint8Array(0));
    this.socket?.destroy();
    this.finishClose();
  }

  /** A segment from the guest for this connection. */
  input(seg: TcpSegment): void {
    if (this.state === 'closed' || this.state === 'connecting') return; // SYN retransmits while connecting
    if (seg.flags & RST) {
      this.onReset(seg);
      return;
    }
    if (this.state === 'syn-sent') {
      this.onSynSentInput(seg);
      return;
    }
    if (seg.flags & SYN) {
      // Our SYN-ACK was lost and the guest retried: answer again. Anything else gets a challenge ACK.
      if (this.state === 'syn-received' && seg.seq === this.irs) this.sendSyn();
      else this.scheduleAck();
      return;
    }
    if (!(seg.flags & ACK)) return;
    if (!this.onAck(seg)) return;
    if (this.state !== 'established') return;
    this.onData(seg);
    this.pump();
    this.maybeFinish();
  }

  private onReset(seg: TcpSegment): void {
    if (this.state === 'syn-sent') {
      // The guest refused the forwarded connection.
      if (seg.flags & ACK && seg.ack === this.sndNxt) this.closeHost('guest refused the connection');
      return;
    }
    // Accept a reset inside the receive window (RFC 5961 is stricter; the guest is not an attacker on a wire).
    const off = seqDiff(seg.seq, this.rcvNxt);
    if (off >= -1 && off <= Math.max(this.lastWindow, 1)) this.closeHost('guest reset the connection');
  }

  private onSynSentInput(seg: TcpSegment): void {
    if ((seg.flags & (SYN | ACK)) !== (SYN | ACK)) return;
    if (seg.ack !== this.sndNxt) {
      this.hooks.emit({ flags: RST, seq: seg.ack, ack: 0, window: 0, payload: new Uint8Array(0) });
      return;
    }
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.sendMss = clampMss(this.mss, seg.mss);
    // We offered scaling in our SYN; it is on only if the guest answered with its own shift.
    if (seg.wscale !== undefined) {
      this.guestShift = seg.wscale;
      this.ourShift = WINDOW_SHIFT;
    }
    this.sndWnd = seg.window;
    this.sndUna = seg.ack;
    this.synAcked = true;
    this.established();
    this.emit(ACK, this.sndNxt, new Uint8Array(0));
    this.pump();
  }

  /** ACK processing; false when the segment must be dropped. */
  private onAck(seg: TcpSegment): boolean {
    const a = seg.ack;
    if (seqLt(this.sndMax, a)) {
      this.scheduleAck(); // acknowledges something never sent
      return false;
    }
    // Data sent before a retransmission rewind was received after all: skip past it.
    if (seqLt(this.sndNxt, a)) this.sndNxt = a;
    this.retries = 0; // the guest is alive
    if (seqLt(this.sndUna, a)) {
      let n = seqDiff(a, this.sndUna);
      if (!this.synAcked) {
        this.synAcked = true;
        n--;
        this.established();
      }
      const data = Math.min(n, this.sndBufBytes);
      this.consume(data);
      if (this.finSeq !== undefined && seqLt(this.finSeq, a)) {
        this.finAcked = true;
        this.finSent = true;
      }
      this.sndUna = a;
      this.rto = this.initialRto;
      this.dupAcks = 0;
      this.clearRtx();
      if (this.sndUna !== this.sndNxt) this.armRtx();
      if (this.hostPaused && this.sndBufBytes < this.sndBufferHigh / 2) {
        this.hostPaused = false;
        this.socket?.resume();
      }
    } else if (a === this.sndUna && seg.payload.length === 0 && !(seg.flags & FIN) && seg.window === this.sndWnd && this.sndUna !== this.sndNxt) {
      if (++this.dupAcks === 3) this.retransmit();
    }
    if (this.state === 'syn-received') return false; // the ACK of our SYN-ACK was not in it
    this.sndWnd = seg.window * 2 ** this.guestShift;
    return true;
  }

  private onData(seg: TcpSegment): void {
    let data = seg.payload;
    const fin = (seg.flags & FIN) !== 0;
    if (data.length === 0 && !fin) return;
    if (this.guestFin) {
      this.scheduleAck(); // a retransmission after the guest's FIN
      return;
    }
    const behind = seqDiff(this.rcvNxt, seg.seq);
    if (behind < 0 || behind > data.length || (behind === data.length && !fin)) {
      // Out of order (we keep no reassembly queue) or an old duplicate: tell the guest where we are.
      this.scheduleAck();
      return;
    }
    data = data.subarray(behind);
    const take = Math.min(data.length, this.receiveWindow());
    if (take > 0) {
      this.socket!.write(Buffer.from(data.subarray(0, take)));
      this.rcvNxt = seqAdd(this.rcvNxt, take);
    }
    if (fin && take === data.length) {
      this.guestFin = true;
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.socket!.end();
    }
    this.scheduleAck();
  }

  private established(): void {
    this.state = 'established';
    this.clearRtx();
    if (!this.hostPaused) this.socket?.resume();
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    socket.pause(); // until the handshake with the guest is complete
    socket.on('data', (chunk: Buffer) => {
      if (this.state === 'closed') return;
      this.sndBuf.push(chunk);
      this.sndBufBytes += chunk.length;
      if (this.sndBufBytes >= this.sndBufferHigh && !this.hostPaused) {
        this.hostPaused = true;
        socket.pause();
      }
      this.pump();
    });
    socket.on('end', () => {
      this.hostEof = true;
      this.pump();
      this.maybeFinish();
    });
    socket.on('drain', () => {
      // The host took buffered guest data: reopen a window that had closed (or nearly).
      if (this.state === 'established' && this.lastWindow < this.mss * 2 && this.receiveWindow() > this.lastWindow) this.scheduleAck();
    });
    socket.on('error', (e) => this.abort(`host socket: ${e.message}`));
    socket.on('close', () => {
      // A host socket that closes before both directions finished cleanly resets the guest side.
      if (this.state !== 'closed' && !(this.hostEof && this.guestFin)) this.abort('host socket closed');
    });
  }

  /** Send as much buffered host data (then our FIN) as the guest's window allows. */
  private pump(): void {
    if (this.state !== 'established' || !this.synAcked) return;
    // A scaled guest window can be huge; bursts beyond maxInFlight would only overflow the NIC's queues.
    const windowEnd = seqAdd(this.sndUna, Math.min(this.sndWnd, this.maxInFlight));
    for (;;) {
      const sent = seqDiff(this.sndNxt, this.sndBufStart);
      const unsent = this.sndBufBytes - sent;
      if (unsent <= 0) break;
      const room = seqDiff(windowEnd, this.sndNxt);
      if (room <= 0) break;
      const len = Math.min(unsent, room, this.sendMss);
      this.emit(ACK | (len === unsent ? PSH : 0), this.sndNxt, this.peek(sent, len));
      this.advanceSndNxt(len);
    }
    if (this.hostEof && !this.finSent && seqDiff(this.sndNxt, this.sndBufStart) === this.sndBufBytes) {
      this.finSent = true;
      this.finSeq = this.sndNxt;
      this.emit(FIN | ACK, this.sndNxt, new Uint8Array(0));
      this.advanceSndNxt(1);
    }
    // In flight, or data waiting on a zero window (the timer then probes): keep the timer running.
    if (this.sndNxt !== this.sndUna || this.sndBufBytes > 0) this.armRtx();
  }

  /** Resend from the oldest unacknowledged byte. */
  private retransmit(): void {
    if (this.state === 'syn-sent' || this.state === 'syn-received') {
      this.sendSyn();
      return;
    }
    if (this.state !== 'established') return;
    this.sndNxt = this.sndUna;
    if (this.finSent && !this.finAcked) this.finSent = false;
    if (this.sndWnd === 0 && this.sndBufBytes > 0) {
      // Zero-window probe: one byte beyond the window, so the guest's ACK tells us when it opens.
      this.emit(ACK, this.sndNxt, this.peek(seqDiff(this.sndNxt, this.sndBufStart), 1));
      this.advanceSndNxt(1);
    }
    this.pump();
  }

  private onRtxTimeout(): void {
    this.rtxTimer = undefined;
    if (this.state === 'closed') return;
    const inFlight = this.sndNxt !== this.sndUna || (this.state === 'established' && this.sndBufBytes > 0);
    if (!inFlight) return;
    if (++this.retries > this.maxRetries) {
      this.abort('guest stopped acknowledging (retransmission limit reached)');
      return;
    }
    this.rto = Math.min(this.rto * 2, this.maxRto);
    this.retransmit();
    this.armRtx();
  }

  private sendSyn(): void {
    const flags = this.state === 'syn-sent' ? SYN : SYN | ACK;
    // SYN windows are never scaled; the shift is offered in our SYN, or confirmed in our SYN-ACK.
    const wscale = flags === SYN || this.ourShift > 0 ? WINDOW_SHIFT : undefined;
    this.hooks.emit({ flags, seq: this.iss, ack: flags & ACK ? this.rcvNxt : 0, window: Math.min(0xffff, this.receiveWindow()), mss: this.mss, wscale, payload: new Uint8Array(0) });
    this.sndNxt = seqAdd(this.iss, 1);
    if (seqLt(this.sndMax, this.sndNxt)) this.sndMax = this.sndNxt;
    this.clearRtx();
    this.armRtx();
  }

  private advanceSndNxt(n: number): void {
    this.sndNxt = seqAdd(this.sndNxt, n);
    if (seqLt(this.sndMax, this.sndNxt)) this.sndMax = this.sndNxt;
  }

  private emit(flags: number, seq: number, payload: Uint8Array): void {
    // Advertise in units of 2^ourShift (rounded down: never more than we can take).
    const units = Math.min(0xffff, Math.floor(this.receiveWindow() / 2 ** this.ourShift));
    this.lastWindow = units * 2 ** this.ourShift;
    const window = units;
    this.needAck = false;
    this.hooks.emit({ flags, seq, ack: this.rcvNxt, window, payload });
  }

  /** Coalesce ACKs for segments that arrive together (one TX batch from the guest). */
  private scheduleAck(): void {
    this.needAck = true;
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    queueMicrotask(() => {
      this.ackScheduled = false;
      if (this.needAck && this.state === 'established') this.emit(ACK, this.sndNxt, new Uint8Array(0));
    });
  }

  /** Bytes we can take from the guest now (what the host socket can still buffer), within the window field's reach. */
  private receiveWindow(): number {
    const buffered = this.socket ? this.socket.writableLength : 0;
    return Math.max(0, Math.min(0xffff * 2 ** this.ourShift, this.rcvBuffer - buffered));
  }

  private maybeFinish(): void {
    if (this.state === 'established' && this.guestFin && this.finAcked) this.finishClose();
  }

  private closeHost(reason: string): void {
    this.hooks.log?.(`tcp: ${reason}`);
    const s = this.socket;
    if (s) {
      if (typeof s.resetAndDestroy === 'function' && !s.destroyed && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
    this.finishClose();
  }

  private finishClose(): void {
    if (this.state === 'closed') return;
    // An ACK still owed (typically for the guest's FIN that completed the close) goes out now.
    if (this.needAck && this.state === 'established') this.emit(ACK, this.sndNxt, new Uint8Array(0));
    this.state = 'closed';
    this.clearRtx();
    this.sndBuf = [];
    this.sndBufBytes = 0;
    this.sndBufHeadOffset = 0;
    this.hooks.closed();
  }

  private armRtx(): void {
    if (this.rtxTimer || this.state === 'closed') return;
    this.rtxTimer = setTimeout(() => this.onRtxTimeout(), this.rto);
  }

  private clearRtx(): void {
    if (this.rtxTimer) clearTimeout(this.rtxTimer);
    this.rtxTimer = undefined;
  }

  /** Drop `n` acknowledged bytes from the front of the send buffer. */
  private consume(n: number): void {
    this.sndBufStart = seqAdd(this.sndBufStart, n);
    this.sndBufBytes -= n;
    n += this.sndBufHeadOffset;
    while (this.sndBuf.length > 0 && n >= this.sndBuf[0]!.length) n -= this.sndBuf.shift()!.length;
    this.sndBufHeadOffset = this.sndBuf.length > 0 ? n : 0;
  }

  /** `len` buffered bytes starting `offset` bytes after sndBufStart (a view when they lie in one chunk). */
  private peek(offset: number, len: number): Uint8Array {
    offset += this.sndBufHeadOffset;
    let i = 0;
    while (i < this.sndBuf.length && offset >= this.sndBuf[i]!.length) offset -= this.sndBuf[i++]!.length;
    const first = this.sndBuf[i];
    if (first && offset + len <= first.length) return first.subarray(offset, offset + len);
    const out = new Uint8Array(len);
    let pos = 0;
    for (; i < this.sndBuf.length && pos < len; i++) {
      const chunk = this.sndBuf[i]!;
      const take = Math.min(chunk.length - offset, len - pos);
      out.set(chunk.subarray(offset, offset + take), pos);
      pos += take;
      offset = 0;
    }
    return out;
  }
}
