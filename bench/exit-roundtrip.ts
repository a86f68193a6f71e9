/**
 * Userspace-exit round trip: a real-mode guest executes `out dx, al` N times (one KVM_EXIT_IO each) and
 * each exit is handled by a TypeScript handler. Compared, in the same run and on the same guest bytes, with
 * a raw C KVM_RUN loop (bench/c/exit-roundtrip.c, compiled here with cc into bench/.build/).
 *
 *   npx tsx bench/exit-roundtrip.ts [exits=20000] [rounds=7]
 *
 * Prints µs/exit (median of rounds) for: raw C; nodevmm runInline (KVM_RUN on the JS thread, interrupted
 * whenever the event loop has work, so the loop stays live); nodevmm runLoop (native run thread) with the default hand-off
 * (run thread spins for the verdict, JS thread polls for the next exit), without the JS poll (every exit wakes
 * the event loop through the ThreadSafeFunction), and without any spinning (futex + TSFN); and runSync
 * (KVM_RUN on the JS thread, blocking it).
 * Plus the full path a guest sees: a Machine with the KVM accelerator (vCPU 0 on runInline) running a
 * 32-bit multiboot kernel doing the same `out dx, al` loop to a TypeScript BusDevice on the machine's PIO Bus
 * (µs/exit timed by the device between its first and last write, so machine start-up is not counted).
 * And the cost of completing a failed emulation (kvm_pvm only: KVM's emulator lacks `clac`): a loop of N `clac`
 * at CPL0 completed by hand (RFLAGS.AC cleared, RIP advanced) vs through the interpreter (lib/cpu ExternalStepper, via lib/accel/kvm/emulation.ts).
 * Goal: runLoop ≤ 1.2 × raw C.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvmAccelerator } from '../lib/accel/kvm/index.js';
import { kvmHostModule } from '../lib/accel/probe.js';
import { Kvm, probeKvm, type KvmVcpu } from '../lib/kvm/index.js';
import { validateMachineConfig } from '../lib/machine/config.js';
import { Machine } from '../lib/machine/machine.js';
import { multibootElf } from '../test/machine/test-kernels.js';

const exits = Number(process.argv[2] ?? 20000);
const rounds = Number(process.argv[3] ?? 7);
const here = dirname(fileURLToPath(import.meta.url));
const buildDir = join(here, '.build');

// Real mode at 0x1000, ECX = exits, DX = port (set by the host in both programs).
const GUEST = Uint8Array.from([
  0xee,             // loop: out dx, al
  0x66, 0x49,       //       dec ecx
  0x75, 0xfb,       //       jnz loop
  0xf4,             //       hlt
]);
const ENTRY = 0x1000;
const PORT = 0x80;

const probe = probeKvm();
if (!probe.usable) {
  console.log(`exit-roundtrip: skipped, ${probe.reason}`);
  process.exit(0);
}

mkdirSync(buildDir, { recursive: true });
const guestPath = join(buildDir, 'exit-roundtrip.bin');
writeFileSync(guestPath, GUEST);
const cBin = join(buildDir, 'exit-roundtrip');
execFileSync('cc', ['-O2', '-Wall', '-o', cBin, join(here, 'c', 'exit-roundtrip.c')], { stdio: 'inherit' });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function rawC(): number[] {
  const out = execFileSync(cBin, [guestPath, String(exits), '1'], { encoding: 'utf8' });
  return out.trim().split('\n').map(Number);
}

const kvm = Kvm.open();
const vm = kvm.createVm();
vm.setTssAddr(0xfffbd000);
const ram = kvm.allocateRam(0x200000);
vm.setMemoryRegion({ slot: 0, guestAddress: 0, ram });
ram.bytes.set(GUEST, ENTRY);
// One vCPU per run model family, as a machine would use them: moving a vCPU between threads makes KVM
// re-home it on every switch, which is not what is being measured here.
const vcpu = vm.createVcpu(0); // runLoop (native run thread)
const mainVcpu = vm.createVcpu(1); // runInline / runSync (JS thread)

function reset(v: KvmVcpu): void {
  const s = v.getSregs();
  for (const name of ['cs', 'ds', 'es', 'fs', 'gs', 'ss'] as const) s[name] = { ...s[name], base: 0n, selector: 0, limit: 0xffff };
  v.setSregs(s);
  const r = v.getRegs();
  v.setRegs({ ...r, rip: BigInt(ENTRY), rflags: 2n, rcx: BigInt(exits), rdx: BigInt(PORT), rsp: 0x7000n });
}

let sum = 0;
let seen = 0;
const pio = {
  read: (): number => 0,
  write: (_port: number, _size: number, value: number): void => { sum += value; seen++; },
};

interface Tuning { spinNs: number; pollNs: number; budgetNs: number }
const DEFAULT: Tuning = { spinNs: 0, pollNs: 0, budgetNs: 2_000_000 }; // futex + ThreadSafeFunction
const SPIN: Tuning = { spinNs: 30_000, pollNs: 0, budgetNs: 2_000_000 };
const SPIN_POLL: Tuning = { spinNs: 30_000, pollNs: 50_000, budgetNs: 2_000_000 };

async function asyncRound(tuning: Tuning): Promise<number> {
  reset(vcpu);
  seen = 0;
  vcpu.setTuning(tuning);
  const t0 = performance.now();
  const exit = await vcpu.runLoop({ pio });
  const t1 = performance.now();
  if (exit.reason !== 'hlt' || seen !== exits) throw new Error(`unexpected: ${exit.reason}, ${seen} exits`);
  return ((t1 - t0) * 1000) / exits;
}

const inlineYields: number[] = [];
/** runInline time slice; SLICE_MS=2 shows the cost of frequent forced event-loop turns. */
const sliceMs = process.env.SLICE_MS === undefined ? undefined : Number(process.env.SLICE_MS);
async function inlineRound(): Promise<number> {
  reset(mainVcpu);
  seen = 0;
  const y0 = mainVcpu.inlineYields;
  const t0 = performance.now();
  const exit = await mainVcpu.runInline({ pio }, sliceMs);
  const t1 = performance.now();
  inlineYields.push(mainVcpu.inlineYields - y0);
  if (exit.reason !== 'hlt' || seen !== exits) throw new Error(`unexpected: ${exit.reason}, ${seen} exits`);
  return ((t1 - t0) * 1000) / exits;
}

