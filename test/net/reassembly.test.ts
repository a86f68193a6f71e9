import { describe, expect, it } from 'vitest';
import { Ipv4Reassembler } from '../../lib/net/user/reassembly.js';
import type { Ipv4Packet } from '../../lib/net/user/ipv4.js';

function frag(id: number, offset: number, data: Uint8Array, more: boolean): Ipv4Packet {
  return { src: 1, dst: 2, protocol: 17, ttl: 64, fragment: true, id, fragmentOffset: offset, moreFragments: more, payload: data };
}
const pattern = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 255);

describe('IPv4 reassembly', () => {
  it('reassembles fragments arriving in any order, with overlaps', () => {
    const r = new Ipv4Reassembler();
    const whole = pattern(3000);
    expect(r.add(frag(9, 2960, whole.subarray(2960), false))).toBeNull();
    expect(r.add(frag(9, 1480, whole.subarray(1480, 2960), true))).toBeNull();
    expect(r.add(frag(9, 1472, whole.subarray(1472, 1480 + 8), true))).toBeNull(); // overlap
    const out = r.add(frag(9, 0, whole.subarray(0, 1480), true));
    expect(out).toEqual(whole);
    expect(r.stats.reassembled).toBe(1);
    r.close();
  });

  it('keeps datagrams apart by identification and waits for gaps', () => {
    const r = new Ipv4Reassembler();
    const a = pattern(24);
    expect(r.add(frag(1, 0, a.subarray(0, 8), true))).toBeNull();
    expect(r.add(frag(2, 16, a.subarray(16), false))).toBeNull();
    expect(r.add(frag(1, 16, a.subarray(16), false))).toBeNull(); // id 1 still misses 8..16
    expect(r.add(frag(1, 8, a.subarray(8, 16), true))).toEqual(a);
    r.close();
  });

  it('rejects fragments beyond 64 KiB, non-multiple-of-8 middles and inconsistent ends', () => {
    const r = new Ipv4Reassembler();
    expect(r.add(frag(3, 65528, pattern(16), false))).toBeNull();
    expect(r.add(frag(4, 0, pattern(10), true))).toBeNull();
    r.add(frag(5, 16, pattern(8), false));
    expect(r.add(frag(5, 32, pattern(8), false))).toBeNull();
    expect(r.stats.dropped).toBe(3);
    r.close();
  });

  it('bounds memory and the number of datagrams; incomplete ones time out', async () => {
    const r = new Ipv4Reassembler({ maxDatagrams: 4, maxBytes: 4096, timeoutMs: 30 });
    for (let id = 0; id < 10; id++) r.add(frag(id, 0, pattern(1000), true));
    expect(r.stats.dropped).toBeGreaterThanOrEqual(6);
    await new Promise((res) => setTimeout(res, 80));
    expect(r.stats.timedOut).toBeGreaterThan(0);
    // After everything expired, a complete datagram still goes through.
    expect(r.add(frag(99, 0, pattern(8), false))).toEqual(pattern(8));
    r.close();
  });
});
