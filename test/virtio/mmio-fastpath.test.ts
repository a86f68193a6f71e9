/**
 * virtio-mmio on KVM with the accelerator fast path: QueueNotify writes become ioeventfds (one per queue,
 * datamatch = queue index), so the guest's write completes in the kernel with no KVM_EXIT_MMIO and the device
 * hears of it from the event loop; writes no ioeventfd matches, and everything once the fast path is released,
 * still exit to the bus. Interrupts stay on the level line through KVM_IRQ_LINE (seen in the IOAPIC's IRR).
 */
import { afterEach, expect, it } from 'vitest';
import { KvmAccelerator } from '../../lib/accel/kvm/kvm-accelerator.js';
import { decodeIoapicState } from '../../lib/accel/kvm/platform-state.js';
import { Irqchip } from '../../lib/kvm/index.js';
import { Bus } from '../../lib/machine/bus.js';
import { attachVirtioDevices } from '../../lib/machine/virtio-devices.js';
import { MMIO_DEVICE_WINDOW_START } from '../../lib/machine/layout.js';
import type { VirtioDevice, VirtioDeviceContext } from '../../lib/virtio/device.js';
import { MMIO, VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { QueueNotifyWatches } from '../../lib/virtio/notify-watch.js';
import { describeKvm } from '../kvm/harness.js';
import { until } from '../machine/virtio-fastpath-setup.js';
import { createMmioRig, MMIO_BASE, type MmioFastPathRig, NOTIFY_ADDRESS, SENTINEL, VIRTIO_GSI } from './mmio-fastpath-setup.js';

/** A two-queue device that only records which queues were notified (the transport and KVM are the subject). */
class NotifyRecorder implements VirtioDevice {
  readonly deviceId = 0x3e;
  readonly deviceFeatures = 0n;
  readonly queueMaxSizes = [16, 16];
  readonly configSize = 0;
  readonly notified: number[] = [];
  readConfig(): number { return 0; }
  writeConfig(): void {}
  activate(_context: VirtioDeviceContext): void {}
  queueNotify(index: number): void { this.notified.push(index); }
  reset(): void {}
}

function ioapicIrr(rig: MmioFastPathRig): number {
  return decodeIoapicState(rig.t.vm.getIrqchip(Irqchip.IOAPIC)).irr;
}

describeKvm('virtio-mmio QueueNotify through ioeventfd on KVM', () => {
  let rig: MmioFastPathRig | undefined;
  afterEach(() => { rig?.close(); rig = undefined; });

  it.each(['thread', 'inline'] as const)('a guest notify reaches the rng without an MMIO exit; the used buffer and the level interrupt follow (vCPU %s)', async (model) => {
    rig = createMmioRig([{ value: 0, count: 1 }], true, { waitForUsed: true });
    expect(rig.transport.notifyFastPathActive).toBe(true);
    const q = rig.driver.queues[0]!;
    const buf = 0x200000;
    const head = q.add([{ addr: buf, len: 64, write: true }]);
    // The guest reaches SENTINEL only after the device used the buffer, which needs the ioeventfd -> event loop path.
    expect(await rig.run(model)).toBe('intr');
    expect(q.popUsed()).toEqual({ id: head, len: 64 });
    expect(rig.mmioExits).toEqual([SENTINEL]);
    expect(rig.transport.fastNotifications).toBeGreaterThan(0);
    // Used-buffer interrupt: InterruptStatus bit 0, the line high in KVM (IOAPIC IRR bit of GSI 5).
    expect(rig.transport.read(MMIO.InterruptStatus, 4) & 1).toBe(1);
    expect(ioapicIrr(rig) & (1 << VIRTIO_GSI)).not.toBe(0);
    rig.transport.write(MMIO.InterruptACK, 4, 1);
    expect(ioapicIrr(rig) & (1 << VIRTIO_GSI)).toBe(0);
  });

  it('datamatch tells queues apart; a value no queue has exits to the bus', async () => {
    const device = new NotifyRecorder();
    rig = createMmioRig([{ value: 1, count: 3 }, { value: 0, count: 2 }, { value: 2, count: 1 }], true, { device });
    expect(await rig.run()).toBe('intr');
    expect(rig.mmioExits).toEqual([NOTIFY_ADDRESS, SENTINEL]);
    await until(() => device.notified.includes(0) && device.notified.includes(1), 5000, 'notifications of queues 0 and 1');
    // Coalesced per queue: at most one notify per write, never for a queue the guest did not name.
    expect(device.notified.filter((q) => q === 1).length).toBeLessThanOrEqual(3);
    expect(device.notified.filter((q) => q === 0).length).toBeLessThanOrEqual(2);
    expect(device.notified.every((q) => q === 0 || q === 1)).toBe(true);
  });

  it('without the fast path every QueueNotify write exits to the bus and still notifies', async () => {
    const device = new NotifyRecorder();
    rig = createMmioRig([{ value: 0, count: 3 }], false, { device });
    expect(await rig.run()).toBe('intr');
    expect(rig.mmioExits).toEqual([NOTIFY_ADDRESS, NOTIFY_ADDRESS, NOTIFY_ADDRESS, SENTINEL]);
    expect(device.notified).toEqual([0, 0, 0]);
    expect(rig.transport.fastNotifications).toBe(0);
  });

  it('after closeFastPaths the ioeventfds are gone: the writes exit again', async () => {
    const device = new NotifyRecorder();
    rig = createMmioRig([{ value: 1, count: 2 }], true, { device, releaseBeforeRun: true });
    expect(rig.transport.notifyFastPathActive).toBe(false);
    expect(await rig.run()).toBe('intr');
    expect(rig.mmioExits).toEqual([NOTIFY_ADDRESS, NOTIFY_ADDRESS, SENTINEL]);
    expect(device.notified).toEqual([1, 1]);
  });

  it('a registration KVM refuses (EEXIST: another ioeventfd has queue 1) releases the queues already registered; the bus path stays', async () => {
    const device = new NotifyRecorder();
    const logs: string[] = [];
    rig = createMmioRig([{ value: 0, count: 2 }, { value: 1, count: 1 }], true, { device, log: (m) => logs.push(m) });
    rig.transport.closeFastPaths();
    let foreign = 0;
    const other = new QueueNotifyWatches(rig.fast!, () => { foreign++; }, () => {}, 'other');
    expect(other.register({ queues: 1, address: () => NOTIFY_ADDRESS, length: 4, datamatch: () => 1 })).toBe(true);
    rig.transport.enableNotifyFastPath(rig.fast!, MMIO_BASE);
    expect(rig.transport.notifyFastPathActive).toBe(false);
    expect(logs.join('\n')).toMatch(/virtio-test: notify fast path unavailable at 0x[0-9a-f]+: .*EEXIST/);
    expect(await rig.run()).toBe('intr');
    // Queue 0's ioeventfd (registered before queue 1 failed) is gone: both value-0 writes exit and notify via the bus.
    expect(rig.mmioExits).toEqual([NOTIFY_ADDRESS, NOTIFY_ADDRESS, SENTINEL]);
    expect(device.notified).toEqual([0, 0]);
    const r = rig;
    await until(() => foreign > 0, 5000, 'the other watch hearing the value-1 write');
    expect(r.transport.fastNotifications).toBe(0);
    other.release();
  });

  it('attachVirtioDevices gives virtio-mmio transports the KVM fast path and releases it on close', async () => {
    const accel = new KvmAccelerator({ emulatingHost: false });
    try {
      const memory = accel.allocateMemory([{ guestAddress: 0, size: 0x200000 }]);
      const mmio = new Bus('mmio');
      const attached = await attachVirtioDevices(
        { disks: [], rng: true, nets: [], transport: 'mmio' }, memory, mmio, accel.interrupts, () => {},
        { pio: new Bus('pio'), msi: accel.msi, fastPaths: accel.fastPaths },
      );
      const transport = attached.transports[0];
      if (!(transport instanceof VirtioMmioTransport)) throw new Error('expected a virtio-mmio transport');
      expect(attached.cmdline).toContain(`@0x${MMIO_DEVICE_WINDOW_START.toString(16)}:`);
      expect(transport.notifyFastPathActive).toBe(true);
      // A bus write (any accelerator, or a size KVM does not match) still notifies.
      mmio.write(MMIO_DEVICE_WINDOW_START + MMIO.QueueNotify, 4, 0);
      await attached.close();
      expect(transport.notifyFastPathActive).toBe(false);
    } finally {
      accel.close();
    }
  });
});
