// Differential test of the x87 unit against the host CPU. Each case loads ST1 = b and ST0 = a (80-bit), sets the
// control word, runs one instruction and compares ST0, the full status word and any stored value / EFLAGS.
// Arithmetic (FADD..FDIVR, FSQRT, FSCALE, FPREM/FPREM1) is exact and compared on arbitrary 80-bit operands in
// every precision/rounding mode, including overflow/underflow with masked and unmasked responses.
import { describe, expect, it } from 'vitest';
import { SimdState, X87_FLAGS } from '../../../lib/cpu/simd/index.js';
import { f80FromNumber } from '../../../lib/cpu/simd/f80.js';
import * as f80mod from '../../../lib/cpu/simd/f80.js';
import { getOracle, hex, oracleUnavailable, rng } from './oracle-harness.js';

if (oracleUnavailable) console.warn(`[simd] x87 host-CPU oracle tests skipped: ${oracleUnavailable}`);

type F80 = [number, number, number];
const tmp = new Uint32Array(4);
function fromNum(v: number): F80 {
  f80FromNumber(tmp, 0, v);
  return [tmp[0]!, tmp[1]!, tmp[2]!];
}
const SPECIAL80: F80[] = [
  [0, 0, 0], [0, 0, 0x8000], [0, 0x80000000, 0x7fff], [0, 0x80000000, 0xffff], [0, 0xc0000000, 0x7fff],
  [0, 0xc0000000, 0xffff], [1, 0x80000000, 0x7fff], [0x1234, 0xa0000000, 0xffff], [0, 0x80000000, 0x3fff],
  [0, 0x80000000, 0xbfff], [0, 0x80000000, 0x3ffe], [0, 0xc0000000, 0x3fff],
];
const SPECIAL_WEIRD: F80[] = [
  [1, 0, 0], [0, 0x40000000, 0x8000], [0, 0x80000000, 0], [5, 0x12345678, 0x4000], [0, 0, 0x7fff], [7, 0x40000000, 0x7fff],
];

function dbl(r: () => number, span: number): number {
  const m = 1 + (r() >>> 0) / 2 ** 32 + (r() >>> 11) / 2 ** 53;
  const e = (r() % (2 * span + 1)) - span;
  const v = m * 2 ** e;
  const k = r() % 8;
  if (k === 0) return Math.round(v * 4) / 4; // nice values, ties
  if (k === 1) return (r() % 2 ? -1 : 1) * (r() % 100);
  return r() % 2 ? -v : v;
}
function any80(r: () => number, center: number, span: number): F80 {
  const k = r() % 10;
  if (k === 0) return SPECIAL80[r() % SPECIAL80.length]!;
  const hi = (r() | 0x80000000) >>> 0;
  const lo = k === 1 ? 0 : r() >>> 0;
  const e = k === 2 ? (r() % 3 === 0 ? 0 : r() % 0x7fff) : Math.max(1, Math.min(0x7ffe, center + (r() % (2 * span + 1)) - span));
  const sign = r() % 2 ? 0x8000 : 0;
  if (e === 0) return [lo, hi & 0x7fffffff, sign];
  return [lo, hi, sign | e];
}

interface X87Case {
  name: string;
  run: (st: SimdState) => bigint | null; // returns EFLAGS/stored value to compare, or null
  auxMask: bigint;
  gen: (r: () => number) => { cw: number; a: F80; b: F80 };
}

const cwOf = (r: () => number, pcSingle = false): number => (pcSingle ? 0x007f : 0x027f) | ((r() % 4) << 10);
const cwFull = (r: () => number): number => 0x037f | ((r() % 4) << 10);
/** Any precision control and rounding; sometimes overflow/underflow unmasked (x87 delivers biased results). */
const anyPc = (r: () => number): number =>
  ([0x007f, 0x027f, 0x037f, 0x037f][r() % 4]! | ((r() % 4) << 10)) & (r() % 6 === 0 ? ~0x18 : 0xffff);

