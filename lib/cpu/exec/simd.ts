/**
 * Operand fetch/store and availability checks for x87, MMX and SSE..SSE4.1, calling the semantic functions of
 * lib/cpu/simd (H10). Rules applied here: CR0.EM/TS and CR4.OSFXSR (#UD/#NM), 16-byte alignment of legacy-SSE
 * memory operands (#GP(0)), unmasked SIMD exceptions (#XM, or #UD when CR4.OSXMMEXCPT = 0), pending x87 faults (#MF).
 */
import { CR0_EM, CR0_NE, CR0_TS, CR4_OSFXSR, CR4_OSXMMEXCPT, F_AF, F_CF, F_OF, F_PF, F_SF, F_ZF, GP, MF, NM, UD, XM as XM_VEC } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Insn } from '../decoder/decode.js';
import { encodings } from '../decoder/table.js';
import { arithFlags, condition, LF_FLAGS } from '../flags.js';
import { fldenv, fnsave, fnstenv, frstor, fxrstor, fxsave, mmx, mxcsrValid, saveSize, envSize, sse, X87_FLAGS, X87_UD, XM } from '../simd/index.js';
import { readE, writeE } from './operands.js';
import { def } from './registry.js';

type Fn = (...args: never[]) => number | void;
type Table = Record<string, Fn>;
const SSE = sse as unknown as Table;
const MMX = mmx as unknown as Table;

const scratch = new Uint32Array(4);
const bytes = new Uint8Array(512);

// ---------------------------------------------------------------- availability

function sseCheck(c: Cpu): void {
  if (c.cr0 & CR0_EM || !(c.cr4 & CR4_OSFXSR)) c.raise(UD);
  if (c.cr0 & CR0_TS) c.raise(NM);
}
function mmxCheck(c: Cpu): void {
  if (c.cr0 & CR0_EM) c.raise(UD);
  if (c.cr0 & CR0_TS) c.raise(NM);
  if (c.simd.x87.pendingFault()) mathFault(c);
}
function fpuCheck(c: Cpu, waiting: boolean): void {
  if (c.cr0 & (CR0_EM | CR0_TS)) c.raise(NM);
  if (waiting && c.simd.x87.pendingFault()) mathFault(c);
}
function mathFault(c: Cpu): never {
  if (c.cr0 & CR0_NE) c.raise(MF);
  // CR0.NE = 0 would signal FERR#/IRQ13; not modelled: report #MF anyway.
  return c.raise(MF);
}
function simdFault(c: Cpu): never {
  return c.raise(c.cr4 & CR4_OSXMMEXCPT ? XM_VEC : UD);
}

// ---------------------------------------------------------------- memory helpers

function readInto(c: Cpu, lin: number, n: number, dst: Uint32Array): void {
  if (n === 16) { dst[0] = c.read64(lin); dst[1] = c.tHi; dst[2] = c.read64(lin + 8); dst[3] = c.tHi; } else if (n === 8) { dst[0] = c.read64(lin); dst[1] = c.tHi; } else if (n === 4) dst[0] = c.read32(lin);
  else dst[0] = n === 2 ? c.read16(lin) : c.read8(lin);
}
function writeFrom(c: Cpu, lin: number, n: number, src: Uint32Array, so: number): void {
  if (n > 4) c.probeWrite(lin, n);
  for (let k = 0; k < n / 4; k++) c.write32(lin + 4 * k, src[so + k]! | 0);
}

/** XMM source operand (W): register → (xmm, 4*rm); memory → scratch. n = bytes read; align = 16-byte check. */
function srcW(c: Cpu, i: Insn, n: number, align: boolean): number {
  if (!i.isMem) return -1;
  const lin = c.linear(i, n);
  if (align && lin % 16 !== 0) c.raise(GP, 0);
  readInto(c, lin, n, scratch);
  return 0;
}
/** MMX source operand (Q): register → x87.regs; memory → scratch. */
function srcQ(c: Cpu, i: Insn, n: number): number {
  if (!i.isMem) return -1;
  readInto(c, c.linear(i, n), n, scratch);
  return 0;
}

// Operand size of a W/Q operand spec.
function opBytes(spec: string | undefined): number {
  if (!spec) return 16;
  switch (spec[spec.length - 1]) {
    case 'x': return 16;
    case 'q': return 8;
    case 'd': return 4;
    case 'w': return 2;
    case 'b': return 1;
    default: return 16;
  }
}

/** Unaligned-allowed 128-bit memory operands (everything else legacy-SSE 128-bit must be 16-byte aligned). */
const UNALIGNED = new Set(['movups', 'movupd', 'movdqu', 'lddqu', 'movq', 'movd', 'movss', 'movsd', 'movlps', 'movlpd', 'movhps', 'movhpd']);

