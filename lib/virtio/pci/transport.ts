/**
 * Modern (non-transitional) virtio-pci transport, virtio 1.x §4.1: a PCI function 1af4:(1040 + device ID)
 * whose vendor capabilities point the driver at the common configuration, ISR, device configuration and
 * notification structures in BAR4, with an MSI-X table in BAR1 and INTx + ISR as the fallback.
 *
 * The registers map onto VirtioCore exactly as virtio-mmio's do; only interrupt delivery differs: with MSI-X
 * enabled, a queue's interrupt is its queue_msix_vector (config changes use msix_config), otherwise the ISR
 * bit is set and INTx asserted until the driver reads the ISR.
 *
 * Notifications are MMIO writes; with AcceleratorFastPaths (KVM) they are ioeventfds instead (no exit per write,
 * see fast-path.ts), and MSI-X messages go through the accelerator's MSI channel (irqfd + MSI routes). MSI-X
 * masking and pending bits stay in MsixCapability either way: it decides whether a message is sent at all.
 */
import type { BusDevice } from '../../machine/bus.js';
import type { GuestMemory } from '../../machine/guest-memory.js';
import type { IrqLine, MsiSink } from '../../machine/irq.js';
import { PCI_CAP_ID_VENDOR, PCI_CLASS_NETWORK_ETHERNET, PCI_CLASS_OTHERS, PCI_CLASS_STORAGE_OTHER } from '../../pci/constants.js';
import { MsixCapability } from '../../pci/msix.js';
import type { AcceleratorFastPaths, MsiChannel } from '../../accel/accelerator.js';
import type { PciFunction } from '../../pci/pci-function.js';
import { VirtioCore } from '../core.js';
import type { VirtioDevice } from '../device.js';
import {
  COMMON,
  COMMON_CFG_SIZE,
  COMMON_OFFSET,
  DEVICE_CFG_OFFSET,
  ISR_CONFIG,
  ISR_OFFSET,
  ISR_QUEUE,
  MSIX_BAR,
  NOTIFY_OFF_MULTIPLIER,
  NOTIFY_OFFSET,
  REGION_SIZE,
  VIRTIO_BAR,
  VIRTIO_BAR_SIZE,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_DEVICE_ID_BASE,
  VIRTIO_PCI_REVISION,
  VIRTIO_PCI_SUBSYSTEM_ID,
  VIRTIO_PCI_VENDOR_ID,
} from './constants.js';
import { NotifyFastPath, ObservedPciFunction } from './fast-path.js';

export interface VirtioPciOptions {
  /** Where MSI-X messages go (Accelerator.msi). */
  msi: MsiSink;
  /** Accelerator shortcuts: notify registers become ioeventfds, MSI-X goes through an irqfd channel. */
  fastPaths?: AcceleratorFastPaths | undefined;
  /**
   * INTA# for drivers that do not enable MSI-X (pci=nomsi, no CONFIG_PCI_MSI, vector allocation failed);
   * without it the function has no interrupt pin and such drivers get no interrupts.
   */
  intx?: IrqLine;
  /** Power-on interrupt line register (0x3c): the IRQ the platform routes INTA# to, as firmware leaves it. */
  intxLine?: number;
  log?: (message: string) => void;
  name?: string;
}

const TWO_POW_32 = 0x1_0000_0000;

/** PCI class code per virtio device type (Linux does not care; lspci does). */
function classCodeFor(deviceId: number): number {
  if (deviceId === 1) return PCI_CLASS_NETWORK_ETHERNET;
  if (deviceId === 2) return PCI_CLASS_STORAGE_OTHER;
  return PCI_CLASS_OTHERS;
}

export class VirtioPciTransport {
  readonly core: VirtioCore;
  readonly pci: PciFunction;
  readonly msix: MsixCapability;
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private queueSelect = 0;
  private msixConfig = VIRTIO_MSI_NO_VECTOR;
  private readonly queueVectors: number[];
  private readonly notifyFastPath: NotifyFastPath | undefined;
  private readonly msiChannel: MsiChannel | undefined;
  /** ISR status (§4.1.4.5): bit 0 queue, bit 1 configuration; read-to-clear. */
  private isr = 0;
  private readonly name: string;

