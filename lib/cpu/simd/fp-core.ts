// Correctly rounded IEEE arithmetic in any x86 rounding mode, built on JS doubles.
//
// JS arithmetic only rounds to nearest, so every operation first computes its exact result as an unevaluated sum
// hi + lo (error-free transformations: TwoSum for add, Dekker's TwoProduct for multiply, the exact remainder for
// divide and square root) and then `roundExact` rounds that exact value to the target precision and exponent range
// under the requested rounding control, reporting inexact / underflow / overflow exactly like x86 (tininess is
// detected after rounding, as x86 does). NaN inputs never reach this module: callers handle them on raw bits.

import { ilogb, pow2, scale2 } from './bits.js';

export const FE_IE = 0x01;
export const FE_DE = 0x02;
export const FE_ZE = 0x04;
export const FE_OE = 0x08;
export const FE_UE = 0x10;
export const FE_PE = 0x20;

/** Rounding control values, identical in MXCSR.RC and the x87 control word RC field. */
export const RC_NEAREST = 0;
export const RC_DOWN = 1;
export const RC_UP = 2;
export const RC_ZERO = 3;

/** A binary floating-point format: precision p (significand bits incl. the implicit one) and exponent range. */
export interface FpFormat {
  readonly p: number;
  readonly emin: number;
  readonly emax: number;
}
export const FMT32: FpFormat = { p: 24, emin: -126, emax: 127 };
export const FMT64: FpFormat = { p: 53, emin: -1022, emax: 1023 };
/** x87 precision control = single, with the (double-limited) wide exponent range used for the x87 stack. */
export const FMT_X87_24: FpFormat = { p: 24, emin: -1022, emax: 1023 };

/** Side results of the last operation (module-level so that hot paths never allocate). */
export const fpStatus = {
  /** FE_* flags raised (OR-ed in; callers clear it). */
  flags: 0,
  /** The rounded result is tiny (non-zero and below the smallest normal, tininess after rounding). */
  tiny: false,
  /** The magnitude was rounded up (x87 reports this in C1). */
  up: false,
  /** Inexact when rounded to the format's precision with an unbounded exponent (what x86 reports as PE when an
   * unmasked overflow or underflow suppresses the result). */
  inexactUnbounded: false,
};

/** Clears fpStatus before an operation. */
export function fpReset(): void {
  fpStatus.flags = 0;
  fpStatus.tiny = false;
  fpStatus.up = false;
  fpStatus.inexactUnbounded = false;
}

// ---- rounding of an exact value to an integer multiple of the quantum ----

// Outputs of roundScaled (module-level to avoid allocation).
let rsInexact = false;
let rsInc = false;

/**
 * Rounds the exact non-negative value ah + al (ah >= 0.5, |al| < ulp(ah)) to an integer under rc; neg is the sign
 * of the real value (for directed rounding). Returns the integer.
 */
function roundScaled(ah: number, al: number, neg: boolean, rc: number): number {
  let f = Math.floor(ah);
  const r = ah - f; // exact
  // cat: 0 exact, 1 below half, 2 exactly half, 3 above half
  let cat: number;
  if (r === 0) {
    if (al === 0) cat = 0;
    else if (al < 0) {
      f -= 1;
      cat = 3;
    } else cat = 1;
  } else {
    const d = r - 0.5; // exact because ah >= 0.5
    if (d > 0) cat = 3;
    else if (d < 0) cat = 1;
    else cat = al > 0 ? 3 : al < 0 ? 1 : 2;
  }
  rsInexact = cat !== 0;
  let inc = false;
  if (cat !== 0) {
    switch (rc) {
      case RC_NEAREST:
        inc = cat === 3 || (cat === 2 && f % 2 === 1);
        break;
      case RC_DOWN:
        inc = neg;
        break;
      case RC_UP:
        inc = !neg;
        break;
      default:
        inc = false;
    }
  }
  rsInc = inc;
  return inc ? f + 1 : f;
}

const STICKY = pow2(-600);

/**
 * Rounds the exact value (hi + lo) * 2^e2 to format f under rounding control rc. hi must be finite and non-zero
 * unless the value is exactly zero; |lo| must be below ulp(hi). Raises PE/UE/OE in fpStatus.flags (masked
 * semantics) and sets fpStatus.tiny / fpStatus.up. Returns the rounded value as a number (±Infinity on overflow
 * to infinity).
 */
