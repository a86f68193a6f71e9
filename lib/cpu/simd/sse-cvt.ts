// SSE/SSE2 conversions (CVT*, CVTT*). Same calling convention as sse-fp.ts. Conversions to a general register
// leave the integer in st.ires (lo, hi) and return 0 or XM; conversions into MMX registers write the x87/MMX file.

import { FE_IE, FE_PE, FMT32, FMT64, RC_ZERO, fpRound, fpRoundInt, fpStatus, fpReset, roundExact, type FpFormat } from './fp-core.js';
import { f32IsNaN, f32IsSNaN, f64FromBits, f64Hi, f64IsNaN, f64IsSNaN, f64Lo } from './bits.js';
import { in32, in64, laneAcc, out32, out64, hiOut, reportedFlags } from './sse-fp-lanes.js';
import { MXCSR_DAZ, SimdState, XM } from './state.js';
import { mmxEnter, mmxMark } from './mmx-state.js';

const tmp = new Uint32Array(4);

function commit(st: SimdState, d: number, from: number, to: number, zeroFrom = 4): number {
  const acc = laneAcc.flags;
  if (acc & ~(st.mxcsr >>> 7) & 0x3f) {
    st.mxcsr |= reportedFlags(acc, st.mxcsr);
    return XM;
  }
  st.mxcsr |= acc;
  const b = d * 4;
  for (let i = from; i < to; i++) st.xmm[b + i] = tmp[i]!;
  for (let i = zeroFrom; i < 4; i++) st.xmm[b + i] = 0;
  return 0;
}

function noFault(st: SimdState): boolean {
  const acc = laneAcc.flags;
  const ok = (acc & ~(st.mxcsr >>> 7) & 0x3f) === 0;
  st.mxcsr |= ok ? acc : reportedFlags(acc, st.mxcsr);
  return ok;
}

// ---- float → integer ----

/** High dword side result (typed-array slot: avoids heap-number allocation). */
const cvtOut = new Uint32Array(1);
/** Source value (finite number or NaN marker) → int32 (returned) under rc; NaN/overflow → indefinite + IE. */
function toI32(v: number, nan: boolean, rc: number): number {
  if (nan) {
    laneAcc.flags |= FE_IE;
    return 0x80000000;
  }
  fpReset();
  const r = fpRoundInt(v, rc);
  if (!(r >= -2147483648 && r <= 2147483647)) {
    laneAcc.flags |= FE_IE;
    return 0x80000000;
  }
  laneAcc.flags |= fpStatus.flags & FE_PE;
  return r | 0;
}
/** → int64 as lo (returned) / cvtOut[0]!. */
function toI64(v: number, nan: boolean, rc: number): number {
  if (nan) {
    laneAcc.flags |= FE_IE;
    cvtOut[0] = 0x80000000;
    return 0;
  }
  fpReset();
  const r = fpRoundInt(v, rc);
  if (!(r >= -9223372036854775808 && r < 9223372036854775808)) {
    laneAcc.flags |= FE_IE;
    cvtOut[0] = 0x80000000;
    return 0;
  }
  laneAcc.flags |= fpStatus.flags & FE_PE;
  const hi = Math.floor(r / 4294967296);
  cvtOut[0] = hi >>> 0;
  return (r - hi * 4294967296) >>> 0;
}

/** Float32 bits → number for integer conversion: DAZ applies, DE is not reported. */
function f32Val(b: number, mx: number): number {
  if ((b & 0x7f800000) === 0 && (b & 0x007fffff) !== 0 && mx & MXCSR_DAZ) return 0;
  const save = laneAcc.flags;
  const v = in32(b, mx & ~MXCSR_DAZ);
  laneAcc.flags = save;
  return v;
}
function f64Val(lo: number, hi: number, mx: number): number {
  if ((hi & 0x7ff00000) === 0 && ((hi & 0x000fffff) !== 0 || lo !== 0) && mx & MXCSR_DAZ) return 0;
  return f64FromBits(lo, hi);
}
function rcOf(st: SimdState, trunc: boolean): number {
  return trunc ? RC_ZERO : (st.mxcsr >>> 13) & 3;
}