  constructor(readonly device: VirtioDevice, memory: GuestMemory, private readonly options: VirtioPciOptions) {
    this.name = options.name ?? `virtio-pci(device ${device.deviceId})`;
    const log = options.log ?? ((m: string) => console.error(m));
    this.core = new VirtioCore(device, memory, {
      signal: (kind, index) => this.signal(kind, index),
      log,
      name: this.name,
    });
    const queues = device.queueMaxSizes.length;
    if (queues * NOTIFY_OFF_MULTIPLIER > REGION_SIZE) throw new RangeError(`${this.name}: too many queues (${queues})`);
    if (device.configSize > REGION_SIZE) throw new RangeError(`${this.name}: device config of ${device.configSize} bytes does not fit`);
    this.queueVectors = new Array<number>(queues).fill(VIRTIO_MSI_NO_VECTOR);

    const pci = new ObservedPciFunction(this.name, {
      vendorId: VIRTIO_PCI_VENDOR_ID,
      deviceId: VIRTIO_PCI_DEVICE_ID_BASE + device.deviceId,
      classCode: classCodeFor(device.deviceId),
      revision: VIRTIO_PCI_REVISION,
      subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
      subsystemId: VIRTIO_PCI_SUBSYSTEM_ID,
      interruptPin: options.intx ? 1 : 0,
      ...(options.intxLine === undefined ? {} : { interruptLine: options.intxLine }),
    }, { log });
    this.pci = pci;

    // One vector per queue plus one for configuration changes: Linux's preferred layout.
    const vectors = queues + 1;
    this.msiChannel = options.fastPaths?.createMsiChannel(vectors);
    this.msix = new MsixCapability(this.pci, { vectors, bar: MSIX_BAR, msi: this.msiChannel ?? options.msi });
    this.pci.addBar({ index: MSIX_BAR, kind: 'mem32', size: Math.max(0x1000, nextPowerOfTwo(this.msix.regionSize)), device: this.msix.barDevice, name: 'msix' });
    const virtioBar: BusDevice = { read: (o, s) => this.readBar(o, s), write: (o, s, v) => this.writeBar(o, s, v) };
    this.pci.addBar({ index: VIRTIO_BAR, kind: 'mem64', size: VIRTIO_BAR_SIZE, prefetchable: false, device: virtioBar, name: 'virtio' });

    this.addVirtioCap(VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFFSET, COMMON_CFG_SIZE);
    this.addVirtioCap(VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFFSET, Math.max(2, queues * NOTIFY_OFF_MULTIPLIER), NOTIFY_OFF_MULTIPLIER);
    this.addVirtioCap(VIRTIO_PCI_CAP_ISR_CFG, ISR_OFFSET, 1);
    if (device.configSize > 0) this.addVirtioCap(VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_CFG_OFFSET, device.configSize);
    this.addPciCfgCap();

    if (options.intx) this.pci.connectIntx(options.intx);

    if (options.fastPaths) {
      const fast = new NotifyFastPath(options.fastPaths, pci, VIRTIO_BAR, queues, (q) => this.core.notify(q), log);
      this.notifyFastPath = fast;
      pci.onChange = () => fast.sync();
    }
  }

  /** Notifications that came through the accelerator's fast path (0 without one). */
  get fastNotifications(): number {
    return this.notifyFastPath?.signals ?? 0;
  }

  /** Release accelerator resources (ioeventfds, irqfds); the function itself stays usable through the buses. */
  closeFastPaths(): void {
    this.notifyFastPath?.close();
    this.msiChannel?.dispose();
  }

  /** True while INTA# is asserted (ISR non-zero, MSI-X off, COMMAND.Interrupt-Disable clear). */
  get interruptPending(): boolean {
    return this.pci.intxAsserted;
  }

  /** Machine reset: config space, MSI-X table and the virtio state back to power-on. */
  reset(): void {
    this.pci.reset();
    this.msix.reset();
    this.resetTransport();
    this.core.reset();
  }

  // ---- BAR4: virtio structures ---------------------------------------------------------------------

  private readBar(offset: number, size: number): number {
    if (offset < COMMON_OFFSET + REGION_SIZE) return this.readCommon(offset - COMMON_OFFSET, size);
    if (offset < ISR_OFFSET + REGION_SIZE) return offset === ISR_OFFSET ? this.readIsr() : 0;
    if (offset < DEVICE_CFG_OFFSET + REGION_SIZE) return this.core.readConfig(offset - DEVICE_CFG_OFFSET, size);
    return 0; // notify region: write-only
  }

  private writeBar(offset: number, size: number, value: number): void {
    if (offset < COMMON_OFFSET + REGION_SIZE) this.writeCommon(offset - COMMON_OFFSET, size, value >>> 0);
    else if (offset < ISR_OFFSET + REGION_SIZE) return; // ISR is read-only
    else if (offset < DEVICE_CFG_OFFSET + REGION_SIZE) this.core.writeConfig(offset - DEVICE_CFG_OFFSET, size, value);
    else {
      const rel = offset - NOTIFY_OFFSET;
      // queue_notify_off = queue index, so the address names the queue (the value is the index too).
      if (rel % NOTIFY_OFF_MULTIPLIER === 0) this.core.notify(rel / NOTIFY_OFF_MULTIPLIER);
      // Still a bus write: maybe BAR4 moved without our noticing (e.g. mapped by attach()).
      this.notifyFastPath?.sync();
    }
  }

