// Bit-level conversions between IEEE encodings and JS numbers, through one shared scratch buffer so that hot paths
// never allocate. NaNs are never passed through these helpers by the arithmetic code: reading a signalling NaN into
// a JS number may quiet it, so NaN handling is done on raw bits by the callers.

const scratch = new ArrayBuffer(8);
const sF64 = new Float64Array(scratch);
const sF32 = new Float32Array(scratch);
const sU32 = new Uint32Array(scratch);

/** Float32 bits → number (exact). Do not use for NaNs. */
export function f32FromBits(bits: number): number {
  sU32[0] = bits;
  return sF32[0]!;
}

/** Number exactly representable as float32 (or ±Inf/±0) → bits. */
export function f32ToBits(v: number): number {
  sF32[0] = v;
  return sU32[0]!;
}

/** Float64 halves → number (exact). Do not use for NaNs. */
export function f64FromBits(lo: number, hi: number): number {
  sU32[0] = lo;
  sU32[1] = hi;
  return sF64[0]!;
}

/** Low dword of a number's float64 encoding. Call f64Hi() right after for the high dword. */
export function f64Lo(v: number): number {
  sF64[0] = v;
  return sU32[0]!;
}

/** High dword of the float64 encoding of the number passed to the last f64Lo(). */
export function f64Hi(): number {
  return sU32[1]!;
}

/** High dword of a number's float64 encoding (sign, exponent, top 20 fraction bits). */
export function f64HiOf(v: number): number {
  sF64[0] = v;
  return sU32[1]!;
}

/** Exact 2^k for any integer k in [-1074, 1023]; 0 below, Infinity above. */
export function pow2(k: number): number {
  if (k > 1023) return Infinity;
  if (k >= -1022) {
    sU32[0] = 0;
    sU32[1] = ((k + 1023) << 20) >>> 0;
    return sF64[0]!;
  }
  if (k < -1074) return 0;
  const sh = k + 1074; // bit position within the 52-bit fraction
  if (sh >= 32) {
    sU32[0] = 0;
    sU32[1] = 1 << (sh - 32);
  } else {
    sU32[0] = (1 << sh) >>> 0;
    sU32[1] = 0;
  }
  return sF64[0]!;
}

/** x * 2^k exactly when the result is representable (scales in steps to avoid intermediate overflow). */
export function scale2(x: number, k: number): number {
  while (k > 1000) {
    x *= pow2(1000);
    k -= 1000;
  }
  while (k < -1000) {
    x *= pow2(-1000);
    k += 1000;
  }
  return x * pow2(k);
}

/**
 * floor(log2(|x|)) for finite non-zero x, exact (including subnormals).
 */
export function ilogb(x: number): number {
  sF64[0] = x;
  const e = (sU32[1]! >>> 20) & 0x7ff;
  if (e !== 0) return e - 1023;
  sF64[0] = x * pow2(64);
  return ((sU32[1]! >>> 20) & 0x7ff) - 1023 - 64;
}

/** True when |x| is an exact power of two (x finite, non-zero). */
export function isPow2(x: number): boolean {
  const e = ilogb(x);
  return Math.abs(x) === pow2Any(e);
}

/** 2^k for any k (may be subnormal / outside double range → 0 / Infinity). */
export function pow2Any(k: number): number {
  if (k >= -1074 && k <= 1023) return pow2(k);
  return k < 0 ? 0 : Infinity;
}

// ---- float32 / float64 classification on raw bits ----

export function f32IsNaN(b: number): boolean {
  return (b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0;
}
export function f32IsSNaN(b: number): boolean {
  return (b & 0x7fc00000) === 0x7f800000 && (b & 0x003fffff) !== 0;
}
export function f32IsDenormal(b: number): boolean {
  return (b & 0x7f800000) === 0 && (b & 0x007fffff) !== 0;
}
export function f64IsNaN(lo: number, hi: number): boolean {
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0x000fffff) !== 0 || lo !== 0);
}
export function f64IsSNaN(lo: number, hi: number): boolean {
  return (hi & 0x7ff80000) === 0x7ff00000 && ((hi & 0x0007ffff) !== 0 || lo !== 0);
}
export function f64IsDenormal(lo: number, hi: number): boolean {
  return (hi & 0x7ff00000) === 0 && ((hi & 0x000fffff) !== 0 || lo !== 0);
}

export const F32_INDEFINITE = 0xffc00000;
export const F64_INDEFINITE_HI = 0xfff80000;
