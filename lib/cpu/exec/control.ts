/** Stack, branches, near/far calls and returns, IRET, software interrupts, string instructions. */
import {
  BP, CR0_PE, CS, DS, ES, F_AC, F_DF, F_ID, F_IF, F_IOPL, F_NT, F_RF, F_TF, F_VM, FS, GP, GS, OF, SA_DB, SA_L, SS, SSF,
} from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Insn } from '../decoder/decode.js';
import { condition } from '../flags.js';
import { deliverEvent, rsp, setRsp, UnsupportedError } from '../interrupts.js';
import { checkCodeDescriptor, descAttr, descBase, descLimit, loadCodeSegment, loadDataSegment, loadSegmentReal, readDescriptor, setSegCache } from '../segments.js';
import { alu } from './integer.js';
import { readE, stackSize, u, writeE } from './operands.js';
import { def } from './registry.js';

// ---------------------------------------------------------------- stack

/** Push an os-byte value. Memory is written before RSP changes so a fault leaves RSP intact. */
export function push(c: Cpu, os: number, v: number, vh: number): void {
  if (c.mode === 64) {
    const sp = rsp(c) - os;
    if (sp < -0x800000000000 || sp >= 0x800000000000) c.raise(SSF, 0);
    c.writeMem(sp, os, v, vh);
    setRsp(c, sp);
    return;
  }
  const ss = stackSize(c);
  const sp = ss === 4 ? (c.lo[4]! - os) >>> 0 : (c.lo[4]! - os) & 0xffff;
  c.writeMem(c.segLinear(SS, sp, 0, os, 4), os, v, vh);
  if (ss === 4) c.lo[4] = sp | 0; else c.lo[4] = (c.lo[4]! & ~0xffff) | sp;
}

/** Pop an os-byte value (hi half in tHi for 8). */
export function pop(c: Cpu, os: number): number {
  if (c.mode === 64) {
    const sp = rsp(c);
    if (sp < -0x800000000000 || sp >= 0x800000000000) c.raise(SSF, 0);
    const v = c.readMem(sp, os); const vh = c.tHi;
    setRsp(c, sp + os);
    c.tHi = vh;
    return v;
  }
  const ss = stackSize(c);
  const sp = ss === 4 ? c.lo[4]! >>> 0 : c.lo[4]! & 0xffff;
  const v = c.readMem(c.segLinear(SS, sp, 0, os, 4), os);
  const nsp = sp + os;
  if (ss === 4) c.lo[4] = nsp | 0; else c.lo[4] = (c.lo[4]! & ~0xffff) | (nsp & 0xffff);
  return v;
}

/** Read the stack `offset` bytes above the top without popping. */
function peek(c: Cpu, os: number, offset: number): number {
  if (c.mode === 64) return c.readMem(rsp(c) + offset, os);
  const ss = stackSize(c);
  const sp = ss === 4 ? (c.lo[4]! + offset) >>> 0 : (c.lo[4]! + offset) & 0xffff;
  return c.readMem(c.segLinear(SS, sp, 0, os, 4), os);
}

function adjustSp(c: Cpu, delta: number): void {
  if (c.mode === 64) { setRsp(c, rsp(c) + delta); return; }
  if (stackSize(c) === 4) c.lo[4] = (c.lo[4]! + delta) | 0; else c.lo[4] = (c.lo[4]! & ~0xffff) | ((c.lo[4]! + delta) & 0xffff);
}

