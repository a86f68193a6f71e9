// The x87 80-bit extended format held as three u32 in a Uint32Array: [off] significand bits 31:0, [off+1]
// significand bits 63:32 (bit 31 = explicit integer bit), [off+2] sign (bit 15) | biased exponent (bits 14:0).
// Encoding and decoding here is exact; arithmetic on these values goes through JS doubles (see x87.ts).

import { f32FromBits, f64FromBits, ilogb, scale2 } from './bits.js';
import { FMT64, RC_DOWN, RC_NEAREST, RC_UP, fpStatus, roundExact, type FpFormat } from './fp-core.js';

export const F80_BIAS = 16383;

export const CLS_ZERO = 0;
export const CLS_NORMAL = 1;
export const CLS_DENORMAL = 2;
export const CLS_INF = 3;
export const CLS_QNAN = 4;
export const CLS_SNAN = 5;
export const CLS_UNSUPPORTED = 6;

export function f80Class(a: Uint32Array, o: number): number {
  const lo = a[o]!;
  const hi = a[o + 1]!;
  const e = a[o + 2]! & 0x7fff;
  if (e === 0x7fff) {
    if (!(hi & 0x80000000)) return CLS_UNSUPPORTED;
    if ((hi & 0x7fffffff) === 0 && lo === 0) return CLS_INF;
    return hi & 0x40000000 ? CLS_QNAN : CLS_SNAN;
  }
  if (e === 0) return hi === 0 && lo === 0 ? CLS_ZERO : CLS_DENORMAL;
  return hi & 0x80000000 ? CLS_NORMAL : CLS_UNSUPPORTED;
}

export function f80Set(a: Uint32Array, o: number, lo: number, hi: number, sexp: number): void {
  a[o] = lo;
  a[o + 1] = hi;
  a[o + 2] = sexp & 0xffff;
}

/** The x87 "real indefinite" QNaN. */
export function f80SetIndefinite(a: Uint32Array, o: number): void {
  f80Set(a, o, 0, 0xc0000000, 0xffff);
}

export function f80Copy(dst: Uint32Array, d: number, src: Uint32Array, s: number): void {
  dst[d] = src[s]!;
  dst[d + 1] = src[s + 1]!;
  dst[d + 2] = src[s + 2]!;
}

/**
 * Exact value of a finite 80-bit operand as (hi + lo) * 2^e2: returns hi, the rest in pairLo / pairE.
 * Infinities return ±Infinity.
 */
export let pairLo = 0;
export let pairE = 0;
export function f80Pair(a: Uint32Array, o: number): number {
  const lo = a[o]!;
  const hi = a[o + 1]!;
  const se = a[o + 2]!;
  const neg = (se & 0x8000) !== 0;
  const e = se & 0x7fff;
  if (e === 0x7fff) return neg ? -Infinity : Infinity;
  if (hi === 0 && lo === 0) {
    pairLo = 0;
    pairE = 0;
    return neg ? -0 : 0;
  }
  const x = hi * 4294967296;
  const s = x + lo;
  const bb = s - x;
  const err = x - (s - bb) + (lo - bb);
  pairLo = neg ? -err : err;
  pairE = (e === 0 ? 1 : e) - F80_BIAS - 63;
  return neg ? -s : s;
}

/** Rounds a finite/infinite 80-bit value to format f under rc (FST m32/m64, operand fetch). Sets fpStatus. */
export function f80Round(a: Uint32Array, o: number, f: FpFormat, rc: number): number {
  const s = f80Pair(a, o);
  fpStatus.tiny = false;
  fpStatus.up = false;
  if (s === 0 || !Number.isFinite(s)) return s;
  return roundExact(s, pairLo, pairE, f, rc);
}

/** 80-bit value → nearest double (arithmetic operand). Does not report flags. */
export function f80ToNumber(a: Uint32Array, o: number): number {
  const save = fpStatus.flags;
  const v = f80Round(a, o, FMT64, RC_NEAREST);
  fpStatus.flags = save;
  return v;
}

/** Exact encoding of a double (not NaN; NaN gives the indefinite) into 80 bits. */
export function f80FromNumber(a: Uint32Array, o: number, v: number): void {
  if (v !== v) {
    f80SetIndefinite(a, o);
    return;
  }
  const neg = v < 0 || (v === 0 && 1 / v < 0);
  const sign = neg ? 0x8000 : 0;
  if (v === 0) {
    f80Set(a, o, 0, 0, sign);
    return;
  }
  if (v === Infinity || v === -Infinity) {
    f80Set(a, o, 0, 0x80000000, sign | 0x7fff);
    return;
  }
  const m0 = neg ? -v : v;
  const e = ilogb(m0);
  const m = scale2(m0, 63 - e); // [2^63, 2^64), at most 53 significant bits
  const hi = Math.floor(m / 4294967296);
  f80Set(a, o, m - hi * 4294967296, hi, sign | (e + F80_BIAS));
}

