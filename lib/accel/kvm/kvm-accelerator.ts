/**
 * The KVM accelerator: guest RAM in KVM memory slots, the in-kernel irqchip (PIC + IOAPIC + LAPICs) and PIT,
 * a lone vCPU on the JS thread (runInline), otherwise a native run thread per vCPU (runLoop), IO/MMIO exits
 * dispatched to the Machine's buses, and the exits KVM leaves to userspace (SHUTDOWN, SYSTEM_EVENT,
 * INTERNAL_ERROR...) turned into VcpuStop results.
 */
import {
  Cap, type CpuidEntry, type ExitHandlers, type Fpu, type GsiRoute, instructionAt, InternalErrorSub, Irqchip, Kvm, type KvmVcpu, type KvmVm, MpState, type Regs,
  type Sregs, SystemEventType, type GuestRam, type VcpuEvents, VcpuEventValid, type VcpuExit,
} from '../../kvm/index.js';
import type { BootCpuState } from '../../machine/boot/cpu-state.js';
import type { GuestMemory } from '../../machine/guest-memory.js';
import type { InterruptController, MsiSink } from '../../machine/irq.js';
import { KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR } from '../../machine/layout.js';
import type { Accelerator, AcceleratorFastPaths, AcceleratorOptions, MachineBuses, RamRegion, VcpuStop } from '../accelerator.js';
import { applyBootState } from './boot-state.js';
import { baseCpuid, maskedFeatureNames, perVcpuCpuid } from './cpuid.js';
import { EmulationCompleter, formatBytes, hex } from './emulation.js';
import { createKvmFastPaths, GsiRouter } from './fast-paths.js';
import { type PlatformState, PlatformSnapshot, readPlatformState } from './platform-state.js';

export interface KvmAcceleratorOptions extends AcceleratorOptions {
  /** Default /dev/kvm. */
  path?: string;
  /** The host emulates guest supervisor code (kvm_pvm): mask CPUID features its emulator lacks. */
  emulatingHost: boolean;
  /**
   * Complete failed clac/stac by hand where valid (default true: ~1.3x cheaper than the per-vCPU interpreter step
   * on kvm_pvm, bench/kvm-emulation.ts, and Linux runs clac at every exception entry); false sends every failed
   * emulation through the interpreter (lib/cpu ExternalStepper).
   */
  completeByHand?: boolean;
  /**
   * Where vCPU 0 runs KVM_RUN: 'inline' on the JS thread, kicked out whenever the event loop has work — the
   * cheapest exits; 'thread' on its own native thread like the APs. Default: inline for a one-vCPU machine,
   * thread with APs — every AP exit reaches JS through the event loop, which must then kick vCPU 0 out of the
   * guest; measured on kvm_pvm (reference kernel to "Run /init", same load, side by side): 2 vCPUs inline
   * 284 s / 410 s vs thread 218 s / 312 s; 1 vCPU inline 382 s vs thread 372 s.
   */
  bspRunModel?: 'inline' | 'thread';
  /** runInline time slice in ms (lib/kvm KvmVcpu.runInline): how long queued microtasks may wait at most. */
  inlineSliceMs?: number;
}

/** The power-on state of a vCPU as KVM created it, restored on machine reset. */
interface VcpuSnapshot {
  regs: Regs;
  sregs: Sregs;
  fpu: Fpu;
  lapic: Uint8Array;
  mpState: number;
  /** Pending/injected exception, interrupt, NMI and SIPI state (restored with the VALID flags below). */
  events: VcpuEvents;
}

/** Which optional kvm_vcpu_events fields a reset writes back (NMI pending, SIPI vector, interrupt shadow). */
const RESET_EVENT_FLAGS = VcpuEventValid.NMI_PENDING | VcpuEventValid.SIPI_VECTOR | VcpuEventValid.SHADOW;

interface VcpuSlot {
  vcpu: KvmVcpu;
  snapshot: VcpuSnapshot;
  completer: EmulationCompleter;
}

