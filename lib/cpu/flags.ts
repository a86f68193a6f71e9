/**
 * Lazy arithmetic flags. An instruction records (op, size, dst, src, result) and the flags are computed only when
 * something reads them. Values are stored masked and unsigned; 64-bit operations also store the high halves.
 */
import { F_AF, F_ARITH, F_CF, F_OF, F_PF, F_SF, F_ZF } from './constants.js';

export const LF_ADD = 0, LF_ADC = 1, LF_SUB = 2, LF_SBB = 3, LF_LOGIC = 4, LF_INC = 5, LF_DEC = 6,
  /** All six flags explicit in `aux` (RFLAGS bit positions). */
  LF_FLAGS = 7,
  /** ZF/SF/PF from the result; CF, OF, AF explicit in `aux`. */
  LF_RESULT = 8;

export class LazyFlags {
  op = LF_FLAGS;
  size = 4;
  res = 0; resHi = 0;
  dst = 0; dstHi = 0;
  src = 0; srcHi = 0;
  /** Carry-in (ADC/SBB), preserved CF (INC/DEC), or explicit flag bits (LF_FLAGS/LF_RESULT). */
  aux = 0;
}

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) { let p = 1; for (let b = 0; b < 8; b++) p ^= (i >> b) & 1; PARITY[i] = p; }

function ltu(a: number, b: number): boolean { return (a >>> 0) < (b >>> 0); }
function ltu64(ah: number, al: number, bh: number, bl: number): boolean {
  return (ah >>> 0) < (bh >>> 0) || (ah === bh && (al >>> 0) < (bl >>> 0));
}

export function getCF(f: LazyFlags): boolean {
  switch (f.op) {
    case LF_ADD: return f.size === 8 ? ltu64(f.resHi, f.res, f.dstHi, f.dst) : ltu(f.res, f.dst);
    case LF_ADC:
      if (f.size === 8) return f.aux ? !ltu64(f.dstHi, f.dst, f.resHi, f.res) : ltu64(f.resHi, f.res, f.dstHi, f.dst);
      return f.aux ? !ltu(f.dst, f.res) : ltu(f.res, f.dst);
    case LF_SUB: return f.size === 8 ? ltu64(f.dstHi, f.dst, f.srcHi, f.src) : ltu(f.dst, f.src);
    case LF_SBB:
      if (f.size === 8) return f.aux ? !ltu64(f.srcHi, f.src, f.dstHi, f.dst) : ltu64(f.dstHi, f.dst, f.srcHi, f.src);
      return f.aux ? !ltu(f.src, f.dst) : ltu(f.dst, f.src);
    case LF_LOGIC: return false;
    case LF_INC: case LF_DEC: return f.aux !== 0;
    default: return (f.aux & F_CF) !== 0;
  }
}

function signBit(f: LazyFlags, v: number, vHi: number): boolean {
  return f.size === 8 ? vHi < 0 || vHi >= 0x80000000 : ((v >>> (f.size * 8 - 1)) & 1) === 1;
}

export function getZF(f: LazyFlags): boolean {
  if (f.op === LF_FLAGS) return (f.aux & F_ZF) !== 0;
  return f.size === 8 ? (f.res | f.resHi) === 0 : f.res === 0;
}

export function getSF(f: LazyFlags): boolean {
  if (f.op === LF_FLAGS) return (f.aux & F_SF) !== 0;
  return signBit(f, f.res, f.resHi);
}

export function getPF(f: LazyFlags): boolean {
  if (f.op === LF_FLAGS) return (f.aux & F_PF) !== 0;
  return PARITY[f.res & 0xff] === 1;
}

export function getAF(f: LazyFlags): boolean {
  switch (f.op) {
    case LF_ADD: case LF_ADC: case LF_SUB: case LF_SBB: case LF_INC: case LF_DEC: return ((f.dst ^ f.src ^ f.res) & 0x10) !== 0;
    case LF_LOGIC: return false;
    default: return (f.aux & F_AF) !== 0;
  }
}

