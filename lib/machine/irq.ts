/**
 * How devices raise interrupts without knowing the accelerator. On KVM the lines end in KVM_IRQ_LINE
 * (in-kernel PIC/IOAPIC); on the interpreter they end in the TypeScript PIC/IOAPIC.
 */

/** One interrupt input. Level-triggered devices hold it; edge-triggered devices call set(true) then set(false). */
export interface IrqLine {
  set(level: boolean): void;
}

/** Global system interrupts (GSI 0-23 on the IOAPIC, 0-15 also on the PIC pair). */
export interface InterruptController {
  setIrq(gsi: number, level: boolean): void;
}

/** Message-signalled interrupts (virtio-pci MSI-X). */
export interface MsiSink {
  sendMsi(address: number, data: number): void;
}

export function irqLine(controller: InterruptController, gsi: number): IrqLine {
  return { set: (level) => controller.setIrq(gsi, level) };
}

/**
 * What a CPU asks its interrupt controller (LAPIC, or the PIC in virtual-wire mode) at instruction boundaries.
 * Used by the interpreter only: on KVM the in-kernel irqchip does this.
 */
export interface CpuInterruptSource {
  /** True when a maskable interrupt is waiting (the CPU takes it when IF=1 and no interrupt shadow). */
  hasInterrupt(): boolean;
  /** The CPU takes the interrupt: returns its vector and moves it from IRR to ISR (INTA cycle). */
  acknowledge(): number;
}
