// Differential test: every SSE..SSE4.1 operation below runs on the host CPU (through oracle.c) and in the
// TypeScript implementation from the same inputs and MXCSR; results, MXCSR after, EFLAGS and #XM must agree.
import { describe, expect, it } from 'vitest';
import { SimdState, XM, sse } from '../../../lib/cpu/simd/index.js';
import { getOracle, hex, oracleUnavailable, rng } from './oracle-harness.js';

if (oracleUnavailable) console.warn(`[simd] host-CPU oracle tests skipped: ${oracleUnavailable}`);

const F32_SPECIAL = [
  0, 0x80000000, 0x3f800000, 0xbf800000, 0x00000001, 0x807fffff, 0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff,
  0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0xff812345, 0x4b000000, 0x4effffff, 0x4f000000,
  0xcf000000, 0xcf000001, 0x3f000000, 0x3fc00000, 0x40200000, 0xbf000000, 0xbfc00000, 0x5f000000, 0xdf000000,
  0x5effffff, 0x00400000, 0x34000000, 0x0c000000, 0x73000000, 0x3f800001, 0x00ffffff, 0x1f800000, 0x20000000,
];
const F64_SPECIAL: Array<[number, number]> = [
  [0, 0], [0, 0x80000000], [0, 0x3ff00000], [0, 0xbff00000], [1, 0], [0xffffffff, 0x800fffff], [0, 0x00100000],
  [0xffffffff, 0x7fefffff], [0, 0x7ff00000], [0, 0xfff00000], [0, 0x7ff80000], [5, 0xfff80000], [1, 0x7ff00000],
  [0, 0x7ff40000], [0, 0x41e00000], [0, 0xc1e00000], [0x00200000, 0xc1e00000], [0xffc00000, 0x41dfffff],
  [0, 0x43e00000], [0, 0xc3e00000], [0, 0x3fe00000], [0, 0x3ff80000], [0, 0x40040000], [0, 0x36a00000],
  [0, 0x38100000], [0, 0x47f00000], [0, 0x47e00000], [0xe0000000, 0x47efffff], [0x10000000, 0x36a00000],
  [1, 0x3ff00000], [0, 0x00080000], [0, 0x20000000], [0, 0x5ff00000],
];

const MXCSRS = [
  0x1f80, 0x1f80, 0x1f80, 0x3f80, 0x5f80, 0x7f80, 0x1fc0, 0x9f80, 0x9fc0, 0xffc0, 0x0000, 0x0f80, 0x1780, 0x1b80,
  0x1d80, 0x1e80, 0x1f00, 0x5780, 0x7b80,
];

type Gen = (r: () => number) => number[];

function pick<T>(r: () => number, a: readonly T[]): T {
  return a[r() % a.length]!;
}
function f32(r: () => number): number {
  const k = r() % 10;
  if (k < 3) return pick(r, F32_SPECIAL) >>> 0;
  if (k < 5) return r() >>> 0;
  // "Nice" values: moderate exponent, few significant bits, or extreme exponents for over/underflow.
  const sign = r() & 0x80000000;
  const exp = k === 5 ? r() % 30 + 1 : k === 6 ? 254 - (r() % 30) : 127 + (r() % 40) - 20;
  const mant = k === 7 ? (r() & 0x7f0000) : r() & 0x7fffff;
  return (sign | (exp << 23) | mant) >>> 0;
}
function f64(r: () => number): [number, number] {
  const k = r() % 10;
  if (k < 3) return pick(r, F64_SPECIAL);
  if (k < 5) return [r() >>> 0, r() >>> 0];
  const sign = r() & 0x80000000;
  const exp = k === 5 ? r() % 60 + 1 : k === 6 ? 2046 - (r() % 60) : 1023 + (r() % 80) - 40;
  const hiM = r() & 0xfffff;
  const lo = k === 7 ? 0 : r() >>> 0;
  return [lo, (sign | (exp << 20) | hiM) >>> 0];
}
// Float32 values converted from integers / near integer boundaries (for conversions).
function f32int(r: () => number): number {
  const k = r() % 4;
  if (k === 0) return pick(r, F32_SPECIAL) >>> 0;
  const v = (r() % 2 ? -1 : 1) * (r() % 4 === 0 ? (r() % 0x7fffffff) * 2 ** (r() % 40) : (r() % 1000) / (1 + (r() % 8)));
  const b = new Float32Array([v]);
  return new Uint32Array(b.buffer)[0]!;
}
function f64int(r: () => number): [number, number] {
  const k = r() % 4;
  if (k === 0) return pick(r, F64_SPECIAL);
  const v = (r() % 2 ? -1 : 1) * (r() % 4 === 0 ? (r() % 0x7fffffff) * 2 ** (r() % 40) : (r() % 1000) / (1 + (r() % 8)));
  const u = new Uint32Array(new Float64Array([v]).buffer);
  return [u[0]!, u[1]!];
}