def('push Zv', (c, i) => { const v = c.getReg(i.reg, i.os); push(c, i.os, v, c.tHi); });
def('pop Zv', (c, i) => { const v = pop(c, i.os); c.setReg(i.reg, i.os, v, c.tHi); });
def(['push Iz', 'push Ib'], (c, i) => push(c, i.os, i.imm, i.imm >> 31));
def('push Ev', (c, i) => { const v = readE(c, i, i.os); push(c, i.os, v, c.tHi); });
def('pop Ev', (c, i) => {
  const saveLo = c.lo[4]!, saveHi = c.hi[4]!;
  const v = pop(c, i.os); const vh = c.tHi;
  try { writeE(c, i, i.os, v, vh, false); } catch (e) { c.lo[4] = saveLo; c.hi[4] = saveHi; throw e; }
});
for (const [name, seg] of [['ES', ES], ['CS', CS], ['SS', SS], ['DS', DS], ['FS', FS], ['GS', GS]] as const) {
  def(`push ${name}`, (c, i) => push(c, i.os, c.segSel[seg]!, 0));
  if (seg !== CS) {
    def(`pop ${name}`, (c, i) => {
      const v = peek(c, i.os, 0) & 0xffff;
      loadDataSegment(c, seg, v);
      adjustSp(c, i.os);
      if (seg === SS) c.shadow = true;
    });
  }
}
def('pusha', (c, i) => {
  const os = i.os; const sp = c.lo[4]!;
  for (const r of [0, 1, 2, 3]) push(c, os, c.lo[r]!, 0);
  push(c, os, sp, 0);
  for (const r of [5, 6, 7]) push(c, os, c.lo[r]!, 0);
});
def('popa', (c, i) => {
  const os = i.os;
  for (const r of [7, 6, 5]) c.setReg(r, os, pop(c, os), 0);
  adjustSp(c, os);
  for (const r of [3, 2, 1, 0]) c.setReg(r, os, pop(c, os), 0);
});
def('enter', (c, i) => {
  // A fault anywhere leaves RSP/RBP as they were (the SDM's temporaries commit at the end).
  const spLo = c.lo[4]!, spHi = c.hi[4]!, bpLo = c.lo[5]!, bpHi = c.hi[5]!;
  try { enter(c, i); } catch (e) { c.lo[4] = spLo; c.hi[4] = spHi; c.lo[5] = bpLo; c.hi[5] = bpHi; throw e; }
});
function enter(c: Cpu, i: Insn): void {
  const os = i.os; const size = i.imm & 0xffff; const level = i.imm2 & 31;
  push(c, os, c.lo[5]!, c.hi[5]!);
  const frameLo = c.lo[4]!, frameHi = c.hi[4]!;
  for (let k = 1; k < level; k++) {
    const bp = c.mode === 64 ? c.hi[5]! * 4294967296 + (c.lo[5]! >>> 0) - k * os : ((c.lo[5]! - k * os) >>> 0);
    if (c.mode === 64 && (bp < -0x800000000000 || bp >= 0x800000000000)) c.raise(SSF, 0);
    const v = c.mode === 64 ? c.readMem(bp, os) : c.readMem(c.segLinear(SS, stackSize(c) === 4 ? bp : bp & 0xffff, 0, os, 4), os);
    push(c, os, v, c.tHi);
  }
  if (level > 0) push(c, os, frameLo, frameHi);
  if (os === 2) c.lo[5] = (c.lo[5]! & ~0xffff) | (frameLo & 0xffff); else { c.lo[5] = frameLo; c.hi[5] = os === 8 ? frameHi : 0; }
  adjustSp(c, -size);
}
def('leave', (c, i) => {
  if (c.mode === 64) {
    // Read through RBP first: a non-canonical RBP is #SS(0) with RSP unchanged.
    const bp = c.hi[5]! * 4294967296 + (c.lo[5]! >>> 0);
    if (bp < -0x800000000000 || bp >= 0x800000000000) c.raise(SSF, 0);
    const v = c.readMem(bp, i.os); const vh = c.tHi;
    setRsp(c, bp + i.os); c.setReg(5, i.os, v, vh);
    return;
  }
  if (stackSize(c) === 4) { c.lo[4] = c.lo[5]!; c.hi[4] = c.mode === 64 ? c.hi[5]! : 0; } else c.lo[4] = (c.lo[4]! & ~0xffff) | (c.lo[5]! & 0xffff);
  const v = pop(c, i.os); c.setReg(5, i.os, v, c.tHi);
});

// ---------------------------------------------------------------- flags push/pop

function iopl(c: Cpu): number { return (c.flags & F_IOPL) >> 12; }

/**
 * Apply a popped flags value with the POPF/IRET privilege rules (VM mode is not supported). RF is never left set:
 * it only suppresses instruction breakpoints (not modelled) for the one instruction after IRET, and the CPU clears
 * it when that instruction completes, so clearing it here is observably the same (PUSHF never stores RF).
 */
