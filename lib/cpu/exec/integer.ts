/** General-purpose integer instructions: ALU, MOV family, shifts/rotates, multiply/divide, bit operations. */
import { DE, F_AF, F_ARITH, F_CF, F_OF, F_PF, F_SF, F_ZF } from '../constants.js';
import type { Cpu } from '../cpu.js';
import { cpuid } from '../cpuid.js';
import type { Insn } from '../decoder/decode.js';
import { arithFlags, condition, getCF, LF_ADC, LF_ADD, LF_DEC, LF_FLAGS, LF_INC, LF_LOGIC, LF_RESULT, LF_SBB, LF_SUB } from '../flags.js';
import { big, readE, readRmwE, sx, u, unbig, writeE } from './operands.js';
import { def } from './registry.js';

const ALU_NAMES = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];

/** d OP s at size os (values may be signed or unsigned; masked here). Result lo returned, hi in c.tHi. */
export function alu(c: Cpu, op: number, os: number, d: number, dh: number, s: number, sh: number): number {
  const f = c.lf;
  if (os !== 8) {
    d = u(d, os); s = u(s, os);
    let r: number;
    switch (op) {
      case 0: r = d + s; f.op = LF_ADD; break;
      case 1: r = d | s; f.op = LF_LOGIC; break;
      case 2: { const cin = getCF(f) ? 1 : 0; r = d + s + cin; f.op = LF_ADC; f.aux = cin; break; }
      case 3: { const cin = getCF(f) ? 1 : 0; r = d - s - cin; f.op = LF_SBB; f.aux = cin; break; }
      case 4: r = d & s; f.op = LF_LOGIC; break;
      case 6: r = d ^ s; f.op = LF_LOGIC; break;
      default: r = d - s; f.op = LF_SUB; break;
    }
    r = u(r, os);
    f.size = os; f.dst = d; f.src = s; f.res = r;
    // As an int32: every caller stores the result into a register or memory (which take the low os bytes), and an
    // unsigned 32-bit result above 2^31 would be a heap-allocated double when returned from a call.
    return r | 0;
  }
  const dl = d >>> 0, dhu = dh >>> 0, sl = s >>> 0, shu = sh >>> 0;
  let rl: number, rh: number;
  switch (op) {
    case 0: case 2: {
      let cin = 0;
      if (op === 2) { cin = getCF(f) ? 1 : 0; f.op = LF_ADC; f.aux = cin; } else f.op = LF_ADD;
      const t = dl + sl + cin;
      rl = t >>> 0; rh = (dhu + shu + (t > 0xffffffff ? 1 : 0)) >>> 0;
      break;
    }
    case 1: rl = (dl | sl) >>> 0; rh = (dhu | shu) >>> 0; f.op = LF_LOGIC; break;
    case 4: rl = (dl & sl) >>> 0; rh = (dhu & shu) >>> 0; f.op = LF_LOGIC; break;
    case 6: rl = (dl ^ sl) >>> 0; rh = (dhu ^ shu) >>> 0; f.op = LF_LOGIC; break;
    default: {
      let cin = 0;
      if (op === 3) { cin = getCF(f) ? 1 : 0; f.op = LF_SBB; f.aux = cin; } else f.op = LF_SUB;
      const t = dl - sl - cin;
      rl = t >>> 0; rh = (dhu - shu - (t < 0 ? 1 : 0)) >>> 0;
      break;
    }
  }
  f.size = 8; f.dst = dl; f.dstHi = dhu; f.src = sl; f.srcHi = shu; f.res = rl; f.resHi = rh;
  c.tHi = rh | 0;
  return rl | 0;
}

function setLogicResult(c: Cpu, os: number, lo: number, hi: number): void {
  const f = c.lf;
  f.op = LF_LOGIC; f.size = os; f.res = os === 8 ? lo >>> 0 : u(lo, os); f.resHi = hi >>> 0; f.dst = 0; f.src = 0; f.dstHi = 0; f.srcHi = 0;
}

/** SZP from the result, CF/OF/AF explicit. */
function setResultFlags(c: Cpu, os: number, lo: number, hi: number, bits: number): void {
  const f = c.lf;
  f.op = LF_RESULT; f.size = os; f.res = os === 8 ? lo >>> 0 : u(lo, os); f.resHi = hi >>> 0; f.aux = bits;
}

/** Replace CF and OF only, keeping the other arithmetic flags. */
function setCfOf(c: Cpu, cf: boolean, of: boolean): void {
  const cur = arithFlags(c.lf) & ~(F_CF | F_OF);
  c.lf.op = LF_FLAGS; c.lf.aux = cur | (cf ? F_CF : 0) | (of ? F_OF : 0);
}

function setCf(c: Cpu, cf: boolean): void {
  const cur = arithFlags(c.lf) & ~F_CF;
  c.lf.op = LF_FLAGS; c.lf.aux = cur | (cf ? F_CF : 0);
}

