/**
 * Handler registry: exec modules register semantics under the encoding keys of decoder/opcodes.ts
 * ("mnemonic operands", e.g. "add Ev,Gv") or under a bare mnemonic (covers every form).
 */
import type { Cpu } from '../cpu.js';
import type { Insn } from '../decoder/decode.js';
import type { Encoding } from '../decoder/table.js';

export type ExecFn = (cpu: Cpu, insn: Insn) => void;

const byKey = new Map<string, ExecFn>();
const bound = new Map<number, ExecFn | null>();

/** Register `fn` for each key (a full "mnemonic operands" key or a bare mnemonic). */
export function def(keys: string | string[], fn: ExecFn): void {
  for (const k of Array.isArray(keys) ? keys : [keys]) {
    if (byKey.has(k)) throw new Error(`cpu: duplicate handler for '${k}'`);
    byKey.set(k, fn);
  }
}

/** The handler for an encoding, or null (the instruction raises #UD). */
export function bindHandler(enc: Encoding): ExecFn | null {
  let fn = bound.get(enc.id);
  if (fn === undefined) {
    fn = byKey.get(enc.key) ?? byKey.get(enc.mnemonic) ?? byKey.get(enc.key.split(' ')[0]!) ?? null;
    bound.set(enc.id, fn);
  }
  return fn;
}

/** Every registered key (for coverage reports). */
export function registeredKeys(): string[] {
  return [...byKey.keys()];
}
