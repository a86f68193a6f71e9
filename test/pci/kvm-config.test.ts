/**
 * The PCI host bridge and a virtio-pci BAR behind real KVM exits: a 64-bit guest (CPL3 with IOPL 3, which runs
 * natively even on kvm_pvm) reads the vendor/device dword of 00:01.0 through ports 0xcf8/0xcfc and num_queues
 * from the common configuration in BAR4 with an MMIO load; KVM_EXIT_IO and KVM_EXIT_MMIO land on the same Bus
 * objects the Machine uses. MSI-X messages go through KvmVm.sendMsi (KVM_SIGNAL_MSI) into the in-kernel LAPIC.
 */
import { afterEach, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { VirtioPciBus } from '../../lib/virtio/pci/attach.js';
import { u16, u32 } from '../kvm/asm.js';
import { createTestVm, describeKvm, enterLongMode, load, type TestVm } from '../kvm/harness.js';

const SENTINEL = 0xd000_0000;

describeKvm('PCI config + BAR accesses through KVM exits', () => {
  let t: TestVm | undefined;
  afterEach(() => { t?.close(); t = undefined; });

  it('reads 1af4:1044 via 0xcf8/0xcfc and num_queues via BAR4', async () => {
    t = createTestVm({ irqchip: true });
    const vcpu = t.createVcpu(0);
    const pio = new Bus('pio');
    const mmio = new Bus('mmio');
    const mem = GuestMemory.ofSize(1 << 20); // device-side RAM view is not used by this test (no rings)
    const bus = new VirtioPciBus(pio, mmio, mem, t.vm, () => {});
    bus.add(new VirtioRng(), 'rng');
    // The last access tells the test the guest is done: stop the run loop there.
    mmio.register(SENTINEL, 0x1000, { read: () => 0, write: () => vcpu.kick() }, 'sentinel');
    load(t.ram, 0x1000, [
      0xb8, ...u32(0x8000_0800),          // mov eax, 0x80000800   (bus 0, device 1, register 0)
      0x66, 0xba, ...u16(0xcf8),          // mov dx, 0xcf8
      0xef,                               // out dx, eax
      0x66, 0xba, ...u16(0xcfc),          // mov dx, 0xcfc
      0xed,                               // in eax, dx
      0x89, 0x04, 0x25, ...u32(0x600),    // mov [0x600], eax
      0xbb, ...u32(0xe000_0012),          // mov ebx, 0xe0000012   (BAR4 + num_queues)
      0x0f, 0xb7, 0x03,                   // movzx eax, word [rbx]
      0x89, 0x04, 0x25, ...u32(0x604),    // mov [0x604], eax
      0xbb, ...u32(SENTINEL),             // mov ebx, SENTINEL
      0x89, 0x03,                         // mov [rbx], eax
      0xeb, 0xfe,                         // jmp $
    ]);
    enterLongMode(vcpu, t.ram, 0x1000, 3);
    const exit = await vcpu.runLoop({ pio, mmio });
    expect(exit.reason).toBe('intr');
    const dv = new DataView(t.ram.buffer);
    expect(dv.getUint32(0x600, true)).toBe(0x1044_1af4);
    expect(dv.getUint32(0x604, true)).toBe(1);
    // KVM_SIGNAL_MSI accepts a message to APIC 0 (delivered to the in-kernel LAPIC).
    expect(() => t!.vm.sendMsi(0xfee0_0000, 0x41)).not.toThrow();
  });
});