// ---- ALU: 00-3F, 80-83 ----
ALU_NAMES.forEach((name, op) => {
  const store = op !== 7;
  def(`${name} Eb,Gb`, (c, i) => { const d = readRmwE(c, i, 1, store); const r = alu(c, op, 1, d, 0, c.getReg(i.reg, 1), 0); if (store) writeE(c, i, 1, r, 0, true); });
  def(`${name} Ev,Gv`, (c, i) => {
    const os = i.os; const d = readRmwE(c, i, os, store); const dh = c.tHi; const s = c.getReg(i.reg, os);
    const r = alu(c, op, os, d, dh, s, c.tHi); if (store) writeE(c, i, os, r, c.tHi, true);
  });
  def(`${name} Gb,Eb`, (c, i) => { const s = readE(c, i, 1); const r = alu(c, op, 1, c.getReg(i.reg, 1), 0, s, 0); if (store) c.setReg(i.reg, 1, r, 0); });
  def(`${name} Gv,Ev`, (c, i) => {
    const os = i.os; const s = readE(c, i, os); const sh = c.tHi; const d = c.getReg(i.reg, os);
    const r = alu(c, op, os, d, c.tHi, s, sh); if (store) c.setReg(i.reg, os, r, c.tHi);
  });
  def(`${name} AL,Ib`, (c, i) => { const r = alu(c, op, 1, c.lo[0]!, 0, i.imm, 0); if (store) c.setReg(0, 1, r, 0); });
  def(`${name} rAX,Iz`, (c, i) => { const os = i.os; const d = c.getReg(0, os); const r = alu(c, op, os, d, c.tHi, i.imm, i.immHi); if (store) c.setReg(0, os, r, c.tHi); });
  def(`${name} Eb,Ib`, (c, i) => { const d = readRmwE(c, i, 1, store); const r = alu(c, op, 1, d, 0, i.imm, 0); if (store) writeE(c, i, 1, r, 0, true); });
  const evI = (c: Cpu, i: Insn): void => {
    const os = i.os; const d = readRmwE(c, i, os, store); const r = alu(c, op, os, d, c.tHi, i.imm, i.imm >> 31); if (store) writeE(c, i, os, r, c.tHi, true);
  };
  def(`${name} Ev,Iz`, evI);
  def(`${name} Ev,Ib`, evI);
});

def(['test Eb,Gb'], (c, i) => { alu(c, 4, 1, readE(c, i, 1), 0, c.getReg(i.reg, 1), 0); });
def(['test Ev,Gv'], (c, i) => { const os = i.os; const d = readE(c, i, os); const dh = c.tHi; const s = c.getReg(i.reg, os); alu(c, 4, os, d, dh, s, c.tHi); });
def(['test AL,Ib'], (c, i) => { alu(c, 4, 1, c.lo[0]!, 0, i.imm, 0); });
def(['test rAX,Iz'], (c, i) => { const os = i.os; const d = c.getReg(0, os); alu(c, 4, os, d, c.tHi, i.imm, i.immHi); });
def(['test Eb,Ib'], (c, i) => { alu(c, 4, 1, readE(c, i, 1), 0, i.imm, 0); });
def(['test Ev,Iz'], (c, i) => { const os = i.os; const d = readE(c, i, os); alu(c, 4, os, d, c.tHi, i.imm, i.imm >> 31); });

def('not', (c, i) => { const os = i.os; const d = readRmwE(c, i, os); writeE(c, i, os, ~d, ~c.tHi, true); });
def('neg', (c, i) => { const os = i.os; const d = readRmwE(c, i, os); const r = alu(c, 5, os, 0, 0, d, c.tHi); writeE(c, i, os, r, c.tHi, true); });

function incdec(c: Cpu, os: number, d: number, dh: number, dec: boolean): number {
  const cf = getCF(c.lf) ? 1 : 0;
  const r = alu(c, dec ? 5 : 0, os, d, dh, 1, 0);
  c.lf.op = dec ? LF_DEC : LF_INC; c.lf.aux = cf;
  return r;
}
def('inc Zv', (c, i) => { const os = i.os; const d = c.getReg(i.reg, os); c.setReg(i.reg, os, incdec(c, os, d, c.tHi, false), c.tHi); });
def('dec Zv', (c, i) => { const os = i.os; const d = c.getReg(i.reg, os); c.setReg(i.reg, os, incdec(c, os, d, c.tHi, true), c.tHi); });
def(['inc Eb', 'inc Ev'], (c, i) => { const os = i.os; const d = readRmwE(c, i, os); writeE(c, i, os, incdec(c, os, d, c.tHi, false), c.tHi, true); });
def(['dec Eb', 'dec Ev'], (c, i) => { const os = i.os; const d = readRmwE(c, i, os); writeE(c, i, os, incdec(c, os, d, c.tHi, true), c.tHi, true); });

