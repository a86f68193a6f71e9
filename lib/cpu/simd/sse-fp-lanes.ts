// Per-lane SSE floating-point semantics on raw bits: NaN propagation (first source wins, SNaNs quieted), DAZ/DE
// on inputs, FTZ/UE on outputs, and MXCSR flag accumulation. Packed/scalar drivers live in sse-fp.ts.

import {
  F32_INDEFINITE,
  F64_INDEFINITE_HI,
  f32FromBits,
  f32IsNaN,
  f32IsSNaN,
  f32ToBits,
  f64FromBits,
  f64Hi,
  f64IsNaN,
  f64IsSNaN,
  f64Lo,
} from './bits.js';
import { FE_DE, FE_IE, FE_OE, FE_ZE, FE_PE, FE_UE, FMT32, FMT64, fpAdd, fpDiv, fpMul, fpReset, fpStatus, fpSqrt } from './fp-core.js';
import { MXCSR_DAZ, MXCSR_FTZ, MXCSR_OM, MXCSR_UM } from './state.js';

export const OP_ADD = 0;
export const OP_SUB = 1;
export const OP_MUL = 2;
export const OP_DIV = 3;
export const OP_MIN = 4;
export const OP_MAX = 5;
export const OP_SQRT = 6;

const PRE = FE_IE | FE_DE | FE_ZE;
const FAST_MIN32 = 2 ** -125;
const FAST_MIN64 = 2 ** -1021;
const MAX32 = (2 - 2 ** -23) * 2 ** 127;
/**
 * Flags written to MXCSR when an unmasked exception aborts an instruction: an unmasked pre-computation exception
 * (invalid, denormal, divide-by-zero) in any lane suppresses the post-computation flags of every lane.
 */
export function reportedFlags(acc: number, mx: number): number {
  return acc & ~(mx >>> 7) & PRE ? acc & PRE : acc;
}

/** Exception flags accumulated by the lane functions since the caller last cleared it. */
export const laneAcc = { flags: 0 };

/** Float32 bits → number with DAZ (denormal → signed zero) or DE reporting. */
export function in32(b: number, mx: number): number {
  if ((b & 0x7f800000) === 0 && (b & 0x007fffff) !== 0) {
    if (mx & MXCSR_DAZ) return b & 0x80000000 ? -0 : 0;
    laneAcc.flags |= FE_DE;
  }
  return f32FromBits(b);
}

/** Float64 bits → number with DAZ or DE reporting. */
export function in64(lo: number, hi: number, mx: number): number {
  if ((hi & 0x7ff00000) === 0 && ((hi & 0x000fffff) !== 0 || lo !== 0)) {
    if (mx & MXCSR_DAZ) return hi & 0x80000000 ? -0 : 0;
    laneAcc.flags |= FE_DE;
  }
  return f64FromBits(lo, hi);
}

function isNeg(v: number): boolean {
  return v < 0 || (v === 0 && 1 / v < 0);
}

/** Result number (from fp-core, fpStatus describing it) → float32 bits, applying FTZ and unmasked-UE rules. */
export function out32(r: number, mx: number): number {
  let fl = fpStatus.flags;
  if (r !== r) {
    laneAcc.flags |= fl;
    return F32_INDEFINITE;
  }
  if (fl & FE_OE && !(mx & MXCSR_OM)) {
    // Unmasked overflow: PE reflects rounding with an unbounded exponent.
    fl = (fl & ~FE_PE) | (fpStatus.inexactUnbounded ? FE_PE : 0);
  } else if (fpStatus.tiny) {
    if (!(mx & MXCSR_UM)) fl = (fl & ~FE_PE) | FE_UE | (fpStatus.inexactUnbounded ? FE_PE : 0);
    else if (mx & MXCSR_FTZ) {
      laneAcc.flags |= fl | FE_UE | FE_PE;
      return isNeg(r) ? 0x80000000 : 0;
    }
  }
  laneAcc.flags |= fl;
  return f32ToBits(r);
}

/** High dword of the last float64 lane result (the low dword is returned). A typed-array slot rather than a
 * module variable: storing dwords >= 2^30 in a variable would allocate a heap number on every lane. */
export const hiOut = new Uint32Array(1);

