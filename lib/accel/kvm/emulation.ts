/**
 * Completing instructions the host's in-kernel emulator gave up on (KVM_EXIT_INTERNAL_ERROR, suberror
 * EMULATION). On an emulating host (kvm_pvm) every guest instruction at CPL0 goes through KVM's x86 emulator,
 * which lacks some instructions (int3, clac/stac, popcnt, movbe, xsave...). A real VT-x/AMD-V host never gets
 * here. The one instruction is executed by nodevmm's interpreter (lib/cpu stepExternal) against the vCPU's
 * registers and guest memory, the state is written back, and the guest resumes.
 *
 * Two cases are completed by hand before the interpreter is asked, because KVM can do the hard part itself:
 * int3 (inject #BP with RIP past the instruction: KVM delivers it through the guest IDT exactly as the CPU
 * would) and clac/stac (only RFLAGS.AC changes).
 */
import { STATE_MSRS, stepExternal, type CpuState } from '../../cpu/index.js';
import type { KvmFpu } from '../../cpu/simd/fxsave.js';
import { instructionAt, type Fpu, type KvmVcpu } from '../../kvm/index.js';
import type { Bus } from '../../machine/bus.js';
import type { GuestMemory } from '../../machine/guest-memory.js';

const MSR_TSC = 0x10;
const RFLAGS_AC = 1n << 18n;
const BP_VECTOR = 3;

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

/** Per-vCPU: which of the interpreter's state MSRs this KVM can read (probed once). */
export class EmulationCompleter {
  private msrIndices: number[] | undefined;
  /** How many instructions were completed, by mnemonic-ish key (first byte(s)), for diagnostics. */
  readonly counts = new Map<string, number>();

  /**
   * @param byHand complete int3 and clac/stac without the interpreter (default true; false sends every failed
   *               emulation through lib/cpu stepExternal, which tests use to exercise the interpreter path)
   */
  constructor(private readonly vcpu: KvmVcpu, private readonly ctx: EmulationContext, private readonly byHand = true) {}

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

  private captureState(): CpuState {
    const regs = this.vcpu.getRegs();
    const sregs = this.vcpu.getSregs();
    const fpu = toKvmFpuShape(this.vcpu.getFpu());
    const msrs = new Map<number, bigint>();
    for (const m of this.vcpu.getMsrs(this.readableMsrs())) msrs.set(m.index, m.value);
    const events = this.vcpu.getVcpuEvents();
    const { interruptBitmap: _bitmap, ...sr } = sregs;
    return {
      regs, sregs: sr, fpu, msrs, debugRegs: [], halted: false,
      interruptShadow: events.interrupt.shadow !== 0, nmiPending: events.nmi.pending !== 0,
    };
  }

  /** Completes the instruction at RIP. Never throws. */
  complete(): EmulationOutcome {
    const at = instructionAt(this.vcpu, this.ctx.memory);
    if (at.bytes.length === 0) {
      return { ok: false, rip: at.rip, bytes: at.bytes, detail: `instruction at ${hex(at.linear)} is not in guest RAM` };
    }
    const special = this.byHand ? this.completeByHand(at.bytes) : undefined;
    if (special) {
      this.count(at.bytes);
      return { ok: true, how: special };
    }
    let interpError: string;
    try {
      const before = this.captureState();
      const sregsBefore = this.vcpu.getSregs();
      const { state, stop } = stepExternal(before, this.ctx.memory, {
        pio: this.ctx.pio, mmio: this.ctx.mmio, tsc: () => this.vcpu.getMsr(MSR_TSC),
      });
      if (stop.reason === 'shutdown') {
        return { ok: false, rip: at.rip, bytes: at.bytes, detail: `triple fault while completing the instruction: ${stop.detail}` };
      }
      this.vcpu.setSregs({ ...state.sregs, interruptBitmap: sregsBefore.interruptBitmap });
      this.vcpu.setRegs(state.regs);
      if (!sameFpu(before.fpu, state.fpu)) this.vcpu.setFpu(fromKvmFpuShape(state.fpu));
      const changed = [...state.msrs].filter(([k, v]) => k !== MSR_TSC && before.msrs.get(k) !== v);
      if (changed.length > 0) this.vcpu.setMsrs(changed.map(([index, value]) => ({ index, value })));
      this.count(at.bytes);
      return { ok: true, how: 'interpreter' };
    } catch (e) {
      interpError = e instanceof Error ? e.message : String(e);
    }
    return { ok: false, rip: at.rip, bytes: at.bytes, detail: `the interpreter could not complete it: ${interpError}` };
  }

  private count(bytes: Uint8Array): void {
    const key = [...bytes.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** int3 and clac/stac without the interpreter. Returns a label, or undefined when the bytes are something else. */
  private completeByHand(bytes: Uint8Array): string | undefined {
    if (bytes[0] === 0xcc) {
      const regs = this.vcpu.getRegs();
      this.vcpu.setRegs({ ...regs, rip: regs.rip + 1n });
      const ev = this.vcpu.getVcpuEvents();
      this.vcpu.setVcpuEvents({
        ...ev,
        exception: { injected: 1, nr: BP_VECTOR, hasErrorCode: 0, pending: 0, errorCode: 0 },
        flags: 0,
      });
      return 'int3 → #BP';
    }
    if (bytes[0] === 0x0f && bytes[1] === 0x01 && (bytes[2] === 0xca || bytes[2] === 0xcb)) {
      const regs = this.vcpu.getRegs();
      const rflags = bytes[2] === 0xcb ? regs.rflags | RFLAGS_AC : regs.rflags & ~RFLAGS_AC;
      this.vcpu.setRegs({ ...regs, rip: regs.rip + 3n, rflags });
      return bytes[2] === 0xcb ? 'stac' : 'clac';
    }
    return undefined;
  }
}

export function hex(n: bigint | number): string {
  return `0x${n.toString(16)}`;
}

export function formatBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}