const G32: Gen = (r) => [f32(r), f32(r), f32(r), f32(r)];
const G64: Gen = (r) => [...f64(r), ...f64(r)];
const G32I: Gen = (r) => [f32int(r), f32int(r), f32int(r), f32int(r)];
const G64I: Gen = (r) => [...f64int(r), ...f64int(r)];
const GINT: Gen = (r) => {
  const k = r() % 4;
  const sp = [0, 0xffffffff, 0x80000000, 0x7fffffff, 0x80008000, 0x7fff7fff, 0x80808080, 0x7f7f7f7f, 0xff00ff00, 1];
  return [0, 1, 2, 3].map(() => (k === 0 ? pick(r, sp) : k === 1 ? r() & 0x0f0f0f0f : r()) >>> 0);
};
const GSHIFT: Gen = (r) => {
  const k = r() % 4;
  return [k === 0 ? r() : r() % 70, k === 1 ? 1 : 0, r(), r()].map((x) => x >>> 0);
};
const GI64: Gen = (r) => {
  const k = r() % 4;
  const lo = r() >>> 0;
  const hi = k === 0 ? (lo & 0x80000000 ? 0xffffffff : 0) : k === 1 ? r() & 0x003fffff : r() >>> 0;
  return [lo, hi >>> 0, 0, 0];
};

type Kind =
  | { t: 'op'; f: (st: SimdState, d: number, s: Uint32Array, so: number) => number | void }
  | { t: 'imm'; f: (st: SimdState, d: number, s: Uint32Array, so: number, imm: number) => number | void; imm: number }
  | { t: 'flags'; f: (st: SimdState, d: number, s: Uint32Array, so: number) => number }
  | { t: 'gpr'; f: (st: SimdState, s: Uint32Array, so: number) => number | void; is64: boolean }
  | { t: 'cvtsi'; f: typeof sse.cvtsi2ss; is64: boolean }
  | { t: 'shimm'; f: (st: SimdState, d: number, imm: number) => void; imm: number };

interface Case {
  name: string;
  kind: Kind;
  ga: Gen;
  gb: Gen;
  fp: boolean;
}

