/**
 * Descriptor-chain fuzzing for virtio device models. Guest RAM is two regions carved out of one larger host
 * buffer with canary bytes around and between them; GuestMemory.view is instrumented to check every view it
 * hands out against an independent bounds computation. A run throws random, mutated and malformed chains
 * (and occasional random register writes) at a device and records escapes, hangs and out-of-RAM accesses.
 */
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { VirtioDevice } from '../../lib/virtio/device.js';
import { F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, STATUS_DEVICE_NEEDS_RESET, featureBit } from '../../lib/virtio/constants.js';
import { MMIO, VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { GuestAllocator, RecordingIrq, TestDriver } from './driver.js';

const CANARY = 0xa5;
const HANG_MS = 20_000;
const GUARD = 64 * 1024;
export const REGION_A = { start: 0, size: 1 << 20 };
export const REGION_B = { start: 2 << 20, size: 1 << 20 };
/** Rings live below this; random "in RAM" buffers stay above it so the driver's own rings stay readable. */
const RING_AREA_END = 0x80000;

/** GuestMemory whose views are checked against an independent computation of what is RAM. */
export class InstrumentedMemory extends GuestMemory {
  readonly host: Uint8Array;
  viewsGranted = 0;
  viewsRefused = 0;
  violations: string[] = [];
  private readonly hostRanges: Array<{ guest: number; size: number; hostOffset: number }>;

  constructor() {
    // Host buffer: guard | A | guard (gap) | B | guard
    const host = new Uint8Array(GUARD + REGION_A.size + GUARD + REGION_B.size + GUARD).fill(CANARY);
    const aOff = GUARD;
    const bOff = GUARD + REGION_A.size + GUARD;
    super([
      { guestAddress: REGION_A.start, bytes: host.subarray(aOff, aOff + REGION_A.size).fill(0) },
      { guestAddress: REGION_B.start, bytes: host.subarray(bOff, bOff + REGION_B.size).fill(0) },
    ]);
    this.host = host;
    this.hostRanges = [
      { guest: REGION_A.start, size: REGION_A.size, hostOffset: aOff },
      { guest: REGION_B.start, size: REGION_B.size, hostOffset: bOff },
    ];
  }

  override view(address: number, length: number): Uint8Array {
    const expected = this.hostRanges.find(
      (r) => Number.isSafeInteger(address) && Number.isSafeInteger(length) && length >= 0 && address >= r.guest && address + length <= r.guest + r.size,
    );
    let v: Uint8Array;
    try {
      v = super.view(address, length);
    } catch (e) {
      this.viewsRefused++;
      throw e;
    }
    this.viewsGranted++;
    if (!expected) {
      this.violations.push(`view 0x${address.toString(16)}+0x${length.toString(16)} granted outside RAM`);
    } else if (
      v.buffer !== this.host.buffer ||
      v.byteOffset !== this.host.byteOffset + expected.hostOffset + (address - expected.guest) ||
      v.length !== length
    ) {
      this.violations.push(`view 0x${address.toString(16)}+0x${length.toString(16)} maps to the wrong host bytes`);
    }
    return v;
  }

  /** Canary bytes around and between the regions that were overwritten. */
  damagedCanaries(): number {
    let bad = 0;
    const check = (from: number, to: number): void => {
      for (let i = from; i < to; i++) if (this.host[i] !== CANARY) bad++;
    };
    check(0, GUARD);
    check(GUARD + REGION_A.size, GUARD + REGION_A.size + GUARD);
    check(this.host.length - GUARD, this.host.length);
    return bad;
  }
}

/** Deterministic PRNG (xorshift32) so CI runs are reproducible. */
export class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 1;
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

export interface FuzzStats {
  chains: number;
  rounds: number;
  needsReset: number;
  completed: number;
  escapes: string[];
  hangs: number;
  violations: string[];
  damagedCanaries: number;
  viewsGranted: number;
  viewsRefused: number;
  logLines: number;
}

/** What a well-formed request looks like for the device under test. */
export type RequestMaker = (rng: Rng, dataAddr: () => number, mem: GuestMemory) => Array<{ addr: number; len: number; write: boolean }>;

const SPECIAL_LENGTHS = [0, 1, 2, 15, 16, 17, 511, 512, 513, 4096, 0x10000, 0x100000, 0x7fffffff, 0x80000000, 0xffffffff];

interface Desc {
  lo: number;
  hi: number;
  len: number;
  flags: number;
  next: number;
}

export async function fuzzDevice(
  makeDevice: () => VirtioDevice,
  makeRequest: RequestMaker,
  options: { seed: number; chains: number; maxQueueSize: number },
): Promise<FuzzStats> {
  const mem = new InstrumentedMemory();
  const irq = new RecordingIrq();
  let logLines = 0;
  const transport = new VirtioMmioTransport(makeDevice(), mem, irq, { log: () => logLines++ });
  const driver = new TestDriver(transport, mem, irq, new GuestAllocator(0x1000, RING_AREA_END));
  const rng = new Rng(options.seed);
  const stats: FuzzStats = {
    chains: 0, rounds: 0, needsReset: 0, completed: 0, escapes: [], hangs: 0, violations: mem.violations,
    damagedCanaries: 0, viewsGranted: 0, viewsRefused: 0, logLines: 0,
  };
  const unhandled = (e: unknown): void => {
    stats.escapes.push(`unhandled rejection: ${String(e)}`);
  };
  process.on('unhandledRejection', unhandled);

  const ramEnd = REGION_B.start + REGION_B.size;
  const specialAddrs = [
    RING_AREA_END, REGION_A.size - 1, REGION_A.size - 8, REGION_A.size, REGION_A.size + 4096, REGION_B.start - 1, REGION_B.start,
    ramEnd - 16, ramEnd - 1, ramEnd, ramEnd + 0x1000, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 52, 2 ** 53 - 1,
  ];
  const dataAddr = (): number =>
    rng.chance(0.5) ? RING_AREA_END + rng.int(REGION_A.size - RING_AREA_END - 0x10000) : REGION_B.start + rng.int(REGION_B.size - 0x10000);
  const randomAddr = (): { lo: number; hi: number } => {
    const r = rng.int(10);
    if (r < 4) return split(dataAddr());
    if (r < 8) return split(rng.pick(specialAddrs));
    return { lo: rng.u32(), hi: rng.u32() };
  };

  const guarded = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      stats.escapes.push(`${what}: ${(e as Error).stack ?? String(e)}`);
    }
  };

  let ready = false;
  const initDevice = (): void => {
    driver.alloc.resetAll();
    let size = 1 << rng.int(Math.log2(options.maxQueueSize) + 1);
    const features =
      featureBit(F_VERSION_1) | (rng.chance(0.7) ? featureBit(F_INDIRECT_DESC) : 0n) | (rng.chance(0.5) ? featureBit(F_EVENT_IDX) : 0n);
    guarded('init', () => driver.init({ features, queueSizes: [size] }));
    ready = (driver.status & 0x4) !== 0 && (driver.status & STATUS_DEVICE_NEEDS_RESET) === 0;
    if (ready && rng.chance(0.02)) {
      // Same rings, but a queue size that is not a power of 2 or exceeds the maximum: must be refused.
      let bad = rng.int(70000);
      if (bad > 0 && bad <= options.maxQueueSize && (bad & (bad - 1)) === 0) bad = options.maxQueueSize + 1;
      guarded('bad queue size', () => {
        driver.setReg(MMIO.Status, 0);
        driver.setReg(MMIO.Status, 3);
        driver.setReg(MMIO.DriverFeaturesSel, 1);
        driver.setReg(MMIO.DriverFeatures, 1);
        driver.setReg(MMIO.Status, 11);
        driver.setReg(MMIO.QueueSel, 0);
        driver.setReg(MMIO.QueueNum, bad);
        driver.setReg(MMIO.QueueReady, 1);
        driver.setReg(MMIO.Status, 15);
      });
      if (!(driver.status & STATUS_DEVICE_NEEDS_RESET)) stats.escapes.push(`queue size ${bad} was accepted`);
      ready = false;
    }
  };

  const pokeRegisters = (): void => {
    for (let i = rng.int(6); i > 0; i--) {
      const off = rng.chance(0.8) ? rng.int(0x100) & ~3 : rng.int(0x200);
      const size = rng.pick([1, 2, 4, 4, 4]);
      guarded('register write', () => transport.write(off, size, rng.u32() >>> (32 - 8 * size)));
      guarded('register read', () => transport.read(off, size));
    }
  };

  initDevice();
  while (stats.chains < options.chains) {
    stats.rounds++;
    if (!ready || rng.chance(0.05)) {
      if (rng.chance(0.2)) pokeRegisters();
      initDevice();
      if (!ready) continue;
    }
    const q = driver.queues[0]!;
    const n = q.size;
    const batch = 1 + rng.int(Math.min(n, 8));
    let nextDesc = rng.int(n);
    for (let b = 0; b < batch; b++) {
      const head = writeChain();
      const slot = q.availIdx % n;
      mem.writeU16(q.avail + 4 + 2 * slot, rng.chance(0.01) ? rng.int(0x10000) : head);
      q.availIdx = (q.availIdx + 1) & 0xffff;
      stats.chains++;
    }
    const publishedIdx = rng.chance(0.01) ? rng.int(0x10000) : q.availIdx;
    q.availIdx = publishedIdx;
    mem.writeU16(q.avail + 2, publishedIdx);
    if (rng.chance(0.05)) mem.writeU16(q.avail + 4 + 2 * n, rng.int(0x10000)); // used_event
    // Sometimes also notify a queue that does not exist first (must be ignored).
    if (rng.chance(0.01)) guarded('notify', () => driver.notify(1 + rng.int(0x10000)));
    guarded('notify', () => driver.notify(0));

    // Wait until every published chain is used or the device asked for a reset.
    // A hang is no progress for HANG_MS of wall time (generous: the host may be heavily loaded).
    const deadline = Date.now() + HANG_MS;
    for (;;) {
      const status = driver.status;
      if (status & STATUS_DEVICE_NEEDS_RESET) {
        stats.needsReset++;
        if (!(driver.reg(MMIO.InterruptStatus) & 2)) stats.escapes.push('NEEDS_RESET without a config-change interrupt');
        ready = false;
        break;
      }
      if (q.usedIdx() === publishedIdx) {
        stats.completed += batch;
        q.lastUsed = publishedIdx;
        break;
      }
      if (Date.now() > deadline) {
        stats.hangs++;
        console.log('fuzz hang', { status, usedIdx: q.usedIdx(), publishedIdx, size: n, batch, round: stats.rounds });
        ready = false;
        break;
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    driver.ackInterrupt();

    function writeChain(): number {
      const kind = rng.int(10);
      const head = nextDesc % n;
      if (kind < 7) {
        // Well-formed request, maybe mutated, maybe through an indirect table.
        const bufs = makeRequest(rng, dataAddr, mem);
        const descs: Desc[] = bufs.map((x, i) => ({ ...split(x.addr), len: x.len, flags: (x.write ? 2 : 0) | (i + 1 < bufs.length ? 1 : 0), next: 0 }));
        if (kind >= 5) mutate(descs);
        if (rng.chance(0.3) && descs.length <= 64) {
          const table = dataAddr() & ~15;
          descs.forEach((d, i) => {
            if (d.flags & 1 && !(kind >= 5 && rng.chance(0.3))) d.next = i + 1;
            writeDesc(table + 16 * i, d);
          });
          const len = rng.chance(0.9) ? 16 * descs.length : rng.pick(SPECIAL_LENGTHS);
          writeDesc(q.desc + 16 * head, { ...split(table), len, flags: rng.chance(0.95) ? 4 : 5 + rng.int(3), next: rng.int(n) });
          nextDesc++;
          return head;
        }
        descs.forEach((d, i) => {
          const at = (nextDesc + i) % n;
          if (d.flags & 1 && !(kind >= 5 && rng.chance(0.3))) d.next = (nextDesc + i + 1) % n;
          writeDesc(q.desc + 16 * at, d);
        });
        nextDesc += descs.length;
        return head;
      }
      // Garbage descriptors, including loops and nested indirect tables.
      const count = 1 + rng.int(Math.min(n, 6));
      for (let i = 0; i < count; i++) {
        const a = randomAddr();
        writeDesc(q.desc + 16 * ((nextDesc + i) % n), {
          ...a,
          len: rng.chance(0.5) ? rng.pick(SPECIAL_LENGTHS) : rng.u32(),
          flags: rng.chance(0.5) ? rng.int(8) : rng.int(0x10000),
          next: rng.chance(0.7) ? rng.int(n) : rng.int(0x10000),
        });
      }
      if (rng.chance(0.3)) {
        // A valid-looking indirect table whose entries are themselves indirect or loop.
        const table = dataAddr() & ~15;
        for (let i = 0; i < 4; i++) writeDesc(table + 16 * i, { ...randomAddr(), len: rng.pick(SPECIAL_LENGTHS), flags: rng.int(8), next: rng.int(5) });
        writeDesc(q.desc + 16 * head, { ...split(table), len: 64, flags: 4, next: 0 });
      }
      nextDesc += count;
      return head;
    }

    function mutate(descs: Desc[]): void {
      for (let m = 1 + rng.int(3); m > 0; m--) {
        const d = rng.pick(descs);
        switch (rng.int(4)) {
          case 0: Object.assign(d, randomAddr()); break;
          case 1: d.len = rng.pick(SPECIAL_LENGTHS); break;
          case 2: d.flags ^= 1 << rng.int(4); break;
          default: d.next = rng.int(0x10000); d.flags |= 1; break;
        }
      }
    }
  }

  process.off('unhandledRejection', unhandled);
  guarded('final reset', () => transport.write(MMIO.Status, 4, 0));
  stats.damagedCanaries = mem.damagedCanaries();
  stats.viewsGranted = mem.viewsGranted;
  stats.viewsRefused = mem.viewsRefused;
  stats.logLines = logLines;
  return stats;

  function writeDesc(at: number, d: Desc): void {
    mem.writeU32(at, d.lo);
    mem.writeU32(at + 4, d.hi);
    mem.writeU32(at + 8, d.len);
    mem.writeU16(at + 12, d.flags & 0xffff);
    mem.writeU16(at + 14, d.next & 0xffff);
  }
}

function split(addr: number): { lo: number; hi: number } {
  return { lo: addr % 0x1_0000_0000 >>> 0, hi: Math.floor(addr / 0x1_0000_0000) >>> 0 };
}