/** float32 bits → 80 bits exactly (NaN payload kept, SNaN stays signalling: caller quiets). */
export function f80FromF32(a: Uint32Array, o: number, b: number): void {
  const sign = b & 0x80000000 ? 0x8000 : 0;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
    f80Set(a, o, 0, (0x80000000 | ((b & 0x7fffff) << 8)) >>> 0, sign | 0x7fff);
    return;
  }
  f80FromNumber(a, o, f32FromBits(b));
}

/** float64 bits → 80 bits exactly (NaN payload kept). */
export function f80FromF64(a: Uint32Array, o: number, lo: number, hi: number): void {
  if ((hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) !== 0 || lo !== 0)) {
    const mhi = (0x80000000 | ((hi & 0xfffff) << 11) | (lo >>> 21)) >>> 0;
    f80Set(a, o, (lo << 11) >>> 0, mhi, (hi & 0x80000000 ? 0x8000 : 0) | 0x7fff);
    return;
  }
  f80FromNumber(a, o, f64FromBits(lo, hi));
}

/** 80-bit NaN → float32 QNaN bits (payload truncated). */
export function f80NaNToF32(a: Uint32Array, o: number): number {
  const hi = a[o + 1]!;
  return ((a[o + 2]! & 0x8000 ? 0x80000000 : 0) | 0x7fc00000 | ((hi >>> 8) & 0x7fffff)) >>> 0;
}
/** 80-bit NaN → float64 QNaN: returns lo, hi via f64Hi-like outHi80. */
export let outHi80 = 0;
export function f80NaNToF64(a: Uint32Array, o: number): number {
  const lo = a[o]!;
  const hi = a[o + 1]!;
  outHi80 = ((a[o + 2]! & 0x8000 ? 0x80000000 : 0) | 0x7ff80000 | ((hi >>> 11) & 0xfffff)) >>> 0;
  return ((hi << 21) | (lo >>> 11)) >>> 0;
}