export class KvmAccelerator implements Accelerator {
  readonly name = 'kvm' as const;
  description = 'KVM';
  readonly interrupts: InterruptController;
  readonly msi: MsiSink;
  /** ioeventfd notifications and irqfd MSIs for devices (undefined if this KVM or addon lacks a piece). */
  readonly fastPaths: AcceleratorFastPaths | undefined;
  /** Failed emulations completed in userspace, over the machine's life. */
  emulationsCompleted = 0;

  private readonly kvm: Kvm;
  private readonly vm: KvmVm;
  private readonly rams: GuestRam[] = [];
  /** PIC, IOAPIC and PIT as KVM created them; a machine reset writes it back. */
  private readonly platformPowerOn: PlatformSnapshot;
  private memory: GuestMemory | undefined;
  private buses: MachineBuses | undefined;
  private handlers: ExitHandlers = {};
  private slots: VcpuSlot[] = [];
  private cpuid: CpuidEntry[] = [];
  private stopping = false;
  private running: Promise<VcpuStop> | undefined;
  private closed = false;

  constructor(private readonly options: KvmAcceleratorOptions) {
    this.kvm = Kvm.open(options.path);
    try {
      this.vm = this.kvm.createVm();
      this.vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
      this.vm.setTssAddr(KVM_TSS_ADDR);
      this.vm.createIrqchip();
      this.vm.createPit2();
      this.platformPowerOn = PlatformSnapshot.capture(this.vm);
      const routes = pcGsiRouting();
      this.vm.setGsiRouting(routes);
      const router = new GsiRouter(this.vm, routes, IOAPIC_PINS, this.vm.checkExtension(Cap.IRQ_ROUTING) || IOAPIC_PINS);
      this.fastPaths = createKvmFastPaths(this.kvm, this.vm, router);
    } catch (e) {
      this.kvm.close();
      throw e;
    }
    const vm = this.vm;
    this.interrupts = { setIrq: (gsi, level) => vm.irqLine(gsi, level) };
    this.msi = { sendMsi: (address, data) => { vm.signalMsi(address, data); } };
  }

  /** Failed emulations completed so far, by the first bytes of the instruction (e.g. "cc 90 90" for int3), most first. */
  emulationCounts(): [string, number][] {
    const all = new Map<string, number>();
    for (const { completer } of this.slots) for (const [k, n] of completer.counts) all.set(k, (all.get(k) ?? 0) + n);
    return [...all].sort((a, b) => b[1] - a[1]);
  }

  /** CPUID features hidden because this host's emulator cannot run them (empty on VT-x/AMD-V). */
  get maskedFeatures(): string[] {
    return maskedFeatureNames({ emulatingHost: this.options.emulatingHost, cpus: this.slots.length });
  }

  allocateMemory(regions: readonly RamRegion[]): GuestMemory {
    if (this.memory) throw new Error('KVM accelerator: memory is already allocated');
    regions.forEach((r, slot) => {
      const ram = this.kvm.allocateRam(r.size);
      this.rams.push(ram);
      this.vm.setMemoryRegion({ slot, guestAddress: r.guestAddress, ram });
    });
    this.memory = this.vm.guestMemory();
    return this.memory;
  }

  attach(buses: MachineBuses): void {
    this.buses = buses;
    this.handlers = { pio: buses.pio, mmio: buses.mmio };
  }

  createVcpus(count: number, boot: BootCpuState): void {
    if (!this.buses) throw new Error('KVM accelerator: attach() the buses before creating vCPUs');
    const buses = this.buses;
    this.cpuid = baseCpuid(this.kvm.supportedCpuid(), { emulatingHost: this.options.emulatingHost, cpus: count });
    for (let id = 0; id < count; id++) {
      const vcpu = this.vm.createVcpu(id);
      vcpu.setCpuid(perVcpuCpuid(this.cpuid, id));
      // What the guest really sees (KVM may adjust the table we set, e.g. kvm_pvm reports SMAP): the
      // interpreter completing failed emulations follows it.
      const cpuid = vcpu.getCpuid();
      const snapshot: VcpuSnapshot = {
        regs: vcpu.getRegs(), sregs: vcpu.getSregs(), fpu: vcpu.getFpu(), lapic: vcpu.getLapic(), mpState: vcpu.getMpState(),
        events: { ...vcpu.getVcpuEvents(), flags: RESET_EVENT_FLAGS },
      };
      this.slots.push({ vcpu, snapshot, completer: new EmulationCompleter(vcpu, buses, { byHand: this.options.completeByHand ?? true, cpuid }) });
    }
    applyBootState(this.slots[0]!.vcpu, boot);
  }