export function roundExact(hi: number, lo: number, e2: number, f: FpFormat, rc: number): number {
  fpStatus.tiny = false;
  fpStatus.up = false;
  fpStatus.inexactUnbounded = false;
  if (hi === 0) return hi;
  const neg = hi < 0;
  let a = neg ? -hi : hi;
  let l = neg ? -lo : lo;
  // Normalise a to [1, 2) keeping a + l exact up to sticky information.
  const e = ilogb(a);
  if (e !== 0) {
    a = scale2(a, -e);
    const ls = scale2(l, -e);
    l = ls === 0 && l !== 0 ? (l < 0 ? -STICKY : STICKY) : ls;
    e2 += e;
  }
  if (a === 1 && l < 0) {
    // The true value lies just below 2^e2.
    a = 2;
    l *= 2;
    e2 -= 1;
  }
  const etot = e2; // floor(log2(value))
  const q = (etot < f.emin ? f.emin : etot) - (f.p - 1);
  const k = etot - q;
  let n: number;
  if (k <= -2) {
    // value / 2^q < 0.5: rounds to 0 or to one quantum.
    rsInexact = true;
    rsInc = rc === RC_DOWN ? neg : rc === RC_UP ? !neg : false;
    n = rsInc ? 1 : 0;
  } else {
    n = roundScaled(a * pow2(k), l * pow2(k), neg, rc);
  }
  const inexact = rsInexact;
  const inc = rsInc;
  fpStatus.inexactUnbounded = inexact;
  // Overflow: the rounded magnitude reaches 2^(emax+1).
  if (etot > f.emax || (etot === f.emax && n === pow2(f.p))) {
    fpStatus.flags |= FE_OE | FE_PE;
    const toInf = rc === RC_NEAREST || (rc === RC_UP && !neg) || (rc === RC_DOWN && neg);
    fpStatus.up = toInf;
    const mag = toInf ? Infinity : (pow2(f.p) - 1) * pow2(f.emax - f.p + 1);
    return neg ? -mag : mag;
  }
  let tiny = etot < f.emin;
  if (tiny) {
    // Tininess after rounding: would rounding with an unbounded exponent reach 2^emin?
    const nu = roundScaled(a * pow2(f.p - 1), l * pow2(f.p - 1), neg, rc);
    fpStatus.inexactUnbounded = rsInexact;
    if (etot === f.emin - 1 && nu === pow2(f.p)) tiny = false;
  }
  if (inexact) {
    fpStatus.flags |= FE_PE;
    if (tiny) fpStatus.flags |= FE_UE;
  }
  fpStatus.tiny = tiny;
  fpStatus.up = inc;
  const mag = n * pow2(q);
  return neg ? -mag : mag;
}

// ---- error-free transformations ----

const tpOut = new Float64Array(1);
/** Returns RN(a*b) and leaves the exact error a*b - RN(a*b) in tpOut[0]! (operands must be moderate, |x| < 2^995). */
function twoProduct(a: number, b: number): number {
  const p = a * b;
  let c = 134217729 * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = 134217729 * b;
  const bh = c - (c - b);
  const bl = b - bh;
  tpOut[0] = ah * bh - p + ah * bl + al * bh + al * bl;
  return p;
}

// ---- operations (finite or infinite non-NaN inputs; NaN handling is the caller's) ----
//
// Fast paths: in round-to-nearest with a normal result, JS arithmetic already gives the correctly rounded binary64
// result (and, through Math.fround, the binary32 one: double rounding is harmless for +, -, *, / and sqrt of
// binary32 operands), so only inexactness needs the error term. Everything else goes through roundExact.

const FAST_MIN64 = pow2(-1021);
const FAST_MIN32 = pow2(-125);
const MAX32 = (2 - pow2(-23)) * pow2(127);
const SAFE_HI = pow2(995);
const SAFE_LO = pow2(-960);
/** Products/quotients this small could have an error term below the subnormal range: use the slow path. */
const SAFE_RESULT = pow2(-900);

/** Fast-path result check: returns the rounded value, or NaN-sentinel (undefined) when the slow path is needed. */
function fastResult(s: number, exact: boolean, f: FpFormat): number | undefined {
  const as = s < 0 ? -s : s;
  // Results at the bottom of the normal range may be tiny before the final rounding: slow path.
  if (f === FMT64) {
    if (!(as > FAST_MIN64 && as <= Number.MAX_VALUE)) return undefined;
    if (!exact) fpStatus.flags |= FE_PE;
    return s;
  }
  if (f === FMT32) {
    const r = Math.fround(s);
    const ar = r < 0 ? -r : r;
    if (!(as > FAST_MIN32 && ar <= MAX32)) return undefined;
    if (!exact || r !== s) fpStatus.flags |= FE_PE;
    return r;
  }
  return undefined;
}

/** a + b rounded to f. Returns NaN (with FE_IE) for Inf - Inf. */
export function fpAdd(a: number, b: number, f: FpFormat, rc: number): number {
  const s = a + b;
  if (s !== s) {
    fpStatus.flags |= FE_IE;
    return NaN;
  }
  if (a === Infinity || a === -Infinity || b === Infinity || b === -Infinity) return s;
  if (s === 0) {
    // Exact zero: x + (-x) is +0 except when rounding down; equal-signed zeros keep their sign.
    if (a === 0 && b === 0 && Object.is(a, b)) return a;
    return rc === RC_DOWN ? -0 : 0;
  }
  if (s === Infinity || s === -Infinity) {
    const ha = a * 0.5;
    const hb = b * 0.5;
    const s2 = ha + hb;
    const bb = s2 - ha;
    const err = ha - (s2 - bb) + (hb - bb);
    return roundExact(s2, err, 1, f, rc);
  }
  const bb = s - a;
  const err = a - (s - bb) + (b - bb);
  if (rc === RC_NEAREST) {
    const r = fastResult(s, err === 0, f);
    if (r !== undefined) return r;
  }
  return roundExact(s, err, 0, f, rc);
}

