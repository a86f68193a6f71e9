/**
 * Does this host's KVM run guest supervisor code natively? `/dev/kvm` existing is not enough: kvm_pvm (a
 * nested, page-table-based KVM) runs CPL0 code through its instruction emulator at ~2-4 M instructions/s.
 * Two signals: which KVM module is loaded, and a timing probe (a 100k-iteration loop at CPL0 in 32-bit
 * protected mode: ~0.1 ms native, ~40 ms emulated). Cached per process.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Kvm, probeKvm, type KvmProbe } from '../kvm/index.js';
import { setupProtectedModeEntry } from '../machine/boot/protected-mode.js';
import { applyBootState } from './kvm/boot-state.js';

export type KvmHostModule = 'kvm_intel' | 'kvm_amd' | 'kvm_pvm' | 'unknown';

export interface KvmHostProbe {
  kvm: KvmProbe;
  module: KvmHostModule;
  /** Milliseconds for PROBE_ITERATIONS iterations of a CPL0 loop; undefined when KVM is unusable or the probe failed. */
  cpl0LoopMs: number | undefined;
  /** Guest supervisor code runs at hardware speed. */
  nativeSupervisor: boolean;
  /** One line: what was found. */
  summary: string;
}

export const PROBE_ITERATIONS = 20_000;
/** Above this the loop was emulated (native ≈ 0.02 ms; emulated ≈ 10-70 ms; 2 ms leaves room for a busy host). */
export const EMULATED_THRESHOLD_MS = 2;
const PROBE_RAM = 0x10_0000;
const PROBE_CODE = 0x1_0000;
const DONE_PORT = 0xf4;

export function kvmHostModule(sysModule = '/sys/module'): KvmHostModule {
  if (existsSync(`${sysModule}/kvm_pvm`)) return 'kvm_pvm';
  if (existsSync(`${sysModule}/kvm_intel`)) return 'kvm_intel';
  if (existsSync(`${sysModule}/kvm_amd`)) return 'kvm_amd';
  return 'unknown';
}

/** mov ecx, N; l: dec ecx; jnz l; out DONE_PORT, al — in 32-bit protected mode at CPL0. */
function loopCode(iterations: number): Uint8Array {
  return Uint8Array.from([
    0xb9, iterations & 0xff, (iterations >> 8) & 0xff, (iterations >> 16) & 0xff, (iterations >>> 24) & 0xff,
    0x49, 0x75, 0xfd, 0xe6, DONE_PORT, 0xf4,
  ]);
}

/** Times the CPL0 loop on a throw-away VM. Throws when KVM cannot run it. */
export function timeCpl0Loop(path?: string, iterations = PROBE_ITERATIONS): number {
  const kvm = Kvm.open(path);
  const vm = kvm.createVm();
  const ram = kvm.allocateRam(PROBE_RAM);
  try {
    vm.setTssAddr(0xfffb_d000);
    vm.setMemoryRegion({ slot: 0, guestAddress: 0, ram });
    const mem = vm.guestMemory();
    mem.write(PROBE_CODE, loopCode(iterations));
    const boot = setupProtectedModeEntry(mem, { eip: PROBE_CODE });
    const vcpu = vm.createVcpu(0);
    vcpu.setCpuid(kvm.supportedCpuid());
    applyBootState(vcpu, boot);
    const t0 = performance.now();
    const exit = vcpu.runSync();
    const ms = performance.now() - t0;
    if (exit.reason !== 'io' || exit.port !== DONE_PORT) throw new Error(`CPL0 probe guest stopped with "${exit.reason}"`);
    return ms;
  } finally {
    vm.close();
    ram.close();
    kvm.close();
  }
}

let cached: KvmHostProbe | undefined;

export function probeKvmHost(path?: string): KvmHostProbe {
  if (cached && path === undefined) return cached;
  const kvm = probeKvm(path);
  const module = kvmHostModule();
  let cpl0LoopMs: number | undefined;
  let probeError = '';
  if (kvm.usable) {
    try {
      cpl0LoopMs = timeCpl0Loop(path);
    } catch (e) {
      probeError = e instanceof Error ? e.message : String(e);
    }
  }
  const nativeSupervisor = kvm.usable && cpl0LoopMs !== undefined && cpl0LoopMs < EMULATED_THRESHOLD_MS;
  const timing = cpl0LoopMs === undefined
    ? (probeError ? `CPL0 probe failed: ${probeError}` : 'no CPL0 probe')
    : `CPL0 loop: ${cpl0LoopMs.toFixed(cpl0LoopMs < 1 ? 2 : 0)} ms per ${PROBE_ITERATIONS / 1000}k iterations, native is <1 ms`;
  const summary = !kvm.usable
    ? `/dev/kvm is not usable: ${kvm.reason.replace(/\s*\n\s*/g, ' ')}`
    : `/dev/kvm is ${module}${module === 'kvm_pvm' ? ', which emulates guest kernel code' : ''} (${timing})`;
  const result: KvmHostProbe = { kvm, module, cpl0LoopMs, nativeSupervisor, summary };
  if (path === undefined) cached = result;
  return result;
}
