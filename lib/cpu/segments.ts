/**
 * Segment descriptors: reading them from the GDT/LDT and loading segment registers with the protected-mode checks.
 */
import { CR0_PE, CS, F_VM, GP, LDTR, NP, SA_DB, SA_G, SA_L, SA_P, SA_UNUSABLE, SS, SSF, TR } from './constants.js';
import type { Cpu } from './cpu.js';

/** A raw 8-byte descriptor split into halves (lo = bytes 0-3, hi = bytes 4-7), plus the upper 8 bytes for system descriptors. */
export interface Descriptor { lo: number; hi: number; hi2: number }

export function descBase(d: Descriptor): number {
  return ((d.lo >>> 16) | ((d.hi & 0xff) << 16) | (d.hi & 0xff000000)) >>> 0;
}
export function descLimit(d: Descriptor): number {
  const raw = (d.lo & 0xffff) | (d.hi & 0xf0000);
  return d.hi & 0x800000 ? raw * 4096 + 0xfff : raw;
}
/** Attribute word in the VMX access-rights layout (type, S, DPL, P, AVL, L, D/B, G). */
export function descAttr(d: Descriptor): number {
  return (d.hi >>> 8) & 0xf0ff;
}

export function inRealMode(cpu: Cpu): boolean {
  return (cpu.cr0 & CR0_PE) === 0;
}
export function inV86(cpu: Cpu): boolean {
  return (cpu.flags & F_VM) !== 0;
}

/** Linear address of the descriptor for `sel` (negative in the upper canonical half), or NaN outside the table limit. */
function descAddr(cpu: Cpu, sel: number, size: number): number {
  const idx = sel & 0xfff8;
  if (sel & 4) {
    if (cpu.segAttr[LDTR]! & SA_UNUSABLE || idx + size - 1 > cpu.segLimit[LDTR]!) return NaN;
    return cpu.segBase[LDTR]! + idx;
  }
  if (idx + size - 1 > cpu.gdtLimit) return NaN;
  return cpu.gdtBase + idx;
}

/** Read the descriptor for `sel`; raises #GP(sel) (or `vector`) when outside the table. */
export function readDescriptor(cpu: Cpu, sel: number, system16 = false, vector = GP): Descriptor {
  const a = descAddr(cpu, sel, system16 ? 16 : 8);
  if (Number.isNaN(a)) cpu.raise(vector, sel & 0xfffc);
  const lo = cpu.readSys(a, 4), hi = cpu.readSys(a + 4, 4);
  const hi2 = system16 ? cpu.readSys(a + 8, 4) : 0;
  return { lo, hi, hi2 };
}

/** Set the descriptor's accessed bit in memory (type bit 0), as loading a segment does. */
export function markAccessed(cpu: Cpu, sel: number, d: Descriptor): void {
  if (d.hi & 0x100) return;
  const a = descAddr(cpu, sel, 8);
  if (!Number.isNaN(a)) { d.hi |= 0x100; cpu.writeSys(a + 4, 4, d.hi); }
}

export function setSegCache(cpu: Cpu, seg: number, sel: number, base: number, limit: number, attr: number): void {
  cpu.segSel[seg] = sel;
  cpu.segBase[seg] = base;
  cpu.segLimit[seg] = limit;
  cpu.segAttr[seg] = attr;
}

/** Real-mode / V86 segment load: base = selector * 16. */
export function loadSegmentReal(cpu: Cpu, seg: number, sel: number): void {
  cpu.segSel[seg] = sel;
  cpu.segBase[seg] = sel * 16;
  if (inV86(cpu)) { cpu.segLimit[seg] = 0xffff; cpu.segAttr[seg] = seg === CS ? 0xf3 : 0xf3; }
  if (seg === CS) cpu.updateMode();
}