/** CVTSS2SI / CVTTSS2SI r32|r64, xmm/m32 → st.ires. */
export function cvtss2si(st: SimdState, s: Uint32Array, so: number, is64: boolean, trunc = false): number {
  laneAcc.flags = 0;
  const b = s[so]!;
  const nan = (b & 0x7f800000) === 0x7f800000; // NaN or infinity: both are invalid
  const v = nan ? 0 : f32Val(b, st.mxcsr);
  const rc = rcOf(st, trunc);
  let lo: number;
  let hi = 0;
  if (is64) {
    lo = toI64(v, nan, rc);
    hi = cvtOut[0]!;
  } else lo = toI32(v, nan, rc) >>> 0;
  if (!noFault(st)) return XM;
  st.ires[0] = lo;
  st.ires[1] = hi;
  return 0;
}
export const cvttss2si = (st: SimdState, s: Uint32Array, so: number, is64: boolean): number =>
  cvtss2si(st, s, so, is64, true);

/** CVTSD2SI / CVTTSD2SI r32|r64, xmm/m64 → st.ires. */
export function cvtsd2si(st: SimdState, s: Uint32Array, so: number, is64: boolean, trunc = false): number {
  laneAcc.flags = 0;
  const lo0 = s[so]!;
  const hi0 = s[so + 1]!;
  const nan = (hi0 & 0x7ff00000) === 0x7ff00000;
  const v = nan ? 0 : f64Val(lo0, hi0, st.mxcsr);
  const rc = rcOf(st, trunc);
  let lo: number;
  let hi = 0;
  if (is64) {
    lo = toI64(v, nan, rc);
    hi = cvtOut[0]!;
  } else lo = toI32(v, nan, rc) >>> 0;
  if (!noFault(st)) return XM;
  st.ires[0] = lo;
  st.ires[1] = hi;
  return 0;
}
export const cvttsd2si = (st: SimdState, s: Uint32Array, so: number, is64: boolean): number =>
  cvtsd2si(st, s, so, is64, true);

function ps2dqN(st: SimdState, s: Uint32Array, so: number, n: number, trunc: boolean): void {
  const rc = rcOf(st, trunc);
  for (let i = 0; i < n; i++) {
    const b = s[so + i]!;
    const nan = (b & 0x7f800000) === 0x7f800000;
    tmp[i] = toI32(nan ? 0 : f32Val(b, st.mxcsr), nan, rc) >>> 0;
  }
}
function pd2dqN(st: SimdState, s: Uint32Array, so: number, n: number, trunc: boolean): void {
  const rc = rcOf(st, trunc);
  for (let i = 0; i < n; i++) {
    const lo = s[so + 2 * i]!;
    const hi = s[so + 2 * i + 1]!;
    const nan = (hi & 0x7ff00000) === 0x7ff00000;
    tmp[i] = toI32(nan ? 0 : f64Val(lo, hi, st.mxcsr), nan, rc) >>> 0;
  }
}

/** CVTPS2DQ / CVTTPS2DQ xmm, xmm/m128. */
export function cvtps2dq(st: SimdState, d: number, s: Uint32Array, so: number, trunc = false): number {
  laneAcc.flags = 0;
  ps2dqN(st, s, so, 4, trunc);
  return commit(st, d, 0, 4);
}
export const cvttps2dq = (st: SimdState, d: number, s: Uint32Array, so: number): number =>
  cvtps2dq(st, d, s, so, true);
/** CVTPD2DQ / CVTTPD2DQ xmm, xmm/m128: two int32 in the low qword, high qword zeroed. */
export function cvtpd2dq(st: SimdState, d: number, s: Uint32Array, so: number, trunc = false): number {
  laneAcc.flags = 0;
  pd2dqN(st, s, so, 2, trunc);
  return commit(st, d, 0, 2, 2);
}
export const cvttpd2dq = (st: SimdState, d: number, s: Uint32Array, so: number): number =>
  cvtpd2dq(st, d, s, so, true);