export function getOF(f: LazyFlags): boolean {
  switch (f.op) {
    case LF_ADD: case LF_ADC: case LF_INC:
      return f.size === 8 ? ((f.dstHi ^ f.resHi) & (f.srcHi ^ f.resHi)) < 0 : signBit(f, (f.dst ^ f.res) & (f.src ^ f.res), 0);
    case LF_SUB: case LF_SBB: case LF_DEC:
      return f.size === 8 ? ((f.dstHi ^ f.srcHi) & (f.dstHi ^ f.resHi)) < 0 : signBit(f, (f.dst ^ f.src) & (f.dst ^ f.res), 0);
    case LF_LOGIC: return false;
    default: return (f.aux & F_OF) !== 0;
  }
}

/** The six arithmetic flags as RFLAGS bits. */
export function arithFlags(f: LazyFlags): number {
  if (f.op === LF_FLAGS) return f.aux & F_ARITH;
  return (getCF(f) ? F_CF : 0) | (getPF(f) ? F_PF : 0) | (getAF(f) ? F_AF : 0) | (getZF(f) ? F_ZF : 0) | (getSF(f) ? F_SF : 0) | (getOF(f) ? F_OF : 0);
}

/** Evaluate condition code cc (0-15, the Jcc/SETcc/CMOVcc encoding). Fast path for compares. */
export function condition(f: LazyFlags, cc: number): boolean {
  if (f.op === LF_SUB && f.size !== 8) {
    const sh = 32 - f.size * 8;
    switch (cc) {
      case 2: return ltu(f.dst, f.src);
      case 3: return !ltu(f.dst, f.src);
      case 4: return f.res === 0;
      case 5: return f.res !== 0;
      case 6: return !ltu(f.src, f.dst);
      case 7: return ltu(f.src, f.dst);
      case 12: return (f.dst << sh) < (f.src << sh);
      case 13: return (f.dst << sh) >= (f.src << sh);
      case 14: return (f.dst << sh) <= (f.src << sh);
      case 15: return (f.dst << sh) > (f.src << sh);
      default: break;
    }
  } else if (f.op === LF_SUB) {
    // 64-bit compare: halves stored unsigned.
    const dh = f.dstHi, sh = f.srcHi;
    switch (cc) {
      case 2: return ltu64(dh, f.dst, sh, f.src);
      case 3: return !ltu64(dh, f.dst, sh, f.src);
      case 4: return (f.res | f.resHi) === 0;
      case 5: return (f.res | f.resHi) !== 0;
      case 6: return !ltu64(sh, f.src, dh, f.dst);
      case 7: return ltu64(sh, f.src, dh, f.dst);
      case 12: return (dh | 0) < (sh | 0) || (dh === sh && (f.dst >>> 0) < (f.src >>> 0));
      case 13: return !((dh | 0) < (sh | 0) || (dh === sh && (f.dst >>> 0) < (f.src >>> 0)));
      case 14: return (dh | 0) < (sh | 0) || (dh === sh && (f.dst >>> 0) <= (f.src >>> 0));
      case 15: return !((dh | 0) < (sh | 0) || (dh === sh && (f.dst >>> 0) <= (f.src >>> 0)));
      default: break;
    }
  } else if (f.op === LF_LOGIC) {
    // CF = OF = 0: the signed conditions reduce to SF/ZF.
    const zero = f.size === 8 ? (f.res | f.resHi) === 0 : f.res === 0;
    const sign = f.size === 8 ? (f.resHi >>> 31) === 1 : ((f.res >>> (f.size * 8 - 1)) & 1) === 1;
    switch (cc) {
      case 4: return zero;
      case 5: return !zero;
      case 8: case 12: return sign;
      case 9: case 13: return !sign;
      case 14: return zero || sign;
      case 15: return !zero && !sign;
      default: break;
    }
  }
  let r: boolean;
  switch (cc >> 1) {
    case 0: r = getOF(f); break;
    case 1: r = getCF(f); break;
    case 2: r = getZF(f); break;
    case 3: r = getCF(f) || getZF(f); break;
    case 4: r = getSF(f); break;
    case 5: r = getPF(f); break;
    case 6: r = getSF(f) !== getOF(f); break;
    default: r = getZF(f) || getSF(f) !== getOF(f); break;
  }
  return (cc & 1) === 0 ? r : !r;
}

/** Replace the arithmetic flags with explicit bits. */
export function setArith(f: LazyFlags, bits: number): void {
  f.op = LF_FLAGS;
  f.aux = bits & F_ARITH;
}
