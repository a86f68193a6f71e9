// Known-answer tests for the SIMD operations the host-CPU oracle does not exercise (implicit XMM0 operands, memory
// forms, MMX conversions, approximations) and for the mnemonic table handed to the decoder.
import { describe, expect, it } from 'vitest';
import {
  MNEMONICS, MNEMONIC_TABLE, SIMD_FEATURES, SimdState, X87, XM, fldenv, fnsave, fnstenv, frstor, fxrstor, fxsave,
  ldmxcsr, mmx, mxcsrValid, sse,
} from '../../../lib/cpu/simd/index.js';

const f32 = (v: number): number => new Uint32Array(new Float32Array([v]).buffer)[0]!;
const fromF32 = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0]!;

function xmm(st: SimdState, r: number): number[] {
  return Array.from(st.xmm.subarray(r * 4, r * 4 + 4));
}
function setX(st: SimdState, r: number, v: number[]): void {
  st.xmm.set(v, r * 4);
}

describe('moves with merge rules', () => {
  it('MOVSS/MOVSD register forms merge, memory forms zero the rest', () => {
    const st = new SimdState();
    setX(st, 1, [1, 2, 3, 4]);
    setX(st, 2, [9, 8, 7, 6]);
    sse.movssRR(st, 1, st.xmm, 8);
    expect(xmm(st, 1)).toEqual([9, 2, 3, 4]);
    sse.movsdRR(st, 1, st.xmm, 8);
    expect(xmm(st, 1)).toEqual([9, 8, 3, 4]);
    sse.loadLow32(st, 1, 5);
    expect(xmm(st, 1)).toEqual([5, 0, 0, 0]);
    sse.loadLow64(st, 1, 6, 7);
    expect(xmm(st, 1)).toEqual([6, 7, 0, 0]);
    sse.movhpLoad(st, 1, new Uint32Array([10, 11]), 0);
    sse.movlpLoad(st, 1, new Uint32Array([12, 13]), 0);
    expect(xmm(st, 1)).toEqual([12, 13, 10, 11]);
  });

  it('blendv* use the sign bits of XMM0; pblendvb byte sign bits', () => {
    const st = new SimdState();
    setX(st, 0, [0x80000000, 0, 0xffffffff, 0x7fffffff]);
    setX(st, 1, [1, 2, 3, 4]);
    setX(st, 2, [10, 20, 30, 40]);
    sse.blendvps(st, 1, st.xmm, 8);
    expect(xmm(st, 1)).toEqual([10, 2, 30, 4]);
    setX(st, 1, [1, 2, 3, 4]);
    sse.blendvpd(st, 1, st.xmm, 8);
    expect(xmm(st, 1)).toEqual([1, 2, 3, 4]); // qword masks: bit 63 of [0x80000000,0] clear, of [..,0x7fffffff] clear
    setX(st, 0, [0x00800080, 0, 0, 0x80000000]);
    setX(st, 1, [0x11111111, 0x22222222, 0x33333333, 0x44444444]);
    setX(st, 2, [0xaaaaaaaa, 0xbbbbbbbb, 0xcccccccc, 0xdddddddd]);
    sse.pblendvb(st, 1, st.xmm, 8);
    expect(xmm(st, 1)).toEqual([0x11aa11aa, 0x22222222, 0x33333333, 0xdd444444]);
  });

  it('PINSR*/PEXTR* and INSERTPS memory form', () => {
    const st = new SimdState();
    sse.pinsrb(st, 3, 0x1ab, 17); // byte 17 & 15 = 1
    sse.pinsrw(st, 3, 0xbeef, 9); // word 9 & 7 = 1
    sse.pinsrd(st, 3, 0xcafef00d, 3);
    expect(xmm(st, 3)).toEqual([0xbeefab00, 0, 0, 0xcafef00d]);
    sse.pinsrq(st, 3, 1, 2, 1);
    expect(xmm(st, 3)).toEqual([0xbeefab00, 0, 1, 2]);
    sse.pextrw(st, st.xmm, 12, 1);
    expect(st.ires[0]).toBe(0xbeef);
    // Memory form: imm[7:6] ignored, destination lane imm[5:4] = 1, zero mask imm[3:0] = 0101.
    sse.insertps(st, 3, new Uint32Array([0x3f800000]), 0, 0xd5, true);
    expect(xmm(st, 3)).toEqual([0, 0x3f800000, 0, 2]);
  });

  it('MASKMOVDQU / MASKMOVQ return the byte-enable mask', () => {
    expect(sse.maskmovdqu(new Uint32Array([0x80000080, 0, 0xffffffff, 0x7f7f7f80]), 0)).toBe(0x1f09);
    const st = new SimdState();
    expect(mmx.maskmovq(st, new Uint32Array([0x80, 0x80000000]), 0)).toBe(0x81);
  });
});