function syncRound(): number {
  reset(mainVcpu);
  seen = 0;
  const t0 = performance.now();
  const exit = mainVcpu.runSync({ pio });
  const t1 = performance.now();
  if (exit.reason !== 'hlt' || seen !== exits) throw new Error(`unexpected: ${exit.reason}, ${seen} exits`);
  return ((t1 - t0) * 1000) / exits;
}

// ---- the full machine path --------------------------------------------------------------------------------
// 32-bit protected mode (multiboot): ECX = exits; loop: out dx, al; dec ecx; jnz loop; then isa-debug-exit.
const MACHINE_PORT = 0x5a0; // not used by any platform device
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const machineKernel = join(buildDir, 'exit-roundtrip-multiboot.elf');
writeFileSync(machineKernel, multibootElf(Uint8Array.from([
  0xb9, ...u32(exits), // mov ecx, exits
  0x66, 0xba, MACHINE_PORT & 0xff, MACHINE_PORT >> 8, // mov dx, MACHINE_PORT
  0xee, // loop: out dx, al
  0x49, // dec ecx
  0x75, 0xfc, // jnz loop
  0x31, 0xc0, // xor eax, eax
  0xe7, 0xf4, // out 0xf4, eax (isa-debug-exit: status 1)
  0xf4, 0xeb, 0xfd, // hlt; jmp hlt
])));
const machineConfig = validateMachineConfig({ memoryMiB: 32, kernel: machineKernel, serial: 'none', cmdline: '' });
const emulatingHost = kvmHostModule() === 'kvm_pvm';

async function machineRound(): Promise<number> {
  const m = await Machine.create(machineConfig, { accelerator: new KvmAccelerator({ emulatingHost }) });
  let writes = 0;
  let first = 0;
  let last = 0;
  m.pio.register(MACHINE_PORT, 1, {
    read: () => 0,
    write: () => {
      const t = performance.now();
      if (writes++ === 0) first = t;
      last = t;
    },
  }, 'bench-port');
  m.start();
  const exit = await m.wait();
  if (exit.status !== 1 || writes !== exits) throw new Error(`machine round: ${exit.reason} (${exit.message}), ${writes} exits`);
  return ((last - first) * 1000) / (exits - 1);
}

