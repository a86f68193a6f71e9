import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { Virtqueue, VirtqueueError, vringNeedEvent } from '../../lib/virtio/queue.js';

const DESC = 0x1000;
const AVAIL = 0x3000;
const USED = 0x4000;
const TABLE = 0x8000;

function setup(size = 16, features = { indirect: true, eventIdx: false }, ram = 1 << 20) {
  const mem = GuestMemory.ofSize(ram);
  const q = new Virtqueue(0, 256, mem);
  q.size = size;
  q.descAddr = DESC;
  q.driverAddr = AVAIL;
  q.deviceAddr = USED;
  let interrupts = 0;
  q.activate(features, () => interrupts++);
  let availIdx = 0;
  const desc = (table: number, i: number, addr: number, len: number, flags: number, next = 0): void => {
    mem.writeU64(table + 16 * i, BigInt(addr));
    mem.writeU32(table + 16 * i + 8, len);
    mem.writeU16(table + 16 * i + 12, flags);
    mem.writeU16(table + 16 * i + 14, next);
  };
  const publish = (head: number): void => {
    mem.writeU16(AVAIL + 4 + 2 * (availIdx % size), head);
    availIdx = (availIdx + 1) & 0xffff;
    mem.writeU16(AVAIL + 2, availIdx);
  };
  return { mem, q, desc, publish, interrupts: () => interrupts };
}

const NEXT = 1;
const WRITE = 2;
const INDIRECT = 4;

