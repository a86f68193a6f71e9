import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { MMIO, VIRTIO_MMIO_MAGIC, VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import type { VirtioDevice, VirtioDeviceContext } from '../../lib/virtio/device.js';
import { readConfigBytes } from '../../lib/virtio/device.js';
import { GuestAllocator, RecordingIrq, TestDriver } from './driver.js';

/** A device with a small config space and a way to change it, to test config access and generation. */
class ConfigDevice implements VirtioDevice {
  readonly deviceId = 42;
  readonly deviceFeatures = 1n << 3n;
  readonly queueMaxSizes = [8, 16];
  readonly configSize = 8;
  readonly config = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  ctx: VirtioDeviceContext | undefined;
  notified: number[] = [];
  readConfig(offset: number, size: number): number {
    return readConfigBytes(this.config, offset, size);
  }
  writeConfig(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.config[offset + i] = (value >>> (8 * i)) & 0xff;
  }
  activate(ctx: VirtioDeviceContext): void {
    this.ctx = ctx;
  }
  queueNotify(index: number): void {
    this.notified.push(index);
  }
  reset(): void {
    this.ctx = undefined;
  }
}

function rig(dev: VirtioDevice = new ConfigDevice()) {
  const mem = GuestMemory.ofSize(1 << 20);
  const irq = new RecordingIrq();
  const logs: string[] = [];
  const t = new VirtioMmioTransport(dev, mem, irq, { log: (m) => logs.push(m) });
  const d = new TestDriver(t, mem, irq, new GuestAllocator(0x1000, mem.end));
  return { mem, irq, t, d, logs };
}

describe('virtio-mmio registers', () => {
  it('identifies the device and reports features in two words', () => {
    const { t, d } = rig();
    expect(d.reg(MMIO.MagicValue)).toBe(VIRTIO_MMIO_MAGIC);
    expect(d.reg(MMIO.Version)).toBe(2);
    expect(d.reg(MMIO.DeviceID)).toBe(42);
    expect(d.deviceFeatures()).toBe((1n << 3n) | (1n << 28n) | (1n << 29n) | (1n << 32n));
    d.setReg(MMIO.DeviceFeaturesSel, 7);
    expect(d.reg(MMIO.DeviceFeatures)).toBe(0);
    expect(d.reg(MMIO.SHMLenLow)).toBe(0xffffffff);
    // Registers need 32-bit accesses; narrower ones read 0 and are ignored.
    expect(t.read(MMIO.MagicValue, 1)).toBe(0);
    t.write(MMIO.Status, 1, 1);
    expect(d.status).toBe(0);
  });

  it('reads and writes configuration space at any width; generation bumps on change', () => {
    const dev = new ConfigDevice();
    const { t, d, irq } = rig(dev);
    expect(t.read(0x100, 1)).toBe(1);
    expect(t.read(0x101, 2)).toBe(0x0302);
    expect(t.read(0x104, 4)).toBe(0x08070605);
    expect(t.read(0x106, 4)).toBe(0); // crosses the end of config space
    t.write(0x100, 2, 0xbeef);
    expect(dev.config[0]).toBe(0xef);
    d.init();
    const gen = d.reg(MMIO.ConfigGeneration);
    dev.ctx!.configChanged();
    expect(d.reg(MMIO.ConfigGeneration)).toBe(gen + 1);
    expect(d.reg(MMIO.InterruptStatus)).toBe(2);
    expect(irq.level).toBe(true);
  });

  it('lists queues, freezes their setup while ready, and routes notifications', () => {
    const dev = new ConfigDevice();
    const { d } = rig(dev);
    d.init({ queueSizes: [8, 4] });
    d.setReg(MMIO.QueueSel, 1);
    expect(d.reg(MMIO.QueueNumMax)).toBe(16);
    expect(d.reg(MMIO.QueueReady)).toBe(1);
    d.setReg(MMIO.QueueNum, 16); // ignored: queue is ready
    expect(d.reg(MMIO.QueueNum)).toBe(4);
    d.setReg(MMIO.QueueSel, 2);
    expect(d.reg(MMIO.QueueNumMax)).toBe(0);
    d.notify(1);
    d.notify(0);
    d.notify(5);
    expect(dev.notified).toEqual([1, 0]);
  });

  it('acknowledging interrupt bits lowers the line only when none are left; reset clears all', async () => {
    const { d, irq, t } = rig(new VirtioRng());
    d.init();
    const buf = d.alloc.alloc(64);
    await d.run(0, [{ addr: buf, len: 64, write: true }]);
    expect(irq.level).toBe(true);
    expect(d.reg(MMIO.InterruptStatus)).toBe(1);
    t.write(MMIO.InterruptACK, 4, 2); // wrong bit: still pending
    expect(irq.level).toBe(true);
    t.write(MMIO.InterruptACK, 4, 1);
    expect(irq.level).toBe(false);
    await d.run(0, [{ addr: buf, len: 64, write: true }]);
    expect(irq.level).toBe(true);
    d.setReg(MMIO.Status, 0);
    expect(irq.level).toBe(false);
    expect(d.reg(MMIO.InterruptStatus)).toBe(0);
    expect(d.status).toBe(0);
  });

  it('DRIVER_OK without FEATURES_OK puts the device in NEEDS_RESET with one log line', () => {
    const { d, logs } = rig();
    d.setReg(MMIO.Status, 0);
    d.setReg(MMIO.Status, 3);
    d.setReg(MMIO.Status, 7);
    expect(d.status & 0x40).toBe(0x40);
    expect(d.status & 4).toBe(0);
    d.setReg(MMIO.Status, 0x0f); // the driver cannot clear NEEDS_RESET except by reset
    expect(d.status & 0x40).toBe(0x40);
    expect(logs.length).toBe(1);
    d.setReg(MMIO.Status, 0);
    expect(d.status).toBe(0);
  });
});
