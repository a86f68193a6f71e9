/**
 * virtio-mmio transport, version 2 (virtio 1.x spec 4.2.2): a 0x200-byte register window on the MMIO bus
 * plus one level-triggered interrupt line. Register accesses below 0x100 must be 32-bit (spec 4.2.2.2);
 * other widths read as 0 and are ignored on write. With accelerator fast paths (KVM), QueueNotify writes
 * become ioeventfds (enableNotifyFastPath, see mmio-fast-path.ts); the bus path stays for everything else.
 */
import type { AcceleratorFastPaths } from '../accel/accelerator.js';
import type { BusDevice } from '../machine/bus.js';
import type { GuestMemory } from '../machine/guest-memory.js';
import type { IrqLine } from '../machine/irq.js';
import { VirtioCore } from './core.js';
import type { VirtioDevice } from './device.js';
import { watchMmioQueueNotify } from './mmio-fast-path.js';
import type { QueueNotifyWatches } from './notify-watch.js';

export const VIRTIO_MMIO_SIZE = 0x200;
export const VIRTIO_MMIO_MAGIC = 0x74726976; // "virt"
/** Vendor ID reported to the guest ("NVMM" little-endian); Linux does not interpret it. */
export const VIRTIO_MMIO_VENDOR_ID = 0x4d4d564e;

/** Register offsets (spec 4.2.2). */
export const MMIO = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

export const INTERRUPT_USED_BUFFER = 1;
export const INTERRUPT_CONFIG_CHANGE = 2;

export interface VirtioMmioOptions {
  log?: (message: string) => void;
  /** Name for log lines. */
  name?: string;
}

const TWO_POW_32 = 0x1_0000_0000;

export class VirtioMmioTransport implements BusDevice {
  readonly core: VirtioCore;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private interruptStatus = 0;
  private notifyWatches: QueueNotifyWatches | undefined;
  private readonly name: string;

  constructor(
    readonly device: VirtioDevice,
    memory: GuestMemory,
    private readonly irq: IrqLine,
    private readonly options: VirtioMmioOptions = {},
  ) {
    this.name = options.name ?? `virtio-mmio(device ${device.deviceId})`;
    this.core = new VirtioCore(device, memory, {
      signal: (kind) => this.raise(kind === 'queue' ? INTERRUPT_USED_BUFFER : INTERRUPT_CONFIG_CHANGE),
      ...(options.log ? { log: options.log } : {}),
      name: this.name,
    });
  }

  /**
   * Hand QueueNotify (at `base` + 0x50, where this transport's window is on the MMIO bus) to the accelerator:
   * matching writes notify the queue without reaching the bus. Replaces an earlier registration.
   */
  enableNotifyFastPath(fastPaths: AcceleratorFastPaths, base: number): void {
    this.closeFastPaths();
    this.notifyWatches = watchMmioQueueNotify({
      fastPaths,
      address: base + MMIO.QueueNotify,
      queues: this.core.queues.length,
      notify: (q) => this.core.notify(q),
      log: this.options.log ?? ((m) => console.error(m)),
      name: this.name,
    });
  }

  /** Notifications that came through the accelerator's fast path (0 without one). */
  get fastNotifications(): number {
    return this.notifyWatches?.signals ?? 0;
  }

  /** True while QueueNotify writes go through the accelerator. */
  get notifyFastPathActive(): boolean {
    return this.notifyWatches?.active ?? false;
  }

  /** Release accelerator resources (ioeventfds); the transport keeps working through the bus. Idempotent. */
  closeFastPaths(): void {
    this.notifyWatches?.release();
  }

  /** Device reset (driver writes Status 0, or machine reset): device and registers to power-on, line low. */
  reset(): void {
    this.core.reset();
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.interruptStatus = 0;
    this.irq.set(false);
  }

