/**
 * x86 instruction decoder driven by the compiled encoding table. Produces a reusable, fixed-shape `Insn`.
 * Register numbering: 0-15 GPRs; byte registers named by Eb/Gb/Zb use 16-19 for AH/CH/DH/BH (no REX).
 * Segment numbering: ES 0, CS 1, SS 2, DS 3, FS 4, GS 5.
 */
import { A_BYTE, A_D64, A_F64, A_I64, A_O64, candidates, type Encoding, hasModrm, Imm, mandatoryMask, Pfx } from './table.js';

export type Handler = (cpu: never, insn: Insn) => void;

/** Why decoding failed: the bytes are not a valid instruction (#UD) or exceed 15 bytes (#GP). */
export const DECODE_UD = 1, DECODE_TOO_LONG = 2;

export class Insn {
  // Field order matters for speed: V8 lays fields out in declaration order, so the ones the run loop touches for
  // every executed instruction (handler, length, successor links, translator state) and the most used operand
  // fields come first and share cache lines. Every field holds a small integer, a boolean or an object (no
  // fractional or large Numbers), so none of them is boxed.
  /** Executor handler, bound by the CPU (typed loosely here to keep the decoder independent of the executor). */
  h: ((cpu: any, insn: Insn) => void) | null = null; // eslint-disable-line @typescript-eslint/no-explicit-any
  len = 0;
  // Successor links (set by the CPU's run loop): the decoded instruction that followed this one last time, for the
  // fall-through and the taken path, valid while the CPU's code epoch equals the recorded one (-1: none). The
  // fall-through link is used when the next RIP is this instruction's end; the taken link when the next RIP equals
  // takenRip, which is recorded only for int32 RIPs (so the field never holds a boxed double).
  fallEpoch = -1;
  fall: Insn | null = null;
  takenEpoch = -1;
  takenRip = 0;
  taken: Insn | null = null;
  // Block translator (lib/cpu/jit): the compiled block starting here (null until hot, and when no block can start
  // here), an execution count, and the cached page array holding this instruction and its offset there (so the
  // instructions that follow it in the same physical page can be found).
  block: CompiledBlock | null = null;
  hits = 0;
  cached = false;
  /** Operand size in bytes (1, 2, 4, 8) and address size (2, 4, 8). */
  os = 4;
  as = 4;
  isMem = false;
  reg = 0;
  rm = 0;
  imm = 0;
  immHi = 0;
  cc = -1;
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  dispHi = 0;
  ripRel = false;
  /** Segment for the memory operand (override or default), and whether it was overridden. */
  seg = 3;
  /** Decode mode this was decoded in (16/32/64), for cache validation. */
  mode = 0;
  enc: Encoding | null = null;
  mnemonic = '';
  segOverride = false;
  rep = 0;
  lock = false;
  pfx66 = false;
  rex = 0;
  /** Encoding used a VEX/EVEX prefix (length only; not executable). */
  vex = 0;
  modrm = 0;
  imm2 = 0;
  opcode = 0;
  map = 0;
  /** Error kind when enc === null. */
  error = 0;
  page: Array<Insn | undefined> | null = null;
  off = 0;
}

/** A translated run of instructions starting at one decoded instruction (lib/cpu/jit/block-compiler.ts). */
export interface CompiledBlock {
  /** Instructions in the block (the run loop enters it only with at least this much instruction budget left). */
  readonly n: number;
  /**
   * Execute from the block's first instruction (a block that loops on itself repeats while the CPU's instruction
   * count stays within `limit`); returns the last instruction executed (for successor links).
   */
  run(cpu: object, limit: number): Insn;
}

function sx8(v: number): number { return (v << 24) >> 24; }
function sx16(v: number): number { return (v << 16) >> 16; }

/**
 * Decode one instruction. `byteAt(i)` returns the i-th byte of the instruction (it may throw, e.g. a page fault;
 * the decoder asks only for bytes it needs). Returns `out` with `enc` null and `error` set on invalid encodings.
 */