  private readIsr(): number {
    // Reading the ISR acknowledges it (§4.1.4.5.1).
    const v = this.isr;
    this.isr = 0;
    this.pci.setIntxLevel(false);
    return v;
  }

  private readCommon(offset: number, size: number): number {
    const q = this.core.queues[this.queueSelect];
    const qi = this.queueSelect;
    switch (size === 4 ? offset : -1) {
      case COMMON.DeviceFeatureSelect: return this.deviceFeatureSelect;
      case COMMON.DeviceFeature: return this.core.deviceFeatureWord(this.deviceFeatureSelect);
      case COMMON.DriverFeatureSelect: return this.driverFeatureSelect;
      case COMMON.DriverFeature: return this.driverFeatureWord();
      case COMMON.QueueDesc: return q ? low32(q.descAddr) : 0;
      case COMMON.QueueDesc + 4: return q ? high32(q.descAddr) : 0;
      case COMMON.QueueDriver: return q ? low32(q.driverAddr) : 0;
      case COMMON.QueueDriver + 4: return q ? high32(q.driverAddr) : 0;
      case COMMON.QueueDevice: return q ? low32(q.deviceAddr) : 0;
      case COMMON.QueueDevice + 4: return q ? high32(q.deviceAddr) : 0;
    }
    switch (size === 2 ? offset : -1) {
      case COMMON.MsixConfig: return this.msixConfig;
      case COMMON.NumQueues: return this.core.queues.length;
      case COMMON.QueueSelect: return this.queueSelect;
      case COMMON.QueueSize: return q ? q.size : 0;
      case COMMON.QueueMsixVector: return q ? this.queueVectors[qi]! : VIRTIO_MSI_NO_VECTOR;
      case COMMON.QueueEnable: return q?.ready ? 1 : 0;
      case COMMON.QueueNotifyOff: return q ? qi : 0;
    }
    switch (size === 1 ? offset : -1) {
      case COMMON.DeviceStatus: return this.core.status;
      case COMMON.ConfigGeneration: return this.core.configGeneration & 0xff;
    }
    return 0;
  }

  private writeCommon(offset: number, size: number, value: number): void {
    if (size === 4) {
      switch (offset) {
        case COMMON.DeviceFeatureSelect: this.deviceFeatureSelect = value; return;
        case COMMON.DriverFeatureSelect: this.driverFeatureSelect = value; return;
        case COMMON.DriverFeature: this.core.setDriverFeatureWord(this.driverFeatureSelect, value); return;
        default: this.writeQueueAddress(offset, value); return;
      }
    }
    if (size === 2) {
      const q = this.core.queues[this.queueSelect];
      switch (offset) {
        case COMMON.MsixConfig: this.msixConfig = this.validVector(value); return;
        case COMMON.QueueSelect: this.queueSelect = value; return;
        case COMMON.QueueSize: if (q && !q.ready) q.size = value; return;
        case COMMON.QueueMsixVector: if (q) this.queueVectors[q.index] = this.validVector(value); return;
        case COMMON.QueueEnable:
          // The driver must not write 0 (§4.1.4.3.2); queues stop only through a device reset.
          if (q && (value & 1) && !q.ready) {
            q.ready = true;
            this.core.enableLateQueue(q.index);
          }
          return;
      }
      return;
    }
    if (size === 1 && offset === COMMON.DeviceStatus) {
      this.core.writeStatus(value);
      if ((value & 0xff) === 0) this.resetTransport();
    }
  }

  private writeQueueAddress(offset: number, value: number): void {
    const q = this.core.queues[this.queueSelect];
    // Ring addresses are frozen while the queue is enabled.
    if (!q || q.ready) return;
    switch (offset) {
      case COMMON.QueueDesc: q.descAddr = setLow(q.descAddr, value); return;
      case COMMON.QueueDesc + 4: q.descAddr = setHigh(q.descAddr, value); return;
      case COMMON.QueueDriver: q.driverAddr = setLow(q.driverAddr, value); return;
      case COMMON.QueueDriver + 4: q.driverAddr = setHigh(q.driverAddr, value); return;
      case COMMON.QueueDevice: q.deviceAddr = setLow(q.deviceAddr, value); return;
      case COMMON.QueueDevice + 4: q.deviceAddr = setHigh(q.deviceAddr, value); return;
    }
  }