export function writeFlagsChecked(c: Cpu, v: number, os: number, fromIret: boolean): void {
  const cur = c.getFlags() & ~F_RF;
  let mask = 0x3f7fd5 & ~F_VM & ~F_RF;
  if (!fromIret) mask &= ~(1 << 19 | 1 << 20); // VIF/VIP untouched by POPF
  if (c.cr0 & CR0_PE) {
    if (c.cpl > 0) mask &= ~F_IOPL;
    if (c.cpl > iopl(c)) mask &= ~F_IF;
  }
  if (os === 2) mask &= 0xffff;
  c.setFlags((cur & ~mask) | (v & mask));
}

def('pushf', (c, i) => {
  if (c.flags & F_VM && iopl(c) < 3) c.gp(0);
  push(c, i.os, c.getFlags() & ~(F_VM | F_RF), 0);
});
def('popf', (c, i) => {
  if (c.flags & F_VM && iopl(c) < 3) c.gp(0);
  const v = pop(c, i.os);
  const wasIf = c.flags & F_IF;
  writeFlagsChecked(c, v, i.os, false);
  void wasIf;
});

// ---------------------------------------------------------------- near branches

/** Branch target nextRip + rel, truncated to the operand size. */
function relTarget(c: Cpu, i: Insn): number {
  const t = c.nextRip + i.imm;
  if (c.mode === 64) return t;
  return i.os === 2 ? t & 0xffff : t >>> 0;
}

/** RIP from a 64-bit value (lo, hi); #GP when non-canonical. */
function ripFrom(c: Cpu, lo: number, hi: number, os: number): number {
  if (os === 8) {
    const v = hi * 4294967296 + (lo >>> 0);
    if (v < -0x800000000000 || v >= 0x800000000000) c.gp(0);
    return v;
  }
  return os === 4 ? lo >>> 0 : lo & 0xffff;
}

def('jcc', (c, i) => { if (condition(c.lf, i.cc)) c.nextRip = relTarget(c, i); });
def(['jmp Jb', 'jmp Jz'], (c, i) => { c.nextRip = relTarget(c, i); });
def('call Jz', (c, i) => {
  const t = relTarget(c, i);
  const r = c.nextRip;
  push(c, i.os, r >>> 0 | 0, Math.floor(r / 4294967296) | 0);
  c.nextRip = t;
});
def('jmp Ev', (c, i) => { const v = readE(c, i, i.os); c.nextRip = ripFrom(c, v, c.tHi, i.os); });
def('call Ev', (c, i) => {
  const v = readE(c, i, i.os); const t = ripFrom(c, v, c.tHi, i.os);
  const r = c.nextRip;
  push(c, i.os, r >>> 0 | 0, Math.floor(r / 4294967296) | 0);
  c.nextRip = t;
});
def('ret', (c, i) => {
  // The target is checked before RSP moves: a non-canonical return address is #GP(0) with RSP unchanged.
  if (c.mode === 64) { const sp = rsp(c); if (sp < -0x800000000000 || sp >= 0x800000000000) c.raise(SSF, 0); }
  const v = peek(c, i.os, 0); const t = ripFrom(c, v, c.tHi, i.os);
  adjustSp(c, i.os + (i.imm & 0xffff));
  c.nextRip = t;
});

function counterDec(c: Cpu, as: number): boolean {
  if (as === 8) {
    let l = (c.lo[1]! >>> 0) - 1, h = c.hi[1]!;
    if (l < 0) { l = 0xffffffff; h = (h - 1) | 0; }
    c.lo[1] = l | 0; c.hi[1] = h;
    return (l | h) !== 0;
  }
  if (as === 4) { c.lo[1] = (c.lo[1]! - 1) | 0; if (c.mode === 64) c.hi[1] = 0; return c.lo[1] !== 0; }
  const v = (c.lo[1]! - 1) & 0xffff; c.lo[1] = (c.lo[1]! & ~0xffff) | v; return v !== 0;
}
def('loop', (c, i) => { if (counterDec(c, i.as)) c.nextRip = relTarget(c, i); });
def('loope', (c, i) => { if (counterDec(c, i.as) && condition(c.lf, 4)) c.nextRip = relTarget(c, i); });
def('loopne', (c, i) => { if (counterDec(c, i.as) && condition(c.lf, 5)) c.nextRip = relTarget(c, i); });
def('jrcxz', (c, i) => {
  const z = i.as === 8 ? (c.lo[1]! | c.hi[1]!) === 0 : i.as === 4 ? c.lo[1] === 0 : (c.lo[1]! & 0xffff) === 0;
  if (z) c.nextRip = relTarget(c, i);
});

