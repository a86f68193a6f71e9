/**
 * A test-side PCI + virtio-pci driver that does what a guest does, only through the buses: enumerate bus 0
 * through ports 0xcf8/0xcfc, size BARs, walk the capability list, program MSI-X, then initialise a virtio
 * device through its common configuration and drive queues with test/virtio/driver.ts's DriverQueue.
 */
import type { Bus } from '../../lib/machine/bus.js';
import type { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { MsiSink } from '../../lib/machine/irq.js';
import {
  F_VERSION_1,
  STATUS_ACKNOWLEDGE,
  STATUS_DRIVER,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  featureBit,
} from '../../lib/virtio/constants.js';
import { COMMON, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG } from '../../lib/virtio/pci/constants.js';
import { DriverQueue, type GuestAllocator, type UsedElement, type Buffer } from '../virtio/driver.js';

export function cfgAddress(device: number, reg: number): number {
  return (0x8000_0000 | (device << 11) | (reg & 0xfc)) >>> 0;
}

/** Configuration mechanism #1 accesses, as port I/O. */
export class ConfigPorts {
  constructor(readonly pio: Bus) {}
  read(device: number, reg: number, size: 1 | 2 | 4): number {
    this.pio.write(0xcf8, 4, cfgAddress(device, reg));
    return this.pio.read(0xcfc + (reg & 3), size);
  }
  write(device: number, reg: number, size: 1 | 2 | 4, value: number): void {
    this.pio.write(0xcf8, 4, cfgAddress(device, reg));
    this.pio.write(0xcfc + (reg & 3), size, value);
  }
}

export interface FoundBar {
  index: number;
  address: number;
  size: number;
  is64: boolean;
}

export interface FoundCap {
  offset: number;
  id: number;
  /** For virtio vendor capabilities. */
  cfgType?: number;
  bar?: number;
  barOffset?: number;
  length?: number;
  notifyMultiplier?: number;
}

/** Size every memory BAR the way Linux does (decode off, write ones, read mask, restore). */
export function sizeBars(cfg: ConfigPorts, device: number): FoundBar[] {
  const bars: FoundBar[] = [];
  const cmd = cfg.read(device, 0x04, 2);
  cfg.write(device, 0x04, 2, cmd & ~0x3);
  for (let i = 0; i < 6; i++) {
    const reg = 0x10 + 4 * i;
    const orig = cfg.read(device, reg, 4);
    cfg.write(device, reg, 4, 0xffffffff);
    const mask = cfg.read(device, reg, 4);
    cfg.write(device, reg, 4, orig);
    if (mask === 0) continue;
    const is64 = (mask & 0x6) === 0x4;
    let size: number;
    let address = orig & ~0xf;
    if (is64) {
      const origHigh = cfg.read(device, reg + 4, 4);
      cfg.write(device, reg + 4, 4, 0xffffffff);
      const maskHigh = cfg.read(device, reg + 4, 4);
      cfg.write(device, reg + 4, 4, origHigh);
      const full = BigInt(maskHigh) << 32n | BigInt((mask & ~0xf) >>> 0);
      size = Number((~full & 0xffff_ffff_ffff_ffffn) + 1n);
      address = origHigh * 0x1_0000_0000 + (address >>> 0);
    } else {
      size = ((~(mask & ~0xf)) >>> 0) + 1;
      address >>>= 0;
    }
    bars.push({ index: i, address, size, is64 });
    if (is64) i++;
  }
  cfg.write(device, 0x04, 2, cmd);
  return bars;
}

export function walkCapabilities(cfg: ConfigPorts, device: number): FoundCap[] {
  const caps: FoundCap[] = [];
  if (!(cfg.read(device, 0x06, 2) & 0x10)) return caps;
  let at = cfg.read(device, 0x34, 1) & 0xfc;
  for (let guard = 0; at !== 0 && guard < 48; guard++) {
    const id = cfg.read(device, at, 1);
    const cap: FoundCap = { offset: at, id };
    if (id === 0x09) {
      cap.cfgType = cfg.read(device, at + 3, 1);
      cap.bar = cfg.read(device, at + 4, 1);
      cap.barOffset = cfg.read(device, at + 8, 4);
      cap.length = cfg.read(device, at + 12, 4);
      if (cap.cfgType === VIRTIO_PCI_CAP_NOTIFY_CFG) cap.notifyMultiplier = cfg.read(device, at + 16, 4);
    }
    caps.push(cap);
    at = cfg.read(device, at + 1, 1) & 0xfc;
  }
  return caps;
}

/** An MsiSink that records messages and lets a test wait for the next one. */
export class MsiSpy implements MsiSink {
  readonly messages: { address: number; data: number }[] = [];
  private waiters: (() => void)[] = [];
  sendMsi(address: number, data: number): void {
    this.messages.push({ address, data });
    for (const w of this.waiters.splice(0)) w();
  }
  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }
}