// ---- MOV family ----
def(['mov Eb,Gb', 'mov Ev,Gv'], (c, i) => { const os = i.os; const v = c.getReg(i.reg, os); writeE(c, i, os, v, c.tHi, false); });
def(['mov Gb,Eb', 'mov Gv,Ev'], (c, i) => { const os = i.os; const v = readE(c, i, os); c.setReg(i.reg, os, v, c.tHi); });
def(['mov Eb,Ib'], (c, i) => { writeE(c, i, 1, i.imm, 0, false); });
def(['mov Ev,Iz'], (c, i) => { writeE(c, i, i.os, i.imm, i.imm >> 31, false); });
def(['mov Zb,Ib'], (c, i) => { c.setReg(i.reg, 1, i.imm, 0); });
def(['mov Zv,Iv'], (c, i) => { c.setReg(i.reg, i.os, i.imm, i.immHi); });
def(['mov AL,Ob', 'mov rAX,Ov'], (c, i) => { const os = i.os; const v = c.readMem(c.linear(i, os), os); c.setReg(0, os, v, c.tHi); });
def(['mov Ob,AL', 'mov Ov,rAX'], (c, i) => { const os = i.os; const v = c.getReg(0, os); const vh = c.tHi; c.writeMem(c.linear(i, os), os, v, vh); });
def('lea', (c, i) => {
  const v = c.effectiveAddress(i);
  c.setReg(i.reg, i.os, i.os === 8 ? v : i.os === 2 ? v & 0xffff : v, c.tHi);
});
def('movzx Gv,Eb', (c, i) => { c.setReg(i.reg, i.os, readE(c, i, 1), 0); });
def('movzx Gv,Ew', (c, i) => { c.setReg(i.reg, i.os, readE(c, i, 2), 0); });
def('movsx Gv,Eb', (c, i) => { const v = sx(readE(c, i, 1), 1); c.setReg(i.reg, i.os, v, v >> 31); });
def('movsx Gv,Ew', (c, i) => { const v = sx(readE(c, i, 2), 2); c.setReg(i.reg, i.os, v, v >> 31); });
def('movsxd', (c, i) => { const v = readE(c, i, 4); c.setReg(i.reg, i.os, v, v >> 31); });
def(['xchg Eb,Gb', 'xchg Ev,Gv'], (c, i) => {
  const os = i.os; const d = readRmwE(c, i, os); const dh = c.tHi; const s = c.getReg(i.reg, os);
  writeE(c, i, os, s, c.tHi, true); c.setReg(i.reg, os, d, dh);
});
def('xchg Zv,rAX', (c, i) => {
  const os = i.os; const a = c.getReg(0, os); const ah = c.tHi; const b = c.getReg(i.reg, os);
  c.setReg(0, os, b, c.tHi); c.setReg(i.reg, os, a, ah);
});
def(['nop', 'pause', 'endbr64', 'endbr32', 'prefetchnta', 'prefetcht0', 'prefetcht1', 'prefetcht2', 'prefetchw', 'lfence', 'mfence', 'sfence'], () => {});
def('cbw', (c, i) => {
  if (i.os === 2) c.setReg(0, 2, sx(c.lo[0]!, 1), 0);
  else if (i.os === 4) c.setReg(0, 4, sx(c.lo[0]!, 2), 0);
  else { const v = c.lo[0]!; c.setReg(0, 8, v, v >> 31); }
});
def('cwd', (c, i) => {
  if (i.os === 2) c.setReg(2, 2, (c.lo[0]! << 16) >> 31, 0);
  else if (i.os === 4) c.setReg(2, 4, c.lo[0]! >> 31, 0);
  else { const s = c.hi[0]! >> 31; c.setReg(2, 8, s, s); }
});
function sw(v: number): number { return ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24)) | 0; }
def('bswap', (c, i) => {
  if (i.os === 8) { const l = c.lo[i.reg]!, h = c.hi[i.reg]!; c.setReg(i.reg, 8, sw(h), sw(l)); } else if (i.os === 4) c.setReg(i.reg, 4, sw(c.lo[i.reg]!), 0);
  else c.setReg(i.reg, 2, 0, 0); // BSWAP r16 is undefined; hardware gives 0
});
def('cmovcc', (c, i) => {
  const os = i.os; const v = readE(c, i, os); const vh = c.tHi;
  if (condition(c.lf, i.cc)) c.setReg(i.reg, os, v, vh);
  else if (os === 4) c.hi[i.reg] = 0; // 32-bit destination is zero-extended even when the move does not happen
});
def('setcc', (c, i) => { writeE(c, i, 1, condition(c.lf, i.cc) ? 1 : 0, 0, false); });
def('salc', (c) => { c.setReg(0, 1, getCF(c.lf) ? 0xff : 0, 0); });
def('xlat', (c, i) => {
  const bx = i.as === 8 ? c.lo[3]! >>> 0 : i.as === 4 ? c.lo[3]! >>> 0 : c.lo[3]! & 0xffff;
  const sum = bx + (c.lo[0]! & 0xff);
  const off = i.as === 2 ? sum & 0xffff : sum | 0;
  // 64-bit: the carry out of the low half goes into the high half (RBX + AL wraps modulo 2^64).
  const hi = i.as === 8 ? (c.hi[3]! + (sum > 0xffffffff ? 1 : 0)) | 0 : 0;
  c.setReg(0, 1, c.read8(c.segLinear(i.seg, off, hi, 1, i.as)), 0);
});

// ---- flags ----
def('clc', (c) => setCf(c, false));
def('stc', (c) => setCf(c, true));
def('cmc', (c) => setCf(c, !getCF(c.lf)));
def('cld', (c) => { c.flags &= ~0x400; });
def('std', (c) => { c.flags |= 0x400; });
def('lahf', (c) => { c.setReg(16, 1, arithFlags(c.lf) & 0xd5 | 2, 0); });
def('sahf', (c) => {
  const ah = (c.lo[0]! >> 8) & 0xd5;
  c.lf.aux = (arithFlags(c.lf) & F_OF) | ah; c.lf.op = LF_FLAGS;
});

// ---- shifts and rotates ----
function bit64(lo: number, hi: number, k: number): number {
  return k < 32 ? (lo >>> k) & 1 : (hi >>> (k - 32)) & 1;
}

/** Shift/rotate kind k (ModRM.reg: 0 rol 1 ror 2 rcl 3 rcr 4 shl 5 shr 6 sal 7 sar) of (d, dh) by count. */
export function shiftOp(c: Cpu, k: number, os: number, d: number, dh: number, count: number): number {
  const bits = os * 8;
  count &= os === 8 ? 63 : 31;
  if (count === 0) { c.tHi = dh; return d; }
  if (os === 8) return shift64(c, k, d, dh, count);
  d = u(d, os);
  const m = os === 4 ? 0xffffffff : (1 << bits) - 1;
  const top = bits - 1;
  let r: number, cf: number, of: number;
  switch (k) {
    case 0: { const n = count % bits; r = n === 0 ? d : u((d << n) | (d >>> (bits - n)), os); cf = r & 1; of = ((r >>> top) & 1) ^ cf; return rotFlags(c, r, cf, of); }
    case 1: { const n = count % bits; r = n === 0 ? d : u((d >>> n) | (d << (bits - n)), os); cf = ((r >>> top) & 1); of = ((r >>> top) & 1) ^ ((r >>> (bits - 2)) & 1); return rotFlags(c, r, cf, of); }
    case 2: case 3: {
      const n = count % (bits + 1);
      let v = BigInt(d), cin = BigInt(getCF(c.lf) ? 1 : 0);
      const B = BigInt(bits);
      for (let s = 0; s < n; s++) {
        if (k === 2) { const out = (v >> (B - 1n)) & 1n; v = ((v << 1n) | cin) & BigInt(m); cin = out; } else { const out = v & 1n; v = (v >> 1n) | (cin << (B - 1n)); cin = out; }
      }
      r = Number(v); cf = Number(cin);
      of = k === 2 ? ((r >>> top) & 1) ^ cf : ((r >>> top) & 1) ^ ((r >>> (bits - 2)) & 1);
      return rotFlags(c, r, cf, of);
    }
    case 4: case 6:
      r = count < 32 ? u(d << count, os) : 0;
      cf = count <= bits ? (count === bits ? d & 1 : (d >>> (bits - count)) & 1) : 0;
      of = ((r >>> top) & 1) ^ cf;
      break;
    case 5:
      r = d >>> count; cf = (d >>> (count - 1)) & 1; of = ((d >>> top) & 1);
      break;
    default: {
      const sd = sx(d, os);
      r = u(sd >> Math.min(count, 31), os); cf = (sd >> Math.min(count - 1, 31)) & 1; of = 0;
    }
  }
  r = r & m;
  setResultFlags(c, os, r, 0, (cf ? F_CF : 0) | (of ? F_OF : 0));
  return r;
}

