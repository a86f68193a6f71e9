// Integer SIMD operations shared by the MMX (64-bit, n = 2 dwords) and SSE2+ (128-bit, n = 4 dwords) forms.
// Every function here has the core signature (da, d, sa, s, n[, imm]): destination/first source at da[d..d+n),
// second source at sa[s..s+n). index.ts binds them to XMM and MMX registers.

import { A, B, R, ld1, ld2, satS16, satS8, satU16, satU8, stR, umulhi } from './lanes.js';

export type IntOp = (da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number) => void;
export type IntOpImm = (da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, imm: number) => void;

// ---- add / subtract ----

// Byte/word add, subtract and equality are done SWAR-style on whole dwords (no lane copies): the high bit of each
// lane is handled separately so carries and borrows never cross lanes.
export function paddb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = da[d + i]!;
    const b = sa[s + i]!;
    da[d + i] = (((a & 0x7f7f7f7f) + (b & 0x7f7f7f7f)) ^ ((a ^ b) & 0x80808080)) >>> 0;
  }
}
export function paddw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = da[d + i]!;
    const b = sa[s + i]!;
    da[d + i] = (((a & 0x7fff7fff) + (b & 0x7fff7fff)) ^ ((a ^ b) & 0x80008000)) >>> 0;
  }
}
export function paddd(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (da[d + i]! + sa[s + i]!) >>> 0;
}
export function paddq(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i += 2) {
    const lo = da[d + i]! + sa[s + i]!;
    da[d + i] = lo >>> 0;
    da[d + i + 1] = (da[d + i + 1]! + sa[s + i + 1]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  }
}
export function psubb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = da[d + i]!;
    const b = sa[s + i]!;
    da[d + i] = (((a | 0x80808080) - (b & 0x7f7f7f7f)) ^ ((a ^ ~b) & 0x80808080)) >>> 0;
  }
}
export function psubw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = da[d + i]!;
    const b = sa[s + i]!;
    da[d + i] = (((a | 0x80008000) - (b & 0x7fff7fff)) ^ ((a ^ ~b) & 0x80008000)) >>> 0;
  }
}
export function psubd(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (da[d + i]! - sa[s + i]!) >>> 0;
}
export function psubq(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i += 2) {
    const lo = da[d + i]! - sa[s + i]!;
    da[d + i] = lo >>> 0;
    da[d + i + 1] = (da[d + i + 1]! - sa[s + i + 1]! - (lo < 0 ? 1 : 0)) >>> 0;
  }
}
export function paddsb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 4; i++) R.i8[i] = satS8(A.i8[i]! + B.i8[i]!);
  stR(da, d, n);
}
export function paddsw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.i16[i] = satS16(A.i16[i]! + B.i16[i]!);
  stR(da, d, n);
}
export function paddusb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 4; i++) R.u8[i] = satU8(A.u8[i]! + B.u8[i]!);
  stR(da, d, n);
}
export function paddusw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.u16[i] = satU16(A.u16[i]! + B.u16[i]!);
  stR(da, d, n);
}
export function psubsb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 4; i++) R.i8[i] = satS8(A.i8[i]! - B.i8[i]!);
  stR(da, d, n);
}
export function psubsw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.i16[i] = satS16(A.i16[i]! - B.i16[i]!);
  stR(da, d, n);
}
export function psubusb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 4; i++) R.u8[i] = satU8(A.u8[i]! - B.u8[i]!);
  stR(da, d, n);
}
export function psubusw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.u16[i] = satU16(A.u16[i]! - B.u16[i]!);
  stR(da, d, n);
}

// ---- multiply ----