/** MOV/POP/LxS to a data segment register or SS, with protected-mode checks. */
export function loadDataSegment(cpu: Cpu, seg: number, sel: number): void {
  if (inRealMode(cpu) || inV86(cpu)) { loadSegmentReal(cpu, seg, sel); return; }
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) {
    if (seg === SS && !(cpu.mode === 64 && cpu.cpl < 3 && rpl === cpu.cpl)) cpu.raise(GP, 0);
    setSegCache(cpu, seg, sel, 0, 0, SA_UNUSABLE | (seg === SS ? (cpu.cpl << 5) | 0x13 : 0));
    if (seg === SS && cpu.mode === 64) cpu.segAttr[SS] = (cpu.cpl << 5) | 0x93 | SA_DB;
    return;
  }
  const d = readDescriptor(cpu, sel);
  const attr = descAttr(d);
  const type = attr & 0xf, dpl = (attr >> 5) & 3;
  const isCode = (type & 8) !== 0;
  if (!(attr & 0x10)) cpu.raise(GP, sel & 0xfffc); // system descriptor
  if (seg === SS) {
    if (rpl !== cpu.cpl || dpl !== cpu.cpl || isCode || !(type & 2)) cpu.raise(GP, sel & 0xfffc);
    if (!(attr & SA_P)) cpu.raise(SSF, sel & 0xfffc);
  } else {
    if (isCode && !(type & 2)) cpu.raise(GP, sel & 0xfffc); // execute-only code
    const conforming = isCode && (type & 4) !== 0;
    if (!conforming && dpl < Math.max(cpu.cpl, rpl)) cpu.raise(GP, sel & 0xfffc);
    if (!(attr & SA_P)) cpu.raise(NP, sel & 0xfffc);
  }
  markAccessed(cpu, sel, d);
  setSegCache(cpu, seg, sel, descBase(d), descLimit(d), descAttr(d));
}

/**
 * Load CS from a code descriptor already validated by the caller (far JMP/CALL/RET, IRET, interrupt delivery):
 * sets CPL and the decode mode.
 */
export function loadCodeSegment(cpu: Cpu, sel: number, d: Descriptor, cpl: number): void {
  markAccessed(cpu, sel, d);
  setSegCache(cpu, CS, (sel & 0xfffc) | cpl, descBase(d), descLimit(d), descAttr(d));
  cpu.setCpl(cpl);
  cpu.updateMode();
}

/** Common checks on a code-segment descriptor for a far transfer; returns the descriptor. */
export function checkCodeDescriptor(cpu: Cpu, sel: number): Descriptor {
  if ((sel & 0xfffc) === 0) cpu.raise(GP, 0);
  const d = readDescriptor(cpu, sel);
  const attr = descAttr(d);
  if ((attr & 0x18) !== 0x18) cpu.raise(GP, sel & 0xfffc);
  if (!(attr & SA_P)) cpu.raise(NP, sel & 0xfffc);
  if (cpu.longMode && attr & SA_L && attr & SA_DB) cpu.raise(GP, sel & 0xfffc);
  return d;
}

/** LLDT / LTR style load of a system segment (LDT type 2, available TSS types 1/9). */
export function loadSystemSegment(cpu: Cpu, seg: number, sel: number): void {
  if ((sel & 0xfffc) === 0) {
    if (seg === TR) cpu.raise(GP, 0);
    setSegCache(cpu, seg, sel, 0, 0, SA_UNUSABLE);
    return;
  }
  if (sel & 4) cpu.raise(GP, sel & 0xfffc);
  const d = readDescriptor(cpu, sel, cpu.longMode);
  const attr = descAttr(d);
  const type = attr & 0x1f;
  if (seg === LDTR ? type !== 2 : type !== 9 && type !== 1) cpu.raise(GP, sel & 0xfffc);
  if (!(attr & SA_P)) cpu.raise(NP, sel & 0xfffc);
  let base = descBase(d);
  if (cpu.longMode) base += (d.hi2 | 0) * 4294967296;
  if (seg === TR) {
    // Mark busy (type 9 → 11 / 1 → 3) in the GDT.
    d.hi |= 0x200;
    cpu.writeSys(cpu.gdtBase + (sel & 0xfff8) + 4, 4, d.hi);
  }
  setSegCache(cpu, seg, sel, base, descLimit(d), descAttr(d) & ~SA_G | (attr & SA_G));
}