function rotFlags(c: Cpu, r: number, cf: number, of: number): number {
  setCfOf(c, cf === 1, of === 1);
  return r;
}

// 64-bit shift helpers: results in s64lo/s64hi (unsigned halves).
let s64lo = 0, s64hi = 0;
function shl64(l: number, h: number, s: number): void {
  if (s === 0) { s64lo = l; s64hi = h; } else if (s < 32) { s64hi = ((h << s) | (l >>> (32 - s))) >>> 0; s64lo = (l << s) >>> 0; } else { s64hi = (l << (s - 32)) >>> 0; s64lo = 0; }
}
function shr64(l: number, h: number, s: number): void {
  if (s === 0) { s64lo = l; s64hi = h; } else if (s < 32) { s64lo = ((l >>> s) | (h << (32 - s))) >>> 0; s64hi = h >>> s; } else { s64lo = h >>> (s - 32); s64hi = 0; }
}

function shift64(c: Cpu, k: number, lo: number, hi: number, n: number): number {
  lo >>>= 0; hi >>>= 0;
  let rl: number, rh: number, cf: number, of: number;
  switch (k) {
    case 0: case 1: {
      if (k === 0) { shl64(lo, hi, n); rl = s64lo; rh = s64hi; shr64(lo, hi, 64 - n); } else { shr64(lo, hi, n); rl = s64lo; rh = s64hi; shl64(lo, hi, 64 - n); }
      rl = (rl | s64lo) >>> 0; rh = (rh | s64hi) >>> 0;
      if (k === 0) { cf = rl & 1; of = (rh >>> 31) ^ cf; } else { cf = rh >>> 31; of = cf ^ ((rh >>> 30) & 1); }
      setCfOf(c, cf === 1, of === 1);
      c.tHi = rh | 0;
      return rl | 0;
    }
    case 2: case 3: {
      let v = big(lo, hi), cin = getCF(c.lf) ? 1n : 0n;
      for (let s = 0; s < n; s++) {
        if (k === 2) { const out = v >> 63n; v = ((v << 1n) | cin) & 0xffffffffffffffffn; cin = out; } else { const out = v & 1n; v = (v >> 1n) | (cin << 63n); cin = out; }
      }
      const r = unbig(c, v); const rhi = c.tHi >>> 0;
      cf = Number(cin); of = k === 2 ? (rhi >>> 31) ^ cf : (rhi >>> 31) ^ ((rhi >>> 30) & 1);
      setCfOf(c, cf === 1, of === 1);
      c.tHi = rhi | 0;
      return r;
    }
    case 4: case 6: shl64(lo, hi, n); rl = s64lo; rh = s64hi; cf = bit64(lo, hi, 64 - n); of = (rh >>> 31) ^ cf; break;
    case 5: shr64(lo, hi, n); rl = s64lo; rh = s64hi; cf = bit64(lo, hi, n - 1); of = hi >>> 31; break;
    default: {
      const sh = hi | 0;
      if (n < 32) { rl = ((lo >>> n) | (sh << (32 - n))) >>> 0; rh = (sh >> n) >>> 0; } else { rl = (sh >> (n - 32)) >>> 0; rh = (sh >> 31) >>> 0; }
      cf = bit64(lo, hi, n - 1); of = 0;
    }
  }
  setResultFlags(c, 8, rl, rh, (cf ? F_CF : 0) | (of ? F_OF : 0));
  c.tHi = rh | 0;
  return rl | 0;
}

for (const [name, k] of [['rol', 0], ['ror', 1], ['rcl', 2], ['rcr', 3], ['shl', 4], ['shr', 5], ['sal', 6], ['sar', 7]] as const) {
  def([`${name} Eb,Ib`, `${name} Ev,Ib`], (c, i) => { const os = i.os; const d = readRmwE(c, i, os); const r = shiftOp(c, k, os, d, c.tHi, i.imm & 0xff); writeE(c, i, os, r, c.tHi, true); });
  def([`${name} Eb,1`, `${name} Ev,1`], (c, i) => { const os = i.os; const d = readRmwE(c, i, os); const r = shiftOp(c, k, os, d, c.tHi, 1); writeE(c, i, os, r, c.tHi, true); });
  def([`${name} Eb,CL`, `${name} Ev,CL`], (c, i) => { const os = i.os; const d = readRmwE(c, i, os); const r = shiftOp(c, k, os, d, c.tHi, c.lo[1]! & 0xff); writeE(c, i, os, r, c.tHi, true); });
}

