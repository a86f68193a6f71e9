/**
 * Firmware-less BAR placement: the VMM gives every memory BAR a naturally aligned address in an MMIO window
 * before the guest runs (Linux keeps such assignments when they fit its resource tree).
 */
import type { PciFunction } from './pci-function.js';
import { PCI_BAR_COUNT } from './constants.js';

export class PciBarAllocator {
  private next: number;

  /** [start, end) must not overlap RAM or other devices; 32-bit BARs need end <= 4 GiB. */
  constructor(readonly start: number, readonly end: number) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start) {
      throw new RangeError(`PCI MMIO window 0x${start.toString(16)}-0x${end.toString(16)} is not valid`);
    }
    this.next = start;
  }

  /** Assign addresses to every BAR of `fn`, largest first (keeps the window dense). */
  place(fn: PciFunction): void {
    const bars: { index: number; size: number }[] = [];
    for (let i = 0; i < PCI_BAR_COUNT; i++) {
      const bar = fn.barDevice(i);
      if (bar) bars.push({ index: i, size: bar.size });
    }
    bars.sort((a, b) => b.size - a.size);
    for (const { index, size } of bars) {
      const address = Math.ceil(this.next / size) * size;
      if (address + size > this.end) {
        throw new RangeError(`PCI MMIO window 0x${this.start.toString(16)}-0x${this.end.toString(16)} is full: cannot place ${fn.name} BAR${index} (0x${size.toString(16)} bytes)`);
      }
      fn.setBarAddress(index, address);
      this.next = address + size;
    }
  }
}
