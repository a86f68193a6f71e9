/**
 * KVM's device shortcuts (AcceleratorFastPaths): guest notification writes become ioeventfds (the write completes
 * in the kernel, no KVM_EXIT_MMIO, and the device hears of it from the event loop), and MSIs go out through
 * irqfds whose GSIs carry MSI routes. The GSI routing table is replaced as a whole (KVM_SET_GSI_ROUTING), so
 * this module owns it: the PC irqchip routes plus one MSI route per channel slot.
 */
import { Cap, type EventFd, type GsiRoute, type Kvm, type KvmVm } from '../../kvm/index.js';
import type { AcceleratorFastPaths, FastPathHandle, MmioWriteWatch, MsiChannel } from '../accelerator.js';

/** Owns the VM's GSI routing table: fixed irqchip routes below `firstFree`, MSI routes allocated above. */
export class GsiRouter {
  private readonly msiRoutes = new Map<number, GsiRoute>();
  private readonly freed: number[] = [];
  private next: number;

  constructor(private readonly vm: KvmVm, private readonly base: readonly GsiRoute[], firstFree: number, private readonly limit: number) {
    this.next = firstFree;
  }

  /** A GSI for an MSI route (not routed until setMsi). Throws when the table is full. */
  allocate(): number {
    const gsi = this.freed.pop() ?? this.next++;
    if (gsi >= this.limit) throw new RangeError(`KVM GSI routing: no free GSI (limit ${this.limit})`);
    return gsi;
  }

  release(gsi: number): void {
    if (this.msiRoutes.delete(gsi)) this.commit();
    this.freed.push(gsi);
  }

  /** Points `gsi` at the message (address, data) and installs the table. */
  setMsi(gsi: number, address: number, data: number): void {
    this.msiRoutes.set(gsi, { gsi, type: 'msi', addressLo: address % 0x1_0000_0000, addressHi: Math.floor(address / 0x1_0000_0000), data: data >>> 0 });
    this.commit();
  }

  private commit(): void {
    this.vm.setGsiRouting([...this.base, ...this.msiRoutes.values()]);
  }
}

interface Slot {
  gsi: number;
  eventFd: EventFd;
  address: number;
  data: number;
  routed: boolean;
  lastUse: number;
}

/**
 * An MsiSink over irqfds: each slot is an eventfd bound to a GSI; a message that matches a slot's route is one
 * eventfd write, a new message reprograms the least recently used slot's route first. Masking and pending bits
 * stay with the caller (lib/pci MsixCapability decides whether to send at all).
 */
class IrqfdMsiChannel implements MsiChannel {
  private readonly slots: Slot[] = [];
  private clock = 0;
  private closed = false;
  /** Messages sent, and how many needed a route change (a KVM_SET_GSI_ROUTING ioctl). */
  sent = 0;
  reroutes = 0;

  constructor(private readonly kvm: Kvm, private readonly vm: KvmVm, private readonly router: GsiRouter, count: number) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`MSI channel: slots must be a positive integer, got ${count}`);
    try {
      for (let i = 0; i < count; i++) {
        const gsi = router.allocate();
        const eventFd = kvm.createEventFd(0, { nonblock: true });
        this.slots.push({ gsi, eventFd, address: 0, data: 0, routed: false, lastUse: 0 });
        vm.irqfd({ eventFd, gsi });
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  sendMsi(address: number, data: number): void {
    if (this.closed) return;
    let slot = this.slots.find((s) => s.routed && s.address === address && s.data === data);
    if (!slot) {
      slot = this.slots.reduce((a, b) => (b.lastUse < a.lastUse ? b : a));
      this.router.setMsi(slot.gsi, address, data);
      slot.address = address;
      slot.data = data;
      slot.routed = true;
      this.reroutes++;
    }
    slot.lastUse = ++this.clock;
    this.sent++;
    slot.eventFd.write(1);
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots) {
      try { this.vm.removeIrqfd({ eventFd: s.eventFd, gsi: s.gsi }); } catch { /* the VM may already be closed */ }
      s.eventFd.close();
      try { this.router.release(s.gsi); } catch { /* same */ }
    }
    this.slots.length = 0;
  }
}

class KvmFastPaths implements AcceleratorFastPaths {
  constructor(private readonly kvm: Kvm, private readonly vm: KvmVm, private readonly router: GsiRouter) {}

  watchMmioWrite(watch: MmioWriteWatch): FastPathHandle {
    const { address, length, datamatch } = watch;
    if (!Number.isSafeInteger(address) || address < 0) throw new RangeError(`ioeventfd: bad address ${address}`);
    if (length !== 1 && length !== 2 && length !== 4 && length !== 8) throw new RangeError(`ioeventfd: bad length ${String(length)}`);
    const eventFd = this.kvm.createEventFd(0, { nonblock: true });
    const spec = { address, length, eventFd, ...(datamatch === undefined ? {} : { datamatch }) };
    try {
      this.vm.ioeventfd(spec);
    } catch (e) {
      eventFd.close();
      throw e;
    }
    eventFd.watch((count) => watch.onWrite(count));
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        eventFd.unwatch();
        try { this.vm.removeIoeventfd(spec); } catch { /* the VM may already be closed */ }
        // A write that landed before the deassign is still in the counter: deliver it rather than lose it.
        const pending = eventFd.read();
        eventFd.close();
        if (pending) watch.onWrite(pending);
      },
    };
  }

  createMsiChannel(slots: number): MsiChannel {
    return new IrqfdMsiChannel(this.kvm, this.vm, this.router, slots);
  }
}

/**
 * The fast paths for `vm`, or undefined when KVM or the addon lacks a piece (ioeventfd, irqfd, GSI routing,
 * or an addon that cannot watch an eventfd from the event loop).
 */
export function createKvmFastPaths(kvm: Kvm, vm: KvmVm, router: GsiRouter): AcceleratorFastPaths | undefined {
  if (!vm.checkExtension(Cap.IOEVENTFD) || !vm.checkExtension(Cap.IRQFD) || !vm.checkExtension(Cap.IRQ_ROUTING)) return undefined;
  const probe = kvm.createEventFd(0, { nonblock: true });
  const canWatch = probe.canWatch;
  probe.close();
  return canWatch ? new KvmFastPaths(kvm, vm, router) : undefined;
}
