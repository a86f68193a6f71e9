/** Opcode identities for coverage counts, and readable case descriptions (objdump disassembly when available). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Encoding } from '../decoder/table.js';
import type { DiffCase } from './generate.js';

/** map + opcode byte + mandatory prefix + ModRM.reg where it selects the instruction. */
export function opcodeKey(e: Encoding): string {
  const map = ['', '0f ', '0f38 ', '0f3a '][e.map]!;
  const pfx = e.pfx === -1 ? '' : e.pfx === 0 ? 'NP ' : e.pfx.toString(16) + ' ';
  const reg = e.exact >= 0 ? ` =${e.exact.toString(16)}` : e.reg >= 0 ? ` /${e.reg}` : '';
  const op = e.plusR || e.cc >= 0 ? e.opcode & ~(e.plusR ? 7 : 15) : e.opcode;
  return `${pfx}${map}${op.toString(16).padStart(2, '0')}${reg}${e.mod === 3 && e.exact < 0 ? '.r' : e.mod === 0 ? '.m' : ''}`;
}

let objdumpOk: boolean | undefined;
/** objdump -D of the case bytes (Intel syntax), or null without binutils. */
export function disassemble(code: Uint8Array): string | null {
  if (objdumpOk === false) return null;
  const dir = mkdtempSync(join(tmpdir(), 'kvm-diff-'));
  try {
    const f = join(dir, 'c.bin');
    writeFileSync(f, code);
    const out = execFileSync('objdump', ['-D', '-b', 'binary', '-m', 'i386:x86-64', '-M', 'intel', '--adjust-vma=0x10000', f]).toString();
    objdumpOk = true;
    return out.split('\n').filter((l) => /^\s+[0-9a-f]+:/.test(l)).join('\n');
  } catch {
    objdumpOk = false;
    return null;
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

export function describeCase(c: DiffCase, diffs: string[]): string {
  const hex = (v: bigint) => '0x' + v.toString(16);
  const lines = [`case seed ${c.seed}: ${c.insns.map((i) => `${i.enc.key} [${Buffer.from(c.code.subarray(i.offset, i.offset + i.length)).toString('hex')}]`).join('; ')}`];
  const dis = disassemble(c.code.subarray(0, c.insns.length ? c.insns[c.insns.length - 1]!.offset + c.insns[c.insns.length - 1]!.length : 0));
  if (dis) lines.push(dis);
  lines.push(`initial: ${Object.entries(c.regs).map(([k, v]) => `${k}=${hex(v)}`).join(' ')} mxcsr=${c.fpu.mxcsr.toString(16)} fcw=${c.fpu.fcw.toString(16)}`);
  lines.push(...diffs.map((d) => '  ' + d));
  return lines.join('\n');
}