/** Writes tmp[0..1] into MMX register d if no unmasked exception (with the x87→MMX transition). */
function commitMmx(st: SimdState, d: number): number {
  if (!noFault(st)) return XM;
  mmxEnter(st.x87);
  st.x87.regs[d * 4] = tmp[0]!;
  st.x87.regs[d * 4 + 1] = tmp[1]!;
  mmxMark(st.x87, d);
  return 0;
}
/** CVTPS2PI / CVTTPS2PI mm, xmm/m64. */
export function cvtps2pi(st: SimdState, d: number, s: Uint32Array, so: number, trunc = false): number {
  laneAcc.flags = 0;
  ps2dqN(st, s, so, 2, trunc);
  return commitMmx(st, d);
}
export const cvttps2pi = (st: SimdState, d: number, s: Uint32Array, so: number): number =>
  cvtps2pi(st, d, s, so, true);
/** CVTPD2PI / CVTTPD2PI mm, xmm/m128. */
export function cvtpd2pi(st: SimdState, d: number, s: Uint32Array, so: number, trunc = false): number {
  laneAcc.flags = 0;
  pd2dqN(st, s, so, 2, trunc);
  return commitMmx(st, d);
}
export const cvttpd2pi = (st: SimdState, d: number, s: Uint32Array, so: number): number =>
  cvtpd2pi(st, d, s, so, true);

// ---- integer → float ----

function i32ToF32(v: number, mx: number): number {
  fpReset();
  return out32(fpRound(v | 0, FMT32, (mx >>> 13) & 3), mx);
}
/** Exact int64 → float32/64 rounding under mx.RC (the int is hi*2^32 + lo, an exact sum of two doubles). */
function i64Round(lo: number, hi: number, f: FpFormat, mx: number): number {
  const a = (hi | 0) * 4294967296;
  const b = lo >>> 0;
  const s = a + b;
  const bb = s - a;
  const err = a - (s - bb) + (b - bb);
  fpReset();
  if (s === 0) return 0;
  if (err === 0) return fpRound(s, f, (mx >>> 13) & 3);
  // s + err is exact; round the pair.
  return roundExact(s, err, 0, f, (mx >>> 13) & 3);
}

/** CVTSI2SS xmm, r/m32 (is64 false, hi ignored) or r/m64 (lo, hi). Upper lanes preserved. */
export function cvtsi2ss(st: SimdState, d: number, lo: number, hi: number, is64: boolean): number {
  laneAcc.flags = 0;
  if (is64) {
    const r = i64Round(lo, hi, FMT32, st.mxcsr);
    tmp[0] = out32(r, st.mxcsr);
  } else tmp[0] = i32ToF32(lo, st.mxcsr);
  return commit(st, d, 0, 1);
}
/** CVTSI2SD xmm, r/m32 or r/m64. Upper qword preserved. */
export function cvtsi2sd(st: SimdState, d: number, lo: number, hi: number, is64: boolean): number {
  laneAcc.flags = 0;
  let r: number;
  if (is64) r = i64Round(lo, hi, FMT64, st.mxcsr);
  else {
    fpReset();
    r = lo | 0;
  }
  tmp[0] = out64(r, st.mxcsr);
  tmp[1] = hiOut[0]!;
  return commit(st, d, 0, 2);
}
/** CVTDQ2PS xmm, xmm/m128. */
export function cvtdq2ps(st: SimdState, d: number, s: Uint32Array, so: number): number {
  laneAcc.flags = 0;
  for (let i = 0; i < 4; i++) tmp[i] = i32ToF32(s[so + i]!, st.mxcsr);
  return commit(st, d, 0, 4);
}
/** CVTDQ2PD xmm, xmm/m64 (exact). */
export function cvtdq2pd(st: SimdState, d: number, s: Uint32Array, so: number): number {
  const a = s[so]! | 0;
  const b = s[so + 1]! | 0;
  tmp[0] = f64Lo(a);
  tmp[1] = f64Hi();
  tmp[2] = f64Lo(b);
  tmp[3] = f64Hi();
  laneAcc.flags = 0;
  return commit(st, d, 0, 4);
}
/** CVTPI2PS xmm, mm/m64: lanes 0-1 converted, 2-3 preserved. fromMmxReg: source is an MMX register (x87→MMX
 * transition happens). */
