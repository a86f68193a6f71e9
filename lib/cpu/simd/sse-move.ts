// Data movement, shuffles, blends, inserts/extracts and masks on XMM registers. Same (st, d, s, so[, imm])
// convention as sse-fp.ts: s/so is st.xmm + 4*reg for a register source, or a scratch array holding the memory
// operand. Results destined for a general register are left in st.ires.

import { A, B, R, ld1, ld2, stR } from './lanes.js';
import type { SimdState } from './state.js';

const t = new Uint32Array(4);

/** MOVSS xmm, xmm: low dword only. */
export function movssRR(st: SimdState, d: number, s: Uint32Array, so: number): void {
  st.xmm[d * 4] = s[so]!;
}
/** MOVSS xmm, m32 (and MOVD xmm, r/m32): low dword loaded, the rest zeroed. */
export function loadLow32(st: SimdState, d: number, v: number): void {
  const b = d * 4;
  st.xmm[b] = v >>> 0;
  st.xmm[b + 1] = 0;
  st.xmm[b + 2] = 0;
  st.xmm[b + 3] = 0;
}
/** MOVSD xmm, xmm: low qword only. */
export function movsdRR(st: SimdState, d: number, s: Uint32Array, so: number): void {
  st.xmm[d * 4] = s[so]!;
  st.xmm[d * 4 + 1] = s[so + 1]!;
}
/** MOVSD xmm, m64 / MOVQ xmm, xmm/m64 / MOVQ xmm, r/m64 / MOVQ2DQ: low qword loaded, high qword zeroed. */
export function loadLow64(st: SimdState, d: number, lo: number, hi: number): void {
  const b = d * 4;
  st.xmm[b] = lo >>> 0;
  st.xmm[b + 1] = hi >>> 0;
  st.xmm[b + 2] = 0;
  st.xmm[b + 3] = 0;
}
/** MOVLPS/MOVLPD xmm, m64: low qword replaced. */
export function movlpLoad(st: SimdState, d: number, s: Uint32Array, so: number): void {
  st.xmm[d * 4] = s[so]!;
  st.xmm[d * 4 + 1] = s[so + 1]!;
}
/** MOVHPS/MOVHPD xmm, m64: high qword replaced. */
export function movhpLoad(st: SimdState, d: number, s: Uint32Array, so: number): void {
  st.xmm[d * 4 + 2] = s[so]!;
  st.xmm[d * 4 + 3] = s[so + 1]!;
}
/** MOVHLPS xmm1, xmm2: low qword of d = high qword of s. */
export function movhlps(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const a = s[so + 2]!;
  const b = s[so + 3]!;
  st.xmm[d * 4] = a;
  st.xmm[d * 4 + 1] = b;
}
/** MOVLHPS xmm1, xmm2: high qword of d = low qword of s. */
export function movlhps(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const a = s[so]!;
  const b = s[so + 1]!;
  st.xmm[d * 4 + 2] = a;
  st.xmm[d * 4 + 3] = b;
}
/** MOVAPS/MOVUPS/MOVDQA/MOVDQU/LDDQU/MOVNTDQA loads and register copies: whole 128 bits. */
export function mov128(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const b = d * 4;
  for (let i = 0; i < 4; i++) t[i] = s[so + i]!;
  for (let i = 0; i < 4; i++) st.xmm[b + i] = t[i]!;
}
/** MOVSLDUP (SSE3). */
export function movsldup(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const a = s[so]!;
  const c = s[so + 2]!;
  const b = d * 4;
  st.xmm[b] = a;
  st.xmm[b + 1] = a;
  st.xmm[b + 2] = c;
  st.xmm[b + 3] = c;
}
/** MOVSHDUP (SSE3). */
export function movshdup(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const a = s[so + 1]!;
  const c = s[so + 3]!;
  const b = d * 4;
  st.xmm[b] = a;
  st.xmm[b + 1] = a;
  st.xmm[b + 2] = c;
  st.xmm[b + 3] = c;
}
/** MOVDDUP (SSE3): low qword duplicated (memory form reads 64 bits). */
export function movddup(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const a = s[so]!;
  const c = s[so + 1]!;
  const b = d * 4;
  st.xmm[b] = a;
  st.xmm[b + 1] = c;
  st.xmm[b + 2] = a;
  st.xmm[b + 3] = c;
}