  /**
   * Machine reset: the in-kernel PIC, IOAPIC and PIT back to their power-on state (KVM would otherwise keep the
   * previous boot's programming), then every vCPU (registers, FPU, LAPIC incl. its timer, pending events, MP state).
   */
  resetVcpus(boot: BootCpuState): void {
    if (this.running) throw new Error('KVM accelerator: resetVcpus() while running');
    this.platformPowerOn.restore(this.vm);
    for (const { vcpu, snapshot } of this.slots) {
      vcpu.setRegs(snapshot.regs);
      vcpu.setSregs(snapshot.sregs);
      vcpu.setFpu(snapshot.fpu);
      vcpu.setLapic(snapshot.lapic);
      vcpu.setVcpuEvents(snapshot.events);
      vcpu.setMpState(snapshot.mpState);
    }
    const bsp = this.slots[0];
    if (bsp) {
      applyBootState(bsp.vcpu, boot);
      bsp.vcpu.setMpState(MpState.RUNNABLE);
    }
  }

  /** The in-kernel PIC pair, IOAPIC and PIT now (diagnostics; tests compare it with powerOnPlatformState). */
  platformState(): PlatformState {
    return readPlatformState(this.vm);
  }

  /** The same chips as KVM created them: what resetVcpus() restores. */
  get powerOnPlatformState(): PlatformState {
    return this.platformPowerOn.decode();
  }

  run(): Promise<VcpuStop> {
    if (this.closed) return Promise.reject(new Error('KVM accelerator is closed'));
    if (this.running) return this.running;
    this.stopping = false;
    const run = this.runAll().finally(() => { this.running = undefined; });
    this.running = run;
    return run;
  }

  /** vCPU 0 runs inline (see KvmAcceleratorOptions.bspRunModel). */
  private get bspInline(): boolean {
    return (this.options.bspRunModel ?? (this.slots.length === 1 ? 'inline' : 'thread')) === 'inline';
  }

  private async runAll(): Promise<VcpuStop> {
    let first: VcpuStop | undefined;
    const loops = this.slots.map(async (slot, cpu) => {
      const stop = await this.runVcpu(slot, cpu);
      // The first vCPU to stop for a reason of its own stops the machine.
      if (stop.kind !== 'stopped' && first === undefined) {
        first = stop;
        this.requestStop();
      }
    });
    await Promise.all(loops);
    return first ?? { kind: 'stopped' };
  }

  private async runVcpu(slot: VcpuSlot, cpu: number): Promise<VcpuStop> {
    const { vcpu } = slot;
    for (;;) {
      if (this.stopping) return { kind: 'stopped' };
      let exit;
      try {
        // vCPU 0 may run KVM_RUN on the JS thread (no thread hand-off per exit; the event loop is kept live by
        // kicks for ready I/O and due timers); APs run on their own native threads (one inline vCPU per thread).
        // A vCPU stays on one model for its life (switching threads makes KVM re-home it).
        exit = await (cpu === 0 && this.bspInline ? vcpu.runInline(this.handlers, this.options.inlineSliceMs) : vcpu.runLoop(this.handlers));
      } catch (e) {
        // EAGAIN: an AP waiting for SIPI (KVM_MP_STATE_UNINITIALIZED) took an INIT/SIPI and must simply be run
        // again; EINTR: a signal arrived at the run thread.
        const code = (e as { code?: unknown }).code;
        if (code === 'EAGAIN' || code === 'EINTR') continue;
        return { kind: 'error', cpu, detail: `vCPU ${cpu}: ${e instanceof Error ? e.message : String(e)}` };
      }
      const stop = this.handleExit(slot, cpu, exit);
      if (stop) return stop;
    }
  }

