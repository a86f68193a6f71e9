import { describe, expect, it } from 'vitest';
import { checksum, finish, pseudoHeaderSum, sum16 } from '../../lib/net/user/checksum.js';

/** RFC 1071 the slow, obvious way. */
function reference(data: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i < data.length; i += 2) s += data[i]! * 256 + (data[i + 1] ?? 0);
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return 0xffff - s;
}

describe('Internet checksum', () => {
  it('matches a reference implementation for random data at even and odd offsets and lengths', () => {
    let seed = 12345;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const backing = Uint8Array.from({ length: 70_000 }, rnd);
    for (let t = 0; t < 400; t++) {
      const off = rnd() % 7;
      const len = t < 100 ? t : (rnd() * 256 + rnd()) % 66_000;
      const view = backing.subarray(off, off + len);
      const init = t % 3 === 0 ? pseudoHeaderSum(0x0a00020f, 0x0a000202, 6, len) : 0;
      expect(finish(sum16(view, init))).toBe(reference(view, init));
    }
  });

  it('a buffer with its own checksum inserted sums to zero', () => {
    const h = Uint8Array.from([0x45, 0, 0, 0x54, 0xa6, 0xf2, 0x40, 0, 0x40, 1, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2]);
    const c = checksum(h);
    h[10] = c >>> 8;
    h[11] = c & 0xff;
    expect(checksum(h)).toBe(0);
  });
});