const cases: Case[] = [];
const add = (name: string, kind: Kind, ga: Gen, gb: Gen, fp = true): void => {
  cases.push({ name, kind, ga, gb, fp });
};
for (const op of ['add', 'sub', 'mul', 'div', 'min', 'max', 'sqrt']) {
  for (const t of ['ps', 'ss', 'pd', 'sd']) {
    const g = t.endsWith('s') ? G32 : G64;
    add(`${op}${t}`, { t: 'op', f: (sse as unknown as Record<string, Kind['f']>)[`${op}${t}`] as never }, g, g);
  }
}
for (const t of ['ps', 'ss', 'pd', 'sd']) {
  const g = t.endsWith('s') ? G32 : G64;
  for (let p = 0; p < 8; p++) {
    add(`cmp${t}${p}`, { t: 'imm', f: (sse as unknown as Record<string, never>)[`cmp${t}`], imm: p }, g, g);
  }
  for (const imm of [0, 1, 2, 3, 4, 8, 12]) {
    add(`round${t}${imm}`, { t: 'imm', f: (sse as unknown as Record<string, never>)[`round${t}`], imm }, g, t.endsWith('s') ? G32I : G64I);
  }
}
for (const n of ['addsubps', 'haddps', 'hsubps']) add(n, { t: 'op', f: (sse as unknown as Record<string, never>)[n] }, G32, G32);
for (const n of ['addsubpd', 'haddpd', 'hsubpd']) add(n, { t: 'op', f: (sse as unknown as Record<string, never>)[n] }, G64, G64);
add('dpps255', { t: 'imm', f: sse.dpps, imm: 0xff }, G32, G32);
add('dpps49', { t: 'imm', f: sse.dpps, imm: 0x31 }, G32, G32);
add('dppd51', { t: 'imm', f: sse.dppd, imm: 0x33 }, G64, G64);
add('dppd49', { t: 'imm', f: sse.dppd, imm: 0x31 }, G64, G64);
add('cvtps2dq', { t: 'op', f: sse.cvtps2dq }, G32, G32I);
add('cvttps2dq', { t: 'op', f: sse.cvttps2dq }, G32, G32I);
add('cvtpd2dq', { t: 'op', f: sse.cvtpd2dq }, G32, G64I);
add('cvttpd2dq', { t: 'op', f: sse.cvttpd2dq }, G32, G64I);
add('cvtdq2ps', { t: 'op', f: sse.cvtdq2ps }, G32, GINT);
add('cvtdq2pd', { t: 'op', f: sse.cvtdq2pd }, G32, GINT);
add('cvtps2pd', { t: 'op', f: sse.cvtps2pd }, G32, G32);
add('cvtpd2ps', { t: 'op', f: sse.cvtpd2ps }, G32, G64);
add('cvtss2sd', { t: 'op', f: sse.cvtss2sd }, G64, G32);
add('cvtsd2ss', { t: 'op', f: sse.cvtsd2ss }, G32, G64);
for (const [n, fn, g] of [
  ['comiss', sse.comiss, G32], ['ucomiss', sse.ucomiss, G32], ['comisd', sse.comisd, G64], ['ucomisd', sse.ucomisd, G64],
] as const) add(n, { t: 'flags', f: fn }, g, g);
add('ptest', { t: 'flags', f: sse.ptest }, GINT, GINT, false);
for (const [n, fn, is64, g] of [
  ['cvtss2si32', sse.cvtss2si, false, G32I], ['cvtss2si64', sse.cvtss2si, true, G32I],
  ['cvttss2si32', sse.cvttss2si, false, G32I], ['cvttss2si64', sse.cvttss2si, true, G32I],
  ['cvtsd2si32', sse.cvtsd2si, false, G64I], ['cvtsd2si64', sse.cvtsd2si, true, G64I],
  ['cvttsd2si32', sse.cvttsd2si, false, G64I], ['cvttsd2si64', sse.cvttsd2si, true, G64I],
] as const) {
  add(n, { t: 'gpr', f: (st, s, so) => fn(st, s, so, is64), is64 }, G32, g);
}
add('movmskps', { t: 'gpr', f: sse.movmskps, is64: false }, G32, G32, false);
add('movmskpd', { t: 'gpr', f: sse.movmskpd, is64: false }, G32, G64, false);
add('pmovmskb', { t: 'gpr', f: sse.pmovmskb, is64: false }, G32, GINT, false);
add('pextrb5', { t: 'gpr', f: (st, s, so) => sse.pextrb(st, s, so, 5), is64: false }, G32, GINT, false);
add('pextrw3', { t: 'gpr', f: (st, s, so) => sse.pextrw(st, s, so, 3), is64: false }, G32, GINT, false);
add('pextrd2', { t: 'gpr', f: (st, s, so) => sse.pextrd(st, s, so, 2), is64: false }, G32, GINT, false);
add('pextrq1', { t: 'gpr', f: (st, s, so) => sse.pextrq(st, s, so, 1), is64: true }, G32, GINT, false);
add('extractps3', { t: 'gpr', f: (st, s, so) => sse.extractps(st, s, so, 3), is64: false }, G32, G32, false);
add('cvtsi2ss32', { t: 'cvtsi', f: sse.cvtsi2ss, is64: false }, G32, GI64);
add('cvtsi2ss64', { t: 'cvtsi', f: sse.cvtsi2ss, is64: true }, G32, GI64);
add('cvtsi2sd32', { t: 'cvtsi', f: sse.cvtsi2sd, is64: false }, G64, GI64);
add('cvtsi2sd64', { t: 'cvtsi', f: sse.cvtsi2sd, is64: true }, G64, GI64);
for (const n of [
  'paddb', 'paddw', 'paddd', 'paddq', 'psubb', 'psubw', 'psubd', 'psubq', 'paddsb', 'paddsw', 'paddusb', 'paddusw',
  'psubsb', 'psubsw', 'psubusb', 'psubusw', 'pmullw', 'pmulhw', 'pmulhuw', 'pmuludq', 'pmaddwd', 'pavgb', 'pavgw',
  'pminub', 'pmaxub', 'pminsw', 'pmaxsw', 'psadbw', 'pcmpeqb', 'pcmpeqw', 'pcmpeqd', 'pcmpgtb', 'pcmpgtw', 'pcmpgtd',
  'pand', 'pandn', 'por', 'pxor', 'punpcklbw', 'punpcklwd', 'punpckldq', 'punpckhbw', 'punpckhwd', 'punpckhdq',
  'punpcklqdq', 'punpckhqdq', 'packsswb', 'packssdw', 'packuswb', 'pshufb', 'pabsb', 'pabsw', 'pabsd', 'phaddw',
  'phaddd', 'phaddsw', 'phsubw', 'phsubd', 'phsubsw', 'pmaddubsw', 'pmulhrsw', 'psignb', 'psignw', 'psignd', 'pminsb',
  'pmaxsb', 'pminuw', 'pmaxuw', 'pminsd', 'pmaxsd', 'pminud', 'pmaxud', 'pmulld', 'pmuldq', 'pcmpeqq', 'packusdw',
  'phminposuw', 'andps', 'andnps', 'orps', 'xorps', 'unpcklps', 'unpckhps', 'unpcklpd', 'unpckhpd', 'movsldup',
  'movshdup', 'movddup', 'movhlps', 'movlhps', 'pmovsxbw', 'pmovsxbd', 'pmovsxbq', 'pmovsxwd', 'pmovsxwq', 'pmovsxdq',
  'pmovzxbw', 'pmovzxbd', 'pmovzxbq', 'pmovzxwd', 'pmovzxwq', 'pmovzxdq',
]) add(n, { t: 'op', f: (sse as unknown as Record<string, never>)[n] }, GINT, GINT, false);
for (const n of ['psllw', 'pslld', 'psllq', 'psrlw', 'psrld', 'psrlq', 'psraw', 'psrad']) {
  add(n, { t: 'op', f: (sse as unknown as Record<string, never>)[n] }, GINT, GSHIFT, false);
}
for (const [n, fn, imm] of [
  ['palignr3', sse.palignr, 3], ['palignr8', sse.palignr, 8], ['palignr17', sse.palignr, 17],
  ['pshufd27', sse.pshufd, 0x1b], ['pshuflw27', sse.pshuflw, 0x1b], ['pshufhw177', sse.pshufhw, 0xb1],
  ['shufps78', sse.shufps, 0x4e], ['shufps27', sse.shufps, 0x1b], ['shufpd1', sse.shufpd, 1], ['shufpd2', sse.shufpd, 2],
  ['pblendw165', sse.pblendw, 0xa5], ['blendps5', sse.blendps, 5], ['blendpd2', sse.blendpd, 2],
  ['mpsadbw0', sse.mpsadbw, 0], ['mpsadbw5', sse.mpsadbw, 5], ['insertps29', sse.insertps, 0x1d],
  ['insertps96', sse.insertps, 0x60], ['insertps178', sse.insertps, 0xb2],
] as const) add(n, { t: 'imm', f: fn as never, imm }, GINT, GINT, false);
for (const [n, imm] of [
  ['psllw', 3], ['psllw', 16], ['pslld', 7], ['pslld', 40], ['psllq', 33], ['psrlw', 5], ['psrld', 31], ['psrlq', 1],
  ['psraw', 9], ['psraw', 200], ['psrad', 31], ['psrad', 32],
] as const) add(`${n}${imm}`, { t: 'shimm', f: (sse as unknown as Record<string, never>)[`${n}Imm`], imm }, GINT, GINT, false);
for (const [n, imm, fn] of [['pslldq', 5, sse.pslldq], ['psrldq', 9, sse.psrldq], ['pslldq', 16, sse.pslldq]] as const) {
  add(`${n}${imm}`, { t: 'shimm', f: fn, imm }, GINT, GINT, false);
}