function shiftDouble(c: Cpu, i: Insn, count: number, left: boolean): void {
  const os = i.os;
  const d = readRmwE(c, i, os); const dh = c.tHi;
  const s = c.getReg(i.reg, os); const sh = c.tHi;
  count &= os === 8 ? 63 : 31;
  if (count === 0) { writeE(c, i, os, d, dh, true); return; } // 32-bit destinations are still zero-extended
  const bits = BigInt(os * 8);
  const mask = (1n << bits) - 1n;
  const dv = os === 8 ? big(d, dh) : BigInt(u(d, os)), sv = os === 8 ? big(s, sh) : BigInt(u(s, os));
  const n = BigInt(count);
  let r: bigint, cf: bigint;
  if (left) { const wide = (dv << bits) | sv; r = ((wide << n) >> bits) & mask; cf = (dv >> (bits - n)) & 1n; } else { const wide = (sv << bits) | dv; r = (wide >> n) & mask; cf = (dv >> (n - 1n)) & 1n; }
  const lo = unbig(c, r); const hi = c.tHi;
  const msbR = (r >> (bits - 1n)) & 1n, msbD = (dv >> (bits - 1n)) & 1n;
  setResultFlags(c, os, lo, hi, (cf ? F_CF : 0) | (msbR !== msbD ? F_OF : 0));
  writeE(c, i, os, lo, hi, true);
}
def(['shld Ev,Gv,Ib'], (c, i) => shiftDouble(c, i, i.imm & 0xff, true));
def(['shld Ev,Gv,CL'], (c, i) => shiftDouble(c, i, c.lo[1]! & 0xff, true));
def(['shrd Ev,Gv,Ib'], (c, i) => shiftDouble(c, i, i.imm & 0xff, false));
def(['shrd Ev,Gv,CL'], (c, i) => shiftDouble(c, i, c.lo[1]! & 0xff, false));

// ---- multiply / divide ----
/** Unsigned 32×32 → 64: lo returned, hi in c.tHi. */
function mulu32(c: Cpu, a: number, b: number): number {
  a >>>= 0; b >>>= 0;
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  c.tHi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) | 0;
  return ((mid & 0xffff) << 16) | (ll & 0xffff);
}

def(['mul Eb', 'mul Ev'], (c, i) => {
  const os = i.os; const s = readE(c, i, os); const sh = c.tHi;
  let lo: number, hi: number, hiNz: boolean;
  if (os === 1) { const r = (c.lo[0]! & 0xff) * s; c.setReg(0, 2, r, 0); lo = r & 0xff; hiNz = r > 0xff; hi = 0; } else if (os === 2) {
    const r = (c.lo[0]! & 0xffff) * s; c.setReg(0, 2, r, 0); c.setReg(2, 2, r >>> 16, 0); lo = r & 0xffff; hiNz = r > 0xffff; hi = 0;
  } else if (os === 4) { lo = mulu32(c, c.lo[0]!, s); const h = c.tHi; c.setReg(0, 4, lo, 0); c.setReg(2, 4, h, 0); hiNz = h !== 0; hi = 0; } else {
    const r = big(c.lo[0]!, c.hi[0]!) * big(s, sh);
    lo = unbig(c, r); hi = c.tHi; c.setReg(0, 8, lo, hi);
    const l2 = unbig(c, r >> 64n); c.setReg(2, 8, l2, c.tHi); hiNz = (r >> 64n) !== 0n;
  }
  setResultFlags(c, os, lo, hi, hiNz ? F_CF | F_OF : 0);
});

/** Signed multiply of os-sized a×b; returns low part (hi in tHi) and sets CF/OF on overflow of the os-sized result. */
function imulTrunc(c: Cpu, os: number, a: number, ah: number, b: number, bh: number): number {
  if (os <= 2) {
    const r = sx(a, os) * sx(b, os);
    const lo = u(r, os);
    setResultFlags(c, os, lo, 0, sx(lo, os) !== r ? F_CF | F_OF : 0);
    c.tHi = os === 1 ? (r >> 8) & 0xff : (r >> 16) & 0xffff;
    return lo;
  }
  if (os === 4) {
    // Signed 32x32 -> 64 in Numbers (no BigInt): low half from Math.imul, high half from 16-bit pieces.
    const x = a | 0, y = b | 0;
    const lo = Math.imul(x, y);
    const x1 = x >> 16, x0 = x & 0xffff, y1 = y >> 16, y0 = y & 0xffff;
    const mid = x1 * y0 + x0 * y1; // |mid| < 2^32: exact
    const midHi = Math.floor(mid / 65536);
    const carry = Math.floor(((mid - midHi * 65536) * 65536 + x0 * y0) / 4294967296);
    const hi = (x1 * y1 + midHi + carry) | 0;
    setResultFlags(c, 4, lo, 0, hi !== lo >> 31 ? F_CF | F_OF : 0);
    c.tHi = hi;
    return lo;
  }
  mulU64(a, ah, b, bh);
  const lo = P128[0]! | 0, hi = P128[1]! | 0;
  // Signed high half = unsigned high half - (a < 0 ? b : 0) - (b < 0 ? a : 0), modulo 2^64.
  let h0 = P128[2]!, h1 = P128[3]!;
  if (ah < 0) { const t = h0 - (b >>> 0); h0 = t >>> 0; h1 = (h1 - (bh >>> 0) - (t < 0 ? 1 : 0)) >>> 0; }
  if (bh < 0) { const t = h0 - (a >>> 0); h0 = t >>> 0; h1 = (h1 - (ah >>> 0) - (t < 0 ? 1 : 0)) >>> 0; }
  // The product fits in 64 bits when the high half is the sign extension of the low half.
  const ext = hi >> 31;
  setResultFlags(c, 8, lo, hi, (h0 | 0) !== ext || (h1 | 0) !== ext ? F_CF | F_OF : 0);
  c.tHi = hi;
  return lo;
}

/** 32-bit words (unsigned, least significant first) of the last mulU64 product. */
const P128 = new Float64Array(4);
const LIMB_A = new Float64Array(4), LIMB_B = new Float64Array(4);

