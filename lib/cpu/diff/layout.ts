/**
 * The guest image shared by the KVM reference and the interpreter: a 64-bit CPL3 environment in 2 MiB of RAM.
 * Supervisor pages hold the GDT, IDT, TSS, kernel stack, exception stubs and 4 KiB page tables; user pages hold
 * the test code (read-only) and two data pages (stack included). The page after the data is not present, so
 * accesses that run off the data raise #PF on both sides. Every IDT vector points at a CPL0 stub doing
 * `out 0xC0+vector, al` — the exception reaches the VMM as a port write without changing any GPR.
 */
import type { SegmentState, SregsState } from '../state.js';

export const RAM_SIZE = 0x200000;
export const GDT = 0x1000, IDT = 0x2000, TSS = 0x3000, STUBS = 0x4000, KSTACK_TOP = 0x7000;
export const PML4 = 0x8000, PDPT = 0x9000, PD = 0xa000, PT = 0xb000;
export const CODE = 0x10000, CODE_SIZE = 0x1000;
export const DATA = 0x20000, DATA_SIZE = 0x2000;
/** Test end markers are `out MARKER_PORT + k, al`; exception stubs use EXC_PORT + vector. */
export const MARKER_PORT = 0xe0, EXC_PORT = 0xc0;
export const SEL_KCODE = 0x08, SEL_KDATA = 0x10, SEL_UDATA = 0x1b, SEL_UCODE = 0x23, SEL_TSS = 0x28;

/** Writes the system structures and page tables into `ram` (physical = linear). */
export function buildImage(ram: Uint8Array): void {
  ram.fill(0, 0, 0x30000);
  const v = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const gdt = [0n, 0x00af9a000000ffffn, 0x00cf92000000ffffn, 0x00cff2000000ffffn, 0x00affa000000ffffn];
  gdt.forEach((e, i) => v.setBigUint64(GDT + i * 8, e, true));
  // 64-bit available TSS (type 9) at TSS, limit 0x67; RSP0 = kernel stack.
  const tssLo = 0x67n | (BigInt(TSS & 0xffffff) << 16n) | (0x89n << 40n) | (BigInt(TSS >>> 24) << 56n);
  v.setBigUint64(GDT + 5 * 8, tssLo, true);
  v.setBigUint64(GDT + 6 * 8, 0n, true);
  v.setBigUint64(TSS + 4, BigInt(KSTACK_TOP), true);
  for (let vec = 0; vec < 32; vec++) {
    const stub = STUBS + vec * 16;
    ram[stub] = 0xe6; ram[stub + 1] = EXC_PORT + vec; ram[stub + 2] = 0xf4; ram[stub + 3] = 0xeb; ram[stub + 4] = 0xfd;
    const g = IDT + vec * 16;
    v.setUint16(g, stub & 0xffff, true);
    v.setUint16(g + 2, SEL_KCODE, true);
    v.setUint8(g + 4, 0);
    v.setUint8(g + 5, 0x8e); // present, DPL0, 64-bit interrupt gate
    v.setUint16(g + 6, stub >>> 16, true);
    v.setUint32(g + 8, 0, true);
  }
  v.setBigUint64(PML4, BigInt(PDPT | 7), true);
  v.setBigUint64(PDPT, BigInt(PD | 7), true);
  v.setBigUint64(PD, BigInt(PT | 7), true);
  for (let p = 0; p < 0x30; p++) {
    const addr = p * 0x1000;
    let flags = 0;
    if (addr < 0x10000) flags = 3; // supervisor, writable
    else if (addr >= CODE && addr < CODE + CODE_SIZE) flags = 5; // user, read-only
    else if (addr >= DATA && addr < DATA + DATA_SIZE) flags = 7; // user, writable
    // Data pages are NX: a branch into random data would otherwise run it natively, possibly looping forever.
    const nx = addr >= DATA && addr < DATA + DATA_SIZE ? 1n << 63n : 0n;
    if (flags) v.setBigUint64(PT + p * 8, BigInt(addr | flags) | nx, true);
  }
}

function seg(selector: number, type: number, dpl: number, l: number, db: number): SegmentState {
  return { base: 0n, limit: 0xffffffff, selector, type, present: 1, dpl, db, s: 1, l, g: 1, avl: 0, unusable: 0 };
}

/** kvm_sregs for CPL3 64-bit code in this image (CR4: PAE | OSFXSR | OSXMMEXCPT). */
export function userSregs(): SregsState {
  const data = seg(SEL_UDATA, 3, 3, 0, 1);
  return {
    cs: seg(SEL_UCODE, 0xb, 3, 1, 0), ds: data, es: data, fs: { ...data }, gs: { ...data }, ss: { ...data },
    tr: { base: BigInt(TSS), limit: 0x67, selector: SEL_TSS, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 },
    ldt: { base: 0n, limit: 0xffff, selector: 0, type: 2, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 },
    gdt: { base: BigInt(GDT), limit: 7 * 8 - 1 },
    idt: { base: BigInt(IDT), limit: 32 * 16 - 1 },
    cr0: 0x80050033n, // PG WP NE ET MP PE
    cr2: 0n, cr3: BigInt(PML4), cr4: 0x620n, cr8: 0n,
    efer: 0xd00n, // LME | LMA | NXE (no SCE)
    apicBase: 0xfee00900n,
  };
}
