// The x87 floating-point unit.
//
// Registers are stored exactly in 80-bit form (see f80.ts), so loads, stores, FXCH, FXSAVE/FRSTOR and MMX aliasing
// are bit-exact. FADD/FSUB/FMUL/FDIV (all forms), FSQRT, FSCALE, FPREM/FPREM1, FRNDINT, FXTRACT, FIST/FISTTP,
// FST m32/m64, FILD and the comparisons are exact: they round once, as hardware does, to the precision-control width
// (24/53/64 bits) within the 15-bit exponent range, report PE/UE/OE/C1 like the SDM describes (tininess after
// rounding; unmasked overflow/underflow deliver the result with the exponent biased by ∓24576), and are checked
// against the host CPU in test/cpu/simd/x87-oracle.test.ts. Only the transcendentals (F2XM1, FYL2X, FYL2XP1,
// FPTAN, FPATAN, FSIN, FCOS, FSINCOS) are approximate: they are computed with Math.* in binary64 (about 1 ulp of a
// double, not the x87's 64-bit results) and then rounded to the precision control.
//
// Condition codes, stack overflow/underflow (IE + SF, C1), masked responses (real/integer indefinite), the
// ES/B summary bits and the precision/rounding-up reporting in C1 follow the Intel SDM.

import {
  CLS_DENORMAL,
  CLS_INF,
  CLS_NORMAL,
  CLS_QNAN,
  CLS_SNAN,
  CLS_UNSUPPORTED,
  CLS_ZERO,
  f80Class,
  f80Compare,
  f80Copy,
  f80FromF32,
  f80FromF64,
  f80FromInt64,
  f80FromNumber,
  f80NaNToF32,
  f80NaNToF64,
  f80Round,
  f80Set,
  f80SetIndefinite,
  f80ToInt,
  f80ToNumber,
  intOut,
  outHi80,
} from './f80.js';
import { f32ToBits, f64Hi, f64Lo } from './bits.js';
import { arith80, prem80, premOut, scale80, sqrt80, x80 } from './x87-exact.js';
import {
  FE_IE,
  FE_PE,
  FE_ZE,
  FMT32,
  FMT64,
  FMT_X87_24,
  RC_DOWN,
  RC_UP,
  RC_ZERO,
  fpReset,
  fpStatus,
  roundExact,
  type FpFormat,
} from './fp-core.js';

export const SW_IE = 0x0001;
export const SW_DE = 0x0002;
export const SW_ZE = 0x0004;
export const SW_OE = 0x0008;
export const SW_UE = 0x0010;
export const SW_PE = 0x0020;
export const SW_SF = 0x0040;
export const SW_ES = 0x0080;
export const SW_C0 = 0x0100;
export const SW_C1 = 0x0200;
export const SW_C2 = 0x0400;
export const SW_C3 = 0x4000;
export const SW_B = 0x8000;
const SW_CC = SW_C0 | SW_C1 | SW_C2 | SW_C3;

/** Result codes of X87.execReg. */
export const X87_DONE = 0;
/** The instruction wrote ZF/PF/CF (in x87.eflagsOut); the caller also clears OF, SF and AF. */
export const X87_FLAGS = 1;
/** Invalid encoding: raise #UD. */
export const X87_UD = -2;

// Arithmetic operation numbers = the ModRM.reg field of the D8/DC/DA/DE memory forms.
export const FOP_ADD = 0;
export const FOP_MUL = 1;
export const FOP_COM = 2;
export const FOP_COMP = 3;
export const FOP_SUB = 4;
export const FOP_SUBR = 5;
export const FOP_DIV = 6;
export const FOP_DIVR = 7;

const EFL_CF = 0x01;
const EFL_PF = 0x04;
const EFL_ZF = 0x40;

// Constants as 80-bit significands (hi, lo) rounded to nearest; `down` ones are used for RC down/zero.
const K_PI = [0xc90fdaa2, 0x2168c235, 0x4000];
const K_L2E = [0xb8aa3b29, 0x5c17f0bc, 0x3fff];
const K_LG2 = [0x9a209a84, 0xfbcff799, 0x3ffd];
const K_LN2 = [0xb17217f7, 0xd1cf79ac, 0x3ffe];
const K_L2T = [0xd49a784b, 0xcd1b8afe, 0x4000];

export class X87 {
  /** Physical registers R0-R7, 4 dwords each: significand lo, significand hi, sign|exponent, unused.
   * MMn = dwords [4n, 4n+1]. */
  readonly regs = new Uint32Array(32);
  /** Stack top (FSW bits 13:11). */
  top = 0;
  /** Abridged tag word: bit n set = physical register n is not empty (the FXSAVE / kvm_fpu ftwx form). */
  ftw = 0;
  /** Status word with the TOP field kept separately (use getSw()). */
  sw = 0;
  cw = 0x037f;
  /** Last non-control instruction: opcode (11 bits), instruction and data pointers and selectors. */
  fop = 0;
  fip = 0;
  fcs = 0;
  fdp = 0;
  fds = 0;
  /** Memory results of FST/FIST/...: m32 → out[0]; m64 → out[0..1]; m80 → out[0..1] significand, out[2] s|exp. */
  readonly out = new Uint32Array(3);
  /** EFLAGS bits (ZF|PF|CF) written by FCOMI/FUCOMI(P) when execReg returns X87_FLAGS. */
  eflagsOut = 0;

  private readonly t = new Uint32Array(4);
  private readonly t2 = new Uint32Array(4);

  reset(): void {
    this.fninit();
    this.regs.fill(0);
  }

  // ---- status / control ----

  getSw(): number {
    return ((this.sw & ~0x3800) | (this.top << 11)) & 0xffff;
  }
  setSw(v: number): void {
    this.sw = v & 0xc7ff;
    this.top = (v >>> 11) & 7;
  }
  /** True when an unmasked exception is pending: the next waiting x87 instruction (or FWAIT, or an MMX
   * instruction) must raise #MF (CR0.NE=1) instead of executing. */
  pendingFault(): boolean {
    return (this.sw & SW_ES) !== 0;
  }
  private raise(f: number): void {
    this.sw |= f;
    if (this.sw & ~this.cw & 0x3f) this.sw |= SW_ES | SW_B;
  }
  private unmasked(f: number): boolean {
    return (f & ~this.cw & 0x3f) !== 0;
  }
  private setC1(on: boolean): void {
    this.sw = on ? this.sw | SW_C1 : this.sw & ~SW_C1;
  }
  private setCC(c3: number, c2: number, c1: number, c0: number): void {
    this.sw = (this.sw & ~SW_CC) | (c3 ? SW_C3 : 0) | (c2 ? SW_C2 : 0) | (c1 ? SW_C1 : 0) | (c0 ? SW_C0 : 0);
  }
  private rc(): number {
    return (this.cw >>> 10) & 3;
  }
  private fmt(): FpFormat {
    return ((this.cw >>> 8) & 3) === 0 ? FMT_X87_24 : FMT64;
  }