/** Unsigned 64x64 -> 128-bit product of (ah:al) and (bh:bl) into P128, in 16-bit limbs (every partial sum exact). */
function mulU64(al: number, ah: number, bl: number, bh: number): void {
  LIMB_A[0] = al & 0xffff; LIMB_A[1] = al >>> 16; LIMB_A[2] = ah & 0xffff; LIMB_A[3] = ah >>> 16;
  LIMB_B[0] = bl & 0xffff; LIMB_B[1] = bl >>> 16; LIMB_B[2] = bh & 0xffff; LIMB_B[3] = bh >>> 16;
  let carry = 0, word = 0;
  for (let k = 0; k < 8; k++) {
    let sum = carry; // < 2^35: four 32-bit partial products plus the carry
    for (let i = k < 4 ? 0 : k - 3; i <= (k < 4 ? k : 3); i++) sum += LIMB_A[i]! * LIMB_B[k - i]!;
    carry = Math.floor(sum / 65536);
    const limb = sum - carry * 65536;
    if (k & 1) P128[k >> 1] = word + limb * 65536; else word = limb;
  }
}

def(['imul Eb', 'imul Ev'], (c, i) => {
  const os = i.os; const s = readE(c, i, os); const sh = c.tHi;
  if (os === 1) {
    const r = sx(c.lo[0]!, 1) * sx(s, 1); c.setReg(0, 2, r, 0);
    setResultFlags(c, 1, r & 0xff, 0, sx(r & 0xff, 1) !== r ? F_CF | F_OF : 0);
  } else if (os === 2) {
    const r = sx(c.lo[0]!, 2) * sx(s, 2); c.setReg(0, 2, r, 0); c.setReg(2, 2, r >> 16, 0);
    setResultFlags(c, 2, r & 0xffff, 0, sx(r & 0xffff, 2) !== r ? F_CF | F_OF : 0);
  } else if (os === 4) {
    const lo = imulTrunc(c, 4, c.lo[0]!, 0, s, 0); const h = c.tHi; c.setReg(0, 4, lo, 0); c.setReg(2, 4, h, 0);
  } else {
    const r = BigInt.asIntN(64, big(c.lo[0]!, c.hi[0]!)) * BigInt.asIntN(64, big(s, sh));
    const lo = unbig(c, r); const hi = c.tHi; c.setReg(0, 8, lo, hi);
    const l2 = unbig(c, r >> 64n); c.setReg(2, 8, l2, c.tHi);
    setResultFlags(c, 8, lo, hi, BigInt.asIntN(64, r) !== r ? F_CF | F_OF : 0);
  }
});
def('imul Gv,Ev', (c, i) => { const os = i.os; const s = readE(c, i, os); const sh = c.tHi; const d = c.getReg(i.reg, os); const r = imulTrunc(c, os, d, c.tHi, s, sh); c.setReg(i.reg, os, r, c.tHi); fixImulHi(c, os, r); });
def(['imul Gv,Ev,Iz', 'imul Gv,Ev,Ib'], (c, i) => { const os = i.os; const s = readE(c, i, os); const r = imulTrunc(c, os, s, c.tHi, i.imm, i.imm >> 31); c.setReg(i.reg, os, r, c.tHi); fixImulHi(c, os, r); });
/** imulTrunc leaves the product's high half in tHi; for the truncating forms the 64-bit result's hi is the low product's hi. */
function fixImulHi(c: Cpu, os: number, lo: number): void {
  if (os === 8) return;
  void lo;
}

def(['div Eb', 'div Ev'], (c, i) => {
  const os = i.os; const s = readE(c, i, os); const sh = c.tHi;
  if (os === 1) {
    const dv = c.lo[0]! & 0xffff; if (s === 0) c.raise(DE);
    const q = Math.floor(dv / s); if (q > 0xff) c.raise(DE);
    c.setReg(0, 2, ((dv % s) << 8) | q, 0);
  } else if (os === 2) {
    const dv = ((c.lo[2]! & 0xffff) * 65536) + (c.lo[0]! & 0xffff); if (s === 0) c.raise(DE);
    const q = Math.floor(dv / s); if (q > 0xffff) c.raise(DE);
    c.setReg(0, 2, q, 0); c.setReg(2, 2, dv % s, 0);
  } else if (os === 4) {
    const sv = s >>> 0; if (sv === 0) c.raise(DE);
    const dh = c.lo[2]! >>> 0, dl = c.lo[0]! >>> 0;
    if (dh === 0) { c.setReg(0, 4, Math.floor(dl / sv), 0); c.setReg(2, 4, dl % sv, 0); } else {
      if (dh >= sv) c.raise(DE);
      const dv = (BigInt(dh) << 32n) | BigInt(dl), b = BigInt(sv);
      c.setReg(0, 4, Number(dv / b), 0); c.setReg(2, 4, Number(dv % b), 0);
    }
  } else {
    const b = big(s, sh); if (b === 0n) c.raise(DE);
    const dv = (big(c.lo[2]!, c.hi[2]!) << 64n) | big(c.lo[0]!, c.hi[0]!);
    const q = dv / b; if (q > 0xffffffffffffffffn) c.raise(DE);
    const ql = unbig(c, q); c.setReg(0, 8, ql, c.tHi);
    const rl = unbig(c, dv % b); c.setReg(2, 8, rl, c.tHi);
  }
});

