/**
 * virtio-pci on KVM with the accelerator fast paths: a guest's notify write goes through an ioeventfd (no
 * KVM_EXIT_MMIO, VirtioCore.notify runs from the event loop and the device fills the buffer), the completion's
 * MSI-X message goes through irqfd + an MSI GSI route into the in-kernel LAPIC, a masked vector is held pending
 * and delivered on unmask, and an irqfd MSI reaches a real-mode IVT handler.
 */
import { afterEach, expect, it } from 'vitest';
import { createKvmFastPaths, GsiRouter } from '../../lib/accel/kvm/fast-paths.js';
import { IOAPIC_PINS, pcGsiRouting } from '../../lib/accel/kvm/kvm-accelerator.js';
import { Cap } from '../../lib/kvm/index.js';
import { KvmAccelerator } from '../../lib/accel/kvm/kvm-accelerator.js';
import { u16 } from '../kvm/asm.js';
import { createTestVm, describeKvm, enterRealMode, load, type TestVm } from '../kvm/harness.js';
import { msiData } from '../pci/pci-driver.js';
import { NOTIFY_OFFSET } from '../../lib/virtio/pci/constants.js';
import { createRig, type FastPathRig, SENTINEL, until } from './virtio-fastpath-setup.js';

describeKvm('virtio-pci fast paths on KVM (ioeventfd notify, irqfd MSI-X)', () => {
  let rig: FastPathRig | undefined;
  let t: TestVm | undefined;
  afterEach(() => { rig?.close(); rig = undefined; t?.close(); t = undefined; });

  it('a guest notify write reaches the device without an MMIO exit; the MSI-X completion arrives via irqfd', async () => {
    rig = createRig(1, true);
    const q = rig.driver.queues[0]!;
    const buf = 0x200000;
    const head = q.add([{ addr: buf, len: 32, write: true }]);
    expect(rig.irr(msiData(0))).toBe(false);
    expect(await rig.run()).toBe('intr');
    const r = rig;
    await until(() => r.transport.fastNotifications > 0, 5000, 'the ioeventfd notification');
    let used;
    await until(() => (used = q.popUsed()) !== undefined, 5000, 'the used entry (the rng fills asynchronously)');
    expect(used).toEqual({ id: head, len: 32 });
    // The only write that exited is the sentinel: the notify write stayed in the kernel.
    expect(rig.mmioExits).toEqual([SENTINEL]);
    // irqfd injection may complete on a kernel worker: wait for the IRR bit rather than race it.
    await until(() => r.irr(msiData(0)), 5000, 'vector 0x40 in the LAPIC IRR');
  });

  it('a masked MSI-X vector stays pending (PBA) and is delivered through the irqfd on unmask', async () => {
    rig = createRig(3, true);
    const { table, pba } = rig.driver.msixTable();
    rig.mmio.write(table + 12, 4, 1); // mask vector 0
    const q = rig.driver.queues[0]!;
    q.add([{ addr: 0x200000, len: 16, write: true }]);
    expect(await rig.run()).toBe('intr');
    const r = rig;
    await until(() => r.transport.fastNotifications > 0, 5000, 'the ioeventfd notification');
    await until(() => q.popUsed() !== undefined, 5000, 'the used entry');
    expect(rig.mmio.read(pba, 4) & 1).toBe(1);
    expect(rig.irr(msiData(0))).toBe(false);
    rig.mmio.write(table + 12, 4, 0); // unmask
    expect(rig.mmio.read(pba, 4) & 1).toBe(0);
    await until(() => r.irr(msiData(0)), 5000, 'vector 0x40 in the LAPIC IRR after unmask');
    expect(rig.mmioExits).toEqual([SENTINEL]);
  });

  it('with the vCPU inline on the JS thread, the event loop still hears the ioeventfd and the guest sees the used buffer', async () => {
    rig = createRig(2, true, { waitForUsed: true });
    const q = rig.driver.queues[0]!;
    const head = q.add([{ addr: 0x200000, len: 8, write: true }]);
    // The guest only reaches SENTINEL after the device completed the buffer, which it can only do from the
    // event loop (ioeventfd watch -> VirtioCore.notify -> the rng's asynchronous fill) while KVM_RUN is inline.
    expect(await rig.run('inline')).toBe('intr');
    expect(q.popUsed()).toEqual({ id: head, len: 8 });
    expect(rig.mmioExits).toEqual([SENTINEL]);
    expect(rig.transport.fastNotifications).toBeGreaterThan(0);
  });

  it('when the guest moves BAR4, the ioeventfds follow it: no exit at the new address', async () => {
    rig = createRig(1, true, { moveBar4To: 0xe800_0000 });
    expect(rig.notifyAddress).toBe(0xe800_0000 + NOTIFY_OFFSET);
    const q = rig.driver.queues[0]!;
    const head = q.add([{ addr: 0x200000, len: 4, write: true }]);
    expect(await rig.run()).toBe('intr');
    await until(() => q.popUsed()?.id === head, 5000, 'the used entry');
    expect(rig.mmioExits).toEqual([SENTINEL]);
    expect(rig.transport.fastNotifications).toBeGreaterThan(0);
  });

  it('without fast paths the same notify writes exit to the bus, one exit each', async () => {
    rig = createRig(3, false);
    const q = rig.driver.queues[0]!;
    q.add([{ addr: 0x200000, len: 16, write: true }]);
    expect(await rig.run()).toBe('intr');
    expect(rig.mmioExits).toEqual([rig.notifyAddress, rig.notifyAddress, rig.notifyAddress, SENTINEL]);
    const r = rig;
    await until(() => q.popUsed() !== undefined, 5000, 'the used entry');
    await until(() => r.irr(msiData(0)), 5000, 'the KVM_SIGNAL_MSI completion interrupt');
    expect(rig.transport.fastNotifications).toBe(0);
  });

  it('KvmAccelerator exposes the fast paths: MSI channels and write watches are created, used and released', () => {
    const accel = new KvmAccelerator({ emulatingHost: false });
    try {
      expect(accel.fastPaths).toBeDefined();
      const a = accel.fastPaths!.createMsiChannel(3);
      const b = accel.fastPaths!.createMsiChannel(2);
      a.sendMsi(0xfee0_0000, 0x40);
      a.sendMsi(0xfee0_0000, 0x41);
      b.sendMsi(0xfee0_0000, 0x42);
      a.dispose();
      b.dispose();
      a.dispose(); // idempotent
      const watch = accel.fastPaths!.watchMmioWrite({ address: 0xe000_3000, length: 2, onWrite: () => {} });
      watch.dispose();
      expect(() => accel.fastPaths!.watchMmioWrite({ address: -1, length: 2, onWrite: () => {} })).toThrow(/bad address/);
    } finally {
      accel.close();
    }
  });

  it('an MSI sent through the irqfd channel runs the guest interrupt handler', async () => {
    t = createTestVm({ ramSize: 0x80000, irqchip: true });
    const routes = pcGsiRouting();
    t.vm.setGsiRouting(routes);
    const fast = createKvmFastPaths(t.kvm, t.vm, new GsiRouter(t.vm, routes, IOAPIC_PINS, t.vm.checkExtension(Cap.IRQ_ROUTING)));
    expect(fast).toBeDefined();
    const channel = fast!.createMsiChannel(2);
    const vcpu = t.createVcpu(0);
    const lapic = vcpu.getLapic();
    new DataView(lapic.buffer).setUint32(0xf0, 0x1ff, true); // SVR: software-enable the LAPIC
    vcpu.setLapic(lapic);
    const VECTOR = 0x41;
    load(t.ram, 0x1000, [
      0xb0, 0x01, 0xe6, 0x80,          // mov al, 1 ; out 0x80, al   "ready"
      0xfb,                            // sti
      0x80, 0x3e, ...u16(0x600), 0x00, // wait: cmp byte [0x600], 0
      0x74, 0xf9,                      //       je wait
      0xb0, 0x02, 0xe6, 0x80,          // mov al, 2 ; out 0x80, al
      0xb8, ...u16(0x9000), 0x8e, 0xd8, // mov ax, 0x9000 ; mov ds, ax
      0xa2, ...u16(0),                 // mov [0], al  -> MMIO exit at 0x90000 ends runLoop
    ]);
    load(t.ram, 0x2000, [
      0xc6, 0x06, ...u16(0x600), 0x01, // mov byte [0x600], 1
      0xb0, 0xaa, 0xe6, 0x80,          // mov al, 0xaa ; out 0x80, al
      0xcf,                            // iret
    ]);
    new DataView(t.ram.buffer).setUint32(VECTOR * 4, 0x2000, true);
    enterRealMode(vcpu, 0x1000);
    const reports: number[] = [];
    const exit = await vcpu.runLoop({
      pio: { read: () => 0xff, write: (port, _s, v) => { if (port === 0x80) { reports.push(v); if (v === 1) channel.sendMsi(0xfee0_0000, VECTOR); } } },
    });
    expect(exit.reason).toBe('mmio');
    expect(reports).toEqual([1, 0xaa, 2]);
    channel.dispose();
  });
});
