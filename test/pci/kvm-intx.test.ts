/**
 * virtio-pci INTx on KVM: the VirtioPciBus's INTA# lines end in KVM_IRQ_LINE on the in-kernel IOAPIC, through
 * the same GSI routing table the KVM accelerator installs (pcGsiRouting: GSIs 16-23 → IOAPIC pins 16-23). The
 * IOAPIC's input register (irr, from KVM_GET_IRQCHIP) shows the slot's pin rising when the device interrupts
 * without MSI-X and falling when the driver reads the ISR. The driver side runs on the host through the buses.
 */
import { afterEach, expect, it } from 'vitest';
import { pcGsiRouting } from '../../lib/accel/kvm/kvm-accelerator.js';
import { decodeIoapicState } from '../../lib/accel/kvm/platform-state.js';
import { Irqchip } from '../../lib/kvm/constants.js';
import { Bus } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { pciIntxGsi } from '../../lib/pci/index.js';
import { VirtioPciBus } from '../../lib/virtio/pci/attach.js';
import { ISR_CONFIG } from '../../lib/virtio/pci/constants.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { createTestVm, describeKvm, type TestVm } from '../kvm/harness.js';
import { GuestAllocator } from '../virtio/driver.js';
import { ConfigPorts, VirtioPciTestDriver } from './pci-driver.js';

describeKvm('virtio-pci INTx into the in-kernel IOAPIC', () => {
  let t: TestVm | undefined;
  afterEach(() => { t?.close(); t = undefined; });

  it('asserts IOAPIC pin pciIntxGsi(slot) via KVM_IRQ_LINE and drops it on the ISR read', () => {
    t = createTestVm({ irqchip: true });
    t.vm.setGsiRouting(pcGsiRouting());
    const vm = t.vm;
    const pio = new Bus('pio');
    const mmio = new Bus('mmio');
    const mem = GuestMemory.ofSize(1 << 20);
    const bus = new VirtioPciBus(pio, mmio, mem, vm, () => {}, undefined, vm);
    const first = bus.add(new VirtioRng(), 'rng0');
    const second = bus.add(new VirtioRng(), 'rng1');
    const irr = (): number => decodeIoapicState(vm.getIrqchip(Irqchip.IOAPIC)).irr;
    const pin1 = 1 << pciIntxGsi(1);
    const pin2 = 1 << pciIntxGsi(2);
    expect(irr() & (pin1 | pin2)).toBe(0);

    const cfg = new ConfigPorts(pio);
    const driver = new VirtioPciTestDriver(cfg, mmio, 1, mem, new GuestAllocator(0x10000, mem.end));
    driver.init({ msix: false });
    first.core.configChanged();
    expect(irr() & (pin1 | pin2)).toBe(pin1);
    second.core.configChanged(); // not DRIVER_OK: no interrupt from the second device
    expect(irr() & pin2).toBe(0);
    expect(driver.readIsr()).toBe(ISR_CONFIG);
    expect(irr() & pin1).toBe(0);
  });
});
