/**
 * Compiles the encoding lines of opcodes.ts into lookup tables: for each (map, opcode) the candidate encodings,
 * most specific first. Maps: 0 = one-byte, 1 = 0F, 2 = 0F 38, 3 = 0F 3A.
 */
import { CONDITIONS, encodingLines } from './opcodes.js';

export const enum Pfx { Any = -1, None = 0, P66 = 0x66, F2 = 0xf2, F3 = 0xf3 }
export const enum Imm { None = 0, B, W, Z, V, J8, JZ, Ap, Moffs, Enter }

export const A_I64 = 1, A_O64 = 2, A_D64 = 4, A_F64 = 8, A_LOCK = 16, A_BYTE = 32, A_X87 = 64, A_SSE = 128;

/** One encoding: what the decoder needs to size it and what the executor needs to pick a handler. */
export interface Encoding {
  readonly id: number;
  readonly mnemonic: string;
  /** "mnemonic operands", the key handlers are registered under. */
  readonly key: string;
  readonly map: number;
  readonly opcode: number;
  readonly pfx: number;
  readonly modrm: boolean;
  readonly reg: number;
  /** -1 any, 0 memory only, 3 register only. */
  readonly mod: number;
  readonly exact: number;
  readonly operands: readonly string[];
  readonly attrs: number;
  readonly imms: readonly Imm[];
  /** ModRM.rm names a byte register (Eb), ModRM.reg names a byte register (Gb), opcode register is byte (Zb). */
  readonly eByte: boolean;
  readonly gByte: boolean;
  readonly zByte: boolean;
  /** Opcode-embedded register (+r). */
  readonly plusR: boolean;
  readonly cc: number;
}

const IMM_OF: Record<string, Imm> = { Ib: Imm.B, Iw: Imm.W, Iz: Imm.Z, Iv: Imm.V, Jb: Imm.J8, Jz: Imm.JZ, Ap: Imm.Ap, Ob: Imm.Moffs, Ov: Imm.Moffs };
const BYTE_FIRST = new Set(['Eb', 'Gb', 'AL', 'Zb', 'Ob', 'Xb', 'Yb']);

export const encodings: Encoding[] = [];
/** candidates[map * 256 + opcode] */
export const candidates: Encoding[][] = [];
/** Which mandatory prefixes have encodings, per (map, opcode): bit0 NP, bit1 66, bit2 F2, bit3 F3. */
export const mandatoryMask = new Uint8Array(4 * 256);
export const hasModrm = new Uint8Array(4 * 256);

function parseHex(s: string): number {
  const v = parseInt(s, 16);
  if (!/^[0-9A-Fa-f]{2}$/.test(s) || Number.isNaN(v)) throw new Error(`opcode table: bad hex byte '${s}'`);
  return v;
}

function addEncoding(line: string): void {
  const [spec, mnemonic, ops = '', attrText = ''] = line.split('|').map((s) => s.trim()) as [string, string, string?, string?];
  const words = spec.split(/\s+/);
  let pfx: number = Pfx.Any;
  if (words[0] === 'NP') { pfx = Pfx.None; words.shift(); } else if (words.length > 1 && ['66', 'F2', 'F3'].includes(words[0]!)) {
    pfx = parseHex(words.shift()!);
  }
  let map = 0;
  if (words[0] === '0F') {
    words.shift(); map = 1;
    const next: string | undefined = words[0];
    if (next === '38' && words.length > 1) { words.shift(); map = 2; } else if (next === '3A' && words.length > 1) { words.shift(); map = 3; }
  }
  const opText = words.shift();
  if (!opText) throw new Error(`opcode table: no opcode in '${line}'`);
  let count = 1, plusR = false, isCc = false;
  let base: number;
  if (opText.endsWith('+r')) { base = parseHex(opText.slice(0, -2)); count = 8; plusR = true; } else if (opText.endsWith('+cc')) { base = parseHex(opText.slice(0, -3)); count = 16; isCc = true; } else base = parseHex(opText);
  let modrm = false, reg = -1, mod = -1, exact = -1;
  for (const w of words) {
    if (w === '/r') modrm = true;
    else if (w === '/r.m') { modrm = true; mod = 0; } else if (w === '/r.r') { modrm = true; mod = 3; } else if (/^\/[0-7](\.[mr])?$/.test(w)) {
      modrm = true; reg = Number(w[1]);
      if (w.endsWith('.m')) mod = 0; else if (w.endsWith('.r')) mod = 3;
    } else if (w.startsWith('=')) { modrm = true; exact = parseHex(w.slice(1)); reg = (exact >> 3) & 7; mod = 3; } else throw new Error(`opcode table: bad token '${w}' in '${line}'`);
  }
  const operands = ops ? ops.split(',') : [];
  let attrs = 0;
  for (const a of attrText.split(/\s+/).filter(Boolean)) {
    const bit = { i64: A_I64, o64: A_O64, d64: A_D64, f64: A_F64, lock: A_LOCK, b: A_BYTE, x87: A_X87, sse: A_SSE }[a];
    if (bit === undefined) throw new Error(`opcode table: bad attribute '${a}' in '${line}'`);
    attrs |= bit;
  }
  if (operands[0] && BYTE_FIRST.has(operands[0])) attrs |= A_BYTE;
  if (map > 0 && operands.some((o) => /^[VWUPQN]/.test(o))) attrs |= A_SSE;
  const imms: Imm[] = [];
  if (mnemonic === 'enter') imms.push(Imm.Enter);
  else for (const o of operands) { const k = IMM_OF[o]; if (k !== undefined) imms.push(k); }
  for (let k = 0; k < count; k++) {
    const opcode = base + k;
    const name = isCc ? mnemonic.replace('cc', CONDITIONS[k]!) : mnemonic;
    const enc: Encoding = {
      id: encodings.length, mnemonic: name, key: `${isCc ? mnemonic : name} ${operands.join(',')}`.trim(), map, opcode, pfx, modrm, reg, mod, exact,
      operands, attrs, imms, eByte: operands.includes('Eb'), gByte: operands.includes('Gb'), zByte: operands.includes('Zb'),
      plusR, cc: isCc ? k : -1,
    };
    encodings.push(enc);
    const slot = map * 256 + opcode;
    (candidates[slot] ??= []).push(enc);
    if (pfx !== Pfx.Any) mandatoryMask[slot]! |= pfx === Pfx.None ? 1 : pfx === 0x66 ? 2 : pfx === 0xf2 ? 4 : 8;
    if (modrm) hasModrm[slot] = 1;
  }
}

function specificity(e: Encoding): number {
  return (e.pfx !== Pfx.Any ? 8 : 0) + (e.exact >= 0 ? 4 : 0) + (e.reg >= 0 ? 2 : 0) + (e.mod >= 0 ? 1 : 0);
}

for (const line of encodingLines()) addEncoding(line);
for (const list of candidates) if (list) list.sort((a, b) => specificity(b) - specificity(a) || a.id - b.id);
