/**
 * System-mode behaviour with small assembled guests: mode switches, paging faults with CR2/error codes, IDT delivery
 * in real, protected and long mode, privilege changes through the TSS, SYSCALL/SYSRET, external interrupts waking
 * HLT, and triple-fault shutdown.
 */
import { describe, expect, it } from 'vitest';
import { Cpu } from '../../lib/cpu/cpu.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { CpuInterruptSource } from '../../lib/machine/irq.js';
import { assemble, identityMap, PML4, reg64 } from './harness.js';

const ORG = 0x8000;

function realModeCpu(src: string, memSize = 8 << 20): Cpu {
  const mem = GuestMemory.ofSize(memSize);
  mem.write(ORG, assemble(src, 16, ORG));
  const cpu = new Cpu({ memory: mem });
  // Start at 0000:8000 instead of the reset vector.
  cpu.segSel[1] = 0; cpu.segBase[1] = 0; cpu.rip = ORG;
  return cpu;
}

/** GDT used by the long-mode guests: null, code32, data, code64, user data, user code64, TSS (16 bytes). */
const GDT64 = `
.balign 16
gdt:
  .quad 0
  .quad 0x00cf9a000000ffff   # 0x08 code32
  .quad 0x00cf92000000ffff   # 0x10 data
  .quad 0x00af9a000000ffff   # 0x18 code64
  .quad 0x00cff2000000ffff   # 0x20 user data (SYSRET SS = STAR.63:48 + 8)
  .quad 0x00affa000000ffff   # 0x28 user code64 (SYSRET CS = STAR.63:48 + 16)
tss_desc:
  .quad 0
  .quad 0
gdt_end:
gdtr:
  .word gdt_end - gdt - 1
  .quad gdt
`;

/** Real mode → protected mode → long mode; then `body` runs in 64-bit mode at CPL0. */
function toLongMode(body: string, data = ''): string {
  return `
.code16
start:
  cli
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7000
  lgdt [gdtr]
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  ljmp 0x08, pm32
.code32
pm32:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, 0x7000
  mov eax, cr4
  or eax, 0x20
  mov cr4, eax
  mov eax, ${PML4}
  mov cr3, eax
  mov ecx, 0xc0000080
  rdmsr
  or eax, 0x901       # LME | NXE | SCE
  wrmsr
  mov eax, cr0
  or eax, 0x80010000  # PG | WP
  mov cr0, eax
  ljmp 0x18, lm64
.code64
lm64:
  mov ax, 0x10
  mov ds, ax
  mov ss, ax
  mov rsp, 0x70000
${body}
${GDT64}
${data}
`;
}

function longCpu(src: string): Cpu {
  const mem = GuestMemory.ofSize(16 << 20);
  identityMap(mem);
  mem.write(ORG, assemble(src, 16, ORG));
  const cpu = new Cpu({ memory: mem });
  cpu.segSel[1] = 0; cpu.segBase[1] = 0; cpu.rip = ORG;
  return cpu;
}

/** IDT setup code (64-bit gates, selector 0x18, DPL 3 for vector 0x80): fills `idt` with `handler_<n>` entries. */
function idt64(vectors: number[], ist: Record<number, number> = {}): { code: string; data: string } {
  const code = vectors.map((v) => `
  lea rax, [handler_${v}]
  mov word ptr [idt + ${v * 16}], ax
  mov word ptr [idt + ${v * 16 + 2}], 0x18
  mov word ptr [idt + ${v * 16 + 4}], ${0x8e00 | (v === 0x80 ? 0x6000 : 0) | (ist[v] ?? 0)}
  shr rax, 16
  mov word ptr [idt + ${v * 16 + 6}], ax
  shr rax, 16
  mov dword ptr [idt + ${v * 16 + 8}], eax`).join('\n') + '\n  lidt [idtr]\n';
  const data = `
.balign 16
idt: .zero 256 * 16
idtr:
  .word 256 * 16 - 1
  .quad idt
`;
  return { code, data };
}

/** TSS with RSP0 = 0x60000 and IST1 = 0x50000, loaded into TR (selector 0x30). */
const TSS_SETUP = `
  lea rax, [tss]
  mov word ptr [tss_desc], 0x67
  mov word ptr [tss_desc + 2], ax
  shr rax, 16
  mov byte ptr [tss_desc + 4], al
  mov byte ptr [tss_desc + 5], 0x89
  mov byte ptr [tss_desc + 7], ah
  mov qword ptr [tss + 4], 0x60000
  mov qword ptr [tss + 0x24], 0x50000
  mov ax, 0x30
  ltr ax
`;
const TSS_DATA = `
.balign 16
tss: .zero 0x68
`;