export function pmullw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.i16[i] = Math.imul(A.i16[i]!, B.i16[i]!);
  stR(da, d, n);
}
export function pmulhw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.i16[i] = (A.i16[i]! * B.i16[i]!) >> 16;
  stR(da, d, n);
}
export function pmulhuw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.u16[i] = (A.u16[i]! * B.u16[i]!) >>> 16;
  stR(da, d, n);
}
/** PMULUDQ: unsigned dword 0 (and 2) products as qwords. */
export function pmuludq(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i += 2) {
    const a = da[d + i]!;
    const b = sa[s + i]!;
    da[d + i] = Math.imul(a, b) >>> 0;
    da[d + i + 1] = umulhi(a, b);
  }
}
/** PMULDQ (SSE4.1): signed dword 0 and 2 products as qwords. */
export function pmuldq(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i += 2) {
    const a = da[d + i]! | 0;
    const b = sa[s + i]! | 0;
    const lo = Math.imul(a, b) >>> 0;
    let hi = umulhi(a >>> 0, b >>> 0);
    // signed high = unsigned high - (a<0 ? b : 0) - (b<0 ? a : 0)
    if (a < 0) hi = (hi - (b >>> 0)) >>> 0;
    if (b < 0) hi = (hi - (a >>> 0)) >>> 0;
    da[d + i] = lo;
    da[d + i + 1] = hi;
  }
}
/** PMULLD (SSE4.1). */
export function pmulld(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = Math.imul(da[d + i]!, sa[s + i]!) >>> 0;
}
export function pmaddwd(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n; i++) {
    R.u32[i] = (A.i16[2 * i]! * B.i16[2 * i]! + A.i16[2 * i + 1]! * B.i16[2 * i + 1]!) >>> 0;
  }
  stR(da, d, n);
}
/** PMADDUBSW (SSSE3): unsigned bytes of dest × signed bytes of source, adjacent pairs summed with saturation. */
export function pmaddubsw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) {
    R.i16[i] = satS16(A.u8[2 * i]! * B.i8[2 * i]! + A.u8[2 * i + 1]! * B.i8[2 * i + 1]!);
  }
  stR(da, d, n);
}
/** PMULHRSW (SSSE3): ((a * b >> 14) + 1) >> 1 per signed word. */
export function pmulhrsw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.i16[i] = (((A.i16[i]! * B.i16[i]!) >> 14) + 1) >> 1;
  stR(da, d, n);
}

// ---- average, min, max, sad ----

export function pavgb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 4; i++) R.u8[i] = (A.u8[i]! + B.u8[i]! + 1) >> 1;
  stR(da, d, n);
}
export function pavgw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.u16[i] = (A.u16[i]! + B.u16[i]! + 1) >>> 1;
  stR(da, d, n);
}
function minmax8(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, signed: boolean, max: boolean): void {
  ld2(da, d, sa, s, n);
  const a = signed ? A.i8 : A.u8;
  const b = signed ? B.i8 : B.u8;
  const r = signed ? R.i8 : R.u8;
  for (let i = 0; i < n * 4; i++) r[i] = max ? Math.max(a[i]!, b[i]!) : Math.min(a[i]!, b[i]!);
  stR(da, d, n);
}
function minmax16(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, signed: boolean, max: boolean): void {
  ld2(da, d, sa, s, n);
  const a = signed ? A.i16 : A.u16;
  const b = signed ? B.i16 : B.u16;
  const r = signed ? R.i16 : R.u16;
  for (let i = 0; i < n * 2; i++) r[i] = max ? Math.max(a[i]!, b[i]!) : Math.min(a[i]!, b[i]!);
  stR(da, d, n);
}
function minmax32(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, signed: boolean, max: boolean): void {
  for (let i = 0; i < n; i++) {
    const x = signed ? da[d + i]! | 0 : da[d + i]!;
    const y = signed ? sa[s + i]! | 0 : sa[s + i]!;
    da[d + i] = (max ? Math.max(x, y) : Math.min(x, y)) >>> 0;
  }
}
/** Unsigned byte min/max straight on dwords (hot in string functions). */
function minmaxub(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, max: boolean): void {
  for (let i = 0; i < n; i++) {
    const a = da[d + i]!;
    const b = sa[s + i]!;
    let r = 0;
    for (let sh = 0; sh < 32; sh += 8) {
      const x = (a >>> sh) & 0xff;
      const y = (b >>> sh) & 0xff;
      r |= (max ? (x > y ? x : y) : x < y ? x : y) << sh;
    }
    da[d + i] = r >>> 0;
  }
}
export const pminub: IntOp = (da, d, sa, s, n) => minmaxub(da, d, sa, s, n, false);
export const pmaxub: IntOp = (da, d, sa, s, n) => minmaxub(da, d, sa, s, n, true);
export const pminsb: IntOp = (da, d, sa, s, n) => minmax8(da, d, sa, s, n, true, false);
export const pmaxsb: IntOp = (da, d, sa, s, n) => minmax8(da, d, sa, s, n, true, true);
export const pminsw: IntOp = (da, d, sa, s, n) => minmax16(da, d, sa, s, n, true, false);
export const pmaxsw: IntOp = (da, d, sa, s, n) => minmax16(da, d, sa, s, n, true, true);
export const pminuw: IntOp = (da, d, sa, s, n) => minmax16(da, d, sa, s, n, false, false);
export const pmaxuw: IntOp = (da, d, sa, s, n) => minmax16(da, d, sa, s, n, false, true);
export const pminsd: IntOp = (da, d, sa, s, n) => minmax32(da, d, sa, s, n, true, false);
export const pmaxsd: IntOp = (da, d, sa, s, n) => minmax32(da, d, sa, s, n, true, true);
export const pminud: IntOp = (da, d, sa, s, n) => minmax32(da, d, sa, s, n, false, false);
export const pmaxud: IntOp = (da, d, sa, s, n) => minmax32(da, d, sa, s, n, false, true);

