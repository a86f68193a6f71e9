/**
 * The reference guest finds its disk and entropy source over modern virtio-pci (--virtio-transport pci):
 * PCI bus 0 enumerated through ports 0xcf8/0xcfc with our preassigned BARs kept, virtio-pci driver bound,
 * MSI-X vectors in /proc/interrupts taking completions, the ext4 rootfs copy mounted and written (host checks
 * the file with debugfs), /dev/hwrng served by virtio-rng over PCI, and all of it again after a guest reboot
 * (machine reset). One VM per accelerator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyImage, ext4CatAfterReplay, hasDebugfs, tempDir } from './disk-files.js';
import { accelSkipReason, GuestVm, referenceImages, type GuestAccel } from './guest-vm.js';

const images = referenceImages();
const imagesSkip = 'skip' in images ? images.skip : !hasDebugfs() ? 'debugfs (e2fsprogs) is not installed' : undefined;

for (const accel of ['interp', 'kvm'] as GuestAccel[]) {
  const skip = imagesSkip ?? accelSkipReason(accel);
  const label = `guest-pci ${accel}`;
  if (skip) console.warn(`[${label}] skipped: ${skip}`);

  describe.skipIf(skip !== undefined)(`virtio-pci in the reference guest (${accel})`, () => {
    let tmp: ReturnType<typeof tempDir>;
    let vda: string;
    let vm: GuestVm | undefined;

    beforeAll(() => {
      if ('skip' in images) return;
      tmp = tempDir('guest-pci');
      vda = copyImage(images.rootfs, tmp.dir, 'vda.ext4');
    });
    afterAll(async () => {
      await vm?.kill();
      tmp?.remove();
    });

    it('enumerates virtio-blk and virtio-rng on PCI, uses MSI-X, mounts and writes the disk', async () => {
      if ('skip' in images) return;
      vm = await GuestVm.boot(images, { accel, label, transport: 'pci', disks: [{ path: vda }], rng: true, rootdisk: '/dev/vda' });
      await vm.shell();
      // No virtio-mmio devices on the command line in this mode.
      expect(await vm.run('cat /proc/cmdline')).not.toMatch(/virtio_mmio/);

      const devices = (await vm.run('ls /sys/bus/pci/devices')).trim().split(/\s+/);
      expect(devices).toEqual(['0000:00:00.0', '0000:00:01.0', '0000:00:02.0']);
      const ids = (await vm.run('for d in /sys/bus/pci/devices/*; do echo $(cat $d/vendor):$(cat $d/device):$(cat $d/class); done')).trim().split('\n');
      expect(ids).toEqual(['0x1b36:0x0008:0x060000', '0x1af4:0x1042:0x018000', '0x1af4:0x1044:0xff0000']);
      // Linux kept the BARs the VMM assigned (no reassignment): BAR4 of the disk at the window start.
      const resource = (await vm.run('head -5 /sys/bus/pci/devices/0000:00:01.0/resource')).trim().split('\n');
      expect(resource[4]!.split(' ')[0]).toBe('0x00000000e0000000');
      expect((await vm.run('basename $(readlink /sys/bus/pci/devices/0000:00:01.0/driver)')).trim()).toBe('virtio-pci');

      expect((await vm.run('mount | grep " /mnt "')).trim()).toMatch(/^\/dev\/vda on \/mnt type ext4 \(rw/);
      const sums = await vm.run('sha256sum /mnt/data/pattern-1MiB.txt | cut -d" " -f1; cut -d" " -f1 /mnt/data/pattern-1MiB.txt.sha256');
      const [computed, stored] = sums.trim().split('\n');
      expect(computed).toBe(stored);
      expect((await vm.status('echo "written over virtio-pci" > /mnt/pci.txt && sync')).status).toBe(0);

      // Completions arrived as MSI-X messages on the queue vector.
      const irqs = await vm.run('grep PCI-MSI /proc/interrupts');
      vm.progress(`MSI-X interrupts:\n${irqs.trimEnd()}`);
      const req = /^\s*\d+:\s+(\d+)\s+PCI-MSI.*virtio\d-req\.0/m.exec(irqs);
      expect(req).not.toBeNull();
      expect(Number(req![1])).toBeGreaterThan(0);

      expect((await vm.run('cat /sys/class/misc/hw_random/rng_current')).trim()).toMatch(/^virtio_rng\.\d+$/);
      const hex = (await vm.run('dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1')).trim().split(/\s+/);
      expect(hex).toHaveLength(16);

      const dd = await vm.ddRead('/dev/vda', 32);
      vm.progress(`guest dd over virtio-pci: ${dd.records}, ${dd.mibPerSecond.toFixed(1)} MiB/s by the guest clock (${dd.guestSeconds.toFixed(2)} s guest, ${dd.hostSeconds.toFixed(2)} s host)`);
      expect(dd.records).toBe('32+0 records out');

      // A guest reboot resets the machine (PCI config space, MSI-X table, virtio state); Linux enumerates again
      // and the disk works as before.
      const mark = vm.console.mark();
      vm.machine.serial.receive(Buffer.from('reboot\n'));
      await vm.shell(300_000, mark);
      vm.progress('shell again after the guest rebooted');
      expect(await vm.run('cat /mnt/pci.txt')).toBe('written over virtio-pci\n');
      expect((await vm.run('basename $(readlink /sys/bus/pci/devices/0000:00:01.0/driver)')).trim()).toBe('virtio-pci');
      expect(await vm.run('grep -c "PCI-MSI.*virtio0-req.0" /proc/interrupts')).toBe('1\n');

      const exit = await vm.powerOff();
      expect(exit.status).toBe(0);
      expect(ext4CatAfterReplay(vda, '/pci.txt', tmp.dir)).toBe('written over virtio-pci\n');
    }, 900_000);
  });
}
