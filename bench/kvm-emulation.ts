/**
 * Cost of completing a failed emulation (KVM_EXIT_INTERNAL_ERROR, suberror EMULATION) through the KVM accelerator.
 * On kvm_pvm, KVM's in-kernel emulator runs all CPL0 code and lacks some instructions; nodevmm completes them in
 * userspace (lib/accel/kvm/emulation.ts). Each case is a 32-bit multiboot kernel at CPL0 running one instruction
 * in a loop N times (`mov ecx, N; loop: <insn>; dec ecx; jnz loop`, then isa-debug-exit), timed from start to exit
 * and divided by N (the accelerator must have counted N completions, else the case is flagged):
 *
 *   pio     out 0x80, al        a plain PIO exit round trip (the reference: no completion)
 *   clac    clac                completed by hand (RFLAGS.AC only)
 *   clac-i  clac                through the interpreter (completeByHand: false)
 *   popcnt  popcnt eax, ecx     integer: regs only
 *   rdtscp  rdtscp              reads an MSR (TSC_AUX) and the TSC
 *   pxor    pxor xmm0, xmm1     SSE: the FPU/SSE state moves both ways
 * (movbe, tzcnt, fxsave and wrmsr were tried too: kvm_pvm's emulator runs them itself.)
 *
 *   npx tsx bench/kvm-emulation.ts [N=2000] [rounds=5] [--base /path/to/other/checkout]
 *
 * --base: also measure another checkout of nodevmm (e.g. `git worktree add /tmp/base <commit>` with node_modules
 * and build symlinked) in the same run, interleaved round by round, and print after/before ratios.
 * Prints µs per completion (median of rounds) and the ratio to the PIO round trip of the same checkout.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { multibootElf } from '../test/machine/test-kernels.js';

type MachineModule = typeof import('../lib/machine/machine.js');
type KvmModule = typeof import('../lib/accel/kvm/index.js');
type ConfigModule = typeof import('../lib/machine/config.js');
type KvmLowModule = typeof import('../lib/kvm/index.js');

interface Checkout {
  label: string;
  Machine: MachineModule['Machine'];
  KvmAccelerator: KvmModule['KvmAccelerator'];
  validateMachineConfig: ConfigModule['validateMachineConfig'];
}

const args = process.argv.slice(2);
const baseAt = args.indexOf('--base');
const baseDir = baseAt >= 0 ? args[baseAt + 1] : undefined;
if (baseAt >= 0 && !baseDir) throw new Error('--base needs a directory (a nodevmm checkout)');
const positional = args.filter((_, i) => baseAt < 0 || (i !== baseAt && i !== baseAt + 1));
const N = Number(positional[0] ?? 2000);
const rounds = Number(positional[1] ?? 5);
if (!Number.isInteger(N) || N < 10) throw new Error(`N: expected an integer ≥ 10, got ${positional[0]}`);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds: expected a positive integer, got ${positional[1]}`);

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = join(here, '.build');
mkdirSync(buildDir, { recursive: true });

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const EXIT = [0x31, 0xc0, 0xe7, 0xf4, 0xf4, 0xeb, 0xfd]; // xor eax, eax; out 0xf4, eax; hlt; jmp hlt
// CR4.OSFXSR | OSXMMEXCPT (SSE usable), CR0.EM/TS clear, XMM1 = something.
const SSE_ON = [0x0f, 0x20, 0xe0, 0x0d, ...u32(0x600), 0x0f, 0x22, 0xe0, 0x0f, 0x20, 0xc0, 0x25, ...u32(~0xc >>> 0), 0x0f, 0x22, 0xc0];

interface Case { name: string; insn: number[]; setup?: number[]; completes: boolean; interpreterOnly?: boolean }
const CASES: Case[] = [
  { name: 'pio', insn: [0xe6, 0x80], completes: false },
  { name: 'clac', insn: [0x0f, 0x01, 0xca], completes: true },
  { name: 'clac-i', insn: [0x0f, 0x01, 0xca], completes: true, interpreterOnly: true },
  { name: 'popcnt', insn: [0xf3, 0x0f, 0xb8, 0xc1], completes: true },
  // ECX is the loop counter: kept in EBX around rdtscp (which loads TSC_AUX into ECX).
  { name: 'rdtscp', insn: [0x89, 0xcb, 0x0f, 0x01, 0xf9, 0x89, 0xd9], completes: true },
  { name: 'pxor', insn: [0x66, 0x0f, 0xef, 0xc1], setup: SSE_ON, completes: true },
];

function kernelFor(c: Case): string {
  const body = c.insn;
  const back = -(body.length + 1 + 2); // to the loop head from after jnz
  const code = [...(c.setup ?? []), 0xb9, ...u32(N), ...body, 0x49, 0x75, back & 0xff, ...EXIT];
  const path = join(buildDir, `kvm-emulation-${c.name}.elf`);
  writeFileSync(path, multibootElf(Uint8Array.from(code)));
  return path;
}

async function load(label: string, root: string): Promise<Checkout> {
  const url = (p: string): string => pathToFileURL(join(root, p)).href;
  const m = (await import(url('lib/machine/machine.js'))) as MachineModule;
  const k = (await import(url('lib/accel/kvm/index.js'))) as KvmModule;
  const c = (await import(url('lib/machine/config.js'))) as ConfigModule;
  return { label, Machine: m.Machine, KvmAccelerator: k.KvmAccelerator, validateMachineConfig: c.validateMachineConfig };
}

/** µs per loop iteration, and how many failed emulations the accelerator completed. */
async function runCase(co: Checkout, c: Case, kernel: string): Promise<{ us: number; completed: number }> {
  const config = co.validateMachineConfig({ memoryMiB: 32, kernel, serial: 'none', cmdline: '' });
  // Unmasked CPUID (emulatingHost: false): the guest's CPUID keeps POPCNT/MOVBE/SMAP where the host has them.
  const accelerator = new co.KvmAccelerator({ emulatingHost: false, completeByHand: !c.interpreterOnly });
  const machine = await co.Machine.create(config, { accelerator });
  const t0 = performance.now();
  machine.start();
  const exit = await machine.wait();
  const t1 = performance.now();
  if (exit.status !== 1) throw new Error(`${co.label} ${kernel}: ${exit.reason} (${exit.message})`);
  return { us: ((t1 - t0) * 1000) / N, completed: accelerator.emulationsCompleted };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const low = (await import('../lib/kvm/index.js')) as KvmLowModule;
const probe = low.probeKvm();
if (!probe.usable) {
  console.log(`kvm-emulation: skipped, ${probe.reason}`);
  process.exit(0);
}

const checkouts = [await load('this', resolve(here, '..'))];
if (baseDir) checkouts.push(await load('base', resolve(baseDir)));
const kernels = new Map(CASES.map((c) => [c.name, kernelFor(c)]));

const times = new Map<string, number[]>();
const completedBy = new Map<string, number>();
const key = (co: Checkout, c: Case): string => `${co.label}/${c.name}`;

// One warm-up round (JIT, first-use allocations), then interleaved rounds.
for (let r = 0; r <= rounds; r++) {
  for (const c of CASES) {
    for (const co of checkouts) {
      const { us, completed } = await runCase(co, c, kernels.get(c.name)!);
      if (r === 0) { completedBy.set(key(co, c), completed); continue; }
      const xs = times.get(key(co, c)) ?? [];
      xs.push(us);
      times.set(key(co, c), xs);
    }
  }
}

const load0 = loadavg();
console.log(`kvm-emulation: ${N} iterations per case, ${rounds} rounds (median), host ${probe.pvm ? 'kvm_pvm' : 'hardware KVM'}, ` +
  `${cpus().length} CPUs, load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);
for (const co of checkouts) {
  const pio = median(times.get(key(co, CASES[0]!))!);
  console.log(`[${co.label}${co.label === 'base' ? ` = ${baseDir}` : ''}]`);
  for (const c of CASES) {
    const t = median(times.get(key(co, c))!);
    const done = completedBy.get(key(co, c))!;
    const note = c.completes && done < N ? `  (only ${done} completions: this host's KVM ran it itself)` : '';
    console.log(`  ${c.name.padEnd(7)} ${t.toFixed(1).padStart(8)} µs/iteration  ${(t / pio).toFixed(2).padStart(6)}× PIO exit${note}`);
  }
}
if (checkouts.length === 2) {
  console.log('this / base (lower is faster):');
  for (const c of CASES) {
    const a = median(times.get(key(checkouts[0]!, c))!);
    const b = median(times.get(key(checkouts[1]!, c))!);
    console.log(`  ${c.name.padEnd(7)} ${(a / b).toFixed(3)}   (${a.toFixed(1)} vs ${b.toFixed(1)} µs)`);
  }
}
