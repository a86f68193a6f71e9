/** The Internet checksum (RFC 1071): ones'-complement sum of 16-bit big-endian words. */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Running sum of `data` as big-endian 16-bit words (odd trailing byte padded with zero). */
export function sum16(data: Uint8Array, initial = 0): number {
  const n = data.length;
  let s = 0;
  let i = 0;
  if (LITTLE_ENDIAN && (data.byteOffset & 1) === 0 && n >= 64) {
    // Sum native (little-endian) words, then swap the folded result: ones'-complement sums are byte-order
    // independent (RFC 1071 §2(B)). Far fewer operations than byte by byte.
    const words = new Uint16Array(data.buffer, data.byteOffset, n >>> 1);
    let le = 0;
    for (let w = 0; w < words.length; w++) le += words[w]!;
    while (le > 0xffff) le = (le & 0xffff) + Math.floor(le / 0x10000);
    s = ((le & 0xff) << 8) | (le >>> 8);
    i = n & ~1;
  }
  for (; i + 1 < n; i += 2) s += (data[i]! << 8) | data[i + 1]!;
  if (n & 1) s += data[n - 1]! << 8;
  return s + initial;
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
