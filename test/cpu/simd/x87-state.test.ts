// Known-answer tests of x87 stack management, exception responses and 80-bit encodings (Intel SDM vol. 1 ch. 8).
import { describe, expect, it } from 'vitest';
import { SimdState, X87, X87_FLAGS, X87_UD } from '../../../lib/cpu/simd/index.js';
import { SW_C1, SW_ES, SW_B, SW_IE, SW_SF, SW_PE, SW_ZE, SW_C0, SW_C2, SW_C3 } from '../../../lib/cpu/simd/x87.js';

function st0(x: X87): [number, number, number] {
  const p = x.phys(0) * 4;
  return [x.regs[p]!, x.regs[p + 1]!, x.regs[p + 2]!];
}
const INDEF: [number, number, number] = [0, 0xc0000000, 0xffff];

describe('x87 stack', () => {
  it('FNINIT state: CW 037F, SW 0, all empty', () => {
    const x = new X87();
    x.cw = 0;
    x.sw = 0xffff;
    x.ftw = 0xff;
    x.fninit();
    expect([x.cw, x.getSw(), x.ftw, x.fullTagWord()]).toEqual([0x037f, 0, 0, 0xffff]);
  });

  it('push decrements TOP; the 9th push overflows: IE|SF, C1=1, masked response loads the indefinite', () => {
    const x = new X87();
    for (let i = 0; i < 8; i++) x.fld1();
    expect(x.top).toBe(0);
    expect(x.getSw() & (SW_IE | SW_SF)).toBe(0);
    x.fldz();
    expect(x.getSw() & (SW_IE | SW_SF | SW_C1)).toBe(SW_IE | SW_SF | SW_C1);
    expect(x.top).toBe(7);
    expect(st0(x)).toEqual(INDEF);
    expect(x.pendingFault()).toBe(false); // masked
  });

  it('unmasked stack overflow leaves TOP and registers alone and sets ES and B (#MF pending)', () => {
    const x = new X87();
    x.fldcw(0x037e); // IM = 0
    for (let i = 0; i < 8; i++) x.fld1();
    const before = Array.from(x.regs);
    x.fldpi();
    expect(x.top).toBe(0);
    expect(Array.from(x.regs)).toEqual(before);
    expect(x.getSw() & (SW_ES | SW_B | SW_IE | SW_SF)).toBe(SW_ES | SW_B | SW_IE | SW_SF);
    expect(x.pendingFault()).toBe(true);
    x.fnclex();
    expect(x.pendingFault()).toBe(false);
  });

  it('underflow: arithmetic on an empty register gives IE|SF with C1=0 and the indefinite', () => {
    const x = new X87();
    x.fld1();
    x.execReg(0xd8, 0xc1, 0); // fadd st, st(1): ST1 empty
    expect(x.getSw() & (SW_IE | SW_SF | SW_C1)).toBe(SW_IE | SW_SF);
    expect(st0(x)).toEqual(INDEF);
  });

  it('FSTP to memory from an empty stack stores the indefinite when masked, nothing when unmasked', () => {
    const x = new X87();
    expect(x.fstM64(true)).toBe(true);
    expect([x.out[0], x.out[1]]).toEqual([0, 0xfff80000]);
    x.fninit();
    x.fldcw(0x037e);
    expect(x.fstM32(true)).toBe(false);
    expect(x.fist(32, true)).toBe(false);
  });

  it('FLDCW drops reserved bits 15:13 and 7 and forces bit 6 (measured on hardware)', () => {
    const x = new X87();
    x.fldcw(0xffff);
    expect(x.fnstcw()).toBe(0x1f7f);
    x.fldcw(0);
    expect(x.fnstcw()).toBe(0x0040);
  });

  it('FLDCW recomputes ES/B from pending flags', () => {
    const x = new X87();
    x.fldz();
    x.fld1();
    x.execReg(0xd8, 0xf1, 0); // fdiv st, st(1): 1/0 → ZE (masked)
    expect(x.getSw() & SW_ZE).toBe(SW_ZE);
    expect(x.pendingFault()).toBe(false);
    x.fldcw(0x037b); // unmask ZE
    expect(x.pendingFault()).toBe(true);
    x.fldcw(0x037f);
    expect(x.pendingFault()).toBe(false);
  });

  it('FXCH, FFREE, FINCSTP, FDECSTP, FCMOVcc', () => {
    const x = new X87();
    x.fld1();
    x.fldz();
    x.execReg(0xd9, 0xc9, 0); // fxch st(1)
    expect(x.stNumber(0)).toBe(1);
    expect(x.stNumber(1)).toBe(0);
    x.execReg(0xda, 0xc1, 0); // fcmovb, CF=0: no move
    expect(x.stNumber(0)).toBe(1);
    x.execReg(0xda, 0xc1, 0x01); // fcmovb, CF=1
    expect(x.stNumber(0)).toBe(0);
    x.execReg(0xdd, 0xc1, 0); // ffree st(1)
    expect(x.isEmpty(1)).toBe(true);
    const top = x.top;
    x.execReg(0xd9, 0xf7, 0); // fincstp
    expect(x.top).toBe((top + 1) & 7);
    x.execReg(0xd9, 0xf6, 0); // fdecstp
    expect(x.top).toBe(top);
  });

  it('invalid register encodings return X87_UD', () => {
    const x = new X87();
    for (const [op, m] of [[0xd9, 0xd1], [0xd9, 0xe2], [0xd9, 0xef], [0xda, 0xe8], [0xdb, 0xe5], [0xde, 0xd8], [0xdf, 0xf8]]) {
      expect(x.execReg(op!, m!, 0), `${op!.toString(16)} ${m!.toString(16)}`).toBe(X87_UD);
    }
  });
});

