/**
 * Differential testing against the host CPU: a batch of test cases is assembled into one static x86-64 Linux
 * program. Each case loads registers and flags, runs the instruction(s) under test and stores every register,
 * RFLAGS and a 32-byte memory scratch area into its result slot. The program runs natively as a host process
 * (writing the result area to stdout) and in the interpreter (loaded from the same ELF, run to the end label);
 * the two result areas are compared, masking the flags the architecture leaves undefined for that case.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cpu } from '../../lib/cpu/cpu.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { identityMap, PML4 } from './harness.js';

export interface DiffCase {
  /** Instruction(s) under test, Intel syntax; may reference `scratch` (32 bytes, also compared). */
  asm: string;
  /** Initial values for rax, rbx, rcx, rdx, rsi, rdi, rbp, r8-r15 (missing → 0). */
  regs: bigint[];
  /** Initial arithmetic flags (CF PF AF ZF SF OF bits). */
  flags: number;
  /** Initial scratch memory: 4 qwords. */
  mem?: bigint[];
  /** RFLAGS bits not compared (architecturally undefined for this case). */
  undefinedFlags: number;
  label: string;
}

let bits: 32 | 64 = 64;
const REGS64 = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const REGS32 = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'];
let REGS = REGS64;
/** Per-case slot (8-byte fields): the registers + RFLAGS + 4 scratch qwords. */
let SLOT = (REGS.length + 1 + 4) * 8;

function hex(v: bigint): string {
  return '0x' + BigInt.asUintN(64, v).toString(16);
}

function caseAsm(c: DiffCase, k: number): string {
  const base = k * SLOT;
  const lines: string[] = [];
  if (bits === 64) {
    (c.mem ?? [0n, 0n, 0n, 0n]).forEach((v, q) => { lines.push(`mov rax, ${hex(v)}`, `mov qword ptr [scratch + ${q * 8}], rax`); });
    lines.push(`push ${c.flags & 0xfff & ~0x700}`, 'popfq');
    REGS.forEach((r, q) => lines.push(`mov ${r}, ${hex(c.regs[q] ?? 0n)}`));
  } else {
    (c.mem ?? [0n, 0n, 0n, 0n]).forEach((v, q) => {
      lines.push(`mov dword ptr [scratch + ${q * 8}], ${hex(v & 0xffffffffn)}`, `mov dword ptr [scratch + ${q * 8 + 4}], ${hex(v >> 32n)}`);
    });
    lines.push(`push ${c.flags & 0xfff & ~0x700}`, 'popfd');
    REGS.forEach((r, q) => lines.push(`mov ${r}, ${hex((c.regs[q] ?? 0n) & 0xffffffffn)}`));
  }
  lines.push(`case_${k}:`, c.asm, `case_${k}_end:`);
  if (bits === 64) {
    lines.push('pushfq', `pop qword ptr [results + ${base + REGS.length * 8}]`);
    REGS.forEach((r, q) => lines.push(`mov qword ptr [results + ${base + q * 8}], ${r}`));
    for (let q = 0; q < 4; q++) lines.push(`mov rax, qword ptr [scratch + ${q * 8}]`, `mov qword ptr [results + ${base + (REGS.length + 1 + q) * 8}], rax`);
  } else {
    lines.push('pushfd', `pop dword ptr [results + ${base + REGS.length * 8}]`);
    REGS.forEach((r, q) => lines.push(`mov dword ptr [results + ${base + q * 8}], ${r}`));
    for (let q = 0; q < 8; q++) lines.push(`mov eax, dword ptr [scratch + ${q * 4}]`, `mov dword ptr [results + ${base + (REGS.length + 1) * 8 + q * 4}], eax`);
  }
  return lines.join('\n');
}

export interface DiffMismatch { label: string; field: string; native: bigint; interp: bigint }

function buildProgram(cases: DiffCase[]): string {
  return `
.globl _start
.text
_start:
${cases.map(caseAsm).join('\n')}
done:
${bits === 64 ? `  mov eax, 1
  mov edi, 1
  lea rsi, [results]
  mov edx, ${cases.length * SLOT}
  syscall
  mov eax, 60
  xor edi, edi
  syscall` : `  mov eax, 4
  mov ebx, 1
  lea ecx, [results]
  mov edx, ${cases.length * SLOT}
  int 0x80
  mov eax, 1
  xor ebx, ebx
  int 0x80`}
.data
.balign 64
scratch: .zero 64
.balign 4096
big_buf: .fill 16384, 1, 0x5a
.bss
.balign 64
results: .zero ${cases.length * SLOT}
`;
}

