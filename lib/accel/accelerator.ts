/**
 * What the Machine needs from whatever runs its vCPUs. Two implementations: KVM (lib/accel/kvm/) and the
 * TypeScript interpreter (lib/accel/interp/). The Machine, the loaders and every device are shared; only the
 * CPU, the memory backing and the interrupt controllers (in-kernel on KVM, TypeScript on the interpreter) differ.
 */
import type { Bus } from '../machine/bus.js';
import type { GuestMemory } from '../machine/guest-memory.js';
import type { InterruptController, MsiSink } from '../machine/irq.js';

export type AccelName = 'kvm' | 'interp';

/** Where guest RAM must be. */
export interface RamRegion {
  guestAddress: number;
  size: number;
}

/** Why the vCPUs stopped. The Machine turns this into a lifecycle transition and an exit status. */
export type VcpuStop =
  | { kind: 'stopped' } // requestStop() was called (user quit, debug-exit, machine.stop())
  | { kind: 'power-off'; detail: string } // all vCPUs halted with interrupts disabled, or an ACPI/system event
  | { kind: 'reset'; detail: string } // guest asked for a reboot (KVM SYSTEM_EVENT reset)
  | { kind: 'triple-fault'; cpu: number; detail: string }
  | { kind: 'emulation-failure'; cpu: number; rip: bigint; bytes: Uint8Array; detail: string }
  | { kind: 'error'; cpu: number; detail: string };

export interface MachineBuses {
  readonly memory: GuestMemory;
  readonly pio: Bus;
  readonly mmio: Bus;
}

// BootCpuState comes from lib/machine/boot (being written); until then the boot state is a type parameter.
export interface Accelerator<BootCpuState = unknown> {
  readonly name: AccelName;
  /** Human-readable reason the accelerator was chosen, set by the selector (e.g. "--accel auto: kvm_pvm emulates CPL0"). */
  readonly description: string;

  allocateMemory(regions: RamRegion[]): GuestMemory;
  /**
   * Connect to the machine's buses. The interpreter registers its TypeScript PIC/PIT/IOAPIC/LAPIC here;
   * KVM creates the in-kernel irqchip and PIT.
   */
  attach(buses: MachineBuses): void;
  readonly interrupts: InterruptController;
  readonly msi: MsiSink | undefined;

  /** Create `count` vCPUs: vCPU 0 starts from `boot`; the others wait for INIT/SIPI from the guest. */
  createVcpus(count: number, boot: BootCpuState): void;
  /** Run until the vCPUs stop; never blocks the event loop. */
  run(): Promise<VcpuStop>;
  /** Make run() resolve with { kind: 'stopped' } as soon as every vCPU is out of the guest. Idempotent. */
  requestStop(): void;
  close(): void;
}