def(['idiv Eb', 'idiv Ev'], (c, i) => {
  const os = i.os; const s = readE(c, i, os); const sh = c.tHi;
  if (os <= 2) {
    const d = os === 1 ? sx(c.lo[0]!, 2) : ((c.lo[2]! << 16) | (c.lo[0]! & 0xffff));
    const sv = sx(s, os); if (sv === 0) c.raise(DE);
    const q = Math.trunc(d / sv), r = d - q * sv;
    const lim = os === 1 ? 0x80 : 0x8000;
    if (q >= lim || q < -lim) c.raise(DE);
    if (os === 1) c.setReg(0, 2, ((r & 0xff) << 8) | (q & 0xff), 0); else { c.setReg(0, 2, q, 0); c.setReg(2, 2, r, 0); }
    return;
  }
  const bits = BigInt(os * 8);
  const sv = os === 4 ? BigInt(s | 0) : BigInt.asIntN(64, big(s, sh));
  if (sv === 0n) c.raise(DE);
  const dv = os === 4 ? BigInt.asIntN(64, (BigInt(c.lo[2]! >>> 0) << 32n) | BigInt(c.lo[0]! >>> 0)) : BigInt.asIntN(128, (big(c.lo[2]!, c.hi[2]!) << 64n) | big(c.lo[0]!, c.hi[0]!));
  const q = dv / sv, r = dv % sv;
  if (q >= 1n << (bits - 1n) || q < -(1n << (bits - 1n))) c.raise(DE);
  const ql = unbig(c, q); c.setReg(0, os, ql, c.tHi);
  const rl = unbig(c, r); c.setReg(2, os, rl, c.tHi);
});

// ---- bit operations ----
function bitOp(c: Cpu, i: Insn, bitOffset: number, bitOffHi: number, fromReg: boolean, kind: number): void {
  const os = i.os;
  const bits = os * 8;
  let v: number, vh: number, lin = 0, bit: number;
  if (i.isMem && fromReg) {
    // Register bit offsets address memory beyond the operand (signed).
    const off = os === 8 ? bitOffHi * 4294967296 + (bitOffset >>> 0) : sx(bitOffset, os);
    const chunk = Math.floor(off / bits);
    bit = off - chunk * bits;
    const ea = c.effectiveAddress(i);
    const eaHi = c.tHi;
    const adj = chunk * os;
    const full = (i.as === 8 ? eaHi * 4294967296 + (ea >>> 0) : i.as === 4 ? ea >>> 0 : ea & 0xffff) + adj;
    lin = c.segLinear(i.seg, i.as === 8 ? full % 4294967296 | 0 : i.as === 4 ? full | 0 : full & 0xffff, i.as === 8 ? Math.floor(full / 4294967296) : 0, os, i.as);
    if (kind !== 0) c.probeWrite(lin, os);
    v = c.readMem(lin, os); vh = c.tHi;
  } else {
    bit = bitOffset & (bits - 1);
    if (i.isMem) { lin = c.linear(i, os); if (kind !== 0) c.probeWrite(lin, os); v = c.readMem(lin, os); vh = c.tHi; } else { v = c.getReg(i.rm, os); vh = c.tHi; }
  }
  const cf = bit < 32 ? (v >>> bit) & 1 : (vh >>> (bit - 32)) & 1;
  setCf(c, cf === 1);
  if (kind === 0) return;
  const m = bit < 32 ? 1 << bit : 0, mh = bit >= 32 ? 1 << (bit - 32) : 0;
  if (kind === 1) { v |= m; vh |= mh; } else if (kind === 2) { v &= ~m; vh &= ~mh; } else { v ^= m; vh ^= mh; }
  if (i.isMem) c.writeMem(lin, os, v, vh); else c.setReg(i.rm, os, v, vh);
}
(['bt', 'bts', 'btr', 'btc'] as const).forEach((name, kind) => {
  def(`${name} Ev,Gv`, (c, i) => { const o = c.getReg(i.reg, i.os); bitOp(c, i, o, c.tHi, true, kind); });
  def(`${name} Ev,Ib`, (c, i) => bitOp(c, i, i.imm & 0xff, 0, false, kind));
});

function scanFlags(c: Cpu, zero: boolean): void {
  c.lf.op = LF_FLAGS; c.lf.aux = zero ? F_ZF : 0;
}
def(['bsf', 'tzcnt'], (c, i) => {
  const os = i.os; const v = readE(c, i, os); const vh = c.tHi;
  const lo = u(v, os);
  if (lo === 0 && (os !== 8 || vh === 0)) { scanFlags(c, true); return; }
  const r = lo !== 0 ? 31 - Math.clz32(lo & -lo) : 32 + 31 - Math.clz32(vh & -vh);
  scanFlags(c, false); c.setReg(i.reg, os, r, 0);
});
def(['bsr', 'lzcnt'], (c, i) => {
  const os = i.os; const v = readE(c, i, os); const vh = c.tHi;
  const lo = u(v, os);
  if (lo === 0 && (os !== 8 || vh === 0)) { scanFlags(c, true); return; }
  const r = os === 8 && vh !== 0 ? 63 - Math.clz32(vh) : 31 - Math.clz32(lo);
  scanFlags(c, false); c.setReg(i.reg, os, r, 0);
});
function popcnt32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555); v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
def('popcnt', (c, i) => {
  const os = i.os; const v = readE(c, i, os); const vh = c.tHi;
  const n = popcnt32(u(v, os)) + (os === 8 ? popcnt32(vh) : 0);
  c.lf.op = LF_FLAGS; c.lf.aux = n === 0 ? F_ZF : 0;
  c.setReg(i.reg, os, n, 0);
});

