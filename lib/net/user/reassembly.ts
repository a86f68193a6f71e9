/**
 * IPv4 reassembly (RFC 791 §3.2, RFC 815's hole idea in its simplest form) for fragments the guest sends:
 * pieces are kept per (source, destination, protocol, identification) until they cover the whole datagram,
 * within bounds on memory, the number of datagrams in progress, and time.
 */
import type { Ipv4Packet } from './ipv4.js';

export interface ReassemblyOptions {
  /** Incomplete datagrams are dropped after this long (default 30 s). */
  timeoutMs?: number;
  /** Most datagrams in progress at once; the oldest is dropped beyond (default 64). */
  maxDatagrams?: number;
  /** Most fragment bytes held at once (default 1 MiB). */
  maxBytes?: number;
}

interface Pending {
  pieces: Array<{ offset: number; data: Uint8Array }>;
  bytes: number;
  /** Payload length, known once the last fragment (MF clear) arrived. */
  total: number | undefined;
  timer: NodeJS.Timeout;
}

const MAX_PAYLOAD = 65535 - 20;

export class Ipv4Reassembler {
  readonly stats = { reassembled: 0, timedOut: 0, dropped: 0 };
  private readonly pending = new Map<string, Pending>();
  private heldBytes = 0;
  private readonly timeoutMs: number;
  private readonly maxDatagrams: number;
  private readonly maxBytes: number;

  constructor(options: ReassemblyOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxDatagrams = options.maxDatagrams ?? 64;
    this.maxBytes = options.maxBytes ?? 1 << 20;
  }

  /** Add a fragment; returns the whole payload once every byte has arrived, otherwise null. */
  add(p: Ipv4Packet): Uint8Array | null {
    const end = p.fragmentOffset + p.payload.length;
    // Non-final fragments carry multiples of 8 bytes; nothing may extend past the largest datagram.
    if (end > MAX_PAYLOAD || (p.moreFragments && p.payload.length % 8 !== 0) || (p.moreFragments && p.payload.length === 0)) {
      this.stats.dropped++;
      return null;
    }
    const key = `${p.src}-${p.dst}-${p.protocol}-${p.id}`;
    let d = this.pending.get(key);
    if (!d) {
      if (this.pending.size >= this.maxDatagrams) this.drop(this.pending.keys().next().value!);
      d = { pieces: [], bytes: 0, total: undefined, timer: setTimeout(() => this.expire(key), this.timeoutMs) };
      this.pending.set(key, d);
    }
    if (!p.moreFragments) {
      if (d.total !== undefined && d.total !== end) {
        this.drop(key); // two different "last" fragments: inconsistent
        return null;
      }
      d.total = end;
    }
    if (d.total !== undefined && end > d.total) {
      this.drop(key);
      return null;
    }
    while (this.heldBytes + p.payload.length > this.maxBytes && this.pending.size > 1) {
      const oldest = this.pending.keys().next().value!;
      if (oldest === key) break;
      this.drop(oldest);
    }
    if (this.heldBytes + p.payload.length > this.maxBytes) {
      this.drop(key);
      return null;
    }
    d.pieces.push({ offset: p.fragmentOffset, data: p.payload.slice() });
    d.bytes += p.payload.length;
    this.heldBytes += p.payload.length;
    if (d.total === undefined) return null;
    // Complete when the pieces, in offset order, cover [0, total) without a gap.
    d.pieces.sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const piece of d.pieces) {
      if (piece.offset > covered) return null;
      covered = Math.max(covered, piece.offset + piece.data.length);
    }
    if (covered < d.total) return null;
    const whole = new Uint8Array(d.total);
    // Earlier pieces win where fragments overlap (later copies only fill what is still missing would be
    // stricter; overlapping fragments from an honest stack carry the same bytes).
    for (let i = d.pieces.length - 1; i >= 0; i--) whole.set(d.pieces[i]!.data, d.pieces[i]!.offset);
    this.forget(key);
    this.stats.reassembled++;
    return whole;
  }

  close(): void {
    for (const k of [...this.pending.keys()]) this.forget(k);
  }

  private expire(key: string): void {
    this.stats.timedOut++;
    this.forget(key);
  }

  private drop(key: string): void {
    this.stats.dropped++;
    this.forget(key);
  }

  private forget(key: string): void {
    const d = this.pending.get(key);
    if (!d) return;
    clearTimeout(d.timer);
    this.heldBytes -= d.bytes;
    this.pending.delete(key);
  }
}