/** PSADBW: per 8-byte group, the sum of absolute byte differences in the low word, rest zero. */
export function psadbw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let g = 0; g < n / 2; g++) {
    let sum = 0;
    for (let i = 0; i < 8; i++) sum += Math.abs(A.u8[g * 8 + i]! - B.u8[g * 8 + i]!);
    R.u32[g * 2] = sum;
    R.u32[g * 2 + 1] = 0;
  }
  stR(da, d, n);
}

// ---- compare ----

export function pcmpeqb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = da[d + i]! ^ sa[s + i]!;
    // Exact zero-byte detection: bit 7 of each byte set iff the byte of x is zero.
    const z = ~(((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x | 0x7f7f7f7f);
    da[d + i] = Math.imul((z >>> 7) & 0x01010101, 0xff) >>> 0;
  }
}
export function pcmpeqw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = da[d + i]! ^ sa[s + i]!;
    da[d + i] = ((x & 0xffff ? 0 : 0xffff) | (x >>> 16 ? 0 : 0xffff0000)) >>> 0;
  }
}
export function pcmpeqd(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = da[d + i] === sa[s + i] ? 0xffffffff : 0;
}
/** PCMPEQQ (SSE4.1). */
export function pcmpeqq(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i += 2) {
    const r = da[d + i] === sa[s + i] && da[d + i + 1] === sa[s + i + 1] ? 0xffffffff : 0;
    da[d + i] = r;
    da[d + i + 1] = r;
  }
}
export function pcmpgtb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 4; i++) R.u8[i] = A.i8[i]! > B.i8[i]! ? 0xff : 0;
  stR(da, d, n);
}
export function pcmpgtw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n * 2; i++) R.u16[i] = A.i16[i]! > B.i16[i]! ? 0xffff : 0;
  stR(da, d, n);
}
export function pcmpgtd(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (da[d + i]! | 0) > (sa[s + i]! | 0) ? 0xffffffff : 0;
}

// ---- logic (also ANDPS/ANDPD/ANDNPS/ANDNPD/ORPS/ORPD/XORPS/XORPD) ----

