/**
 * ICMP echo for outside addresses: the guest's echo requests leave through one host ICMP socket (the addon's
 * IcmpSocket: an unprivileged ping socket, or a raw socket with CAP_NET_RAW) and the replies come back to the
 * guest as if the destination had answered it directly.
 *
 * Every request gets a host-side sequence number of our own; a table maps it back to the guest's identifier,
 * sequence number and the destination. That keeps two guest pings (different identifiers, same sequence) apart
 * on a ping socket, where the kernel owns the identifier, and lets a raw socket (which sees every echo reply the
 * host receives, also those for the host's own ping) pick out ours by identifier + sequence + source. Entries
 * expire after `timeoutMs` (the destination never answered) and the table is bounded (oldest evicted first).
 *
 * Only echo replies are forwarded: ICMP errors from the outside (time exceeded, unreachable) about our requests
 * are not relayed (a ping socket does not pass them without IP_RECVERR; a raw socket is filtered to echo
 * replies), so the guest sees those pings time out. A send the host rejects at once for lack of a route is
 * answered with destination unreachable from the gateway.
 */
import { constants } from 'node:os';
import { loadNative, type IcmpSocketKind, type NativeIcmpReply } from '../../kvm/native.js';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, buildEcho } from './icmp.js';

/** What the forwarder needs from a host ICMP socket (NativeIcmpSocket satisfies it). */
export interface IcmpEchoSocket {
  readonly kind: IcmpSocketKind;
  send(dstIPv4: number, icmpMessage: Uint8Array): number;
  start(onReplies: (replies: NativeIcmpReply[], error: number) => void): void;
  close(): void;
}

export interface IcmpForwarderOptions {
  /** Hands an echo reply to the guest: from `src` (the pinged address) to `dst` (the guest). */
  output: (src: number, dst: number, icmpMessage: Uint8Array) => void;
  /** Which socket to open: 'auto' (default: ping socket, else raw), 'dgram' or 'raw'. */
  kind?: IcmpSocketKind | 'auto';
  /** Opens the host socket (default: the addon's IcmpSocket); throws with the reason when it cannot. */
  open?: (kind: IcmpSocketKind | 'auto') => IcmpEchoSocket;
  /** How long a request waits for its reply (default 10 s). */
  timeoutMs?: number;
  /** Requests waiting for a reply at most (default 1024; the oldest is dropped for a new one). */
  maxPending?: number;
  log?: (message: string) => void;
}

export interface IcmpForwarderStats {
  /** Requests sent to the host socket. */
  forwarded: number;
  /** Replies handed to the guest. */
  replies: number;
  /** Requests whose reply never came within timeoutMs. */
  expired: number;
  /** Requests dropped from a full table to make room. */
  evicted: number;
  /** Echo replies that matched no pending request (late, duplicate, or the host's own on a raw socket). */
  unmatched: number;
  /** sendto() failures. */
  sendErrors: number;
}

/** What forward() did with a request. */
export type IcmpForwardResult = 'forwarded' | 'unavailable' | 'net-unreachable' | 'host-unreachable' | 'failed';

interface Pending {
  guestIp: number;
  guestId: number;
  guestSeq: number;
  dst: number;
  expires: number;
}

const ENETUNREACH = constants.errno.ENETUNREACH;
const EHOSTUNREACH = constants.errno.EHOSTUNREACH;

/** The addon's IcmpSocket, or an Error saying why there is none. */
export function openNativeIcmpSocket(kind: IcmpSocketKind | 'auto'): IcmpEchoSocket {
  const ctor = loadNative().IcmpSocket;
  if (typeof ctor !== 'function') throw new Error('the native addon has no IcmpSocket (rebuild it: npm run build:native)');
  return new ctor(kind);
}