const cases: X87Case[] = [];
const arith: Array<[string, number]> = [['fadd', 0], ['fmul', 1], ['fsub', 4], ['fsubr', 5], ['fdiv', 6], ['fdivr', 7]];
for (const [name, reg] of arith) {
  cases.push({
    name,
    run: (st) => {
      st.x87.execReg(0xd8, 0xc0 | (reg << 3) | 1, 0);
      return null;
    },
    auxMask: 0n,
    gen: (r) => {
      const k = r() % 8;
      const pickV = (): F80 =>
        k === 0 ? SPECIAL80[r() % SPECIAL80.length]!
          : k === 1 ? fromNum(dbl(r, 300))
          : k === 2 ? any80(r, 16383, 16383)
          : k === 3 ? any80(r, 40, 80) // around the denormal boundary
          : any80(r, 16383, 70);
      return { cw: anyPc(r), a: pickV(), b: pickV() };
    },
  });
}
const unaryD9: Array<[string, number, 'dbl' | 'any' | 'const']> = [
  ['fsqrt', 0xfa, 'any'], ['frndint', 0xfc, 'any'], ['fxam', 0xe5, 'any'], ['ftst', 0xe4, 'any'], ['fchs', 0xe0, 'any'],
  ['fabs', 0xe1, 'any'], ['fxtract', 0xf4, 'any'], ['fldpi', 0xeb, 'const'], ['fldl2e', 0xea, 'const'],
  ['fldl2t', 0xe9, 'const'], ['fldlg2', 0xec, 'const'], ['fldln2', 0xed, 'const'],
];
for (const [name, modrm, kind] of unaryD9) {
  cases.push({
    name,
    run: (st) => {
      st.x87.execReg(0xd9, modrm, 0);
      return null;
    },
    auxMask: 0n,
    gen: (r) => ({
      cw: kind === 'dbl' ? cwOf(r) : name === 'fsqrt' ? anyPc(r) : cwFull(r),
      a: kind === 'dbl' ? (r() % 6 === 0 ? SPECIAL80[r() % SPECIAL80.length]! : fromNum(Math.abs(dbl(r, 600)) * (r() % 8 ? 1 : -1)))
        : kind === 'any' ? (r() % 12 === 0 ? SPECIAL_WEIRD[r() % SPECIAL_WEIRD.length]! : any80(r, 16383, 70))
        : any80(r, 16383, 5),
      b: any80(r, 16383, 5),
    }),
  });
}
cases.push({
  name: 'fscale',
  run: (st) => {
    st.x87.execReg(0xd9, 0xfd, 0);
    return null;
  },
  auxMask: 0n,
  gen: (r) => ({
    cw: anyPc(r),
    a: r() % 2 ? any80(r, 16383, 16383) : any80(r, 16383, 100),
    b: r() % 8 === 0 ? SPECIAL80[r() % SPECIAL80.length]!
      : fromNum((r() % 2 ? -1 : 1) * ((r() % (r() % 4 === 0 ? 70000 : 20000)) + (r() % 4) / 4)),
  }),
});
for (const [name, modrm] of [['fprem', 0xf8], ['fprem1', 0xf5]] as const) {
  cases.push({
    name,
    run: (st) => {
      st.x87.execReg(0xd9, modrm, 0);
      return null;
    },
    auxMask: 0n,
    gen: (r) => {
      const k = r() % 10;
      const b = k === 0 ? SPECIAL80[r() % SPECIAL80.length]! : k < 5 ? fromNum(dbl(r, 20)) : any80(r, 16383, 20);
      const a = k === 1 ? SPECIAL80[r() % SPECIAL80.length]! : k < 5 ? fromNum(dbl(r, k < 3 ? 50 : 120)) : any80(r, 16383, 300);
      return { cw: cwFull(r), a, b };
    },
  });
}
for (const [name, op, modrm, flags] of [
  ['fcom', 0xd8, 0xd1, false], ['fucom', 0xdd, 0xe1, false], ['fcomi', 0xdb, 0xf1, true], ['fucomi', 0xdb, 0xe9, true],
] as const) {
  cases.push({
    name,
    run: (st) => {
      const rc = st.x87.execReg(op, modrm, 0);
      return flags ? (rc === X87_FLAGS ? BigInt(st.x87.eflagsOut) : 0n) : null;
    },
    auxMask: 0x8d5n,
    gen: (r) => {
      const a = r() % 10 === 0 ? SPECIAL_WEIRD[r() % SPECIAL_WEIRD.length]! : any80(r, 16383, 3);
      const k = r() % 4;
      const b: F80 = k === 0 ? [a[0], a[1], a[2]] : k === 1 ? [(a[0] + 1) >>> 0, a[1], a[2]] : any80(r, 16383, 3);
      return { cw: cwFull(r), a, b };
    },
  });
}
for (const [name, bits, pop, trunc, mask] of [
  ['fist16', 16, false, false, 0xffffn], ['fist32', 32, false, false, 0xffffffffn], ['fistp64', 64, true, false, -1n],
  ['fisttp16', 16, true, true, 0xffffn], ['fisttp32', 32, true, true, 0xffffffffn], ['fisttp64', 64, true, true, -1n],
] as const) {
  cases.push({
    name,
    run: (st) => {
      if (!st.x87.fist(bits, pop, trunc)) return 0n;
      return bits === 64 ? (BigInt(st.x87.out[1]!) << 32n) | BigInt(st.x87.out[0]!) : BigInt(st.x87.out[0]!);
    },
    auxMask: mask < 0n ? 0xffffffffffffffffn : mask,
    gen: (r) => ({ cw: cwFull(r), a: any80(r, 16383, bits + 3), b: any80(r, 16383, 3) }),
  });
}
cases.push({
  name: 'fst32',
  run: (st) => (st.x87.fstM32(false) ? BigInt(st.x87.out[0]!) : 0n),
  auxMask: 0xffffffffn,
  gen: (r) => ({ cw: cwFull(r), a: any80(r, 16383, r() % 2 ? 140 : 40), b: any80(r, 16383, 3) }),
});
cases.push({
  name: 'fst64',
  run: (st) => (st.x87.fstM64(false) ? (BigInt(st.x87.out[1]!) << 32n) | BigInt(st.x87.out[0]!) : 0n),
  auxMask: 0xffffffffffffffffn,
  gen: (r) => ({ cw: cwFull(r), a: any80(r, 16383, r() % 2 ? 1100 : 60), b: any80(r, 16383, 3) }),
});

