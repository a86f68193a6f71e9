/**
 * Completing instructions the host's in-kernel emulator gave up on (KVM_EXIT_INTERNAL_ERROR, suberror
 * EMULATION). On an emulating host (kvm_pvm) every guest instruction at CPL0 goes through KVM's x86 emulator,
 * which lacks some instructions (int3, clac/stac, popcnt, movbe, xsave...). A real VT-x/AMD-V host never gets
 * here. The one instruction is executed by nodevmm's interpreter (one lib/cpu ExternalStepper per vCPU) against the
 * vCPU's registers and guest memory, the state is written back, and the guest resumes.
 *
 * Each vCPU state ioctl costs ~8-20 µs on kvm_pvm, so a completion moves only what the instruction can use:
 * regs and sregs always (from the copy KVM leaves in kvm_run at the exit where it can: lib/kvm/sync-regs.ts), the FPU/SSE state and the carried MSRs only when instructionNeeds() says the
 * opcode may touch them, and writes back only what changed. Pending events (NMI, interrupt shadow) are not read:
 * KVM keeps and delivers them when the guest resumes; an interrupt shadow the instruction starts (STI, MOV SS)
 * is written to KVM.
 *
 * Only clac/stac are completed by hand, and only where the guest's CPUID has SMAP and the vCPU is at CPL0 (where
 * they are valid: only RFLAGS.AC changes): Linux runs clac at every exception/interrupt entry (10-25 thousand
 * times before /init). Everything else — int3 included (it is rare) — goes through the interpreter, which follows
 * the guest's CPUID.
 */
import { ExternalStepper, STATE_MSRS } from '../../cpu/index.js';
import type { KvmFpu } from '../../cpu/simd/fxsave.js';
import { instructionAtState, SyncedRegisters, VcpuEventValid, type CpuidEntry, type Fpu, type KvmVcpu, type Regs, type Segment, type Sregs } from '../../kvm/index.js';
import type { Bus } from '../../machine/bus.js';
import type { GuestMemory } from '../../machine/guest-memory.js';
import { instructionNeeds } from './instruction-needs.js';

const MSR_TSC = 0x10;
const RFLAGS_AC = 1n << 18n;
const CPUID_7_EBX_SMAP = 1 << 20;
const CR0_PE = 1n;
const EFER_LMA = 1n << 10n;
/** kvm_vcpu_events.interrupt.shadow bits. */
const KVM_X86_SHADOW_INT_MOV_SS = 1;
const KVM_X86_SHADOW_INT_STI = 2;
const LEGACY_PREFIXES = new Set([0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67]);

export type EmulationOutcome =
  | { ok: true; how: string }
  | { ok: false; rip: bigint; bytes: Uint8Array; detail: string };

export interface EmulationContext {
  memory: GuestMemory;
  pio: Bus;
  mmio: Bus;
}

function toKvmFpuShape(f: Fpu): KvmFpu {
  const fpr = new Uint8Array(128);
  f.fpr.forEach((r, i) => fpr.set(r.subarray(0, 16), i * 16));
  const xmm = new Uint8Array(256);
  f.xmm.forEach((r, i) => xmm.set(r.subarray(0, 16), i * 16));
  return {
    fpr, fcw: f.fcw, fsw: f.fsw, ftwx: f.ftwx, lastOpcode: f.lastOpcode, lastIp: Number(f.lastIp), lastDp: Number(f.lastDp),
    xmm, mxcsr: f.mxcsr,
  };
}

