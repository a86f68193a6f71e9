/**
 * Event delivery through the IVT (real mode), 32-bit IDT gates (protected mode) and 64-bit IDT gates (long mode),
 * with privilege-level stack switches from the TSS and IST stacks. Task gates are not supported (internal error).
 */
import {
  AC, CR0_PE, CS, DF, F_AC, F_IF, F_NT, F_RF, F_TF, F_VM, GP, NP, PF, SA_DB, SA_L, SA_P, SS, SSF, TR, TS,
} from './constants.js';
import type { Cpu } from './cpu.js';
import { checkCodeDescriptor, descAttr, descBase, descLimit, loadCodeSegment, loadSegmentReal, markAccessed, readDescriptor, setSegCache } from './segments.js';

export type EventKind = 'exception' | 'interrupt' | 'software';

/** Exceptions that push an error code. */
export function hasErrorCode(vector: number): boolean {
  return vector === DF || vector === TS || vector === NP || vector === SSF || vector === GP || vector === PF || vector === AC;
}

/** Fault-class exceptions (SDM vol. 1 6.5): RIP still names the faulting instruction. */
const FAULT_VECTORS = new Set([0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19, 20]);

/**
 * RFLAGS as pushed for an event: for fault-class exceptions the CPU pushes RF=1 (SDM vol. 3 "Instruction-Breakpoint
 * Exception Condition"), so IRET back to the faulting instruction does not retrigger an instruction breakpoint.
 */
function pushedFlags(cpu: Cpu, vector: number, kind: EventKind): number {
  const flags = cpu.getFlags();
  return kind === 'exception' && FAULT_VECTORS.has(vector) ? flags | F_RF : flags;
}

/** Thrown for guest configurations the interpreter does not implement (e.g. task gates). */
export class UnsupportedError extends Error {}

/**
 * Deliver `vector`. For exceptions cpu.rip is the faulting instruction (or, for traps, the next one);
 * software interrupts (INT n/INT3/INTO) set cpu.rip to the next instruction before calling.
 */
export function deliverEvent(cpu: Cpu, vector: number, errorCode: number, kind: EventKind): void {
  const ext = kind === 'software' ? 0 : 1;
  const code = kind === 'exception' && hasErrorCode(vector) ? (errorCode < 0 ? 0 : errorCode) : -1;
  if (kind !== 'exception') cpu.eventHook?.(cpu, vector, -1, kind);
  if (!(cpu.cr0 & CR0_PE)) return deliverReal(cpu, vector);
  if (cpu.longMode) return deliverLong(cpu, vector, code, kind, ext);
  return deliverProtected(cpu, vector, code, kind, ext);
}

function deliverReal(cpu: Cpu, vector: number): void {
  if (vector * 4 + 3 > cpu.idtLimit) cpu.raise(GP, 0);
  const ip = cpu.readSys(cpu.idtBase + vector * 4, 2);
  const cs = cpu.readSys(cpu.idtBase + vector * 4 + 2, 2);
  const flags = cpu.getFlags();
  let sp = cpu.lo[4]! & 0xffff;
  const ssBase = cpu.segBase[SS]!;
  const push = (v: number) => { sp = (sp - 2) & 0xffff; cpu.writeSys((ssBase + sp) % 4294967296, 2, v & 0xffff); };
  push(flags); push(cpu.segSel[CS]!); push(cpu.rip);
  cpu.lo[4] = (cpu.lo[4]! & ~0xffff) | sp;
  cpu.flags &= ~(F_IF | F_TF | F_AC);
  loadSegmentReal(cpu, CS, cs);
  cpu.rip = ip; cpu.nextRip = ip;
}

function idtFault(cpu: Cpu, vector: number, ext: number): never {
  return cpu.raise(GP, vector * 8 + 2 + ext);
}