// Memory-operand forms: the operand is b's low bytes (float32/64 bits or an integer).
function memOperand(r: () => number, kind: 'm32' | 'm64' | 'i16' | 'i32'): F80 {
  const k = r() % 6;
  if (kind === 'm32') {
    const sp = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 1, 0x807fffff, 0x3f800000];
    return [k === 0 ? sp[r() % sp.length]! : k === 1 ? r() >>> 0 : (r() & 0x8fffffff) >>> 0 | 0x3f000000, 0, 0];
  }
  if (kind === 'm64') {
    const sp: Array<[number, number]> = [[0, 0], [0, 0x7ff00000], [0, 0x7ff80000], [1, 0x7ff00000], [1, 0], [0, 0xbff00000]];
    const v = k === 0 ? sp[r() % sp.length]! : k === 1 ? [r() >>> 0, r() >>> 0] : [r() >>> 0, ((r() & 0x800fffff) | 0x3f000000) >>> 0];
    return [v[0]!, v[1]!, 0];
  }
  if (kind === 'i16') return [k === 0 ? [0, 0x8000, 0x7fff, 0xffff][r() % 4]! : r() & 0xffff, 0, 0];
  return [k === 0 ? [0, 0x80000000, 0x7fffffff, 0xffffffff][r() % 4]! : r() >>> 0, 0, 0];
}
for (const [name, kind, run] of [
  ['faddm64', 'm64', (st: SimdState, b: F80) => st.x87.arithM64(0, b[0], b[1])],
  ['fdivrm32', 'm32', (st: SimdState, b: F80) => st.x87.arithM32(7, b[0])],
  ['fisubrm16', 'i16', (st: SimdState, b: F80) => st.x87.arithInt(5, (b[0] << 16) >> 16)],
  ['fimulm32', 'i32', (st: SimdState, b: F80) => st.x87.arithInt(1, b[0] | 0)],
  ['fidivm32', 'i32', (st: SimdState, b: F80) => st.x87.arithInt(6, b[0] | 0)],
  ['fcompm64', 'm64', (st: SimdState, b: F80) => st.x87.arithM64(3, b[0], b[1])],
  ['fldm32', 'm32', (st: SimdState, b: F80) => st.x87.fldM32(b[0])],
  ['fldm64', 'm64', (st: SimdState, b: F80) => st.x87.fldM64(b[0], b[1])],
] as const) {
  cases.push({
    name,
    run: (st) => {
      run(st, memB);
      return null;
    },
    auxMask: 0n,
    gen: (r) => {
      const b = memOperand(r, kind);
      return { cw: anyPc(r), a: r() % 5 === 0 ? SPECIAL80[r() % SPECIAL80.length]! : any80(r, 16383, 40), b };
    },
  });
}
/** The memory operand of the case being run (set by the runner before calling run). */
let memB: F80 = [0, 0, 0];