// ---- unpack / shuffle (float forms) ----

export function unpcklps(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const b = d * 4;
  const x = st.xmm;
  t[0] = x[b]!;
  t[1] = s[so]!;
  t[2] = x[b + 1]!;
  t[3] = s[so + 1]!;
  for (let i = 0; i < 4; i++) x[b + i] = t[i]!;
}
export function unpckhps(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const b = d * 4;
  const x = st.xmm;
  t[0] = x[b + 2]!;
  t[1] = s[so + 2]!;
  t[2] = x[b + 3]!;
  t[3] = s[so + 3]!;
  for (let i = 0; i < 4; i++) x[b + i] = t[i]!;
}
export function unpcklpd(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const b = d * 4;
  st.xmm[b + 2] = s[so]!;
  st.xmm[b + 3] = s[so + 1]!;
}
export function unpckhpd(st: SimdState, d: number, s: Uint32Array, so: number): void {
  const b = d * 4;
  const x = st.xmm;
  t[0] = x[b + 2]!;
  t[1] = x[b + 3]!;
  t[2] = s[so + 2]!;
  t[3] = s[so + 3]!;
  for (let i = 0; i < 4; i++) x[b + i] = t[i]!;
}
/** SHUFPS: lanes 0-1 from d, 2-3 from s, selected by 2-bit fields of imm. */
export function shufps(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void {
  const b = d * 4;
  const x = st.xmm;
  t[0] = x[b + (imm & 3)]!;
  t[1] = x[b + ((imm >> 2) & 3)]!;
  t[2] = s[so + ((imm >> 4) & 3)]!;
  t[3] = s[so + ((imm >> 6) & 3)]!;
  for (let i = 0; i < 4; i++) x[b + i] = t[i]!;
}
export function shufpd(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void {
  const b = d * 4;
  const x = st.xmm;
  const i0 = imm & 1 ? 2 : 0;
  const i1 = imm & 2 ? 2 : 0;
  t[0] = x[b + i0]!;
  t[1] = x[b + i0 + 1]!;
  t[2] = s[so + i1]!;
  t[3] = s[so + i1 + 1]!;
  for (let i = 0; i < 4; i++) x[b + i] = t[i]!;
}
export function pshufd(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void {
  for (let i = 0; i < 4; i++) t[i] = s[so + ((imm >> (2 * i)) & 3)]!;
  for (let i = 0; i < 4; i++) st.xmm[d * 4 + i] = t[i]!;
}
/** PSHUFLW / PSHUFHW (high = true) / PSHUFW (MMX: use pshufwCore). */
export function pshuflw(st: SimdState, d: number, s: Uint32Array, so: number, imm: number, high = false): void {
  ld1(s, so, 4);
  R.u32[0] = B.u32[0]!;
  R.u32[1] = B.u32[1]!;
  R.u32[2] = B.u32[2]!;
  R.u32[3] = B.u32[3]!;
  const base = high ? 4 : 0;
  for (let i = 0; i < 4; i++) R.u16[base + i] = B.u16[base + ((imm >> (2 * i)) & 3)]!;
  stR(st.xmm, d * 4, 4);
}
export function pshufhw(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void {
  pshuflw(st, d, s, so, imm, true);
}
/** PSHUFW core on 64-bit operands (da/d destination dwords, sa/s source). */
export function pshufwCore(da: Uint32Array, d: number, sa: Uint32Array, s: number, imm: number): void {
  ld1(sa, s, 2);
  for (let i = 0; i < 4; i++) R.u16[i] = B.u16[(imm >> (2 * i)) & 3]!;
  stR(da, d, 2);
}

// ---- masks ----

/** MOVMSKPS → st.ires[0]. */
export function movmskps(st: SimdState, s: Uint32Array, so: number): void {
  let m = 0;
  for (let i = 0; i < 4; i++) m |= (s[so + i]! >>> 31) << i;
  st.ires[0] = m;
  st.ires[1] = 0;
}
export function movmskpd(st: SimdState, s: Uint32Array, so: number): void {
  st.ires[0] = (s[so + 1]! >>> 31) | ((s[so + 3]! >>> 31) << 1);
  st.ires[1] = 0;
}
/** PMOVMSKB (n = 2 dwords for MMX, 4 for XMM) → st.ires[0]. */
export function pmovmskb(st: SimdState, s: Uint32Array, so: number, n: number): void {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = s[so + i]!;
    m |= (((v >>> 7) & 1) | ((v >>> 14) & 2) | ((v >>> 21) & 4) | ((v >>> 28) & 8)) << (4 * i);
  }
  st.ires[0] = m;
  st.ires[1] = 0;
}
/** MASKMOVQ / MASKMOVDQU: bit i of the result set = store byte i of the data register (mask byte i bit 7). The
 * caller writes those bytes to DS:(E/R)DI. */
export function maskmovMask(ma: Uint32Array, m: number, n: number): number {
  let r = 0;
  for (let i = 0; i < n; i++) {
    const v = ma[m + i]!;
    r |= (((v >>> 7) & 1) | ((v >>> 14) & 2) | ((v >>> 21) & 4) | ((v >>> 28) & 8)) << (4 * i);
  }
  return r >>> 0;
}

// ---- insert / extract ----

/** PEXTRW r, xmm, imm (n = 4) or r, mm, imm (n = 2) → st.ires[0]. Also PEXTRW m16 (SSE4.1). */
export function pextrw(st: SimdState, s: Uint32Array, so: number, imm: number, n: number): void {
  const w = imm & (n * 2 - 1);
  st.ires[0] = (s[so + (w >> 1)]! >>> ((w & 1) * 16)) & 0xffff;
  st.ires[1] = 0;
}
/** PINSRW xmm/mm, r32/m16, imm (n = 4 or 2): da/d is the destination register's dwords. */
export function pinsrw(da: Uint32Array, d: number, v: number, imm: number, n: number): void {
  const w = imm & (n * 2 - 1);
  const i = d + (w >> 1);
  const sh = (w & 1) * 16;
  da[i] = ((da[i]! & ~(0xffff << sh)) | ((v & 0xffff) << sh)) >>> 0;
}
/** PEXTRB (SSE4.1) → st.ires[0] (zero-extended). */
export function pextrb(st: SimdState, s: Uint32Array, so: number, imm: number): void {
  const k = imm & 15;
  st.ires[0] = (s[so + (k >> 2)]! >>> ((k & 3) * 8)) & 0xff;
  st.ires[1] = 0;
}
/** PEXTRD / EXTRACTPS (SSE4.1) → st.ires[0]. */
export function pextrd(st: SimdState, s: Uint32Array, so: number, imm: number): void {
  st.ires[0] = s[so + (imm & 3)]!;
  st.ires[1] = 0;
}
/** PEXTRQ (SSE4.1, REX.W) → st.ires[0..1]. */
export function pextrq(st: SimdState, s: Uint32Array, so: number, imm: number): void {
  const q = (imm & 1) * 2;
  st.ires[0] = s[so + q]!;
  st.ires[1] = s[so + q + 1]!;
}
export function pinsrb(st: SimdState, d: number, v: number, imm: number): void {
  const k = imm & 15;
  const i = d * 4 + (k >> 2);
  const sh = (k & 3) * 8;
  st.xmm[i] = ((st.xmm[i]! & ~(0xff << sh)) | ((v & 0xff) << sh)) >>> 0;
}
export function pinsrd(st: SimdState, d: number, v: number, imm: number): void {
  st.xmm[d * 4 + (imm & 3)] = v >>> 0;
}
export function pinsrq(st: SimdState, d: number, lo: number, hi: number, imm: number): void {
  const q = d * 4 + (imm & 1) * 2;
  st.xmm[q] = lo >>> 0;
  st.xmm[q + 1] = hi >>> 0;
}
/** INSERTPS xmm, xmm/m32, imm. For a memory source pass the loaded dword at so and memSource = true (the
 * source-select field imm[7:6] is then ignored). */
export function insertps(st: SimdState, d: number, s: Uint32Array, so: number, imm: number, memSource = false): void {
  const v = memSource ? s[so]! : s[so + ((imm >> 6) & 3)]!;
  const b = d * 4;
  st.xmm[b + ((imm >> 4) & 3)] = v;
  for (let i = 0; i < 4; i++) if (imm & (1 << i)) st.xmm[b + i] = 0;
}

// ---- blends (SSE4.1) ----

export function blendps(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void {
  for (let i = 0; i < 4; i++) if (imm & (1 << i)) st.xmm[d * 4 + i] = s[so + i]!;
}
export function blendpd(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void {
  for (let i = 0; i < 2; i++) {
    if (imm & (1 << i)) {
      st.xmm[d * 4 + 2 * i] = s[so + 2 * i]!;
      st.xmm[d * 4 + 2 * i + 1] = s[so + 2 * i + 1]!;
    }
  }
}
export function pblendw(st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void {
  ld2(st.xmm, d * 4, s, so, 4);
  for (let i = 0; i < 8; i++) R.u16[i] = imm & (1 << i) ? B.u16[i]! : A.u16[i]!;
  stR(st.xmm, d * 4, 4);
}
/** BLENDVPS (mask = XMM0 sign bits). */
export function blendvps(st: SimdState, d: number, s: Uint32Array, so: number): void {
  for (let i = 0; i < 4; i++) if (st.xmm[i]! & 0x80000000) t[i] = s[so + i]!;
  else t[i] = st.xmm[d * 4 + i]!;
  for (let i = 0; i < 4; i++) st.xmm[d * 4 + i] = t[i]!;
}
export function blendvpd(st: SimdState, d: number, s: Uint32Array, so: number): void {
  for (let q = 0; q < 4; q += 2) {
    const take = (st.xmm[q + 1]! & 0x80000000) !== 0;
    t[q] = take ? s[so + q]! : st.xmm[d * 4 + q]!;
    t[q + 1] = take ? s[so + q + 1]! : st.xmm[d * 4 + q + 1]!;
  }
  for (let i = 0; i < 4; i++) st.xmm[d * 4 + i] = t[i]!;
}
export function pblendvb(st: SimdState, d: number, s: Uint32Array, so: number): void {
  ld2(st.xmm, d * 4, s, so, 4);
  for (let i = 0; i < 4; i++) R.u32[i] = st.xmm[i]!; // XMM0 mask (read before the destination changes)
  for (let i = 0; i < 16; i++) R.u8[i] = R.u8[i]! & 0x80 ? B.u8[i]! : A.u8[i]!;
  stR(st.xmm, d * 4, 4);
}

// ---- PMOVSX / PMOVZX (SSE4.1) ----

/** from/to element sizes in bytes (1→2, 1→4, 1→8, 2→4, 2→8, 4→8); signed or zero extension. The source is the low
 * 16/(to/from) bytes of s. */
export function pmovx(st: SimdState, d: number, s: Uint32Array, so: number, from: number, to: number, signed: boolean): void {
  ld1(s, so, 4);
  const count = 16 / to;
  for (let i = 0; i < count; i++) {
    let v: number;
    if (from === 1) v = signed ? B.i8[i]! : B.u8[i]!;
    else if (from === 2) v = signed ? B.i16[i]! : B.u16[i]!;
    else v = signed ? B.i32[i]! : B.u32[i]!;
    if (to === 2) R.u16[i] = v & 0xffff;
    else if (to === 4) R.u32[i] = v >>> 0;
    else {
      R.u32[2 * i] = v >>> 0;
      R.u32[2 * i + 1] = v < 0 ? 0xffffffff : 0;
    }
  }
  stR(st.xmm, d * 4, 4);
}

/** PTEST: returns ZF (0x40) if (d AND s) == 0 and CF (0x01) if (NOT d AND s) == 0; other arithmetic flags cleared. */
export function ptest(st: SimdState, d: number, s: Uint32Array, so: number): number {
  let and = 0;
  let andn = 0;
  for (let i = 0; i < 4; i++) {
    and |= st.xmm[d * 4 + i]! & s[so + i]!;
    andn |= ~st.xmm[d * 4 + i]! & s[so + i]!;
  }
  return (and === 0 ? 0x40 : 0) | (andn === 0 ? 0x01 : 0);
}

