/**
 * virtio-pci INTx on KVM: the VirtioPciBus's INTA# lines end in KVM_IRQ_LINE on the in-kernel IOAPIC, through
 * the same GSI routing table the KVM accelerator installs (pcGsiRouting: GSIs 16-23 → IOAPIC pins 16-23). The
 * IOAPIC's input register (irr, from KVM_GET_IRQCHIP) shows the slot's pin rising when the device interrupts
 * without MSI-X and falling when the driver reads the ISR; with the pin programmed as Linux programs a PCI IRQ
 * (level, active-low, fixed, to APIC 0) the vector lands in the vCPU's LAPIC IRR. The driver side runs on the
 * host through the buses.
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

  it('delivers the programmed vector to the LAPIC (level-triggered: remote IRR set until EOI)', () => {
    t = createTestVm({ irqchip: true });
    t.vm.setGsiRouting(pcGsiRouting());
    const vm = t.vm;
    const vcpu = t.createVcpu(0);
    // Software-enable the LAPIC (SVR bit 8, spurious vector 0xff) as the guest's APIC setup would.
    const lapic = vcpu.getLapic();
    new DataView(lapic.buffer).setUint32(0xf0, 0x1ff, true);
    vcpu.setLapic(lapic);
    const gsi = pciIntxGsi(1);
    const vector = 0x31;
    const ioapic = vm.getIrqchip(Irqchip.IOAPIC);
    // kvm_ioapic_state: redirection entry n at 24 + 8n; vector, polarity low (13), level (15), unmasked, dest 0.
    new DataView(ioapic.buffer).setBigUint64(24 + 8 * gsi, BigInt(vector | (1 << 13) | (1 << 15)), true);
    vm.setIrqchip(Irqchip.IOAPIC, ioapic);

    const pio = new Bus('pio');
    const mmio = new Bus('mmio');
    const mem = GuestMemory.ofSize(1 << 20);
    const bus = new VirtioPciBus(pio, mmio, mem, vm, () => {}, undefined, vm);
    const rng = bus.add(new VirtioRng(), 'rng0');
    const driver = new VirtioPciTestDriver(new ConfigPorts(pio), mmio, 1, mem, new GuestAllocator(0x10000, mem.end));
    driver.init({ msix: false });
    const lapicIrr = (): boolean => ((new DataView(vcpu.getLapic().buffer).getUint32(0x200 + 0x10 * (vector >> 5), true) >>> (vector & 31)) & 1) === 1;
    expect(lapicIrr()).toBe(false);
    rng.core.configChanged();
    expect(lapicIrr()).toBe(true);
    const entry = decodeIoapicState(vm.getIrqchip(Irqchip.IOAPIC)).redirection[gsi]!;
    expect(entry & (1n << 14n)).toBe(1n << 14n); // remote IRR: waiting for the EOI
    expect(driver.readIsr()).toBe(ISR_CONFIG);
  });
});
