// Register-bound entry points: `sse.*` for XMM destinations and `mmx.*` for MMX destinations. The decoder calls
// these with the destination register number and the source as (array, dword offset):
//   XMM register source → (st.xmm, 4 * reg); MMX register source → (st.x87.regs, 4 * reg);
//   memory source → (scratch Uint32Array holding the little-endian operand, 0).

import * as I from './simd-int.js';
import * as F from './sse-fp.js';
import * as C from './sse-cvt.js';
import * as M from './sse-move.js';
import { emms, mmxEnter, mmxMark } from './mmx-state.js';
import type { SimdState } from './state.js';

export type SrcOp = (st: SimdState, d: number, s: Uint32Array, so: number) => void;
export type SrcOpImm = (st: SimdState, d: number, s: Uint32Array, so: number, imm: number) => void;

function xi(f: I.IntOp): SrcOp {
  return (st, d, s, so) => f(st.xmm, d * 4, s, so, 4);
}
function mi(f: I.IntOp): SrcOp {
  return (st, d, s, so) => {
    mmxEnter(st.x87);
    f(st.x87.regs, d * 4, s, so, 2);
    mmxMark(st.x87, d);
  };
}
type ShiftCore = (da: Uint32Array, d: number, n: number, c: number) => void;
function xs(f: ShiftCore): SrcOp {
  return (st, d, s, so) => f(st.xmm, d * 4, 4, I.shiftCount(s, so));
}
function xsi(f: ShiftCore): (st: SimdState, d: number, imm: number) => void {
  return (st, d, imm) => f(st.xmm, d * 4, 4, imm & 0xff);
}
function ms(f: ShiftCore): SrcOp {
  return (st, d, s, so) => {
    mmxEnter(st.x87);
    f(st.x87.regs, d * 4, 2, I.shiftCount(s, so));
    mmxMark(st.x87, d);
  };
}
function msi(f: ShiftCore): (st: SimdState, d: number, imm: number) => void {
  return (st, d, imm) => {
    mmxEnter(st.x87);
    f(st.x87.regs, d * 4, 2, imm & 0xff);
    mmxMark(st.x87, d);
  };
}

/** Integer SIMD ops available in both widths (SSE2 / SSSE3 / SSE4.1 semantics). */
const INT_OPS = {
  paddb: I.paddb, paddw: I.paddw, paddd: I.paddd, paddq: I.paddq,
  psubb: I.psubb, psubw: I.psubw, psubd: I.psubd, psubq: I.psubq,
  paddsb: I.paddsb, paddsw: I.paddsw, paddusb: I.paddusb, paddusw: I.paddusw,
  psubsb: I.psubsb, psubsw: I.psubsw, psubusb: I.psubusb, psubusw: I.psubusw,
  pmullw: I.pmullw, pmulhw: I.pmulhw, pmulhuw: I.pmulhuw, pmuludq: I.pmuludq, pmaddwd: I.pmaddwd,
  pavgb: I.pavgb, pavgw: I.pavgw, pminub: I.pminub, pmaxub: I.pmaxub, pminsw: I.pminsw, pmaxsw: I.pmaxsw,
  psadbw: I.psadbw,
  pcmpeqb: I.pcmpeqb, pcmpeqw: I.pcmpeqw, pcmpeqd: I.pcmpeqd,
  pcmpgtb: I.pcmpgtb, pcmpgtw: I.pcmpgtw, pcmpgtd: I.pcmpgtd,
  pand: I.pand, pandn: I.pandn, por: I.por, pxor: I.pxor,
  punpcklbw: I.punpcklbw, punpcklwd: I.punpcklwd, punpckldq: I.punpckldq,
  punpckhbw: I.punpckhbw, punpckhwd: I.punpckhwd, punpckhdq: I.punpckhdq,
  packsswb: I.packsswb, packssdw: I.packssdw, packuswb: I.packuswb,
  // SSSE3 (both MMX and XMM forms exist)
  pshufb: I.pshufb, pabsb: I.pabsb, pabsw: I.pabsw, pabsd: I.pabsd,
  phaddw: I.phaddw, phaddd: I.phaddd, phaddsw: I.phaddsw, phsubw: I.phsubw, phsubd: I.phsubd, phsubsw: I.phsubsw,
  pmaddubsw: I.pmaddubsw, pmulhrsw: I.pmulhrsw, psignb: I.psignb, psignw: I.psignw, psignd: I.psignd,
} as const;

