/** ICMP (RFC 792): echo, which the gateway answers itself or forwards (icmp-forwarder.ts), and the errors we send. */
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

export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_TIME_EXCEEDED = 11;
/** Destination unreachable codes (RFC 792). */
export const UNREACH_NET = 0;
export const UNREACH_HOST = 1;

/** True for a well-formed echo request (type 8, code 0, at least the 8-byte header, valid checksum). */
export function isEchoRequest(message: Uint8Array): boolean {
  return message.length >= 8 && message[0] === ICMP_ECHO_REQUEST && message[1] === 0 && checksum(message) === 0;
}

/** An echo message (request or reply) with the given identifier, sequence number and data, checksum filled in. */
export function buildEcho(type: number, identifier: number, sequence: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[4] = identifier >>> 8;
  m[5] = identifier & 0xff;
  m[6] = sequence >>> 8;
  m[7] = sequence & 0xff;
  m.set(data, 8);
  const c = checksum(m);
  m[2] = c >>> 8;
  m[3] = c & 0xff;
  return m;
}

/** An ICMP error (type, code) quoting an IPv4 packet's header and the first 8 bytes of its payload. */
function icmpError(type: number, code: number, originalPacket: Uint8Array): Uint8Array {
  const ihl = (originalPacket[0]! & 0xf) * 4;
  const quoted = originalPacket.subarray(0, Math.min(originalPacket.length, ihl + 8));
  const m = new Uint8Array(8 + quoted.length);
  m[0] = type;
  m[1] = code;
  m.set(quoted, 8);
  const c = checksum(m);
  m[2] = c >>> 8;
  m[3] = c & 0xff;
  return m;
}

/**
 * ICMP time exceeded in transit (type 11, code 0) for an IPv4 packet whose TTL ran out at the gateway: the
 * original header plus the first 8 bytes of its payload, so traceroute in the guest sees the gateway as a hop.
 */
export function timeExceeded(originalPacket: Uint8Array): Uint8Array {
  return icmpError(ICMP_TIME_EXCEEDED, 0, originalPacket);
}

/** ICMP destination unreachable (type 3) with `code` (UNREACH_NET, UNREACH_HOST) for an IPv4 packet. */
export function destinationUnreachable(originalPacket: Uint8Array, code: number): Uint8Array {
  return icmpError(ICMP_DEST_UNREACHABLE, code, originalPacket);
}