// ---------------------------------------------------------------- far transfers

function farJump(c: Cpu, sel: number, offset: number, os: number, call: boolean): void {
  if (!(c.cr0 & CR0_PE) || c.flags & F_VM) {
    if (call) { push(c, os, c.segSel[CS]!, 0); push(c, os, c.nextRip, 0); }
    loadSegmentReal(c, CS, sel);
    c.nextRip = os === 2 ? offset & 0xffff : offset >>> 0;
    return;
  }
  if ((sel & 0xfffc) === 0) c.gp(0);
  const d = readDescriptor(c, sel);
  const attr = descAttr(d);
  if (!(attr & 0x10)) throw new UnsupportedError(`far ${call ? 'call' : 'jmp'} through system descriptor type ${attr & 0xf} (call/task gates) is not supported`);
  checkCodeDescriptor(c, sel);
  const dpl = (attr >> 5) & 3, rpl = sel & 3;
  if (attr & 4) { if (dpl > c.cpl) c.gp(sel & 0xfffc); } else if (rpl > c.cpl || dpl !== c.cpl) c.gp(sel & 0xfffc);
  if (call) {
    const r = c.nextRip;
    push(c, os, c.segSel[CS]!, 0);
    push(c, os, r >>> 0 | 0, Math.floor(r / 4294967296) | 0);
  }
  loadCodeSegment(c, sel, d, c.cpl);
  c.nextRip = c.mode === 64 ? offset : os === 2 ? offset & 0xffff : offset >>> 0;
}

def(['jmp Ap', 'call Ap'], (c, i) => farJump(c, i.imm2, i.imm >>> 0, i.os, i.mnemonic === 'call'));
def(['jmp Mp', 'call Mp'], (c, i) => {
  const os = i.os; const lin = c.linear(i, os + 2);
  const off = c.readMem(lin, os); const offHi = c.tHi;
  const sel = c.read16(lin + os);
  farJump(c, sel, os === 8 ? offHi * 4294967296 + (off >>> 0) : off >>> 0, os, i.mnemonic === 'call');
});

/** Far return (RETF/IRET common part): pops done by the caller; handles the outer-privilege return. */
function returnToSegment(c: Cpu, sel: number, offset: number, os: number, popOuter: (() => [number, number]) | null): void {
  if (!(c.cr0 & CR0_PE) || c.flags & F_VM) {
    loadSegmentReal(c, CS, sel);
    c.nextRip = offset;
    return;
  }
  const d = checkCodeDescriptor(c, sel);
  const attr = descAttr(d);
  const rpl = sel & 3, dpl = (attr >> 5) & 3;
  if (rpl < c.cpl) c.gp(sel & 0xfffc);
  if (attr & 4 ? dpl > rpl : dpl !== rpl) c.gp(sel & 0xfffc);
  if (rpl > c.cpl || (c.mode === 64 && popOuter)) {
    // Return to an outer level (or any IRETQ): pop SS:RSP.
    const [newSp, newSs] = popOuter ? popOuter() : [0, 0];
    const wasLong = c.longMode;
    loadCodeSegment(c, sel, d, rpl);
    if ((newSs & 0xfffc) === 0 && wasLong && c.mode === 64) {
      setSegCache(c, SS, newSs, 0, 0xffffffff, SA_DB | 0x93 | (rpl << 5) | 0x10000);
    } else {
      const sd = readDescriptor(c, newSs);
      const sattr = descAttr(sd);
      if ((newSs & 3) !== rpl || ((sattr >> 5) & 3) !== rpl || (sattr & 0x1a) !== 0x12) c.gp(newSs & 0xfffc);
      setSegCache(c, SS, newSs, descBase(sd), descLimit(sd), sattr);
    }
    if (c.mode === 64 || (os === 8)) setRsp(c, newSp);
    else if (c.segAttr[SS]! & SA_DB) { c.lo[4] = newSp | 0; c.hi[4] = 0; } else c.lo[4] = (c.lo[4]! & ~0xffff) | (newSp & 0xffff);
    // Data segments not accessible at the new CPL become null.
    for (const s of [ES, DS, FS, GS]) {
      const a = c.segAttr[s]!;
      const sdpl = (a >> 5) & 3;
      const isConfCode = (a & 0x1c) === 0x1c;
      if (!(a & 0x10000) && !isConfCode && sdpl < rpl && (s === ES || s === DS || c.mode !== 64)) setSegCache(c, s, 0, 0, 0, 0x10000);
    }
  } else loadCodeSegment(c, sel, d, c.cpl);
  c.nextRip = c.mode === 64 ? offset : os === 2 ? offset & 0xffff : offset >>> 0;
}

