/**
 * What the Machine needs from whatever runs its vCPUs. Two implementations: KVM (lib/accel/kvm/) and the
 * TypeScript interpreter (lib/accel/interp/). The Machine, the loaders and every device are shared; only the
 * CPU, the memory backing and the interrupt controllers (in-kernel on KVM, TypeScript on the interpreter) differ.
 *
 * Lifecycle, as the Machine drives it:
 *   allocateMemory(ramRegions) → attach(buses) → createVcpus(n, boot) → run() … requestStop() → run() resolves
 *   → (reset: resetVcpus(boot) → run() again) → close().
 * run() may be called again after it resolved with { kind: 'stopped' } (that is how pause/resume work).
 */
import type { Bus } from '../machine/bus.js';
import type { BootCpuState } from '../machine/boot/cpu-state.js';
import type { GuestMemory } from '../machine/guest-memory.js';
import type { InterruptController, MsiSink } from '../machine/irq.js';
import type { PlatformClock, TimerGroup } from '../devices/platform-clock.js';

export type AccelName = 'kvm' | 'interp';

/** Where guest RAM must be. */
export interface RamRegion {
  guestAddress: number;
  size: number;
}

/** Why the vCPUs stopped. The Machine turns this into a lifecycle transition and an exit status. */
export type VcpuStop =
  | { kind: 'stopped' } // requestStop() was called (user quit, debug-exit, machine.stop(), pause)
  | { kind: 'power-off'; detail: string } // all vCPUs halted with interrupts disabled, or an ACPI/system event
  | { kind: 'reset'; detail: string } // guest asked for a reboot (KVM SYSTEM_EVENT reset, triple fault policy)
  | { kind: 'triple-fault'; cpu: number; detail: string }
  | { kind: 'emulation-failure'; cpu: number; rip: bigint; bytes: Uint8Array; detail: string }
  | { kind: 'error'; cpu: number; detail: string };

export interface MachineBuses {
  readonly memory: GuestMemory;
  readonly pio: Bus;
  readonly mmio: Bus;
  /** The machine's virtual clock (the CMOS RTC runs on it); the interpreter may drive its timers from it. */
  readonly clock: PlatformClock;
  /** Machine-level timed devices (CMOS RTC). The Machine polls them itself; an accelerator may poll them too. */
  readonly timers: TimerGroup;
}

export interface AcceleratorOptions {
  /** Diagnostics (one line each), e.g. the first completion of a failed emulation. */
  log?: (message: string) => void;
}

/** Something registered with an accelerator fast path; dispose() unregisters it (idempotent). */
export interface FastPathHandle {
  dispose(): void;
}

/** A guest write the accelerator should turn into a callback instead of a bus access (KVM: an ioeventfd). */
export interface MmioWriteWatch {
  /** Guest-physical address of the register. */
  address: number;
  /** Only writes of exactly this size match; others still reach the bus. */
  length: 1 | 2 | 4 | 8;
  /** Only writes of this value match; omitted: any value. */
  datamatch?: number;
  /**
   * Called from the event loop, not at the write: `count` matching writes coalesced since the last call. The
   * receiver must treat it as "look again" (a virtio device re-reads its whole available ring), never as a tally.
   */
  onWrite(count: number): void;
}

/** An MsiSink backed by the accelerator's own injection path (KVM: irqfd + MSI routes); close it when done. */
export interface MsiChannel extends MsiSink, FastPathHandle {}

/**
 * Optional accelerator-specific shortcuts for devices. Everything here is an optimisation: a device that finds
 * `fastPaths` undefined (the interpreter) uses the buses and Accelerator.msi with the same results.
 */
export interface AcceleratorFastPaths {
  /** Matching guest writes stop reaching the MMIO bus and call `watch.onWrite` instead. */
  watchMmioWrite(watch: MmioWriteWatch): FastPathHandle;
  /**
   * An MsiSink that caches up to `slots` distinct (address, data) messages in injection routes; a device with N
   * MSI-X vectors asks for N slots so a stable table never reprograms a route. Callers still decide masking.
   */
  createMsiChannel(slots: number): MsiChannel;
}

export interface Accelerator {
  readonly name: AccelName;
  /** Human-readable reason the accelerator was chosen, set by the selector (e.g. "--accel auto: kvm_pvm emulates CPL0"). */
  description: string;

  allocateMemory(regions: readonly RamRegion[]): GuestMemory;
  /**
   * Connect to the machine's buses. The interpreter registers its TypeScript PIC/PIT/IOAPIC/LAPIC here;
   * KVM creates the in-kernel irqchip and PIT.
   */
  attach(buses: MachineBuses): void;
  readonly interrupts: InterruptController;
  readonly msi: MsiSink | undefined;
  /** Device shortcuts (ioeventfd/irqfd on KVM); undefined when the accelerator has none. */
  readonly fastPaths?: AcceleratorFastPaths | undefined;

  /** Create `count` vCPUs: vCPU 0 starts from `boot`; the others wait for INIT/SIPI from the guest. */
  createVcpus(count: number, boot: BootCpuState): void;
  /** Put every vCPU back to its power-on state, vCPU 0 at `boot` (machine reset; memory is reloaded by the Machine). */
  resetVcpus(boot: BootCpuState): void;
  /** Run until the vCPUs stop; never blocks the event loop. */
  run(): Promise<VcpuStop>;
  /** Make run() resolve with { kind: 'stopped' } as soon as every vCPU is out of the guest. Idempotent. */
  requestStop(): void;
  close(): void;
}

/**
 * What lib/accel/interp/index.ts must export as `createAccelerator` for `--accel interp` (lib/accel/select.ts
 * loads it dynamically so the KVM path works while the interpreter accelerator is being written).
 */
export type AcceleratorFactory = (options: AcceleratorOptions) => Accelerator | Promise<Accelerator>;