export function decode(byteAt: (i: number) => number, mode: number, out: Insn): Insn {
  let p = 0;
  let seg = -1, rep = 0, lock = false, p66 = false, p67 = false, rex = 0;
  out.enc = null; out.h = null; out.error = 0; out.vex = 0; out.mode = mode; out.cc = -1;
  let b = 0;
  // Legacy prefixes (up to 14), then REX in 64-bit mode (must be last).
  for (;;) {
    if (p >= 15) return fail(out, DECODE_TOO_LONG, p);
    b = byteAt(p);
    if (b === 0x66) p66 = true; else if (b === 0x67) p67 = true;
    else if (b === 0xf2 || b === 0xf3) rep = b; else if (b === 0xf0) lock = true;
    else if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e) { if (mode !== 64) seg = (b >> 3) & 3; } else if (b === 0x64 || b === 0x65) seg = b - 0x60;
    else if (mode === 64 && (b & 0xf0) === 0x40) { rex = b; p++; b = byteAt(p); if ((b & 0xf0) === 0x40 || isLegacyPrefix(b)) { rex = 0; continue; } break; } else break;
    p++; rex = 0;
  }
  // VEX/EVEX: decode the length only.
  if (b === 0xc4 || b === 0xc5 || b === 0x62) {
    const n = byteAt(p + 1);
    if (mode === 64 || (n & 0xc0) === 0xc0) return decodeVex(byteAt, mode, out, p, b, p67);
  }
  let map = 0;
  let op = b;
  p++;
  if (op === 0x0f) {
    op = byteAt(p++); map = 1;
    if (op === 0x38) { op = byteAt(p++); map = 2; } else if (op === 0x3a) { op = byteAt(p++); map = 3; }
  }
  const slot = map * 256 + op;
  const list = candidates[slot];
  if (!list) return fail(out, DECODE_UD, p);
  let modrm = 0, mod = 0, regf = 0, rmf = 0;
  const needModrm = hasModrm[slot] === 1;
  if (needModrm) { modrm = byteAt(p++); mod = modrm >> 6; regf = (modrm >> 3) & 7; rmf = modrm & 7; }
  // Mandatory prefix selection: F2/F3 first (last one seen wins), then 66, then none.
  const mm = mandatoryMask[slot]!;
  let chosen: number = Pfx.None;
  if (mm !== 0) {
    if (rep === 0xf3 && mm & 8) chosen = 0xf3; else if (rep === 0xf2 && mm & 4) chosen = 0xf2; else if (p66 && mm & 2) chosen = 0x66;
  }
  let enc: Encoding | null = null;
  for (let k = 0; k < list.length; k++) {
    const e = list[k]!;
    if (e.pfx !== Pfx.Any && e.pfx !== chosen) continue;
    if (e.attrs & A_I64 && mode === 64) continue;
    if (e.attrs & A_O64 && mode !== 64) continue;
    if (e.exact >= 0 && e.exact !== modrm) continue;
    if (e.reg >= 0 && e.reg !== regf) continue;
    if (e.mod === 0 && mod === 3) continue;
    if (e.mod === 3 && mod !== 3) continue;
    enc = e; break;
  }
  // 90 with REX.B is XCHG r8, rAX, not NOP.
  if (enc && map === 0 && op === 0x90 && rex & 1 && enc.mnemonic === 'nop') enc = list.find((e) => e.mnemonic === 'xchg') ?? enc;
  if (!enc) return fail(out, DECODE_UD, p);
  if (chosen === 0xf3 || chosen === 0xf2) rep = 0;
  const usedP66 = chosen === 0x66;

  // Operand and address sizes.
  const attrs = enc.attrs;
  let os: number;
  if (attrs & A_BYTE) os = 1;
  else if (mode === 64) {
    if (attrs & A_F64) os = 8;
    else if (attrs & A_D64) os = rex & 8 ? 8 : p66 && !usedP66 ? 2 : 8; // REX.W overrides 66
    else os = rex & 8 ? 8 : p66 && !usedP66 ? 2 : 4;
  } else if (mode === 32) os = p66 && !usedP66 ? 2 : 4;
  else os = p66 && !usedP66 ? 4 : 2;
  const as = mode === 64 ? (p67 ? 4 : 8) : mode === 32 ? (p67 ? 2 : 4) : (p67 ? 4 : 2);

  out.enc = enc; out.mnemonic = enc.mnemonic; out.os = os; out.as = as; out.rep = rep; out.lock = lock; out.pfx66 = p66;
  out.rex = rex; out.modrm = modrm; out.opcode = op; out.map = map; out.cc = enc.cc;
  out.isMem = false; out.base = -1; out.index = -1; out.scale = 0; out.disp = 0; out.dispHi = 0; out.ripRel = false;
  out.imm = 0; out.immHi = 0; out.imm2 = 0;
  let defSeg = 3;

  if (needModrm) {
    let reg = regf | ((rex & 4) << 1);
    let rm = rmf | ((rex & 1) << 3);
    if (enc.gByte && rex === 0 && reg >= 4 && reg < 8) reg += 12;
    if (mod === 3) {
      if (enc.eByte && rex === 0 && rm >= 4 && rm < 8) rm += 12;
    } else {
      out.isMem = true;
      if (as === 2) {
        // 16-bit addressing: fixed base/index pairs.
        const B16 = [3, 3, 5, 5, 6, 7, 5, 3], I16 = [6, 7, 6, 7, -1, -1, -1, -1];
        if (mod === 0 && rmf === 6) { out.disp = byteAt(p) | (byteAt(p + 1) << 8); p += 2; } else {
          out.base = B16[rmf]!; out.index = I16[rmf]!;
          if (rmf === 2 || rmf === 3 || rmf === 6) defSeg = 2;
          if (mod === 1) out.disp = sx8(byteAt(p++)); else if (mod === 2) { out.disp = byteAt(p) | (byteAt(p + 1) << 8); p += 2; }
        }
      } else {
        let dispSize = mod === 1 ? 1 : mod === 2 ? 4 : 0;
        if (rmf === 4) {
          const sib = byteAt(p++);
          const ss = sib >> 6, idx = ((sib >> 3) & 7) | ((rex & 2) << 2), bse = sib & 7;
          if (idx !== 4) { out.index = idx; out.scale = ss; }
          if (bse === 5 && mod === 0) dispSize = 4;
          else { out.base = bse | ((rex & 1) << 3); if (out.base === 4 || out.base === 5) defSeg = 2; } // not R12/R13
        } else if (rmf === 5 && mod === 0) {
          dispSize = 4;
          if (mode === 64) out.ripRel = true;
        } else {
          out.base = rm; if (rm === 5 || rm === 4) defSeg = 2; // RBP base: SS; R13 (REX.B): DS
        }
        if (dispSize === 1) out.disp = sx8(byteAt(p++));
        else if (dispSize === 4) { out.disp = (byteAt(p) | (byteAt(p + 1) << 8) | (byteAt(p + 2) << 16) | (byteAt(p + 3) << 24)); p += 4; }
      }
    }
    out.reg = reg; out.rm = rm;
  } else if (enc.plusR) {
    let r = (op & 7) | ((rex & 1) << 3);
    if (enc.zByte && rex === 0 && r >= 4) r += 12;
    out.reg = r; out.rm = r;
  }

  // Immediates.
  const imms = enc.imms;
  for (let k = 0; k < imms.length; k++) {
    const kind = imms[k]!;
    let v = 0;
    switch (kind) {
      case Imm.B: case Imm.J8: v = sx8(byteAt(p++)); break;
      case Imm.W: v = byteAt(p) | (byteAt(p + 1) << 8); p += 2; break;
      case Imm.Z: case Imm.JZ:
        if (os === 2 && !(kind === Imm.JZ && mode === 64)) { v = sx16(byteAt(p) | (byteAt(p + 1) << 8)); p += 2; } else { v = read32(byteAt, p); p += 4; }
        if (os === 8) out.immHi = v >> 31;
        break;
      case Imm.V:
        if (os === 2) { v = byteAt(p) | (byteAt(p + 1) << 8); p += 2; } else if (os === 4) { v = read32(byteAt, p); p += 4; } else { v = read32(byteAt, p); out.immHi = read32(byteAt, p + 4); p += 8; }
        break;
      case Imm.Ap: {
        if (os === 2) { v = byteAt(p) | (byteAt(p + 1) << 8); p += 2; } else { v = read32(byteAt, p) >>> 0; p += 4; }
        out.imm2 = byteAt(p) | (byteAt(p + 1) << 8); p += 2;
        break;
      }
      case Imm.Moffs:
        out.isMem = true;
        if (as === 2) { out.disp = byteAt(p) | (byteAt(p + 1) << 8); p += 2; } else if (as === 4) { out.disp = read32(byteAt, p); p += 4; } else { out.disp = read32(byteAt, p); out.dispHi = read32(byteAt, p + 4); p += 8; }
        continue;
      case Imm.Enter:
        v = byteAt(p) | (byteAt(p + 1) << 8); out.imm2 = byteAt(p + 2); p += 3;
        break;
      default: break;
    }
    if (k === 0) out.imm = v; else out.imm2 = v;
  }
  if (out.isMem && !out.ripRel && as !== 8) out.dispHi = 0;
  if (out.isMem && as === 8 && !(imms.length && imms[0] === Imm.Moffs)) out.dispHi = out.disp >> 31;
  if (p > 15) return fail(out, DECODE_TOO_LONG, p);
  out.seg = seg >= 0 ? seg : defSeg;
  out.segOverride = seg >= 0;
  out.len = p;
  return out;
}