export class IcmpEchoForwarder {
  readonly stats: IcmpForwarderStats = { forwarded: 0, replies: 0, expired: 0, evicted: 0, unmatched: 0, sendErrors: 0 };
  private readonly output: IcmpForwarderOptions['output'];
  private readonly kind: IcmpSocketKind | 'auto';
  private readonly open: (kind: IcmpSocketKind | 'auto') => IcmpEchoSocket;
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private readonly log: (message: string) => void;
  private socket: IcmpEchoSocket | undefined;
  /** Why the socket cannot be opened (set after the first failure, which was logged; later requests are dropped). */
  private unavailable: string | undefined;
  /** Host sequence number -> request; Map order is send order, which is also expiry order (one timeout for all). */
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 0;
  /** Our identifier on a raw socket (a ping socket's kernel picks its own). */
  private readonly rawId = (Math.random() * 0x10000) >>> 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: IcmpForwarderOptions) {
    this.output = options.output;
    this.kind = options.kind ?? 'auto';
    this.open = options.open ?? openNativeIcmpSocket;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxPending = options.maxPending ?? 1024;
    this.log = options.log ?? (() => {});
    if (!(this.timeoutMs > 0)) throw new RangeError(`ICMP echo timeoutMs ${options.timeoutMs} must be > 0`);
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1 || this.maxPending > 32768) {
      throw new RangeError(`ICMP echo maxPending ${options.maxPending} is not in 1..32768`);
    }
  }

  /** The open socket's kind, or null before the first request / when it cannot be opened. */
  get socketKind(): IcmpSocketKind | null {
    return this.socket?.kind ?? null;
  }

  /** Why no socket could be opened, or null. */
  get unavailableReason(): string | null {
    return this.unavailable ?? null;
  }

  /** Requests waiting for their reply. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Send the guest's echo request (a valid one: see isEchoRequest) from `guestIp` on to `dst`. */
  forward(guestIp: number, dst: number, request: Uint8Array): IcmpForwardResult {
    const socket = this.ensureSocket();
    if (!socket) return 'unavailable';
    this.expire();
    if (this.pending.size >= this.maxPending) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
      this.stats.evicted++;
    }
    const seq = this.allocateSeq();
    const guestId = (request[4]! << 8) | request[5]!;
    const guestSeq = (request[6]! << 8) | request[7]!;
    const message = buildEcho(ICMP_ECHO_REQUEST, this.rawId, seq, request.subarray(8));
    const n = socket.send(dst, message);
    if (n < 0) {
      this.stats.sendErrors++;
      if (n === -ENETUNREACH) return 'net-unreachable';
      if (n === -EHOSTUNREACH) return 'host-unreachable';
      return 'failed';
    }
    this.pending.set(seq, { guestIp, guestId, guestSeq, dst, expires: performance.now() + this.timeoutMs });
    this.stats.forwarded++;
    this.armTimer();
    return 'forwarded';
  }

  /** Close the socket and forget pending requests; idempotent. */
  close(): void {
    this.closed = true;
    this.socket?.close();
    this.socket = undefined;
    this.pending.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private ensureSocket(): IcmpEchoSocket | undefined {
    if (this.socket || this.unavailable !== undefined || this.closed) return this.socket;
    let socket: IcmpEchoSocket;
    try {
      socket = this.open(this.kind);
    } catch (e) {
      this.unavailable = e instanceof Error ? e.message : String(e);
      this.log(`user-net: ping to outside addresses is unavailable, echo requests to them are dropped: ${this.unavailable}`);
      return undefined;
    }
    socket.start((replies, error) => this.onReplies(socket, replies, error));
    this.socket = socket;
    return socket;
  }

  private onReplies(socket: IcmpEchoSocket, replies: NativeIcmpReply[], error: number): void {
    if (socket !== this.socket) return;
    for (const r of replies) this.deliver(r);
    if (error !== 0) {
      // The fd failed (it stopped watching): let go of it; the next request opens a new one.
      this.log(`user-net: ICMP socket failed (errno ${-error}); reopening on the next ping`);
      socket.close();
      this.socket = undefined;
      this.pending.clear();
    }
  }

  private deliver(reply: NativeIcmpReply): void {
    const m = reply.message;
    if (m.length < 8 || m[0] !== ICMP_ECHO_REPLY || m[1] !== 0) return;
    const id = (m[4]! << 8) | m[5]!;
    const seq = (m[6]! << 8) | m[7]!;
    const p = this.pending.get(seq);
    // A ping socket already matched the identifier; a raw socket also hears other programs' replies.
    if (!p || p.dst !== reply.source || (this.socket?.kind === 'raw' && id !== this.rawId)) {
      this.stats.unmatched++;
      return;
    }
    this.pending.delete(seq);
    this.stats.replies++;
    this.output(p.dst, p.guestIp, buildEcho(ICMP_ECHO_REPLY, p.guestId, p.guestSeq, m.subarray(8)));
  }

  /** The next host sequence number not in use (the table is far smaller than 2^16, so one is always free). */
  private allocateSeq(): number {
    let seq = this.nextSeq;
    while (this.pending.has(seq)) seq = (seq + 1) & 0xffff;
    this.nextSeq = (seq + 1) & 0xffff;
    return seq;
  }

  private expire(): void {
    const now = performance.now();
    for (const [seq, p] of this.pending) {
      if (p.expires > now) break;
      this.pending.delete(seq);
      this.stats.expired++;
    }
  }

  /** One timer, for the oldest request; it does not keep the process alive. */
  private armTimer(): void {
    if (this.timer || this.closed) return;
    const first = this.pending.values().next().value;
    if (!first) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.expire();
      this.armTimer();
    }, Math.max(1, first.expires - performance.now()));
    this.timer.unref();
  }
}