/** MSI data for vector v: the test uses 0x40 + v as the "CPU vector" so messages name their source. */
export const msiData = (v: number): number => 0x40 + v;
export const MSI_ADDRESS = 0xfee0_0000;

export class VirtioPciTestDriver {
  readonly bars: FoundBar[];
  readonly caps: FoundCap[];
  queues: DriverQueue[] = [];
  features = 0n;
  private common!: number;
  private isr!: number;
  private deviceCfg: number | undefined;
  private notifyBase!: number;
  private notifyMultiplier!: number;
  private notifyOffsets: number[] = [];

  constructor(
    readonly cfg: ConfigPorts,
    readonly mmio: Bus,
    readonly device: number,
    readonly mem: GuestMemory,
    readonly alloc: GuestAllocator,
  ) {
    this.bars = sizeBars(cfg, device);
    this.caps = walkCapabilities(cfg, device);
    const barAt = (cap: FoundCap): number => {
      const bar = this.bars.find((b) => b.index === cap.bar);
      if (!bar) throw new Error(`capability at 0x${cap.offset.toString(16)} names BAR${cap.bar}, which is not implemented`);
      return bar.address + cap.barOffset!;
    };
    const find = (type: number): FoundCap | undefined => this.caps.find((c) => c.id === 0x09 && c.cfgType === type);
    const common = find(VIRTIO_PCI_CAP_COMMON_CFG);
    const notify = find(VIRTIO_PCI_CAP_NOTIFY_CFG);
    const isr = find(VIRTIO_PCI_CAP_ISR_CFG);
    if (!common || !notify || !isr) throw new Error('virtio-pci capabilities missing');
    this.common = barAt(common);
    this.isr = barAt(isr);
    this.notifyBase = barAt(notify);
    this.notifyMultiplier = notify.notifyMultiplier!;
    const dev = find(VIRTIO_PCI_CAP_DEVICE_CFG);
    if (dev) this.deviceCfg = barAt(dev);
    // Memory decoding and bus mastering, as pci_enable_device + pci_set_master do.
    cfg.write(device, 0x04, 2, cfg.read(device, 0x04, 2) | 0x6);
  }

  c8(off: number): number { return this.mmio.read(this.common + off, 1); }
  c16(off: number): number { return this.mmio.read(this.common + off, 2); }
  c32(off: number): number { return this.mmio.read(this.common + off, 4); }
  w8(off: number, v: number): void { this.mmio.write(this.common + off, 1, v); }
  w16(off: number, v: number): void { this.mmio.write(this.common + off, 2, v); }
  w32(off: number, v: number): void { this.mmio.write(this.common + off, 4, v >>> 0); }

  deviceConfig(offset: number, size: 1 | 2 | 4): number {
    if (this.deviceCfg === undefined) throw new Error('no device config');
    return this.mmio.read(this.deviceCfg + offset, size);
  }

  readIsr(): number {
    return this.mmio.read(this.isr, 1);
  }

  /** Program MSI-X: table entries (address MSI_ADDRESS, data msiData(v)), unmasked, then enable. */
  enableMsix(vectors: number): void {
    const cap = this.caps.find((c) => c.id === 0x11);
    if (!cap) throw new Error('no MSI-X capability');
    const control = this.cfg.read(this.device, cap.offset + 2, 2);
    const tableSize = (control & 0x7ff) + 1;
    if (vectors > tableSize) throw new Error(`MSI-X table has ${tableSize} entries, wanted ${vectors}`);
    const tableReg = this.cfg.read(this.device, cap.offset + 4, 4);
    const bar = this.bars.find((b) => b.index === (tableReg & 7))!;
    const table = bar.address + (tableReg & ~7);
    for (let v = 0; v < vectors; v++) {
      this.mmio.write(table + 16 * v, 4, MSI_ADDRESS);
      this.mmio.write(table + 16 * v + 4, 4, 0);
      this.mmio.write(table + 16 * v + 8, 4, msiData(v));
      this.mmio.write(table + 16 * v + 12, 4, 0);
    }
    this.cfg.write(this.device, cap.offset + 2, 2, control | 0x8000);
  }