// ---------------------------------------------------------------- generic binary ops

/** Ops with (st, d, s, so[, imm]) that may return XM (or nothing). */
function xmmBinary(name: string, src: string, withImm: boolean): (c: Cpu, i: Insn) => void {
  const fn = SSE[name] as unknown as (st: unknown, d: number, s: Uint32Array, so: number, imm?: number) => number | void;
  if (!fn) throw new Error(`cpu/simd: sse.${name} missing`);
  const n = opBytes(src);
  const align = n === 16 && !UNALIGNED.has(name);
  return (c, i) => {
    sseCheck(c);
    const simd = c.simd;
    const m = srcW(c, i, n, align);
    const r = m < 0 ? fn(simd, i.reg, simd.xmm, (i.rm & 15) * 4, i.imm & 0xff) : fn(simd, i.reg, scratch, 0, i.imm & 0xff);
    if (r === XM) simdFault(c);
  };
}

const MMX_M32 = new Set(['punpcklbw', 'punpcklwd', 'punpckldq']);

function mmxBinary(name: string, withImm: boolean): ((c: Cpu, i: Insn) => void) | null {
  const fn = MMX[name] as unknown as ((st: unknown, d: number, s: Uint32Array, so: number, imm?: number) => number | void) | undefined;
  if (!fn) return null;
  void withImm;
  return (c, i) => {
    mmxCheck(c);
    const simd = c.simd;
    // MMX PUNPCKL* read only the low 32 bits of a memory source (mm, mm/m32).
    const m = srcQ(c, i, MMX_M32.has(name) ? 4 : 8);
    const r = m < 0 ? fn(simd, i.reg & 7, simd.x87.regs, (i.rm & 7) * 4, i.imm & 0xff) : fn(simd, i.reg & 7, scratch, 0, i.imm & 0xff);
    if (r === XM) simdFault(c);
  };
}

/** Register both forms for encodings without a mandatory prefix (66 → XMM, none → MMX). */
function dual(key: string, name: string, src: string): void {
  const x = xmmBinary(name, src, false);
  const m = mmxBinary(name, false);
  def(key, (c, i) => { if (i.pfx66) x(c, i); else if (m) m(c, i); else c.raise(UD); });
}

// ---------------------------------------------------------------- registration driven by the encoding table

const SPECIAL = new Set([
  'movups', 'movupd', 'movaps', 'movapd', 'movdqa', 'movdqu', 'lddqu', 'movntdqa', 'movss', 'movsd', 'movlps', 'movlpd',
  'movhps', 'movhpd', 'movhlps', 'movlhps', 'movntps', 'movntpd', 'movntdq', 'movnti', 'movntq', 'movd', 'movq',
  'movq2dq', 'movdq2q', 'cvtsi2ss', 'cvtsi2sd', 'cvtss2si', 'cvttss2si', 'cvtsd2si', 'cvttsd2si', 'cvtpi2ps',
  'cvtpi2pd', 'cvtps2pi', 'cvttps2pi', 'cvtpd2pi', 'cvttpd2pi', 'comiss', 'ucomiss', 'comisd', 'ucomisd', 'ptest',
  'movmskps', 'movmskpd', 'pmovmskb', 'pextrw', 'pinsrw', 'pextrb', 'pextrd', 'extractps', 'pinsrb', 'pinsrd',
  'insertps', 'psrlw', 'psraw', 'psllw', 'psrld', 'psrad', 'pslld', 'psrlq', 'psllq', 'psrldq', 'pslldq', 'maskmovq',
  'maskmovdqu', 'emms', 'pshufw', 'palignr', 'crc32', 'pcmpestrm', 'pcmpestri', 'pcmpistrm', 'pcmpistri', 'pcmpgtq',
]);

const done = new Set<string>();
for (const e of encodings) {
  if (e.map === 0 || !e.operands.some((o) => /^[VWUPQN]/.test(o))) continue;
  if (SPECIAL.has(e.mnemonic) || done.has(e.key)) continue;
  done.add(e.key);
  const src = e.operands[1] ?? 'Wx';
  const withImm = e.operands.length > 2;
  if (e.pfx === -1 && e.operands[0]!.startsWith('V')) dual(e.key, e.mnemonic, src);
  else if (e.operands[0]!.startsWith('V')) {
    if (!(e.mnemonic in SSE)) continue; // not implemented by lib/cpu/simd: stays #UD
    def(e.key, xmmBinary(e.mnemonic, src, withImm));
  } else if (e.operands[0]!.startsWith('P')) {
    const h = mmxBinary(e.mnemonic, withImm);
    if (h) def(e.key, h);
  }
}

// ---------------------------------------------------------------- moves

