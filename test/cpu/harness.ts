/**
 * Test harness: assembles guest code with GNU as (binutils, also needed by the decoder oracle) and builds
 * small machines around the interpreter: flat 64-bit long mode with identity-mapped 2 MiB pages, or raw modes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cpu, type CpuOptions } from '../../lib/cpu/cpu.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';

/** Assemble Intel-syntax source at `origin` for a 16/32/64-bit code model; returns the flat binary. */
export function assemble(source: string, bits: 16 | 32 | 64, origin = 0): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-asm-'));
  try {
    const src = join(dir, 'a.s'), obj = join(dir, 'a.o'), elf = join(dir, 'a.elf'), bin = join(dir, 'a.bin');
    writeFileSync(src, `.intel_syntax noprefix\n.code${bits}\n${source}\n`);
    execFileSync('as', ['--64', '-o', obj, src]); // --64 objects accept .code16/.code32 sections too
    execFileSync('ld', ['-Ttext', `0x${origin.toString(16)}`, '-e', `0x${origin.toString(16)}`, '--oformat', 'binary', '-o', bin, obj]);
    void elf;
    return new Uint8Array(readFileSync(bin));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const PML4 = 0x1000;

/** Identity-map the first `gib` GiB with 2 MiB pages (PML4 at 0x1000, PDPT 0x2000, PDs from 0x3000). */
export function identityMap(mem: GuestMemory, gib = 1, user = true): void {
  const u = user ? 4 : 0;
  mem.writeU32(PML4, 0x2000 | 3 | u);
  for (let g = 0; g < gib; g++) {
    const pd = 0x3000 + g * 0x1000;
    mem.writeU32(0x2000 + g * 8, pd | 3 | u);
    for (let k = 0; k < 512; k++) {
      const addr = g * 0x40000000 + k * 0x200000;
      mem.writeU32(pd + k * 8, (addr | 0x83 | u) >>> 0);
      mem.writeU32(pd + k * 8 + 4, 0);
    }
  }
}

/** A CPU in flat 64-bit long mode (CPL0) with identity paging, code loaded at `origin`. */
export function longModeCpu(code: Uint8Array, origin = 0x100000, memSize = 16 << 20, opts: Partial<CpuOptions> = {}): Cpu {
  const mem = GuestMemory.ofSize(memSize);
  identityMap(mem);
  mem.write(origin, code);
  const cpu = new Cpu({ memory: mem, mode: 'long64', ...opts });
  cpu.cr3 = PML4;
  cpu.rip = origin;
  cpu.setReg(4, 8, 0x80000, 0);
  return cpu;
}

export function reg64(cpu: Cpu, r: number): bigint {
  return (BigInt(cpu.hi[r]! >>> 0) << 32n) | BigInt(cpu.lo[r]! >>> 0);
}