function deliverProtected(cpu: Cpu, vector: number, code: number, kind: EventKind, ext: number): void {
  if (cpu.flags & F_VM) throw new UnsupportedError('virtual-8086 mode is not supported');
  if (vector * 8 + 7 > cpu.idtLimit) idtFault(cpu, vector, ext);
  const lo = cpu.readSys(cpu.idtBase + vector * 8, 4), hi = cpu.readSys(cpu.idtBase + vector * 8 + 4, 4);
  const type = (hi >> 8) & 0x1f, gdpl = (hi >> 13) & 3;
  if (type === 5) throw new UnsupportedError(`task gate for vector ${vector} is not supported`);
  if (type !== 0xe && type !== 0xf && type !== 6 && type !== 7) idtFault(cpu, vector, ext);
  if (kind === 'software' && gdpl < cpu.cpl) idtFault(cpu, vector, 0);
  if (!(hi & 0x8000)) cpu.raise(NP, vector * 8 + 2 + ext);
  const sel = lo >>> 16;
  const offset = type >= 0xe ? ((hi & 0xffff0000) | (lo & 0xffff)) >>> 0 : lo & 0xffff;
  const gate32 = type >= 0xe;
  const d = checkCodeDescriptor(cpu, sel);
  const attr = descAttr(d);
  const dpl = (attr >> 5) & 3;
  if (dpl > cpu.cpl) cpu.raise(GP, (sel & 0xfffc) + ext);
  const conforming = (attr & 4) !== 0;
  const newCpl = conforming ? cpu.cpl : dpl;
  const flags = pushedFlags(cpu, vector, kind);
  const oldCs = cpu.segSel[CS]!, oldRip = cpu.rip;
  const size = gate32 ? 4 : 2;
  let ssSel = cpu.segSel[SS]!, ssBase = cpu.segBase[SS]!, ssLimit = cpu.segLimit[SS]!, ssAttr = cpu.segAttr[SS]!;
  let sp = cpu.lo[4]! >>> 0;
  const frame: number[] = [];
  if (newCpl < cpu.cpl) {
    // Stack switch: SS:ESP for the new privilege level from the 32-bit TSS.
    const tssBase = cpu.segBase[TR]!;
    const is32 = (cpu.segAttr[TR]! & 8) !== 0;
    const off = is32 ? 4 + newCpl * 8 : 2 + newCpl * 4;
    if (off + (is32 ? 5 : 3) > cpu.segLimit[TR]!) cpu.raise(TS, cpu.segSel[TR]! & 0xfffc);
    const newSp = is32 ? cpu.readSys(tssBase + off, 4) >>> 0 : cpu.readSys(tssBase + off, 2);
    const newSs = cpu.readSys(tssBase + off + (is32 ? 4 : 2), 2);
    if ((newSs & 0xfffc) === 0) cpu.raise(TS, ext);
    const sd = readDescriptor(cpu, newSs, false, TS);
    const sattr = descAttr(sd);
    if ((newSs & 3) !== newCpl || ((sattr >> 5) & 3) !== newCpl || (sattr & 0x1a) !== 0x12) cpu.raise(TS, (newSs & 0xfffc) + ext);
    if (!(sattr & SA_P)) cpu.raise(SSF, (newSs & 0xfffc) + ext);
    frame.push(cpu.segSel[SS]!, cpu.lo[4]! >>> 0);
    markAccessed(cpu, newSs, sd);
    ssSel = newSs; ssBase = descBase(sd); ssLimit = descLimit(sd); ssAttr = sattr; sp = newSp;
  }
  frame.push(flags, oldCs, oldRip);
  if (code >= 0) frame.push(code);
  // Write the frame (supervisor accesses unless the handler runs at CPL3), then commit.
  const sp32 = (ssAttr & SA_DB) !== 0;
  for (const v of frame) {
    sp = sp32 ? (sp - size) >>> 0 : (sp - size) & 0xffff;
    if (sp + size - 1 > ssLimit) cpu.raise(SSF, ext);
    cpu.writeSys((ssBase + sp) % 4294967296, size, size === 4 ? v | 0 : v & 0xffff);
  }
  setSegCache(cpu, SS, ssSel, ssBase, ssLimit, ssAttr);
  if (sp32) cpu.lo[4] = sp | 0; else cpu.lo[4] = (cpu.lo[4]! & ~0xffff) | sp;
  loadCodeSegment(cpu, sel, d, newCpl);
  cpu.flags &= ~(F_TF | F_NT | F_RF | F_VM);
  if (type === 0xe || type === 6) cpu.flags &= ~F_IF;
  cpu.rip = offset; cpu.nextRip = offset;
}