const PER_CASE = Number(process.env.SIMD_ORACLE_CASES ?? 400);

describe.skipIf(oracleUnavailable !== null)('x87 vs the host CPU', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const r = rng(0x87 ^ (c.name.length * 4099) ^ (c.name.charCodeAt(1) * 17) ^ c.name.charCodeAt(c.name.length - 1));
    const inputs = Array.from({ length: PER_CASE }, () => c.gen(r));
    const lines = inputs.map(({ cw, a, b }) => [c.name, hex(cw), ...a.map(hex), '0', ...b.map(hex), '0'].join(' '));
    const truth = getOracle().run(lines);
    const st = new SimdState();
    const bad: string[] = [];
    inputs.forEach(({ cw, a, b }, i) => {
      const x = st.x87;
      x.fninit();
      x.fldcw(cw);
      x.fldM80(b[0], b[1], b[2]);
      x.fldM80(a[0], a[1], a[2]);
      memB = b;
      const aux = c.run(st);
      const sw = x.getSw();
      const p = x.phys(0) * 4;
      const mine = x.isEmpty(0) ? [0, 0xc0000000, 0xffff] : [x.regs[p]!, x.regs[p + 1]!, x.regs[p + 2]!];
      const want = truth[i]!;
      const wantAux = want.aux & c.auxMask;
      const ok = sw === want.status && mine.every((v, j) => v === want.r[j]) && (aux === null || aux === wantAux);
      if (!ok && bad.length < 6) {
        bad.push(`${lines[i]}\n   cpu : st0=${want.r.slice(0, 3).map(hex)} sw=${hex(want.status)} aux=${wantAux.toString(16)}` +
          `\n   mine: st0=${mine.map(hex)} sw=${hex(sw)} aux=${aux?.toString(16)}`);
      }
    });
    expect(bad, bad.join('\n')).toEqual([]);
  });
});

