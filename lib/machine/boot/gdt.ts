/**
 * The boot GDT and the segment descriptions that go with it.
 *
 * Linux's boot protocol requires __BOOT_CS = 0x10 (flat execute/read) and __BOOT_DS = 0x18 (flat read/write),
 * so the boot CS selector is 0x10 in both entry modes; the code segment of the other width sits at 0x08 so a
 * kernel can switch between 32-bit and 64-bit code without a GDT of its own. The TSS at 0x20 exists because
 * VT-x refuses to enter a guest whose TR is unusable. Every descriptor is written with its accessed/busy bit
 * already set, so the bytes in guest memory equal what the CPU's hidden segment state says.
 */

import type { GuestMemory } from '../guest-memory.js';
import { BOOT_GDT_ADDR, BOOT_GDT_MAX_ENTRIES, BOOT_IDT_ADDR, BOOT_TSS_ADDR, BOOT_TSS_SIZE } from '../layout.js';
import type { CpuMode, SegmentState, SystemRegisters, TableRegister } from './cpu-state.js';

export const BOOT_CS_SELECTOR = 0x10;
export const BOOT_DS_SELECTOR = 0x18;
export const ALT_CS_SELECTOR = 0x08;
export const BOOT_TSS_SELECTOR = 0x20;

/** Descriptor type values (bits 40..43) with the accessed bit (or TSS busy bit) set. */
export const TYPE_CODE_EXEC_READ_ACCESSED = 0xb;
export const TYPE_DATA_READ_WRITE_ACCESSED = 0x3;
export const TYPE_TSS_BUSY = 0xb;
export const TYPE_LDT = 0x2;

const FLAT_LIMIT = 0xffff_ffff;

function flat(selector: number, type: number, db: boolean, l: boolean): SegmentState {
  return { base: 0, limit: FLAT_LIMIT, selector, type, present: true, dpl: 0, db, s: true, l, g: true, avl: false, unusable: false };
}

export function code64Segment(selector: number): SegmentState {
  return flat(selector, TYPE_CODE_EXEC_READ_ACCESSED, false, true);
}

export function code32Segment(selector: number): SegmentState {
  return flat(selector, TYPE_CODE_EXEC_READ_ACCESSED, true, false);
}

export function dataSegment(selector: number): SegmentState {
  return flat(selector, TYPE_DATA_READ_WRITE_ACCESSED, true, false);
}

export function tssSegment(selector: number): SegmentState {
  return {
    base: BOOT_TSS_ADDR, limit: BOOT_TSS_SIZE - 1, selector, type: TYPE_TSS_BUSY, present: true, dpl: 0,
    db: false, s: false, l: false, g: false, avl: false, unusable: false,
  };
}

/** The LDTR at boot: no LDT. */
export function unusableLdt(): SegmentState {
  return { base: 0, limit: 0, selector: 0, type: TYPE_LDT, present: false, dpl: 0, db: false, s: false, l: false, g: false, avl: false, unusable: true };
}

/** Encodes a segment description as an 8-byte descriptor (plus 8 more for a long-mode system descriptor). */
export function encodeDescriptor(seg: SegmentState, longModeSystem = false): Uint8Array {
  let rawLimit = seg.limit;
  if (seg.g) {
    if ((seg.limit & 0xfff) !== 0xfff) throw new RangeError(`limit 0x${seg.limit.toString(16)} is not 4 KiB granular`);
    rawLimit = seg.limit >>> 12;
  }
  if (rawLimit > 0xfffff) throw new RangeError(`limit 0x${seg.limit.toString(16)} needs G=1`);
  const lo = (rawLimit & 0xffff) | ((seg.base & 0xffff) << 16);
  const hi =
    ((seg.base >>> 16) & 0xff) |
    ((seg.type & 0xf) << 8) |
    (Number(seg.s) << 12) |
    ((seg.dpl & 3) << 13) |
    (Number(seg.present) << 15) |
    (((rawLimit >>> 16) & 0xf) << 16) |
    (Number(seg.avl) << 20) |
    (Number(seg.l) << 21) |
    (Number(seg.db) << 22) |
    (Number(seg.g) << 23) |
    (((seg.base >>> 24) & 0xff) << 24);
  const out = new Uint8Array(longModeSystem ? 16 : 8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, lo >>> 0, true);
  dv.setUint32(4, hi >>> 0, true);
  if (longModeSystem) dv.setUint32(8, Math.floor(seg.base / 0x1_0000_0000) >>> 0, true);
  return out;
}