function xmmIndex(i: Insn): number { return (i.rm & 15) * 4; }

/** 128-bit loads and stores; the aligned forms check 16-byte alignment. */
function load128(c: Cpu, i: Insn, aligned: boolean): void {
  sseCheck(c);
  const x = c.simd.xmm, d = i.reg * 4;
  if (!i.isMem) { const o = (i.rm & 15) * 4; x[d] = x[o]!; x[d + 1] = x[o + 1]!; x[d + 2] = x[o + 2]!; x[d + 3] = x[o + 3]!; return; }
  const lin = c.linear(i, 16);
  if (aligned && lin % 16 !== 0) c.raise(GP, 0);
  const a = c.read64(lin), b = c.tHi, e = c.read64(lin + 8);
  x[d] = a; x[d + 1] = b; x[d + 2] = e; x[d + 3] = c.tHi;
}
function store128(c: Cpu, i: Insn, aligned: boolean): void {
  sseCheck(c);
  const x = c.simd.xmm, s = i.reg * 4;
  if (!i.isMem) { const o = (i.rm & 15) * 4; x[o] = x[s]!; x[o + 1] = x[s + 1]!; x[o + 2] = x[s + 2]!; x[o + 3] = x[s + 3]!; return; }
  const lin = c.linear(i, 16);
  if (aligned && lin % 16 !== 0) c.raise(GP, 0);
  if ((lin & 0xfff) > 4080) c.probeWrite(lin, 16);
  c.write64(lin, x[s]! | 0, x[s + 1]! | 0); c.write64(lin + 8, x[s + 2]! | 0, x[s + 3]! | 0);
}
def(['movups Vx,Wx', 'movupd Vx,Wx', 'movdqu Vx,Wx', 'lddqu Vx,Mx'], (c, i) => load128(c, i, false));
def(['movaps Vx,Wx', 'movapd Vx,Wx', 'movdqa Vx,Wx', 'movntdqa Vx,Mx'], (c, i) => load128(c, i, true));
def(['movups Wx,Vx', 'movupd Wx,Vx', 'movdqu Wx,Vx'], (c, i) => store128(c, i, false));
def(['movaps Wx,Vx', 'movapd Wx,Vx', 'movdqa Wx,Vx', 'movntps Mx,Vx', 'movntpd Mx,Vx', 'movntdq Mx,Vx'], (c, i) => store128(c, i, true));
def(['movss Vx,Wd', 'movsd Vx,Wq'], (c, i) => {
  sseCheck(c);
  const s = c.simd;
  const single = i.mnemonic === 'movss';
  if (!i.isMem) { (single ? sse.movssRR : sse.movsdRR)(s, i.reg, s.xmm, xmmIndex(i)); return; }
  srcW(c, i, single ? 4 : 8, false);
  if (single) sse.loadLow32(s, i.reg, scratch[0]!); else sse.loadLow64(s, i.reg, scratch[0]!, scratch[1]!);
});
def(['movss Wd,Vx', 'movsd Wq,Vx'], (c, i) => {
  sseCheck(c);
  const s = c.simd;
  const n = i.mnemonic === 'movss' ? 1 : 2;
  if (!i.isMem) { for (let k = 0; k < n; k++) s.xmm[xmmIndex(i) + k] = s.xmm[i.reg * 4 + k]!; return; }
  writeFrom(c, c.linear(i, n * 4), n * 4, s.xmm, i.reg * 4);
});
def(['movlps Vx,Mq', 'movlpd Vx,Mq'], (c, i) => { sseCheck(c); srcW(c, i, 8, false); sse.movlpLoad(c.simd, i.reg, scratch, 0); });
def(['movhps Vx,Mq', 'movhpd Vx,Mq'], (c, i) => { sseCheck(c); srcW(c, i, 8, false); sse.movhpLoad(c.simd, i.reg, scratch, 0); });
def(['movlps Mq,Vx', 'movlpd Mq,Vx'], (c, i) => { sseCheck(c); writeFrom(c, c.linear(i, 8), 8, c.simd.xmm, i.reg * 4); });
def(['movhps Mq,Vx', 'movhpd Mq,Vx'], (c, i) => { sseCheck(c); writeFrom(c, c.linear(i, 8), 8, c.simd.xmm, i.reg * 4 + 2); });
def('movhlps', (c, i) => { sseCheck(c); sse.movhlps(c.simd, i.reg, c.simd.xmm, xmmIndex(i)); });
def('movlhps', (c, i) => { sseCheck(c); sse.movlhps(c.simd, i.reg, c.simd.xmm, xmmIndex(i)); });
def('movnti', (c, i) => { c.writeMem(c.linear(i, i.os), i.os, c.getReg(i.reg, i.os), c.tHi); });
def('movntq', (c, i) => { mmxCheck(c); mmx.read64(c.simd, i.reg & 7); const r = c.simd.ires; c.write64(c.linear(i, 8), r[0]! | 0, r[1]! | 0); });