// ---- completing failed emulations ---------------------------------------------------------------------
// ECX = n; loop: clac; dec ecx; jnz loop; isa-debug-exit. Each clac is a KVM_EXIT_INTERNAL_ERROR on kvm_pvm.
const CLACS = Math.max(100, Math.floor(exits / 10));
const clacKernel = join(buildDir, 'clac-loop-multiboot.elf');
writeFileSync(clacKernel, multibootElf(Uint8Array.from([
  0xb9, ...u32(CLACS), // mov ecx, n
  0x0f, 0x01, 0xca, // loop: clac
  0x49, 0x75, 0xfa, // dec ecx; jnz loop
  0x31, 0xc0, 0xe7, 0xf4, 0xf4, 0xeb, 0xfd, // xor eax, eax; out 0xf4, eax; hlt; jmp hlt
])));
const clacConfig = validateMachineConfig({ memoryMiB: 32, kernel: clacKernel, serial: 'none', cmdline: '' });

/** µs per completed clac (whole run / completions), or undefined when the host ran clac itself. */
async function completionRound(byHand: boolean): Promise<number | undefined> {
  // Unmasked CPUID (emulatingHost: false) so that the guest's CPUID has SMAP where the host offers it.
  const accelerator = new KvmAccelerator({ emulatingHost: false, completeByHand: byHand });
  const m = await Machine.create(clacConfig, { accelerator });
  const t0 = performance.now();
  m.start();
  const exit = await m.wait();
  const t1 = performance.now();
  if (exit.status !== 1) throw new Error(`clac loop (${byHand ? 'by hand' : 'interpreter'}): ${exit.reason} (${exit.message})`);
  const n = accelerator.emulationsCompleted;
  return n >= CLACS ? ((t1 - t0) * 1000) / n : undefined;
}

const results: Record<string, number[]> = { c: [], runInline: [], runLoop: [], runLoopSpin: [], runLoopSpinPoll: [], runSync: [], machine: [], clacByHand: [], clacInterp: [] };
// Warm up JIT and the thread.
await asyncRound(DEFAULT);
await inlineRound();
syncRound();
await machineRound();
for (let r = 0; r < rounds; r++) {
  results.c!.push(...rawC());
  results.runInline!.push(await inlineRound());
  results.runLoop!.push(await asyncRound(DEFAULT));
  results.runLoopSpin!.push(await asyncRound(SPIN));
  results.runLoopSpinPoll!.push(await asyncRound(SPIN_POLL));
  results.runSync!.push(syncRound());
  results.machine!.push(await machineRound());
  const byHand = await completionRound(true);
  const interp = await completionRound(false);
  if (byHand !== undefined && interp !== undefined) {
    results.clacByHand!.push(byHand);
    results.clacInterp!.push(interp);
  }
}
vm.close();
ram.close();
kvm.close();

const c = median(results.c!);
const line = (name: string, xs: number[]): string =>
  `${name.padEnd(34)} ${median(xs).toFixed(2).padStart(7)} µs/exit   ${(median(xs) / c).toFixed(2)}× raw C   (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)})`;
console.log(`exit-roundtrip: ${exits} PIO exits per round, ${rounds} rounds, median${probe.pvm ? ' (kvm_pvm host)' : ''}`);
console.log(line('raw C KVM_RUN loop', results.c!));
console.log(line('runInline (JS thread, loop watched)', results.runInline!));
console.log(line('runLoop (default: futex + TSFN)', results.runLoop!));
console.log(line('runLoop (+ adaptive spin)', results.runLoopSpin!));
console.log(line('runLoop (+ adaptive spin + JS poll)', results.runLoopSpinPoll!));
console.log(line('runSync (KVM_RUN on the JS thread)', results.runSync!));
console.log(line('Machine + KVM accel + Bus + device', results.machine!));
if (results.clacByHand!.length > 0) {
  console.log(`failed emulation (clac, ${CLACS} per round) completed by hand:   ${median(results.clacByHand!).toFixed(2).padStart(7)} µs per clac (whole round / completions)`);
  console.log(`failed emulation (clac) through the interpreter: ${median(results.clacInterp!).toFixed(2).padStart(7)} µs per clac, ` +
    `${(median(results.clacInterp!) / median(results.clacByHand!)).toFixed(2)}× by hand`);
} else {
  console.log('failed-emulation completion: not measured (this host runs clac itself)');
}
console.log(`runInline gave the event loop ${median(inlineYields)} turns per round (median)`);
console.log(`ratio runInline / raw C = ${(median(results.runInline!) / c).toFixed(3)}, runLoop / raw C = ${(median(results.runLoop!) / c).toFixed(3)}, Machine path / raw C = ${(median(results.machine!) / c).toFixed(3)} (goal ≤ 1.2)`);
void sum;