/** Minimal ELF64 PT_LOAD loader and symbol lookup through `nm`. */
function loadElf(path: string, mem: GuestMemory): { entry: number; done: number } {
  const f = readFileSync(path);
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const is32 = f[4] === 1;
  const entry = is32 ? dv.getUint32(24, true) : Number(dv.getBigUint64(24, true));
  const phoff = is32 ? dv.getUint32(28, true) : Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(is32 ? 42 : 54, true), phnum = dv.getUint16(is32 ? 44 : 56, true);
  for (let k = 0; k < phnum; k++) {
    const p = phoff + k * phentsize;
    if (dv.getUint32(p, true) !== 1) continue;
    const off = is32 ? dv.getUint32(p + 4, true) : Number(dv.getBigUint64(p + 8, true));
    const vaddr = is32 ? dv.getUint32(p + 8, true) : Number(dv.getBigUint64(p + 16, true));
    const filesz = is32 ? dv.getUint32(p + 16, true) : Number(dv.getBigUint64(p + 32, true));
    const memsz = is32 ? dv.getUint32(p + 20, true) : Number(dv.getBigUint64(p + 40, true));
    mem.fill(vaddr, memsz, 0);
    mem.write(vaddr, new Uint8Array(f.buffer, f.byteOffset + off, filesz));
  }
  const syms = execFileSync('nm', [path]).toString();
  const m = /^([0-9a-f]+) \w done$/m.exec(syms);
  if (!m) throw new Error('native-diff: no done symbol');
  return { entry, done: parseInt(m[1]!, 16) };
}

/** Run the cases natively and in the interpreter; returns the mismatches (empty when they agree). */
export function runDiff(cases: DiffCase[], mode: 32 | 64 = 64): DiffMismatch[] {
  bits = mode;
  REGS = mode === 64 ? REGS64 : REGS32;
  SLOT = (REGS.length + 1 + 4) * 8;
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-diff-'));
  try {
    const src = join(dir, 'd.s'), obj = join(dir, 'd.o'), exe = join(dir, 'd');
    writeFileSync(src, `.intel_syntax noprefix\n${buildProgram(cases)}`);
    execFileSync('as', [mode === 64 ? '--64' : '--32', '-o', obj, src]);
    execFileSync('ld', ['-static', '-m', mode === 64 ? 'elf_x86_64' : 'elf_i386', '-Ttext', '0x401000', '-o', exe, obj]);
    const native = execFileSync(exe, { maxBuffer: 64 << 20 });
    const mem = GuestMemory.ofSize(64 << 20);
    if (mode === 64) identityMap(mem);
    const { entry, done } = loadElf(exe, mem);
    const cpu = new Cpu({ memory: mem, mode: mode === 64 ? 'long64' : 'protected32' });
    if (mode === 64) cpu.cr3 = PML4;
    cpu.cr4 |= 0x600; // OSFXSR | OSXMMEXCPT, as Linux sets them
    cpu.rip = entry;
    cpu.setReg(4, 8, 0x3f00000, 0);
    const stop = cpu.run({ until: done, maxInstructions: 50_000_000 });
    if (stop.reason !== 'until') throw new Error(`native-diff: interpreter stopped (${JSON.stringify(stop)}) at rip 0x${cpu.rip.toString(16)} before the end`);
    const syms = execFileSync('nm', [exe]).toString();
    const results = parseInt(/^([0-9a-f]+) \w results$/m.exec(syms)![1]!, 16);
    const interp = mem.read(results, cases.length * SLOT);
    const out: DiffMismatch[] = [];
    const nd = new DataView(native.buffer, native.byteOffset, native.byteLength), id = new DataView(interp.buffer);
    cases.forEach((c, k) => {
      for (let q = 0; q < SLOT / 8; q++) {
        let a = nd.getBigUint64(k * SLOT + q * 8, true), b = id.getBigUint64(k * SLOT + q * 8, true);
        if (mode === 32 && q <= REGS.length) { a &= 0xffffffffn; b &= 0xffffffffn; }
        const field = q < REGS.length ? REGS[q]! : q === REGS.length ? 'rflags' : `scratch+${(q - REGS.length - 1) * 8}`;
        if (field === 'rflags') { const m = ~BigInt(c.undefinedFlags) & 0xffffffffn; a &= m; b &= m; }
        if (a !== b) out.push({ label: c.label, field, native: a, interp: b });
      }
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic PRNG (xorshift64*) for test inputs. */
export class Rng {
  private s: bigint;
  constructor(seed: number) { this.s = BigInt(seed) | 1n; }
  next(): bigint {
    let x = this.s;
    x ^= x >> 12n; x ^= (x << 25n) & 0xffffffffffffffffn; x ^= x >> 27n;
    this.s = x;
    return (x * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
  }
  /** Interesting 64-bit values: edges mixed with random ones. */
  value(): bigint {
    const edges = [0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
      0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0x100000000n];
    const r = this.next();
    return r % 3n === 0n ? edges[Number(r % BigInt(edges.length))]! : this.next();
  }
  int(n: number): number { return Number(this.next() % BigInt(n)); }
}

/** Why native differential tests cannot run here (no binutils, or no IA-32 execution for mode 32), or null. */
export function nativeDiffUnavailable(mode: 32 | 64): string | null {
  try {
    runDiff([{ asm: 'nop', regs: [], flags: 0, undefinedFlags: 0, label: 'probe' }], mode);
    return null;
  } catch (e) {
    return `native ${mode}-bit differential tests skipped: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
  }
}