export function cvtpi2ps(st: SimdState, d: number, s: Uint32Array, so: number, fromMmxReg: boolean): number {
  laneAcc.flags = 0;
  tmp[0] = i32ToF32(s[so]!, st.mxcsr);
  tmp[1] = i32ToF32(s[so + 1]!, st.mxcsr);
  const r = commit(st, d, 0, 2);
  if (r === 0 && fromMmxReg) mmxEnter(st.x87);
  return r;
}
/** CVTPI2PD xmm, mm/m64 (exact). */
export function cvtpi2pd(st: SimdState, d: number, s: Uint32Array, so: number, fromMmxReg: boolean): number {
  cvtdq2pd(st, d, s, so);
  if (fromMmxReg) mmxEnter(st.x87);
  return 0;
}

// ---- float ↔ float ----

/** float32 bits → float64 (lo returned, hi in cvtOut[0]!); SNaN quieted with IE, denormal DE/DAZ. */
function f32ToF64(b: number, mx: number): number {
  if (f32IsNaN(b)) {
    if (f32IsSNaN(b)) laneAcc.flags |= FE_IE;
    const q = (b | 0x00400000) >>> 0;
    const mant = q & 0x007fffff;
    cvtOut[0] = ((q & 0x80000000) | 0x7ff00000 | (mant >>> 3)) >>> 0;
    return (mant << 29) >>> 0;
  }
  const v = in32(b, mx);
  const lo = f64Lo(v);
  cvtOut[0] = f64Hi();
  return lo;
}
/** float64 → float32 bits with rounding, overflow/underflow, FTZ. */
function f64ToF32(lo: number, hi: number, mx: number): number {
  if (f64IsNaN(lo, hi)) {
    if (f64IsSNaN(lo, hi)) laneAcc.flags |= FE_IE;
    return ((hi & 0x80000000) | 0x7fc00000 | ((hi & 0x000fffff) << 3) | (lo >>> 29)) >>> 0;
  }
  const v = in64(lo, hi, mx);
  fpReset();
  return out32(fpRound(v, FMT32, (mx >>> 13) & 3), mx);
}

/** CVTPS2PD xmm, xmm/m64. */
export function cvtps2pd(st: SimdState, d: number, s: Uint32Array, so: number): number {
  laneAcc.flags = 0;
  const a = s[so]!;
  const b = s[so + 1]!;
  tmp[0] = f32ToF64(a, st.mxcsr);
  tmp[1] = cvtOut[0]!;
  tmp[2] = f32ToF64(b, st.mxcsr);
  tmp[3] = cvtOut[0]!;
  return commit(st, d, 0, 4);
}
/** CVTSS2SD xmm, xmm/m32 (upper qword preserved). */
export function cvtss2sd(st: SimdState, d: number, s: Uint32Array, so: number): number {
  laneAcc.flags = 0;
  tmp[0] = f32ToF64(s[so]!, st.mxcsr);
  tmp[1] = cvtOut[0]!;
  return commit(st, d, 0, 2);
}
/** CVTPD2PS xmm, xmm/m128 (high qword zeroed). */
export function cvtpd2ps(st: SimdState, d: number, s: Uint32Array, so: number): number {
  laneAcc.flags = 0;
  tmp[0] = f64ToF32(s[so]!, s[so + 1]!, st.mxcsr);
  tmp[1] = f64ToF32(s[so + 2]!, s[so + 3]!, st.mxcsr);
  return commit(st, d, 0, 2, 2);
}
/** CVTSD2SS xmm, xmm/m64 (upper dwords preserved). */
export function cvtsd2ss(st: SimdState, d: number, s: Uint32Array, so: number): number {
  laneAcc.flags = 0;
  tmp[0] = f64ToF32(s[so]!, s[so + 1]!, st.mxcsr);
  return commit(st, d, 0, 1);
}