/** Integer SIMD ops that exist only on XMM. */
const XMM_ONLY_INT = {
  punpcklqdq: I.punpcklqdq, punpckhqdq: I.punpckhqdq,
  // SSE4.1
  pminsb: I.pminsb, pmaxsb: I.pmaxsb, pminuw: I.pminuw, pmaxuw: I.pmaxuw,
  pminsd: I.pminsd, pmaxsd: I.pmaxsd, pminud: I.pminud, pmaxud: I.pmaxud,
  pmulld: I.pmulld, pmuldq: I.pmuldq, pcmpeqq: I.pcmpeqq, packusdw: I.packusdw,
} as const;

type IntNames = keyof typeof INT_OPS;
type XmmIntNames = IntNames | keyof typeof XMM_ONLY_INT;

function bindAll<K extends string>(table: Record<K, I.IntOp>, bind: (f: I.IntOp) => SrcOp): Record<K, SrcOp> {
  const out = {} as Record<K, SrcOp>;
  for (const k of Object.keys(table) as K[]) out[k] = bind(table[k]);
  return out;
}

const xmmInt = bindAll<XmmIntNames>({ ...INT_OPS, ...XMM_ONLY_INT }, xi);
const mmxInt = bindAll<IntNames>(INT_OPS, mi);

/** Operations whose destination is an XMM register (or which read XMM registers). */
export const sse = {
  ...xmmInt,
  // Float logic is bitwise.
  andps: xmmInt.pand, andpd: xmmInt.pand, andnps: xmmInt.pandn, andnpd: xmmInt.pandn,
  orps: xmmInt.por, orpd: xmmInt.por, xorps: xmmInt.pxor, xorpd: xmmInt.pxor,
  // Shifts: register/memory count and immediate forms.
  psllw: xs(I.psllw), pslld: xs(I.pslld), psllq: xs(I.psllq),
  psrlw: xs(I.psrlw), psrld: xs(I.psrld), psrlq: xs(I.psrlq),
  psraw: xs(I.psraw), psrad: xs(I.psrad),
  psllwImm: xsi(I.psllw), pslldImm: xsi(I.pslld), psllqImm: xsi(I.psllq),
  psrlwImm: xsi(I.psrlw), psrldImm: xsi(I.psrld), psrlqImm: xsi(I.psrlq),
  psrawImm: xsi(I.psraw), psradImm: xsi(I.psrad),
  pslldq: (st: SimdState, d: number, imm: number): void => I.pslldq(st.xmm, d * 4, imm & 0xff),
  psrldq: (st: SimdState, d: number, imm: number): void => I.psrldq(st.xmm, d * 4, imm & 0xff),
  palignr: (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void =>
    I.palignr(st.xmm, d * 4, s, so, 4, imm & 0xff),
  phminposuw: (st: SimdState, d: number, s: Uint32Array, so: number): void => I.phminposuw(st.xmm, d * 4, s, so),
  mpsadbw: (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void =>
    I.mpsadbw(st.xmm, d * 4, s, so, imm),
  // Floating point (return 0 or XM).
  addps: F.addps, addss: F.addss, addpd: F.addpd, addsd: F.addsd,
  subps: F.subps, subss: F.subss, subpd: F.subpd, subsd: F.subsd,
  mulps: F.mulps, mulss: F.mulss, mulpd: F.mulpd, mulsd: F.mulsd,
  divps: F.divps, divss: F.divss, divpd: F.divpd, divsd: F.divsd,
  minps: F.minps, minss: F.minss, minpd: F.minpd, minsd: F.minsd,
  maxps: F.maxps, maxss: F.maxss, maxpd: F.maxpd, maxsd: F.maxsd,
  sqrtps: F.sqrtps, sqrtss: F.sqrtss, sqrtpd: F.sqrtpd, sqrtsd: F.sqrtsd,
  rcpps: F.rcpps, rcpss: F.rcpss, rsqrtps: F.rsqrtps, rsqrtss: F.rsqrtss,
  cmpps: F.cmpps, cmpss: F.cmpss, cmppd: F.cmppd, cmpsd: F.cmpsd,
  comiss: (st: SimdState, d: number, s: Uint32Array, so: number): number => F.comiss(st, d, s, so),
  ucomiss: F.ucomiss,
  comisd: (st: SimdState, d: number, s: Uint32Array, so: number): number => F.comisd(st, d, s, so),
  ucomisd: F.ucomisd,
  addsubps: F.addsubps, addsubpd: F.addsubpd, haddps: F.haddps, haddpd: F.haddpd, hsubps: F.hsubps,
  hsubpd: F.hsubpd,
  roundps: F.roundps, roundpd: F.roundpd, roundss: F.roundss, roundsd: F.roundsd, dpps: F.dpps, dppd: F.dppd,
  // Conversions.
  cvtss2si: (st: SimdState, s: Uint32Array, so: number, is64: boolean): number => C.cvtss2si(st, s, so, is64),
  cvttss2si: C.cvttss2si,
  cvtsd2si: (st: SimdState, s: Uint32Array, so: number, is64: boolean): number => C.cvtsd2si(st, s, so, is64),
  cvttsd2si: C.cvttsd2si,
  cvtsi2ss: C.cvtsi2ss, cvtsi2sd: C.cvtsi2sd,
  cvtps2dq: (st: SimdState, d: number, s: Uint32Array, so: number): number => C.cvtps2dq(st, d, s, so),
  cvttps2dq: C.cvttps2dq,
  cvtpd2dq: (st: SimdState, d: number, s: Uint32Array, so: number): number => C.cvtpd2dq(st, d, s, so),
  cvttpd2dq: C.cvttpd2dq,
  cvtdq2ps: C.cvtdq2ps, cvtdq2pd: C.cvtdq2pd,
  cvtps2pd: C.cvtps2pd, cvtpd2ps: C.cvtpd2ps, cvtss2sd: C.cvtss2sd, cvtsd2ss: C.cvtsd2ss,
  cvtpi2ps: C.cvtpi2ps, cvtpi2pd: C.cvtpi2pd,
  // Moves, shuffles, inserts, extracts, masks, blends.
  movssRR: M.movssRR, movsdRR: M.movsdRR, loadLow32: M.loadLow32, loadLow64: M.loadLow64,
  movlpLoad: M.movlpLoad, movhpLoad: M.movhpLoad, movhlps: M.movhlps, movlhps: M.movlhps, mov128: M.mov128,
  movsldup: M.movsldup, movshdup: M.movshdup, movddup: M.movddup,
  unpcklps: M.unpcklps, unpckhps: M.unpckhps, unpcklpd: M.unpcklpd, unpckhpd: M.unpckhpd,
  shufps: M.shufps, shufpd: M.shufpd, pshufd: M.pshufd,
  pshuflw: (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void => M.pshuflw(st, d, s, so, imm),
  pshufhw: M.pshufhw,
  movmskps: M.movmskps, movmskpd: M.movmskpd,
  pmovmskb: (st: SimdState, s: Uint32Array, so: number): void => M.pmovmskb(st, s, so, 4),
  maskmovdqu: (s: Uint32Array, so: number): number => M.maskmovMask(s, so, 4),
  pextrw: (st: SimdState, s: Uint32Array, so: number, imm: number): void => M.pextrw(st, s, so, imm, 4),
  pinsrw: (st: SimdState, d: number, v: number, imm: number): void => M.pinsrw(st.xmm, d * 4, v, imm, 4),
  pextrb: M.pextrb, pextrd: M.pextrd, pextrq: M.pextrq, extractps: M.pextrd,
  pinsrb: M.pinsrb, pinsrd: M.pinsrd, pinsrq: M.pinsrq, insertps: M.insertps,
  blendps: M.blendps, blendpd: M.blendpd, pblendw: M.pblendw, blendvps: M.blendvps, blendvpd: M.blendvpd,
  pblendvb: M.pblendvb, ptest: M.ptest,
  pmovsxbw: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 1, 2, true),
  pmovsxbd: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 1, 4, true),
  pmovsxbq: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 1, 8, true),
  pmovsxwd: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 2, 4, true),
  pmovsxwq: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 2, 8, true),
  pmovsxdq: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 4, 8, true),
  pmovzxbw: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 1, 2, false),
  pmovzxbd: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 1, 4, false),
  pmovzxbq: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 1, 8, false),
  pmovzxwd: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 2, 4, false),
  pmovzxwq: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 2, 8, false),
  pmovzxdq: (st: SimdState, d: number, s: Uint32Array, so: number): void => M.pmovx(st, d, s, so, 4, 8, false),
};