  read(offset: number, size: number): number {
    if (offset >= MMIO.Config) return this.core.readConfig(offset - MMIO.Config, size);
    if (size !== 4) return 0;
    const q = this.core.queues[this.queueSel];
    switch (offset) {
      case MMIO.MagicValue: return VIRTIO_MMIO_MAGIC;
      case MMIO.Version: return 2;
      case MMIO.DeviceID: return this.device.deviceId;
      case MMIO.VendorID: return VIRTIO_MMIO_VENDOR_ID;
      case MMIO.DeviceFeatures: return this.core.deviceFeatureWord(this.deviceFeaturesSel);
      case MMIO.QueueNumMax: return q ? q.maxSize : 0;
      case MMIO.QueueReady: return q?.ready ? 1 : 0;
      case MMIO.InterruptStatus: return this.interruptStatus;
      case MMIO.Status: return this.core.status;
      // No shared memory regions: the spec says a missing region reads as all ones.
      case MMIO.SHMLenLow: case MMIO.SHMLenHigh: case MMIO.SHMBaseLow: case MMIO.SHMBaseHigh: return 0xffffffff;
      case MMIO.ConfigGeneration: return this.core.configGeneration;
      // Reading these back is not in the spec's register list, but harmless and useful when debugging.
      case MMIO.QueueNum: return q ? q.size : 0;
      case MMIO.QueueDescLow: return q ? low32(q.descAddr) : 0;
      case MMIO.QueueDescHigh: return q ? high32(q.descAddr) : 0;
      case MMIO.QueueDriverLow: return q ? low32(q.driverAddr) : 0;
      case MMIO.QueueDriverHigh: return q ? high32(q.driverAddr) : 0;
      case MMIO.QueueDeviceLow: return q ? low32(q.deviceAddr) : 0;
      case MMIO.QueueDeviceHigh: return q ? high32(q.deviceAddr) : 0;
      default: return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (offset >= MMIO.Config) {
      this.core.writeConfig(offset - MMIO.Config, size, value);
      return;
    }
    if (size !== 4) return;
    value >>>= 0;
    switch (offset) {
      case MMIO.DeviceFeaturesSel: this.deviceFeaturesSel = value; return;
      case MMIO.DriverFeatures: this.core.setDriverFeatureWord(this.driverFeaturesSel, value); return;
      case MMIO.DriverFeaturesSel: this.driverFeaturesSel = value; return;
      case MMIO.QueueSel: this.queueSel = value; return;
      case MMIO.QueueNotify: this.core.notify(value & 0xffff); return;
      case MMIO.InterruptACK: this.acknowledge(value); return;
      case MMIO.Status: this.writeStatus(value); return;
      default: this.writeQueueRegister(offset, value);
    }
  }

  /** Level of the interrupt line (true while InterruptStatus is non-zero). */
  get interruptPending(): boolean {
    return this.interruptStatus !== 0;
  }

  private writeStatus(value: number): void {
    // Writing 0 is the driver's device reset (spec 4.2.2.1): the same as a machine reset for this transport.
    if ((value & 0xff) === 0) this.reset();
    else this.core.writeStatus(value);
  }

  private writeQueueRegister(offset: number, value: number): void {
    const q = this.core.queues[this.queueSel];
    if (!q) return;
    if (offset === MMIO.QueueReady) {
      const ready = (value & 1) === 1;
      if (ready === q.ready) return;
      q.ready = ready;
      if (ready) this.core.enableLateQueue(q.index);
      else q.halt();
      return;
    }
    // Queue geometry is frozen while the queue is enabled (spec 4.2.2.3).
    if (q.ready) return;
    switch (offset) {
      case MMIO.QueueNum: q.size = value; return;
      case MMIO.QueueDescLow: q.descAddr = setLow(q.descAddr, value); return;
      case MMIO.QueueDescHigh: q.descAddr = setHigh(q.descAddr, value); return;
      case MMIO.QueueDriverLow: q.driverAddr = setLow(q.driverAddr, value); return;
      case MMIO.QueueDriverHigh: q.driverAddr = setHigh(q.driverAddr, value); return;
      case MMIO.QueueDeviceLow: q.deviceAddr = setLow(q.deviceAddr, value); return;
      case MMIO.QueueDeviceHigh: q.deviceAddr = setHigh(q.deviceAddr, value); return;
    }
  }

  private acknowledge(bits: number): void {
    this.interruptStatus &= ~bits;
    if (this.interruptStatus === 0) this.irq.set(false);
  }

  private raise(bit: number): void {
    this.interruptStatus |= bit;
    this.irq.set(true);
  }
}

function low32(v: number): number {
  return v % TWO_POW_32;
}
function high32(v: number): number {
  return Math.floor(v / TWO_POW_32);
}
function setLow(old: number, low: number): number {
  return high32(old) * TWO_POW_32 + low;
}
function setHigh(old: number, high: number): number {
  // Above 2^53 the Number is inexact, but GuestMemory rejects any unsafe integer, so it never maps to RAM.
  return high * TWO_POW_32 + low32(old);
}

/**
 * The Linux command-line fragment that declares one virtio-mmio device (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES):
 * `virtio_mmio.device=0x200@0xd0000000:5`.
 */
export function virtioMmioCmdline(base: number, irq: number, size: number = VIRTIO_MMIO_SIZE): string {
  if (!Number.isSafeInteger(base) || base < 0) throw new RangeError(`virtio-mmio base ${base} is not a valid address`);
  if (!Number.isInteger(irq) || irq < 0) throw new RangeError(`virtio-mmio irq ${irq} is not a valid interrupt number`);
  if (!Number.isInteger(size) || size <= 0) throw new RangeError(`virtio-mmio size ${size} is not valid`);
  return `virtio_mmio.device=0x${size.toString(16)}@0x${base.toString(16)}:${irq}`;
}