interface Mine {
  r: number[];
  status: number;
  aux: bigint;
  fault: boolean;
}

const st = new SimdState();
const src = new Uint32Array(4);

function runMine(c: Case, mx: number, a: number[], b: number[]): Mine {
  st.mxcsr = mx;
  for (let i = 0; i < 4; i++) {
    st.xmm[i] = a[i]!;
    src[i] = b[i]!;
  }
  let aux = 0n;
  let fault = false;
  const k = c.kind;
  let ret: number | void = 0;
  switch (k.t) {
    case 'op':
      ret = k.f(st, 0, src, 0);
      break;
    case 'imm':
      ret = k.f(st, 0, src, 0, k.imm);
      break;
    case 'flags':
      ret = k.f(st, 0, src, 0);
      if (ret !== XM) aux = BigInt(ret);
      break;
    case 'gpr':
      ret = k.f(st, src, 0);
      if (ret !== XM) aux = k.is64 ? (BigInt(st.ires[1]!) << 32n) | BigInt(st.ires[0]!) : BigInt(st.ires[0]!);
      break;
    case 'cvtsi':
      ret = k.f(st, 0, src[0]!, src[1]!, k.is64);
      break;
    case 'shimm':
      k.f(st, 0, k.imm);
      break;
  }
  if (ret === XM) fault = true;
  return { r: Array.from(st.xmm.subarray(0, 4)), status: st.mxcsr, aux, fault };
}

