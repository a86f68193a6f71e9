/** ICMP echo (RFC 792): the only ICMP the user-mode network answers itself. */
import { checksum } from './checksum.js';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

/** The echo reply for an echo request (same identifier, sequence and data), or null if it is not a valid request. */
export function echoReply(request: Uint8Array): Uint8Array | null {
  if (request.length < 8 || request[0] !== ICMP_ECHO_REQUEST || request[1] !== 0) return null;
  if (checksum(request) !== 0) return null;
  const reply = request.slice();
  reply[0] = ICMP_ECHO_REPLY;
  reply[2] = reply[3] = 0;
  const c = checksum(reply);
  reply[2] = c >>> 8;
  reply[3] = c & 0xff;
  return reply;
}

export const ICMP_TIME_EXCEEDED = 11;

/**
 * ICMP time exceeded in transit (type 11, code 0) for an IPv4 packet whose TTL ran out at the gateway: the
 * original header plus the first 8 bytes of its payload, so traceroute in the guest sees the gateway as a hop.
 */
export function timeExceeded(originalPacket: Uint8Array): Uint8Array {
  const ihl = (originalPacket[0]! & 0xf) * 4;
  const quoted = originalPacket.subarray(0, Math.min(originalPacket.length, ihl + 8));
  const m = new Uint8Array(8 + quoted.length);
  m[0] = ICMP_TIME_EXCEEDED;
  m.set(quoted, 8);
  const c = checksum(m);
  m[2] = c >>> 8;
  m[3] = c & 0xff;
  return m;
}