function deliverLong(cpu: Cpu, vector: number, code: number, kind: EventKind, ext: number): void {
  if (vector * 16 + 15 > cpu.idtLimit) cpu.raise(GP, vector * 16 + 2 + ext);
  const base = cpu.idtBase + vector * 16;
  const lo = cpu.readSys(base, 4), hi = cpu.readSys(base + 4, 4), hi2 = cpu.readSys(base + 8, 4);
  const type = (hi >> 8) & 0x1f, gdpl = (hi >> 13) & 3, ist = hi & 7;
  if (type !== 0xe && type !== 0xf) cpu.raise(GP, vector * 16 + 2 + ext);
  if (kind === 'software' && gdpl < cpu.cpl) cpu.raise(GP, vector * 16 + 2);
  if (!(hi & 0x8000)) cpu.raise(NP, vector * 16 + 2 + ext);
  const sel = lo >>> 16;
  const target = hi2 * 4294967296 + (((hi & 0xffff0000) | (lo & 0xffff)) >>> 0);
  const d = checkCodeDescriptor(cpu, sel);
  const attr = descAttr(d);
  if (!(attr & SA_L) || attr & SA_DB) cpu.raise(GP, (sel & 0xfffc) + ext);
  const dpl = (attr >> 5) & 3;
  if (dpl > cpu.cpl) cpu.raise(GP, (sel & 0xfffc) + ext);
  const newCpl = (attr & 4) !== 0 ? cpu.cpl : dpl;
  const flags = pushedFlags(cpu, vector, kind);
  const oldSs = cpu.segSel[SS]!, oldRsp = rsp(cpu), oldCs = cpu.segSel[CS]!, oldRip = cpu.rip;
  let sp = oldRsp;
  if (newCpl < cpu.cpl || ist !== 0) {
    const tss = cpu.segBase[TR]!;
    const off = ist !== 0 ? 0x24 + (ist - 1) * 8 : 4 + newCpl * 8;
    if (off + 7 > cpu.segLimit[TR]!) cpu.raise(TS, cpu.segSel[TR]! & 0xfffc);
    const l = cpu.readSys(tss + off, 4) >>> 0, h = cpu.readSys(tss + off + 4, 4);
    sp = h * 4294967296 + l;
  }
  sp -= ((sp % 16) + 16) % 16; // align to 16
  const frame = [oldSs, oldRsp, flags, oldCs, oldRip];
  if (code >= 0) frame.push(code);
  for (const v of frame) {
    sp -= 8;
    if (sp < -0x800000000000 || sp >= 0x800000000000) cpu.raise(SSF, ext);
    const vlo = v >>> 0 | 0, vhi = Math.floor(v / 4294967296) | 0;
    cpu.writeSys(sp, 4, vlo);
    cpu.writeSys(sp + 4, 4, vhi);
  }
  if (newCpl < cpu.cpl) setSegCache(cpu, SS, newCpl, 0, 0xffffffff, (newCpl << 5) | 0x93 | SA_DB | 0x8000 | 0x10000);
  setRsp(cpu, sp);
  loadCodeSegment(cpu, sel, d, newCpl);
  cpu.flags &= ~(F_TF | F_NT | F_RF | F_VM);
  if (type === 0xe) cpu.flags &= ~F_IF;
  cpu.rip = target; cpu.nextRip = target;
}

/** RSP as a Number (canonical signed form). */
export function rsp(cpu: Cpu): number {
  return cpu.hi[4]! * 4294967296 + (cpu.lo[4]! >>> 0);
}

export function setRsp(cpu: Cpu, v: number): void {
  cpu.lo[4] = v >>> 0 | 0;
  cpu.hi[4] = Math.floor(v / 4294967296) | 0;
}