  /** Undefined: resume the vCPU. */
  private handleExit(slot: VcpuSlot, cpu: number, exit: VcpuExit | { reason: 'closed' }): VcpuStop | undefined {
    switch (exit.reason) {
      case 'intr':
        return this.stopping ? { kind: 'stopped' } : undefined;
      case 'closed':
        return { kind: 'stopped' };
      case 'hlt':
        // With the in-kernel irqchip KVM handles HLT itself; reaching userspace means no interrupt can ever come.
        return { kind: 'power-off', detail: `vCPU ${cpu} halted with no interrupt controller to wake it` };
      case 'shutdown':
        return { kind: 'triple-fault', cpu, detail: this.describeCpu(slot, cpu, 'triple fault (shutdown)') };
      case 'system-event':
        if (exit.type === SystemEventType.RESET) return { kind: 'reset', detail: `vCPU ${cpu} requested a system reset` };
        if (exit.type === SystemEventType.SHUTDOWN) return { kind: 'power-off', detail: `vCPU ${cpu} powered the system off` };
        return { kind: 'error', cpu, detail: `vCPU ${cpu}: system event ${exit.type}` };
      case 'internal-error': {
        if (exit.suberror !== InternalErrorSub.EMULATION) {
          return { kind: 'error', cpu, detail: this.describeCpu(slot, cpu, `KVM internal error (suberror ${exit.suberror})`) };
        }
        const outcome = slot.completer.complete();
        if (outcome.ok) {
          this.emulationsCompleted++;
          if (this.emulationsCompleted === 1) {
            this.options.log?.(`KVM could not emulate an instruction; completing such instructions in userspace (${outcome.how})`);
          }
          return undefined;
        }
        return {
          kind: 'emulation-failure', cpu, rip: outcome.rip, bytes: outcome.bytes,
          detail: `emulation failure on vCPU ${cpu} at RIP ${hex(outcome.rip)} (bytes ${formatBytes(outcome.bytes)}): ${outcome.detail}`,
        };
      }
      case 'fail-entry':
        return { kind: 'error', cpu, detail: this.describeCpu(slot, cpu, `VM entry failed (hardware reason ${hex(exit.hardwareEntryFailureReason)})`) };
      default:
        return { kind: 'error', cpu, detail: this.describeCpu(slot, cpu, `unexpected KVM exit "${exit.reason}"`) };
    }
  }

  private describeCpu(slot: VcpuSlot, cpu: number, what: string): string {
    try {
      const { rip } = slot.vcpu.getRegs();
      const bytes = this.memory ? instructionBytes(slot.vcpu, this.memory) : new Uint8Array();
      return `${what} on vCPU ${cpu} at RIP ${hex(rip)} (bytes ${bytes.length ? formatBytes(bytes) : 'unavailable'})`;
    } catch {
      return `${what} on vCPU ${cpu}`;
    }
  }

  requestStop(): void {
    this.stopping = true;
    for (const { vcpu } of this.slots) if (vcpu.isRunning) vcpu.kick();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopping = true;
    this.vm.close();
    for (const ram of this.rams) ram.close();
    this.kvm.close();
  }
}

function instructionBytes(vcpu: KvmVcpu, memory: GuestMemory): Uint8Array {
  return instructionAt(vcpu, memory).bytes;
}

export const IOAPIC_PINS = 24;

/**
 * GSI → irqchip routes as on a PC (and as QEMU sets them up): ISA IRQs 0-15 reach the 8259 pair and the
 * IOAPIC, the PIT's IRQ 0 arrives at IOAPIC pin 2 (what the MP table announces), and IRQ 2 is only the cascade.
 */
export function pcGsiRouting(): GsiRoute[] {
  const routes: GsiRoute[] = [];
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    if (gsi < 8) routes.push({ gsi, type: 'irqchip', irqchip: Irqchip.PIC_MASTER, pin: gsi });
    else if (gsi < 16) routes.push({ gsi, type: 'irqchip', irqchip: Irqchip.PIC_SLAVE, pin: gsi - 8 });
    if (gsi === 2) continue;
    routes.push({ gsi, type: 'irqchip', irqchip: Irqchip.IOAPIC, pin: gsi === 0 ? 2 : gsi });
  }
  return routes;
}