  /** FLDCW: bits 15:13 and 7 are reserved (read as 0), bit 6 reads as 1 — as measured on hardware. */
  fldcw(v: number): void {
    this.cw = (v & 0x1f3f) | 0x40;
    if (this.sw & ~this.cw & 0x3f) this.sw |= SW_ES | SW_B;
    else this.sw &= ~(SW_ES | SW_B);
  }
  fnstcw(): number {
    return this.cw;
  }
  fnstsw(): number {
    return this.getSw();
  }
  fnclex(): void {
    this.sw &= ~(0xff | SW_B);
  }
  fninit(): void {
    this.cw = 0x037f;
    this.sw = 0;
    this.top = 0;
    this.ftw = 0;
    this.fop = 0;
    this.fip = 0;
    this.fcs = 0;
    this.fdp = 0;
    this.fds = 0;
  }
  /** Records the last non-control x87 instruction (call after each one that is not FNINIT/FNCLEX/FLDCW/FNSTCW/
   * FNSTSW/FNSTENV/FLDENV/FNSAVE/FRSTOR/FWAIT). fop = ((first byte & 7) << 8) | ModRM. */
  recordLast(fop: number, fip: number, fcs: number, fdp: number, fds: number): void {
    this.fop = fop & 0x7ff;
    this.fip = fip;
    this.fcs = fcs;
    this.fdp = fdp;
    this.fds = fds;
  }

  // ---- stack helpers ----

  phys(i: number): number {
    return (this.top + i) & 7;
  }
  private off(i: number): number {
    return ((this.top + i) & 7) * 4;
  }
  isEmpty(i: number): boolean {
    return ((this.ftw >>> ((this.top + i) & 7)) & 1) === 0;
  }
  private setValid(i: number): void {
    this.ftw |= 1 << ((this.top + i) & 7);
  }
  private pop(): void {
    this.ftw &= ~(1 << this.top);
    this.top = (this.top + 1) & 7;
  }
  /** Stack underflow: IE+SF, C1=0. Returns true when masked (the caller applies the masked response). */
  private underflow(): boolean {
    this.setC1(false);
    this.raise(SW_IE | SW_SF);
    return (this.cw & SW_IE) !== 0;
  }
  /** A push would overflow the stack (the register below TOP is in use). */
  private pushOverflows(): boolean {
    return ((this.ftw >>> ((this.top - 1) & 7)) & 1) !== 0;
  }
  /** Pushes a copy of a[o..o+2]. Handles stack overflow. */
  private pushRaw(a: Uint32Array, o: number): void {
    const np = (this.top - 1) & 7;
    if ((this.ftw >>> np) & 1) {
      this.setC1(true);
      this.raise(SW_IE | SW_SF);
      if (!(this.cw & SW_IE)) return;
      this.top = np;
      f80SetIndefinite(this.regs, np * 4);
      return;
    }
    f80Copy(this.regs, np * 4, a, o);
    this.top = np;
    this.ftw |= 1 << np;
    this.setC1(false);
  }
  /** Reads ST(i) as a full 80-bit value into out[] (FXSAVE helpers, debugging). */
  st(i: number): { lo: number; hi: number; sexp: number } {
    const o = this.off(i);
    return { lo: this.regs[o]!, hi: this.regs[o + 1]!, sexp: this.regs[o + 2]! };
  }
  /** ST(i) as the nearest double (NaN for NaNs / empty). */
  stNumber(i: number): number {
    if (this.isEmpty(i)) return NaN;
    const c = f80Class(this.regs, this.off(i));
    if (c === CLS_QNAN || c === CLS_SNAN || c === CLS_UNSUPPORTED) return NaN;
    return f80ToNumber(this.regs, this.off(i));
  }

  // ---- loads ----