def('retf', (c, i) => {
  const os = i.os;
  const off = pop(c, os); const offHi = c.tHi; const sel = pop(c, os) & 0xffff;
  if (i.imm) adjustSp(c, i.imm & 0xffff);
  const offset = os === 8 ? offHi * 4294967296 + (off >>> 0) : off >>> 0;
  const outer = (sel & 3) > c.cpl && (c.cr0 & CR0_PE) ? (): [number, number] => {
    const sp = pop(c, os); const sph = c.tHi; const ss = pop(c, os) & 0xffff;
    return [os === 8 ? sph * 4294967296 + (sp >>> 0) : sp >>> 0, ss];
  } : null;
  returnToSegment(c, sel, offset, os, outer);
  if (outer && i.imm) adjustSp(c, i.imm & 0xffff);
});

def('iret', (c, i) => {
  const os = i.os;
  if (c.cr0 & CR0_PE && c.flags & F_NT && !c.longMode) throw new UnsupportedError('IRET with NT=1 (task return) is not supported');
  const off = pop(c, os); const offHi = c.tHi;
  const sel = pop(c, os) & 0xffff;
  const fl = pop(c, os);
  const offset = os === 8 ? offHi * 4294967296 + (off >>> 0) : off >>> 0;
  const pm = (c.cr0 & CR0_PE) !== 0;
  const outer = pm && ((sel & 3) > c.cpl || c.mode === 64) ? (): [number, number] => {
    const sp = pop(c, os); const sph = c.tHi; const ss = pop(c, os) & 0xffff;
    return [os === 8 ? sph * 4294967296 + (sp >>> 0) : sp >>> 0, ss];
  } : null;
  const oldCpl = c.cpl;
  returnToSegment(c, sel, offset, os, outer);
  // Flags with the privilege rules of the *old* CPL.
  const newCpl = c.cpl; c.cpl = oldCpl;
  writeFlagsChecked(c, fl, os, true);
  c.cpl = newCpl; c.updateAccess();
  c.nmiBlocked = false;
});

def('int', (c, i) => softInt(c, i.imm & 0xff));
def('int3', (c) => softInt(c, BP));
def('into', (c) => { if (condition(c.lf, 0)) softInt(c, OF); });
def('int1', (c) => { c.rip = c.nextRip; deliverEvent(c, 1, -1, 'interrupt'); });

function softInt(c: Cpu, vector: number): void {
  if (c.flags & F_VM && iopl(c) < 3) c.gp(0);
  const saved = c.rip;
  c.rip = c.nextRip;
  try { deliverEvent(c, vector, -1, 'software'); } catch (e) { c.rip = saved; throw e; }
}

// ---------------------------------------------------------------- string instructions

/** Value of an index register for address size as: lo returned, hi in tHi. */
function idx(c: Cpu, r: number, as: number): number {
  if (as === 8) { c.tHi = c.hi[r]!; return c.lo[r]!; }
  c.tHi = 0;
  return as === 4 ? c.lo[r]! : c.lo[r]! & 0xffff;
}

