// Exact x87 arithmetic on 80-bit values: add, subtract, multiply, divide, square root and scale are computed
// exactly with BigInt significands and rounded once to the precision-control width (24/53/64 bits) with the
// x87's 15-bit exponent range, denormals, tininess after rounding, and the unmasked overflow/underflow responses
// (exponent bias adjusted by ∓24576). BigInt costs about a microsecond per operation; the x87 is not on the
// interpreter's integer hot path, and the SSE paths (fp-core.ts) use no BigInt.

import { f80Class, CLS_INF, CLS_ZERO } from './f80.js';
import { FE_IE, FE_OE, FE_PE, FE_UE, FE_ZE, RC_DOWN, RC_NEAREST, RC_UP } from './fp-core.js';

const EMIN = -16382;
const EMAX = 16383;
const BIAS = 16383;
const ADJUST = 24576;

/** Outcome of the last operation: FE_* flags and whether the magnitude was rounded up (C1). */
export const x80 = { flags: 0, up: false };

interface Num {
  neg: boolean;
  /** value = mant * 2^exp (mant > 0 for finite non-zero). */
  exp: number;
  mant: bigint;
}
const A: Num = { neg: false, exp: 0, mant: 0n };
const B: Num = { neg: false, exp: 0, mant: 0n };

function unpack(a: Uint32Array, o: number, out: Num): void {
  const se = a[o + 2]!;
  out.neg = (se & 0x8000) !== 0;
  const e = se & 0x7fff;
  out.mant = (BigInt(a[o + 1]!) << 32n) | BigInt(a[o]!);
  out.exp = (e === 0 ? 1 : e) - BIAS - 63;
}

function bitlen(m: bigint): number {
  if (m === 0n) return 0;
  const n = Number(m);
  let b = Number.isFinite(n) ? Math.floor(Math.log2(n)) + 1 : 1024;
  while (m >> BigInt(b) !== 0n) b++;
  while (b > 1 && m >> BigInt(b - 1) === 0n) b--;
  return b;
}

function writeZero(dst: Uint32Array, d: number, neg: boolean): void {
  dst[d] = 0;
  dst[d + 1] = 0;
  dst[d + 2] = neg ? 0x8000 : 0;
}
function writeInf(dst: Uint32Array, d: number, neg: boolean): void {
  dst[d] = 0;
  dst[d + 1] = 0x80000000;
  dst[d + 2] = (neg ? 0x8000 : 0) | 0x7fff;
}
function writeIndefinite(dst: Uint32Array, d: number): void {
  dst[d] = 0;
  dst[d + 1] = 0xc0000000;
  dst[d + 2] = 0xffff;
}

/** Encodes n * 2^q (n < 2^64 or = 2^64 handled by caller) with biased exponent offset `adj` (unmasked responses). */
function encode(dst: Uint32Array, d: number, neg: boolean, n: bigint, q: number, adj: number): void {
  if (n === 0n) {
    writeZero(dst, d, neg);
    return;
  }
  const L = bitlen(n);
  let be = L - 1 + q + BIAS + adj;
  let m: bigint;
  if (be >= 1) m = n << BigInt(64 - L);
  else {
    // Denormal: value = m * 2^(EMIN - 63).
    m = n << BigInt(q + adj - (EMIN - 63));
    be = 0;
  }
  dst[d] = Number(m & 0xffffffffn);
  dst[d + 1] = Number((m >> 32n) & 0xffffffffn);
  dst[d + 2] = (neg ? 0x8000 : 0) | be;
}