describe('system mode', () => {
  it('switches real → protected → long mode', () => {
    const cpu = longCpu(toLongMode(`
  mov rax, 0x1122334455667788
  mov [0x9f000], rax
  hlt`));
    const r = cpu.run({ maxInstructions: 10_000 });
    expect(r.reason).toBe('hlt');
    expect(cpu.mode).toBe(64);
    expect(cpu.longMode).toBe(true);
    expect(cpu.segSel[1]).toBe(0x18);
    expect(cpu.memory.readU64(0x9f000)).toBe(0x1122334455667788n);
  });

  it('delivers a real-mode software interrupt through the IVT and returns with IRET', () => {
    const cpu = realModeCpu(`
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7000
  mov word ptr [0x10 * 4], offset handler
  mov word ptr [0x10 * 4 + 2], 0
  mov bx, 5
  int 0x10
  mov cx, 0x4242
  hlt
handler:
  add bx, 10
  iret
`);
    expect(cpu.run({ maxInstructions: 1000 }).reason).toBe('hlt');
    expect(cpu.lo[3]! & 0xffff).toBe(15);
    expect(cpu.lo[1]! & 0xffff).toBe(0x4242);
    expect(cpu.lo[4]! & 0xffff).toBe(0x7000);
  });

  it('raises #PF with CR2 and error code for a not-present page and for a read-only page with CR0.WP', () => {
    const { code, data } = idt64([14]);
    const cpu = longCpu(toLongMode(`
${code}
  # unmap the 2 MiB page at 0x600000; make 0x800000 read-only
  and qword ptr [0x3000 + 3 * 8], ~1
  and qword ptr [0x3000 + 4 * 8], ~2
  invlpg [0x600000]
  invlpg [0x800000]
  xor r12, r12
  mov rax, [0x600123]          # faults (read, not present)
  mov qword ptr [0x800010], 1  # faults (write, protection)
  hlt
handler_14:
  inc r12
  cmp r12, 1
  jne 2f
  mov r8, cr2
  pop r9                       # error code
  add qword ptr [rsp], 8       # skip the faulting 8-byte instruction (mov rax, [abs32])
  iretq
2:
  mov r10, cr2
  pop r11
  add qword ptr [rsp], 12      # skip mov qword ptr [abs32], imm32
  iretq
`, data));
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(2n);
    expect(reg64(cpu, 8)).toBe(0x600123n);
    expect(reg64(cpu, 9)).toBe(0n); // not present, read, supervisor
    expect(reg64(cpu, 10)).toBe(0x800010n);
    expect(reg64(cpu, 11)).toBe(3n); // present | write
  });

  it('enters CPL3 with IRETQ, round-trips SYSCALL/SYSRET, and takes #GP from CPL3 on the TSS RSP0 stack', () => {
    const { code, data } = idt64([13, 14]);
    const cpu = longCpu(toLongMode(`
${code}
${TSS_SETUP}
  # SYSCALL: kernel CS 0x18 (SS 0x20? no: STAR.47:32 = 0x18 → SS 0x20 is only for SYSRET base), user base 0x18
  mov ecx, 0xc0000081
  xor eax, eax
  mov edx, 0x00180018          # STAR: SYSRET base 0x18 (CS 0x28|3, SS 0x20|3), SYSCALL CS 0x18
  wrmsr
  mov ecx, 0xc0000082
  lea rax, [syscall_entry]
  mov rdx, rax
  shr rdx, 32
  wrmsr
  mov ecx, 0xc0000084
  mov eax, 0x200               # SFMASK: clear IF
  xor edx, edx
  wrmsr
  # Enter user mode: SS, RSP, RFLAGS, CS, RIP
  push 0x23
  push 0x40000
  push 0x202
  push 0x2b
  lea rax, [user]
  push rax
  iretq
user:
  mov rdi, 7
  syscall
  mov r13, rax                 # syscall return value
  mov r14, rcx
  cli                          # #GP(0) at CPL3 (IOPL 0)
  jmp user
syscall_entry:
  mov r15, rsp                 # still the user stack
  mov rbx, r11                 # saved RFLAGS
  lea rax, [rdi + 100]
  sysretq
handler_13:
  pop r9                       # error code
  mov r8, [rsp + 8]            # CS of the interrupted code
  mov r10, [rsp + 24]          # RSP of the interrupted code
  mov r11, rsp
  hlt
handler_14:
  hlt
`, `${data}${TSS_DATA}`));
    const r = cpu.run({ maxInstructions: 100_000 });
    expect(r.reason).toBe('hlt');
    expect(reg64(cpu, 13)).toBe(107n);
    expect(reg64(cpu, 15)).toBe(0x40000n);
    expect(reg64(cpu, 3) & 0x200n).toBe(0x200n);
    expect(reg64(cpu, 8)).toBe(0x2bn);
    expect(reg64(cpu, 9)).toBe(0n);
    expect(reg64(cpu, 10)).toBe(0x40000n);
    expect(reg64(cpu, 11)).toBe(0x60000n - 40n); // RSP0 minus SS, RSP, RFLAGS, CS, RIP (error code popped)
    expect(cpu.cpl).toBe(0);
  });

  it('uses the IST stack and reports #UD, #DE, #BP (trap: RIP after INT3)', () => {
    const { code, data } = idt64([0, 3, 6], { 6: 1 });
    const cpu = longCpu(toLongMode(`
${code}
${TSS_SETUP}
  xor r12, r12
  ud2
  xor edx, edx
  xor ecx, ecx
  mov eax, 1
  div ecx
  int3
after_int3:
  hlt
handler_6:
  mov r8, rsp
  add qword ptr [rsp], 2
  inc r12
  iretq
handler_0:
  mov r9, [rsp]
  add qword ptr [rsp], 2
  inc r12
  iretq
handler_3:
  mov r10, [rsp]
  inc r12
  iretq
`, `${data}${TSS_DATA}`));
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(3n);
    expect(reg64(cpu, 8)).toBe(0x50000n - 40n);
    const divAt = reg64(cpu, 9);
    expect(cpu.memory.readU8(Number(divAt))).toBe(0xf7); // RIP of the faulting DIV
    expect(reg64(cpu, 10)).toBe(BigInt(cpu.rip - 1)); // INT3 pushes the address after itself (the HLT; RIP is now past it)
  });

  it('wakes from HLT on an external interrupt and delivers it through the IDT', () => {
    const { code, data } = idt64([0x40]);
    let pending = false;
    const src: CpuInterruptSource = { hasInterrupt: () => pending, acknowledge: () => { pending = false; return 0x40; } };
    const cpu = longCpu(toLongMode(`
${code}
  xor r12, r12
  sti
  hlt
  mov r13, 0x99
  cli
  hlt
handler_0x40:
  inc r12
  iretq
`.replace('handler_0x40', 'handler_64'), data));
    cpu.interrupts = src;
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(0n);
    pending = true;
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(1n);
    expect(reg64(cpu, 13)).toBe(0x99n);
  });

  it('STI; HLT with an interrupt already pending takes it instead of stopping', () => {
    const { code, data } = idt64([0x41]);
    let pending = true;
    const src: CpuInterruptSource = { hasInterrupt: () => pending, acknowledge: () => { pending = false; return 0x41; } };
    const cpu = longCpu(toLongMode(`
${code}
  xor r12, r12
  sti
  hlt
  mov r13, 0x77
  cli
  hlt
handler_65:
  inc r12
  iretq
`, data));
    cpu.interrupts = src;
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(1n);
    expect(reg64(cpu, 13)).toBe(0x77n);
  });

  it('32-bit protected mode: 2-level paging with a 4 MiB page, #PF error code and 32-bit interrupt gate', () => {
    const cpu = longCpu(`
.code16
  cli
  xor ax, ax
  mov ds, ax
  lgdt [gdtr]
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  ljmp 0x08, pm32
.code32
pm32:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, 0x70000
  # page directory at 0x20000: 4 MiB identity pages for 0-8 MiB (user, writable), 8-12 MiB not present
  mov dword ptr [0x20000], 0x87
  mov dword ptr [0x20004], 0x400087
  mov dword ptr [0x20008], 0
  # IDT entry 14: 32-bit interrupt gate to handler
  lea eax, [handler]
  mov word ptr [idt + 14 * 8], ax
  mov word ptr [idt + 14 * 8 + 2], 0x08
  mov word ptr [idt + 14 * 8 + 4], 0x8e00
  shr eax, 16
  mov word ptr [idt + 14 * 8 + 6], ax
  lidt [idtr]
  mov eax, 0x10          # PSE
  mov cr4, eax
  mov eax, 0x20000
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80000000
  mov cr0, eax
  mov dword ptr [0x123456], 0xabcd
  mov ebx, [0x123456]
  mov dword ptr [0x812345], 1     # not present → #PF
  hlt
handler:
  mov ecx, cr2
  pop edx                 # error code
  mov esi, [0x20000]      # accessed + dirty bits set by the walk
  hlt
.balign 8
gdt:
  .quad 0
  .quad 0x00cf9a000000ffff
  .quad 0x00cf92000000ffff
gdt_end:
gdtr:
  .word gdt_end - gdt - 1
  .long gdt
.balign 8
idt: .zero 256 * 8
idtr:
  .word 256 * 8 - 1
  .long idt
`);
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(cpu.mode).toBe(32);
    expect(cpu.lo[3]).toBe(0xabcd);
    expect(cpu.lo[1]! >>> 0).toBe(0x812345);
    expect(cpu.lo[2]).toBe(2); // write, not present, supervisor
    expect(cpu.lo[6]! & 0x60).toBe(0x60);
  });

  it('long mode → compatibility mode (32-bit code segment) with a far call, and back with a far return', () => {
    const cpu = longCpu(toLongMode(`
  mov rsp, 0x70000
  mov rbx, 0x1122334455667788
  lcall [rip + farptr]          # far call through memory, m16:32: pushes CS and EIP as 4-byte values
  mov r12, rax                  # back in 64-bit mode
  hlt
.balign 8
farptr:
  .long compat32
  .word 0x08
.code32
compat32:
  mov eax, 0xcafe               # 32-bit operand size; writes zero-extend nothing in compat mode
  push eax
  pop edx
  mov ebx, esp
  lret                          # pops EIP and CS (4 bytes each): back to the 64-bit code segment
.code64
`));
    expect(cpu.run({ maxInstructions: 10_000 }).reason).toBe('hlt');
    expect(cpu.mode).toBe(64);
    expect(reg64(cpu, 12)).toBe(0xcafen);
    expect(reg64(cpu, 2) & 0xffffffffn).toBe(0xcafen);
  });

  it('32-bit PAE paging: 2 MiB and 4 KiB pages, NX fetch fault with the I/D bit', () => {
    const cpu = longCpu(`
.code16
  cli
  xor ax, ax
  mov ds, ax
  lgdt [gdtr]
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  ljmp 0x08, pm32
.code32
pm32:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, 0x70000
  # PDPT at 0x20000 (entry 0 → PD at 0x21000); PD[0] = 2 MiB identity page; PD[1] → PT at 0x22000;
  # PT[0x10] maps 0x210000 → physical 0x345000; PD[2] maps 0x400000 as a 2 MiB no-execute page (bit 63).
  mov dword ptr [0x20000], 0x21001
  mov dword ptr [0x21000], 0x83
  mov dword ptr [0x21008], 0x22003
  mov dword ptr [0x22000 + 0x10 * 8], 0x345003
  mov dword ptr [0x21010], 0x400083
  mov dword ptr [0x21014], 0x80000000
  mov dword ptr [0x345010], 0x5a5a5a5a
  lea eax, [handler]
  mov word ptr [idt + 14 * 8], ax
  mov word ptr [idt + 14 * 8 + 2], 0x08
  mov word ptr [idt + 14 * 8 + 4], 0x8e00
  shr eax, 16
  mov word ptr [idt + 14 * 8 + 6], ax
  lidt [idtr]
  mov ecx, 0xc0000080
  rdmsr
  or eax, 0x800          # NXE
  wrmsr
  mov eax, 0x20          # PAE
  mov cr4, eax
  mov eax, 0x20000
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80000000
  mov cr0, eax
  mov ebx, [0x210010]    # through the 4 KiB page
  mov eax, 0x400100
  jmp eax                # fetch from the NX page → #PF with I/D
handler:
  mov ecx, cr2
  pop edx
  hlt
.balign 8
gdt:
  .quad 0
  .quad 0x00cf9a000000ffff
  .quad 0x00cf92000000ffff
gdt_end:
gdtr:
  .word gdt_end - gdt - 1
  .long gdt
.balign 8
idt: .zero 256 * 8
idtr:
  .word 256 * 8 - 1
  .long idt
`);
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(cpu.lo[3]! >>> 0).toBe(0x5a5a5a5a);
    expect(cpu.lo[1]! >>> 0).toBe(0x400100);
    expect(cpu.lo[2]).toBe(0x11); // present | instruction fetch
  });

  it('reports a triple fault as a shutdown', () => {
    const cpu = longCpu(toLongMode(`
  lidt [bad_idtr]
  int3
  hlt
bad_idtr:
  .word 0
  .quad 0
`));
    const r = cpu.run({ maxInstructions: 10_000 });
    expect(r.reason).toBe('shutdown');
  });

  it('CPUID reports the implemented features only and long mode', () => {
    const cpu = longCpu(toLongMode(`
  mov eax, 1
  cpuid
  mov r8, rdx
  mov r9, rcx
  mov eax, 0x80000001
  cpuid
  mov r10, rdx
  xor eax, eax
  cpuid
  hlt`));
    expect(cpu.run({ maxInstructions: 10_000 }).reason).toBe('hlt');
    const edx1 = Number(reg64(cpu, 8)), ecx1 = Number(reg64(cpu, 9)), ext = Number(reg64(cpu, 10));
    expect(edx1 & (1 << 26)).not.toBe(0); // SSE2
    expect(ecx1 & (1 << 26)).toBe(0); // no XSAVE
    expect(ecx1 & (1 << 28)).toBe(0); // no AVX
    expect(ext & (1 << 29)).not.toBe(0); // LM
    expect(ext & (1 << 20)).not.toBe(0); // NX
  });
});