export function pand(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (da[d + i]! & sa[s + i]!) >>> 0;
}
export function pandn(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (~da[d + i]! & sa[s + i]!) >>> 0;
}
export function por(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (da[d + i]! | sa[s + i]!) >>> 0;
}
export function pxor(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (da[d + i]! ^ sa[s + i]!) >>> 0;
}

// ---- shifts ----

/** Shift count from a register/memory operand: its low 64 bits, unsigned (huge counts clamp to 255). */
export function shiftCount(sa: Uint32Array, s: number): number {
  return sa[s + 1] !== 0 || sa[s]! > 255 ? 255 : sa[s]!;
}
export function psllw(da: Uint32Array, d: number, n: number, c: number): void {
  ld1(da, d, n);
  for (let i = 0; i < n * 2; i++) R.u16[i] = c > 15 ? 0 : B.u16[i]! << c;
  stR(da, d, n);
}
export function psrlw(da: Uint32Array, d: number, n: number, c: number): void {
  ld1(da, d, n);
  for (let i = 0; i < n * 2; i++) R.u16[i] = c > 15 ? 0 : B.u16[i]! >>> c;
  stR(da, d, n);
}
export function psraw(da: Uint32Array, d: number, n: number, c: number): void {
  ld1(da, d, n);
  for (let i = 0; i < n * 2; i++) R.i16[i] = B.i16[i]! >> (c > 15 ? 15 : c);
  stR(da, d, n);
}
export function pslld(da: Uint32Array, d: number, n: number, c: number): void {
  for (let i = 0; i < n; i++) da[d + i] = c > 31 ? 0 : (da[d + i]! << c) >>> 0;
}
export function psrld(da: Uint32Array, d: number, n: number, c: number): void {
  for (let i = 0; i < n; i++) da[d + i] = c > 31 ? 0 : da[d + i]! >>> c;
}
export function psrad(da: Uint32Array, d: number, n: number, c: number): void {
  for (let i = 0; i < n; i++) da[d + i] = (da[d + i]! >> (c > 31 ? 31 : c)) >>> 0;
}
export function psllq(da: Uint32Array, d: number, n: number, c: number): void {
  for (let i = 0; i < n; i += 2) {
    const lo = da[d + i]!;
    const hi = da[d + i + 1]!;
    if (c > 63) {
      da[d + i] = 0;
      da[d + i + 1] = 0;
    } else if (c >= 32) {
      da[d + i] = 0;
      da[d + i + 1] = (lo << (c - 32)) >>> 0;
    } else if (c > 0) {
      da[d + i] = (lo << c) >>> 0;
      da[d + i + 1] = ((hi << c) | (lo >>> (32 - c))) >>> 0;
    }
  }
}
export function psrlq(da: Uint32Array, d: number, n: number, c: number): void {
  for (let i = 0; i < n; i += 2) {
    const lo = da[d + i]!;
    const hi = da[d + i + 1]!;
    if (c > 63) {
      da[d + i] = 0;
      da[d + i + 1] = 0;
    } else if (c >= 32) {
      da[d + i] = hi >>> (c - 32);
      da[d + i + 1] = 0;
    } else if (c > 0) {
      da[d + i] = ((lo >>> c) | (hi << (32 - c))) >>> 0;
      da[d + i + 1] = hi >>> c;
    }
  }
}
/** PSLLDQ xmm, imm8 (bytes). */
export function pslldq(da: Uint32Array, d: number, c: number): void {
  ld1(da, d, 4);
  for (let i = 0; i < 16; i++) R.u8[i] = c > 15 || i < c ? 0 : B.u8[i - c]!;
  stR(da, d, 4);
}
/** PSRLDQ xmm, imm8 (bytes). */
export function psrldq(da: Uint32Array, d: number, c: number): void {
  ld1(da, d, 4);
  for (let i = 0; i < 16; i++) R.u8[i] = c > 15 || i + c > 15 ? 0 : B.u8[i + c]!;
  stR(da, d, 4);
}

// ---- unpack / pack ----