function advance(c: Cpu, r: number, as: number, delta: number): void {
  if (as === 8) {
    const t = (c.lo[r]! >>> 0) + delta;
    c.lo[r] = t | 0;
    c.hi[r] = (c.hi[r]! + Math.floor(t / 4294967296)) | 0;
  } else if (as === 4) { c.lo[r] = (c.lo[r]! + delta) | 0; if (c.mode === 64) c.hi[r] = 0; } else c.lo[r] = (c.lo[r]! & ~0xffff) | ((c.lo[r]! + delta) & 0xffff);
}

function counter(c: Cpu, as: number): number {
  return as === 8 ? (c.hi[1]! >>> 0) * 4294967296 + (c.lo[1]! >>> 0) : as === 4 ? c.lo[1]! >>> 0 : c.lo[1]! & 0xffff;
}

function srcLin(c: Cpu, i: Insn, size: number): number {
  const o = idx(c, 6, i.as); return c.segLinear(i.seg, o, c.tHi, size, i.as);
}
function dstLin(c: Cpu, i: Insn, size: number): number {
  const o = idx(c, 7, i.as); return c.segLinear(ES, o, c.tHi, size, i.as);
}

/** Run a string op body under REP: body returns false to stop (REPE/REPNE condition). */
function repeat(c: Cpu, i: Insn, body: () => boolean): void {
  if (i.rep === 0) { body(); return; }
  const as = i.as;
  let n = counter(c, as);
  while (n > 0) {
    const cont = body();
    counterDec(c, as); n--;
    if (!cont) break;
  }
}

function ioAllowed(c: Cpu): void {
  if (c.cr0 & CR0_PE && (c.cpl > iopl(c) || c.flags & F_VM)) c.gp(0); // no TSS I/O bitmap support
}

/** Elements of size os that fit before the end of lin's page. */
function inPage(lin: number, os: number): number {
  return Math.floor((4096 - (lin & 0xfff)) / os);
}

/** REP STOS/MOVS forward, page by page on RAM with typed-array bulk operations; returns false to use the slow path. */
function fastRep(c: Cpu, i: Insn, movs: boolean): boolean {
  if (i.rep === 0 || c.flags & F_DF) return false;
  const os = i.os, as = i.as;
  const v = movs ? 0 : c.getReg(0, os); const vh = c.tHi;
  const b0 = v & 0xff;
  const uniform = os === 1 || (os === 2 && (v & 0xffff) === b0 * 0x101) || (os === 4 && v >>> 0 === b0 * 0x1010101) || (os === 8 && v >>> 0 === b0 * 0x1010101 && vh >>> 0 === b0 * 0x1010101);
  if (!movs && !uniform) return false;
  let n = counter(c, as);
  while (n > 0) {
    // MOVS reads the source before the destination is checked: source faults come first.
    let sl = 0, src: Uint8Array | null = null, so = 0;
    if (movs) { sl = srcLin(c, i, os); if (inPage(sl, os) === 0) return false; src = c.pageRam(sl, false); so = c.tOff; if (!src) return false; }
    const dl = dstLin(c, i, os);
    let k = Math.min(n, inPage(dl, os));
    if (movs) k = Math.min(k, inPage(sl, os));
    if (k === 0) return false; // an element crosses a page: the slow path finishes (registers are consistent)
    const dst = c.pageRam(dl, true); const doff = c.tOff;
    if (!dst) return false;
    const len = k * os;
    if (movs) {
      if (src === dst && doff > so && doff < so + len) return false; // overlapping forward copy: element semantics
      dst.set(src!.subarray(so, so + len), doff);
      advance(c, 6, as, len);
    } else dst.fill(b0, doff, doff + len);
    advance(c, 7, as, len);
    if (as === 8) { const t = (c.lo[1]! >>> 0) - k; c.lo[1] = t | 0; c.hi[1] = (c.hi[1]! + Math.floor(t / 4294967296)) | 0; } else if (as === 4) { c.lo[1] = (c.lo[1]! - k) | 0; if (c.mode === 64) c.hi[1] = 0; } else c.lo[1] = (c.lo[1]! & ~0xffff) | ((c.lo[1]! - k) & 0xffff);
    n -= k;
  }
  return true;
}

