/**
 * Shared setup for the virtio-pci fast-path tests and bench: a KVM VM with the in-kernel irqchip, KVM fast paths
 * (lib/accel/kvm/fast-paths.ts) over the PC GSI routes, a virtio-rng on PCI bus 0 initialised by the host-side
 * test driver (MSI-X vector i for queue i, data 0x40 + i), and a CPL3 long-mode guest that writes the queue's
 * notify register `count` times, optionally spins until the device has used a buffer (used.idx != 0), then
 * writes SENTINEL (which kicks the vCPU out of runLoop / runInline).
 */
import type { AcceleratorFastPaths } from '../../lib/accel/accelerator.js';
import type { KvmVcpu } from '../../lib/kvm/index.js';
import { Bus } from '../../lib/machine/bus.js';
import { VirtioPciBus } from '../../lib/virtio/pci/attach.js';
import { NOTIFY_OFFSET, VIRTIO_BAR } from '../../lib/virtio/pci/constants.js';
import type { VirtioPciTransport } from '../../lib/virtio/pci/transport.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { u32 } from '../kvm/asm.js';
import { enterLongMode, load, type TestVm } from '../kvm/harness.js';
import { createFastPathVm } from '../kvm/fast-path-vm.js';
import { ConfigPorts, VirtioPciTestDriver } from '../pci/pci-driver.js';
import { GuestAllocator } from '../virtio/driver.js';

export const SENTINEL = 0xd000_0000;
const CODE = 0x1000;
const APIC_SVR = 0xf0;
const APIC_IRR = 0x200;

export interface FastPathRig {
  t: TestVm;
  vcpu: KvmVcpu;
  pio: Bus;
  mmio: Bus;
  fast: AcceleratorFastPaths | undefined;
  transport: VirtioPciTransport;
  driver: VirtioPciTestDriver;
  /** Guest-physical address of queue 0's notify register. */
  notifyAddress: number;
  /** Addresses of the MMIO writes that reached userspace (KVM_EXIT_MMIO). */
  mmioExits: number[];
  /** Run the guest until it writes SENTINEL: on a run thread, or inline on the JS thread. */
  run(model?: 'thread' | 'inline'): Promise<string>;
  /** Is `vector` requested in the LAPIC (IRR)? */
  irr(vector: number): boolean;
  close(): void;
}

/** `withFastPaths: false` builds the same machine with every notification through the MMIO bus. */
export function createRig(notifications: number, withFastPaths: boolean, options: { waitForUsed?: boolean; moveBar4To?: number } = {}): FastPathRig {
  const { t, fast } = createFastPathVm(withFastPaths);
  try {
    const vcpu = t.createVcpu(0);
    // Software-enable the LAPIC (SVR bit 8) so it accepts fixed interrupts.
    const lapic = vcpu.getLapic();
    new DataView(lapic.buffer).setUint32(APIC_SVR, 0x1ff, true);
    vcpu.setLapic(lapic);
    const pio = new Bus('pio');
    const mmio = new Bus('mmio');
    const memory = t.vm.guestMemory();
    const bus = new VirtioPciBus(pio, mmio, memory, t.vm, () => {}, fast);
    const transport = bus.add(new VirtioRng(), 'virtio-rng');
    const device = 1; // 00:00.0 is the host bridge; the first function goes to slot 1
    const driver = new VirtioPciTestDriver(new ConfigPorts(pio), mmio, device, memory, new GuestAllocator(0x100000, 0x400000));
    driver.init();
    if (options.moveBar4To !== undefined) {
      // As a guest OS reassigning resources would: memory decoding off, new BAR4 (64-bit), decoding on.
      const cfg = new ConfigPorts(pio);
      const command = cfg.read(device, 0x04, 2);
      cfg.write(device, 0x04, 2, command & ~0x2);
      cfg.write(device, 0x20, 4, options.moveBar4To);
      cfg.write(device, 0x24, 4, 0);
      cfg.write(device, 0x04, 2, command);
    }
    const mapped = transport.pci.barMapping(VIRTIO_BAR);
    if (mapped === undefined) throw new Error('BAR4 not decoded');
    const notifyAddress = mapped + NOTIFY_OFFSET;
    const usedIdx = driver.queues[0]!.used + 2;
    const waitForUsed = options.waitForUsed
      ? [0x66, 0x83, 0x3c, 0x25, ...u32(usedIdx), 0x00, 0x74, 0xf5] // wait: cmp word [usedIdx], 0 ; je wait (9 + 2 bytes back)
      : [];
    load(t.ram, CODE, [
      0xbb, ...u32(notifyAddress),   // mov ebx, notify
      0xb9, ...u32(notifications),   // mov ecx, count
      0x66, 0xc7, 0x03, 0x00, 0x00,  // again: mov word [rbx], 0   (queue 0)
      0xff, 0xc9,                    // dec ecx
      0x75, 0xf7,                    // jnz again
      ...waitForUsed,
      0xbb, ...u32(SENTINEL),        // mov ebx, SENTINEL
      0x89, 0x03,                    // mov [rbx], eax
      0xeb, 0xfe,                    // jmp $
    ]);
    enterLongMode(vcpu, t.ram, CODE, 3);
    mmio.register(SENTINEL, 0x1000, { read: () => 0, write: () => vcpu.kick() }, 'sentinel');
    const mmioExits: number[] = [];
    const handlers = {
      pio,
      mmio: {
        read: (a: number, s: number) => mmio.read(a, s),
        write: (a: number, s: number, v: number) => { mmioExits.push(a); mmio.write(a, s, v); },
      },
    };
    return {
      t, vcpu, pio, mmio, fast, transport, driver, notifyAddress, mmioExits,
      run: async (model = 'thread') => (await (model === 'inline' ? vcpu.runInline(handlers) : vcpu.runLoop(handlers))).reason,
      irr: (vector) => {
        const regs = new DataView(vcpu.getLapic().buffer);
        return ((regs.getUint32(APIC_IRR + 0x10 * (vector >>> 5), true) >>> (vector & 31)) & 1) === 1;
      },
      close: () => { bus.detach(); t.close(); },
    };
  } catch (e) {
    t.close();
    throw e;
  }
}

/** Resolves when `done()` holds, polling from the event loop; rejects after `ms`. */
export async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