function fromKvmFpuShape(f: KvmFpu): Fpu {
  return {
    fpr: Array.from({ length: 8 }, (_, i) => f.fpr.slice(i * 16, i * 16 + 16)),
    fcw: f.fcw, fsw: f.fsw, ftwx: f.ftwx, lastOpcode: f.lastOpcode, lastIp: BigInt(f.lastIp), lastDp: BigInt(f.lastDp),
    xmm: Array.from({ length: 16 }, (_, i) => f.xmm.slice(i * 16, i * 16 + 16)),
    mxcsr: f.mxcsr,
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameFpu(a: KvmFpu, b: KvmFpu): boolean {
  return a.fcw === b.fcw && a.fsw === b.fsw && a.ftwx === b.ftwx && a.mxcsr === b.mxcsr && sameBytes(a.fpr, b.fpr) &&
    sameBytes(a.xmm, b.xmm);
}

function sameSegment(a: Segment, b: Segment): boolean {
  return a.base === b.base && a.limit === b.limit && a.selector === b.selector && a.type === b.type && a.present === b.present &&
    a.dpl === b.dpl && a.db === b.db && a.s === b.s && a.l === b.l && a.g === b.g && a.avl === b.avl && a.unusable === b.unusable;
}

function sameSregs(a: Sregs, b: Sregs): boolean {
  return sameSegment(a.cs, b.cs) && sameSegment(a.ds, b.ds) && sameSegment(a.es, b.es) && sameSegment(a.fs, b.fs) &&
    sameSegment(a.gs, b.gs) && sameSegment(a.ss, b.ss) && sameSegment(a.tr, b.tr) && sameSegment(a.ldt, b.ldt) &&
    a.gdt.base === b.gdt.base && a.gdt.limit === b.gdt.limit && a.idt.base === b.idt.base && a.idt.limit === b.idt.limit &&
    a.cr0 === b.cr0 && a.cr2 === b.cr2 && a.cr3 === b.cr3 && a.cr4 === b.cr4 && a.cr8 === b.cr8 && a.efer === b.efer &&
    a.apicBase === b.apicBase;
}

/**
 * Per vCPU: completes failed emulations with one interpreter Cpu (built at the first one) and remembers which of
 * the interpreter's state MSRs this KVM can read (probed once).
 */
export class EmulationCompleter {
  private msrIndices: number[] | undefined;
  private stepper: ExternalStepper | undefined;
  /** How many instructions were completed, by mnemonic-ish key (first byte(s)), for diagnostics. */
  readonly counts = new Map<string, number>();

  private readonly byHand: boolean;
  private readonly cpuid: ((leaf: number, subleaf: number) => [number, number, number, number] | undefined) | undefined;
  /** The guest's CPUID has SMAP (clac/stac are valid at CPL0); assumed when no CPUID table was given. */
  private readonly smap: boolean;

  /** The kvm_run copy of the registers KVM makes at each exit (KVM_CAP_SYNC_REGS), where available and wanted. */
  private readonly synced: SyncedRegisters | undefined;

  /**
   * @param options.byHand   complete clac/stac without the interpreter where valid (default true; false sends every
   *                         failed emulation through the interpreter)
   * @param options.cpuid    the vCPU's CPUID table: the interpreter follows it (e.g. CLAC/STAC need SMAP there)
   * @param options.syncRegs read regs/sregs from the copy KVM leaves in kvm_run at each exit instead of by ioctl
   *                         (default true where KVM has it). complete() must then be called at the failed-emulation
   *                         exit, before anything else sets the vCPU's registers (as KvmAccelerator does); false
   *                         for callers that complete an instruction at any other time.
   */
  constructor(private readonly vcpu: KvmVcpu, private readonly ctx: EmulationContext,
    options: { byHand?: boolean; cpuid?: readonly CpuidEntry[]; syncRegs?: boolean } = {}) {
    this.synced = options.syncRegs === false ? undefined : SyncedRegisters.enable(vcpu);
    this.byHand = options.byHand ?? true;
    this.cpuid = options.cpuid ? cpuidLookup(options.cpuid) : undefined;
    const leaf7 = this.cpuid?.(7, 0);
    this.smap = this.cpuid ? leaf7 !== undefined && (leaf7[1] & CPUID_7_EBX_SMAP) !== 0 : true;
  }

  private readableMsrs(): number[] {
    if (this.msrIndices) return this.msrIndices;
    const ok: number[] = [];
    for (const index of STATE_MSRS) {
      try {
        this.vcpu.getMsrs([index]);
        ok.push(index);
      } catch {
        // Not supported by this KVM: the interpreter keeps its default.
      }
    }
    this.msrIndices = ok;
    return ok;
  }

  /** The interpreter Cpu for this vCPU, built at the first completion (construction allocates its tables). */
  private stepperFor(sregs: Sregs): ExternalStepper {
    this.stepper ??= new ExternalStepper(this.ctx.memory, {
      pio: this.ctx.pio, mmio: this.ctx.mmio, tsc: () => this.vcpu.getMsr(MSR_TSC), apicBase: sregs.apicBase,
      ...(this.cpuid ? { cpuid: this.cpuid } : {}),
    });
    return this.stepper;
  }

  private readMsrs(): Map<number, bigint> {
    const msrs = new Map<number, bigint>();
    for (const m of this.vcpu.getMsrs(this.readableMsrs())) msrs.set(m.index, m.value);
    return msrs;
  }

  /** Completes the instruction at RIP. Never throws. */
  complete(): EmulationOutcome {
    let regs: Regs, sregs: Sregs;
    try {
      regs = this.synced ? this.synced.regs() : this.vcpu.getRegs();
      sregs = this.synced ? this.synced.sregs() : this.vcpu.getSregs();
    } catch (e) {
      return { ok: false, rip: 0n, bytes: new Uint8Array(), detail: `could not read the vCPU registers: ${e instanceof Error ? e.message : String(e)}` };
    }
    const at = instructionAtState(this.vcpu, this.ctx.memory, regs.rip, sregs);
    if (at.bytes.length === 0) {
      return { ok: false, rip: regs.rip, bytes: at.bytes, detail: `instruction at ${hex(at.linear)} is not in guest RAM` };
    }
    const special = this.byHand ? this.completeByHand(at.bytes, regs, sregs) : undefined;
    if (special) {
      this.count(at.bytes);
      return { ok: true, how: special };
    }
    let interpError: string;
    try {
      const needs = instructionNeeds(at.bytes, (sregs.efer & EFER_LMA) !== 0n && sregs.cs.l !== 0);
      const fpuBefore = needs.fpu ? toKvmFpuShape(this.vcpu.getFpu()) : undefined;
      const msrsBefore = needs.msrs ? this.readMsrs() : undefined;
      const { interruptBitmap, ...sr } = sregs;
      const after = this.stepperFor(sregs).step({
        regs, sregs: sr, ...(fpuBefore ? { fpu: fpuBefore } : {}), ...(msrsBefore ? { msrs: msrsBefore } : {}),
      });
      if (after.stop.reason === 'shutdown') {
        return { ok: false, rip: regs.rip, bytes: at.bytes, detail: `triple fault while completing the instruction: ${after.stop.detail}` };
      }
      // KVM_SET_SREGS resets the vCPU's MMU context (costly, above all on a shadow-paging host): only when changed.
      const sregsAfter = { ...after.sregs, interruptBitmap };
      if (!sameSregs(sregs, sregsAfter)) this.vcpu.setSregs(sregsAfter);
      this.vcpu.setRegs(after.regs);
      if (fpuBefore && after.fpu && !sameFpu(fpuBefore, after.fpu)) this.vcpu.setFpu(fromKvmFpuShape(after.fpu));
      if (msrsBefore && after.msrs) {
        // Only MSRs this KVM can read (and so write); MSR_TSC is never written back (the interpreter read the vCPU's).
        const changed = [...after.msrs].filter(([k, v]) => msrsBefore.has(k) && k !== MSR_TSC && msrsBefore.get(k) !== v);
        if (changed.length > 0) this.vcpu.setMsrs(changed.map(([index, value]) => ({ index, value })));
      }
      if (after.interruptShadow) this.setInterruptShadow(at.bytes);
      this.count(at.bytes);
      return { ok: true, how: 'interpreter' };
    } catch (e) {
      interpError = e instanceof Error ? e.message : String(e);
    }
    return { ok: false, rip: regs.rip, bytes: at.bytes, detail: `the interpreter could not complete it: ${interpError}` };
  }

  /**
   * STI (with IF clear before) and MOV SS / POP SS block interrupts until the next instruction ends; KVM must know,
   * or it could inject an interrupt between e.g. MOV SS and the stack pointer load that follows.
   */
  private setInterruptShadow(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length - 1 && LEGACY_PREFIXES.has(bytes[i]!)) i++;
    const events = this.vcpu.getVcpuEvents();
    const shadow = bytes[i] === 0xfb ? KVM_X86_SHADOW_INT_STI : KVM_X86_SHADOW_INT_MOV_SS;
    this.vcpu.setVcpuEvents({ ...events, interrupt: { ...events.interrupt, shadow }, flags: VcpuEventValid.SHADOW });
  }

  private count(bytes: Uint8Array): void {
    const key = [...bytes.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /**
   * clac/stac without the interpreter, where they are valid (SMAP in the guest's CPUID, protected mode, CPL0):
   * only RFLAGS.AC changes. Returns a label, or undefined to let the interpreter handle the instruction.
   */
  private completeByHand(bytes: Uint8Array, regs: Regs, sregs: Sregs): string | undefined {
    if (!(this.smap && bytes[0] === 0x0f && bytes[1] === 0x01 && (bytes[2] === 0xca || bytes[2] === 0xcb))) return undefined;
    if (!(sregs.cr0 & CR0_PE) || sregs.ss.dpl !== 0) return undefined; // #UD there: the interpreter raises it
    if (regs.rflags & (1n << 17n)) return undefined; // virtual-8086 mode: #UD too
    const rflags = bytes[2] === 0xcb ? regs.rflags | RFLAGS_AC : regs.rflags & ~RFLAGS_AC;
    this.vcpu.setRegs({ ...regs, rip: regs.rip + 3n, rflags });
    return bytes[2] === 0xcb ? 'stac' : 'clac';
  }
}

/** CPUID entries → a leaf/subleaf lookup (the subleaf matters only for entries KVM marks index-significant). */
function cpuidLookup(entries: readonly CpuidEntry[]): (leaf: number, subleaf: number) => [number, number, number, number] | undefined {
  const SIGNIFICANT_INDEX = 1;
  return (leaf, subleaf) => {
    const e = entries.find((x) => x.function === leaf && (!(x.flags & SIGNIFICANT_INDEX) || x.index === subleaf));
    return e ? [e.eax | 0, e.ebx | 0, e.ecx | 0, e.edx | 0] : undefined;
  };
}

export function hex(n: bigint | number): string {
  return `0x${n.toString(16)}`;
}

export function formatBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}
