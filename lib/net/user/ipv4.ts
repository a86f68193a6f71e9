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
    payload: p.subarray(ihl, total),
  };
}

let nextId = 1;

/** A complete IPv4 packet (DF set: we never fragment). */
export function buildIpv4(src: number, dst: number, protocol: number, payload: Uint8Array, ttl = DEFAULT_TTL): Uint8Array {
  const p = new Uint8Array(IPV4_HEADER_BYTES + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  dv.setUint16(4, nextId);
  nextId = (nextId + 1) & 0xffff;
  dv.setUint16(6, 0x4000);
  p[8] = ttl;
  p[9] = protocol;
  dv.setUint32(12, src >>> 0);
  dv.setUint32(16, dst >>> 0);
  dv.setUint16(10, checksum(p.subarray(0, IPV4_HEADER_BYTES)));
  p.set(payload, IPV4_HEADER_BYTES);
  return p;
}

/** For callers that checksum incrementally. */
export { sum16 };