// MOVD/MOVQ between GPR/memory and MMX/XMM.
def('movd Vx,Ey', (c, i) => {
  const w = (i.rex & 8) !== 0;
  const v = readE(c, i, w ? 8 : 4); const vh = w ? c.tHi : 0;
  if (i.pfx66) { sseCheck(c); if (w) sse.loadLow64(c.simd, i.reg, v >>> 0, vh >>> 0); else sse.loadLow32(c.simd, i.reg, v >>> 0); } else { mmxCheck(c); mmx.load64(c.simd, i.reg & 7, v >>> 0, w ? vh >>> 0 : 0); }
});
def('movd Ey,Vx', (c, i) => {
  const w = (i.rex & 8) !== 0;
  let lo: number, hi: number;
  if (i.pfx66) { sseCheck(c); lo = c.simd.xmm[i.reg * 4]! | 0; hi = c.simd.xmm[i.reg * 4 + 1]! | 0; } else { mmxCheck(c); mmx.read64(c.simd, i.reg & 7); lo = c.simd.ires[0]! | 0; hi = c.simd.ires[1]! | 0; }
  writeE(c, i, w ? 8 : 4, lo, hi, false);
});
def('movq Vx,Wq', (c, i) => { // F3 0F 7E
  sseCheck(c);
  const s = c.simd;
  if (srcW(c, i, 8, false) < 0) sse.loadLow64(s, i.reg, s.xmm[xmmIndex(i)]!, s.xmm[xmmIndex(i) + 1]!); else sse.loadLow64(s, i.reg, scratch[0]!, scratch[1]!);
});
def('movq Wq,Vx', (c, i) => { // 66 0F D6
  sseCheck(c);
  const s = c.simd;
  if (!i.isMem) { sse.loadLow64(s, i.rm & 15, s.xmm[i.reg * 4]!, s.xmm[i.reg * 4 + 1]!); return; }
  writeFrom(c, c.linear(i, 8), 8, s.xmm, i.reg * 4);
});
def('movq Pq,Qq', (c, i) => {
  mmxCheck(c);
  const s = c.simd;
  if (srcQ(c, i, 8) < 0) { mmx.read64(s, i.rm & 7); mmx.load64(s, i.reg & 7, s.ires[0]!, s.ires[1]!); } else mmx.load64(s, i.reg & 7, scratch[0]!, scratch[1]!);
});
def('movq Qq,Pq', (c, i) => {
  mmxCheck(c);
  const s = c.simd;
  mmx.read64(s, i.reg & 7);
  if (!i.isMem) mmx.load64(s, i.rm & 7, s.ires[0]!, s.ires[1]!); else c.write64(c.linear(i, 8), s.ires[0]! | 0, s.ires[1]! | 0);
});
def('movq2dq', (c, i) => { sseCheck(c); mmxCheck(c); const s = c.simd; mmx.read64(s, i.rm & 7); sse.loadLow64(s, i.reg, s.ires[0]!, s.ires[1]!); });
def('movdq2q', (c, i) => { sseCheck(c); mmxCheck(c); const s = c.simd; mmx.load64(s, i.reg & 7, s.xmm[xmmIndex(i)]!, s.xmm[xmmIndex(i) + 1]!); });

// ---------------------------------------------------------------- conversions

def(['cvtsi2ss', 'cvtsi2sd'], (c, i) => {
  sseCheck(c);
  const w = (i.rex & 8) !== 0;
  const v = readE(c, i, w ? 8 : 4); const vh = w ? c.tHi : 0;
  const r = (i.mnemonic === 'cvtsi2ss' ? sse.cvtsi2ss : sse.cvtsi2sd)(c.simd, i.reg, v >>> 0, vh >>> 0, w);
  if (r === XM) simdFault(c);
});
for (const name of ['cvtss2si', 'cvttss2si', 'cvtsd2si', 'cvttsd2si'] as const) {
  def(name, (c, i) => {
    sseCheck(c);
    const w = (i.rex & 8) !== 0;
    const s = c.simd;
    const n = name.includes('ss') ? 4 : 8;
    const m = srcW(c, i, n, false);
    const r = m < 0 ? sse[name](s, s.xmm, xmmIndex(i), w) : sse[name](s, scratch, 0, w);
    if (r === XM) simdFault(c);
    c.setReg(i.reg, w ? 8 : 4, s.ires[0]! | 0, s.ires[1]! | 0);
  });
}
def(['cvtpi2ps', 'cvtpi2pd'], (c, i) => {
  sseCheck(c);
  const s = c.simd;
  let r: number;
  if (i.isMem) { srcQ(c, i, 8); r = sse[i.mnemonic as 'cvtpi2ps'](s, i.reg, scratch, 0, false); } else { mmxCheck(c); r = sse[i.mnemonic as 'cvtpi2ps'](s, i.reg, s.x87.regs, (i.rm & 7) * 4, true); }
  if (r === XM) simdFault(c);
});
for (const name of ['cvtps2pi', 'cvttps2pi', 'cvtpd2pi', 'cvttpd2pi'] as const) {
  def(name, (c, i) => {
    sseCheck(c); mmxCheck(c);
    const s = c.simd;
    const n = name.includes('pd') ? 16 : 8;
    const m = srcW(c, i, n, n === 16);
    const r = m < 0 ? mmx[name](s, i.reg & 7, s.xmm, xmmIndex(i)) : mmx[name](s, i.reg & 7, scratch, 0);
    if (r === XM) simdFault(c);
  });
}

