// SSE/SSE2/SSE3/SSE4.1 floating-point arithmetic on XMM registers.
//
// Calling convention for every function here: (st, d, s, so[, imm]) — d is the destination XMM register number
// (also the first source), s/so is the second source as a Uint32Array and dword offset: pass st.xmm and
// 4 * regNumber for a register, or a scratch Uint32Array(4) holding the memory operand and 0. Returns 0, or XM
// when an unmasked exception occurred (destination untouched, MXCSR flags set).

import { FE_IE, FE_PE, fpRoundInt, fpStatus, fpReset } from './fp-core.js';
import { f32IsNaN, f32IsSNaN, f64IsNaN, f64IsSNaN } from './bits.js';
import {
  OP_ADD,
  OP_DIV,
  OP_MAX,
  OP_MIN,
  OP_MUL,
  OP_SUB,
  cmp32,
  cmp64,
  in32,
  in64,
  lane32,
  lane64,
  laneAcc,
  out32,
  out64,
  hiOut,
  sqrt32,
  sqrt64,
} from './sse-fp-lanes.js';
import { SimdState, XM } from './state.js';
import { reportedFlags } from './sse-fp-lanes.js';

const tmp = new Uint32Array(4);

/** Writes tmp[from..to) into XMM d unless an unmasked exception was accumulated. */
function commit(st: SimdState, d: number, from: number, to: number, earlier = 0): number {
  const acc = laneAcc.flags;
  if (acc & ~(st.mxcsr >>> 7) & 0x3f) {
    st.mxcsr |= earlier | reportedFlags(acc, st.mxcsr);
    return XM;
  }
  st.mxcsr |= acc | earlier;
  const x = st.xmm;
  const b = d * 4;
  for (let i = from; i < to; i++) x[b + i] = tmp[i]!;
  return 0;
}

function packed32(op: number, st: SimdState, d: number, s: Uint32Array, so: number, n: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  for (let i = 0; i < n; i++) tmp[i] = lane32(op, x[b + i]!, s[so + i]!, mx);
  return commit(st, d, 0, n);
}

function packed64(op: number, st: SimdState, d: number, s: Uint32Array, so: number, n: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  for (let i = 0; i < n; i += 2) {
    tmp[i] = lane64(op, x[b + i]!, x[b + i + 1]!, s[so + i]!, s[so + i + 1]!, mx);
    tmp[i + 1] = hiOut[0]!;
  }
  return commit(st, d, 0, n);
}

export const addps = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_ADD, st, d, s, so, 4);
export const subps = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_SUB, st, d, s, so, 4);
export const mulps = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_MUL, st, d, s, so, 4);
export const divps = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_DIV, st, d, s, so, 4);
export const minps = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_MIN, st, d, s, so, 4);
export const maxps = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_MAX, st, d, s, so, 4);
export const addss = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_ADD, st, d, s, so, 1);
export const subss = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_SUB, st, d, s, so, 1);
export const mulss = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_MUL, st, d, s, so, 1);
export const divss = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_DIV, st, d, s, so, 1);
export const minss = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_MIN, st, d, s, so, 1);
export const maxss = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed32(OP_MAX, st, d, s, so, 1);
export const addpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_ADD, st, d, s, so, 4);
export const subpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_SUB, st, d, s, so, 4);
export const mulpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_MUL, st, d, s, so, 4);
export const divpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_DIV, st, d, s, so, 4);
export const minpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_MIN, st, d, s, so, 4);
export const maxpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_MAX, st, d, s, so, 4);
export const addsd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_ADD, st, d, s, so, 2);
export const subsd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_SUB, st, d, s, so, 2);
export const mulsd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_MUL, st, d, s, so, 2);
export const divsd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_DIV, st, d, s, so, 2);
export const minsd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_MIN, st, d, s, so, 2);
export const maxsd = (st: SimdState, d: number, s: Uint32Array, so: number): number => packed64(OP_MAX, st, d, s, so, 2);

