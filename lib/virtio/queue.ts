/**
 * One split virtqueue (virtio 1.x spec 2.7), device side.
 *
 * The driver sets the size and the three ring addresses through a transport; `activate` validates them once
 * and keeps DataViews over the rings, so every later ring access is in bounds by construction. Descriptor
 * buffers are validated per chain through GuestMemory.view and handed to devices as zero-copy views.
 * Any driver mistake surfaces as a VirtqueueError (the core turns it into DEVICE_NEEDS_RESET).
 */
import { GuestMemory, GuestMemoryError } from '../machine/guest-memory.js';
import {
  MAX_QUEUE_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
} from './constants.js';

export class VirtqueueError extends Error {
  readonly code = 'EVIRTQUEUE';
  constructor(readonly queueIndex: number, message: string) {
    super(`virtqueue ${queueIndex}: ${message}`);
    this.name = 'VirtqueueError';
  }
}

/** A descriptor chain taken from the available ring. Views alias guest RAM (no copies). */
export interface DescriptorChain {
  readonly head: number;
  /** Device-readable buffers, in chain order. */
  readonly readable: Uint8Array[];
  /** Device-writable buffers, in chain order (always after every readable one). */
  readonly writable: Uint8Array[];
  readonly readableLength: number;
  readonly writableLength: number;
  /** Queue generation the chain was taken in; completions from an older generation are dropped. */
  readonly generation: number;
}

export interface VirtqueueFeatures {
  readonly indirect: boolean;
  readonly eventIdx: boolean;
}

const TWO_POW_32 = 0x1_0000_0000;
/** Largest total chain length a used-ring `len` can report. */
const MAX_CHAIN_BYTES = 0xffff_ffff;

export function isValidQueueSize(size: number, maxSize: number): boolean {
  return Number.isInteger(size) && size > 0 && size <= maxSize && size <= MAX_QUEUE_SIZE && (size & (size - 1)) === 0;
}