/** Operations whose destination is an MMX register (each performs the x87→MMX transition). */
export const mmx = {
  ...mmxInt,
  psllw: ms(I.psllw), pslld: ms(I.pslld), psllq: ms(I.psllq),
  psrlw: ms(I.psrlw), psrld: ms(I.psrld), psrlq: ms(I.psrlq),
  psraw: ms(I.psraw), psrad: ms(I.psrad),
  psllwImm: msi(I.psllw), pslldImm: msi(I.pslld), psllqImm: msi(I.psllq),
  psrlwImm: msi(I.psrlw), psrldImm: msi(I.psrld), psrlqImm: msi(I.psrlq),
  psrawImm: msi(I.psraw), psradImm: msi(I.psrad),
  palignr: (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void => {
    mmxEnter(st.x87);
    I.palignr(st.x87.regs, d * 4, s, so, 2, imm & 0xff);
    mmxMark(st.x87, d);
  },
  pshufw: (st: SimdState, d: number, s: Uint32Array, so: number, imm: number): void => {
    mmxEnter(st.x87);
    M.pshufwCore(st.x87.regs, d * 4, s, so, imm);
    mmxMark(st.x87, d);
  },
  /** MOVD mm, r/m32 / MOVQ mm, r/m64 / MOVQ mm, mm/m64 / MOVDQ2Q (pass the value halves). */
  load64: (st: SimdState, d: number, lo: number, hi: number): void => {
    mmxEnter(st.x87);
    st.x87.regs[d * 4] = lo >>> 0;
    st.x87.regs[d * 4 + 1] = hi >>> 0;
    mmxMark(st.x87, d);
  },
  /** MOVD r/m32, mm / MOVQ r/m64|m64, mm / MOVQ2DQ source: value → st.ires (performs the transition). */
  read64: (st: SimdState, s: number): void => {
    mmxEnter(st.x87);
    st.ires[0] = st.x87.regs[s * 4]!;
    st.ires[1] = st.x87.regs[s * 4 + 1]!;
  },
  pmovmskb: (st: SimdState, s: Uint32Array, so: number): void => {
    mmxEnter(st.x87);
    M.pmovmskb(st, s, so, 2);
  },
  maskmovq: (st: SimdState, s: Uint32Array, so: number): number => {
    mmxEnter(st.x87);
    return M.maskmovMask(s, so, 2);
  },
  pextrw: (st: SimdState, s: Uint32Array, so: number, imm: number): void => {
    mmxEnter(st.x87);
    M.pextrw(st, s, so, imm, 2);
  },
  pinsrw: (st: SimdState, d: number, v: number, imm: number): void => {
    mmxEnter(st.x87);
    M.pinsrw(st.x87.regs, d * 4, v, imm, 2);
    mmxMark(st.x87, d);
  },
  cvtps2pi: (st: SimdState, d: number, s: Uint32Array, so: number): number => C.cvtps2pi(st, d, s, so),
  cvttps2pi: C.cvttps2pi,
  cvtpd2pi: (st: SimdState, d: number, s: Uint32Array, so: number): number => C.cvtpd2pi(st, d, s, so),
  cvttpd2pi: C.cvttpd2pi,
  /** MMX transition without other effect (e.g. MOVQ2DQ reads an MMX register). */
  enter: (st: SimdState): void => mmxEnter(st.x87),
  emms: (st: SimdState): void => emms(st.x87),
};