// ---------------------------------------------------------------- flag-setting compares

function setCompareFlags(c: Cpu, bits: number, clearPf: boolean): void {
  const keep = arithFlags(c.lf) & ~(F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF);
  c.lf.op = LF_FLAGS;
  c.lf.aux = keep | (bits & (F_CF | F_ZF | (clearPf ? 0 : F_PF)));
}
for (const name of ['comiss', 'ucomiss', 'comisd', 'ucomisd'] as const) {
  def(name, (c, i) => {
    sseCheck(c);
    const s = c.simd;
    const m = srcW(c, i, name.endsWith('ss') ? 4 : 8, false);
    const r = m < 0 ? sse[name](s, i.reg, s.xmm, xmmIndex(i)) : sse[name](s, i.reg, scratch, 0);
    if (r === XM) simdFault(c);
    setCompareFlags(c, r, false);
  });
}
def('ptest', (c, i) => {
  sseCheck(c);
  const s = c.simd;
  const m = srcW(c, i, 16, true);
  const r = m < 0 ? sse.ptest(s, i.reg, s.xmm, xmmIndex(i)) : sse.ptest(s, i.reg, scratch, 0);
  setCompareFlags(c, r, true);
});

// ---------------------------------------------------------------- masks, inserts, extracts

def(['movmskps', 'movmskpd'], (c, i) => { sseCheck(c); const s = c.simd; sse[i.mnemonic as 'movmskps'](s, s.xmm, xmmIndex(i)); c.setReg(i.reg, 4, s.ires[0]!, 0); });
def('pmovmskb', (c, i) => {
  const s = c.simd;
  if (i.pfx66) { sseCheck(c); sse.pmovmskb(s, s.xmm, xmmIndex(i)); } else { mmxCheck(c); mmx.pmovmskb(s, s.x87.regs, (i.rm & 7) * 4); }
  c.setReg(i.reg, 4, s.ires[0]!, 0);
});
def('pextrw Gd,Ux,Ib', (c, i) => {
  const s = c.simd;
  if (i.pfx66) { sseCheck(c); sse.pextrw(s, s.xmm, xmmIndex(i), i.imm); } else { mmxCheck(c); mmx.pextrw(s, s.x87.regs, (i.rm & 7) * 4, i.imm); }
  c.setReg(i.reg, 4, s.ires[0]!, 0);
});
def('pinsrw', (c, i) => {
  const v = readE(c, i, i.isMem ? 2 : 4) & 0xffff;
  if (i.pfx66) { sseCheck(c); sse.pinsrw(c.simd, i.reg, v, i.imm); } else { mmxCheck(c); mmx.pinsrw(c.simd, i.reg & 7, v, i.imm); }
});
for (const [name, n] of [['pextrb', 1], ['pextrw', 2], ['pextrd', 4], ['extractps', 4]] as const) {
  def(`${name} ${name === 'pextrd' ? 'Ey' : 'Ed'},Vx,Ib`, (c, i) => {
    sseCheck(c);
    const s = c.simd;
    const w = name === 'pextrd' && (i.rex & 8) !== 0;
    if (w) sse.pextrq(s, s.xmm, i.reg * 4, i.imm); else if (name === 'pextrw') s.ires[0] = s.xmm[i.reg * 4 + ((i.imm & 7) >> 1)]! >>> ((i.imm & 1) * 16) & 0xffff;
    else sse[name as 'pextrb'](s, s.xmm, i.reg * 4, i.imm);
    if (i.isMem) c.writeMem(c.linear(i, w ? 8 : n), w ? 8 : n, s.ires[0]! | 0, s.ires[1]! | 0);
    else c.setReg(i.rm, w ? 8 : 4, s.ires[0]! | 0, s.ires[1]! | 0);
  });
}
def(['pinsrb', 'pinsrd'], (c, i) => {
  sseCheck(c);
  const w = i.mnemonic === 'pinsrd' && (i.rex & 8) !== 0;
  const n = i.mnemonic === 'pinsrb' ? 1 : w ? 8 : 4;
  const v = i.isMem ? c.readMem(c.linear(i, n), n) : c.getReg(i.rm, w ? 8 : 4);
  if (w) sse.pinsrq(c.simd, i.reg, v >>> 0, c.tHi >>> 0, i.imm); else if (n === 1) sse.pinsrb(c.simd, i.reg, v & 0xff, i.imm); else sse.pinsrd(c.simd, i.reg, v >>> 0, i.imm);
});
def('insertps', (c, i) => {
  sseCheck(c);
  const s = c.simd;
  if (srcW(c, i, 4, false) < 0) sse.insertps(s, i.reg, s.xmm, xmmIndex(i), i.imm, false); else sse.insertps(s, i.reg, scratch, 0, i.imm, true);
});