describe.skipIf(oracleUnavailable !== null)('FNSTENV image vs the host CPU', () => {
  it('FCW/FSW/FTW dwords (reserved halves = 0xFFFF), full tag word and FOP match after FADD', async () => {
    const { fnstenv, fxsave } = await import('../../../lib/cpu/simd/index.js');
    const r = rng(0xe7);
    const inputs = Array.from({ length: 300 }, () => ({
      cw: (r() % 2 ? 0x027f : 0x0272) | ((r() % 4) << 10),
      // Double-representable operands: the FADD result (and so FSW.PE and the tag) is then exact by design.
      a: r() % 3 === 0 ? SPECIAL80[r() % SPECIAL80.length]! : fromNum(dbl(r, 40)),
      b: r() % 3 === 0 ? SPECIAL80[r() % SPECIAL80.length]! : fromNum(dbl(r, 40)),
    }));
    const truth = getOracle().run(inputs.map(({ cw, a, b }) => ['fnstenv', hex(cw), ...a.map(hex), '0', ...b.map(hex), '0'].join(' ')));
    const st = new SimdState();
    const img = new Uint8Array(28);
    const fx = new Uint8Array(512);
    const dv = new DataView(img.buffer);
    const bad: string[] = [];
    inputs.forEach(({ cw, a, b }, i) => {
      const x = st.x87;
      x.fninit();
      x.fldcw(cw);
      x.fldM80(b[0], b[1], b[2]);
      x.fldM80(a[0], a[1], a[2]);
      x.execReg(0xd8, 0xc1, 0);
      x.recordLast(0x0c1, 0, 0x33, 0, 0);
      fnstenv(x, img, 0, { size32: true, protectedMode: true });
      const want = truth[i]!;
      const mine = [dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true)];
      const fop = (dv.getUint32(16, true) >>> 16) & 0x7ff;
      // FXSAVE after FLDENV of the same image: FCW, FSW and the abridged tag byte.
      x.fldcw(dv.getUint16(0, true)); // FNSTENV masked all exceptions; FLDENV restores the saved control word
      fxsave(st, fx, 0, { rexW: true, xmmCount: 16 });
      const fxLow = BigInt(fx[0]! | (fx[1]! << 8)) | (BigInt(fx[2]! | (fx[3]! << 8)) << 16n) | (BigInt(fx[4]!) << 32n);
      const ok = mine.every((v, j) => v === want.r[j]) && fop === ((want.status >>> 16) & 0x7ff) &&
        fxLow === (want.aux & 0xffffffffffn);
      if (!ok && bad.length < 5) {
        bad.push(`cw=${hex(cw)} a=${a.map(hex)} b=${b.map(hex)} cpu=${want.r.slice(0, 3).map(hex)} fop=${hex(want.status >>> 16)} fx=${want.aux.toString(16)}` +
          ` mine=${mine.map(hex)} fop=${hex(fop)} fx=${fxLow.toString(16)}`);
      }
    });
    expect(bad, bad.join('\n')).toEqual([]);
  });
});

describe.skipIf(oracleUnavailable !== null)('FBSTP / FBLD vs the host CPU', () => {
  it('packed BCD store (rounding, range, indefinite) and load', () => {
    const r = rng(0xbcd);
    const st = new SimdState();
    const x = st.x87;
    const stores = Array.from({ length: 1500 }, () => ({
      cw: cwFull(r) & (r() % 8 === 0 ? ~1 : 0xffff),
      a: r() % 10 === 0 ? SPECIAL80[r() % SPECIAL80.length]! : any80(r, 16383 + 30, 34),
      b: fromNum(1),
    }));
    const truthS = getOracle().run(stores.map(({ cw, a, b }) => ['fbstp', hex(cw), ...a.map(hex), '0', ...b.map(hex), '0'].join(' ')));
    const bad: string[] = [];
    stores.forEach(({ cw, a, b }, i) => {
      x.fninit();
      x.fldcw(cw);
      x.fldM80(...b);
      x.fldM80(...a);
      const wrote = x.fbstp();
      const want = truthS[i]!;
      const wantBytes = new Uint8Array(new Uint32Array(want.r).buffer).subarray(0, 10);
      const mine = wrote ? Array.from(x.bcd) : new Array(10).fill(0);
      if ((x.getSw() !== want.status || mine.some((v, j) => v !== wantBytes[j])) && bad.length < 5) {
        bad.push(`fbstp cw=${hex(cw)} a=${a.map(hex)} cpu=${Array.from(wantBytes).map(hex)} sw=${hex(want.status)} mine=${mine.map(hex)} sw=${hex(x.getSw())}`);
      }
    });
    const loads = Array.from({ length: 500 }, () => {
      const bytes = new Uint8Array(12);
      for (let i = 0; i < 9; i++) bytes[i] = ((r() % 10) << 4) | (r() % 10);
      bytes[9] = r() % 2 ? 0x80 : 0;
      if (r() % 5 === 0) bytes.fill(0, 0, 9);
      return bytes;
    });
    const truthL = getOracle().run(loads.map((bytes) => {
      const w = new Uint32Array(bytes.buffer);
      return ['fbld', '37f', '0', '0', '0', '0', hex(w[0]!), hex(w[1]!), hex(w[2]!), '0'].join(' ');
    }));
    loads.forEach((bytes, i) => {
      x.fninit();
      x.fbld(bytes, 0);
      const p = x.phys(0) * 4;
      const mine = [x.regs[p]!, x.regs[p + 1]!, x.regs[p + 2]!];
      const want = truthL[i]!;
      if ((mine.some((v, j) => v !== want.r[j]) || x.getSw() !== want.status) && bad.length < 10) {
        bad.push(`fbld ${Array.from(bytes).map(hex)} cpu=${want.r.slice(0, 3).map(hex)} mine=${mine.map(hex)}`);
      }
    });
    expect(bad, bad.join('\n')).toEqual([]);
  });
});

