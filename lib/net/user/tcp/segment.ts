/** TCP segments (RFC 9293): parsing with checksum validation, building with the MSS option on SYNs. */
import { finish, pseudoHeaderSum, sum16 } from '../checksum.js';
import { PROTO_TCP } from '../ipv4.js';

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

const HEADER_BYTES = 20;
const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** MSS option (SYN segments only), if present. */
  mss?: number | undefined;
  /** Window scale option (SYN segments only, RFC 7323), if present. */
  wscale?: number | undefined;
  payload: Uint8Array;
}

export function parseTcp(p: Uint8Array, src: number, dst: number): TcpSegment | null {
  if (p.length < HEADER_BYTES) return null;
  const offset = (p[12]! >>> 4) * 4;
  if (offset < HEADER_BYTES || offset > p.length) return null;
  if (finish(sum16(p, pseudoHeaderSum(src, dst, PROTO_TCP, p.length))) !== 0) return null;
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const flags = p[13]! & 0x3f;
  let mss: number | undefined;
  let wscale: number | undefined;
  if (flags & SYN) {
    for (let i = HEADER_BYTES; i < offset; ) {
      const kind = p[i]!;
      if (kind === OPT_END) break;
      if (kind === OPT_NOP) {
        i++;
        continue;
      }
      const len = p[i + 1] ?? 0;
      if (len < 2 || i + len > offset) break;
      if (kind === OPT_MSS && len === 4) mss = dv.getUint16(i + 2);
      if (kind === OPT_WSCALE && len === 3) wscale = Math.min(p[i + 2]!, 14); // RFC 7323: larger shifts mean 14
      i += len;
    }
  }
  return {
    srcPort: dv.getUint16(0),
    dstPort: dv.getUint16(2),
    seq: dv.getUint32(4),
    ack: dv.getUint32(8),
    flags,
    window: dv.getUint16(14),
    mss,
    wscale,
    payload: p.subarray(offset),
  };
}

function optionBytes(s: TcpSegment): number {
  return (s.mss !== undefined ? 4 : 0) + (s.wscale !== undefined ? 4 : 0);
}

/** Bytes a segment takes on the wire (header, MSS option on SYNs, payload). */
export function tcpLength(s: TcpSegment): number {
  return optionBytes(s) + HEADER_BYTES + s.payload.length;
}

/** Write `s` with its checksum into `p`, which must be exactly tcpLength(s) bytes and zero-filled. */
export function writeTcp(p: Uint8Array, src: number, dst: number, s: TcpSegment): void {
  const hl = HEADER_BYTES + optionBytes(s);
  p[0] = s.srcPort >>> 8;
  p[1] = s.srcPort & 0xff;
  p[2] = s.dstPort >>> 8;
  p[3] = s.dstPort & 0xff;
  p[4] = s.seq >>> 24;
  p[5] = (s.seq >>> 16) & 0xff;
  p[6] = (s.seq >>> 8) & 0xff;
  p[7] = s.seq & 0xff;
  p[8] = s.ack >>> 24;
  p[9] = (s.ack >>> 16) & 0xff;
  p[10] = (s.ack >>> 8) & 0xff;
  p[11] = s.ack & 0xff;
  p[12] = (hl / 4) << 4;
  p[13] = s.flags;
  const w = Math.max(0, Math.min(0xffff, s.window));
  p[14] = w >>> 8;
  p[15] = w & 0xff;
  if (s.mss !== undefined) {
    p[20] = OPT_MSS;
    p[21] = 4;
    p[22] = s.mss >>> 8;
    p[23] = s.mss & 0xff;
  }
  if (s.wscale !== undefined) {
    const o = hl - 4;
    p[o] = 1; // NOP keeps the header a multiple of 4 bytes
    p[o + 1] = OPT_WSCALE;
    p[o + 2] = 3;
    p[o + 3] = s.wscale;
  }
  p.set(s.payload, hl);
  const c = finish(sum16(p, pseudoHeaderSum(src, dst, PROTO_TCP, p.length)));
  p[16] = c >>> 8;
  p[17] = c & 0xff;
}

export function buildTcp(src: number, dst: number, s: TcpSegment): Uint8Array {
  const p = new Uint8Array(tcpLength(s));
  writeTcp(p, src, dst, s);
  return p;
}

/** Sequence-number arithmetic modulo 2^32. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
/** b - a as a signed distance (valid for distances under 2^31). */
export function seqDiff(b: number, a: number): number {
  return (b - a) | 0;
}
export function seqLt(a: number, b: number): boolean {
  return seqDiff(b, a) > 0;
}
export function seqLeq(a: number, b: number): boolean {
  return seqDiff(b, a) >= 0;
}

/** Sequence space a segment occupies (SYN and FIN count one each). */
export function segmentLength(s: TcpSegment): number {
  return s.payload.length + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0);
}