function unpack(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, size: number, high: boolean): void {
  ld2(da, d, sa, s, n);
  const half = n * 2; // bytes per half
  const base = high ? half : 0;
  for (let k = 0; k < half / size; k++) {
    for (let j = 0; j < size; j++) {
      R.u8[2 * k * size + j] = A.u8[base + k * size + j]!;
      R.u8[(2 * k + 1) * size + j] = B.u8[base + k * size + j]!;
    }
  }
  stR(da, d, n);
}
export const punpcklbw: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 1, false);
export const punpcklwd: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 2, false);
export const punpckldq: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 4, false);
export const punpcklqdq: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 8, false);
export const punpckhbw: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 1, true);
export const punpckhwd: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 2, true);
export const punpckhdq: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 4, true);
export const punpckhqdq: IntOp = (da, d, sa, s, n) => unpack(da, d, sa, s, n, 8, true);

export function packsswb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  const w = n * 2;
  for (let i = 0; i < w; i++) {
    R.i8[i] = satS8(A.i16[i]!);
    R.i8[w + i] = satS8(B.i16[i]!);
  }
  stR(da, d, n);
}
export function packuswb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  const w = n * 2;
  for (let i = 0; i < w; i++) {
    R.u8[i] = satU8(A.i16[i]!);
    R.u8[w + i] = satU8(B.i16[i]!);
  }
  stR(da, d, n);
}
export function packssdw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n; i++) {
    R.i16[i] = satS16(A.i32[i]!);
    R.i16[n + i] = satS16(B.i32[i]!);
  }
  stR(da, d, n);
}
/** PACKUSDW (SSE4.1). */
export function packusdw(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  for (let i = 0; i < n; i++) {
    R.u16[i] = satU16(A.i32[i]!);
    R.u16[n + i] = satU16(B.i32[i]!);
  }
  stR(da, d, n);
}

// ---- SSSE3 ----

export function pshufb(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  ld2(da, d, sa, s, n);
  const mask = n * 4 - 1;
  for (let i = 0; i < n * 4; i++) {
    const idx = B.u8[i]!;
    R.u8[i] = idx & 0x80 ? 0 : A.u8[idx & mask]!;
  }
  stR(da, d, n);
}
/** PALIGNR: (dest:src) >> (imm * 8), low n dwords. */
export function palignr(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, imm: number): void {
  const nb = n * 4;
  // A holds src (low half) then dest (high half).
  for (let i = 0; i < n; i++) {
    A.u32[i] = sa[s + i]!;
    A.u32[n + i] = da[d + i]!;
  }
  for (let i = 0; i < nb; i++) {
    const k = i + imm;
    R.u8[i] = k < 2 * nb ? A.u8[k]! : 0;
  }
  stR(da, d, n);
}
function pabs(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, size: number): void {
  ld1(sa, s, n);
  if (size === 1) for (let i = 0; i < n * 4; i++) R.u8[i] = Math.abs(B.i8[i]!);
  else if (size === 2) for (let i = 0; i < n * 2; i++) R.u16[i] = Math.abs(B.i16[i]!);
  else for (let i = 0; i < n; i++) R.u32[i] = Math.abs(B.i32[i]!);
  stR(da, d, n);
}
export const pabsb: IntOp = (da, d, sa, s, n) => pabs(da, d, sa, s, n, 1);
export const pabsw: IntOp = (da, d, sa, s, n) => pabs(da, d, sa, s, n, 2);
export const pabsd: IntOp = (da, d, sa, s, n) => pabs(da, d, sa, s, n, 4);