/** Signed 64-bit integer (two's complement lo/hi) → 80 bits exactly. */
export function f80FromInt64(a: Uint32Array, o: number, lo: number, hi: number): void {
  let sign = 0;
  lo >>>= 0;
  hi >>>= 0;
  if (hi & 0x80000000) {
    sign = 0x8000;
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  if (hi === 0 && lo === 0) {
    f80Set(a, o, 0, 0, sign);
    return;
  }
  const lz = hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
  let nlo: number;
  let nhi: number;
  if (lz === 0) {
    nlo = lo;
    nhi = hi;
  } else if (lz < 32) {
    nhi = ((hi << lz) | (lo >>> (32 - lz))) >>> 0;
    nlo = (lo << lz) >>> 0;
  } else {
    nhi = (lo << (lz - 32)) >>> 0;
    nlo = 0;
  }
  f80Set(a, o, nlo, nhi, sign | (F80_BIAS + 63 - lz));
}

/** Results of f80ToInt. */
export const intOut = { lo: 0, hi: 0, inexact: false, up: false };

/**
 * Rounds an 80-bit finite value to a signed integer of `bits` (16, 32, 64) under rc. Returns false when the value
 * is out of range (invalid); otherwise intOut holds the two's complement result (hi for 64-bit only).
 */
export function f80ToInt(a: Uint32Array, o: number, rc: number, bits: number): boolean {
  const lo = a[o]!;
  const hi = a[o + 1]!;
  const se = a[o + 2]!;
  const neg = (se & 0x8000) !== 0;
  const e = (se & 0x7fff) - F80_BIAS;
  intOut.inexact = false;
  intOut.up = false;
  let ipLo = 0;
  let ipHi = 0;
  let cat = 0; // 0 exact, 1 below half, 2 half, 3 above half
  if (hi === 0 && lo === 0) {
    cat = 0;
  } else if (e > 63) {
    return false;
  } else if (e === 63) {
    ipLo = lo;
    ipHi = hi;
  } else if (e < 0) {
    if (e < -1) cat = 1;
    else cat = hi === 0x80000000 && lo === 0 ? 2 : 3;
  } else {
    const shift = 63 - e; // 1..63
    let remHi: number;
    let remLo: number;
    let halfHi: number;
    let halfLo: number;
    if (shift < 32) {
      ipLo = ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
      ipHi = hi >>> shift;
      remHi = 0;
      remLo = (lo & ((1 << shift) - 1)) >>> 0;
      halfHi = 0;
      halfLo = 2 ** (shift - 1);
    } else {
      const s2 = shift - 32;
      ipLo = s2 === 0 ? hi : hi >>> s2;
      ipHi = 0;
      remHi = s2 === 0 ? 0 : (hi & ((1 << s2) - 1)) >>> 0;
      remLo = lo;
      halfHi = s2 === 0 ? 0 : 2 ** (s2 - 1);
      halfLo = s2 === 0 ? 0x80000000 : 0;
    }
    if (remHi === 0 && remLo === 0) cat = 0;
    else if (remHi < halfHi || (remHi === halfHi && remLo < halfLo)) cat = 1;
    else if (remHi === halfHi && remLo === halfLo) cat = 2;
    else cat = 3;
  }
  let inc = false;
  if (cat !== 0) {
    intOut.inexact = true;
    if (rc === RC_NEAREST) inc = cat === 3 || (cat === 2 && (ipLo & 1) === 1);
    else if (rc === RC_DOWN) inc = neg;
    else if (rc === RC_UP) inc = !neg;
  }
  if (inc) {
    intOut.up = true;
    ipLo = (ipLo + 1) >>> 0;
    if (ipLo === 0) ipHi = (ipHi + 1) >>> 0;
  }
  // Range check on the magnitude.
  const limHi = bits === 64 ? 0x80000000 : 0;
  const limLo = bits === 64 ? 0 : bits === 32 ? 0x80000000 : 0x8000;
  const over = ipHi > limHi || (ipHi === limHi && ipLo > limLo);
  const atLim = ipHi === limHi && ipLo === limLo;
  if (over || (atLim && !neg)) return false;
  if (neg) {
    ipLo = (~ipLo + 1) >>> 0;
    ipHi = (~ipHi + (ipLo === 0 ? 1 : 0)) >>> 0;
  }
  intOut.lo = bits === 16 ? ipLo & 0xffff : ipLo;
  intOut.hi = bits === 64 ? ipHi : 0;
  return true;
}

/** Exact comparison of two finite-or-infinite (non-NaN) 80-bit values: 0 a > b, 1 a < b, 2 equal. */
export function f80Compare(a: Uint32Array, ao: number, b: Uint32Array, bo: number): number {
  const az = (a[ao + 2]! & 0x7fff) === 0 && a[ao]! === 0 && a[ao + 1]! === 0;
  const bz = (b[bo + 2]! & 0x7fff) === 0 && b[bo]! === 0 && b[bo + 1]! === 0;
  if (az && bz) return 2;
  const an = az ? 0 : a[ao + 2]! & 0x8000 ? -1 : 1;
  const bn = bz ? 0 : b[bo + 2]! & 0x8000 ? -1 : 1;
  if (an !== bn) return an > bn ? 0 : 1;
  // Same sign, both non-zero: compare magnitudes (denormals use exponent 1).
  let ae = a[ao + 2]! & 0x7fff;
  let be = b[bo + 2]! & 0x7fff;
  if (ae === 0) ae = 1;
  if (be === 0) be = 1;
  let mag: number; // 1 |a| > |b|, -1 less, 0 equal
  // Normalise by comparing (exponent, significand) as a value: shift the smaller-exponent significand.
  const av = a[ao + 1]! * 4294967296 + a[ao]!;
  const bv = b[bo + 1]! * 4294967296 + b[bo]!;
  if (ae === be) {
    mag = a[ao + 1]! !== b[bo + 1]! ? (a[ao + 1]! > b[bo + 1]! ? 1 : -1) : a[ao]! !== b[bo]! ? (a[ao]! > b[bo]! ? 1 : -1) : 0;
  } else {
    // Explicit integer bits make normal significands >= 2^63, so the larger exponent wins unless denormal.
    const la = Math.log2(av) + ae;
    const lb = Math.log2(bv) + be;
    mag = la > lb ? 1 : la < lb ? -1 : ae > be ? 1 : -1;
  }
  if (mag === 0) return 2;
  const aBigger = mag > 0;
  return (an > 0) === aBigger ? 0 : 1;
}