/** Decodes a descriptor the way a segment load fills the hidden part (limit scaled by G). */
export function decodeDescriptor(bytes: Uint8Array, selector: number, longModeSystem = false): SegmentState {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const rawLimit = (lo & 0xffff) | (hi & 0xf_0000);
  const g = ((hi >>> 23) & 1) === 1;
  let base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff00_0000)) >>> 0;
  if (longModeSystem) base += dv.getUint32(8, true) * 0x1_0000_0000;
  return {
    base,
    limit: g ? ((rawLimit << 12) | 0xfff) >>> 0 : rawLimit,
    selector,
    type: (hi >>> 8) & 0xf,
    s: ((hi >>> 12) & 1) === 1,
    dpl: (hi >>> 13) & 3,
    present: ((hi >>> 15) & 1) === 1,
    avl: ((hi >>> 20) & 1) === 1,
    l: ((hi >>> 21) & 1) === 1,
    db: ((hi >>> 22) & 1) === 1,
    g,
    unusable: false,
  };
}

export interface BootGdt {
  /** Descriptor table bytes, starting with the null descriptor. */
  bytes: Uint8Array;
  gdtr: TableRegister;
  cs: SegmentState;
  ds: SegmentState;
  tr: SegmentState;
  /** The code segment of the other width at ALT_CS_SELECTOR. */
  altCs: SegmentState;
}

/** Builds the boot GDT for an entry mode (see file comment for the selector layout). */
export function buildBootGdt(mode: CpuMode): BootGdt {
  const long = mode === 'long';
  const cs = long ? code64Segment(BOOT_CS_SELECTOR) : code32Segment(BOOT_CS_SELECTOR);
  const altCs = long ? code32Segment(ALT_CS_SELECTOR) : code64Segment(ALT_CS_SELECTOR);
  const ds = dataSegment(BOOT_DS_SELECTOR);
  const tr = tssSegment(BOOT_TSS_SELECTOR);
  const size = BOOT_TSS_SELECTOR + (long ? 16 : 8);
  if (size > BOOT_GDT_MAX_ENTRIES * 8) throw new Error('boot GDT outgrew its slot in the memory layout');
  const bytes = new Uint8Array(size);
  bytes.set(encodeDescriptor(altCs), ALT_CS_SELECTOR);
  bytes.set(encodeDescriptor(cs), BOOT_CS_SELECTOR);
  bytes.set(encodeDescriptor(ds), BOOT_DS_SELECTOR);
  bytes.set(encodeDescriptor(tr, long), BOOT_TSS_SELECTOR);
  return { bytes, gdtr: { base: BOOT_GDT_ADDR, limit: size - 1 }, cs, ds, tr, altCs };
}

export interface DescriptorTables {
  gdt: BootGdt;
  idtr: TableRegister;
}

/**
 * Writes the boot GDT, an IDT holding one null gate (any exception before the kernel installs its own IDT
 * ends in a triple fault, which the accelerator reports as a shutdown) and a zeroed TSS.
 */
export function writeDescriptorTables(mem: GuestMemory, mode: CpuMode): DescriptorTables {
  const gdt = buildBootGdt(mode);
  mem.fill(BOOT_GDT_ADDR, BOOT_GDT_MAX_ENTRIES * 8, 0);
  mem.write(BOOT_GDT_ADDR, gdt.bytes);
  mem.fill(BOOT_IDT_ADDR, 8, 0);
  mem.fill(BOOT_TSS_ADDR, BOOT_TSS_SIZE, 0);
  return { gdt, idtr: { base: BOOT_IDT_ADDR, limit: 7 } };
}

/** The segment and descriptor-table registers as the tables written by writeDescriptorTables describe them. */
export type BootSegmentRegisters = Pick<SystemRegisters, 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt' | 'gdt' | 'idt'>;

/** CS = the boot code segment, every data segment register = the flat data segment, LDT unusable. */
export function bootSegmentRegisters({ gdt, idtr }: DescriptorTables): BootSegmentRegisters {
  return {
    cs: gdt.cs,
    ds: { ...gdt.ds },
    es: { ...gdt.ds },
    fs: { ...gdt.ds },
    gs: { ...gdt.ds },
    ss: { ...gdt.ds },
    tr: gdt.tr,
    ldt: unusableLdt(),
    gdt: gdt.gdtr,
    idt: idtr,
  };
}
