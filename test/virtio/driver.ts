/**
 * A minimal virtio driver for tests and benchmarks: talks to a virtio-mmio transport through its registers
 * (as a guest would), keeps split rings in a real GuestMemory, builds descriptor chains, notifies and waits
 * for used-ring entries and the interrupt line.
 */
import type { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { IrqLine } from '../../lib/machine/irq.js';
import { vringNeedEvent } from '../../lib/virtio/queue.js';
import {
  F_EVENT_IDX,
  F_VERSION_1,
  VIRTQ_USED_F_NO_NOTIFY,
  hasFeature,
  STATUS_ACKNOWLEDGE,
  STATUS_DRIVER,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  featureBit,
} from '../../lib/virtio/constants.js';
import { MMIO, VIRTIO_MMIO_MAGIC, type VirtioMmioTransport } from '../../lib/virtio/mmio.js';

export class RecordingIrq implements IrqLine {
  level = false;
  raises = 0;
  private waiters: Array<() => void> = [];

  set(level: boolean): void {
    if (level && !this.level) this.raises++;
    this.level = level;
    if (level) {
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    }
  }

  /** Resolves when the device next asserts the line; no timer (the caller guards against a hang). */
  raised(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Resolves when the device next asserts the line, or after `timeoutMs` (interrupts may be suppressed). */
  wait(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Bump allocator over a guest-physical range. */
export class GuestAllocator {
  private next: number;
  constructor(private readonly start: number, private readonly end: number) {
    this.next = start;
  }
  alloc(size: number, align = 16): number {
    const a = Math.ceil(this.next / align) * align;
    if (a + size > this.end) throw new Error(`test allocator exhausted (${size} bytes)`);
    this.next = a + size;
    return a;
  }
  mark(): number {
    return this.next;
  }
  release(mark: number): void {
    this.next = mark;
  }
  resetAll(): void {
    this.next = this.start;
  }
}

export interface Buffer {
  addr: number;
  len: number;
  write: boolean;
}

export interface UsedElement {
  id: number;
  len: number;
}

export class DriverQueue {
  availIdx = 0;
  lastUsed = 0;
  private free: number[];

  constructor(
    private readonly mem: GuestMemory,
    readonly index: number,
    readonly size: number,
    readonly desc: number,
    readonly avail: number,
    readonly used: number,
  ) {
    this.free = Array.from({ length: size }, (_, i) => i);
  }

  get freeCount(): number {
    return this.free.length;
  }

  writeDesc(tableAddr: number, i: number, d: { addr: number; len: number; flags: number; next: number }): void {
    const a = tableAddr + 16 * i;
    this.mem.writeU64(a, BigInt(d.addr));
    this.mem.writeU32(a + 8, d.len);
    this.mem.writeU16(a + 12, d.flags);
    this.mem.writeU16(a + 14, d.next);
  }

  /** Put a chain on the ring; `indirectTable` (guest address with room for bufs.length entries) uses one slot. */
  add(bufs: Buffer[], indirectTable?: number): number {
    if (indirectTable !== undefined) {
      bufs.forEach((b, i) =>
        this.writeDesc(indirectTable, i, {
          addr: b.addr,
          len: b.len,
          flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < bufs.length ? VIRTQ_DESC_F_NEXT : 0),
          next: i + 1 < bufs.length ? i + 1 : 0,
        }),
      );
      const head = this.take(1)[0]!;
      this.writeDesc(this.desc, head, { addr: indirectTable, len: 16 * bufs.length, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
      this.publish(head);
      return head;
    }
    const ids = this.take(bufs.length);
    bufs.forEach((b, i) =>
      this.writeDesc(this.desc, ids[i]!, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < bufs.length ? VIRTQ_DESC_F_NEXT : 0),
        next: i + 1 < bufs.length ? ids[i + 1]! : 0,
      }),
    );
    this.publish(ids[0]!);
    return ids[0]!;
  }

  /** Return a completed chain's descriptors to the free list. */
  recycle(head: number): void {
    let i = head;
    for (let n = 0; n < this.size; n++) {
      this.free.push(i);
      const flags = this.mem.readU16(this.desc + 16 * i + 12);
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      i = this.mem.readU16(this.desc + 16 * i + 14);
    }
  }

  usedIdx(): number {
    return this.mem.readU16(this.used + 2);
  }

  /** Pop one used element if the device produced one. */
  popUsed(): UsedElement | undefined {
    if (this.usedIdx() === this.lastUsed) return undefined;
    const slot = this.lastUsed % this.size;
    const id = this.mem.readU32(this.used + 4 + 8 * slot);
    const len = this.mem.readU32(this.used + 8 + 8 * slot);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    // Like Linux's virtqueue_enable_cb: with EVENT_IDX, ask for an interrupt on the next completion.
    this.setUsedEvent(this.lastUsed);
    return { id, len };
  }

  /** EVENT_IDX: ask for an interrupt once the used index passes `idx`. */
  setUsedEvent(idx: number): void {
    this.mem.writeU16(this.avail + 4 + 2 * this.size, idx & 0xffff);
  }

  /** EVENT_IDX: the device's avail_event (notify when availIdx passes it). */
  availEvent(): number {
    return this.mem.readU16(this.used + 4 + 8 * this.size);
  }

  setAvailFlags(flags: number): void {
    this.mem.writeU16(this.avail, flags);
  }

  private take(n: number): number[] {
    if (n > this.free.length) throw new Error(`queue ${this.index}: ${n} descriptors wanted, ${this.free.length} free`);
    return this.free.splice(0, n);
  }

  private publish(head: number): void {
    this.mem.writeU16(this.avail + 4 + 2 * (this.availIdx % this.size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.mem.writeU16(this.avail + 2, this.availIdx);
  }
}

export interface InitOptions {
  /** Feature bits the driver wants (intersected with the device's offer). Default: everything offered. */
  features?: bigint;
  /** Queue sizes to use (default: each queue's maximum). */
  queueSizes?: number[];
}

export class TestDriver {
  queues: DriverQueue[] = [];
  features = 0n;

  constructor(
    readonly transport: VirtioMmioTransport,
    readonly mem: GuestMemory,
    readonly irq: RecordingIrq,
    readonly alloc: GuestAllocator,
  ) {}

  reg(offset: number): number {
    return this.transport.read(offset, 4);
  }

  setReg(offset: number, value: number): void {
    this.transport.write(offset, 4, value >>> 0);
  }

  get status(): number {
    return this.reg(MMIO.Status);
  }

  deviceFeatures(): bigint {
    this.setReg(MMIO.DeviceFeaturesSel, 0);
    const lo = BigInt(this.reg(MMIO.DeviceFeatures));
    this.setReg(MMIO.DeviceFeaturesSel, 1);
    const hi = BigInt(this.reg(MMIO.DeviceFeatures));
    return (hi << 32n) | lo;
  }

  /** The spec's initialization sequence (3.1.1). Returns the negotiated features. */
  init(options: InitOptions = {}): bigint {
    if (this.reg(MMIO.MagicValue) !== VIRTIO_MMIO_MAGIC) throw new Error('bad magic');
    if (this.reg(MMIO.Version) !== 2) throw new Error('not virtio-mmio version 2');
    this.setReg(MMIO.Status, 0);
    this.setReg(MMIO.Status, STATUS_ACKNOWLEDGE);
    this.setReg(MMIO.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    const offered = this.deviceFeatures();
    const wanted = (options.features ?? offered) | featureBit(F_VERSION_1);
    this.features = offered & wanted;
    this.setReg(MMIO.DriverFeaturesSel, 0);
    this.setReg(MMIO.DriverFeatures, Number(this.features & 0xffffffffn));
    this.setReg(MMIO.DriverFeaturesSel, 1);
    this.setReg(MMIO.DriverFeatures, Number(this.features >> 32n));
    this.setReg(MMIO.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (!(this.status & STATUS_FEATURES_OK)) throw new Error('device refused features');
    this.queues = [];
    for (let i = 0; ; i++) {
      this.setReg(MMIO.QueueSel, i);
      const max = this.reg(MMIO.QueueNumMax);
      if (max === 0) break;
      const size = options.queueSizes?.[i] ?? max;
      const desc = this.alloc.alloc(16 * size, 16);
      const avail = this.alloc.alloc(6 + 2 * size, 2);
      const used = this.alloc.alloc(6 + 8 * size, 4);
      this.mem.fill(desc, 16 * size);
      this.mem.fill(avail, 6 + 2 * size);
      this.mem.fill(used, 6 + 8 * size);
      this.setReg(MMIO.QueueNum, size);
      this.setReg(MMIO.QueueDescLow, desc);
      this.setReg(MMIO.QueueDescHigh, 0);
      this.setReg(MMIO.QueueDriverLow, avail);
      this.setReg(MMIO.QueueDriverHigh, 0);
      this.setReg(MMIO.QueueDeviceLow, used);
      this.setReg(MMIO.QueueDeviceHigh, 0);
      this.setReg(MMIO.QueueReady, 1);
      this.queues.push(new DriverQueue(this.mem, i, size, desc, avail, used));
    }
    this.setReg(MMIO.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    return this.features;
  }

  notify(queue: number): void {
    this.setReg(MMIO.QueueNotify, queue);
  }

  kicks = 0;

  /**
   * Notify only if the device asked for it since the available index was `oldAvailIdx` (spec 2.7.10):
   * avail_event with EVENT_IDX, otherwise the used ring's NO_NOTIFY flag. Returns whether it notified.
   */
  kickIfNeeded(queue: number, oldAvailIdx: number): boolean {
    const q = this.queues[queue]!;
    const need = hasFeature(this.features, F_EVENT_IDX)
      ? vringNeedEvent(q.availEvent(), q.availIdx, oldAvailIdx)
      : (this.mem.readU16(q.used) & VIRTQ_USED_F_NO_NOTIFY) === 0;
    if (need) {
      this.kicks++;
      this.notify(queue);
    }
    return need;
  }

  /** Acknowledge every pending interrupt cause (as an interrupt handler would). */
  ackInterrupt(): number {
    const isr = this.reg(MMIO.InterruptStatus);
    if (isr) this.setReg(MMIO.InterruptACK, isr);
    return isr;
  }

  /**
   * Wait until `queue` has a used element; throws after `timeoutMs`. Sleeps until the interrupt line is
   * asserted (like a guest in HLT) rather than spinning, with a short timer in case interrupts are suppressed.
   */
  async waitUsed(queue: number, timeoutMs = 10_000): Promise<UsedElement> {
    const q = this.queues[queue]!;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = q.popUsed();
      if (e) return e;
      if (Date.now() > deadline) throw new Error(`timed out waiting for a used element on queue ${queue}`);
      await this.irq.wait(1);
    }
  }

  /**
   * Wait for a used element on `queue` the way an interrupt-driven driver does: sleep until the line is
   * asserted, with no fallback timer (a per-request timer costs ~15-25 µs of CPU, which a benchmark must not
   * charge to the device). Only for drivers that leave interrupts enabled; the caller guards against a hang.
   */
  async waitUsedByInterrupt(queue: number): Promise<UsedElement> {
    const q = this.queues[queue]!;
    for (;;) {
      const e = q.popUsed();
      if (e) return e;
      await this.irq.raised();
    }
  }

  /** Submit a chain, notify, wait for its completion and recycle its descriptors. */
  async run(queue: number, bufs: Buffer[], opts: { indirectTable?: number } = {}): Promise<UsedElement> {
    const q = this.queues[queue]!;
    const head = q.add(bufs, opts.indirectTable);
    this.notify(queue);
    const used = await this.waitUsed(queue);
    if (used.id !== head) throw new Error(`expected head ${head} back, got ${used.id}`);
    q.recycle(head);
    return used;
  }
}