// ---- atomics (single thread: LOCK is trivially atomic) ----
def(['cmpxchg Eb,Gb', 'cmpxchg Ev,Gv'], (c, i) => {
  const os = i.os; const d = readRmwE(c, i, os); const dh = c.tHi;
  const a = c.getReg(0, os); const ah = c.tHi;
  alu(c, 7, os, a, ah, d, dh);
  const equal = os === 8 ? (d === a && dh === ah) : u(d, os) === u(a, os);
  if (equal) { const s = c.getReg(i.reg, os); writeE(c, i, os, s, c.tHi, true); } else {
    if (i.isMem) writeE(c, i, os, d, dh, true); // the destination is always written (locked RMW)
    c.setReg(0, os, d, dh);
  }
});
def(['xadd Eb,Gb', 'xadd Ev,Gv'], (c, i) => {
  const os = i.os; const d = readRmwE(c, i, os); const dh = c.tHi; const s = c.getReg(i.reg, os); const sh = c.tHi;
  const r = alu(c, 0, os, d, dh, s, sh); const rh = c.tHi;
  if (i.isMem) { writeE(c, i, os, r, rh, true); c.setReg(i.reg, os, d, dh); } else { c.setReg(i.reg, os, d, dh); c.setReg(i.rm, os, r, rh); }
});
def('cmpxchg8b', (c, i) => {
  if (i.rex & 8) {
    const lin = c.linear(i, 16);
    if (lin % 16 !== 0) c.gp(0);
    c.probeWrite(lin, 16); // locked RMW: a fault reports a write
    const l0 = c.read64(lin), h0 = c.tHi, l1 = c.read64(lin + 8), h1 = c.tHi;
    const zf = l0 === c.lo[0] && h0 === c.hi[0] && l1 === c.lo[2] && h1 === c.hi[2];
    if (zf) { c.write64(lin, c.lo[3]!, c.hi[3]!); c.write64(lin + 8, c.lo[1]!, c.hi[1]!); } else {
      c.write64(lin, l0, h0); c.write64(lin + 8, l1, h1);
      c.setReg(0, 8, l0, h0); c.setReg(2, 8, l1, h1);
    }
    c.lf.aux = (arithFlags(c.lf) & ~F_ZF) | (zf ? F_ZF : 0); c.lf.op = LF_FLAGS;
    return;
  }
  const lin = c.linear(i, 8);
  c.probeWrite(lin, 8); // locked RMW: a fault reports a write
  const lo = c.read32(lin), hi = c.read32(lin + 4);
  const zf = lo === c.lo[0] && hi === c.lo[2];
  if (zf) { c.write32(lin, c.lo[3]!); c.write32(lin + 4, c.lo[1]!); } else {
    c.write32(lin, lo); c.write32(lin + 4, hi);
    c.setReg(0, 4, lo, 0); c.setReg(2, 4, hi, 0);
  }
  c.lf.aux = (arithFlags(c.lf) & ~F_ZF) | (zf ? F_ZF : 0); c.lf.op = LF_FLAGS;
});
/**
 * MOVBE exists only where CPUID.1:ECX.MOVBE[22] says so: the interpreter's own CPUID does not advertise it (#UD),
 * but a CPU given the KVM vCPU's CPUID (cpuidFilter, stepExternal) runs it.
 */
function movbeAvailable(c: Cpu): boolean {
  const own = cpuid(c.cpuidConfig, 1, 0);
  return ((c.cpuidFilter ? c.cpuidFilter(1, 0, own) : own)[2] & (1 << 22)) !== 0;
}
def('movbe Gv,Mv', (c, i) => {
  if (!movbeAvailable(c)) c.ud();
  const os = i.os; const v = c.readMem(c.linear(i, os), os); const vh = c.tHi;
  if (os === 8) c.setReg(i.reg, 8, sw(vh), sw(v)); else if (os === 4) c.setReg(i.reg, 4, sw(v), 0); else c.setReg(i.reg, 2, ((v & 0xff) << 8) | ((v >> 8) & 0xff), 0);
});
def('movbe Mv,Gv', (c, i) => {
  if (!movbeAvailable(c)) c.ud();
  const os = i.os; const v = c.getReg(i.reg, os); const vh = c.tHi;
  const lin = c.linear(i, os);
  if (os === 8) c.write64(lin, sw(vh), sw(v)); else if (os === 4) c.write32(lin, sw(v)); else c.write16(lin, ((v & 0xff) << 8) | ((v >> 8) & 0xff));
});

// ---- BCD (legacy modes only) ----
def('daa', (c) => {
  let al = c.lo[0]! & 0xff; const f = arithFlags(c.lf); let cf = (f & F_CF) !== 0; const oldAl = al, oldCf = cf; let af = false;
  if ((al & 0xf) > 9 || f & F_AF) { al = (al + 6) & 0xff; cf = oldCf || oldAl + 6 > 0xff; af = true; }
  if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xff; cf = true; } else cf = false;
  c.setReg(0, 1, al, 0); setResultFlags(c, 1, al, 0, (cf ? F_CF : 0) | (af ? F_AF : 0));
});
def('das', (c) => {
  let al = c.lo[0]! & 0xff; const f = arithFlags(c.lf); const oldAl = al, oldCf = (f & F_CF) !== 0; let cf = false, af = false;
  if ((al & 0xf) > 9 || f & F_AF) { cf = oldCf || al < 6; al = (al - 6) & 0xff; af = true; }
  if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xff; cf = true; }
  c.setReg(0, 1, al, 0); setResultFlags(c, 1, al, 0, (cf ? F_CF : 0) | (af ? F_AF : 0));
});
def(['aaa', 'aas'], (c, i) => {
  const f = arithFlags(c.lf); let ax = c.lo[0]! & 0xffff;
  const adj = (ax & 0xf) > 9 || (f & F_AF) !== 0;
  if (adj) ax = i.mnemonic === 'aaa' ? (ax + 0x106) & 0xffff : (((ax - 6) & 0xff) | ((((ax >> 8) - 1) & 0xff) << 8));
  c.setReg(0, 2, ax & 0xff0f, 0);
  c.lf.op = LF_FLAGS; c.lf.aux = (f & ~(F_CF | F_AF)) | (adj ? F_CF | F_AF : 0);
});
def('aam', (c, i) => {
  const b = i.imm & 0xff; if (b === 0) c.raise(DE);
  const al = c.lo[0]! & 0xff; const r = ((Math.floor(al / b)) << 8) | (al % b);
  c.setReg(0, 2, r, 0); setResultFlags(c, 1, r & 0xff, 0, 0);
});
def('aad', (c, i) => {
  const b = i.imm & 0xff; const ax = c.lo[0]! & 0xffff; const al = ((ax & 0xff) + (ax >> 8) * b) & 0xff;
  c.setReg(0, 2, al, 0); setResultFlags(c, 1, al, 0, 0);
});

void F_ARITH; void F_PF; void F_SF;