describe('x87 values', () => {
  it('FLD m80 / FSTP m80 round-trip every encoding bit-exactly (NaN payloads, denormals, unsupported)', () => {
    const x = new X87();
    const vals: Array<[number, number, number]> = [
      [0x12345678, 0x9abcdef0, 0x4321], [1, 0, 0x8000], [0, 0x80000000, 0], [0xffffffff, 0xbfffffff, 0x7fff],
      [0xdeadbeef, 0x12345678, 0x1234], [0, 0xc0000000, 0xffff], [0xffffffff, 0xffffffff, 0x7ffe],
    ];
    for (const v of vals) {
      x.fldM80(...v);
      expect(x.fstpM80()).toBe(true);
      expect(Array.from(x.out)).toEqual(v);
    }
  });

  it('FLD m32 of an SNaN raises IE and loads the quieted NaN; FLD m64 of a denormal raises DE', () => {
    const x = new X87();
    x.fldM32(0x7f800001);
    expect(x.getSw() & SW_IE).toBe(SW_IE);
    expect(st0(x)).toEqual([0, 0xc0000100, 0x7fff]);
    x.fninit();
    x.fldM64(1, 0);
    expect(x.getSw() & 2).toBe(2);
    expect(x.stNumber(0)).toBe(5e-324);
  });

  it('FILD m64 is exact for all 64-bit integers and FISTP m64 returns them', () => {
    const x = new X87();
    for (const [lo, hi] of [[0xffffffff, 0x7fffffff], [0, 0x80000000], [1, 0], [0xfffffffe, 0xffffffff], [0x89abcdef, 0x01234567]]) {
      x.fildI64(lo!, hi!);
      expect(x.fist(64, true)).toBe(true);
      expect([x.out[0], x.out[1]]).toEqual([lo, hi]);
    }
  });

  it('FIST overflow stores the integer indefinite (masked IE)', () => {
    const x = new X87();
    x.fildI32(40000);
    expect(x.fist(16, true)).toBe(true);
    expect(x.out[0]).toBe(0x8000);
    expect(x.getSw() & SW_IE).toBe(SW_IE);
  });

  it('FIST honours the rounding control; FISTTP truncates; C1 reports rounding up', () => {
    const x = new X87();
    const cases: Array<[number, number, number]> = [[0, 2.5, 2], [1, -2.5, -3], [2, 2.1, 3], [3, -2.9, -2], [0, 3.5, 4]];
    for (const [rc, v, want] of cases) {
      x.fninit();
      x.fldcw(0x037f | (rc << 10));
      x.fldM64(new Uint32Array(new Float64Array([v]).buffer)[0]!, new Uint32Array(new Float64Array([v]).buffer)[1]!);
      x.fist(32, true);
      expect(x.out[0]! | 0, `rc=${rc} v=${v}`).toBe(want);
      expect(x.getSw() & SW_PE).toBe(SW_PE);
    }
    x.fninit();
    x.fldM64(0, 0xc0040000); // -2.5
    x.fist(32, true, true);
    expect(x.out[0]! | 0).toBe(-2);
  });

  it('FCOM/FCOMI condition codes and EFLAGS, including unordered', () => {
    const x = new X87();
    x.fld1();
    x.fldz(); // ST0 = 0, ST1 = 1
    x.execReg(0xd8, 0xd1, 0); // fcom st(1): 0 < 1 → C0
    expect(x.getSw() & (SW_C0 | SW_C2 | SW_C3)).toBe(SW_C0);
    expect(x.execReg(0xdb, 0xf1, 0)).toBe(X87_FLAGS); // fcomi
    expect(x.eflagsOut).toBe(0x01);
    x.fninit();
    x.fldM80(0, 0xc0000000, 0x7fff); // QNaN
    x.fld1();
    x.execReg(0xdd, 0xe1, 0); // fucom: QNaN does not signal
    expect(x.getSw() & (SW_C0 | SW_C2 | SW_C3 | SW_IE)).toBe(SW_C0 | SW_C2 | SW_C3);
    x.execReg(0xd8, 0xd1, 0); // fcom: signals
    expect(x.getSw() & SW_IE).toBe(SW_IE);
    expect(x.execReg(0xdb, 0xe9, 0)).toBe(X87_FLAGS); // fucomi unordered
    expect(x.eflagsOut).toBe(0x45);
  });

  it('FXAM classes', () => {
    const x = new X87();
    const cls = (): number => x.getSw() & (SW_C0 | SW_C2 | SW_C3 | SW_C1);
    x.execReg(0xd9, 0xe5, 0);
    expect(cls() & ~SW_C1).toBe(SW_C3 | SW_C0); // empty
    x.fldz();
    x.fchs();
    x.execReg(0xd9, 0xe5, 0);
    expect(cls()).toBe(SW_C3 | SW_C1); // -0
    x.fld1();
    x.execReg(0xd9, 0xe5, 0);
    expect(cls()).toBe(SW_C2); // normal
  });

  it('FLDPI depends on the rounding control', () => {
    const x = new X87();
    x.fldpi();
    expect(st0(x)).toEqual([0x2168c235, 0xc90fdaa2, 0x4000]);
    x.fninit();
    x.fldcw(0x077f); // round down
    x.fldpi();
    expect(st0(x)).toEqual([0x2168c234, 0xc90fdaa2, 0x4000]);
  });

  it('the SimdState reset leaves an empty x87 stack and default MXCSR', () => {
    const st = new SimdState();
    st.x87.fld1();
    st.mxcsr = 0;
    st.reset();
    expect([st.x87.ftw, st.x87.cw, st.mxcsr]).toEqual([0, 0x037f, 0x1f80]);
  });
});