  private driverFeatureWord(): number {
    const word = this.driverFeatureSelect;
    if (word > 1) return 0;
    return Number((this.core.driverFeatures >> BigInt(32 * word)) & 0xffff_ffffn);
  }

  /** A vector the table has, or NO_VECTOR: the driver reads back NO_VECTOR to learn the mapping failed. */
  private validVector(v: number): number {
    return v < this.msix.vectors ? v : VIRTIO_MSI_NO_VECTOR;
  }

  private resetTransport(): void {
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
    this.msixConfig = VIRTIO_MSI_NO_VECTOR;
    this.queueVectors.fill(VIRTIO_MSI_NO_VECTOR);
    this.isr = 0;
    this.pci.setIntxLevel(false);
  }

  // ---- interrupts ----------------------------------------------------------------------------------

  /**
   * MSI-X enabled: the queue's (or msix_config's) vector, nothing for NO_VECTOR. MSI-X disabled: set the ISR bit
   * and raise the function's interrupt; PciFunction turns that into INTA# unless COMMAND.Interrupt-Disable is set,
   * and keeps INTA# low whenever MSI-X is enabled. The configuration bit is set in either mode (§4.1.4.5.1).
   */
  private signal(kind: 'queue' | 'config', queueIndex: number): void {
    if (kind === 'config') this.isr |= ISR_CONFIG;
    if (this.msix.enabled) {
      const vector = kind === 'queue' ? this.queueVectors[queueIndex] ?? VIRTIO_MSI_NO_VECTOR : this.msixConfig;
      if (vector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(vector);
      return;
    }
    if (kind === 'queue') this.isr |= ISR_QUEUE;
    this.pci.setIntxLevel(true);
  }

  // ---- capabilities --------------------------------------------------------------------------------

  private addVirtioCap(type: number, offset: number, length: number, notifyMultiplier?: number): void {
    const len = VIRTIO_PCI_CAP_LEN + (notifyMultiplier === undefined ? 0 : 4);
    const bytes = new Uint8Array(len);
    const dv = new DataView(bytes.buffer);
    bytes[2] = len;
    bytes[3] = type;
    bytes[4] = VIRTIO_BAR;
    dv.setUint32(8, offset, true);
    dv.setUint32(12, length, true);
    if (notifyMultiplier !== undefined) dv.setUint32(16, notifyMultiplier, true);
    this.pci.addCapability(PCI_CAP_ID_VENDOR, len, { bytes });
  }

  /**
   * VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): a window through configuration space into any BAR. The driver writes
   * bar, offset and length (1, 2 or 4), then reads or writes pci_cfg_data.
   */
  private addPciCfgCap(): void {
    const len = VIRTIO_PCI_CAP_LEN + 4;
    const bytes = new Uint8Array(len);
    bytes[2] = len;
    bytes[3] = VIRTIO_PCI_CAP_PCI_CFG;
    const writeMask = new Uint8Array(len);
    writeMask[4] = 0xff; // bar
    writeMask.fill(0xff, 8, 20); // offset, length, pci_cfg_data
    let capOffset = 0;
    const window = (): { device: BusDevice; offset: number; length: number } | undefined => {
      const bar = this.pci.barDevice(this.pci.get8(capOffset + 4));
      const offset = this.pci.get32(capOffset + 8);
      const length = this.pci.get32(capOffset + 12);
      if (!bar || (length !== 1 && length !== 2 && length !== 4) || offset % length !== 0 || offset + length > bar.size) return undefined;
      return { device: bar.device, offset, length };
    };
    capOffset = this.pci.addCapability(PCI_CAP_ID_VENDOR, len, {
      bytes,
      writeMask,
      hooks: {
        read: (rel) => {
          if (rel < 16) return undefined;
          const w = window();
          return w ? w.device.read(w.offset, w.length) : 0;
        },
        afterWrite: (rel) => {
          if (rel < 16) return;
          const w = window();
          if (w) w.device.write(w.offset, w.length, this.pci.get32(capOffset + 16) & (w.length === 4 ? 0xffffffff : (1 << (8 * w.length)) - 1));
        },
      },
    });
  }
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
function low32(v: number): number {
  return v % TWO_POW_32;
}
function high32(v: number): number {
  return Math.floor(v / TWO_POW_32);
}
function setLow(old: number, low: number): number {
  return high32(old) * TWO_POW_32 + (low >>> 0);
}
function setHigh(old: number, high: number): number {
  // Above 2^53 the Number is inexact, but GuestMemory rejects any unsafe integer, so it never maps to RAM.
  return (high >>> 0) * TWO_POW_32 + low32(old);
}