describe('Virtqueue', () => {
  it('returns zero-copy views for readable then writable descriptors', () => {
    const { mem, q, desc, publish } = setup();
    desc(DESC, 0, 0x10000, 16, NEXT, 1);
    desc(DESC, 1, 0x20000, 512, NEXT | WRITE, 2);
    desc(DESC, 2, 0x30000, 1, WRITE);
    publish(0);
    const c = q.pop()!;
    expect(c.head).toBe(0);
    expect(c.readable.map((b) => b.length)).toEqual([16]);
    expect(c.writable.map((b) => b.length)).toEqual([512, 1]);
    c.writable[1]![0] = 0x5a;
    expect(mem.readU8(0x30000)).toBe(0x5a);
    expect(q.pop()).toBeNull();
    q.pushUsed(c.head, 1);
    expect(mem.readU16(USED + 2)).toBe(1);
    expect(mem.readU32(USED + 4)).toBe(0);
    expect(mem.readU32(USED + 8)).toBe(1);
  });

  it('follows an indirect table', () => {
    const { q, desc, publish } = setup();
    desc(TABLE, 0, 0x10000, 16, NEXT, 1);
    desc(TABLE, 1, 0x20000, 4096, WRITE);
    desc(DESC, 5, TABLE, 32, INDIRECT);
    publish(5);
    const c = q.pop()!;
    expect(c.head).toBe(5);
    expect(c.readableLength).toBe(16);
    expect(c.writableLength).toBe(4096);
  });

  const bad: Array<[string, (s: ReturnType<typeof setup>) => void, RegExp]> = [
    ['a NEXT loop', (s) => { s.desc(DESC, 0, 0x10000, 1, NEXT, 1); s.desc(DESC, 1, 0x10000, 1, NEXT, 0); s.publish(0); }, /loop/],
    ['a self loop in an indirect table', (s) => { s.desc(TABLE, 0, 0x10000, 1, NEXT, 0); s.desc(DESC, 0, TABLE, 16, INDIRECT); s.publish(0); }, /loop/],
    ['a buffer past the end of RAM', (s) => { s.desc(DESC, 0, (1 << 20) - 8, 16, 0); s.publish(0); }, /outside guest RAM/],
    ['a 64-bit address', (s) => { s.desc(DESC, 0, 2 ** 52, 16, 0); s.publish(0); }, /outside guest RAM/],
    ['next beyond the queue', (s) => { s.desc(DESC, 0, 0x10000, 1, NEXT, 16); s.publish(0); }, /beyond its table/],
    ['a head beyond the queue', (s) => { s.publish(40); }, /head descriptor 40/],
    ['readable after writable', (s) => { s.desc(DESC, 0, 0x10000, 1, WRITE | NEXT, 1); s.desc(DESC, 1, 0x10000, 1, 0); s.publish(0); }, /readable descriptor 1 after/],
    ['a nested indirect table', (s) => { s.desc(TABLE, 0, TABLE, 16, INDIRECT); s.desc(DESC, 0, TABLE, 16, INDIRECT); s.publish(0); }, /nested/],
    ['indirect plus NEXT', (s) => { s.desc(DESC, 0, TABLE, 16, INDIRECT | NEXT, 1); s.publish(0); }, /NEXT/],
    ['an indirect length not a multiple of 16', (s) => { s.desc(DESC, 0, TABLE, 24, INDIRECT); s.publish(0); }, /multiple of 16/],
    ['an empty indirect table', (s) => { s.desc(DESC, 0, TABLE, 0, INDIRECT); s.publish(0); }, /multiple of 16/],
    ['an indirect table outside RAM', (s) => { s.desc(DESC, 0, (1 << 20) - 16, 64, INDIRECT); s.publish(0); }, /outside guest RAM/],
    ['an available index far ahead', (s) => { s.mem.writeU16(AVAIL + 2, 100); }, /moved 100 entries/],
  ];
  for (const [name, build, message] of bad) {
    it(`rejects ${name}`, () => {
      const s = setup();
      build(s);
      expect(() => s.q.pop()).toThrow(VirtqueueError);
      const s2 = setup();
      build(s2);
      expect(() => s2.q.pop()).toThrow(message);
    });
  }

  it('rejects indirect descriptors unless negotiated', () => {
    const s = setup(16, { indirect: false, eventIdx: false });
    s.desc(TABLE, 0, 0x10000, 16, 0);
    s.desc(DESC, 0, TABLE, 16, INDIRECT);
    s.publish(0);
    expect(() => s.q.pop()).toThrow(/INDIRECT_DESC was not negotiated/);
  });

  it('rejects chains longer than 4 GiB in total', () => {
    const s = setup(128, { indirect: true, eventIdx: false }, 64 << 20);
    for (let i = 0; i < 128; i++) s.desc(DESC, i, 0, 64 << 20, i < 127 ? NEXT : 0, i + 1);
    s.publish(0);
    expect(() => s.q.pop()).toThrow(/exceeds 4 GiB/);
  });

  it('refuses bad ring setups at activation', () => {
    const mem = GuestMemory.ofSize(1 << 20);
    const q = new Virtqueue(0, 256, mem);
    const activate = (): void => q.activate({ indirect: false, eventIdx: false }, () => {});
    q.size = 24;
    q.descAddr = DESC; q.driverAddr = AVAIL; q.deviceAddr = USED;
    expect(activate).toThrow(/power of 2/);
    q.size = 512;
    expect(activate).toThrow(/power of 2/);
    q.size = 256;
    q.descAddr = DESC + 8;
    expect(activate).toThrow(/aligned/);
    q.descAddr = (1 << 20) - 16;
    expect(activate).toThrow(/outside guest RAM/);
    q.descAddr = DESC;
    q.deviceAddr = (1 << 20) - 8;
    expect(activate).toThrow(/outside guest RAM/);
  });

  it('vring_need_event matches the spec formula across wrap-around', () => {
    expect(vringNeedEvent(0, 1, 0)).toBe(true);
    expect(vringNeedEvent(1, 1, 0)).toBe(false);
    expect(vringNeedEvent(5, 10, 3)).toBe(true);
    expect(vringNeedEvent(10, 10, 3)).toBe(false);
    expect(vringNeedEvent(0xffff, 0, 0xfffe)).toBe(true);
    expect(vringNeedEvent(0, 0, 0xfffe)).toBe(false);
  });

  it('EVENT_IDX: publishes avail_event and interrupts per used_event', () => {
    const s = setup(16, { indirect: false, eventIdx: true });
    s.desc(DESC, 0, 0x10000, 1, WRITE);
    s.mem.writeU16(AVAIL + 4 + 2 * 16, 1); // used_event: interrupt once used idx passes 1
    s.publish(0);
    s.publish(0);
    const a = s.q.pop()!;
    expect(s.mem.readU16(USED + 4 + 8 * 16)).toBe(1);
    const b = s.q.pop()!;
    expect(s.q.pop()).toBeNull();
    expect(s.mem.readU16(USED + 4 + 8 * 16)).toBe(2);
    s.q.pushUsed(a.head, 1);
    expect(s.q.notifyIfNeeded()).toBe(false);
    s.q.pushUsed(b.head, 1);
    expect(s.q.notifyIfNeeded()).toBe(true);
    expect(s.interrupts()).toBe(1);
  });

  it('completions from before a reset are dropped', () => {
    const s = setup();
    s.desc(DESC, 0, 0x10000, 1, WRITE);
    s.publish(0);
    const c = s.q.pop()!;
    s.q.halt();
    s.q.activate({ indirect: false, eventIdx: false }, () => {});
    s.q.complete(c, 1);
    expect(s.mem.readU16(USED + 2)).toBe(0);
  });
});