// ---------------------------------------------------------------- shifts

for (const name of ['psrlw', 'psraw', 'psllw', 'psrld', 'psrad', 'pslld', 'psrlq', 'psllq'] as const) {
  dual(`${name} Vx,Wx`, name, 'Wx');
  def(`${name} Ux,Ib`, (c, i) => {
    if (i.pfx66) { sseCheck(c); sse[`${name}Imm`](c.simd, i.rm & 15, i.imm); } else { mmxCheck(c); mmx[`${name}Imm`](c.simd, i.rm & 7, i.imm); }
  });
}
def('psrldq', (c, i) => { sseCheck(c); sse.psrldq(c.simd, i.rm & 15, i.imm); });
def('pslldq', (c, i) => { sseCheck(c); sse.pslldq(c.simd, i.rm & 15, i.imm); });
def('pshufw', (c, i) => {
  mmxCheck(c);
  const s = c.simd;
  if (srcQ(c, i, 8) < 0) mmx.pshufw(s, i.reg & 7, s.x87.regs, (i.rm & 7) * 4, i.imm); else mmx.pshufw(s, i.reg & 7, scratch, 0, i.imm);
});
{
  const x = xmmBinary('palignr', 'Wx', true);
  const m = mmxBinary('palignr', true)!;
  def('palignr', (c, i) => { if (i.pfx66) x(c, i); else m(c, i); });
}
def('emms', (c) => { mmxCheck(c); mmx.emms(c.simd); });
def(['maskmovq', 'maskmovdqu'], (c, i) => {
  const s = c.simd;
  const xmmForm = i.mnemonic === 'maskmovdqu';
  let mask: number, data: Uint32Array, off: number;
  if (xmmForm) { sseCheck(c); mask = sse.maskmovdqu(s.xmm, xmmIndex(i)); data = s.xmm; off = i.reg * 4; } else { mmxCheck(c); mask = mmx.maskmovq(s, s.x87.regs, (i.rm & 7) * 4); data = s.x87.regs; off = (i.reg & 7) * 4; }
  const n = xmmForm ? 16 : 8;
  const rdi = i.as === 8 ? c.lo[7]! >>> 0 : i.as === 4 ? c.lo[7]! >>> 0 : c.lo[7]! & 0xffff;
  const base = c.segLinear(i.seg, rdi | 0, i.as === 8 ? c.hi[7]! : 0, n, i.as);
  for (let k = 0; k < n; k++) if (mask & (1 << k)) c.write8(base + k, (data[off + (k >> 2)]! >>> ((k & 3) * 8)) & 0xff);
});

// ---------------------------------------------------------------- MXCSR, FXSAVE/FXRSTOR

def('ldmxcsr', (c, i) => {
  sseCheck(c);
  const v = c.read32(c.linear(i, 4)) >>> 0;
  if (!mxcsrValid(v)) c.raise(GP, 0);
  c.simd.mxcsr = v;
});
def('stmxcsr', (c, i) => { sseCheck(c); c.write32(c.linear(i, 4), c.simd.mxcsr | 0); });
def('fxsave', (c, i) => {
  if (c.cr0 & (CR0_EM | CR0_TS)) c.raise(c.cr0 & CR0_EM ? UD : NM);
  const lin = c.linear(i, 512);
  if (lin % 16 !== 0) c.raise(GP, 0);
  c.probeWrite(lin, 512);
  for (let k = 0; k < 512; k++) bytes[k] = c.read8(lin + k);
  fxsave(c.simd, bytes, 0, { rexW: (i.rex & 8) !== 0, xmmCount: c.cr4 & CR4_OSFXSR ? (c.mode === 64 ? 16 : 8) : 0 });
  for (let k = 0; k < 464; k++) c.write8(lin + k, bytes[k]!);
});
def('fxrstor', (c, i) => {
  if (c.cr0 & (CR0_EM | CR0_TS)) c.raise(c.cr0 & CR0_EM ? UD : NM);
  const lin = c.linear(i, 512);
  if (lin % 16 !== 0) c.raise(GP, 0);
  for (let k = 0; k < 512; k++) bytes[k] = c.read8(lin + k);
  if (!fxrstor(c.simd, bytes, 0, { rexW: (i.rex & 8) !== 0, xmmCount: c.cr4 & CR4_OSFXSR ? (c.mode === 64 ? 16 : 8) : 0 })) c.raise(GP, 0);
});

