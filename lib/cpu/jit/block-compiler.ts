/**
 * Block translator: turns a run of decoded instructions that follow each other in one physical page into one JS
 * function (new Function) that calls each instruction's handler directly. Every call site in the generated code
 * sees a single handler, so V8 can inline the handlers, and the run loop's per-instruction work (successor links,
 * boundary checks) is paid once per block.
 *
 * Precise state: RIP and the instruction count are committed after every instruction, exactly as the run loop
 * does, so an exception raised by any handler leaves the CPU as if it had executed instruction by instruction.
 * After an instruction that accesses memory, the block exits early when the code epoch moved (it wrote a code
 * page, possibly this block's) or a device asked the CPU to stop.
 *
 * A block belongs to its first decoded instruction: it dies with the physical page's decoded code (writes to the
 * page drop it), and it holds no per-CPU state, so CPUs sharing the decoded-code cache share the blocks too.
 */
import type { CompiledBlock, Insn } from '../decoder/decode.js';
import { push, pop } from '../exec/control.js';
import { alu, shiftOp } from '../exec/integer.js';
import { condition, getCF } from '../flags.js';
import { blockRole, touchesMemory } from './eligible.js';
import { emitInline } from './emit.js';

/** Longest block (instructions); keeps generated functions small enough for V8 to optimize quickly. */
const MAX_BLOCK = 32;

/** The instructions a block starting at `head` would contain (at least two, else null). */
export function collectBlock(head: Insn): Insn[] | null {
  const page = head.page;
  if (page === null) return null;
  const out: Insn[] = [];
  let cur: Insn | undefined = head;
  while (cur !== undefined && out.length < MAX_BLOCK) {
    // Only instructions still cached at their own offset of this page, decoded in the same mode.
    if (cur.page !== page || page[cur.off] !== cur || cur.mode !== head.mode) break;
    const role = blockRole(cur);
    if (role === 0) break;
    out.push(cur);
    if (role === 2) break;
    const o: number = cur.off + cur.len;
    if (o >= 4096) break;
    cur = page[o];
  }
  return out.length >= 2 ? out : null;
}

/** Helpers the generated code calls (the same ones the handlers use). */
const HELPER_NAMES = ['alu', 'shiftOp', 'push', 'pop', 'cond', 'getCF'];
const HELPERS = [alu, shiftOp, push, pop, condition, getCF];

/** Self-looping blocks run at most this many iterations per call, so the run loop still polls for interrupts. */
const MAX_LOOPS = 64;

/**
 * Compile a block starting at `head`, or null when no block of two or more instructions can start there. The
 * returned function takes the CPU and the instruction count it must not pass (the run loop's budget).
 */
export function compileBlock(head: Insn): CompiledBlock | null {
  const insns = collectBlock(head);
  if (insns === null) return null;
  const mode = head.mode;
  const n = insns.length;
  const params: string[] = [...HELPER_NAMES];
  const args: unknown[] = [...HELPERS];
  const body: string[] = [];
  let d = 0;
  let loops = false;
  insns.forEach((i, k) => {
    params.push(`h${k}`, `i${k}`);
    args.push(i.h, i);
    d += i.len;
    const next = mode === 64 ? `r + ${d}` : mode === 32 ? `(r + ${d}) >>> 0` : `(r + ${d}) & 65535`;
    const inline = emitInline(i, d);
    if (k === n - 1) {
      body.push(`c.blockFall = ${next};`);
      // A branch back to the block's own start (a tight loop): iterate inside the function.
      loops = mode === 64 && inline !== null && (i.enc!.key.startsWith('jcc ') || i.enc!.key.startsWith('jmp J')) && d + i.imm === 0;
    }
    body.push(`c.nextRip = ${next}; ${inline === null ? `h${k}(c, i${k});` : inline.replaceAll('i$', `i${k}`)} c.rip = c.nextRip; c.icount++;`);
    if (k < n - 1 && touchesMemory(i)) body.push(`if (c.codeEpoch !== e || c.stopRequest !== null) { c.blockFall = c.rip; return i${k}; }`);
  });
  const head0 = 'const r = c.rip, e = c.codeEpoch, L = c.lo, H = c.hi, f = c.lf; let s = 0, hh = 0, a = 0;';
  const code = loops
    ? `${head0}\nfor (let it = 1; ; it++) {\n${body.join('\n')}\nif (c.rip !== r || it >= ${MAX_LOOPS} || c.icount + ${n} > limit || c.codeEpoch !== e || c.stopRequest !== null) return i${n - 1};\n}`
    : `${head0}\n${body.join('\n')}\nreturn i${n - 1};`;
  const factory = new Function(...params, `return function block(c, limit) {\n${code}\n};`) as (...a: unknown[]) => (c: object, limit: number) => Insn;
  return { n, run: factory(...args) };
}