function sqrtN32(st: SimdState, d: number, s: Uint32Array, so: number, n: number): number {
  laneAcc.flags = 0;
  for (let i = 0; i < n; i++) tmp[i] = sqrt32(s[so + i]!, st.mxcsr);
  return commit(st, d, 0, n);
}
function sqrtN64(st: SimdState, d: number, s: Uint32Array, so: number, n: number): number {
  laneAcc.flags = 0;
  for (let i = 0; i < n; i += 2) {
    tmp[i] = sqrt64(s[so + i]!, s[so + i + 1]!, st.mxcsr);
    tmp[i + 1] = hiOut[0]!;
  }
  return commit(st, d, 0, n);
}
export const sqrtps = (st: SimdState, d: number, s: Uint32Array, so: number): number => sqrtN32(st, d, s, so, 4);
export const sqrtss = (st: SimdState, d: number, s: Uint32Array, so: number): number => sqrtN32(st, d, s, so, 1);
export const sqrtpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => sqrtN64(st, d, s, so, 4);
export const sqrtsd = (st: SimdState, d: number, s: Uint32Array, so: number): number => sqrtN64(st, d, s, so, 2);

// ---- compares ----

function cmpN32(st: SimdState, d: number, s: Uint32Array, so: number, imm: number, n: number): number {
  const x = st.xmm;
  const b = d * 4;
  laneAcc.flags = 0;
  for (let i = 0; i < n; i++) tmp[i] = cmp32(imm, x[b + i]!, s[so + i]!, st.mxcsr) ? 0xffffffff : 0;
  return commit(st, d, 0, n);
}
function cmpN64(st: SimdState, d: number, s: Uint32Array, so: number, imm: number, n: number): number {
  const x = st.xmm;
  const b = d * 4;
  laneAcc.flags = 0;
  for (let i = 0; i < n; i += 2) {
    const r = cmp64(imm, x[b + i]!, x[b + i + 1]!, s[so + i]!, s[so + i + 1]!, st.mxcsr) ? 0xffffffff : 0;
    tmp[i] = r;
    tmp[i + 1] = r;
  }
  return commit(st, d, 0, n);
}
/** CMPPS xmm, xmm/m128, imm8 (predicate imm & 7: EQ LT LE UNORD NEQ NLT NLE ORD). */
export const cmpps = (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number =>
  cmpN32(st, d, s, so, imm, 4);
export const cmpss = (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number =>
  cmpN32(st, d, s, so, imm, 1);
export const cmppd = (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number =>
  cmpN64(st, d, s, so, imm, 4);
export const cmpsd = (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number =>
  cmpN64(st, d, s, so, imm, 2);

// EFLAGS bits produced by COMIS*/UCOMIS*; OF, SF and AF are cleared by the instruction (caller's job).
export const EFL_CF = 0x01;
export const EFL_PF = 0x04;
export const EFL_ZF = 0x40;

function comisResult(st: SimdState, unord: boolean, x: number, y: number): number {
  const acc = laneAcc.flags;
  st.mxcsr |= acc;
  if (acc & ~(st.mxcsr >>> 7) & 0x3f) return XM;
  if (unord) return EFL_ZF | EFL_PF | EFL_CF;
  if (x > y) return 0;
  if (x < y) return EFL_CF;
  return EFL_ZF;
}

/**
 * COMISS / UCOMISS xmm(d), xmm/m32: returns the new ZF|PF|CF bits (OF/SF/AF must be cleared by the caller), or XM.
 * COMISS signals invalid for any NaN, UCOMISS only for SNaN.
 */
export function comiss(st: SimdState, d: number, s: Uint32Array, so: number, unordered = false): number {
  const a = st.xmm[d * 4]!;
  const b = s[so]!;
  laneAcc.flags = 0;
  const unord = f32IsNaN(a) || f32IsNaN(b);
  if (unord) {
    if (!unordered || f32IsSNaN(a) || f32IsSNaN(b)) laneAcc.flags |= FE_IE;
    return comisResult(st, true, 0, 0);
  }
  return comisResult(st, false, in32(a, st.mxcsr), in32(b, st.mxcsr));
}
export const ucomiss = (st: SimdState, d: number, s: Uint32Array, so: number): number => comiss(st, d, s, so, true);

export function comisd(st: SimdState, d: number, s: Uint32Array, so: number, unordered = false): number {
  const alo = st.xmm[d * 4]!;
  const ahi = st.xmm[d * 4 + 1]!;
  const blo = s[so]!;
  const bhi = s[so + 1]!;
  laneAcc.flags = 0;
  const unord = f64IsNaN(alo, ahi) || f64IsNaN(blo, bhi);
  if (unord) {
    if (!unordered || f64IsSNaN(alo, ahi) || f64IsSNaN(blo, bhi)) laneAcc.flags |= FE_IE;
    return comisResult(st, true, 0, 0);
  }
  return comisResult(st, false, in64(alo, ahi, st.mxcsr), in64(blo, bhi, st.mxcsr));
}
export const ucomisd = (st: SimdState, d: number, s: Uint32Array, so: number): number => comisd(st, d, s, so, true);

// ---- reciprocal approximations (no MXCSR effects) ----

const rcpBuf = new Float32Array(1);
const rcpBits = new Uint32Array(rcpBuf.buffer);

/**
 * RCPSS/RSQRTSS lane. Hardware returns a table-based approximation (|rel err| <= 1.5 * 2^-12) that differs
 * between vendors; this returns the correctly rounded float32 of the exact value with the significand truncated to
 * 12 bits, which is within that bound. Denormal inputs count as zero and tiny results flush to zero, as on
 * hardware; no flags are raised.
 */
function approx32(b: number, rsqrt: boolean): number {
  if (f32IsNaN(b)) return (b | 0x00400000) >>> 0;
  const neg = (b & 0x80000000) !== 0;
  const ex = b & 0x7f800000;
  if (ex === 0) return rsqrt ? (neg ? 0xff800000 : 0x7f800000) : neg ? 0xff800000 : 0x7f800000;
  if (ex === 0x7f800000) {
    if (rsqrt) return neg ? 0xffc00000 : 0;
    return neg ? 0x80000000 : 0;
  }
  if (rsqrt && neg) return 0xffc00000;
  rcpBits[0] = b;
  const v = rcpBuf[0]!;
  rcpBuf[0] = rsqrt ? 1 / Math.sqrt(v) : 1 / v;
  let r = rcpBits[0]!;
  if ((r & 0x7f800000) === 0) return neg ? 0x80000000 : 0; // flush tiny
  r = (r & 0xfffff800) >>> 0; // keep 11 fraction bits
  return r;
}
function approxN(st: SimdState, d: number, s: Uint32Array, so: number, n: number, rsqrt: boolean): number {
  const b = d * 4;
  for (let i = 0; i < n; i++) tmp[i] = approx32(s[so + i]!, rsqrt);
  for (let i = 0; i < n; i++) st.xmm[b + i] = tmp[i]!;
  return 0;
}
export const rcpps = (st: SimdState, d: number, s: Uint32Array, so: number): number => approxN(st, d, s, so, 4, false);
export const rcpss = (st: SimdState, d: number, s: Uint32Array, so: number): number => approxN(st, d, s, so, 1, false);
export const rsqrtps = (st: SimdState, d: number, s: Uint32Array, so: number): number => approxN(st, d, s, so, 4, true);
export const rsqrtss = (st: SimdState, d: number, s: Uint32Array, so: number): number => approxN(st, d, s, so, 1, true);

// ---- SSE3 ----

/** ADDSUBPS: lanes 0,2 subtract, 1,3 add. */
export function addsubps(st: SimdState, d: number, s: Uint32Array, so: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  for (let i = 0; i < 4; i++) tmp[i] = lane32(i & 1 ? OP_ADD : OP_SUB, x[b + i]!, s[so + i]!, mx);
  return commit(st, d, 0, 4);
}
export function addsubpd(st: SimdState, d: number, s: Uint32Array, so: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  tmp[0] = lane64(OP_SUB, x[b]!, x[b + 1]!, s[so]!, s[so + 1]!, mx);
  tmp[1] = hiOut[0]!;
  tmp[2] = lane64(OP_ADD, x[b + 2]!, x[b + 3]!, s[so + 2]!, s[so + 3]!, mx);
  tmp[3] = hiOut[0]!;
  return commit(st, d, 0, 4);
}
/** HADDPS/HSUBPS: d = [d0∘d1, d2∘d3, s0∘s1, s2∘s3]. */
function hps(op: number, st: SimdState, d: number, s: Uint32Array, so: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  tmp[0] = lane32(op, x[b]!, x[b + 1]!, mx);
  tmp[1] = lane32(op, x[b + 2]!, x[b + 3]!, mx);
  tmp[2] = lane32(op, s[so]!, s[so + 1]!, mx);
  tmp[3] = lane32(op, s[so + 2]!, s[so + 3]!, mx);
  return commit(st, d, 0, 4);
}
function hpd(op: number, st: SimdState, d: number, s: Uint32Array, so: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  tmp[0] = lane64(op, x[b]!, x[b + 1]!, x[b + 2]!, x[b + 3]!, mx);
  tmp[1] = hiOut[0]!;
  tmp[2] = lane64(op, s[so]!, s[so + 1]!, s[so + 2]!, s[so + 3]!, mx);
  tmp[3] = hiOut[0]!;
  return commit(st, d, 0, 4);
}
export const haddps = (st: SimdState, d: number, s: Uint32Array, so: number): number => hps(OP_ADD, st, d, s, so);
export const hsubps = (st: SimdState, d: number, s: Uint32Array, so: number): number => hps(OP_SUB, st, d, s, so);
export const haddpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => hpd(OP_ADD, st, d, s, so);
export const hsubpd = (st: SimdState, d: number, s: Uint32Array, so: number): number => hpd(OP_SUB, st, d, s, so);

// ---- SSE4.1 ROUND*, DPPS/DPPD ----

/** Rounding control for ROUND*: imm bit 2 selects MXCSR.RC, else imm[1:0]. */
function roundRc(st: SimdState, imm: number): number {
  return imm & 4 ? (st.mxcsr >>> 13) & 3 : imm & 3;
}

function round32(b: number, rc: number, imm: number, mx: number): number {
  if (f32IsNaN(b)) {
    if (f32IsSNaN(b)) laneAcc.flags |= FE_IE;
    return (b | 0x00400000) >>> 0;
  }
  const save = laneAcc.flags;
  const v = in32(b, mx);
  laneAcc.flags = save; // ROUND* does not report DE
  fpReset();
  const r = fpRoundInt(v, rc);
  if (!(imm & 8)) laneAcc.flags |= fpStatus.flags & FE_PE;
  return out32Plain(r);
}
function out32Plain(r: number): number {
  fpReset();
  return out32(r, 0x1f80);
}
function round64(lo: number, hi: number, rc: number, imm: number, mx: number): number {
  if (f64IsNaN(lo, hi)) {
    if (f64IsSNaN(lo, hi)) laneAcc.flags |= FE_IE;
    roundOut[0] = (hi | 0x00080000) >>> 0;
    return lo;
  }
  const save = laneAcc.flags;
  const v = in64(lo, hi, mx);
  laneAcc.flags = save;
  fpReset();
  const r = fpRoundInt(v, rc);
  if (!(imm & 8)) laneAcc.flags |= fpStatus.flags & FE_PE;
  fpReset();
  const rlo = out64(r, 0x1f80);
  roundOut[0] = hiOut[0]!;
  return rlo;
}
const roundOut = new Uint32Array(1);

export function roundps(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number {
  laneAcc.flags = 0;
  const rc = roundRc(st, imm);
  for (let i = 0; i < 4; i++) tmp[i] = round32(s[so + i]!, rc, imm, st.mxcsr);
  return commit(st, d, 0, 4);
}
export function roundss(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number {
  laneAcc.flags = 0;
  tmp[0] = round32(s[so]!, roundRc(st, imm), imm, st.mxcsr);
  return commit(st, d, 0, 1);
}
export function roundpd(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number {
  laneAcc.flags = 0;
  const rc = roundRc(st, imm);
  for (let i = 0; i < 4; i += 2) {
    tmp[i] = round64(s[so + i]!, s[so + i + 1]!, rc, imm, st.mxcsr);
    tmp[i + 1] = roundOut[0]!;
  }
  return commit(st, d, 0, 4);
}
export function roundsd(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number {
  laneAcc.flags = 0;
  tmp[0] = round64(s[so]!, s[so + 1]!, roundRc(st, imm), imm, st.mxcsr);
  tmp[1] = roundOut[0]!;
  return commit(st, d, 0, 2);
}

const dpTmp = new Uint32Array(4);
/** An unmasked exception in one stage of DPPS/DPPD ends the instruction. */
function stageFault(mx: number): boolean {
  return (laneAcc.flags & ~(mx >>> 7) & 0x3f) !== 0;
}
/** DPPS: products of lanes selected by imm[7:4] (others +0), summed pairwise with rounding after every step, the
 * sum broadcast to lanes selected by imm[3:0] (others +0). */
export function dpps(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  for (let i = 0; i < 4; i++) dpTmp[i] = imm & (0x10 << i) ? lane32(OP_MUL, x[b + i]!, s[so + i]!, mx) : 0;
  if (stageFault(mx)) return commit(st, d, 0, 0);
  // Denormal intermediate products count as denormal operands of the additions (the CPU reports DE for them);
  // each stage's flags are reported even when a later stage faults.
  let earlier = laneAcc.flags;
  laneAcc.flags = 0;
  const t01 = lane32(OP_ADD, dpTmp[0]!, dpTmp[1]!, mx);
  const t23 = lane32(OP_ADD, dpTmp[2]!, dpTmp[3]!, mx);
  if (stageFault(mx)) return commit(st, d, 0, 0, earlier);
  earlier |= laneAcc.flags;
  laneAcc.flags = 0;
  const sum = lane32(OP_ADD, t01, t23, mx);
  for (let i = 0; i < 4; i++) tmp[i] = imm & (1 << i) ? sum : 0;
  return commit(st, d, 0, 4, earlier);
}
export function dppd(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): number {
  const x = st.xmm;
  const b = d * 4;
  const mx = st.mxcsr;
  laneAcc.flags = 0;
  for (let i = 0; i < 2; i++) {
    if (imm & (0x10 << i)) {
      dpTmp[i * 2] = lane64(OP_MUL, x[b + i * 2]!, x[b + i * 2 + 1]!, s[so + i * 2]!, s[so + i * 2 + 1]!, mx);
      dpTmp[i * 2 + 1] = hiOut[0]!;
    } else {
      dpTmp[i * 2] = 0;
      dpTmp[i * 2 + 1] = 0;
    }
  }
  if (stageFault(mx)) return commit(st, d, 0, 0);
  const earlier = laneAcc.flags;
  laneAcc.flags = 0;
  const lo = lane64(OP_ADD, dpTmp[0]!, dpTmp[1]!, dpTmp[2]!, dpTmp[3]!, mx);
  const hi = hiOut[0]!;
  for (let i = 0; i < 2; i++) {
    tmp[i * 2] = imm & (1 << i) ? lo : 0;
    tmp[i * 2 + 1] = imm & (1 << i) ? hi : 0;
  }
  return commit(st, d, 0, 4, earlier);
}
