/** The Internet checksum (RFC 1071): ones'-complement sum of 16-bit big-endian words. */

/** Running 32-bit sum of `data` as big-endian 16-bit words (odd trailing byte padded with zero). */
export function sum16(data: Uint8Array, initial = 0): number {
  let s = initial;
  const n = data.length & ~1;
  for (let i = 0; i < n; i += 2) s += (data[i]! << 8) | data[i + 1]!;
  if (data.length & 1) s += data[data.length - 1]! << 8;
  // Fold periodically is unnecessary: 2^32 / 0xffff words is far beyond 64 KiB packets.
  return s;
}

/** Fold a running sum and complement it: the value that goes in the checksum field. */
export function finish(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function checksum(data: Uint8Array): number {
  return finish(sum16(data));
}

/** Sum of the IPv4 pseudo-header used by TCP and UDP. */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}
