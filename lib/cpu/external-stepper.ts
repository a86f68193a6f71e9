/**
 * One interpreter Cpu kept for stepping an external CPU (a KVM vCPU) one instruction at a time, many times.
 * stepExternal() builds a Cpu per call (~80-100 µs: TLB and decode tables) and converts the whole state both ways;
 * this keeps the Cpu and moves only the parts the caller supplies: general registers and segment/control registers
 * always, the x87/SSE state and the carried MSRs only when the caller says the instruction may use them.
 *
 * Each step starts from the state a fresh Cpu would have for everything not supplied (debug registers, XCR0,
 * MSRs outside STATE_MSRS, pending events), so earlier steps cannot leak into later ones; the decoded-instruction
 * cache and TLB are dropped because the external CPU may have changed code and page tables since.
 */
import type { Bus } from '../machine/bus.js';
import type { GuestMemory } from '../machine/guest-memory.js';
import { MSR_TSC } from './constants.js';
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

export class ExternalStepper {
  readonly cpu: Cpu;

  constructor(memory: GuestMemory, opts: ExternalStepperOptions = {}) {
    // No translation: blocks would only be built for code run once, and the cache is dropped on every step anyway.
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
    cpu.invalidateAll();
    const stop = cpu.step();
    const out: ExternalStepResult = { regs: exportRegs(cpu), sregs: exportSregs(cpu), interruptShadow: cpu.shadow, stop };
    if (input.fpu) out.fpu = toKvmFpu(cpu.simd);
    if (input.msrs) out.msrs = exportMsrs(cpu, [MSR_TSC]);
    return out;
  }
}

function withoutTsc(msrs: ReadonlyMap<number, bigint>): Map<number, bigint> {
  const m = new Map(msrs);
  m.delete(MSR_TSC);
  return m;
}
