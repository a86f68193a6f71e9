/** The machine-level wiring: attachVirtioDevices with transport 'pci', and the CLI option that selects it. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunOptions } from '../../lib/cli/commands/run-options.js';
import { UsageError } from '../../lib/cli/usage-error.js';
import { Bus } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { attachVirtioDevices } from '../../lib/machine/virtio-devices.js';
import { PCI_MMIO_WINDOW_START } from '../../lib/virtio/pci/index.js';
import { VirtioPciTransport } from '../../lib/virtio/pci/transport.js';
import { GuestAllocator } from '../virtio/driver.js';
import { ConfigPorts, MsiSpy, VirtioPciTestDriver } from './pci-driver.js';

const noIrq = { setIrq: () => {} };

describe('attachVirtioDevices({ transport: "pci" })', () => {
  it('puts disks and rng on PCI bus 0 with BARs in the PCI window and no virtio_mmio command line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nodevmm-pci-attach-'));
    try {
      const img = join(dir, 'd.img');
      await writeFile(img, new Uint8Array(1 << 20));
      const mem = GuestMemory.ofSize(8 << 20);
      const pio = new Bus('pio');
      const mmio = new Bus('mmio');
      const spy = new MsiSpy();
      const attached = await attachVirtioDevices(
        { disks: [{ path: img, readOnly: true }], rng: true, nets: [], transport: 'pci' }, mem, mmio, noIrq, () => {},
        { pio, msi: spy },
      );
      try {
        expect(attached.cmdline).toBe('');
        expect(attached.transports.every((t) => t instanceof VirtioPciTransport)).toBe(true);
        const cfg = new ConfigPorts(pio);
        expect(cfg.read(0, 0x0a, 2)).toBe(0x0600);
        expect(cfg.read(1, 0x02, 2)).toBe(0x1042);
        expect(cfg.read(2, 0x02, 2)).toBe(0x1044);
        const d = new VirtioPciTestDriver(cfg, mmio, 1, mem, new GuestAllocator(0x10000, mem.end));
        expect(Math.min(...d.bars.map((b) => b.address))).toBe(PCI_MMIO_WINDOW_START);
        d.init();
        // Read-only disk: VIRTIO_BLK_F_RO (bit 5) offered and capacity readable over PCI.
        expect(d.features & (1n << 5n)).toBe(1n << 5n);
        expect(d.deviceConfig(0, 4)).toBe(2048);

        // A machine reset puts the PCI function back to its power-on state.
        const t = attached.transports[0] as VirtioPciTransport;
        expect(t.msix.enabled).toBe(true);
        cfg.write(1, 0x20, 4, 0xe900_0000); // move BAR4
        t.reset();
        expect(t.msix.enabled).toBe(false);
        expect(t.core.status).toBe(0);
        expect(t.pci.barAddress(4)).toBe(PCI_MMIO_WINDOW_START);
      } finally {
        await attached.close();
      }
      // close() detaches: the config ports and BARs are gone from the buses.
      expect(pio.find(0xcf8)).toBeUndefined();
      expect(mmio.find(PCI_MMIO_WINDOW_START)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses pci without an MSI path, naming the field', async () => {
    await expect(attachVirtioDevices(
      { disks: [], rng: true, nets: [], transport: 'pci' }, GuestMemory.ofSize(1 << 20), new Bus('mmio'), noIrq, () => {},
      { pio: new Bus('pio'), msi: undefined },
    )).rejects.toThrow(/virtioTransport: pci needs an accelerator that delivers MSIs/);
  });
});

describe('nodevmm run --virtio-transport', () => {
  it('defaults to mmio, accepts pci, rejects anything else as a usage error', () => {
    expect(parseRunOptions([]).virtioTransport).toBe('mmio');
    expect(parseRunOptions(['--virtio-transport', 'pci']).virtioTransport).toBe('pci');
    expect(() => parseRunOptions(['--virtio-transport', 'isa'])).toThrow(UsageError);
    expect(() => parseRunOptions(['--virtio-transport', 'isa'])).toThrow(/--virtio-transport: "isa" is not one of mmio, pci/);
  });
});