// ---------------------------------------------------------------- x87

const FLAGS_FOR_FCMOV = F_CF | F_ZF | F_PF;

function x87Record(c: Cpu, i: Insn, lin: number): void {
  const fop = ((i.opcode & 7) << 8) | i.modrm;
  c.simd.x87.recordLast(fop, c.rip >>> 0, c.segSel[1]!, lin >>> 0, c.segSel[i.seg]!);
}

/** Register forms (and no-operand forms): all handled by X87.execReg. */
function x87Reg(c: Cpu, i: Insn): void {
  const x = c.simd.x87;
  const noWait = i.opcode === 0xdb && (i.modrm === 0xe2 || i.modrm === 0xe3) || (i.opcode === 0xdf && i.modrm === 0xe0);
  fpuCheck(c, !noWait);
  if (i.opcode === 0xdf && i.modrm === 0xe0) { c.setReg(0, 2, x.fnstsw(), 0); return; }
  const r = x.execReg(i.opcode, i.modrm, arithFlags(c.lf) & FLAGS_FOR_FCMOV);
  if (r === X87_UD) c.raise(UD);
  if (r === X87_FLAGS) setCompareFlags(c, x.eflagsOut, false);
  if (!noWait) x87Record(c, i, 0);
}

function x87Mem(c: Cpu, i: Insn): void {
  const x = c.simd.x87;
  const op = i.opcode, reg = (i.modrm >> 3) & 7;
  const control = (op === 0xd9 && reg >= 4) || (op === 0xdd && (reg === 4 || reg === 6 || reg === 7)) || (op === 0xdb && reg === 4);
  const noWait = (op === 0xd9 && (reg === 6 || reg === 7)) || (op === 0xdd && (reg === 6 || reg === 7));
  fpuCheck(c, !noWait);
  const sizes: Record<number, number[]> = {
    0xd8: [4, 4, 4, 4, 4, 4, 4, 4], 0xd9: [4, 0, 4, 4, 0, 2, 0, 2], 0xda: [4, 4, 4, 4, 4, 4, 4, 4], 0xdb: [4, 4, 4, 4, 0, 10, 0, 10],
    0xdc: [8, 8, 8, 8, 8, 8, 8, 8], 0xdd: [8, 8, 8, 8, 0, 0, 0, 2], 0xde: [2, 2, 2, 2, 2, 2, 2, 2], 0xdf: [2, 2, 2, 2, 10, 8, 10, 8],
  };
  const n = sizes[op]![reg]!;
  const lin = c.linear(i, Math.max(n, 1));
  const env = { size32: i.os !== 2, protectedMode: (c.cr0 & 1) !== 0 && c.mode !== 16 };
  switch (op) {
    case 0xd8: x.arithM32(reg, c.read32(lin) >>> 0); break;
    case 0xdc: { const lo = c.read32(lin) >>> 0, hi = c.read32(lin + 4) >>> 0; x.arithM64(reg, lo, hi); break; }
    case 0xda: x.arithInt(reg, c.read32(lin)); break;
    case 0xde: x.arithInt(reg, (c.read16(lin) << 16) >> 16); break;
    case 0xd9:
      switch (reg) {
        case 0: x.fldM32(c.read32(lin) >>> 0); break;
        case 2: case 3: c.probeWrite(lin, 4); if (x.fstM32(reg === 3)) c.write32(lin, x.out[0]! | 0); break;
        case 4: { const sz = envSize(env); for (let k = 0; k < sz; k++) bytes[k] = c.read8(lin + k); fldenv(x, bytes, 0, env); break; }
        case 5: x.fldcw(c.read16(lin)); break;
        case 6: { const sz = envSize(env); c.probeWrite(lin, sz); fnstenv(x, bytes, 0, env); for (let k = 0; k < sz; k++) c.write8(lin + k, bytes[k]!); break; }
        case 7: c.write16(lin, x.fnstcw()); break;
        default: c.raise(UD);
      }
      break;
    case 0xdb:
      switch (reg) {
        case 0: x.fildI32(c.read32(lin)); break;
        case 1: case 2: case 3: c.probeWrite(lin, 4); if (x.fist(32, reg !== 2, reg === 1)) c.write32(lin, x.out[0]! | 0); break;
        case 5: { const lo = c.read32(lin) >>> 0, hi = c.read32(lin + 4) >>> 0, se = c.read16(lin + 8); x.fldM80(lo, hi, se); break; }
        case 7: c.probeWrite(lin, 10); if (x.fstpM80()) { c.write32(lin, x.out[0]! | 0); c.write32(lin + 4, x.out[1]! | 0); c.write16(lin + 8, x.out[2]! & 0xffff); } break;
        default: c.raise(UD);
      }
      break;
    case 0xdd:
      switch (reg) {
        case 0: { const lo = c.read32(lin) >>> 0, hi = c.read32(lin + 4) >>> 0; x.fldM64(lo, hi); break; }
        case 1: c.probeWrite(lin, 8); if (x.fist(64, true, true)) { c.write32(lin, x.out[0]! | 0); c.write32(lin + 4, x.out[1]! | 0); } break;
        case 2: case 3: c.probeWrite(lin, 8); if (x.fstM64(reg === 3)) { c.write32(lin, x.out[0]! | 0); c.write32(lin + 4, x.out[1]! | 0); } break;
        case 4: { const sz = saveSize(env); for (let k = 0; k < sz; k++) bytes[k] = c.read8(lin + k); frstor(x, bytes, 0, env); break; }
        case 6: { const sz = saveSize(env); c.probeWrite(lin, sz); fnsave(x, bytes, 0, env); for (let k = 0; k < sz; k++) c.write8(lin + k, bytes[k]!); break; }
        case 7: c.write16(lin, x.fnstsw()); break;
        default: c.raise(UD);
      }
      break;
    default: // 0xdf
      switch (reg) {
        case 0: x.fildI32((c.read16(lin) << 16) >> 16); break;
        case 1: case 2: case 3: c.probeWrite(lin, 2); if (x.fist(16, reg !== 2, reg === 1)) c.write16(lin, x.out[0]! & 0xffff); break;
        case 5: { const lo = c.read32(lin) >>> 0, hi = c.read32(lin + 4) >>> 0; x.fildI64(lo, hi); break; }
        case 7: c.probeWrite(lin, 8); if (x.fist(64, true)) { c.write32(lin, x.out[0]! | 0); c.write32(lin + 4, x.out[1]! | 0); } break;
        case 4: { for (let k = 0; k < 10; k++) bytes[k] = c.read8(lin + k); x.fbld(bytes, 0); break; }
        case 6: c.probeWrite(lin, 10); if (x.fbstp()) for (let k = 0; k < 10; k++) c.write8(lin + k, x.bcd[k]!); break;
        default: c.raise(UD);
      }
  }
  if (!control) x87Record(c, i, lin);
}

