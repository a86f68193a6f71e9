// FXSAVE/FXRSTOR, FNSTENV/FNSAVE/FRSTOR layouts (Intel SDM vol. 1 figs. 8-9..8-12, vol. 2 FXSAVE tables) and the
// kvm_fpu mapping.
import { describe, expect, it } from 'vitest';
import {
  SimdState, decodeKvmFpu, encodeKvmFpu, fldenv, fnsave, fnstenv, frstor, fromKvmFpu, fxrstor, fxsave, toKvmFpu,
  KVM_FPU_SIZE,
} from '../../../lib/cpu/simd/index.js';

function sample(): SimdState {
  const st = new SimdState();
  st.x87.fldcw(0x027f);
  st.x87.fld1(); // R7
  st.x87.fldpi(); // R6 = ST0
  st.x87.recordLast(0x1c1, 0x401234, 0x33, 0x7ffff000, 0x2b);
  st.mxcsr = 0x9fc0;
  for (let i = 0; i < 64; i++) st.xmm[i] = (0x01010101 * (i + 1)) >>> 0;
  return st;
}
const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (u16(b, o) | (u16(b, o + 2) << 16)) >>> 0;

describe('FXSAVE / FXRSTOR', () => {
  it('32-bit format field offsets', () => {
    const st = sample();
    const b = new Uint8Array(512).fill(0xee);
    fxsave(st, b, 0, { rexW: false, xmmCount: 8 });
    expect(u16(b, 0)).toBe(0x027f); // FCW
    expect(u16(b, 2)).toBe(0x3000); // FSW: TOP = 6
    expect(b[4]).toBe(0xc0); // abridged FTW: R6, R7
    expect(u16(b, 6)).toBe(0x1c1); // FOP
    expect(u32(b, 8)).toBe(0x401234); // FIP
    expect(u16(b, 12)).toBe(0x33); // FCS
    expect(u32(b, 16)).toBe(0x7ffff000); // FDP
    expect(u16(b, 20)).toBe(0x2b); // FDS
    expect(u32(b, 24)).toBe(0x9fc0); // MXCSR
    expect(u32(b, 28)).toBe(0xffff); // MXCSR_MASK
    // ST0 = pi at 32, ST1 = 1.0 at 48, 10 bytes each
    expect(Array.from(b.subarray(32, 42))).toEqual([0x35, 0xc2, 0x68, 0x21, 0xa2, 0xda, 0x0f, 0xc9, 0x00, 0x40]);
    expect(Array.from(b.subarray(48, 58))).toEqual([0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
    expect(u32(b, 160)).toBe(0x01010101); // XMM0
    expect(u32(b, 160 + 7 * 16 + 12)).toBe((0x01010101 * 32) >>> 0); // XMM7 dword 3
    expect(b[160 + 8 * 16]).toBe(0xee); // XMM8 not saved outside 64-bit mode
    expect(b[464]).toBe(0xee); // bytes 464-511 untouched
  });

  it('REX.W format stores 64-bit FIP/FDP; XMM0-15 saved', () => {
    const st = sample();
    st.x87.fip = 0x12345678abcd;
    const b = new Uint8Array(512);
    fxsave(st, b, 0, { rexW: true, xmmCount: 16 });
    expect(u32(b, 8)).toBe(0x5678abcd);
    expect(u32(b, 12)).toBe(0x1234);
    expect(u32(b, 16)).toBe(0x7ffff000);
    expect(u32(b, 400 + 12)).toBe((0x01010101 * 64) >>> 0); // XMM15 dword 3
  });

  it('FXRSTOR restores exactly what FXSAVE wrote and rejects reserved MXCSR bits', () => {
    const a = sample();
    const img = new Uint8Array(512);
    fxsave(a, img, 0, { rexW: true, xmmCount: 16 });
    const b = new SimdState();
    expect(fxrstor(b, img, 0, { rexW: true, xmmCount: 16 })).toBe(true);
    const img2 = new Uint8Array(512);
    fxsave(b, img2, 0, { rexW: true, xmmCount: 16 });
    expect(Array.from(img2)).toEqual(Array.from(img));
    expect(b.x87.stNumber(1)).toBe(1);
    img[26] = 1; // MXCSR bit 16
    const c = new SimdState();
    expect(fxrstor(c, img, 0, { rexW: true, xmmCount: 16 })).toBe(false);
    expect(c.mxcsr).toBe(0x1f80);
  });

  it('rejects images that do not fit the buffer', () => {
    expect(() => fxsave(new SimdState(), new Uint8Array(100), 0, { rexW: false, xmmCount: 8 })).toThrow(/FXSAVE image/);
  });
});

describe('FNSTENV / FNSAVE / FRSTOR', () => {
  it('32-bit protected-mode environment: reserved halves 0xFFFF, full tag word, FCS|FOP, then exceptions masked', () => {
    const st = sample();
    const b = new Uint8Array(28);
    fnstenv(st.x87, b, 0, { size32: true, protectedMode: true });
    expect(u32(b, 0)).toBe(0xffff027f);
    expect(u32(b, 4)).toBe(0xffff3000);
    expect(u32(b, 8)).toBe(0xffff0fff); // R6, R7 valid (00); others empty (11)
    expect(u32(b, 12)).toBe(0x401234);
    expect(u32(b, 16)).toBe((0x1c1 << 16) | 0x33);
    expect(u32(b, 20)).toBe(0x7ffff000);
    expect(u16(b, 24)).toBe(0x2b);
    expect(st.x87.cw & 0x3f).toBe(0x3f);
  });

  it('16-bit real-mode environment packs 20-bit pointers with the opcode', () => {
    const st = sample();
    st.x87.fip = 0x9abcd;
    st.x87.fdp = 0x54321;
    const b = new Uint8Array(14);
    fnstenv(st.x87, b, 0, { size32: false, protectedMode: false });
    expect(u16(b, 6)).toBe(0xabcd);
    expect(u16(b, 8)).toBe((0x9 << 12) | 0x1c1);
    expect(u16(b, 10)).toBe(0x4321);
    expect(u16(b, 12)).toBe(0x5 << 12);
    const y = new SimdState();
    fldenv(y.x87, b, 0, { size32: false, protectedMode: false });
    expect([y.x87.fip, y.x87.fdp, y.x87.fop]).toEqual([0x9abcd, 0x54321, 0x1c1]);
  });

  it('FNSAVE stores registers in stack order then reinitialises; FRSTOR brings everything back', () => {
    const st = sample();
    const b = new Uint8Array(108);
    fnsave(st.x87, b, 0, { size32: true, protectedMode: true });
    expect(Array.from(b.subarray(28, 38))).toEqual([0x35, 0xc2, 0x68, 0x21, 0xa2, 0xda, 0x0f, 0xc9, 0x00, 0x40]);
    expect([st.x87.cw, st.x87.ftw, st.x87.top]).toEqual([0x037f, 0, 0]);
    frstor(st.x87, b, 0, { size32: true, protectedMode: true });
    expect([st.x87.cw, st.x87.top, st.x87.ftw]).toEqual([0x027f, 6, 0xc0]);
    expect(st.x87.stNumber(1)).toBe(1);
  });
});

describe('kvm_fpu mapping', () => {
  it('round-trips through the object form and the 416-byte C layout', () => {
    const st = sample();
    const f = toKvmFpu(st);
    expect(f.fcw).toBe(0x027f);
    expect(f.fsw).toBe(0x3000);
    expect(f.ftwx).toBe(0xc0);
    expect(f.lastOpcode).toBe(0x1c1);
    expect(f.lastIp).toBe(0x401234);
    expect(f.mxcsr).toBe(0x9fc0);
    expect(Array.from(f.fpr.subarray(16, 26))).toEqual([0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]); // ST1 = 1.0
    const raw = encodeKvmFpu(f);
    expect(raw.length).toBe(KVM_FPU_SIZE);
    expect(u16(raw, 128)).toBe(0x027f);
    expect(raw[132]).toBe(0xc0);
    expect(u32(raw, 152)).toBe(0x01010101); // xmm[0]
    expect(u32(raw, 408)).toBe(0x9fc0);
    const back = new SimdState();
    fromKvmFpu(back, decodeKvmFpu(raw));
    expect(toKvmFpu(back)).toEqual(f);
    expect(Array.from(back.xmm)).toEqual(Array.from(st.xmm));
    expect(back.x87.stNumber(0)).toBeCloseTo(Math.PI, 15);
  });

  it('rejects malformed input with the field name', () => {
    const f = toKvmFpu(new SimdState());
    expect(() => fromKvmFpu(new SimdState(), { ...f, fpr: new Uint8Array(3) })).toThrow(/kvm_fpu\.fpr/);
    expect(() => fromKvmFpu(new SimdState(), { ...f, mxcsr: -1 })).toThrow(/kvm_fpu\.mxcsr/);
    // A host-accepted MXCSR bit outside our mask (AMD MM, bit 17) survives the round trip.
    const st = new SimdState();
    fromKvmFpu(st, { ...f, mxcsr: 0x21f80 });
    expect(toKvmFpu(st).mxcsr).toBe(0x21f80);
    expect(() => decodeKvmFpu(new Uint8Array(10))).toThrow(/kvm_fpu/);
  });
});
