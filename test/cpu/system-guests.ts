/**
 * The system-mode test guests (Intel-syntax sources, all starting in real mode at 0000:{ORG}), shared by
 * system.test.ts (interpreter) and system-kvm.test.ts (the same guests on a KVM vCPU, final state compared).
 * Every guest but realModeIvt expects harness.identityMap (PML4 at 0x1000) in 16 MiB of RAM; realModeIvt gets 8 MiB, unmapped.
 */
import { PML4 } from './harness.js';
/** Load address and start of every guest (real mode, CS:IP = 0000:8000). */
export const ORG = 0x8000;


/** GDT used by the long-mode guests: null, code32, data, code64, user data, user code64, TSS (16 bytes). */
export const GDT64 = `
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
export function toLongMode(body: string, data = ''): string {
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


/** IDT setup code (64-bit gates, selector 0x18, DPL 3 for vector 0x80): fills `idt` with `handler_<n>` entries. */
export function idt64(vectors: number[], ist: Record<number, number> = {}): { code: string; data: string } {
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
export const TSS_SETUP = `
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
export const TSS_DATA = `
.balign 16
tss: .zero 0x68
`;

/** Guest sources by name; each ends in HLT (tripleFault: shutdown). */
export const GUESTS = {
  modeSwitch: toLongMode(`
  mov rax, 0x1122334455667788
  mov [0x9f000], rax
  hlt`),
  realModeIvt: `
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
`,
  pageFault: (() => {
  const { code, data } = idt64([14]);
  return toLongMode(`
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
`, data);
})(),
  cpl3Syscall: (() => {
  const { code, data } = idt64([13, 14]);
  return toLongMode(`
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
`, `${data}${TSS_DATA}`);
})(),
  istExceptions: (() => {
  const { code, data } = idt64([0, 3, 6], { 6: 1 });
  return toLongMode(`
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
`, `${data}${TSS_DATA}`);
})(),
  hltWake: (() => {
  const { code, data } = idt64([0x40]);
  return toLongMode(`
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
`.replace('handler_0x40', 'handler_64'), data);
})(),
  stiHltPending: (() => {
  const { code, data } = idt64([0x41]);
  return toLongMode(`
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
`, data);
})(),
  paging32: `
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
`,
  compatFarCall: toLongMode(`
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
`),
  paeNx: `
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
`,
  tripleFault: toLongMode(`
  lidt [bad_idtr]
  int3
  hlt
bad_idtr:
  .word 0
  .quad 0
`),
  cpuid: toLongMode(`
  mov eax, 1
  cpuid
  mov r8, rdx
  mov r9, rcx
  mov eax, 0x80000001
  cpuid
  mov r10, rdx
  xor eax, eax
  cpuid
  hlt`),
} as const;
