/**
 * Interpreter speed: a compute-bound guest loop (bitwise CRC-32 over 4 KiB, then a sieve) in 64-bit long mode,
 * hand-assembled with GNU as. Prints guest instructions per second (wall and per CPU-second: the machine is shared).
 * Then the same program, bounded to a fixed number of iterations and ending with OUT, runs at CPL3 under KVM
 * (native speed even on kvm_pvm hosts) and in the interpreter, and the time ratio is printed.
 *
 *   npx tsx bench/interp-mips.ts [seconds]
 */
import { Kvm, probeKvm } from '../lib/kvm/index.js';
import { GuestMemory } from '../lib/machine/guest-memory.js';
import { exportState, importState } from '../lib/cpu/index.js';
import { assemble, identityMap, longModeCpu, PML4 } from '../test/cpu/harness.js';

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
  cmp r15, ITERATIONS
  jne outer
  out 0x80, al
  jmp outer
`;

const seconds = Number(process.argv[2] ?? 5);
/** Runs the endless loop for `seconds` (after a warm-up) with the block translator on or off; prints and returns M instr/CPU-s. */
function measure(jit: boolean): number {
  const cpu = longModeCpu(assemble(LOOP.replace('ITERATIONS', String(2 ** 31 - 1)), 64, 0x100000), 0x100000, 8 << 20, { jit });
  for (let k = 0; k < 4096; k++) cpu.memory.writeU8(0x200000 + k, (k * 7 + 3) & 0xff);
  // Warm up V8 (and let the block translator see the hot blocks).
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
  console.log(`interpreter, block translator ${jit ? `on (${cpu.jitBlocks} blocks)` : 'off'}: ${n} guest instructions, ${(ns / 1e9).toFixed(2)} s wall (${(n / ns * 1000).toFixed(1)} M instr/s), ` +
    `${(cpuUs / 1e6).toFixed(2)} s CPU (${(n / cpuUs).toFixed(1)} M instr/CPU-s) (64-bit CPL0, CRC-32 + sieve loop)`);
  return n / cpuUs;
}
const off = measure(false);
const on = measure(true);
console.log(`block translator speed-up on this loop: ${(on / off).toFixed(2)}x per CPU-second`);

// ---- the same bounded program at CPL3: KVM (native) vs interpreter ----
const ITER = 60;
const code = assemble(LOOP.replace('ITERATIONS', String(ITER)), 64, 0x100000);
const RAM = 8 << 20;
const userSeg = { base: 0n, limit: 0xffffffff, g: 1, avl: 0, unusable: 0, present: 1, dpl: 3, s: 1 };
const cs = { ...userSeg, selector: 0x2b, type: 0xb, db: 0, l: 1 };
const ds = { ...userSeg, selector: 0x23, type: 0x3, db: 1, l: 0 };
const tr = { base: 0n, limit: 0x67, selector: 0x30, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
function fillGuest(mem: GuestMemory): void {
  identityMap(mem);
  mem.write(0x100000, code);
  for (let k = 0; k < 4096; k++) mem.writeU8(0x200000 + k, (k * 7 + 3) & 0xff);
}

// Interpreter at CPL3 with the same segment state KVM gets.
const imem = GuestMemory.ofSize(RAM);
fillGuest(imem);
const icpu = longModeCpu(new Uint8Array(0), 0x100000, RAM);
const ist = exportState(icpu);
void imem;
const st0 = exportState(icpu);
Object.assign(st0.sregs, { cs, ss: ds, ds, es: ds, fs: ds, gs: ds, tr, cr0: 0x80050033n, cr3: BigInt(PML4), cr4: 0x620n, efer: 0xd00n });
st0.regs.rip = 0x100000n; st0.regs.rsp = 0x80000n; st0.regs.rflags = 0x3002n;
void ist;
const runInterp = (): { n: number; cpuS: number } => {
  const mem = GuestMemory.ofSize(RAM);
  fillGuest(mem);
  const c2 = longModeCpu(new Uint8Array(0), 0x100000, RAM);
  // longModeCpu made its own memory: move the state onto a CPU over `mem`.
  const c3 = new (c2.constructor as typeof import('../lib/cpu/cpu.js').Cpu)({ memory: mem });
  importState(c3, st0);
  let port = -1;
  c3.portHook = (_c, kind, p) => { if (kind === 'out') { port = p; c3.requestStop(); } };
  const u0 = process.cpuUsage();
  while (port < 0) { const r = c3.run({ maxInstructions: 50_000_000 }); if (r.reason !== 'count' && r.reason !== 'stop') throw new Error(`interpreter stopped: ${JSON.stringify(r)}`); }
  const u = process.cpuUsage(u0);
  return { n: c3.icount, cpuS: (u.user + u.system) / 1e6 };
};

const probe = probeKvm();
if (!probe.usable) {
  console.log(`native KVM CPL3 comparison skipped: ${probe.reason}`);
} else {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  vm.setTssAddr(0xfffbd000);
  const ram = kvm.allocateRam(RAM);
  vm.setMemoryRegion({ slot: 0, guestAddress: 0, ram });
  fillGuest(new GuestMemory([{ guestAddress: 0, bytes: ram.bytes }]));
  const vcpu = vm.createVcpu(0);
  vcpu.setCpuid(kvm.supportedCpuid());
  const sr = vcpu.getSregs();
  vcpu.setSregs({ ...sr, cs, ss: ds, ds, es: ds, fs: ds, gs: ds, tr, cr0: 0x80050033n, cr3: BigInt(PML4), cr4: 0x620n, efer: 0xd00n });
  vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x100000n, rsp: 0x80000n, rflags: 0x3002n });
  const t0 = process.hrtime.bigint();
  const exit = vcpu.runSync({});
  const nativeS = Number(process.hrtime.bigint() - t0) / 1e9;
  vm.close(); ram.close(); kvm.close();
  if (exit.reason !== 'io') {
    console.log(`native KVM CPL3 run ended with ${exit.reason}, not the expected OUT: no ratio`);
  } else {
    const { n, cpuS } = runInterp();
    console.log(`CPL3, ${ITER} iterations, ${n} instructions: KVM native ${(nativeS * 1000).toFixed(1)} ms (${(n / nativeS / 1e6).toFixed(0)} M instr/s), ` +
      `interpreter ${(cpuS * 1000).toFixed(0)} ms CPU (${(n / cpuS / 1e6).toFixed(1)} M instr/CPU-s): interpreter/native = ${(cpuS / nativeS).toFixed(0)}×`);
  }
}