let rInexact = false;
let rInc = false;
/** Rounds mant * 2^exp (+ sticky below) to a multiple of 2^q. */
function roundAt(mant: bigint, exp: number, sticky: boolean, q: number, neg: boolean, rc: number): bigint {
  const shift = q - exp;
  let n: bigint;
  let cat: number; // 0 exact, 1 below half, 2 half, 3 above half
  if (shift <= 0) {
    n = mant << BigInt(-shift);
    cat = sticky ? 1 : 0;
  } else {
    const s = BigInt(shift);
    n = mant >> s;
    const rem = mant & ((1n << s) - 1n);
    const half = 1n << (s - 1n);
    cat = rem === 0n ? (sticky ? 1 : 0) : rem < half ? 1 : rem === half ? (sticky ? 3 : 2) : 3;
  }
  rInexact = cat !== 0;
  let inc = false;
  if (cat !== 0) {
    if (rc === RC_NEAREST) inc = cat === 3 || (cat === 2 && (n & 1n) === 1n);
    else if (rc === RC_DOWN) inc = neg;
    else if (rc === RC_UP) inc = !neg;
  }
  rInc = inc;
  return inc ? n + 1n : n;
}

/**
 * Rounds the exact value ±(mant * 2^exp + sticky) to p bits with the x87 exponent range and writes it. oeUnmasked /
 * ueUnmasked select the unmasked overflow/underflow responses. Sets x80.flags (PE/UE/OE) and x80.up.
 */
export function roundPack(dst: Uint32Array, d: number, neg: boolean, mant: bigint, exp: number, sticky: boolean,
  p: number, rc: number, oeUnmasked: boolean, ueUnmasked: boolean): void {
  const L = bitlen(mant);
  const E = L - 1 + exp;
  const pow = 1n << BigInt(p);
  const qn = Math.max(E, EMIN) - (p - 1);
  let n = roundAt(mant, exp, sticky, qn, neg, rc);
  const inexact = rInexact;
  const inc = rInc;
  // Overflow (the rounded value reaches 2^(EMAX+1)).
  const ovf = E > EMAX || (E === EMAX && n === pow);
  if (ovf) {
    if (oeUnmasked) {
      if (E - ADJUST > EMAX) {
        // Still out of range after the bias adjustment: infinity (measured on hardware).
        x80.flags |= FE_OE | FE_PE;
        x80.up = true;
        writeInf(dst, d, neg);
        return;
      }
      x80.flags |= FE_OE | (inexact ? FE_PE : 0);
      x80.up = inexact && inc;
      encode(dst, d, neg, n, qn, -ADJUST);
      return;
    }
    x80.flags |= FE_OE | FE_PE;
    const toInf = rc === RC_NEAREST || (rc === RC_UP && !neg) || (rc === RC_DOWN && neg);
    x80.up = toInf;
    if (toInf) writeInf(dst, d, neg);
    else encode(dst, d, neg, pow - 1n, EMAX - p + 1, 0);
    return;
  }
  if (E < EMIN) {
    // Tininess after rounding: rounding with an unbounded exponent stays below 2^EMIN?
    const qu = E - (p - 1);
    const nu = roundAt(mant, exp, sticky, qu, neg, rc);
    const inexactU = rInexact;
    const incU = rInc;
    const tiny = !(E === EMIN - 1 && nu === pow);
    if (tiny && ueUnmasked) {
      if (E + ADJUST < EMIN) {
        x80.flags |= FE_UE | FE_PE;
        x80.up = false;
        writeZero(dst, d, neg);
        return;
      }
      x80.flags |= FE_UE | (inexactU ? FE_PE : 0);
      x80.up = inexactU && incU;
      encode(dst, d, neg, nu, qu, ADJUST);
      return;
    }
    if (tiny && inexact) x80.flags |= FE_UE;
  }
  if (inexact) x80.flags |= FE_PE;
  x80.up = inexact && inc;
  if (n === pow && p === 64) {
    n >>= 1n;
    encode(dst, d, neg, n, qn + 1, 0);
    return;
  }
  encode(dst, d, neg, n, qn, 0);
}

/** Guard bits kept below the larger operand when the smaller one only contributes sticky information. */
const ALIGN_LIMIT = 140;

/**
 * dst = a op b (op: 0 add, 1 mul, 4 sub, 5 subr, 6 div, 7 divr — the D8 /reg numbering) for non-NaN operands.
 * Writes the result (or the indefinite on invalid) and sets x80.flags / x80.up.
 */
