/** IPv4 headers (RFC 791): parsing with validation, building with a correct header checksum. */
import { checksum, sum16 } from './checksum.js';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const IPV4_HEADER_BYTES = 20;
export const DEFAULT_TTL = 64;

export interface Ipv4Packet {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** True when this is a fragment (MF set or a non-zero offset). */
  fragment: boolean;
  /** Identification, fragment offset in bytes, and the more-fragments flag (for reassembly). */
  id: number;
  fragmentOffset: number;
  moreFragments: boolean;
  /** The payload (a view, trimmed to the total length). */
  payload: Uint8Array;
}

export type Ipv4ParseError = 'short' | 'version' | 'header-length' | 'total-length' | 'checksum';

export function parseIpv4(p: Uint8Array): Ipv4Packet | Ipv4ParseError {
  if (p.length < IPV4_HEADER_BYTES) return 'short';
  if (p[0]! >>> 4 !== 4) return 'version';
  const ihl = (p[0]! & 0xf) * 4;
  if (ihl < IPV4_HEADER_BYTES || ihl > p.length) return 'header-length';
  const total = (p[2]! << 8) | p[3]!;
  if (total < ihl || total > p.length) return 'total-length';
  // A correct header sums to 0xffff, i.e. its checksum over the header is 0.
  if (checksum(p.subarray(0, ihl)) !== 0) return 'checksum';
  const flagsFrag = (p[6]! << 8) | p[7]!;
  return {
    src: ((p[12]! << 24) | (p[13]! << 16) | (p[14]! << 8) | p[15]!) >>> 0,
    dst: ((p[16]! << 24) | (p[17]! << 16) | (p[18]! << 8) | p[19]!) >>> 0,
    protocol: p[9]!,
    ttl: p[8]!,
    fragment: (flagsFrag & 0x2000) !== 0 || (flagsFrag & 0x1fff) !== 0,
    id: (p[4]! << 8) | p[5]!,
    fragmentOffset: (flagsFrag & 0x1fff) * 8,
    moreFragments: (flagsFrag & 0x2000) !== 0,
    payload: p.subarray(ihl, total),
  };
}

let nextId = 1;

/** Write a 20-byte header (DF set: we never fragment) for `payloadLength` bytes into p[0..20). */
export function writeIpv4Header(p: Uint8Array, src: number, dst: number, protocol: number, payloadLength: number, ttl = DEFAULT_TTL): void {
  const total = IPV4_HEADER_BYTES + payloadLength;
  p[0] = 0x45;
  p[1] = 0;
  p[2] = total >>> 8;
  p[3] = total & 0xff;
  p[4] = nextId >>> 8;
  p[5] = nextId & 0xff;
  nextId = (nextId + 1) & 0xffff;
  p[6] = 0x40;
  p[7] = 0;
  p[8] = ttl;
  p[9] = protocol;
  p[10] = p[11] = 0;
  p[12] = src >>> 24;
  p[13] = (src >>> 16) & 0xff;
  p[14] = (src >>> 8) & 0xff;
  p[15] = src & 0xff;
  p[16] = dst >>> 24;
  p[17] = (dst >>> 16) & 0xff;
  p[18] = (dst >>> 8) & 0xff;
  p[19] = dst & 0xff;
  const c = checksum(p.subarray(0, IPV4_HEADER_BYTES));
  p[10] = c >>> 8;
  p[11] = c & 0xff;
}

/**
 * Split `payload` into IPv4 fragments that fit `mtu` (RFC 791): every fragment but the last carries a multiple
 * of 8 payload bytes and MF; all share one identification. Returns complete packets (headers included).
 */
export function fragmentIpv4(src: number, dst: number, protocol: number, payload: Uint8Array, mtu: number, ttl = DEFAULT_TTL): Uint8Array[] {
  const chunk = Math.floor((mtu - IPV4_HEADER_BYTES) / 8) * 8;
  if (chunk <= 0) throw new RangeError(`MTU ${mtu} is too small to fragment into`);
  const id = nextId;
  nextId = (nextId + 1) & 0xffff;
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += chunk) {
    const part = payload.subarray(off, Math.min(payload.length, off + chunk));
    const more = off + part.length < payload.length;
    const p = new Uint8Array(IPV4_HEADER_BYTES + part.length);
    const total = p.length;
    const fragField = (more ? 0x2000 : 0) | (off / 8);
    p.set([0x45, 0, total >>> 8, total & 0xff, id >>> 8, id & 0xff, fragField >>> 8, fragField & 0xff, ttl, protocol, 0, 0]);
    p.set([src >>> 24, (src >>> 16) & 0xff, (src >>> 8) & 0xff, src & 0xff, dst >>> 24, (dst >>> 16) & 0xff, (dst >>> 8) & 0xff, dst & 0xff], 12);
    const c = checksum(p.subarray(0, IPV4_HEADER_BYTES));
    p[10] = c >>> 8;
    p[11] = c & 0xff;
    p.set(part, IPV4_HEADER_BYTES);
    out.push(p);
  }
  return out;
}

/** A complete IPv4 packet. */
export function buildIpv4(src: number, dst: number, protocol: number, payload: Uint8Array, ttl = DEFAULT_TTL): Uint8Array {
  const p = new Uint8Array(IPV4_HEADER_BYTES + payload.length);
  writeIpv4Header(p, src, dst, protocol, payload.length, ttl);
  p.set(payload, IPV4_HEADER_BYTES);
  return p;
}

/** For callers that checksum incrementally. */
export { sum16 };
