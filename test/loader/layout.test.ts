import { describe, expect, it } from 'vitest';
import {
  e820Map, E820_RAM, E820_RESERVED, EBDA_START, FOUR_GIB, GiB, HIGH_MEMORY_START, LayoutError, lowRamEnd, MiB,
  MMIO_HOLE_START, ramRegions, CMDLINE_ADDR, CMDLINE_MAX_SIZE, PML4_ADDR, ZERO_PAGE_ADDR, BOOT_GDT_ADDR,
  BOOT_TSS_ADDR, BOOT_TSS_SIZE, BOOT_IDT_ADDR, PD_ADDR, MAX_PAGE_DIRECTORIES, BOOT_STACK_POINTER, IOAPIC_ADDR, LAPIC_ADDR,
  IOAPIC_SIZE, LAPIC_SIZE, MMIO_DEVICE_WINDOW_START, MMIO_DEVICE_WINDOW_END, KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, KVM_TSS_SIZE,
} from '../../lib/machine/layout.js';

describe('memory layout', () => {
  it('maps a small machine as one region with usable/reserved/usable e820 entries', () => {
    expect(ramRegions(64 * MiB)).toEqual([{ guestAddress: 0, size: 64 * MiB }]);
    expect(e820Map(64 * MiB)).toEqual([
      { addr: 0, size: 0x9fc00, type: E820_RAM },
      { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
      { addr: 0x100000, size: 63 * MiB, type: E820_RAM },
    ]);
  });

  it('splits memory larger than the MMIO hole into low RAM and RAM at 4 GiB', () => {
    const mem = 4 * GiB;
    const low = MMIO_HOLE_START;
    expect(lowRamEnd(mem)).toBe(low);
    expect(ramRegions(mem)).toEqual([
      { guestAddress: 0, size: low },
      { guestAddress: FOUR_GIB, size: mem - low },
    ]);
    const e = e820Map(mem);
    expect(e).toHaveLength(4);
    expect(e[2]).toEqual({ addr: HIGH_MEMORY_START, size: low - HIGH_MEMORY_START, type: E820_RAM });
    expect(e[3]).toEqual({ addr: FOUR_GIB, size: mem - low, type: E820_RAM });
    // total usable RAM + reserved legacy area = configured memory
    expect(e.reduce((n, x) => n + x.size, 0)).toBe(mem);
  });

  it('memory exactly at the hole start needs no high region', () => {
    expect(ramRegions(MMIO_HOLE_START)).toHaveLength(1);
    expect(e820Map(MMIO_HOLE_START)).toHaveLength(3);
  });

  it('keeps every boot structure inside low memory and apart from each other', () => {
    const ranges: [string, number, number][] = [
      ['gdt', BOOT_GDT_ADDR, BOOT_IDT_ADDR],
      ['idt', BOOT_IDT_ADDR, BOOT_IDT_ADDR + 8],
      ['tss', BOOT_TSS_ADDR, BOOT_TSS_ADDR + BOOT_TSS_SIZE],
      ['zero page', ZERO_PAGE_ADDR, ZERO_PAGE_ADDR + 0x1000],
      ['stack', BOOT_STACK_POINTER - 0x1000 + 0x10, BOOT_STACK_POINTER],
      ['page tables', PML4_ADDR, PD_ADDR + MAX_PAGE_DIRECTORIES * 0x1000],
      ['cmdline', CMDLINE_ADDR, CMDLINE_ADDR + CMDLINE_MAX_SIZE],
    ];
    for (const [a, s1, e1] of ranges) {
      expect(e1, a).toBeLessThanOrEqual(EBDA_START);
      for (const [b, s2, e2] of ranges) if (a !== b) expect(s1 < e2 && s2 < e1, `${a} overlaps ${b}`).toBe(false);
    }
    expect(IOAPIC_ADDR).toBeGreaterThanOrEqual(MMIO_HOLE_START);
    expect(LAPIC_ADDR).toBeGreaterThanOrEqual(MMIO_HOLE_START);
    // hole contents: device window, IOAPIC, LAPIC and KVM's private pages do not overlap
    const hole: [string, number, number][] = [
      ['devices', MMIO_DEVICE_WINDOW_START, MMIO_DEVICE_WINDOW_END],
      ['ioapic', IOAPIC_ADDR, IOAPIC_ADDR + IOAPIC_SIZE],
      ['lapic', LAPIC_ADDR, LAPIC_ADDR + LAPIC_SIZE],
      ['kvm identity map', KVM_IDENTITY_MAP_ADDR, KVM_IDENTITY_MAP_ADDR + 0x1000],
      ['kvm tss', KVM_TSS_ADDR, KVM_TSS_ADDR + KVM_TSS_SIZE],
    ];
    for (const [a, s1, e1] of hole) {
      expect(s1, a).toBeGreaterThanOrEqual(MMIO_HOLE_START);
      expect(e1, a).toBeLessThanOrEqual(FOUR_GIB);
      for (const [b, s2, e2] of hole) if (a !== b) expect(s1 < e2 && s2 < e1, `${a} overlaps ${b}`).toBe(false);
    }
  });

  it('rejects memory sizes that are not whole MiB or below the minimum', () => {
    expect(() => e820Map(8 * MiB)).toThrow(LayoutError);
    expect(() => e820Map(8 * MiB)).toThrow(/at least 16 MiB/);
    expect(() => ramRegions(32 * MiB + 1)).toThrow(/whole number of MiB/);
    expect(() => ramRegions(Number.NaN)).toThrow(LayoutError);
  });
});