  private loadChecked(): void {
    this.pushRaw(this.t, 0);
  }
  /** FLD m32fp. */
  fldM32(bits: number): void {
    const t = this.t;
    if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
      if (!(bits & 0x400000)) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
      }
      f80FromF32(t, 0, bits | 0x400000);
    } else {
      if ((bits & 0x7f800000) === 0 && (bits & 0x7fffff) !== 0 && !this.pushOverflows()) {
        this.raise(SW_DE);
        if (this.unmasked(SW_DE)) return;
      }
      f80FromF32(t, 0, bits);
    }
    this.loadChecked();
  }
  /** FLD m64fp. */
  fldM64(lo: number, hi: number): void {
    const t = this.t;
    const isNaN = (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) !== 0 || lo !== 0);
    if (isNaN) {
      if (!(hi & 0x80000)) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
      }
      f80FromF64(t, 0, lo, (hi | 0x80000) >>> 0);
    } else {
      if ((hi & 0x7ff00000) === 0 && ((hi & 0xfffff) !== 0 || lo !== 0) && !this.pushOverflows()) {
        this.raise(SW_DE);
        if (this.unmasked(SW_DE)) return;
      }
      f80FromF64(t, 0, lo, hi);
    }
    this.loadChecked();
  }
  /** FLD m80fp (no exceptions besides stack overflow; loaded bit-exactly). */
  fldM80(lo: number, hi: number, sexp: number): void {
    f80Set(this.t, 0, lo >>> 0, hi >>> 0, sexp);
    this.loadChecked();
  }
  /** FILD m16int / m32int (v is the sign-extended integer). */
  fildI32(v: number): void {
    f80FromInt64(this.t, 0, v >>> 0, v < 0 ? 0xffffffff : 0);
    this.loadChecked();
  }
  /** FILD m64int. */
  fildI64(lo: number, hi: number): void {
    f80FromInt64(this.t, 0, lo, hi);
    this.loadChecked();
  }
  /** FLD ST(i). */
  fldSt(i: number): void {
    if (this.isEmpty(i)) {
      if (!this.underflow()) return;
      f80SetIndefinite(this.t, 0);
      this.pushRaw(this.t, 0);
      this.setC1(false); // underflow and overflow together: the CPU reports C1 = 0 (underflow)
      return;
    }
    f80Copy(this.t, 0, this.regs, this.off(i));
    this.pushRaw(this.t, 0);
  }
  private fldConst(k: readonly number[] | null, roundsUpAtNearest: boolean, isL2t = false): void {
    const t = this.t;
    if (k === null) {
      f80Set(t, 0, 0, 0, 0);
    } else {
      let lo = k[1]!;
      const rc = this.rc();
      if (isL2t) {
        if (rc === RC_UP) lo += 1;
      } else if (roundsUpAtNearest && (rc === RC_DOWN || rc === RC_ZERO)) lo -= 1;
      f80Set(t, 0, lo >>> 0, k[0]!, k[2]!);
    }
    this.pushRaw(t, 0);
  }
  fld1(): void {
    f80Set(this.t, 0, 0, 0x80000000, 0x3fff);
    this.pushRaw(this.t, 0);
  }
  fldz(): void {
    this.fldConst(null, false);
  }
  fldpi(): void {
    this.fldConst(K_PI, true);
  }
  fldl2e(): void {
    this.fldConst(K_L2E, true);
  }
  fldlg2(): void {
    this.fldConst(K_LG2, true);
  }
  fldln2(): void {
    this.fldConst(K_LN2, true);
  }
  fldl2t(): void {
    this.fldConst(K_L2T, false, true);
  }

  // ---- stores ----

  /** ST0 check for stores: returns 0 ok, 1 empty-masked (store indefinite), 2 suppress. */
  private storeSrc(): number {
    if (!this.isEmpty(0)) return 0;
    return this.underflow() ? 1 : 2;
  }
  /** FST/FSTP m32fp: returns true when out[0] must be written to memory. */
  fstM32(pop: boolean): boolean {
    const s = this.storeSrc();
    if (s === 2) return false;
    let bits: number;
    if (s === 1) bits = 0xffc00000;
    else {
      const o = this.off(0);
      const c = f80Class(this.regs, o);
      if (c === CLS_QNAN || c === CLS_SNAN || c === CLS_UNSUPPORTED) {
        if (c !== CLS_QNAN) {
          this.raise(SW_IE);
          if (this.unmasked(SW_IE)) return false;
        }
        bits = c === CLS_UNSUPPORTED ? 0xffc00000 : f80NaNToF32(this.regs, o);
        this.setC1(false);
      } else {
        fpReset();
        const v = f80Round(this.regs, o, FMT32, this.rc());
        this.raiseRounding();
        bits = f32ToBits(v);
      }
    }
    this.out[0] = bits;
    if (pop) this.pop();
    return true;
  }
  /** FST/FSTP m64fp: out[0..1]. */
  fstM64(pop: boolean): boolean {
    const s = this.storeSrc();
    if (s === 2) return false;
    if (s === 1) {
      this.out[0] = 0;
      this.out[1] = 0xfff80000;
    } else {
      const o = this.off(0);
      const c = f80Class(this.regs, o);
      if (c === CLS_QNAN || c === CLS_SNAN || c === CLS_UNSUPPORTED) {
        if (c !== CLS_QNAN) {
          this.raise(SW_IE);
          if (this.unmasked(SW_IE)) return false;
        }
        if (c === CLS_UNSUPPORTED) {
          this.out[0] = 0;
          this.out[1] = 0xfff80000;
        } else {
          this.out[0] = f80NaNToF64(this.regs, o);
          this.out[1] = outHi80;
        }
        this.setC1(false);
      } else {
        fpReset();
        const v = f80Round(this.regs, o, FMT64, this.rc());
        this.raiseRounding();
        this.out[0] = f64Lo(v);
        this.out[1] = f64Hi();
      }
    }
    if (pop) this.pop();
    return true;
  }
  /** FSTP m80fp: out[0..2]. */
  fstpM80(): boolean {
    const s = this.storeSrc();
    if (s === 2) return false;
    if (s === 1) f80SetIndefinite(this.out, 0);
    else {
      f80Copy(this.out, 0, this.regs, this.off(0));
      this.setC1(false); // SDM: C1 is the round-up indication; an 80-bit store never rounds
    }
    this.pop();
    return true;
  }
  /** Applies fpStatus (OE/UE/PE, rounding direction) of a rounding to the status word. */
  private raiseRounding(): void {
    const f = fpStatus.flags;
    this.setC1((f & FE_PE) !== 0 && fpStatus.up);
    if (f) this.raise(f);
  }
  /** FST/FSTP ST(i). */
  fstSt(i: number, pop: boolean): void {
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      f80SetIndefinite(this.regs, this.off(i));
    } else {
      f80Copy(this.regs, this.off(i), this.regs, this.off(0));
      this.setC1(false); // SDM: C1 = round-up indication, and a register copy never rounds
    }
    this.setValid(i);
    if (pop) this.pop();
  }
  /** FIST/FISTP m16int|m32int|m64int (bits 16/32/64) and FISTTP (trunc). out[0] (and out[1] for 64). */
  fist(bits: number, pop: boolean, trunc = false): boolean {
    const s = this.storeSrc();
    if (s === 2) return false;
    let ok = false;
    if (s === 0) {
      const o = this.off(0);
      const c = f80Class(this.regs, o);
      if (c === CLS_NORMAL || c === CLS_DENORMAL || c === CLS_ZERO) {
        ok = f80ToInt(this.regs, o, trunc ? RC_ZERO : this.rc(), bits);
        if (ok) {
          this.setC1(intOut.inexact && intOut.up);
          if (intOut.inexact) this.raise(SW_PE);
        }
      }
    }
    if (!ok) {
      if (s === 0) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return false;
        this.setC1(false);
      }
      this.out[0] = bits === 16 ? 0x8000 : bits === 32 ? 0x80000000 : 0;
      this.out[1] = bits === 64 ? 0x80000000 : 0;
    } else {
      this.out[0] = intOut.lo;
      this.out[1] = intOut.hi;
    }
    if (pop) this.pop();
    return true;
  }

  /** Packed-BCD result of FBSTP (10 bytes) — also the input buffer convention of FBLD. */
  readonly bcd = new Uint8Array(10);

  /** FBLD m80bcd: 18 packed decimal digits + sign byte (exact). Invalid digits (A-F) load an undefined value. */
  fbld(b: Uint8Array, o: number): void {
    if (!Number.isInteger(o) || o < 0 || o + 10 > b.length) throw new RangeError(`FBLD operand: offset ${o} out of range`);
    let v = 0n;
    for (let i = 8; i >= 0; i--) v = v * 100n + BigInt((b[o + i]! >> 4) * 10 + (b[o + i]! & 15));
    const neg = (b[o + 9]! & 0x80) !== 0;
    const u = BigInt.asUintN(64, neg ? -v : v);
    f80FromInt64(this.t, 0, Number(u & 0xffffffffn), Number(u >> 32n));
    if (neg && v === 0n) this.t[2] = 0x8000; // -0
    this.pushRaw(this.t, 0);
  }
  /** FBSTP m80bcd: rounds ST0 to an integer (FCW.RC) and stores it as packed BCD in `bcd`, then pops. Returns
   * false when an unmasked exception suppresses the store. Out of range (|x| >= 10^18), NaN or ∞ → invalid; the
   * masked response stores the packed-BCD indefinite. */
  fbstp(): boolean {
    const s = this.storeSrc();
    if (s === 2) return false;
    const out = this.bcd;
    let ok = false;
    if (s === 0) {
      const o = this.off(0);
      const c = f80Class(this.regs, o);
      if ((c === CLS_NORMAL || c === CLS_DENORMAL || c === CLS_ZERO) && f80ToInt(this.regs, o, this.rc(), 64)) {
        const v = BigInt.asIntN(64, (BigInt(intOut.hi) << 32n) | BigInt(intOut.lo));
        let mag = v < 0n ? -v : v;
        if (mag < 1000000000000000000n) {
          ok = true;
          for (let i = 0; i < 9; i++) {
            const two = Number(mag % 100n);
            mag /= 100n;
            out[i] = ((Math.floor(two / 10) << 4) | (two % 10)) & 0xff;
          }
          out[9] = this.regs[o + 2]! & 0x8000 ? 0x80 : 0;
          this.setC1(intOut.inexact && intOut.up);
          if (intOut.inexact) this.raise(SW_PE);
        }
      }
    }
    if (!ok) {
      if (s === 0) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return false;
        this.setC1(false);
      }
      out.fill(0);
      out[7] = 0xc0;
      out[8] = 0xff;
      out[9] = 0xff;
    }
    this.pop();
    return true;
  }

  // ---- arithmetic ----

  /**
   * Core of every two-operand arithmetic instruction: ST(d) = a op b (a, b 80-bit operands at (aa, ao), (ba, bo)),
   * with x87 NaN rules, denormal reporting, and masked/unmasked responses. srcDenormal reports a float32/64 memory
   * operand that was denormal before widening.
   */
  private arith(op: number, d: number, aa: Uint32Array, ao: number, ba: Uint32Array, bo: number, pop: boolean,
    srcDenormal: boolean): void {
    const ca = f80Class(aa, ao);
    const cb = f80Class(ba, bo);
    const dst = this.off(d);
    // NaNs and unsupported formats.
    if (ca >= CLS_QNAN || cb >= CLS_QNAN) {
      // An unmasked invalid leaves ST(d) alone but clears C1 (measured on the host CPU).
      this.setC1(false);
      if (ca === CLS_UNSUPPORTED || cb === CLS_UNSUPPORTED) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
        f80SetIndefinite(this.regs, dst);
      } else {
        if (ca === CLS_SNAN || cb === CLS_SNAN) {
          this.raise(SW_IE);
          if (this.unmasked(SW_IE)) return;
        }
        this.pickNaN(ca, aa, ao, cb, ba, bo, dst);
      }
      this.setValid(d);
      this.setC1(false);
      if (pop) this.pop();
      return;
    }
    // x / 0 reports only ZE, even for a denormal dividend.
    const divByZero = (op === FOP_DIV && cb === CLS_ZERO && ca !== CLS_ZERO) ||
      (op === FOP_DIVR && ca === CLS_ZERO && cb !== CLS_ZERO);
    if ((ca === CLS_DENORMAL || cb === CLS_DENORMAL || srcDenormal) && !divByZero) {
      this.raise(SW_DE);
      if (this.unmasked(SW_DE)) return;
    }
    arith80(op, aa, ao, ba, bo, this.t2, 0, this.prec(), this.rc(), !(this.cw & SW_OE), !(this.cw & SW_UE));
    if (!this.commitExact(d)) return;
    if (pop) this.pop();
  }
  /** Stores t2 (an exact-path result, x80 describing it) into ST(d) honouring pre-computation exceptions. */
  private commitExact(d: number): boolean {
    const fl = x80.flags;
    if (fl & (FE_IE | FE_ZE)) {
      this.raise(fl & (FE_IE | FE_ZE));
      if (this.unmasked(fl & (FE_IE | FE_ZE))) return false;
    }
    this.setC1((fl & FE_PE) !== 0 && x80.up);
    if (fl & ~(FE_IE | FE_ZE)) this.raise(fl & ~(FE_IE | FE_ZE));
    f80Copy(this.regs, this.off(d), this.t2, 0);
    this.setValid(d);
    return true;
  }
  /** Significand precision selected by FCW.PC (the reserved value 1 behaves as extended). */
  private prec(): number {
    const pc = (this.cw >>> 8) & 3;
    return pc === 0 ? 24 : pc === 2 ? 53 : 64;
  }
  /** Stores a computed result into ST(d) honouring pre-computation exceptions; sets C1 and flags. */
  private commitResult(d: number, r: number): boolean {
    const fl = fpStatus.flags;
    if (fl & (FE_IE | FE_ZE)) {
      this.raise(fl & (FE_IE | FE_ZE));
      if (this.unmasked(fl & (FE_IE | FE_ZE))) return false;
    }
    this.setC1((fl & FE_PE) !== 0 && fpStatus.up);
    if (fl & ~(FE_IE | FE_ZE)) this.raise(fl & ~(FE_IE | FE_ZE));
    f80FromNumber(this.regs, this.off(d), r);
    this.setValid(d);
    return true;
  }
  /** x87 NaN propagation: a QNaN beats an SNaN; of two NaNs of the same kind the larger significand wins. */
  private pickNaN(ca: number, aa: Uint32Array, ao: number, cb: number, ba: Uint32Array, bo: number, dst: number): void {
    let useA: boolean;
    const aNaN = ca === CLS_QNAN || ca === CLS_SNAN;
    const bNaN = cb === CLS_QNAN || cb === CLS_SNAN;
    if (aNaN && bNaN) {
      if (ca !== cb) useA = ca === CLS_QNAN;
      else {
        const ah = aa[ao + 1]! & 0x3fffffff;
        const bh = ba[bo + 1]! & 0x3fffffff;
        const al = aa[ao]!;
        const bl = ba[bo]!;
        // Larger significand wins; on a tie the one with the smaller sign/exponent word (the positive one).
        useA = ah > bh || (ah === bh && (al > bl || (al === bl && aa[ao + 2]! <= ba[bo + 2]!)));
      }
    } else useA = aNaN;
    if (useA) f80Copy(this.regs, dst, aa, ao);
    else f80Copy(this.regs, dst, ba, bo);
    this.regs[dst + 1] = (this.regs[dst + 1]! | 0x40000000) >>> 0;
  }

  /** Checks ST0 and ST(i) are non-empty; on underflow applies the masked response (indefinite into ST(dst)). */
  private need2(i: number, dst: number): boolean {
    if (!this.isEmpty(0) && !this.isEmpty(i)) return true;
    if (this.underflow()) {
      f80SetIndefinite(this.regs, this.off(dst));
      this.setValid(dst);
    }
    return false;
  }

  /** D8 /reg with a register operand: ST0 = ST0 op ST(i) (reg 2/3: FCOM/FCOMP ST(i)). */
  d8Reg(reg: number, i: number): void {
    if (reg === FOP_COM || reg === FOP_COMP) {
      this.fcomSt(i, reg === FOP_COMP ? 1 : 0, false);
      return;
    }
    if (!this.need2(i, 0)) return;
    this.arith(reg, 0, this.regs, this.off(0), this.regs, this.off(i), false, false);
  }
  /** DC /reg (pop = false) and DE /reg (pop = true) with a register operand: ST(i) = ST(i) op ST0, where
   * reg 4 = FSUBR (ST0 - ST(i)), 5 = FSUB, 6 = FDIVR (ST0 / ST(i)), 7 = FDIV. */
  dcReg(reg: number, i: number, pop: boolean): void {
    if (reg === FOP_COM || reg === FOP_COMP) {
      this.fcomSt(i, reg === FOP_COMP ? 1 : 0, false);
      return;
    }
    if (!this.need2(i, i)) {
      if (pop && (this.cw & SW_IE)) this.pop();
      return;
    }
    const op = reg >= 4 ? reg ^ 1 : reg;
    this.arith(op, i, this.regs, this.off(i), this.regs, this.off(0), pop, false);
  }
  /** Memory operand already widened into t: ST0 = ST0 op t, or compare. */
  private arithMem(reg: number, srcDenormal: boolean): void {
    if (reg === FOP_COM || reg === FOP_COMP) {
      let r = 0;
      if (this.isEmpty(0)) {
        // Stack underflow reports "unordered" even when IE is unmasked (measured on the host CPU).
        if (!this.underflow()) r = -1;
        this.setCC(1, 1, 0, 1);
      } else r = this.compare(this.regs, this.off(0), this.t, 0, false, srcDenormal);
      if (reg === FOP_COMP && r >= 0) this.pop();
      return;
    }
    if (this.isEmpty(0)) {
      if (this.underflow()) {
        f80SetIndefinite(this.regs, this.off(0));
        this.setValid(0);
      }
      return;
    }
    this.arith(reg, 0, this.regs, this.off(0), this.t, 0, false, srcDenormal);
  }
  /** D8 /reg m32fp (FADD FMUL FCOM FCOMP FSUB FSUBR FDIV FDIVR). */
  arithM32(reg: number, bits: number): void {
    f80FromF32(this.t, 0, bits);
    this.arithMem(reg, (bits & 0x7f800000) === 0 && (bits & 0x7fffff) !== 0);
  }
  /** DC /reg m64fp. */
  arithM64(reg: number, lo: number, hi: number): void {
    f80FromF64(this.t, 0, lo, hi);
    this.arithMem(reg, (hi & 0x7ff00000) === 0 && ((hi & 0xfffff) !== 0 || lo !== 0));
  }
  /** DA /reg m32int and DE /reg m16int (FIADD FIMUL FICOM FICOMP FISUB FISUBR FIDIV FIDIVR); v sign-extended. */
  arithInt(reg: number, v: number): void {
    f80FromInt64(this.t, 0, v >>> 0, v < 0 ? 0xffffffff : 0);
    this.arithMem(reg, false);
  }

  // ---- comparisons ----

  /** Compares a with b; sets C3 C2 C0 (returns 0 >, 1 <, 2 =, 3 unordered, -1 unmasked denormal, -2 unmasked invalid). */
  private compare(aa: Uint32Array, ao: number, ba: Uint32Array, bo: number, unordered: boolean,
    srcDenormal: boolean): number {
    const ca = f80Class(aa, ao);
    const cb = f80Class(ba, bo);
    let res: number;
    if (ca >= CLS_QNAN || cb >= CLS_QNAN) {
      const signal = !unordered || ca === CLS_SNAN || cb === CLS_SNAN || ca === CLS_UNSUPPORTED ||
        cb === CLS_UNSUPPORTED;
      if (signal) {
        this.raise(SW_IE);
        // An unmasked invalid still reports "unordered" in C3 C2 C0 (measured on the host CPU).
        if (this.unmasked(SW_IE)) {
          this.setCC(1, 1, 0, 1);
          return -2;
        }
      }
      res = 3;
    } else {
      if (ca === CLS_DENORMAL || cb === CLS_DENORMAL || srcDenormal) {
        this.raise(SW_DE);
        if (this.unmasked(SW_DE)) return -1;
      }
      res = f80Compare(aa, ao, ba, bo);
    }
    this.setCC(res === 2 || res === 3 ? 1 : 0, res === 3 ? 1 : 0, 0, res === 1 || res === 3 ? 1 : 0);
    return res;
  }
  /** FCOM/FCOMP/FCOMPP/FUCOM/FUCOMP/FUCOMPP ST(i): pops = number of pops. */
  fcomSt(i: number, pops: number, unordered: boolean): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      // Stack underflow reports "unordered" even when IE is unmasked (measured on the host CPU).
      const masked = this.underflow();
      this.setCC(1, 1, 0, 1);
      if (!masked) return;
    } else if (this.compare(this.regs, this.off(0), this.regs, this.off(i), unordered, false) < 0) return;
    for (let k = 0; k < pops; k++) this.pop();
  }
  /** FCOMI/FCOMIP/FUCOMI/FUCOMIP ST(i): returns X87_FLAGS with eflagsOut = ZF|PF|CF, or X87_DONE when an
   * unmasked invalid left EFLAGS unchanged. */
  fcomi(i: number, pop: boolean, unordered: boolean): number {
    let res: number;
    if (this.isEmpty(0) || this.isEmpty(i)) {
      // Stack underflow reports "unordered" even when IE is unmasked (measured on the host CPU).
      res = 3;
      if (!this.underflow()) {
        this.eflagsOut = EFL_ZF | EFL_PF | EFL_CF;
        return X87_FLAGS;
      }
    } else {
      const saveCC = this.sw & SW_CC;
      res = this.compare(this.regs, this.off(0), this.regs, this.off(i), unordered, false);
      const unmaskedIe = res === -2;
      this.sw = (this.sw & ~SW_CC) | saveCC;
      if (unmaskedIe) {
        // An unmasked invalid still sets ZF PF CF to "unordered" (measured on the host CPU); no pop.
        this.eflagsOut = EFL_ZF | EFL_PF | EFL_CF;
        return X87_FLAGS;
      }
      if (res < 0) return X87_DONE;
    }
    this.eflagsOut = res === 0 ? 0 : res === 1 ? EFL_CF : res === 2 ? EFL_ZF : EFL_ZF | EFL_PF | EFL_CF;
    if (pop) this.pop();
    return X87_FLAGS;
  }
  ftst(): void {
    if (this.isEmpty(0)) {
      // Stack underflow reports "unordered" even when IE is unmasked (measured on the host CPU).
      this.underflow();
      this.setCC(1, 1, 0, 1);
      return;
    }
    f80Set(this.t, 0, 0, 0, 0);
    this.compare(this.regs, this.off(0), this.t, 0, false, false);
  }
  fxam(): void {
    const o = this.off(0);
    const sign = (this.regs[o + 2]! >>> 15) & 1;
    if (this.isEmpty(0)) {
      this.setCC(1, 0, sign, 1);
      return;
    }
    switch (f80Class(this.regs, o)) {
      case CLS_UNSUPPORTED:
        this.setCC(0, 0, sign, 0);
        break;
      case CLS_QNAN:
      case CLS_SNAN:
        this.setCC(0, 0, sign, 1);
        break;
      case CLS_NORMAL:
        this.setCC(0, 1, sign, 0);
        break;
      case CLS_INF:
        this.setCC(0, 1, sign, 1);
        break;
      case CLS_ZERO:
        this.setCC(1, 0, sign, 0);
        break;
      default:
        this.setCC(1, 1, sign, 0);
    }
  }

  // ---- register manipulation ----

  fxch(i: number): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (!this.underflow()) return;
      if (this.isEmpty(0)) f80SetIndefinite(this.regs, this.off(0));
      if (this.isEmpty(i)) f80SetIndefinite(this.regs, this.off(i));
      this.setValid(0);
      this.setValid(i);
    } else this.setC1(false);
    const a = this.off(0);
    const b = this.off(i);
    f80Copy(this.t, 0, this.regs, a);
    f80Copy(this.regs, a, this.regs, b);
    f80Copy(this.regs, b, this.t, 0);
  }
  /** FCMOVcc ST(0), ST(i): cond evaluated by the caller from EFLAGS. */
  fcmov(i: number, cond: boolean): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.underflow()) {
        f80SetIndefinite(this.regs, this.off(0));
        this.setValid(0);
      }
      return;
    }
    // C1 changes only on stack underflow (SDM; the host leaves it alone otherwise).
    if (cond) f80Copy(this.regs, this.off(0), this.regs, this.off(i));
  }
  ffree(i: number): void {
    this.ftw &= ~(1 << this.phys(i));
    this.setC1(false); // C0-C3 are undefined per the SDM; the CPU clears C1
  }
  /** FFREEP ST(i) (DF C0+i). */
  ffreep(i: number): void {
    this.ffree(i);
    this.pop();
  }
  fincstp(): void {
    this.top = (this.top + 1) & 7;
    this.setC1(false);
  }
  fdecstp(): void {
    this.top = (this.top - 1) & 7;
    this.setC1(false);
  }
  fchs(): void {
    if (this.isEmpty(0)) {
      if (this.underflow()) {
        f80SetIndefinite(this.regs, this.off(0));
        this.setValid(0);
      }
      return;
    }
    this.regs[this.off(0) + 2] ^= 0x8000;
    this.setC1(false);
  }
  fabs(): void {
    if (this.isEmpty(0)) {
      if (this.underflow()) {
        f80SetIndefinite(this.regs, this.off(0));
        this.setValid(0);
      }
      return;
    }
    this.regs[this.off(0) + 2] &= 0x7fff;
    this.setC1(false);
  }

  // ---- one-operand arithmetic on ST0 ----

  /** Common entry of unary ops on ST0: returns the operand as a number, or null when handled (empty/NaN). */
  private unaryIn(negIsInvalid = false): number | null {
    const o = this.off(0);
    if (this.isEmpty(0)) {
      if (this.underflow()) {
        f80SetIndefinite(this.regs, o);
        this.setValid(0);
      }
      return null;
    }
    const c = f80Class(this.regs, o);
    if (c === CLS_QNAN || c === CLS_SNAN || c === CLS_UNSUPPORTED) {
      if (c !== CLS_QNAN) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return null;
      }
      if (c === CLS_UNSUPPORTED) f80SetIndefinite(this.regs, o);
      else this.regs[o + 1] = (this.regs[o + 1]! | 0x40000000) >>> 0;
      this.setC1(false);
      return null;
    }
    if (c === CLS_DENORMAL && !(negIsInvalid && this.regs[o + 2]! & 0x8000)) {
      this.raise(SW_DE);
      if (this.unmasked(SW_DE)) return null;
    }
    return f80ToNumber(this.regs, o);
  }
  fsqrt(): void {
    const x = this.unaryIn(true); // a negative denormal is invalid without DE
    if (x === null) return;
    sqrt80(this.regs, this.off(0), this.t2, 0, this.prec(), this.rc(), !(this.cw & SW_OE), !(this.cw & SW_UE));
    this.commitExact(0);
  }
  /** FRNDINT, exact on the 80-bit value (integers of up to 64 bits). */
  frndint(): void {
    const x = this.unaryIn();
    if (x === null) return;
    const o = this.off(0);
    const e = (this.regs[o + 2]! & 0x7fff) - 16383;
    const c = f80Class(this.regs, o);
    if (c === CLS_ZERO || c === CLS_INF || e >= 63) {
      this.setC1(false);
      return;
    }
    const neg = (this.regs[o + 2]! & 0x8000) !== 0;
    f80ToInt(this.regs, o, this.rc(), 64);
    if (intOut.inexact) {
      this.raise(SW_PE);
      this.setC1(intOut.up);
    } else this.setC1(false);
    f80FromInt64(this.regs, o, intOut.lo, intOut.hi);
    if (neg) this.regs[o + 2] = this.regs[o + 2]! | 0x8000; // -0.4 rounds to -0
  }
  /** Rounds an approximate transcendental result to the current precision, reporting PE. */
  private approx(d: number, v: number): boolean {
    fpReset();
    if (v !== v) {
      fpStatus.flags |= FE_IE;
      return this.commitResult(d, NaN);
    }
    const r = v === 0 || !Number.isFinite(v) ? v : roundExact(v, 0, 0, this.fmt(), this.rc());
    if (v !== 0 && Number.isFinite(v)) fpStatus.flags |= FE_PE;
    return this.commitResult(d, r);
  }
  f2xm1(): void {
    const x = this.unaryIn();
    if (x === null) return;
    if (x === 0) return; // ±0 unchanged, exact
    if (x === -Infinity) {
      this.approx(0, -1);
      return;
    }
    this.approx(0, Math.expm1(x * Math.LN2));
  }
  private tooBigForTrig(x: number): boolean {
    if (Number.isFinite(x) && Math.abs(x) >= 9223372036854775808) {
      this.sw |= SW_C2;
      return true;
    }
    this.sw &= ~SW_C2;
    return false;
  }
  fsin(): void {
    const x = this.unaryIn();
    if (x === null) return;
    if (this.tooBigForTrig(x)) return;
    if (x === 0) return;
    this.approx(0, Math.sin(x));
  }
  fcos(): void {
    const x = this.unaryIn();
    if (x === null) return;
    if (this.tooBigForTrig(x)) return;
    this.approx(0, Math.cos(x));
  }
  fsincos(): void {
    const x = this.unaryIn();
    if (x === null) {
      if (!this.isEmpty(0)) {
        f80Copy(this.t, 0, this.regs, this.off(0));
        this.pushRaw(this.t, 0);
      }
      return;
    }
    if (this.tooBigForTrig(x)) return;
    if (!this.isEmpty(7)) {
      this.setC1(true);
      this.raise(SW_IE | SW_SF);
      if (!(this.cw & SW_IE)) return;
      f80SetIndefinite(this.regs, this.off(0));
      f80Copy(this.t, 0, this.regs, this.off(0));
      this.pushRaw(this.t, 0);
      return;
    }
    const c = Math.cos(x);
    const s = x === 0 ? x : Math.sin(x);
    if (!this.approx(0, s)) return;
    f80FromNumber(this.t, 0, 0);
    this.pushRaw(this.t, 0);
    this.approx(0, c);
  }
  fptan(): void {
    const x = this.unaryIn();
    if (x === null) return;
    if (this.tooBigForTrig(x)) return;
    if (!this.isEmpty(7)) {
      this.setC1(true);
      this.raise(SW_IE | SW_SF);
      return;
    }
    if (!this.approx(0, x === 0 ? x : Math.tan(x))) return;
    this.fld1();
  }
  /** Two-operand helper: ST1 = f(ST1, ST0), pop. */
  private binaryPop(fn: (st0: number, st1: number) => number): void {
    if (!this.need2(1, 1)) {
      if (this.cw & SW_IE) this.pop();
      return;
    }
    const o0 = this.off(0);
    const o1 = this.off(1);
    const c0 = f80Class(this.regs, o0);
    const c1 = f80Class(this.regs, o1);
    if (c0 >= CLS_QNAN || c1 >= CLS_QNAN) {
      if (c0 === CLS_SNAN || c1 === CLS_SNAN || c0 === CLS_UNSUPPORTED || c1 === CLS_UNSUPPORTED) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
      }
      if (c0 === CLS_UNSUPPORTED || c1 === CLS_UNSUPPORTED) f80SetIndefinite(this.regs, o1);
      else this.pickNaN(c0, this.regs, o0, c1, this.regs, o1, o1);
      this.pop();
      return;
    }
    if (c0 === CLS_DENORMAL || c1 === CLS_DENORMAL) {
      this.raise(SW_DE);
      if (this.unmasked(SW_DE)) return;
    }
    const x = f80ToNumber(this.regs, o0);
    const y = f80ToNumber(this.regs, o1);
    fpReset();
    const r = fn(x, y);
    if (!this.commitResultOrApprox(r)) return;
    this.pop();
  }
  private commitResultOrApprox(r: number): boolean {
    const fl = fpStatus.flags;
    if (fl & (FE_IE | FE_ZE)) return this.commitResult(1, r);
    return this.approx(1, r);
  }
  /** FYL2X: ST1 = ST1 * log2(ST0), pop. */
  fyl2x(): void {
    this.binaryPop((x, y) => {
      if (x < 0 || (x !== x) || (x === 1 && !Number.isFinite(y)) || (x === 0 && y === 0) ||
        (x === Infinity && y === 0)) {
        fpStatus.flags |= FE_IE;
        return NaN;
      }
      if (x === 0) {
        fpStatus.flags |= FE_ZE;
        return y > 0 || Object.is(y, 0) ? -Infinity : Infinity;
      }
      return y * Math.log2(x);
    });
  }
  /** FYL2XP1: ST1 = ST1 * log2(ST0 + 1), pop. */
  fyl2xp1(): void {
    this.binaryPop((x, y) => {
      if ((x === 0 && !Number.isFinite(y)) || x < -1) {
        fpStatus.flags |= FE_IE;
        return NaN;
      }
      return (y * Math.log1p(x)) / Math.LN2;
    });
  }
  /** FPATAN: ST1 = atan2(ST1, ST0), pop. */
  fpatan(): void {
    this.binaryPop((x, y) => Math.atan2(y, x));
  }
  /** FSCALE: ST0 = ST0 * 2^trunc(ST1) (exact scaling, rounded only on overflow/underflow). */
  fscale(): void {
    if (!this.need2(1, 0)) return;
    const o0 = this.off(0);
    const o1 = this.off(1);
    const c0 = f80Class(this.regs, o0);
    const c1 = f80Class(this.regs, o1);
    if (c0 >= CLS_QNAN || c1 >= CLS_QNAN) {
      if (c0 === CLS_SNAN || c1 === CLS_SNAN || c0 === CLS_UNSUPPORTED || c1 === CLS_UNSUPPORTED) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
      }
      if (c0 === CLS_UNSUPPORTED || c1 === CLS_UNSUPPORTED) f80SetIndefinite(this.regs, o0);
      else this.pickNaN(c0, this.regs, o0, c1, this.regs, o1, o0);
      this.setC1(false);
      return;
    }
    if (c0 === CLS_DENORMAL || c1 === CLS_DENORMAL) {
      this.raise(SW_DE);
      if (this.unmasked(SW_DE)) return;
    }
    const zero = c0 === CLS_ZERO;
    const inf = c0 === CLS_INF;
    const n = Math.trunc(f80ToNumber(this.regs, o1));
    if (zero || inf || n === Infinity || n === -Infinity) {
      fpReset();
      const neg = (this.regs[o0 + 2]! & 0x8000) !== 0;
      let r: number;
      if ((zero && n === Infinity) || (inf && n === -Infinity)) {
        fpStatus.flags |= FE_IE;
        r = NaN;
      } else if (zero || inf) {
        this.setC1(false);
        return; // ±0 or ±∞ unchanged
      } else r = n === Infinity ? (neg ? -Infinity : Infinity) : neg ? -0 : 0;
      this.commitResult(0, r);
      return;
    }
    scale80(this.regs, o0, n, this.t2, 0, 64, this.rc(), !(this.cw & SW_OE), !(this.cw & SW_UE));
    this.commitExact(0);
  }
  /** FXTRACT: ST0 → exponent, then push significand. */
  fxtract(): void {
    const o = this.off(0);
    if (this.isEmpty(0)) {
      if (this.underflow()) {
        f80SetIndefinite(this.regs, o);
        this.setValid(0);
        f80SetIndefinite(this.t, 0);
        this.pushRaw(this.t, 0);
        this.setC1(false); // underflow and overflow together: the CPU reports C1 = 0 (underflow)
      }
      return;
    }
    if (this.pushOverflows()) {
      // Stack overflow: IE+SF, C1=1; the masked response makes both ST(1) (the old ST0) and ST0 indefinite.
      this.setC1(true);
      this.raise(SW_IE | SW_SF);
      if (!(this.cw & SW_IE)) return;
      f80SetIndefinite(this.regs, o);
      this.top = (this.top - 1) & 7;
      f80SetIndefinite(this.regs, this.top * 4);
      return;
    }
    const c = f80Class(this.regs, o);
    if (c === CLS_QNAN || c === CLS_SNAN || c === CLS_UNSUPPORTED) {
      if (c !== CLS_QNAN) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
      }
      if (c === CLS_UNSUPPORTED) f80SetIndefinite(this.regs, o);
      else this.regs[o + 1] = (this.regs[o + 1]! | 0x40000000) >>> 0;
      f80Copy(this.t, 0, this.regs, o);
      this.pushRaw(this.t, 0);
      return;
    }
    if (c === CLS_ZERO) {
      this.raise(SW_ZE);
      if (this.unmasked(SW_ZE)) return;
      f80Copy(this.t, 0, this.regs, o);
      f80FromNumber(this.regs, o, -Infinity);
      this.pushRaw(this.t, 0);
      return;
    }
    if (c === CLS_INF) {
      f80Copy(this.t, 0, this.regs, o);
      f80FromNumber(this.regs, o, Infinity);
      this.pushRaw(this.t, 0);
      return;
    }
    if (c === CLS_DENORMAL) {
      this.raise(SW_DE);
      if (this.unmasked(SW_DE)) return;
    }
    // Exact on the 80-bit encoding: exponent from the biased field, significand with exponent 0.
    let lo = this.regs[o]!;
    let hi = this.regs[o + 1]!;
    const sexp = this.regs[o + 2]!;
    let e = (sexp & 0x7fff) - 16383;
    if ((sexp & 0x7fff) === 0) {
      e = -16382;
      const lz = hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
      if (lz < 32) {
        hi = lz === 0 ? hi : ((hi << lz) | (lo >>> (32 - lz))) >>> 0;
        lo = (lo << lz) >>> 0;
      } else {
        hi = (lo << (lz - 32)) >>> 0;
        lo = 0;
      }
      e -= lz;
    }
    f80Set(this.t, 0, lo, hi, (sexp & 0x8000) | 0x3fff);
    f80FromNumber(this.regs, o, e);
    this.setC1(false);
    this.pushRaw(this.t, 0);
  }
  /** FPREM (ieee = false, truncating quotient) and FPREM1 (ieee = true, round-to-nearest quotient). */
  fprem(ieee = false): void {
    if (!this.need2(1, 0)) {
      // Masked stack underflow: the CPU reports the (indefinite) reduction as complete, C2 = 0.
      if (this.cw & SW_IE) this.sw &= ~SW_C2;
      return;
    }
    const o0 = this.off(0);
    const o1 = this.off(1);
    const c0 = f80Class(this.regs, o0);
    const c1 = f80Class(this.regs, o1);
    if (c0 >= CLS_QNAN || c1 >= CLS_QNAN) {
      if (c0 !== CLS_QNAN && c1 !== CLS_QNAN) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
      } else if (c0 === CLS_SNAN || c1 === CLS_SNAN || c0 === CLS_UNSUPPORTED || c1 === CLS_UNSUPPORTED) {
        this.raise(SW_IE);
        if (this.unmasked(SW_IE)) return;
      }
      if (c0 === CLS_UNSUPPORTED || c1 === CLS_UNSUPPORTED) f80SetIndefinite(this.regs, o0);
      else this.pickNaN(c0, this.regs, o0, c1, this.regs, o1, o0);
      this.sw &= ~(SW_C2 | SW_C1); // a NaN result clears C1 (Q0) too, as on the host CPU
      return;
    }
    if (c0 === CLS_INF || c1 === CLS_ZERO) {
      this.raise(SW_IE);
      if (this.unmasked(SW_IE)) return;
      f80SetIndefinite(this.regs, o0);
      this.sw &= ~(SW_C2 | SW_C1);
      return;
    }
    if (c0 === CLS_DENORMAL || c1 === CLS_DENORMAL) {
      this.raise(SW_DE);
      if (this.unmasked(SW_DE)) return;
    }
    if (c0 === CLS_ZERO || c1 === CLS_INF) {
      this.setCC(0, 0, 0, 0);
      return; // ST0 unchanged
    }
    prem80(this.regs, o0, this.regs, o1, this.t2, 0, ieee);
    f80Copy(this.regs, o0, this.t2, 0);
    const q = premOut.q;
    if (premOut.partial) this.setCC(0, 1, 0, 0);
    else this.setCC((q >> 1) & 1, 0, q & 1, (q >> 2) & 1);
  }
  fprem1(): void {
    this.fprem(true);
  }

  // ---- register-form dispatcher ----

  /**
   * Executes any x87 instruction whose ModRM has mod = 3 (op = first opcode byte D8-DF, modrm = the ModRM byte).
   * eflags supplies CF/PF/ZF for FCMOVcc. Does not include DF E0 (FNSTSW AX: call fnstsw()).
   * Returns X87_DONE, X87_FLAGS (FCOMI family: set ZF/PF/CF from eflagsOut, clear OF/SF/AF) or X87_UD.
   */
  execReg(op: number, modrm: number, eflags: number): number {
    const reg = (modrm >>> 3) & 7;
    const i = modrm & 7;
    const cf = (eflags & EFL_CF) !== 0;
    const zf = (eflags & EFL_ZF) !== 0;
    const pf = (eflags & EFL_PF) !== 0;
    switch (op) {
      case 0xd8:
        this.d8Reg(reg, i);
        return X87_DONE;
      case 0xd9:
        return this.execD9(modrm);
      case 0xda:
        switch (reg) {
          case 0:
            this.fcmov(i, cf);
            return X87_DONE;
          case 1:
            this.fcmov(i, zf);
            return X87_DONE;
          case 2:
            this.fcmov(i, cf || zf);
            return X87_DONE;
          case 3:
            this.fcmov(i, pf);
            return X87_DONE;
          case 5:
            if (i === 1) {
              this.fcomSt(1, 2, true);
              return X87_DONE;
            }
            return X87_UD;
          default:
            return X87_UD;
        }
      case 0xdb:
        switch (reg) {
          case 0:
            this.fcmov(i, !cf);
            return X87_DONE;
          case 1:
            this.fcmov(i, !zf);
            return X87_DONE;
          case 2:
            this.fcmov(i, !cf && !zf);
            return X87_DONE;
          case 3:
            this.fcmov(i, !pf);
            return X87_DONE;
          case 4:
            if (i === 2) this.fnclex();
            else if (i === 3) this.fninit();
            else if (i > 4) return X87_UD; // E0/E1/E4 (FENI/FDISI/FSETPM) are no-ops
            return X87_DONE;
          case 5:
            return this.fcomi(i, false, true);
          case 6:
            return this.fcomi(i, false, false);
          default:
            return X87_UD;
        }
      case 0xdc:
        this.dcReg(reg, i, false);
        return X87_DONE;
      case 0xdd:
        switch (reg) {
          case 0:
            this.ffree(i);
            return X87_DONE;
          case 1:
            this.fxch(i);
            return X87_DONE;
          case 2:
            this.fstSt(i, false);
            return X87_DONE;
          case 3:
            this.fstSt(i, true);
            return X87_DONE;
          case 4:
            this.fcomSt(i, 0, true);
            return X87_DONE;
          case 5:
            this.fcomSt(i, 1, true);
            return X87_DONE;
          default:
            return X87_UD;
        }
      case 0xde:
        if (reg === 3) {
          if (i !== 1) return X87_UD;
          this.fcomSt(1, 2, false);
          return X87_DONE;
        }
        if (reg === 2) {
          this.fcomSt(i, 1, false);
          return X87_DONE;
        }
        this.dcReg(reg, i, true);
        return X87_DONE;
      case 0xdf:
        switch (reg) {
          case 0:
            this.ffreep(i);
            return X87_DONE;
          case 1:
            this.fxch(i);
            return X87_DONE;
          case 2:
          case 3:
            this.fstSt(i, true);
            return X87_DONE;
          case 4:
            return X87_UD; // E0 = FNSTSW AX is handled by the caller; others invalid
          case 5:
            return this.fcomi(i, true, true);
          case 6:
            return this.fcomi(i, true, false);
          default:
            return X87_UD;
        }
      default:
        return X87_UD;
    }
  }

  private execD9(modrm: number): number {
    const reg = (modrm >>> 3) & 7;
    const i = modrm & 7;
    switch (reg) {
      case 0:
        this.fldSt(i);
        return X87_DONE;
      case 1:
        this.fxch(i);
        return X87_DONE;
      case 2:
        return i === 0 ? X87_DONE : X87_UD; // FNOP
      case 3:
        this.fstSt(i, true); // undocumented FSTP1 alias
        return X87_DONE;
    }
    switch (modrm) {
      case 0xe0:
        this.fchs();
        break;
      case 0xe1:
        this.fabs();
        break;
      case 0xe4:
        this.ftst();
        break;
      case 0xe5:
        this.fxam();
        break;
      case 0xe8:
        this.fld1();
        break;
      case 0xe9:
        this.fldl2t();
        break;
      case 0xea:
        this.fldl2e();
        break;
      case 0xeb:
        this.fldpi();
        break;
      case 0xec:
        this.fldlg2();
        break;
      case 0xed:
        this.fldln2();
        break;
      case 0xee:
        this.fldz();
        break;
      case 0xf0:
        this.f2xm1();
        break;
      case 0xf1:
        this.fyl2x();
        break;
      case 0xf2:
        this.fptan();
        break;
      case 0xf3:
        this.fpatan();
        break;
      case 0xf4:
        this.fxtract();
        break;
      case 0xf5:
        this.fprem1();
        break;
      case 0xf6:
        this.fdecstp();
        break;
      case 0xf7:
        this.fincstp();
        break;
      case 0xf8:
        this.fprem();
        break;
      case 0xf9:
        this.fyl2xp1();
        break;
      case 0xfa:
        this.fsqrt();
        break;
      case 0xfb:
        this.fsincos();
        break;
      case 0xfc:
        this.frndint();
        break;
      case 0xfd:
        this.fscale();
        break;
      case 0xfe:
        this.fsin();
        break;
      case 0xff:
        this.fcos();
        break;
      default:
        return X87_UD;
    }
    return X87_DONE;
  }

  /** Full 16-bit tag word computed from register contents (FNSTENV/FNSAVE): 00 valid, 01 zero, 10 special,
   * 11 empty, two bits per physical register. */
  fullTagWord(): number {
    let tw = 0;
    for (let p = 0; p < 8; p++) {
      let t: number;
      if (!((this.ftw >>> p) & 1)) t = 3;
      else {
        const c = f80Class(this.regs, p * 4);
        t = c === CLS_NORMAL ? 0 : c === CLS_ZERO ? 1 : 2;
      }
      tw |= t << (2 * p);
    }
    return tw;
  }
  /** Loads the tag word (FLDENV/FRSTOR): only empty / non-empty is kept; the rest is derived from contents. */
  setFullTagWord(tw: number): void {
    let a = 0;
    for (let p = 0; p < 8; p++) if (((tw >>> (2 * p)) & 3) !== 3) a |= 1 << p;
    this.ftw = a;
  }
}
