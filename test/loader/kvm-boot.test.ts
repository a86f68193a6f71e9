/**
 * End to end: kernels built by the real GNU toolchain (as + ld + objcopy), loaded by our loaders, run on the
 * real /dev/kvm from the BootCpuState the loader returned. The guests report what they see (registers, boot
 * parameters read through their own paging/segmentation) with `out` to port 0x500, then halt. This checks
 * that the GDT, page tables, entry registers and tables are right for a CPU, not only for our own decoder.
 * Skipped (with the reason printed) when /dev/kvm or the toolchain is unavailable.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { KvmVcpu } from '../../lib/kvm/index.js';
import type { GuestMemory } from '../../lib/machine/guest-memory.js';
import { loadLinux } from '../../lib/machine/loader/linux.js';
import { loadMultiboot } from '../../lib/machine/loader/multiboot.js';
import { MiB } from '../../lib/machine/layout.js';
import { makeBzImage, pattern } from './images.js';
import { applyBootState, createMachine, type Machine, closeMachine, probe } from './kvm-support.js';

function toolchain(): string | undefined {
  try {
    for (const t of ['as', 'ld', 'objcopy']) execFileSync(t, ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'GNU as/ld/objcopy not installed';
  }
}
const missingTools = toolchain();
const skipReason = !probe.usable ? probe.reason : missingTools;
if (skipReason) console.warn(`[loader kvm-boot tests skipped] ${skipReason}`);

const work = mkdtempSync(join(tmpdir(), 'nodevmm-kvm-boot-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Assembles `source` and links it with `script`; returns the ELF file and its flat binary. */
function build(name: string, source: string, script: string, bits: 32 | 64): { elf: Uint8Array; bin: Uint8Array } {
  const s = join(work, `${name}.S`);
  const o = join(work, `${name}.o`);
  const ld = join(work, `${name}.ld`);
  const elf = join(work, name);
  const bin = join(work, `${name}.bin`);
  writeFileSync(s, source);
  writeFileSync(ld, script);
  execFileSync('as', [bits === 64 ? '--64' : '--32', '-o', o, s]);
  execFileSync('ld', ['-m', bits === 64 ? 'elf_x86_64' : 'elf_i386', '-nostdlib', '-static', '-T', ld, '-o', elf, o]);
  execFileSync('objcopy', ['-O', 'binary', '-j', '.text', elf, bin]);
  return { elf: new Uint8Array(readFileSync(elf)), bin: new Uint8Array(readFileSync(bin)) };
}

/** Runs until HLT, collecting 32-bit `out` values written to port 0x500. */
async function runReports(vcpu: KvmVcpu): Promise<number[]> {
  const seen: number[] = [];
  const exit = await vcpu.runLoop({
    pio: {
      read: () => 0,
      write: (port, _size, value) => { if (port === 0x500) seen.push(value >>> 0); },
    },
  });
  expect(exit.reason).toBe('hlt');
  return seen;
}

// A 64-bit guest: reports e820 count, cmd_line_ptr, the first cmdline dword, the first initrd dword, CS, SS,
// CR0, CR4, EFER (rdmsr), its own RIP, a value round-tripped through the stack, and the dword at the top of RAM.
const LONG_BODY = `
  mov dx, 0x500
  movzx eax, byte ptr [rsi + 0x1e8]
  out dx, eax
  mov eax, [rsi + 0x228]
  out dx, eax
  mov eax, [rax]
  out dx, eax
  mov eax, [rsi + 0x218]
  mov eax, [rax]
  out dx, eax
  mov ax, cs
  movzx eax, ax
  out dx, eax
  mov ax, ss
  movzx eax, ax
  out dx, eax
  mov rax, cr0
  out dx, eax
  mov rax, cr4
  out dx, eax
  mov ecx, 0xc0000080
  rdmsr
  mov dx, 0x500
  out dx, eax
  lea rax, [rip]
  out dx, eax
  push 0x5a5a
  pop rax
  out dx, eax
  mov rax, [rsi + 0x2d0 + 2 * 20 + 8]
  add rax, [rsi + 0x2d0 + 2 * 20]
  mov eax, [rax - 4]
  out dx, eax
  hlt
`;

const LINUX_LIKE_SCRIPT = `
ENTRY(phys_start)
SECTIONS {
  . = 0xffffffff81000000;
  .text : AT(0x1000000) { *(.text) }
  .data : AT(ADDR(.data) - 0xffffffff80000000) { *(.data) }
  .bss : AT(ADDR(.bss) - 0xffffffff80000000) { *(.bss) }
  phys_start = _start - 0xffffffff80000000;
}
`;