export function arith80(op: number, aa: Uint32Array, ao: number, ba: Uint32Array, bo: number, dst: Uint32Array,
  d: number, p: number, rc: number, oeUnmasked: boolean, ueUnmasked: boolean): void {
  x80.flags = 0;
  x80.up = false;
  // Reverse forms swap the operands.
  if (op === 5 || op === 7) {
    const t = aa;
    const to = ao;
    aa = ba;
    ao = bo;
    ba = t;
    bo = to;
    op -= 1;
  }
  const ca = f80Class(aa, ao);
  const cb = f80Class(ba, bo);
  unpack(aa, ao, A);
  unpack(ba, bo, B);
  if (op === 4) B.neg = !B.neg;
  const aInf = ca === CLS_INF;
  const bInf = cb === CLS_INF;
  const aZero = ca === CLS_ZERO;
  const bZero = cb === CLS_ZERO;
  if (op === 0 || op === 4) {
    if (aInf || bInf) {
      if (aInf && bInf && A.neg !== B.neg) {
        x80.flags |= FE_IE;
        writeIndefinite(dst, d);
      } else writeInf(dst, d, aInf ? A.neg : B.neg);
      return;
    }
    if (aZero && bZero) {
      writeZero(dst, d, A.neg === B.neg ? A.neg : rc === RC_DOWN);
      return;
    }
    if (aZero || bZero) {
      const x = aZero ? B : A;
      roundPack(dst, d, x.neg, x.mant, x.exp, false, p, rc, oeUnmasked, ueUnmasked);
      return;
    }
    // Align to the smaller exponent, collapsing a far-away smaller operand into a sticky unit.
    let big = A;
    let small = B;
    const ea = bitlen(A.mant) + A.exp;
    const eb = bitlen(B.mant) + B.exp;
    if (eb > ea) {
      big = B;
      small = A;
    }
    const bigTop = Math.max(ea, eb);
    let sm = small.mant;
    let se = small.exp;
    if (bitlen(sm) + se < bigTop - ALIGN_LIMIT) {
      sm = 1n;
      se = bigTop - ALIGN_LIMIT - 2;
    }
    const e0 = Math.min(big.exp, se);
    const bm = big.mant << BigInt(big.exp - e0);
    const smv = sm << BigInt(se - e0);
    let sum = (big.neg ? -bm : bm) + (small.neg ? -smv : smv);
    if (sum === 0n) {
      writeZero(dst, d, rc === RC_DOWN);
      return;
    }
    const neg = sum < 0n;
    if (neg) sum = -sum;
    roundPack(dst, d, neg, sum, e0, false, p, rc, oeUnmasked, ueUnmasked);
    return;
  }
  const neg = A.neg !== B.neg;
  if (op === 1) {
    if ((aInf && bZero) || (bInf && aZero)) {
      x80.flags |= FE_IE;
      writeIndefinite(dst, d);
    } else if (aInf || bInf) writeInf(dst, d, neg);
    else if (aZero || bZero) writeZero(dst, d, neg);
    else roundPack(dst, d, neg, A.mant * B.mant, A.exp + B.exp, false, p, rc, oeUnmasked, ueUnmasked);
    return;
  }
  // Division A / B.
  if ((aInf && bInf) || (aZero && bZero)) {
    x80.flags |= FE_IE;
    writeIndefinite(dst, d);
    return;
  }
  if (aInf) {
    writeInf(dst, d, neg);
    return;
  }
  if (bZero) {
    x80.flags |= FE_ZE;
    writeInf(dst, d, neg);
    return;
  }
  if (aZero || bInf) {
    writeZero(dst, d, neg);
    return;
  }
  const s = Math.max(0, 68 + bitlen(B.mant) - bitlen(A.mant));
  const num = A.mant << BigInt(s);
  const q = num / B.mant;
  const rem = num - q * B.mant;
  roundPack(dst, d, neg, q, A.exp - B.exp - s, rem !== 0n, p, rc, oeUnmasked, ueUnmasked);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  if (x === 0n) x = 1n;
  // Newton iterations from a close estimate (Number(n) may be Infinity for huge n: fall back to bit length).
  if (!Number.isFinite(Number(n))) x = 1n << BigInt((bitlen(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x -= 1n;
  while ((x + 1n) * (x + 1n) <= n) x += 1n;
  return x;
}

/** dst = sqrt(a) for a non-NaN operand. */
export function sqrt80(aa: Uint32Array, ao: number, dst: Uint32Array, d: number, p: number, rc: number,
  oeUnmasked: boolean, ueUnmasked: boolean): void {
  x80.flags = 0;
  x80.up = false;
  const c = f80Class(aa, ao);
  unpack(aa, ao, A);
  if (c === CLS_ZERO) {
    writeZero(dst, d, A.neg);
    return;
  }
  if (A.neg) {
    x80.flags |= FE_IE;
    writeIndefinite(dst, d);
    return;
  }
  if (c === CLS_INF) {
    writeInf(dst, d, false);
    return;
  }
  let m = A.mant;
  let e = A.exp;
  if (e & 1) {
    m <<= 1n;
    e -= 1;
  }
  // Scale so the root has at least 68 bits.
  const k = Math.max(0, 68 - (bitlen(m) >> 1));
  m <<= BigInt(2 * k);
  e -= 2 * k;
  const r = isqrt(m);
  roundPack(dst, d, false, r, e / 2, r * r !== m, p, rc, oeUnmasked, ueUnmasked);
}

/** dst = a * 2^n (FSCALE) for a finite non-zero a. */
export function scale80(aa: Uint32Array, ao: number, n: number, dst: Uint32Array, d: number, p: number, rc: number,
  oeUnmasked: boolean, ueUnmasked: boolean): void {
  x80.flags = 0;
  x80.up = false;
  unpack(aa, ao, A);
  const k = Math.max(-70000, Math.min(70000, n));
  roundPack(dst, d, A.neg, A.mant, A.exp + k, false, p, rc, oeUnmasked, ueUnmasked);
}

/** Results of prem80: the low three quotient bits and whether the reduction is complete. */
export const premOut = { q: 0, partial: false };

/**
 * FPREM / FPREM1 on finite operands (a non-zero finite, b non-zero finite): dst = partial remainder (exact).
 */
export function prem80(aa: Uint32Array, ao: number, ba: Uint32Array, bo: number, dst: Uint32Array, d: number,
  ieee: boolean): void {
  unpack(aa, ao, A);
  unpack(ba, bo, B);
  const ea = bitlen(A.mant) - 1 + A.exp;
  const eb = bitlen(B.mant) - 1 + B.exp;
  const D = ea - eb;
  premOut.partial = false;
  premOut.q = 0;
  if (D < 0) {
    // |a| < |b|: quotient 0 (FPREM1 may still round the quotient to 1).
    if (!ieee || D < -1) {
      dst[d] = aa[ao]!;
      dst[d + 1] = aa[ao + 1]!;
      dst[d + 2] = aa[ao + 2]!;
      return;
    }
  }
  let bm = B.mant;
  let bexp = B.exp;
  if (D >= 64) {
    const N = 32 + ((D - 32) % 32);
    bexp += D - N;
    premOut.partial = true;
  }
  const e0 = Math.min(A.exp, bexp);
  const am = A.mant << BigInt(A.exp - e0);
  bm <<= BigInt(bexp - e0);
  let q = am / bm;
  let r = am - q * bm;
  if (ieee && !premOut.partial) {
    const twice = 2n * r;
    if (twice > bm || (twice === bm && (q & 1n) === 1n)) {
      q += 1n;
      r = bm - r;
      // The remainder changes sign relative to a.
      premOut.q = Number(q & 7n);
      if (r === 0n) writeZero(dst, d, A.neg);
      else roundPack(dst, d, !A.neg, r, e0, false, 64, RC_NEAREST, false, false);
      return;
    }
  }
  premOut.q = Number(q & 7n);
  if (r === 0n) writeZero(dst, d, A.neg);
  else roundPack(dst, d, A.neg, r, e0, false, 64, RC_NEAREST, false, false);
}
