/** Interrupts through the in-kernel irqchip (KVM_IRQ_LINE and irqfd -> 8259 PIC -> real-mode IVT handler), and ioeventfd. */
import { afterEach, expect, it } from 'vitest';
import { u16 } from './asm.js';
import { createTestVm, describeKvm, enterRealMode, load, type TestVm } from './harness.js';

const IRQ = 5;
const VECTOR_BASE = 0x20;
const REPORT_PORT = 0x80;

/**
 * Real-mode guest at 0x1000: programs the master PIC (vector base 0x20, only IRQ5 unmasked), reports "ready"
 * (out 0x80 <- 1), enables interrupts and spins until the handler sets [0x600]; then reports 2 and ends with an
 * MMIO write to 0x90000 (outside RAM), which has no handler and so ends runLoop.
 * Handler at 0x2000 (IVT entry 0x25): sets [0x600], reports 0xAA, sends EOI, iret.
 */
function loadPicGuest(t: TestVm): void {
  load(t.ram, 0x1000, [
    0xb0, 0x11, 0xe6, 0x20,   // mov al, 0x11 ; out 0x20, al   ICW1: edge, cascade, ICW4 needed
    0xb0, VECTOR_BASE, 0xe6, 0x21, // mov al, 0x20 ; out 0x21, al   ICW2: vector base 0x20
    0xb0, 0x04, 0xe6, 0x21,   // mov al, 0x04 ; out 0x21, al   ICW3: slave on IRQ2
    0xb0, 0x01, 0xe6, 0x21,   // mov al, 0x01 ; out 0x21, al   ICW4: 8086 mode
    0xb0, 0xdf, 0xe6, 0x21,   // mov al, 0xdf ; out 0x21, al   OCW1: unmask IRQ5 only
    0xb0, 0x01, 0xe6, REPORT_PORT, // mov al, 1 ; out 0x80, al  "ready"
    0xfb,                     // sti
    0x80, 0x3e, ...u16(0x600), 0x00, // wait: cmp byte [0x600], 0
    0x74, 0xf9,               //       je wait
    0xb0, 0x02, 0xe6, REPORT_PORT, // mov al, 2 ; out 0x80, al
    0xb8, ...u16(0x9000),     // mov ax, 0x9000
    0x8e, 0xd8,               // mov ds, ax
    0xa2, ...u16(0),          // mov [0], al    -> MMIO exit at 0x90000
  ]);
  load(t.ram, 0x2000, [
    0xc6, 0x06, ...u16(0x600), 0x01, // mov byte [0x600], 1
    0xb0, 0xaa, 0xe6, REPORT_PORT,   // mov al, 0xaa ; out 0x80, al
    0xb0, 0x20, 0xe6, 0x20,          // mov al, 0x20 ; out 0x20, al   non-specific EOI
    0xcf,                            // iret
  ]);
  // IVT entry for vector 0x25: offset 0x2000, segment 0.
  new DataView(t.ram.buffer).setUint32((VECTOR_BASE + IRQ) * 4, 0x2000, true);
}

describeKvm('KVM in-kernel irqchip', () => {
  let t: TestVm | undefined;
  afterEach(() => { t?.close(); t = undefined; });

  it('KVM_IRQ_LINE raises a PIC interrupt that runs the guest IDT (IVT) handler', async () => {
    t = createTestVm({ ramSize: 0x80000, irqchip: true });
    const vcpu = t.createVcpu(0);
    loadPicGuest(t);
    enterRealMode(vcpu, 0x1000);
    const reports: number[] = [];
    const vm = t.vm;
    const exit = await vcpu.runLoop({
      pio: {
        read: () => 0xff,
        write: (port, _size, value) => {
          if (port !== REPORT_PORT) return;
          reports.push(value);
          if (value === 1) { vm.irqLine(IRQ, true); vm.irqLine(IRQ, false); } // edge on IRQ5
        },
      },
    });
    expect(exit.reason).toBe('mmio');
    if (exit.reason === 'mmio') expect(exit.address).toBe(0x90000);
    expect(reports).toEqual([1, 0xaa, 2]);
  });

  it('an irqfd write raises the same interrupt without an ioctl from JS', async () => {
    t = createTestVm({ ramSize: 0x80000, irqchip: true });
    const vcpu = t.createVcpu(0);
    const efd = t.kvm.createEventFd();
    t.vm.irqfd({ eventFd: efd, gsi: IRQ });
    loadPicGuest(t);
    enterRealMode(vcpu, 0x1000);
    const reports: number[] = [];
    const exit = await vcpu.runLoop({
      pio: { read: () => 0xff, write: (port, _s, value) => { if (port === REPORT_PORT) { reports.push(value); if (value === 1) efd.write(1); } } },
    });
    expect(exit.reason).toBe('mmio');
    expect(reports).toEqual([1, 0xaa, 2]);
    t.vm.removeIrqfd({ eventFd: efd, gsi: IRQ });
    efd.close();
  });

  it('ioeventfd: guest port writes signal an eventfd without reaching the exit handler', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    const efd = t.kvm.createEventFd(0, { nonblock: true });
    t.vm.ioeventfd({ address: 0x510, length: 2, eventFd: efd, pio: true });
    load(t.ram, 0x1000, [
      0xba, ...u16(0x510), // mov dx, 0x510
      0xef,                // out dx, ax   (ioeventfd: no exit)
      0xef,                // out dx, ax   (again)
      0xf4,                // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const seen: number[] = [];
    expect((await vcpu.runLoop({ pio: { read: () => 0, write: (port) => { seen.push(port); } } })).reason).toBe('hlt');
    expect(seen).toEqual([]);
    expect(efd.read()).toBe(2);
    expect(efd.read()).toBeUndefined(); // non-blocking, counter reset
    t.vm.removeIoeventfd({ address: 0x510, length: 2, eventFd: efd, pio: true });
    efd.close();
  });

  it('KVM_GET_CLOCK / KVM_SET_CLOCK round-trip', () => {
    t = createTestVm({ irqchip: true });
    t.vm.setClock(5_000_000_000n);
    const c = t.vm.getClock();
    expect(c.clock).toBeGreaterThanOrEqual(5_000_000_000n);
    expect(c.clock).toBeLessThan(5_000_000_000n + 60_000_000_000n);
  });

  it('KVM_SET_GSI_ROUTING accepts irqchip and MSI routes; KVM_SIGNAL_MSI delivers to the LAPIC', () => {
    t = createTestVm({ irqchip: true });
    t.createVcpu(0);
    const routes = [];
    for (let gsi = 0; gsi < 16; gsi++) {
      if (gsi !== 2) routes.push({ gsi, type: 'irqchip' as const, irqchip: gsi < 8 ? 0 : 1, pin: gsi % 8 });
      routes.push({ gsi, type: 'irqchip' as const, irqchip: 2, pin: gsi === 0 ? 2 : gsi });
    }
    routes.push({ gsi: 24, type: 'msi' as const, addressLo: 0xfee00000, addressHi: 0, data: 0x31 });
    t.vm.setGsiRouting(routes);
    t.vm.irqLine(24, true); // an MSI route fires on the rising edge
    expect(typeof t.vm.signalMsi(0xfee00000, 0x32)).toBe('boolean');
    const bad = [{ gsi: 1, type: 'irqchip' as const, irqchip: 7, pin: 0 }];
    expect(() => t!.vm.setGsiRouting(bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