function psign(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, size: number): void {
  ld2(da, d, sa, s, n);
  if (size === 1) {
    for (let i = 0; i < n * 4; i++) R.i8[i] = B.i8[i]! < 0 ? -A.i8[i]! : B.i8[i] === 0 ? 0 : A.i8[i]!;
  } else if (size === 2) {
    for (let i = 0; i < n * 2; i++) R.i16[i] = B.i16[i]! < 0 ? -A.i16[i]! : B.i16[i] === 0 ? 0 : A.i16[i]!;
  } else {
    for (let i = 0; i < n; i++) R.i32[i] = B.i32[i]! < 0 ? -A.i32[i]! : B.i32[i] === 0 ? 0 : A.i32[i]!;
  }
  stR(da, d, n);
}
export const psignb: IntOp = (da, d, sa, s, n) => psign(da, d, sa, s, n, 1);
export const psignw: IntOp = (da, d, sa, s, n) => psign(da, d, sa, s, n, 2);
export const psignd: IntOp = (da, d, sa, s, n) => psign(da, d, sa, s, n, 4);

/** Horizontal ops: kind 0 add wrap, 1 sub wrap, 2 add sat, 3 sub sat (words); dwords for size 4. */
function phop(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number, size: number, kind: number): void {
  ld2(da, d, sa, s, n);
  if (size === 2) {
    const w = n * 2; // words per operand
    const h = w / 2;
    for (let i = 0; i < h; i++) {
      R.i16[i] = hw(A.i16[2 * i]!, A.i16[2 * i + 1]!, kind);
      R.i16[h + i] = hw(B.i16[2 * i]!, B.i16[2 * i + 1]!, kind);
    }
  } else {
    const h = n / 2;
    for (let i = 0; i < h; i++) {
      R.i32[i] = kind & 1 ? A.i32[2 * i]! - A.i32[2 * i + 1]! : A.i32[2 * i]! + A.i32[2 * i + 1]!;
      R.i32[h + i] = kind & 1 ? B.i32[2 * i]! - B.i32[2 * i + 1]! : B.i32[2 * i]! + B.i32[2 * i + 1]!;
    }
  }
  stR(da, d, n);
}
function hw(x: number, y: number, kind: number): number {
  const v = kind & 1 ? x - y : x + y;
  return kind & 2 ? satS16(v) : v;
}
export const phaddw: IntOp = (da, d, sa, s, n) => phop(da, d, sa, s, n, 2, 0);
export const phsubw: IntOp = (da, d, sa, s, n) => phop(da, d, sa, s, n, 2, 1);
export const phaddsw: IntOp = (da, d, sa, s, n) => phop(da, d, sa, s, n, 2, 2);
export const phsubsw: IntOp = (da, d, sa, s, n) => phop(da, d, sa, s, n, 2, 3);
export const phaddd: IntOp = (da, d, sa, s, n) => phop(da, d, sa, s, n, 4, 0);
export const phsubd: IntOp = (da, d, sa, s, n) => phop(da, d, sa, s, n, 4, 1);

// ---- SSE4.1 ----

/** PHMINPOSUW: minimum unsigned word in bits 15:0, its index in bits 18:16, rest zero. */
export function phminposuw(da: Uint32Array, d: number, sa: Uint32Array, s: number): void {
  ld1(sa, s, 4);
  let m = B.u16[0]!;
  let idx = 0;
  for (let i = 1; i < 8; i++) {
    if (B.u16[i]! < m) {
      m = B.u16[i]!;
      idx = i;
    }
  }
  da[d] = m | (idx << 16);
  da[d + 1] = 0;
  da[d + 2] = 0;
  da[d + 3] = 0;
}
/** MPSADBW: eight 4-byte SADs; source block imm[1:0]*4 bytes, dest window start imm[2]*4. */
export function mpsadbw(da: Uint32Array, d: number, sa: Uint32Array, s: number, imm: number): void {
  ld2(da, d, sa, s, 4);
  const so = (imm & 3) * 4;
  const dof = imm & 4 ? 4 : 0;
  for (let i = 0; i < 8; i++) {
    let sum = 0;
    for (let k = 0; k < 4; k++) sum += Math.abs(A.u8[dof + i + k]! - B.u8[so + k]!);
    R.u16[i] = sum;
  }
  stR(da, d, 4);
}