function isLegacyPrefix(b: number): boolean {
  return b === 0x66 || b === 0x67 || b === 0xf2 || b === 0xf3 || b === 0xf0 || b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65;
}

function read32(byteAt: (i: number) => number, p: number): number {
  return byteAt(p) | (byteAt(p + 1) << 8) | (byteAt(p + 2) << 16) | (byteAt(p + 3) << 24);
}

function fail(out: Insn, kind: number, len: number): Insn {
  out.enc = null; out.error = kind; out.len = Math.min(len, 15); out.mnemonic = '(bad)';
  return out;
}

/** VEX (C4/C5) and EVEX (62): length only, mnemonic 'vex'/'evex'. Not executed: AVX is not advertised. */
function decodeVex(byteAt: (i: number) => number, mode: number, out: Insn, p: number, kind: number, p67: boolean): Insn {
  let map: number;
  if (kind === 0xc5) { map = 1; p += 2; } else if (kind === 0xc4) { map = byteAt(p + 1) & 0x1f; p += 3; } else { map = byteAt(p + 1) & 7; p += 4; }
  const op = byteAt(p++);
  const noModrm = kind !== 0x62 && map === 1 && op === 0x77;
  if (!noModrm) {
    const modrm = byteAt(p++);
    const mod = modrm >> 6, rm = modrm & 7;
    const as = mode === 64 ? (p67 ? 4 : 8) : mode === 32 ? (p67 ? 2 : 4) : (p67 ? 4 : 2);
    if (mod !== 3) {
      if (as === 2) { if (mod === 0 && rm === 6) p += 2; else p += mod === 1 ? 1 : mod === 2 ? 2 : 0; } else {
        let ds = mod === 1 ? 1 : mod === 2 ? 4 : 0;
        if (rm === 4) { const sib = byteAt(p++); if ((sib & 7) === 5 && mod === 0) ds = 4; } else if (rm === 5 && mod === 0) ds = 4;
        p += ds;
      }
    }
  }
  if (map === 3 || (map === 1 && ((op >= 0x70 && op <= 0x73) || op === 0xc2 || op === 0xc4 || op === 0xc5 || op === 0xc6))) p += 1;
  out.enc = null; out.error = DECODE_UD; out.vex = kind; out.len = p; out.mnemonic = kind === 0x62 ? 'evex' : 'vex';
  return out;
}
