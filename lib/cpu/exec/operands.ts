/** Operand access shared by the exec modules: the ModRM E operand (register or memory) and 64-bit helpers. */
import type { Cpu } from '../cpu.js';
import type { Insn } from '../decoder/decode.js';

/** Linear address of the last readE/readModifyE memory operand (for the write-back). */
export let eLin = 0;

/** Read the E operand (os bytes); 64-bit high half in cpu.tHi. Remembers the linear address for writeE. */
export function readE(c: Cpu, i: Insn, os: number): number {
  if (i.isMem) { eLin = c.linear(i, os); return c.readMem(eLin, os); }
  return c.getReg(i.rm, os);
}

/**
 * Read the E operand of a read-modify-write instruction: a memory operand is checked for write access first, so a
 * fault reports a write (#PF error code W=1, as the CPU does for RMW accesses). `write` false: plain readE (CMP, TEST).
 */
export function readRmwE(c: Cpu, i: Insn, os: number, write = true): number {
  if (i.isMem) { eLin = c.linear(i, os); if (write) c.probeWrite(eLin, os); return c.readMem(eLin, os); }
  return c.getReg(i.rm, os);
}

/** Write the E operand; for memory, at the address computed by the preceding readE (or computed now). */
export function writeE(c: Cpu, i: Insn, os: number, v: number, vHi: number, reuse: boolean): void {
  if (i.isMem) c.writeMem(reuse ? eLin : c.linear(i, os), os, v, vHi);
  else c.setReg(i.rm, os, v, vHi);
}

export const MASK = [0, 0xff, 0xffff, 0, 0xffffffff];

/** Mask a value to os bytes as an unsigned Number (os ≤ 4). */
export function u(v: number, os: number): number {
  return os === 4 ? v >>> 0 : os === 2 ? v & 0xffff : os === 1 ? v & 0xff : v >>> 0;
}

/** Sign-extend an os-byte value (os ≤ 4) to int32. */
export function sx(v: number, os: number): number {
  return os === 1 ? (v << 24) >> 24 : os === 2 ? (v << 16) >> 16 : v | 0;
}

/** 64-bit value (lo, hi) → BigInt (unsigned). */
export function big(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
/** BigInt → lo returned, hi in cpu.tHi. */
export function unbig(c: Cpu, v: bigint): number {
  c.tHi = Number(BigInt.asIntN(32, v >> 32n));
  return Number(BigInt.asIntN(32, v));
}

/** Stack width in bytes for the current mode (SS.B or 64-bit). */
export function stackSize(c: Cpu): number {
  return c.mode === 64 ? 8 : c.segAttr[2]! & (1 << 14) ? 4 : 2;
}