describe.skipIf(skipReason !== undefined)(`loaded kernels run on KVM${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let m: Machine | undefined;
  afterEach(() => {
    if (m) closeMachine(m);
    m = undefined;
  });

  const memoryBytes = 64 * MiB;
  const initrd = new Uint8Array([0x11, 0x22, 0x33, 0x44, ...pattern(5000)]);

  function checkLongModeReports(r: number[], mem: GuestMemory, entryRip: number): void {
    const top = memoryBytes - 4;
    expect(r).toEqual([
      3, // e820 entries
      0x20000, // cmd_line_ptr
      0x736e6f63, // "cons"
      0x44332211, // initrd bytes
      0x10, // CS = __BOOT_CS
      0x18, // SS = __BOOT_DS
      0x80000031, // CR0 = PE | ET | NE | PG
      0x20, // CR4 = PAE
      0x500, // EFER = LME | LMA
      expect.any(Number),
      0x5a5a,
      mem.readU32(top),
    ]);
    expect(r[9]).toBeGreaterThan(entryRip);
    expect(r[9]).toBeLessThan(entryRip + 0x100);
  }

  it('an ELF64 vmlinux-style kernel (high virtual, physical 16 MiB) entered in long mode', async () => {
    const k = build('vmlinux64', `.intel_syntax noprefix\n.code64\n.text\n.globl _start\n_start:\n${LONG_BODY}\n.data\n.long 1\n.bss\n.space 0x4000\n`, LINUX_LIKE_SCRIPT, 64);
    m = createMachine(memoryBytes);
    m.mem.writeU32(memoryBytes - 4, 0xc0ffee01);
    const info = loadLinux(m.mem, { kernel: k.elf, kernelPath: 'vmlinux64', initrd, initrdPath: 'initrd', cmdline: 'console=ttyS0', memoryBytes });
    expect(info.format).toBe('elf64');
    expect(info.entry.regs.rip).toBe(0x1000000);
    applyBootState(m.vcpu, info.entry);
    checkLongModeReports(await runReports(m.vcpu), m.mem, 0x1000000);
  });

  it('a 64-bit bzImage entered at startup_64 (load address + 0x200)', async () => {
    const k = build('bz64', `.intel_syntax noprefix\n.code64\n.text\n.globl _start\n_start:\n  hlt\n.org 0x200\n${LONG_BODY}\n`, 'SECTIONS { . = 0x1000000; .text : { *(.text) } }', 64);
    m = createMachine(memoryBytes);
    m.mem.writeU32(memoryBytes - 4, 0xc0ffee02);
    const info = loadLinux(m.mem, { kernel: makeBzImage({ payload: k.bin, initSize: 0x100000 }), kernelPath: 'bz64', initrd, initrdPath: 'initrd', cmdline: 'console=ttyS0', memoryBytes });
    expect(info.entry.mode).toBe('long');
    applyBootState(m.vcpu, info.entry);
    checkLongModeReports(await runReports(m.vcpu), m.mem, info.kernel.start + 0x200);
  });

  // A 32-bit guest for the Linux 32-bit protocol: ESI = boot_params, EBX/EDI/EBP zero, flat segments.
  it('a 32-bit bzImage entered in flat protected mode with ESI = boot_params', async () => {
    const src = `.intel_syntax noprefix
.code32
.text
.globl _start
_start:
  mov dx, 0x500
  mov eax, esi
  out dx, eax
  mov eax, ebx
  or eax, edi
  or eax, ebp
  out dx, eax
  mov eax, [esi + 0x202]
  out dx, eax
  mov eax, [esi + 0x228]
  mov eax, [eax]
  out dx, eax
  mov ax, cs
  movzx eax, ax
  out dx, eax
  mov ax, ds
  movzx eax, ax
  out dx, eax
  mov eax, cr0
  out dx, eax
  push 0x77
  pop eax
  out dx, eax
  hlt
`;
    const k = build('bz32', src, 'SECTIONS { . = 0x100000; .text : { *(.text) } }', 32);
    m = createMachine(memoryBytes);
    const info = loadLinux(m.mem, { kernel: makeBzImage({ payload: k.bin, xloadflags: 0, relocatable: false, initSize: 0x100000 }), kernelPath: 'bz32', cmdline: 'root=/dev/vda', memoryBytes });
    expect(info.entry.mode).toBe('protected');
    applyBootState(m.vcpu, info.entry);
    expect(await runReports(m.vcpu)).toEqual([0x7000, 0, 0x53726448, 0x746f6f72, 0x10, 0x18, 0x11, 0x77]);
  });

  it('a multiboot ELF32 kernel sees the magic, the info structure, its command line and module', async () => {
    const src = `.intel_syntax noprefix
.code32
.text
.globl _start
.align 4
  .long 0x1badb002
  .long 0x3
  .long -(0x1badb002 + 0x3)
_start:
  mov dx, 0x500
  out dx, eax
  mov eax, ebx
  out dx, eax
  mov eax, [ebx]
  out dx, eax
  mov eax, [ebx + 4]
  out dx, eax
  mov eax, [ebx + 8]
  out dx, eax
  mov eax, [ebx + 16]
  mov eax, [eax]
  out dx, eax
  mov eax, [ebx + 20]
  out dx, eax
  mov eax, [ebx + 24]
  mov eax, [eax]
  mov eax, [eax]
  out dx, eax
  mov eax, [ebx + 64]
  mov eax, [eax]
  out dx, eax
  mov ax, cs
  movzx eax, ax
  out dx, eax
  hlt
`;
    const k = build('mb', src, 'ENTRY(_start) SECTIONS { . = 0x100000; .text : { *(.text) } .bss : { *(.bss) } }', 32);
    m = createMachine(memoryBytes);
    const info = loadMultiboot(m.mem, {
      kernel: k.elf, kernelPath: 'mb', cmdline: 'hello', memoryBytes,
      modules: [{ data: initrd, path: 'mod' }],
    });
    applyBootState(m.vcpu, info.entry);
    expect(await runReports(m.vcpu)).toEqual([
      0x2badb002, 0x7000, 0x24d, 639, (memoryBytes - MiB) / 1024,
      0x6820626d, // "mb h": the command line starts with the kernel path
      1, 0x44332211,
      0x65646f6e, // "node"
      0x10,
    ]);
  });
});