export function fpSub(a: number, b: number, f: FpFormat, rc: number): number {
  return fpAdd(a, -b, f, rc);
}

/** a * b rounded to f. Returns NaN (with FE_IE) for 0 * Inf. */
export function fpMul(a: number, b: number, f: FpFormat, rc: number): number {
  const p = a * b;
  if (p !== p) {
    fpStatus.flags |= FE_IE;
    return NaN;
  }
  if (a === 0 || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return p;
  if (rc === RC_NEAREST) {
    const aa = a < 0 ? -a : a;
    const ab = b < 0 ? -b : b;
    const ap = p < 0 ? -p : p;
    if (aa < SAFE_HI && ab < SAFE_HI && aa > SAFE_LO && ab > SAFE_LO && ap > SAFE_RESULT && ap < SAFE_HI) {
      twoProduct(a, b);
      const r = fastResult(p, tpOut[0]! === 0, f);
      if (r !== undefined) return r;
    }
  }
  const ea = ilogb(a);
  const eb = ilogb(b);
  const ma = scale2(a, -ea);
  const mb = scale2(b, -eb);
  const hi = twoProduct(ma, mb);
  return roundExact(hi, tpOut[0]!, ea + eb, f, rc);
}

/** a / b rounded to f. 0/0, Inf/Inf → NaN with FE_IE; finite/0 → ±Inf with FE_ZE. */
export function fpDiv(a: number, b: number, f: FpFormat, rc: number): number {
  if (b === 0) {
    if (a === 0 || a !== a) {
      fpStatus.flags |= FE_IE;
      return NaN;
    }
    if (Number.isFinite(a)) fpStatus.flags |= FE_ZE;
    return a / b;
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) {
    const q = a / b;
    if (q !== q) fpStatus.flags |= FE_IE;
    return q;
  }
  if (a === 0) return a / b;
  if (rc === RC_NEAREST) {
    const q = a / b;
    const aq = q < 0 ? -q : q;
    const ab = b < 0 ? -b : b;
    const aa = a < 0 ? -a : a;
    if (aq < SAFE_HI && ab < SAFE_HI && aq > SAFE_LO && ab > SAFE_LO && aa > SAFE_RESULT && aa < SAFE_HI) {
      const h = twoProduct(q, b);
      const r = fastResult(q, h === a && tpOut[0]! === 0, f);
      if (r !== undefined) return r;
    }
  }
  const ea = ilogb(a);
  const eb = ilogb(b);
  const ma = scale2(a, -ea);
  const mb = scale2(b, -eb);
  const q = ma / mb;
  const h = twoProduct(q, mb);
  const r = ma - h - tpOut[0]!;
  return roundExact(q, r / mb, ea - eb, f, rc);
}

/** sqrt(a) rounded to f. Negative non-zero → NaN with FE_IE; sqrt(-0) = -0. */
export function fpSqrt(a: number, f: FpFormat, rc: number): number {
  if (a === 0 || a === Infinity) return a;
  if (a < 0) {
    fpStatus.flags |= FE_IE;
    return NaN;
  }
  if (rc === RC_NEAREST && a < SAFE_HI && a > SAFE_RESULT) {
    const q = Math.sqrt(a);
    const h = twoProduct(q, q);
    const r = fastResult(q, h === a && tpOut[0]! === 0, f);
    if (r !== undefined) return r;
  }
  const e = ilogb(a);
  const k = Math.floor(e / 2);
  const m = scale2(a, -2 * k); // [1, 4)
  const s = Math.sqrt(m);
  const h = twoProduct(s, s);
  const r = m - h - tpOut[0]!;
  return roundExact(s, r / (2 * s), k, f, rc);
}

/** Rounds a finite value to f (a conversion such as CVTSD2SS or an x87 store). */
export function fpRound(a: number, f: FpFormat, rc: number): number {
  fpStatus.tiny = false;
  fpStatus.up = false;
  if (a === 0 || !Number.isFinite(a)) return a;
  return roundExact(a, 0, 0, f, rc);
}

/**
 * Rounds to an integral value under rc (FRNDINT, ROUNDSS, CVT*2SI). Sets FE_PE when inexact. Keeps the sign of
 * zero results.
 */
export function fpRoundInt(x: number, rc: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const ax = Math.abs(x);
  if (ax >= 4503599627370496) return x; // 2^52: already integral
  const fl = Math.floor(x);
  const r = x - fl; // exact
  if (r === 0) return x;
  fpStatus.flags |= FE_PE;
  let res: number;
  switch (rc) {
    case RC_NEAREST:
      res = r > 0.5 ? fl + 1 : r < 0.5 ? fl : fl % 2 === 0 ? fl : fl + 1;
      break;
    case RC_DOWN:
      res = fl;
      break;
    case RC_UP:
      res = fl + 1;
      break;
    default:
      res = x < 0 ? fl + 1 : fl;
  }
  fpStatus.up = Math.abs(res) > ax;
  if (res === 0 && x < 0) return -0;
  return res;
}
