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
 * Goal: runLoop ≤ 1.2 × raw C.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kvm, probeKvm, type KvmVcpu } from '../lib/kvm/index.js';

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

const results: Record<string, number[]> = { c: [], runInline: [], runLoop: [], runLoopSpin: [], runLoopSpinPoll: [], runSync: [] };
// Warm up JIT and the thread.
await asyncRound(DEFAULT);
await inlineRound();
syncRound();
for (let r = 0; r < rounds; r++) {
  results.c!.push(...rawC());
  results.runInline!.push(await inlineRound());
  results.runLoop!.push(await asyncRound(DEFAULT));
  results.runLoopSpin!.push(await asyncRound(SPIN));
  results.runLoopSpinPoll!.push(await asyncRound(SPIN_POLL));
  results.runSync!.push(syncRound());
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
console.log(`runInline gave the event loop ${median(inlineYields)} turns per round (median)`);
console.log(`ratio runInline / raw C = ${(median(results.runInline!) / c).toFixed(3)}, runLoop / raw C = ${(median(results.runLoop!) / c).toFixed(3)} (goal ≤ 1.2)`);
void sum;
