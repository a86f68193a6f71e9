/**
 * Putting virtio-pci devices into a machine: a host bridge on ports 0xcf8-0xcff, each device in the next
 * slot of bus 0, its BARs preassigned (no firmware) in a window of the MMIO hole that virtio-mmio slots
 * (which grow up from 0xd0000000 in 4 KiB steps) never reach. Given an interrupt controller, each device's
 * INTA# is wired to IOAPIC pin pciIntxGsi(slot) (lib/pci/intx-routing.ts, announced in the MP table) for
 * drivers that do not use MSI-X; its interrupt line register holds that GSI, as firmware would leave it.
 */
import type { AcceleratorFastPaths } from '../../accel/accelerator.js';
import type { Bus } from '../../machine/bus.js';
import type { GuestMemory } from '../../machine/guest-memory.js';
import type { InterruptController, MsiSink } from '../../machine/irq.js';
import { PciBarAllocator } from '../../pci/bar-allocator.js';
import { PciHostBridge } from '../../pci/host-bridge.js';
import { PciIntxRouter, pciIntxGsi } from '../../pci/intx-routing.js';
import type { VirtioDevice } from '../device.js';
import { VirtioPciTransport } from './transport.js';

/** [start, end) of guest-physical space for PCI BARs: inside the MMIO hole, below the IOAPIC. */
export const PCI_MMIO_WINDOW_START = 0xe000_0000;
export const PCI_MMIO_WINDOW_END = 0xfe00_0000;

export class VirtioPciBus {
  readonly bridge: PciHostBridge;
  readonly transports: VirtioPciTransport[] = [];
  private readonly allocator = new PciBarAllocator(PCI_MMIO_WINDOW_START, PCI_MMIO_WINDOW_END);
  /** INTx wiring; undefined: functions get no interrupt pin (MSI-X only). */
  readonly intx: PciIntxRouter | undefined;

  constructor(
    private readonly pio: Bus,
    private readonly mmio: Bus,
    private readonly memory: GuestMemory,
    private readonly msi: MsiSink,
    private readonly log: (message: string) => void,
    /** Accelerator shortcuts (ioeventfd notifications, irqfd MSIs); omitted: everything through the buses. */
    private readonly fastPaths?: AcceleratorFastPaths,
    /** The platform's GSIs (Accelerator.interrupts): INTA# of each slot goes to pciIntxGsi(slot). */
    interrupts?: InterruptController,
  ) {
    this.intx = interrupts ? new PciIntxRouter(interrupts) : undefined;
    this.bridge = new PciHostBridge({ log });
    this.bridge.attach(pio);
  }

  /** Plug `device` into the next free slot; returns its transport. */
  add(device: VirtioDevice, name: string): VirtioPciTransport {
    const slot = this.bridge.freeSlot();
    if (slot === undefined) throw new RangeError(`PCI bus 0 is full: cannot add ${name}`);
    const intx = this.intx ? { intx: this.intx.lineFor(slot), intxLine: pciIntxGsi(slot) } : {};
    const transport = new VirtioPciTransport(device, this.memory, { msi: this.msi, fastPaths: this.fastPaths, log: this.log, name, ...intx });
    this.allocator.place(transport.pci);
    this.bridge.addFunction(transport.pci, slot);
    transport.pci.attach(this.mmio);
    this.transports.push(transport);
    return transport;
  }

  /** Remove the bridge and every BAR from the buses. */
  detach(): void {
    for (const t of this.transports) {
      t.pci.detach();
      t.closeFastPaths();
    }
    this.pio.unregister(this.bridge);
  }
}
