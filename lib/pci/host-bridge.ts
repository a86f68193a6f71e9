/**
 * PCI bus 0 behind configuration mechanism #1: CONFIG_ADDRESS (dword at 0xcf8: enable bit 31, bus 23:16,
 * device 15:11, function 10:8, register 7:2) selects a dword; CONFIG_DATA (0xcfc-0xcff) reads or writes its
 * bytes with byte, word or dword accesses at 0xcfc + offset. A host bridge sits at 00:00.0 (Linux's
 * type-1 sanity check looks for one). Only function 0 of each slot exists; absent functions read all ones.
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import {
  PCI_CLASS_BRIDGE_HOST,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_ENABLE,
  PCI_CONFIG_PORT_COUNT,
  PCI_SLOTS,
} from './constants.js';
import { PciFunction } from './pci-function.js';

/**
 * Host bridge identity: Red Hat's generic "QEMU PCIe host bridge" ID (1b36:0008) has no quirks in Linux, which
 * is what we want from a bridge that only exists to be found.
 */
export const HOST_BRIDGE_VENDOR_ID = 0x1b36;
export const HOST_BRIDGE_DEVICE_ID = 0x0008;

export interface PciAddress {
  bus: number;
  device: number;
  function: number;
}

export class PciHostBridge implements BusDevice {
  private address = 0;
  private readonly slots: (PciFunction | undefined)[] = new Array<PciFunction | undefined>(PCI_SLOTS).fill(undefined);
  readonly hostBridge: PciFunction;

  constructor(options: { log?: (message: string) => void } = {}) {
    this.hostBridge = new PciFunction('pci-host-bridge', {
      vendorId: HOST_BRIDGE_VENDOR_ID,
      deviceId: HOST_BRIDGE_DEVICE_ID,
      classCode: PCI_CLASS_BRIDGE_HOST,
    }, options);
    this.slots[0] = this.hostBridge;
  }

  /** Claim ports 0xcf8-0xcff. */
  attach(pio: Bus): void {
    pio.register(PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_PORT_COUNT, this, 'pci-config');
  }

  /** Put `fn` in the first free slot (or `slot`); returns the device number. */
  addFunction(fn: PciFunction, slot?: number): number {
    const n = slot ?? this.slots.findIndex((s) => s === undefined);
    if (n < 0) throw new RangeError(`PCI bus 0 is full (${PCI_SLOTS} slots): cannot add ${fn.name}`);
    if (!Number.isInteger(n) || n < 0 || n >= PCI_SLOTS) throw new RangeError(`PCI slot ${n} is not 0..${PCI_SLOTS - 1}`);
    if (this.slots[n]) throw new RangeError(`PCI slot ${n} already holds ${this.slots[n]!.name}`);
    this.slots[n] = fn;
    return n;
  }

  /** The slot addFunction(fn) would take, or undefined when the bus is full. */
  freeSlot(): number | undefined {
    const n = this.slots.findIndex((s) => s === undefined);
    return n < 0 ? undefined : n;
  }

  functionAt(device: number): PciFunction | undefined {
    return this.slots[device];
  }

  /** Every function with its address (host bridge included). */
  functions(): { address: PciAddress; fn: PciFunction }[] {
    const out: { address: PciAddress; fn: PciFunction }[] = [];
    this.slots.forEach((fn, device) => { if (fn) out.push({ address: { bus: 0, device, function: 0 }, fn }); });
    return out;
  }

  /** Machine reset: CONFIG_ADDRESS cleared, every function back to its power-on registers. */
  reset(): void {
    this.address = 0;
    for (const fn of this.slots) fn?.reset();
  }

  read(offset: number, size: number): number {
    if (offset < 4) {
      // CONFIG_ADDRESS is a dword register; narrower accesses there belong to other (legacy) mechanisms.
      return offset === 0 && size === 4 ? this.address : ones(size);
    }
    const target = this.selected(offset - 4, size);
    return target ? target.fn.readConfig(target.register, size) : ones(size);
  }

  write(offset: number, size: number, value: number): void {
    if (offset < 4) {
      if (offset === 0 && size === 4) this.address = (value & 0x80fffffc) >>> 0;
      return;
    }
    const target = this.selected(offset - 4, size);
    target?.fn.writeConfig(target.register, size, value);
  }

  /** The function and register CONFIG_ADDRESS selects for a data-port access at byte `dataOffset` (0-3). */
  private selected(dataOffset: number, size: number): { fn: PciFunction; register: number } | undefined {
    const a = this.address;
    if ((a & PCI_CONFIG_ENABLE) === 0 || dataOffset + size > 4) return undefined;
    const bus = (a >>> 16) & 0xff;
    const device = (a >>> 11) & 0x1f;
    const fnNumber = (a >>> 8) & 0x7;
    if (bus !== 0 || fnNumber !== 0) return undefined;
    const fn = this.slots[device];
    return fn ? { fn, register: (a & 0xfc) + dataOffset } : undefined;
  }
}

function ones(size: number): number {
  return size >= 4 ? 0xffffffff : (1 << (8 * size)) - 1;
}
