/**
 * Fuzzes virtio-net with random and malformed descriptor chains on both queues (RX and TX), random feature
 * sets (MRG_RXBUF, INDIRECT_DESC, EVENT_IDX on/off), random queue sizes, random frames arriving from the
 * backend, and occasional random register writes. Guest RAM is H9a's instrumented two-region memory with
 * canaries. CI: 10,000 chains, fixed seed; longer: NODEVMM_FUZZ_CHAINS / NODEVMM_FUZZ_SEED.
 */
import { describe, expect, it } from 'vitest';
import { F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, STATUS_DEVICE_NEEDS_RESET, featureBit } from '../../lib/virtio/constants.js';
import { MMIO, VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { NET_F_MAC, NET_F_MRG_RXBUF, NET_F_STATUS, RX_QUEUE, TX_QUEUE } from '../../lib/virtio/net/constants.js';
import { VirtioNet } from '../../lib/virtio/net/device.js';
import { GuestAllocator, RecordingIrq, TestDriver } from './driver.js';
import { InstrumentedMemory, REGION_A, REGION_B, Rng } from './fuzz-harness.js';
import { MemoryBackend, testFrame } from './net-helpers.js';

const CHAINS = Number(process.env['NODEVMM_FUZZ_CHAINS'] ?? 10_000);
const SEED = Number(process.env['NODEVMM_FUZZ_SEED'] ?? 0x6e657431);
const RING_AREA_END = 0x80000;
const SPECIAL_LENGTHS = [0, 1, 11, 12, 13, 25, 26, 60, 1514, 1526, 4096, 65549, 65550, 0x100000, 0x7fffffff, 0xffffffff];

interface Desc { lo: number; hi: number; len: number; flags: number; next: number }

function split(addr: number): { lo: number; hi: number } {
  return { lo: addr % 0x1_0000_0000 >>> 0, hi: Math.floor(addr / 0x1_0000_0000) >>> 0 };
}

async function fuzzNet(seed: number, chains: number) {
  const mem = new InstrumentedMemory();
  const irq = new RecordingIrq();
  const backend = new MemoryBackend();
  let logLines = 0;
  const dev = new VirtioNet(backend, { queueSize: 64, rxQueueFrames: 32 });
  const transport = new VirtioMmioTransport(dev, mem, irq, { log: () => logLines++ });
  const driver = new TestDriver(transport, mem, irq, new GuestAllocator(0x1000, RING_AREA_END));
  const rng = new Rng(seed);
  const s = { chains: 0, rounds: 0, needsReset: 0, txCompleted: 0, rxCompleted: 0, escapes: [] as string[], hangs: 0, mrgRounds: 0 };
  const unhandled = (e: unknown): void => void s.escapes.push(`unhandled rejection: ${String(e)}`);
  process.on('unhandledRejection', unhandled);
  const guarded = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      s.escapes.push(`${what}: ${(e as Error).stack ?? String(e)}`);
    }
  };
  const ramEnd = REGION_B.start + REGION_B.size;
  const specialAddrs = [RING_AREA_END, REGION_A.size - 1, REGION_A.size - 8, REGION_A.size, REGION_B.start - 1, REGION_B.start, ramEnd - 16, ramEnd - 1, ramEnd, 0xffffffff, 2 ** 32, 2 ** 52];
  const dataAddr = (): number =>
    rng.chance(0.5) ? RING_AREA_END + rng.int(REGION_A.size - RING_AREA_END - 0x12000) : REGION_B.start + rng.int(REGION_B.size - 0x12000);
  const randomAddr = (): { lo: number; hi: number } => {
    const r = rng.int(10);
    if (r < 4) return split(dataAddr());
    if (r < 8) return split(rng.pick(specialAddrs));
    return { lo: rng.u32(), hi: rng.u32() };
  };
  const writeDesc = (at: number, d: Desc): void => {
    mem.writeU32(at, d.lo);
    mem.writeU32(at + 4, d.hi);
    mem.writeU32(at + 8, d.len);
    mem.writeU16(at + 12, d.flags & 0xffff);
    mem.writeU16(at + 14, d.next & 0xffff);
  };

  let ready = false;
  const init = (): void => {
    driver.alloc.resetAll();
    const features =
      featureBit(F_VERSION_1) | featureBit(NET_F_MAC) | featureBit(NET_F_STATUS) |
      (rng.chance(0.5) ? featureBit(NET_F_MRG_RXBUF) : 0n) | (rng.chance(0.6) ? featureBit(F_INDIRECT_DESC) : 0n) | (rng.chance(0.5) ? featureBit(F_EVENT_IDX) : 0n);
    const sizes = [1 << rng.int(7), 1 << rng.int(7)];
    guarded('init', () => driver.init({ features, queueSizes: sizes }));
    ready = (driver.status & 4) !== 0 && (driver.status & STATUS_DEVICE_NEEDS_RESET) === 0;
    if (ready && driver.features & featureBit(NET_F_MRG_RXBUF)) s.mrgRounds++;
  };

  const wellFormed = (queue: number): Array<{ addr: number; len: number; write: boolean }> => {
    if (queue === TX_QUEUE) {
      const hdr = dataAddr();
      // A zeroed header (no GSO) most of the time, so most well-formed frames really go out.
      if (rng.chance(0.9)) mem.fill(hdr, 12, 0);
      const bufs = [{ addr: hdr, len: 12, write: false }];
      for (let i = rng.int(3); i >= 0; i--) bufs.push({ addr: dataAddr(), len: rng.chance(0.8) ? 14 + rng.int(1500) : 1 + rng.int(9000), write: false });
      return bufs;
    }
    const bufs = [];
    for (let i = rng.int(2); i >= 0; i--) bufs.push({ addr: dataAddr(), len: rng.chance(0.7) ? 12 + rng.int(2048) : rng.pick([12, 64, 1526, 4096, 65562]), write: true });
    return bufs;
  };

  init();
  while (s.chains < chains) {
    s.rounds++;
    if (!ready || rng.chance(0.05)) {
      if (rng.chance(0.2)) {
        for (let i = rng.int(6); i > 0; i--) {
          const off = rng.chance(0.8) ? rng.int(0x100) & ~3 : rng.int(0x200);
          const size = rng.pick([1, 2, 4, 4]);
          guarded('register write', () => transport.write(off, size, rng.u32() >>> (32 - 8 * size)));
          guarded('register read', () => transport.read(off, size));
        }
      }
      init();
      if (!ready) continue;
    }
    const published = [0, 0];
    for (const qi of [RX_QUEUE, TX_QUEUE]) {
      const q = driver.queues[qi]!;
      const n = q.size;
      let nextDesc = rng.int(n);
      const batch = 1 + rng.int(Math.min(n, 4));
      for (let b = 0; b < batch; b++) {
        const head = nextDesc % n;
        const kind = rng.int(100);
        if (kind < 92) {
          const bufs = wellFormed(qi);
          const descs: Desc[] = bufs.map((x, i) => ({ ...split(x.addr), len: x.len, flags: (x.write ? 2 : 0) | (i + 1 < bufs.length ? 1 : 0), next: 0 }));
          if (kind >= 85) {
            const d = rng.pick(descs);
            switch (rng.int(4)) {
              case 0: Object.assign(d, randomAddr()); break;
              case 1: d.len = rng.pick(SPECIAL_LENGTHS); break;
              case 2: d.flags ^= 1 << rng.int(3); break;
              default: d.next = rng.int(0x10000); d.flags |= 1;
            }
          }
          if (rng.chance(0.2)) {
            const table = dataAddr() & ~15;
            descs.forEach((d, i) => {
              if (d.flags & 1 && d.next === 0) d.next = i + 1;
              writeDesc(table + 16 * i, d);
            });
            writeDesc(q.desc + 16 * head, { ...split(table), len: rng.chance(0.9) ? 16 * descs.length : rng.pick(SPECIAL_LENGTHS), flags: 4, next: 0 });
            nextDesc++;
          } else {
            descs.forEach((d, i) => {
              if (d.flags & 1 && d.next === 0) d.next = (nextDesc + i + 1) % n;
              writeDesc(q.desc + 16 * ((nextDesc + i) % n), d);
            });
            nextDesc += descs.length;
          }
        } else {
          const count = 1 + rng.int(Math.min(n, 4));
          for (let i = 0; i < count; i++) {
            writeDesc(q.desc + 16 * ((nextDesc + i) % n), {
              ...randomAddr(),
              len: rng.chance(0.5) ? rng.pick(SPECIAL_LENGTHS) : rng.u32(),
              flags: rng.chance(0.5) ? rng.int(8) : rng.int(0x10000),
              next: rng.chance(0.7) ? rng.int(n) : rng.int(0x10000),
            });
          }
          nextDesc += count;
        }
        mem.writeU16(q.avail + 4 + 2 * (q.availIdx % n), rng.chance(0.01) ? rng.int(0x10000) : head);
        q.availIdx = (q.availIdx + 1) & 0xffff;
        s.chains++;
      }
      if (rng.chance(0.01)) q.availIdx = rng.int(0x10000);
      mem.writeU16(q.avail + 2, q.availIdx);
      published[qi] = q.availIdx;
    }
    // Frames from the network, some of them larger than any single receive buffer.
    for (let i = rng.int(8); i > 0; i--) backend.inject(testFrame(rng.chance(0.9) ? 14 + rng.int(1500) : 14 + rng.int(65535), rng.int(256)));
    if (rng.chance(0.05)) guarded('link', () => dev.setLinkUp(rng.chance(0.7)));
    const order = rng.chance(0.5) ? [RX_QUEUE, TX_QUEUE] : [TX_QUEUE, RX_QUEUE];
    for (const qi of order) guarded('notify', () => driver.notify(qi));
    if (rng.chance(0.01)) guarded('notify', () => driver.notify(2 + rng.int(0x10000)));

    let ticks = 0;
    let lastRx = -1;
    let idle = 0;
    for (;;) {
      if (driver.status & STATUS_DEVICE_NEEDS_RESET) {
        s.needsReset++;
        if (!(driver.reg(MMIO.InterruptStatus) & 2)) s.escapes.push('NEEDS_RESET without a config-change interrupt');
        ready = false;
        break;
      }
      const tx = driver.queues[TX_QUEUE]!;
      const rx = driver.queues[RX_QUEUE]!;
      const txDone = tx.usedIdx() === published[TX_QUEUE];
      const rxUsed = rx.usedIdx();
      // RX completes only while frames are waiting: done when the ring is used up or no frame is left.
      const rxDone = rxUsed === published[RX_QUEUE] || dev.rxQueueLength === 0 || (rxUsed === lastRx && ++idle > 20);
      if (rxUsed !== lastRx) idle = 0;
      lastRx = rxUsed;
      if (txDone && rxDone) {
        s.txCompleted += (tx.usedIdx() - tx.lastUsed) & 0xffff;
        s.rxCompleted += (rxUsed - rx.lastUsed) & 0xffff;
        tx.lastUsed = tx.usedIdx();
        rx.lastUsed = rxUsed;
        break;
      }
      if (++ticks > 20_000) {
        s.hangs++;
        ready = false;
        break;
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    driver.ackInterrupt();
    backend.sent.length = 0;
  }
  process.off('unhandledRejection', unhandled);
  guarded('final reset', () => transport.write(MMIO.Status, 4, 0));
  return { ...s, logLines, violations: mem.violations, damagedCanaries: mem.damagedCanaries(), viewsGranted: mem.viewsGranted, viewsRefused: mem.viewsRefused, stats: dev.stats };
}

describe('virtio-net fuzzing with malformed descriptor chains', () => {
  it(`survives ${CHAINS} random and malformed chains on RX and TX`, { timeout: Math.max(180_000, CHAINS * 30) }, async () => {
    const r = await fuzzNet(SEED, CHAINS);
    console.log(
      `fuzz net: ${r.chains} chains in ${r.rounds} rounds (seed 0x${SEED.toString(16)}, ${r.mrgRounds} with MRG_RXBUF): ` +
        `${r.txCompleted} TX + ${r.rxCompleted} RX completed, ${r.needsReset} NEEDS_RESET, ${r.logLines} log lines, ` +
        `views ${r.viewsGranted} granted / ${r.viewsRefused} refused, escapes ${r.escapes.length}, hangs ${r.hangs}, ` +
        `out-of-RAM ${r.violations.length}, canaries damaged ${r.damagedCanaries}; device ${JSON.stringify(r.stats)}`,
    );
    expect(r.escapes.slice(0, 3)).toEqual([]);
    expect(r.hangs).toBe(0);
    expect(r.violations.slice(0, 3)).toEqual([]);
    expect(r.damagedCanaries).toBe(0);
    expect(r.chains).toBeGreaterThanOrEqual(CHAINS);
    expect(r.txCompleted).toBeGreaterThan(CHAINS / 20);
    expect(r.rxCompleted).toBeGreaterThan(CHAINS / 20);
    expect(r.needsReset).toBeGreaterThan(10);
    expect(r.stats.rxFrames).toBeGreaterThan(100);
    expect(r.stats.txFrames).toBeGreaterThan(100);
  });
});
