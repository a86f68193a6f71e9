/**
 * The reference guest with `pci=nomsi` over --virtio-transport pci: Linux cannot use MSI-X, so virtio-pci falls
 * back to INTx + ISR. It must find the IRQ through the MP table's PCI interrupt assignment ("PCI->APIC IRQ
 * transform"), take its disk completions on that IO-APIC line (level, fasteoi), mount and write the ext4 disk,
 * do it all again after a guest reboot (machine reset), and power off cleanly; the host then reads the written
 * file out of the image. Interpreter only: KVM cannot boot Linux on this host (the KVM side of the same wiring is
 * test/pci/kvm-intx.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterpAccelerator } from '../../lib/accel/interp/index.js';
import { initCmdline, REFERENCE_GUEST_CMDLINE } from '../../lib/guest/guest-protocol.js';
import { validateMachineConfig } from '../../lib/machine/config.js';
import type { MachineExit } from '../../lib/machine/exit-status.js';
import { Machine } from '../../lib/machine/machine.js';
import { pciIntxGsi } from '../../lib/pci/intx-routing.js';
import { GuestConsole } from '../interp/guest-console.js';
import { copyImage, ext4CatAfterReplay, hasDebugfs, tempDir } from './disk-files.js';
import { referenceImages } from './guest-vm.js';

const images = referenceImages();
const skip = 'skip' in images ? images.skip : !hasDebugfs() ? 'debugfs (e2fsprogs) is not installed' : undefined;
const label = 'guest-pci-intx interp';
if (skip) console.warn(`[${label}] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('virtio-pci over INTx in the reference guest (pci=nomsi, interpreter)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let vda: string;
  let machine: Machine | undefined;
  const started = performance.now();
  const progress = (line: string): void => console.log(`[${label}] ${((performance.now() - started) / 1000).toFixed(1)} s: ${line}`);

  beforeAll(() => {
    if ('skip' in images) return;
    tmp = tempDir('guest-pci-intx');
    vda = copyImage(images.rootfs, tmp.dir, 'vda.ext4');
  });
  afterAll(async () => {
    if (machine && machine.state !== 'stopped') await machine.stop();
    tmp?.remove();
  });

  it('finds INTA# through the MP table, takes disk completions on an IO-APIC line, writes the disk, powers off', async () => {
    if ('skip' in images) return;
    const cmdline = [REFERENCE_GUEST_CMDLINE, 'pci=nomsi', initCmdline({ rootdisk: '/dev/vda' })].join(' ');
    machine = await Machine.create(validateMachineConfig({
      kernel: images.kernel, initrd: images.initrd, memoryMiB: 256, accel: 'interp', serial: 'none', cmdline,
      disks: [{ path: vda }],
    }), {
      accelerator: new InterpAccelerator(), bindSerial: false, virtioTransport: 'pci',
      log: (line) => console.log(`[${label}] vmm: ${line}`),
    });
    const m = machine;
    const console_ = new GuestConsole((bytes) => m.serial.receive(bytes), process.env.NODEVMM_TEST_ECHO ? (s) => process.stdout.write(s) : undefined);
    m.serial.addOutputListener((chunk) => console_.push(chunk));
    const exit: Promise<MachineExit> = m.wait();
    m.start();
    progress('booting (pci, pci=nomsi, 1 disk)');
    await console_.waitFor(/nodevmm-init: starting shell[\s\S]*# /, 600_000);
    progress('shell prompt');
    const run = (command: string): Promise<string> => console_.run(command, 120_000);

    // The disk is slot 1; its INTA# goes to IOAPIC pin pciIntxGsi(1), which the kernel learned from the MP table.
    const gsi = pciIntxGsi(1);
    expect(console_.output).toMatch(new RegExp(`0000:00:01\\.0: PCI->APIC IRQ transform: INT A -> IRQ ${gsi}`));
    expect(await run('cat /proc/cmdline')).toMatch(/pci=nomsi/);
    expect((await run('cat /sys/bus/pci/devices/0000:00:01.0/irq')).trim()).toBe(String(gsi));
    expect((await run('basename $(readlink /sys/bus/pci/devices/0000:00:01.0/driver)')).trim()).toBe('virtio-pci');

    expect((await run('mount | grep " /mnt "')).trim()).toMatch(/^\/dev\/vda on \/mnt type ext4 \(rw/);
    const sums = (await run('sha256sum /mnt/data/pattern-1MiB.txt | cut -d" " -f1; cut -d" " -f1 /mnt/data/pattern-1MiB.txt.sha256')).trim().split('\n');
    expect(sums[0]).toBe(sums[1]);
    expect(await run('echo "written over INTx" > /mnt/intx.txt && sync && echo synced')).toBe('synced\n');
    expect(await run('dd if=/dev/vda of=/dev/null bs=1M count=8 2>&1 | tail -1')).toMatch(/8\+0 records out/);

    // Completions arrived on the IO-APIC line (level-triggered: fasteoi), and nothing used MSI.
    const interrupts = await run('cat /proc/interrupts');
    progress(`/proc/interrupts:\n${interrupts.trimEnd()}`);
    const line = new RegExp(`^\\s*${gsi}:\\s+(\\d+)\\s+IO-APIC\\s+${gsi}-fasteoi\\s+virtio0\\s*$`, 'm').exec(interrupts);
    expect(line).not.toBeNull();
    expect(Number(line![1])).toBeGreaterThan(0);
    expect(interrupts).not.toMatch(/PCI-MSI/);

    const before = Number(line![1]);
    await run('echo 3 > /proc/sys/vm/drop_caches; cat /mnt/data/pattern-1MiB.txt > /dev/null');
    const after = new RegExp(`^\\s*${gsi}:\\s+(\\d+)`, 'm').exec(await run('cat /proc/interrupts'));
    expect(Number(after![1])).toBeGreaterThan(before);

    // A guest reboot resets the machine; the reloaded MP table must still carry the PCI routes, and the line
    // must come back de-asserted, or the disk hangs in the second boot.
    const mark = console_.mark();
    m.serial.receive(Buffer.from('reboot\n'));
    await console_.waitFor(/nodevmm-init: starting shell[\s\S]*# /, 600_000, mark);
    progress('shell again after the guest rebooted');
    expect(console_.output.slice(mark)).toMatch(new RegExp(`PCI->APIC IRQ transform: INT A -> IRQ ${gsi}`));
    expect(await run('cat /mnt/intx.txt')).toBe('written over INTx\n');
    const again = new RegExp(`^\\s*${gsi}:\\s+(\\d+)\\s+IO-APIC\\s+${gsi}-fasteoi\\s+virtio0`, 'm').exec(await run('cat /proc/interrupts'));
    expect(Number(again![1])).toBeGreaterThan(0);

    m.serial.receive(Buffer.from('poweroff\n'));
    const result = await Promise.race([
      exit,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no power-off after 120 s')), 120_000)),
    ]);
    progress(result.message ?? `exit ${result.status}`);
    expect(result.status).toBe(0);
    expect(ext4CatAfterReplay(vda, '/intx.txt', tmp.dir)).toBe('written over INTx\n');
  }, 900_000);
});