describe.skipIf(oracleUnavailable !== null)('x87 transcendentals vs the host CPU (documented accuracy)', () => {
  // These are computed with Math.* in binary64: the claim is agreement within 2 ulp of a double with the CPU's
  // 64-bit result, identical stack effects and identical IE/ZE/DE/SF/C2 reporting.
  const ops: Array<[string, number, (r: () => number) => [number, number]]> = [
    ['fsin', 0xfe, (r) => [dbl(r, 6), 1]],
    ['fcos', 0xff, (r) => [dbl(r, 6), 1]],
    ['fptan', 0xf2, (r) => [dbl(r, 2), 1]],
    ['fsincos', 0xfb, (r) => [dbl(r, 6), 1]],
    ['fpatan', 0xf3, (r) => [dbl(r, 20), dbl(r, 20)]],
    ['f2xm1', 0xf0, (r) => [(r() % 2 ? -1 : 1) * ((r() >>> 0) / 2 ** 32), 1]],
    ['fyl2x', 0xf1, (r) => [Math.abs(dbl(r, 60)), dbl(r, 10)]],
    ['fyl2xp1', 0xf9, (r) => [((r() >>> 0) / 2 ** 32 - 0.5) * 0.58, dbl(r, 10)]],
  ];
  it.each(ops)('%s', (name, modrm, gen) => {
    const r = rng(0x7a ^ modrm);
    const inputs = Array.from({ length: 300 }, () => gen(r));
    const truth = getOracle().run(inputs.map(([a, b]) => [name, '37f', ...fromNum(a).map(hex), '0', ...fromNum(b).map(hex), '0'].join(' ')));
    const st = new SimdState();
    const x = st.x87;
    const t = new Uint32Array(4);
    const bad: string[] = [];
    inputs.forEach(([a, b], i) => {
      x.fninit();
      x.fldM80(...fromNum(b));
      x.fldM80(...fromNum(a));
      x.execReg(0xd9, modrm, 0);
      const want = truth[i]!;
      t.set(want.r.slice(0, 3));
      const { f80ToNumber } = f80mod;
      const cls = f80mod.f80Class(t, 0);
      const cpu = cls === f80mod.CLS_QNAN || cls === f80mod.CLS_SNAN ? NaN : f80ToNumber(t, 0);
      const mine = x.stNumber(0);
      const ulp = Math.max(Math.abs(cpu), 2 ** -1000) * 2 ** -52;
      const swMask = 0x0001 | 0x0002 | 0x0004 | 0x0040 | 0x0400 | 0x3800;
      if ((!(mine === cpu || (mine !== mine && cpu !== cpu) || Math.abs(mine - cpu) <= 2 * ulp) || (x.getSw() & swMask) !== (want.status & swMask)) && bad.length < 5) {
        bad.push(`${name}(${a}, ${b}): cpu=${cpu} sw=${hex(want.status)} mine=${mine} sw=${hex(x.getSw())}`);
      }
    });
    expect(bad, bad.join('\n')).toEqual([]);
  });
});
