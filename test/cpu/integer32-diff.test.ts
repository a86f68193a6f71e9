/**
 * 32-bit protected mode (flat, CPL0 in the interpreter; a native i386 process on the host) vs the host CPU:
 * default 32-bit operand size, 66/67 prefixes, 16-bit addressing, PUSHA/POPA, BCD, string ops with ESI/EDI.
 */
import { describe, expect, it } from 'vitest';
import { type DiffCase, nativeDiffUnavailable, Rng, runDiff } from './native-diff.js';

const unavailable = nativeDiffUnavailable(32);
if (unavailable) console.warn(unavailable);

const CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800, IF = 0x200;
const ALL = CF | PF | AF | ZF | SF | OF;
const R = { 8: ['al', 'bl', 'cl', 'dl', 'ah', 'bh', 'dh'], 16: ['ax', 'bx', 'cx', 'dx', 'si', 'di'], 32: ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi'] } as const;
const PTR = { 8: 'byte', 16: 'word', 32: 'dword' } as const;

function pick<T>(rng: Rng, a: readonly T[]): T { return a[rng.int(a.length)]!; }

function gen(seed: number, count: number, make: (rng: Rng) => { asm: string; undef: number; regs?: bigint[] }): DiffCase[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const t = make(rng);
    return { asm: t.asm, regs: t.regs ?? Array.from({ length: 7 }, () => rng.value()), flags: Number(rng.next() & 0x8d5n),
      mem: [rng.value(), rng.value(), rng.value(), rng.value()], undefinedFlags: t.undef | IF, label: `${k}: ${t.asm.replace(/\n/g, '; ')}` };
  });
}

function check(cases: DiffCase[]): void {
  const bad = runDiff(cases, 32);
  expect(bad.slice(0, 20).map((m) => `${m.label} ${m.field}: native 0x${m.native.toString(16)} interp 0x${m.interp.toString(16)}`)).toEqual([]);
}

describe.skipIf(unavailable !== null)('32-bit protected mode vs native i386', () => {
  it('ALU, shifts, multiply, bit ops at 8/16/32 bits', () => {
    check(gen(21, 600, (rng) => {
      const sz = pick(rng, [8, 16, 32] as const);
      const a = pick(rng, R[sz]), b = pick(rng, R[sz]);
      const k = rng.int(8);
      const alu = pick(rng, ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp']);
      switch (k) {
        case 0: return { asm: `${alu} ${a}, ${b}`, undef: ['or', 'and', 'xor'].includes(alu) ? AF : 0 };
        case 1: return { asm: `${alu} ${PTR[sz]} ptr [scratch + 4], ${rng.int(100)}`, undef: ['or', 'and', 'xor'].includes(alu) ? AF : 0 };
        case 2: { const n = 1 + rng.int(31); return { asm: `${pick(rng, ['shl', 'shr', 'sar', 'rol', 'ror'])} ${a}, ${n}`, undef: AF | OF | (sz < 32 && n >= sz ? CF : 0) }; }
        case 3: return sz === 8 ? { asm: 'nop', undef: 0 } : { asm: `imul ${a}, ${b}`, undef: SF | ZF | AF | PF };
        case 4: return { asm: `mul ${sz === 8 ? 'bl' : sz === 16 ? 'bx' : 'ebx'}`, undef: SF | ZF | AF | PF };
        case 5: return sz === 8 ? { asm: 'nop', undef: 0 } : { asm: `${pick(rng, ['bt', 'bts', 'btr', 'btc'])} ${a}, ${rng.int(32)}`, undef: OF | SF | AF | PF | ZF };
        case 6: return { asm: `${pick(rng, ['inc', 'dec', 'neg', 'not'])} ${a}`, undef: 0 };
        default: return { asm: pick(rng, ['cbw', 'cwde', 'cwd', 'cdq', 'movzx eax, bl', 'movsx ecx, dx', 'movsx ax, bl', 'xchg eax, ebx', 'bswap ecx', 'lea eax, [ebx + ecx*4 + 7]', 'lea ax, [bx + si + 3]', 'lea eax, [bx + di]']), undef: 0 };
      }
    }));
  });

  it('stack, PUSHA/POPA, ENTER/LEAVE, flags, BCD', () => {
    check(gen(22, 200, (rng) => {
      const k = rng.int(7);
      switch (k) {
        case 0: return { asm: 'mov ebp, esp\npusha\nmov eax, 1\nmov ebx, 2\npopa\nmov ebp, 0', undef: 0 };
        case 1: return { asm: 'mov ecx, esp\nenter 16, 0\nmov dword ptr [ebp - 4], eax\nmov edx, [ebp-4]\nleave\nsub ecx, esp', undef: 0 };
        case 2: return { asm: 'push eax\npush word ptr [scratch]\npop bx\npop ecx\npushfd\npop edx\nand edx, ~0x200', undef: 0 }; // IF differs: CPL3 native vs CLI'd CPL0 interpreter
        case 3: {
          const op = pick(rng, ['daa', 'das', 'aaa', 'aas', 'aam', 'aad']);
          const undef = op === 'daa' || op === 'das' ? OF : op === 'aaa' || op === 'aas' ? OF | SF | ZF | PF : OF | AF | CF;
          return { asm: op, undef };
        }
        case 4: return { asm: pick(rng, ['lahf\nxchg al, ah\nsahf', 'arpl word ptr [scratch], bx\nsetz al', 'arpl cx, dx\nsetnz bl', 'mov dword ptr [scratch], -100\nmov dword ptr [scratch+4], 100\nand eax, 63\nbound eax, [scratch]']), undef: 0 };
        case 5: return { asm: `mov ecx, ${rng.int(5)}\nlea esi, [scratch]\nlea edi, [scratch + 12]\nrep movsb\nlea edi, [scratch + 3]\nmov ecx, 2\nrepne scasb`, undef: 0 };
        default: return { asm: 'mov ecx, 3\nlea esi, [scratch]\nlea edi, [scratch+8]\nrepe cmpsw\nsetz al\nlea ebx, [scratch]\nand eax, 7\nxlatb', undef: 0 };
      }
    }));
  });
});
