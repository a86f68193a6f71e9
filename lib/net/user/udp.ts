/** UDP datagrams (RFC 768) with the IPv4 pseudo-header checksum. */
import { finish, pseudoHeaderSum, sum16 } from './checksum.js';
import { PROTO_UDP } from './ipv4.js';

export const UDP_HEADER_BYTES = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export function parseUdp(p: Uint8Array, src: number, dst: number): UdpDatagram | null {
  if (p.length < UDP_HEADER_BYTES) return null;
  const length = (p[4]! << 8) | p[5]!;
  if (length < UDP_HEADER_BYTES || length > p.length) return null;
  const sum = (p[6]! << 8) | p[7]!;
  // Zero means "no checksum" over IPv4.
  if (sum !== 0 && finish(sum16(p.subarray(0, length), pseudoHeaderSum(src, dst, PROTO_UDP, length))) !== 0) return null;
  return { srcPort: (p[0]! << 8) | p[1]!, dstPort: (p[2]! << 8) | p[3]!, payload: p.subarray(UDP_HEADER_BYTES, length) };
}

export function buildUdp(src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const length = UDP_HEADER_BYTES + payload.length;
  const p = new Uint8Array(length);
  p[0] = srcPort >>> 8;
  p[1] = srcPort & 0xff;
  p[2] = dstPort >>> 8;
  p[3] = dstPort & 0xff;
  p[4] = length >>> 8;
  p[5] = length & 0xff;
  p.set(payload, UDP_HEADER_BYTES);
  let c = finish(sum16(p, pseudoHeaderSum(src, dst, PROTO_UDP, length)));
  if (c === 0) c = 0xffff; // a computed zero is sent as all ones
  p[6] = c >>> 8;
  p[7] = c & 0xff;
  return p;
}
