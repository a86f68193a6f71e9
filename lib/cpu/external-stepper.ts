/**
 * One interpreter Cpu kept for stepping an external CPU (a KVM vCPU) one instruction at a time, many times.
 * stepExternal() builds a Cpu per call (~80-100 µs: TLB and decode tables) and converts the whole state both ways;
 * this keeps the Cpu and moves only the parts the caller supplies: general registers and segment/control registers
 * always, the x87/SSE state and the carried MSRs only when the caller says the instruction may use them.
 *
 * Each step starts from the state a fresh Cpu would have for everything not supplied (debug registers, XCR0,
 * MSRs outside STATE_MSRS, pending events), so earlier steps cannot leak into later ones. The TLB is dropped every
 * time (the external CPU may have changed page tables). Decoded instructions are kept only where provably still
 * right: the Cpu's cache is keyed by physical address, and the stepper remembers the bytes (and mode) it last saw
 * at each physical address it stepped; when the bytes at RIP differ, that page's decoded code is dropped. One step
 * runs one instruction, so the instruction at RIP is the only cached one used. (Decoding afresh costs a 4 KiB-slot
 * page array and a decode per step: ~20-40 µs with the garbage it makes.)
 */
import type { Bus } from '../machine/bus.js';
import type { GuestMemory } from '../machine/guest-memory.js';
import { CS, MSR_TSC } from './constants.js';
import { Cpu, type StopReason } from './cpu.js';
import { fromKvmFpu, toKvmFpu, type KvmFpu } from './simd/index.js';
import { exportMsrs, exportRegs, exportSregs, importMsrs, importRegs, importSregs, type RegsState, type SregsState } from './state.js';

export interface ExternalStepperOptions {
  pio?: Bus;
  mmio?: Bus;
  /** The external CPU's time-stamp counter (RDTSC/RDTSCP/RDMSR TSC read it; no offset is applied). */
  tsc?: () => bigint;
  /** The external CPU's CPUID (see StepExternalOptions.cpuid). */
  cpuid?: (leaf: number, subleaf: number) => [number, number, number, number] | undefined;
  /** IA32_APIC_BASE at creation (the Cpu then implements the APIC base MSR; kvm_sregs carries its value). */
  apicBase?: bigint;
}

export interface ExternalStepInput {
  regs: RegsState;
  sregs: SregsState;
  /** The x87/SSE state; omit when the instruction cannot touch it (then none is returned). */
  fpu?: KvmFpu;
  /** STATE_MSRS values (MSR_TSC ignored: the tsc option is the clock); omit when the instruction cannot use them. */
  msrs?: ReadonlyMap<number, bigint>;
}

export interface ExternalStepResult {
  regs: RegsState;
  sregs: SregsState;
  /** Present when input.fpu was given. */
  fpu?: KvmFpu;
  /** Present when input.msrs was given: STATE_MSRS except MSR_TSC. */
  msrs?: Map<number, bigint>;
  /** The instruction left an STI / MOV SS interrupt shadow. */
  interruptShadow: boolean;
  stop: StopReason;
}

/** Remembered code bytes: at most this many addresses (then everything is dropped and relearnt). */
const MAX_SEEN = 4096;
const MAX_INSN = 15;

export class ExternalStepper {
  readonly cpu: Cpu;
  /** Physical address → the bytes (up to the page end) and decode mode last seen there. */
  private readonly seen = new Map<number, { bytes: Uint8Array; mode: number }>();
  private readonly memory: GuestMemory;

  constructor(memory: GuestMemory, opts: ExternalStepperOptions = {}) {
    // No translation: one instruction per step, so blocks would never run.
    this.memory = memory;
    this.cpu = new Cpu({ memory, pio: opts.pio, mmio: opts.mmio, tsc: opts.tsc, apicBase: opts.apicBase, jit: false });
    const external = opts.cpuid;
    if (external) this.cpu.cpuidFilter = (leaf, subleaf, builtIn) => external(leaf, subleaf) ?? builtIn;
  }

  /** Execute exactly one instruction (or deliver the exception it raises). Guest memory is modified in place. */
  step(input: ExternalStepInput): ExternalStepResult {
    const cpu = this.cpu;
    if (input.msrs) {
      cpu.msr.reset(); // before importSregs, which sets the APIC base this resets
      importMsrs(cpu, withoutTsc(input.msrs));
    }
    importSregs(cpu, input.sregs);
    importRegs(cpu, input.regs);
    if (input.fpu) {
      cpu.simd.reset();
      fromKvmFpu(cpu.simd, input.fpu);
    }
    cpu.dr.fill(0); cpu.dr[6] = 0xffff0ff0; cpu.dr[7] = 0x400;
    cpu.xcr0 = 1;
    cpu.halted = false; cpu.shadow = false; cpu.nmiPending = false; cpu.nmiBlocked = false;
    cpu.flushTlb(true);
    if (!this.cachedCodeStillValid()) cpu.invalidateAll();
    const stop = cpu.step();
    const out: ExternalStepResult = { regs: exportRegs(cpu), sregs: exportSregs(cpu), interruptShadow: cpu.shadow, stop };
    if (input.fpu) out.fpu = toKvmFpu(cpu.simd);
    if (input.msrs) out.msrs = exportMsrs(cpu, [MSR_TSC]);
    return out;
  }

  /**
   * Translates RIP the way the step's fetch will (same walk, same faults), compares the bytes there with the ones
   * last seen at that physical address, and drops the page's decoded code when they differ. False: could not tell
   * (fetch faults, code outside RAM) — the caller drops everything.
   */
  private cachedCodeStillValid(): boolean {
    const cpu = this.cpu;
    if (cpu.mode !== 64 && cpu.rip + MAX_INSN - 1 > cpu.segLimit[CS]!) return false; // the fetch may #GP before any walk
    const lin = cpu.ripLinear();
    let phys: number;
    try {
      const h = cpu.tlbLookup(lin, 2);
      phys = cpu.tlbPhys[h]! + (lin & 0xfff);
    } catch {
      return false; // the step raises the fault itself
    }
    const len = Math.min(MAX_INSN, 4096 - (phys & 0xfff)); // page-crossing instructions are never cached
    if (!this.memory.contains(phys, len)) return false;
    const now = this.memory.view(phys, len);
    const last = this.seen.get(phys);
    if (last !== undefined && last.mode === cpu.mode && sameBytes(last.bytes, now)) return true;
    const page = Math.floor(phys / 4096);
    cpu.invalidatePhysPage(page);
    for (const k of this.seen.keys()) if (Math.floor(k / 4096) === page) this.seen.delete(k);
    if (this.seen.size >= MAX_SEEN) {
      this.seen.clear();
      cpu.invalidateAll();
    }
    this.seen.set(phys, { bytes: now.slice(), mode: cpu.mode });
    return true;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function withoutTsc(msrs: ReadonlyMap<number, bigint>): Map<number, bigint> {
  const m = new Map(msrs);
  m.delete(MSR_TSC);
  return m;
}