def('fwait', (c) => {
  if ((c.cr0 & (CR0_TS | 2)) === (CR0_TS | 2)) c.raise(NM); // CR0.MP and TS
  if (c.simd.x87.pendingFault()) mathFault(c);
});
def(['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr', 'fiadd', 'fimul', 'ficom', 'ficomp', 'fisub', 'fisubr',
  'fidiv', 'fidivr', 'fld', 'fst', 'fstp', 'fldenv', 'fldcw', 'fnstenv', 'fnstcw', 'fild', 'fisttp', 'fist', 'fistp', 'frstor',
  'fnsave', 'fnstsw', 'fbld', 'fbstp', 'fxch', 'fcmovb', 'fcmove', 'fcmovbe', 'fcmovu', 'fcmovnb', 'fcmovne', 'fcmovnbe',
  'fcmovnu', 'fucomi', 'fcomi', 'ffree', 'fucom', 'fucomp', 'faddp', 'fmulp', 'fsubp', 'fsubrp', 'fdivp', 'fdivrp', 'fucomip',
  'fcomip', 'fnop', 'fchs', 'fabs', 'ftst', 'fxam', 'fld1', 'fldl2t', 'fldl2e', 'fldpi', 'fldlg2', 'fldln2', 'fldz', 'f2xm1',
  'fyl2x', 'fptan', 'fpatan', 'fxtract', 'fprem1', 'fdecstp', 'fincstp', 'fprem', 'fyl2xp1', 'fsqrt', 'fsincos', 'frndint',
  'fscale', 'fsin', 'fcos', 'fucompp', 'fnclex', 'fninit', 'fcompp'], (c, i) => {
  if (i.isMem) x87Mem(c, i); else x87Reg(c, i);
});

void condition; void F_SF; void F_OF; void F_AF;
