// Differential test of the 64-bit MMX forms against the host CPU, plus the MMX/x87 aliasing rules.
import { describe, expect, it } from 'vitest';
import { SimdState, mmx } from '../../../lib/cpu/simd/index.js';
import { getOracle, hex, oracleUnavailable, rng } from './oracle-harness.js';

if (oracleUnavailable) console.warn(`[simd] MMX host-CPU oracle tests skipped: ${oracleUnavailable}`);

const OPS = [
  'paddb', 'paddw', 'paddd', 'paddq', 'psubb', 'psubw', 'psubd', 'psubq', 'paddsb', 'paddsw', 'paddusb', 'paddusw',
  'psubsb', 'psubsw', 'psubusb', 'psubusw', 'pmullw', 'pmulhw', 'pmulhuw', 'pmuludq', 'pmaddwd', 'pavgb', 'pavgw',
  'pminub', 'pmaxub', 'pminsw', 'pmaxsw', 'psadbw', 'pcmpeqb', 'pcmpeqw', 'pcmpeqd', 'pcmpgtb', 'pcmpgtw', 'pcmpgtd',
  'pand', 'pandn', 'por', 'pxor', 'punpcklbw', 'punpcklwd', 'punpckldq', 'punpckhbw', 'punpckhwd', 'punpckhdq',
  'packsswb', 'packssdw', 'packuswb', 'pshufb', 'pabsb', 'pabsw', 'pabsd', 'phaddw', 'phaddd', 'phaddsw', 'phsubw',
  'phsubd', 'phsubsw', 'pmaddubsw', 'pmulhrsw', 'psignb', 'psignw', 'psignd', 'psllw', 'pslld', 'psllq', 'psrlw',
  'psrld', 'psrlq', 'psraw', 'psrad',
];
type Call = (st: SimdState, src: Uint32Array) => void;
const table: Array<[string, Call]> = OPS.map((op) => [
  op,
  (st, src) => (mmx as unknown as Record<string, (st: SimdState, d: number, s: Uint32Array, so: number) => void>)[op]!(st, 0, src, 0),
]);
table.push(['palignr3', (st, src) => mmx.palignr(st, 0, src, 0, 3)]);
table.push(['palignr11', (st, src) => mmx.palignr(st, 0, src, 0, 11)]);
table.push(['pshufw27', (st, src) => mmx.pshufw(st, 0, src, 0, 0x1b)]);
table.push(['pshufw114', (st, src) => mmx.pshufw(st, 0, src, 0, 0x72)]);
table.push(['psllw3', (st) => mmx.psllwImm(st, 0, 3)]);
table.push(['psrad33', (st) => mmx.psradImm(st, 0, 33)]);
table.push(['psrlq7', (st) => mmx.psrlqImm(st, 0, 7)]);

function gen(r: () => number, shift: boolean): number[] {
  const sp = [0, 0xffffffff, 0x80000000, 0x7fffffff, 0x80008000, 0x7fff7fff, 0x80808080, 0x7f7f7f7f, 1];
  const k = r() % 4;
  if (shift) return [k === 0 ? r() >>> 0 : r() % 70, k === 1 ? 1 : 0];
  return [0, 1].map(() => (k === 0 ? sp[r() % sp.length]! : k === 1 ? r() & 0x0f0f0f0f : r()) >>> 0);
}

describe.skipIf(oracleUnavailable !== null)('MMX forms vs the host CPU', () => {
  it.each(table)('%s', (name, call) => {
    const r = rng(0x3a3a ^ (name.length * 977) ^ name.charCodeAt(2));
    const shift = /^ps[lr]/.test(name) && !/\d$/.test(name);
    const inputs = Array.from({ length: 500 }, () => ({ a: gen(r, false), b: gen(r, shift) }));
    const truth = getOracle().run(inputs.map(({ a, b }) => ['mm_' + name, '0', hex(a[0]!), hex(a[1]!), '0', '0',
      hex(b[0]!), hex(b[1]!), '0', '0'].join(' ')));
    const st = new SimdState();
    const src = new Uint32Array(4);
    const bad: string[] = [];
    inputs.forEach(({ a, b }, i) => {
      st.x87.regs[0] = a[0]!;
      st.x87.regs[1] = a[1]!;
      src[0] = b[0]!;
      src[1] = b[1]!;
      call(st, src);
      const want = truth[i]!.r;
      if ((st.x87.regs[0] !== want[0] || st.x87.regs[1] !== want[1]) && bad.length < 5) {
        bad.push(`${name} a=${a.map(hex)} b=${b.map(hex)} cpu=${want.slice(0, 2).map(hex)} mine=${hex(st.x87.regs[0]!)},${hex(st.x87.regs[1]!)}`);
      }
    });
    expect(bad, bad.join('\n')).toEqual([]);
  });
});

describe('MMX aliasing of the x87 registers', () => {
  it('an MMX write sets TOP=0, all tags valid, exponent field 0xFFFF; EMMS empties the tags', () => {
    const st = new SimdState();
    st.x87.fld1(); // TOP = 7, R7 valid
    expect(st.x87.top).toBe(7);
    const src = new Uint32Array([5, 6, 0, 0]);
    mmx.load64(st, 3, 0x11111111, 0x22222222);
    mmx.paddd(st, 3, src, 0);
    expect(st.x87.top).toBe(0);
    expect(st.x87.ftw).toBe(0xff);
    expect(Array.from(st.x87.regs.subarray(12, 15))).toEqual([0x11111116, 0x22222228, 0xffff]);
    // The x87 sees MM3 as physical register 3 = ST(3) with TOP 0: a NaN (exponent all ones, integer bit clear is
    // "unsupported"); FXAM reports it as such (C3 C2 C0 = 000).
    expect(st.x87.stNumber(3)).toBeNaN();
    mmx.emms(st);
    expect(st.x87.ftw).toBe(0);
  });

  it('reading an MMX register (MOVD r32, mm) also performs the transition', () => {
    const st = new SimdState();
    st.x87.fldz();
    mmx.read64(st, 7);
    expect(st.x87.top).toBe(0);
    expect(st.x87.ftw).toBe(0xff);
    expect(Array.from(st.ires)).toEqual([0, 0]); // R7 held +0.0: significand 0
  });
});