describe('MMX conversions', () => {
  it('CVTPS2PI writes an MMX register (x87 → MMX transition); CVTPI2PS from MMX', () => {
    const st = new SimdState();
    st.x87.fld1();
    expect(mmx.cvtps2pi(st, 2, new Uint32Array([f32(2.5), f32(-3.5)]), 0)).toBe(0);
    expect([st.x87.regs[8], st.x87.regs[9] | 0, st.x87.regs[10]]).toEqual([2, -4, 0xffff]);
    expect([st.x87.top, st.x87.ftw]).toEqual([0, 0xff]);
    mmx.cvttps2pi(st, 2, new Uint32Array([f32(2.5), f32(-3.5)]), 0);
    expect([st.x87.regs[8], st.x87.regs[9] | 0]).toEqual([2, -3]);
    setX(st, 5, [1, 2, 3, 4]);
    sse.cvtpi2ps(st, 5, st.x87.regs, 8, true);
    expect(xmm(st, 5)).toEqual([f32(2), f32(-3), 3, 4]);
    sse.cvtpi2pd(st, 5, st.x87.regs, 8, true);
    expect(xmm(st, 5)).toEqual([0, 0x40000000, 0, 0xc0080000]);
  });

  it('CVTPD2PI with an unmasked invalid leaves the MMX register and x87 state alone', () => {
    const st = new SimdState();
    st.mxcsr = 0x1f00; // IM clear
    st.x87.fld1();
    expect(mmx.cvtpd2pi(st, 1, new Uint32Array([0, 0x7ff80000, 0, 0]), 0)).toBe(XM);
    expect(st.x87.top).toBe(7);
    expect(st.mxcsr & 1).toBe(1);
  });
});

describe('RCP/RSQRT approximations', () => {
  it('stay within the architectural 1.5 * 2^-12 relative error and handle specials', () => {
    const st = new SimdState();
    const vals = [1, 3, 0.1, 123456, 1e-30, 7e30, 2.5, 1 / 3];
    for (const v of vals) {
      setX(st, 0, [f32(v), f32(v), f32(v), f32(v)]);
      sse.rcpps(st, 1, st.xmm, 0);
      sse.rsqrtps(st, 2, st.xmm, 0);
      expect(Math.abs(fromF32(st.xmm[4]!) * fromF32(f32(v)) - 1)).toBeLessThanOrEqual(1.5 * 2 ** -12);
      expect(Math.abs(fromF32(st.xmm[8]!) * Math.sqrt(fromF32(f32(v))) - 1)).toBeLessThanOrEqual(1.5 * 2 ** -12);
    }
    setX(st, 0, [0, 0x80000000, 0x7f800000, 0xbf800000]);
    sse.rcpps(st, 1, st.xmm, 0);
    expect(xmm(st, 1)).toEqual([0x7f800000, 0xff800000, 0, 0xbf800000]);
    sse.rsqrtps(st, 1, st.xmm, 0);
    expect(xmm(st, 1)).toEqual([0x7f800000, 0xff800000, 0, 0xffc00000]);
    expect(st.mxcsr).toBe(0x1f80); // no flags
  });
});

describe('MXCSR and unmasked exceptions', () => {
  it('mxcsrValid / ldmxcsr reject reserved bits', () => {
    expect(mxcsrValid(0xffff)).toBe(true);
    expect(mxcsrValid(0x10000)).toBe(false);
    const st = new SimdState();
    expect(ldmxcsr(st, 0x20000)).toBe(false);
    expect(st.mxcsr).toBe(0x1f80);
    expect(ldmxcsr(st, 0x9fc0)).toBe(true);
    expect(st.mxcsr).toBe(0x9fc0);
  });
  it('an unmasked divide-by-zero returns XM and leaves the destination', () => {
    const st = new SimdState();
    st.mxcsr = 0x1d80;
    setX(st, 0, [f32(1), 0, 0, 0]);
    expect(sse.divss(st, 0, new Uint32Array([0, 0, 0, 0]), 0)).toBe(XM);
    expect(xmm(st, 0)).toEqual([f32(1), 0, 0, 0]);
    expect(st.mxcsr).toBe(0x1d84);
  });
});

describe('decoder hand-off', () => {
  const x87Methods = X87.prototype as unknown as Record<string, unknown>;
  const roots: Record<string, Record<string, unknown>> = {
    sse: sse as unknown as Record<string, unknown>,
    mmx: mmx as unknown as Record<string, unknown>,
    x87: x87Methods,
    env: { fnstenv, fldenv, fnsave, frstor },
    fx: { fxsave, fxrstor, mxcsrValid, ldmxcsr },
  };
  it('every MNEMONIC_TABLE entry resolves to a function', () => {
    const missing = MNEMONIC_TABLE.filter(([, path]) => {
      const [root, name] = path.split('.');
      return typeof roots[root!]?.[name!] !== 'function';
    });
    expect(missing).toEqual([]);
    expect(MNEMONIC_TABLE.length).toBeGreaterThan(300);
  });
  it('the mnemonic list covers the baseline and the advertised extensions', () => {
    for (const m of ['addps', 'cvttsd2si', 'fld', 'fistp', 'fisttp', 'fxsave', 'pshufb', 'ptest', 'dpps', 'movddup']) {
      expect(MNEMONICS).toContain(m);
    }
  });
  it('SIMD_FEATURES reports exactly what is implemented', () => {
    expect(SIMD_FEATURES).toMatchObject({ fpu: true, mmx: true, fxsr: true, sse: true, sse2: true, sse3: true,
      ssse3: true, sse41: true, sse42: false, avx: false });
  });
});