const PER_CASE = Number(process.env.SIMD_ORACLE_CASES ?? 400);

describe.skipIf(oracleUnavailable !== null)('SSE..SSE4.1 vs the host CPU', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const oracle = getOracle();
    const r = rng(0x5eed ^ c.name.length * 7919 ^ c.name.charCodeAt(0) * 131 ^ c.name.charCodeAt(c.name.length - 1));
    const inputs: Array<{ mx: number; a: number[]; b: number[] }> = [];
    for (let i = 0; i < PER_CASE; i++) {
      const mx = c.fp ? pick(r, MXCSRS) : 0x1f80;
      inputs.push({ mx, a: c.ga(r), b: c.gb(r) });
    }
    const lines = inputs.map(({ mx, a, b }) => [c.name, hex(mx), ...a.map(hex), ...b.map(hex)].join(' '));
    const truth = oracle.run(lines);
    const failures: string[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const { mx, a, b } = inputs[i]!;
      const want = truth[i]!;
      const got = runMine(c, mx, a, b);
      let wantAux = want.aux;
      if (c.kind.t === 'flags') wantAux &= 0x8d5n; // OF SF ZF AF PF CF
      const same = got.fault === want.fault && got.status === want.status &&
        got.r.every((v, j) => v === want.r[j]) && (c.kind.t !== 'flags' && c.kind.t !== 'gpr' ? true : got.aux === wantAux);
      if (!same && failures.length < 5) {
        failures.push(
          `${lines[i]}\n   cpu : r=${want.r.map(hex).join(',')} mxcsr=${hex(want.status)} aux=${wantAux.toString(16)} xm=${want.fault}` +
            `\n   mine: r=${got.r.map(hex).join(',')} mxcsr=${hex(got.status)} aux=${got.aux.toString(16)} xm=${got.fault}`,
        );
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