  msixTable(): { table: number; pba: number; capOffset: number } {
    const cap = this.caps.find((c) => c.id === 0x11)!;
    const tableReg = this.cfg.read(this.device, cap.offset + 4, 4);
    const pbaReg = this.cfg.read(this.device, cap.offset + 8, 4);
    const barAddr = (reg: number): number => this.bars.find((b) => b.index === (reg & 7))!.address;
    return { table: barAddr(tableReg) + (tableReg & ~7), pba: barAddr(pbaReg) + (pbaReg & ~7), capOffset: cap.offset };
  }

  /** The §3.1.1 initialisation through the common configuration; queue i gets MSI-X vector i (if `vectors`). */
  init(options: { msix?: boolean } = {}): bigint {
    const useMsix = options.msix ?? true;
    this.w8(COMMON.DeviceStatus, 0);
    this.w8(COMMON.DeviceStatus, STATUS_ACKNOWLEDGE);
    this.w8(COMMON.DeviceStatus, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    this.w32(COMMON.DeviceFeatureSelect, 0);
    const lo = BigInt(this.c32(COMMON.DeviceFeature));
    this.w32(COMMON.DeviceFeatureSelect, 1);
    const hi = BigInt(this.c32(COMMON.DeviceFeature));
    const offered = (hi << 32n) | lo;
    if (!(offered & featureBit(F_VERSION_1))) throw new Error('device does not offer VERSION_1');
    this.features = offered;
    this.w32(COMMON.DriverFeatureSelect, 0);
    this.w32(COMMON.DriverFeature, Number(offered & 0xffffffffn));
    this.w32(COMMON.DriverFeatureSelect, 1);
    this.w32(COMMON.DriverFeature, Number(offered >> 32n));
    this.w8(COMMON.DeviceStatus, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (!(this.c8(COMMON.DeviceStatus) & STATUS_FEATURES_OK)) throw new Error('device refused features');
    const n = this.c16(COMMON.NumQueues);
    if (useMsix) {
      this.enableMsix(n + 1);
      this.w16(COMMON.MsixConfig, n);
      if (this.c16(COMMON.MsixConfig) !== n) throw new Error('msix_config vector not accepted');
    }
    this.queues = [];
    for (let i = 0; i < n; i++) {
      this.w16(COMMON.QueueSelect, i);
      const size = this.c16(COMMON.QueueSize);
      const desc = this.alloc.alloc(16 * size, 16);
      const avail = this.alloc.alloc(6 + 2 * size, 2);
      const used = this.alloc.alloc(6 + 8 * size, 4);
      this.mem.fill(desc, 16 * size);
      this.mem.fill(avail, 6 + 2 * size);
      this.mem.fill(used, 6 + 8 * size);
      this.w32(COMMON.QueueDesc, desc);
      this.w32(COMMON.QueueDesc + 4, 0);
      this.w32(COMMON.QueueDriver, avail);
      this.w32(COMMON.QueueDriver + 4, 0);
      this.w32(COMMON.QueueDevice, used);
      this.w32(COMMON.QueueDevice + 4, 0);
      if (useMsix) {
        this.w16(COMMON.QueueMsixVector, i);
        if (this.c16(COMMON.QueueMsixVector) !== i) throw new Error(`queue ${i}: MSI-X vector not accepted`);
      }
      this.notifyOffsets[i] = this.c16(COMMON.QueueNotifyOff);
      this.w16(COMMON.QueueEnable, 1);
      this.queues.push(new DriverQueue(this.mem, i, size, desc, avail, used));
    }
    this.w8(COMMON.DeviceStatus, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    return this.features;
  }

  get status(): number {
    return this.c8(COMMON.DeviceStatus);
  }

  notify(queue: number): void {
    this.mmio.write(this.notifyBase + this.notifyOffsets[queue]! * this.notifyMultiplier, 2, queue);
  }

  /** Submit a chain, notify, wait (on `wake`, e.g. the MSI spy) for its completion. */
  async run(queue: number, bufs: Buffer[], wake: (ms: number) => Promise<void>, timeoutMs = 10_000): Promise<UsedElement> {
    const q = this.queues[queue]!;
    const head = q.add(bufs);
    this.notify(queue);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = q.popUsed();
      if (e) {
        if (e.id !== head) throw new Error(`expected head ${head}, got ${e.id}`);
        q.recycle(head);
        return e;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for queue ${queue}`);
      await wake(5);
    }
  }
}