def('movs', (c, i) => {
  if (fastRep(c, i, true) && counter(c, i.as) === 0) return;
  const os = i.os; const d = c.flags & F_DF ? -os : os;
  repeat(c, i, () => { const v = c.readMem(srcLin(c, i, os), os); const vh = c.tHi; c.writeMem(dstLin(c, i, os), os, v, vh); advance(c, 6, i.as, d); advance(c, 7, i.as, d); return true; });
});
def('stos', (c, i) => {
  if (fastRep(c, i, false) && counter(c, i.as) === 0) return;
  const os = i.os; const d = c.flags & F_DF ? -os : os;
  const v = c.getReg(0, os); const vh = c.tHi;
  repeat(c, i, () => { c.writeMem(dstLin(c, i, os), os, v, vh); advance(c, 7, i.as, d); return true; });
});
def('lods', (c, i) => {
  const os = i.os; const d = c.flags & F_DF ? -os : os;
  repeat(c, i, () => { const v = c.readMem(srcLin(c, i, os), os); c.setReg(0, os, v, c.tHi); advance(c, 6, i.as, d); return true; });
});
def('scas', (c, i) => {
  const os = i.os; const d = c.flags & F_DF ? -os : os; const wantZ = i.rep === 0xf3;
  const a = c.getReg(0, os); const ah = c.tHi;
  repeat(c, i, () => {
    const v = c.readMem(dstLin(c, i, os), os); alu(c, 7, os, a, ah, v, c.tHi); advance(c, 7, i.as, d);
    return condition(c.lf, 4) === wantZ;
  });
});
def('cmps', (c, i) => {
  const os = i.os; const d = c.flags & F_DF ? -os : os; const wantZ = i.rep === 0xf3;
  repeat(c, i, () => {
    const s = c.readMem(srcLin(c, i, os), os); const sh = c.tHi;
    const t = c.readMem(dstLin(c, i, os), os);
    alu(c, 7, os, s, sh, t, c.tHi); advance(c, 6, i.as, d); advance(c, 7, i.as, d);
    return condition(c.lf, 4) === wantZ;
  });
});
def('ins', (c, i) => {
  ioAllowed(c);
  const os = i.os === 8 ? 4 : i.os; const d = c.flags & F_DF ? -os : os; const port = c.lo[2]! & 0xffff;
  repeat(c, i, () => { const lin = dstLin(c, i, os); c.probeWrite(lin, os); c.writeMem(lin, os, c.portIn(port, os), 0); advance(c, 7, i.as, d); return true; });
});
def('outs', (c, i) => {
  ioAllowed(c);
  const os = i.os === 8 ? 4 : i.os; const d = c.flags & F_DF ? -os : os; const port = c.lo[2]! & 0xffff;
  repeat(c, i, () => { c.portOut(port, os, u(c.readMem(srcLin(c, i, os), os), os)); advance(c, 6, i.as, d); return true; });
});

// ---------------------------------------------------------------- port I/O

def(['in AL,Ib', 'in eAX,Ib'], (c, i) => { ioAllowed(c); const os = i.os === 8 ? 4 : i.os; c.setReg(0, os, c.portIn(i.imm & 0xff, os), 0); });
def(['in AL,DX', 'in eAX,DX'], (c, i) => { ioAllowed(c); const os = i.os === 8 ? 4 : i.os; c.setReg(0, os, c.portIn(c.lo[2]! & 0xffff, os), 0); });
def(['out Ib,AL', 'out Ib,eAX'], (c, i) => { ioAllowed(c); const os = i.os === 8 ? 4 : i.os; c.portOut(i.imm & 0xff, os, u(c.lo[0]!, os)); });
def(['out DX,AL', 'out DX,eAX'], (c, i) => { ioAllowed(c); const os = i.os === 8 ? 4 : i.os; c.portOut(c.lo[2]! & 0xffff, os, u(c.lo[0]!, os)); });

void F_AC; void F_ID; void F_TF; void F_RF; void GP; void SA_L;
