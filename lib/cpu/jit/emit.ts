/**
 * Inline JS for the most frequent instruction forms in 64-bit mode (the block translator's fast path). Each
 * emitter mirrors its handler in lib/cpu/exec exactly — same helpers (alu, push, pop, condition), same order of
 * memory accesses and register writes — with the operand decoding (register numbers, sizes, displacement,
 * immediates, branch offsets) done at translation time. Forms without an emitter run through their handler.
 *
 * Names available to the emitted code: c (the Cpu), L/H (c.lo/c.hi), f (c.lf), r (RIP at block entry), and the
 * helpers passed by block-compiler.ts (alu, push, pop, cond, getCF). `dNext` is the offset of the instruction's
 * end from the block start; c.nextRip already holds r + dNext when the code runs.
 */
import type { Insn } from '../decoder/decode.js';

const ALU_OPS: Record<string, number> = { add: 0, or: 1, adc: 2, sbb: 3, and: 4, sub: 5, xor: 6, cmp: 7 };
const SHIFT_OPS: Record<string, number> = { rol: 0, ror: 1, rcl: 2, rcr: 3, shl: 4, shr: 5, sal: 6, sar: 7 };

/** Code computing the 64-bit effective address of i's memory operand: low sum in `s` (mod 2^32 later), high half in `hh`. */
function eaCode(i: Insn): string {
  const lo: string[] = [String(i.disp >>> 0)];
  const hi: string[] = [String(i.dispHi | 0)];
  if (i.ripRel) { lo.push('(c.nextRip >>> 0)'); hi.push('Math.floor(c.nextRip / 4294967296)'); }
  if (i.base >= 0) { lo.push(`(L[${i.base}] >>> 0)`); hi.push(`H[${i.base}]`); }
  if (i.index >= 0) { lo.push(`(L[${i.index}] >>> 0) * ${1 << i.scale}`); hi.push(`(H[${i.index}] << ${i.scale})`); }
  return `s = ${lo.join(' + ')}; hh = (${hi.join(' + ')} + Math.floor(s / 4294967296)) | 0;`;
}

/** Code computing the 64-bit-mode linear address of i's memory operand into `a` (as the interpreter's linear()). */
function linearCode(i: Insn, os: number): string {
  let code = `${eaCode(i)} a = hh * 4294967296 + (s >>> 0);`;
  if (i.seg >= 4) code += ` a += c.segBase[${i.seg}];`;
  // Non-canonical (fault or wrap-around): let the interpreter's path decide.
  code += ` if (a < -140737488355328 || a >= 140737488355328) a = c.linear(i$, ${os});`;
  return code;
}

function readCode(os: number): string {
  return os === 8 ? 'c.read64(a)' : os === 4 ? 'c.read32(a)' : os === 2 ? 'c.read16(a)' : 'c.read8(a)';
}

/** Statement setting register `reg` (os 4 or 8) from expression v (lo) and vh (hi, os 8 only). */
function setReg(reg: number, os: number, v: string, vh: string): string {
  return os === 8 ? `L[${reg}] = ${v}; H[${reg}] = ${vh};` : `L[${reg}] = ${v}; H[${reg}] = 0;`;
}

/**
 * Inline code for instruction `i` (k = its index in the block, `dNext` its end offset), or null when it should
 * run through its handler. `i$` in the returned code stands for the instruction object (i<k>).
 */