/** Result number → float64 bits (returns lo, leaves hi in hiOut[0]!), applying FTZ and unmasked-UE rules. */
export function out64(r: number, mx: number): number {
  let fl = fpStatus.flags;
  if (r !== r) {
    laneAcc.flags |= fl;
    hiOut[0] = F64_INDEFINITE_HI;
    return 0;
  }
  if (fl & FE_OE && !(mx & MXCSR_OM)) {
    // Unmasked overflow: PE reflects rounding with an unbounded exponent.
    fl = (fl & ~FE_PE) | (fpStatus.inexactUnbounded ? FE_PE : 0);
  } else if (fpStatus.tiny) {
    if (!(mx & MXCSR_UM)) fl = (fl & ~FE_PE) | FE_UE | (fpStatus.inexactUnbounded ? FE_PE : 0);
    else if (mx & MXCSR_FTZ) {
      laneAcc.flags |= fl | FE_UE | FE_PE;
      hiOut[0] = isNeg(r) ? 0x80000000 : 0;
      return 0;
    }
  }
  laneAcc.flags |= fl;
  const lo = f64Lo(r);
  hiOut[0] = f64Hi();
  return lo;
}

/** Two-operand NaN rule for SSE: if either is NaN, the first NaN source (quieted) is the result. */
function nan32(a: number, b: number): number {
  if (f32IsSNaN(a) || f32IsSNaN(b)) laneAcc.flags |= FE_IE;
  return (f32IsNaN(a) ? a | 0x00400000 : b | 0x00400000) >>> 0;
}

/** One float32 lane of ADD/SUB/MUL/DIV/MIN/MAX (a = first source/destination, b = second source). */
export function lane32(op: number, a: number, b: number, mx: number): number {
  const aNaN = f32IsNaN(a);
  const bNaN = f32IsNaN(b);
  if (op === OP_MIN || op === OP_MAX) {
    // MIN/MAX return the second source unchanged when either is NaN or both are zero.
    if (aNaN || bNaN) {
      laneAcc.flags |= FE_IE; // MIN/MAX signal invalid for QNaNs too
      return mx & MXCSR_DAZ && (b & 0x7f800000) === 0 ? (b & 0x80000000) >>> 0 : b;
    }
    const x = in32(a, mx);
    const y = in32(b, mx);
    const pickA = op === OP_MIN ? x < y : x > y;
    return f32ToBits(pickA ? x : y);
  }
  if (aNaN || bNaN) return nan32(a, b);
  const saved = laneAcc.flags;
  const x = in32(a, mx);
  const y = in32(b, mx);
  if (op === OP_DIV && y === 0 && x !== 0) laneAcc.flags = saved; // x/0 reports ZE only
  const rc = (mx >>> 13) & 3;
  if (rc === 0 && op <= OP_MUL) {
    // Inline round-to-nearest fast path: the binary64 sum/difference/product of two binary32 values, rounded once
    // more with Math.fround, is the correctly rounded binary32 result; only normal finite results qualify.
    let s: number;
    let exact: boolean;
    if (op === OP_MUL) {
      s = x * y;
      exact = true; // 24 x 24 bits fit in binary64
    } else {
      const yy = op === OP_SUB ? -y : y;
      s = x + yy;
      const bb = s - x;
      exact = x - (s - bb) + (yy - bb) === 0;
    }
    const r = Math.fround(s);
    const as = s < 0 ? -s : s;
    const ar = r < 0 ? -r : r;
    if (as > FAST_MIN32 && ar <= MAX32) {
      if (!exact || r !== s) laneAcc.flags |= FE_PE;
      return f32ToBits(r);
    }
  }
  fpReset();
  let r: number;
  switch (op) {
    case OP_ADD:
      r = fpAdd(x, y, FMT32, rc);
      break;
    case OP_SUB:
      r = fpAdd(x, -y, FMT32, rc);
      break;
    case OP_MUL:
      r = fpMul(x, y, FMT32, rc);
      break;
    default:
      r = fpDiv(x, y, FMT32, rc);
  }
  return out32(r, mx);
}

/** SQRT of one float32 lane. */
export function sqrt32(b: number, mx: number): number {
  if (f32IsNaN(b)) {
    if (f32IsSNaN(b)) laneAcc.flags |= FE_IE;
    return (b | 0x00400000) >>> 0;
  }
  if (b & 0x80000000 && (b & 0x7fffffff) !== 0 && !(mx & MXCSR_DAZ && (b & 0x7f800000) === 0)) {
    laneAcc.flags |= FE_IE; // negative (even denormal) operand: invalid, no DE
    return F32_INDEFINITE;
  }
  const x = in32(b, mx);
  fpReset();
  return out32(fpSqrt(x, FMT32, (mx >>> 13) & 3), mx);
}

