/**
 * Which decoded instructions the block translator may put in a block. Only instructions whose handlers can do
 * nothing that needs the run loop between instructions: no mode, CPL, paging, segment, interrupt-flag, shadow or
 * halt changes, no port I/O, no repeated string operations. Control transfers (near jumps, calls, returns and
 * conditional jumps) are allowed as the last instruction of a block only.
 */
import type { Insn } from '../decoder/decode.js';

const STRAIGHT = new Set([
  'add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp', 'test', 'inc', 'dec', 'neg', 'not',
  'shl', 'shr', 'sal', 'sar', 'rol', 'ror', 'mov', 'movzx', 'movsx', 'movsxd', 'lea', 'push', 'pop', 'xchg',
  'imul', 'mul', 'setcc', 'cmovcc', 'cbw', 'cwde', 'cdqe', 'cwd', 'cdq', 'cqo', 'bt', 'bts', 'btr', 'btc',
  'bsf', 'bsr', 'xadd', 'cmpxchg', 'nop', 'endbr64', 'endbr32',
]);
const BRANCH = new Set(['jcc', 'jmp', 'call', 'ret']);
/** Operands that make an otherwise eligible mnemonic touch system state (segment/control/debug registers, far targets). */
const SYSTEM_OPERANDS = new Set(['Sw', 'Cy', 'Dy', 'ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'Ap', 'Mp']);

const verdict = new Map<string, number>();
/** 0: not eligible, 1: straight-line, 2: control transfer (ends a block). */
function classify(key: string): number {
  let v = verdict.get(key);
  if (v === undefined) {
    // The key's first word is the handler's mnemonic ("jcc", "setcc"), not the condition-expanded one.
    const sp = key.indexOf(' ');
    const mnemonic = sp < 0 ? key : key.slice(0, sp);
    const ops = key.includes(' ') ? key.slice(key.indexOf(' ') + 1).split(',') : [];
    if (ops.some((o) => SYSTEM_OPERANDS.has(o))) v = 0;
    else v = STRAIGHT.has(mnemonic) ? 1 : BRANCH.has(mnemonic) ? 2 : 0;
    verdict.set(key, v);
  }
  return v;
}

/** 0: cannot be in a block, 1: may be anywhere in a block, 2: may only end one (a control transfer). */
export function blockRole(i: Insn): number {
  // REP prefixes matter only to string instructions, none of which is eligible.
  if (i.enc === null || i.h === null) return 0;
  return classify(i.enc.key);
}

/** Whether the instruction may access memory (so devices or self-modifying code may need the run loop after it). */
export function touchesMemory(i: Insn): boolean {
  const m = i.enc!.mnemonic;
  if (i.isMem) return m !== 'lea' && m !== 'nop';
  if (/[ ,]O[bv]/.test(i.enc!.key)) return true; // moffs forms (A0-A3) address memory without ModRM
  return m === 'push' || m === 'pop' || m === 'call' || m === 'ret';
}
