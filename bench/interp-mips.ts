/**
 * Interpreter speed: a compute-bound guest loop (bitwise CRC-32 over a 64 KiB buffer, then a sieve) in 64-bit long
 * mode at CPL0, hand-assembled with GNU as. Prints guest instructions per second. When the KVM addon (lib/kvm)
 * can run CPL3 code natively, the same loop's native time is printed as a ratio (see note below).
 *
 *   npx tsx bench/interp-mips.ts [seconds]
 */
import { assemble, longModeCpu } from '../test/cpu/harness.js';

const LOOP = `
  mov r15, 0                 # iteration counter
outer:
  # CRC-32 (bitwise, reflected poly 0xEDB88320) over 4 KiB at 0x200000
  mov rsi, 0x200000
  mov rcx, 4096
  mov eax, 0xffffffff
crc_byte:
  movzx edx, byte ptr [rsi]
  xor eax, edx
  mov r8d, 8
crc_bit:
  mov edx, eax
  shr eax, 1
  and edx, 1
  neg edx
  and edx, 0xedb88320
  xor eax, edx
  dec r8d
  jnz crc_bit
  inc rsi
  dec rcx
  jnz crc_byte
  not eax
  mov [0x300000], eax
  # sieve of Eratosthenes up to 8192 in bytes at 0x400000
  mov rdi, 0x400000
  mov rcx, 8192
  xor eax, eax
  rep stosb
  mov rbx, 2
sieve_outer:
  cmp byte ptr [0x400000 + rbx], 0
  jne sieve_next
  mov rdx, rbx
  imul rdx, rbx
sieve_inner:
  cmp rdx, 8192
  jae sieve_next
  mov byte ptr [0x400000 + rdx], 1
  add rdx, rbx
  jmp sieve_inner
sieve_next:
  inc rbx
  cmp rbx, 91
  jb sieve_outer
  inc r15
  jmp outer
`;

const seconds = Number(process.argv[2] ?? 5);
const cpu = longModeCpu(assemble(LOOP, 64, 0x100000), 0x100000, 8 << 20);
for (let k = 0; k < 4096; k++) cpu.memory.writeU8(0x200000 + k, (k * 7 + 3) & 0xff);
// Warm up the JIT.
cpu.run({ maxInstructions: 2_000_000 });
const start = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
let n = 0;
const deadline = start + BigInt(seconds * 1e9);
while (process.hrtime.bigint() < deadline) {
  const before = cpu.icount;
  cpu.run({ maxInstructions: 5_000_000 });
  n += cpu.icount - before;
}
const ns = Number(process.hrtime.bigint() - start);
const used = process.cpuUsage(cpuStart);
const cpuUs = used.user + used.system;
// The machine is shared: report per CPU-second of this process as well as per wall-clock second.
console.log(`interpreter: ${n} guest instructions, ${(ns / 1e9).toFixed(2)} s wall (${(n / ns * 1000).toFixed(1)} M instr/s), ` +
  `${(cpuUs / 1e6).toFixed(2)} s CPU (${(n / cpuUs).toFixed(1)} M instr/CPU-s) (64-bit CPL0, CRC-32 + sieve loop)`);
console.log('native KVM CPL3 comparison: not run — lib/kvm does not yet expose a CPL3 run API this script can drive; ' +
  'when it does, run LOOP at CPL3 under KVM for the same instruction count and print interpreter/native time.');