/** One float64 lane of ADD/SUB/MUL/DIV/MIN/MAX; returns lo, high dword in hiOut[0]!. */
export function lane64(op: number, alo: number, ahi: number, blo: number, bhi: number, mx: number): number {
  const aNaN = f64IsNaN(alo, ahi);
  const bNaN = f64IsNaN(blo, bhi);
  if (op === OP_MIN || op === OP_MAX) {
    if (aNaN || bNaN) {
      laneAcc.flags |= FE_IE;
      if (mx & MXCSR_DAZ && (bhi & 0x7ff00000) === 0) {
        hiOut[0] = (bhi & 0x80000000) >>> 0;
        return 0;
      }
      hiOut[0] = bhi;
      return blo;
    }
    const x = in64(alo, ahi, mx);
    const y = in64(blo, bhi, mx);
    const pickA = op === OP_MIN ? x < y : x > y;
    const v = pickA ? x : y;
    const lo = f64Lo(v);
    hiOut[0] = f64Hi();
    return lo;
  }
  if (aNaN || bNaN) {
    if (f64IsSNaN(alo, ahi) || f64IsSNaN(blo, bhi)) laneAcc.flags |= FE_IE;
    if (aNaN) {
      hiOut[0] = (ahi | 0x00080000) >>> 0;
      return alo;
    }
    hiOut[0] = (bhi | 0x00080000) >>> 0;
    return blo;
  }
  const saved = laneAcc.flags;
  const x = in64(alo, ahi, mx);
  const y = in64(blo, bhi, mx);
  if (op === OP_DIV && y === 0 && x !== 0) laneAcc.flags = saved;
  const rc = (mx >>> 13) & 3;
  if (rc === 0 && op <= OP_SUB) {
    // Inline round-to-nearest fast path for add/subtract with a normal finite result (TwoSum gives exactness).
    const yy = op === OP_SUB ? -y : y;
    const s = x + yy;
    const as = s < 0 ? -s : s;
    if (as > FAST_MIN64 && as <= Number.MAX_VALUE) {
      const bb = s - x;
      if (x - (s - bb) + (yy - bb) !== 0) laneAcc.flags |= FE_PE;
      const lo = f64Lo(s);
      hiOut[0] = f64Hi();
      return lo;
    }
  }
  fpReset();
  let r: number;
  switch (op) {
    case OP_ADD:
      r = fpAdd(x, y, FMT64, rc);
      break;
    case OP_SUB:
      r = fpAdd(x, -y, FMT64, rc);
      break;
    case OP_MUL:
      r = fpMul(x, y, FMT64, rc);
      break;
    default:
      r = fpDiv(x, y, FMT64, rc);
  }
  return out64(r, mx);
}

/** SQRT of one float64 lane; returns lo, high dword in hiOut[0]!. */
export function sqrt64(lo: number, hi: number, mx: number): number {
  if (f64IsNaN(lo, hi)) {
    if (f64IsSNaN(lo, hi)) laneAcc.flags |= FE_IE;
    hiOut[0] = (hi | 0x00080000) >>> 0;
    return lo;
  }
  if (hi & 0x80000000 && ((hi & 0x7fffffff) !== 0 || lo !== 0) && !(mx & MXCSR_DAZ && (hi & 0x7ff00000) === 0)) {
    laneAcc.flags |= FE_IE;
    hiOut[0] = F64_INDEFINITE_HI;
    return 0;
  }
  const x = in64(lo, hi, mx);
  fpReset();
  return out64(fpSqrt(x, FMT64, (mx >>> 13) & 3), mx);
}

/**
 * CMPPS/CMPSS predicate (imm & 7) on float32 bits: returns true/false. Predicates LT, LE, NLT, NLE signal invalid
 * on any NaN; EQ, UNORD, NEQ, ORD only on SNaN.
 */
export function cmp32(pred: number, a: number, b: number, mx: number): boolean {
  const unord = f32IsNaN(a) || f32IsNaN(b);
  let x = 0;
  let y = 0;
  if (unord) {
    if ((pred & 3) === 1 || (pred & 3) === 2 || f32IsSNaN(a) || f32IsSNaN(b)) laneAcc.flags |= FE_IE;
  } else {
    x = in32(a, mx);
    y = in32(b, mx);
  }
  return cmpResult(pred, unord, x, y);
}

export function cmp64(pred: number, alo: number, ahi: number, blo: number, bhi: number, mx: number): boolean {
  const unord = f64IsNaN(alo, ahi) || f64IsNaN(blo, bhi);
  let x = 0;
  let y = 0;
  if (unord) {
    if ((pred & 3) === 1 || (pred & 3) === 2 || f64IsSNaN(alo, ahi) || f64IsSNaN(blo, bhi)) laneAcc.flags |= FE_IE;
  } else {
    x = in64(alo, ahi, mx);
    y = in64(blo, bhi, mx);
  }
  return cmpResult(pred, unord, x, y);
}

function cmpResult(pred: number, unord: boolean, x: number, y: number): boolean {
  switch (pred & 7) {
    case 0:
      return !unord && x === y;
    case 1:
      return !unord && x < y;
    case 2:
      return !unord && x <= y;
    case 3:
      return unord;
    case 4:
      return unord || x !== y;
    case 5:
      return unord || !(x < y);
    case 6:
      return unord || !(x <= y);
    default:
      return !unord;
  }
}