/** The spec's vring_need_event: has `newIdx` passed `eventIdx` since `oldIdx`? (all mod 2^16) */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export class Virtqueue {
  // Driver-written configuration (via the transport). Addresses are full 64-bit values kept as Numbers.
  size: number;
  ready = false;
  descAddr = 0;
  driverAddr = 0;
  deviceAddr = 0;

  private active = false;
  private gen = 0;
  private features: VirtqueueFeatures = { indirect: false, eventIdx: false };
  private desc: DataView | undefined;
  private avail: DataView | undefined;
  private used: DataView | undefined;
  private lastAvail = 0;
  private usedIdx = 0;
  private signalledUsed = 0;
  private onInterrupt: () => void = () => {};

  constructor(
    readonly index: number,
    readonly maxSize: number,
    private readonly memory: GuestMemory,
  ) {
    if (!isValidQueueSize(maxSize, MAX_QUEUE_SIZE)) throw new RangeError(`virtqueue ${index}: bad max size ${maxSize}`);
    this.size = maxSize;
  }

  get isActive(): boolean {
    return this.active;
  }

  get generation(): number {
    return this.gen;
  }

  /** Back to the power-on state (driver configuration cleared). */
  reset(): void {
    this.halt();
    this.size = this.maxSize;
    this.ready = false;
    this.descAddr = this.driverAddr = this.deviceAddr = 0;
  }

  /** Stop using the rings (device reset or NEEDS_RESET); in-flight completions become no-ops. */
  halt(): void {
    this.active = false;
    this.gen++;
    this.desc = this.avail = this.used = undefined;
  }

  /** Validate the driver's ring setup and start serving. Throws VirtqueueError on a bad setup. */
  activate(features: VirtqueueFeatures, onInterrupt: () => void): void {
    this.halt();
    const n = this.size;
    if (!isValidQueueSize(n, this.maxSize)) this.fail(`queue size ${n} is not a power of 2 in 1..${this.maxSize}`);
    if (this.descAddr % 16 !== 0) this.fail(`descriptor table 0x${this.descAddr.toString(16)} not 16-byte aligned`);
    if (this.driverAddr % 2 !== 0) this.fail(`driver area 0x${this.driverAddr.toString(16)} not 2-byte aligned`);
    if (this.deviceAddr % 4 !== 0) this.fail(`device area 0x${this.deviceAddr.toString(16)} not 4-byte aligned`);
    this.desc = this.ringView('descriptor table', this.descAddr, 16 * n);
    this.avail = this.ringView('driver area', this.driverAddr, 6 + 2 * n);
    this.used = this.ringView('device area', this.deviceAddr, 6 + 8 * n);
    this.features = features;
    this.onInterrupt = onInterrupt;
    this.lastAvail = 0;
    this.usedIdx = 0;
    this.signalledUsed = 0;
    this.active = true;
  }

  /** Next available chain, or null when the ring is empty (or the queue is not active). */
  pop(): DescriptorChain | null {
    if (!this.active) return null;
    const avail = this.avail!;
    const n = this.size;
    let pending = (avail.getUint16(2, true) - this.lastAvail) & 0xffff;
    if (pending === 0) {
      if (!this.features.eventIdx) return null;
      // Ask for a notification on the next buffer, then look again so one added meanwhile is not missed.
      this.used!.setUint16(4 + 8 * n, this.lastAvail, true);
      pending = (avail.getUint16(2, true) - this.lastAvail) & 0xffff;
      if (pending === 0) return null;
    }
    if (pending > n) this.fail(`available index moved ${pending} entries past the last seen one (queue size ${n})`);
    const head = avail.getUint16(4 + 2 * (this.lastAvail % n), true);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.features.eventIdx) this.used!.setUint16(4 + 8 * n, this.lastAvail, true);
    return this.walkChain(head);
  }

  /**
   * Ask the driver not to notify (true) or to notify again (false). Suppress only while the device is sure
   * to look at the ring again by itself (e.g. requests in flight whose completion re-drains the queue).
   * After re-enabling, the caller must pop again: a buffer may have been added without a notification.
   */
  setNotificationsSuppressed(suppressed: boolean): void {
    if (!this.active) return;
    if (this.features.eventIdx) {
      // avail_event one behind what we have seen: the driver's next additions never cross it.
      this.used!.setUint16(4 + 8 * this.size, suppressed ? (this.lastAvail - 1) & 0xffff : this.lastAvail, true);
    } else {
      const flags = this.used!.getUint16(0, true);
      this.used!.setUint16(0, suppressed ? flags | VIRTQ_USED_F_NO_NOTIFY : flags & ~VIRTQ_USED_F_NO_NOTIFY, true);
    }
  }

  /** Put a finished chain on the used ring (no interrupt yet: see notifyIfNeeded). */
  pushUsed(head: number, writtenLength: number): void {
    if (!this.active) return;
    const used = this.used!;
    const slot = this.usedIdx % this.size;
    used.setUint32(4 + 8 * slot, head, true);
    used.setUint32(8 + 8 * slot, writtenLength >>> 0, true);
    // The index is published after the element so the driver never sees a half-written entry.
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    used.setUint16(2, this.usedIdx, true);
  }

  /** pushUsed for a chain, dropped when the queue was reset since the chain was taken. */
  complete(chain: DescriptorChain, writtenLength: number): void {
    if (chain.generation !== this.gen) return;
    this.pushUsed(chain.head, writtenLength);
  }

  /** Interrupt the driver if it wants to hear about the used entries added since the last call. */
  notifyIfNeeded(): boolean {
    if (!this.active || this.usedIdx === this.signalledUsed) return false;
    const avail = this.avail!;
    const need = this.features.eventIdx
      ? vringNeedEvent(avail.getUint16(4 + 2 * this.size, true), this.usedIdx, this.signalledUsed)
      : (avail.getUint16(0, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    this.signalledUsed = this.usedIdx;
    if (need) this.onInterrupt();
    return need;
  }

  private walkChain(head: number): DescriptorChain {
    const n = this.size;
    if (head >= n) this.fail(`head descriptor ${head} >= queue size ${n}`);
    const readable: Uint8Array[] = [];
    const writable: Uint8Array[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let table = this.desc!;
    let tableSize = n;
    let inIndirect = false;
    let index = head;
    let visited = 0;
    for (;;) {
      // A chain can visit each descriptor of its table at most once; more means a NEXT loop.
      if (++visited > tableSize) this.fail(`descriptor chain from head ${head} is longer than its table (loop?)`);
      const off = index * 16;
      const addrLow = table.getUint32(off, true);
      const addrHigh = table.getUint32(off + 4, true);
      const len = table.getUint32(off + 8, true);
      const flags = table.getUint16(off + 12, true);
      const next = table.getUint16(off + 14, true);
      const addr = addrHigh * TWO_POW_32 + addrLow;
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.features.indirect) this.fail(`descriptor ${index} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated`);
        if (inIndirect) this.fail('nested indirect descriptor table');
        if (flags & VIRTQ_DESC_F_NEXT) this.fail(`indirect descriptor ${index} also has NEXT set`);
        if (len === 0 || len % 16 !== 0) this.fail(`indirect table length ${len} is not a non-zero multiple of 16`);
        if (len / 16 > MAX_QUEUE_SIZE) this.fail(`indirect table of ${len / 16} entries exceeds ${MAX_QUEUE_SIZE}`);
        // No alignment rule for indirect tables (virtio 1.x §2.7.5.3): Linux kmallocs them 8-byte aligned.
        const t = this.guestView(addr, len, 'indirect table');
        table = new DataView(t.buffer, t.byteOffset, t.byteLength);
        tableSize = len / 16;
        inIndirect = true;
        index = 0;
        visited = 0;
        continue;
      }
      const view = this.guestView(addr, len, `descriptor ${index} buffer`);
      if (flags & VIRTQ_DESC_F_WRITE) {
        writable.push(view);
        writableLength += len;
      } else {
        if (writable.length > 0) this.fail(`device-readable descriptor ${index} after a device-writable one`);
        readable.push(view);
        readableLength += len;
      }
      if (readableLength + writableLength > MAX_CHAIN_BYTES) this.fail(`chain from head ${head} exceeds 4 GiB in total`);
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      if (next >= tableSize) this.fail(`descriptor ${index} links to ${next}, beyond its table of ${tableSize}`);
      index = next;
    }
    return { head, readable, writable, readableLength, writableLength, generation: this.gen };
  }

  private guestView(addr: number, len: number, what: string): Uint8Array {
    try {
      return this.memory.view(addr, len);
    } catch (e) {
      if (e instanceof GuestMemoryError) this.fail(`${what} 0x${addr.toString(16)}+0x${len.toString(16)} is outside guest RAM`);
      throw e;
    }
  }

  private ringView(what: string, addr: number, len: number): DataView {
    const v = this.guestView(addr, len, what);
    return new DataView(v.buffer, v.byteOffset, v.byteLength);
  }

  private fail(message: string): never {
    throw new VirtqueueError(this.index, message);
  }
}