export function emitInline(i: Insn, dNext: number): string | null {
  if (i.mode !== 64 || i.enc === null || i.lock) return null;
  const key = i.enc.key;
  const sp = key.indexOf(' ');
  const m = sp < 0 ? key : key.slice(0, sp);
  const ops = sp < 0 ? '' : key.slice(sp + 1);
  const os = i.os;
  const wide = os === 8 || os === 4;
  const mem = i.isMem && i.as === 8;
  if (i.isMem && i.as !== 8) return null;
  switch (m) {
    case 'jcc':
      return `if (cond(f, ${i.cc})) c.nextRip = r + ${dNext + i.imm};`;
    case 'jmp':
      if (ops === 'Jb' || ops === 'Jz') return `c.nextRip = r + ${dNext + i.imm};`;
      return null;
    case 'call':
      if (ops !== 'Jz' || os !== 8) return null;
      return `{ const t = c.nextRip; push(c, 8, t >>> 0 | 0, Math.floor(t / 4294967296) | 0); c.nextRip = r + ${dNext + i.imm}; }`;
    case 'push':
      if (ops !== 'Zv' || os !== 8) return null;
      return `push(c, 8, L[${i.reg}], H[${i.reg}]);`;
    case 'pop':
      if (ops !== 'Zv' || os !== 8) return null;
      return `{ const v = pop(c, 8); L[${i.reg}] = v; H[${i.reg}] = c.tHi; }`;
    case 'movzx': case 'movsx': case 'movsxd': {
      if (!wide) return null;
      const src = ops === 'Gv,Eb' ? 1 : ops === 'Gv,Ew' ? 2 : 4;
      const v = mem ? `${linearCode(i, src)} const v0 = ${readCode(src)};` : `const v0 = c.getReg(${i.rm}, ${src});`;
      if (m === 'movzx') return `{ ${v} ${setReg(i.reg, os, 'v0', '0')} }`;
      const sx = src === 1 ? '(v0 << 24) >> 24' : src === 2 ? '(v0 << 16) >> 16' : 'v0 | 0';
      return `{ ${v} const v = ${sx}; ${setReg(i.reg, os, 'v', 'v >> 31')} }`;
    }
    case 'mov':
      if (os === 1 && ops === 'Eb,Gb') return mem ? `${linearCode(i, 1)} c.write8(a, c.getReg(${i.reg}, 1));` : `c.setReg(${i.rm}, 1, c.getReg(${i.reg}, 1), 0);`;
      if (os === 1 && ops === 'Gb,Eb') return mem ? `${linearCode(i, 1)} c.setReg(${i.reg}, 1, c.read8(a), 0);` : `c.setReg(${i.reg}, 1, c.getReg(${i.rm}, 1), 0);`;
      if (!wide) return null;
      if (ops === 'Ev,Gv') {
        if (!mem) return setReg(i.rm, os, `L[${i.reg}]`, `H[${i.reg}]`);
        return `${linearCode(i, os)} ${os === 8 ? `c.write64(a, L[${i.reg}], H[${i.reg}]);` : `c.write32(a, L[${i.reg}]);`}`;
      }
      if (ops === 'Gv,Ev') {
        if (!mem) return setReg(i.reg, os, `L[${i.rm}]`, `H[${i.rm}]`);
        return `${linearCode(i, os)} { const v = ${readCode(os)}; ${setReg(i.reg, os, 'v', 'c.tHi')} }`;
      }
      if (ops === 'Zv,Iv') return setReg(i.reg, os, String(i.imm | 0), String(i.immHi | 0));
      return null;
    case 'lea':
      if (!wide || !mem) return null;
      // LEA keeps the effective address (no segment base, no canonical check).
      return `${eaCode(i)} L[${i.reg}] = s | 0; H[${i.reg}] = ${os === 8 ? 'hh' : '0'};`;
    case 'inc': case 'dec': {
      if (!wide || mem || ops !== 'Ev') return null;
      const op = m === 'dec' ? 5 : 0;
      const lf = m === 'dec' ? 6 : 5;
      return `{ const cf = getCF(f) ? 1 : 0; const v = alu(c, ${op}, ${os}, L[${i.rm}], H[${i.rm}], 1, 0); f.op = ${lf}; f.aux = cf; ${setReg(i.rm, os, 'v', 'c.tHi')} }`;
    }
    case 'test':
      if (!wide || mem || ops !== 'Ev,Gv') return null;
      return `alu(c, 4, ${os}, L[${i.rm}], H[${i.rm}], L[${i.reg}], H[${i.reg}]);`;
    case 'rol': case 'ror': case 'rcl': case 'rcr': case 'shl': case 'shr': case 'sal': case 'sar': {
      if (!wide) return null;
      const count = ops === 'Ev,Ib' ? String(i.imm & 0xff) : ops === 'Ev,1' ? '1' : ops === 'Ev,CL' ? '(L[1] & 255)' : null;
      if (count === null) return null;
      const k = SHIFT_OPS[m]!;
      if (!mem) return `{ const v = shiftOp(c, ${k}, ${os}, L[${i.rm}], H[${i.rm}], ${count}); ${setReg(i.rm, os, 'v', 'c.tHi')} }`;
      const wr = os === 8 ? 'c.write64(a, v, c.tHi);' : 'c.write32(a, v);';
      return `${linearCode(i, os)} c.probeWrite(a, ${os}); { const d = ${readCode(os)}; const v = shiftOp(c, ${k}, ${os}, d, c.tHi, ${count}); ${wr} }`;
    }
    default: {
      const op = ALU_OPS[m];
      if (op === undefined || !wide) return null;
      const store = op !== 7;
      if (ops === 'Ev,Gv' || ops === 'Ev,Ib' || ops === 'Ev,Iz') {
        const src = ops === 'Ev,Gv' ? `L[${i.reg}], H[${i.reg}]` : `${i.imm | 0}, ${i.imm >> 31}`;
        if (!mem) {
          const call = `alu(c, ${op}, ${os}, L[${i.rm}], H[${i.rm}], ${src})`;
          return store ? `{ const v = ${call}; ${setReg(i.rm, os, 'v', 'c.tHi')} }` : `${call};`;
        }
        const wr = store ? (os === 8 ? 'c.write64(a, v, c.tHi);' : 'c.write32(a, v);') : '';
        return `${linearCode(i, os)} ${store ? `c.probeWrite(a, ${os}); ` : ''}{ const d = ${readCode(os)}; const v = alu(c, ${op}, ${os}, d, c.tHi, ${src}); ${wr} }`;
      }
      if (ops === 'Gv,Ev') {
        if (!mem) {
          const call = `alu(c, ${op}, ${os}, L[${i.reg}], H[${i.reg}], L[${i.rm}], H[${i.rm}])`;
          return store ? `{ const v = ${call}; ${setReg(i.reg, os, 'v', 'c.tHi')} }` : `${call};`;
        }
        return `${linearCode(i, os)} { const s2 = ${readCode(os)}; const sh = c.tHi; const v = alu(c, ${op}, ${os}, L[${i.reg}], H[${i.reg}], s2, sh); ${store ? setReg(i.reg, os, 'v', 'c.tHi') : ''} }`;
      }
      return null;
    }
  }
}
